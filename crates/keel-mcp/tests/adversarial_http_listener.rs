//! The HTTP listener and service edge under hostile peers, end to end on a 127.0.0.1 ephemeral port: slow
//! bodies and half-sent headers, too many connections from one peer, requests without a checkable
//! authority, the order of the last notifications before an answer, and graceful shutdown. Each test
//! checks the refusal (or the timeout) and that a well-behaved client is served meanwhile.
//!
//! Timeouts are configured short (200 ms) rather than waited out at their defaults.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::elicitation::{ElicitParams, PrimitiveSchema, RequestedSchema};
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::server::http::{HttpConfig, McpService};
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

const MODERN: &str = "2026-07-28";
const SHORT: Duration = Duration::from_millis(200);
/// Bound on any single wait in these tests.
const BOUND: Duration = Duration::from_secs(5);
/// Notifications the `burst` tool sends in the poll that returns.
const BURST: usize = 8;

/// Signalled by the `slow` and `forever` tools once they run (each used by one test only).
static SLOW_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static FOREVER_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static SLOW_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn server() -> Server {
    Server::builder(Implementation::new("adversarial", "1.0.0"))
        .tool("echo", "Echoes", |_: NoArgs| async { "echo" })
        .tool(
            "burst",
            "One notification, then a burst and the answer in one poll",
            |ctx: RequestContext, _: NoArgs| async move {
                ctx.progress(0.0, None, Some("first")).await;
                tokio::task::yield_now().await;
                for i in 1..=BURST {
                    ctx.progress(i as f64, None, None).await;
                }
                ctx.log(LoggingLevel::Info, None, "last words").await;
                "done"
            },
        )
        .tool("slow", "Answers after 100 ms", |_: NoArgs| async {
            SLOW_STARTED.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
            SLOW_DONE.store(true, std::sync::atomic::Ordering::SeqCst);
            "slow done"
        })
        .tool("ask", "Asks the user for a name", |ctx: RequestContext, _: NoArgs| async move {
            let string = json!({"type": "string"}).as_object().cloned().unwrap_or_default();
            let schema = RequestedSchema::new(vec![("name".into(), PrimitiveSchema::from_object(string))], &["name"]);
            let answer = ctx.elicit("name", ElicitParams::form("Name?", schema)).await?;
            let name = answer.content.and_then(|c| c.get("name").map(|v| json!(v))).unwrap_or_default();
            Ok::<_, HandlerError>(format!("hello {}", name.as_str().unwrap_or_default()))
        })
        .tool("forever", "Reports progress, then never answers", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(0.0, None, Some("started")).await;
            FOREVER_STARTED.notify_one();
            std::future::pending::<&'static str>().await
        })
        .build()
}

/// A server on `serve_http_on`; dropping the sender (or sending) shuts it down.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), keel_mcp::Error>>,
}

async fn start(config: HttpConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        server()
            .serve_http_on(listener, config, async move {
                let _ = stopped.await;
            })
            .await
    });
    Running { addr, stop: Some(stop), done }
}

/// `McpService` mounted in a plain hyper accept loop (as an application would mount it), so the service's
/// own behaviour is seen without `serve_http_on`'s listener.
async fn mount(service: McpService) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

fn modern_call(tool: &str, meta: Value) -> String {
    let mut m =
        json!({"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}});
    m.as_object_mut().unwrap().extend(meta.as_object().unwrap().clone());
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "_meta": m}});
    post_text(&body, &[("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", tool)])
}

/// An HTTP/1.1 POST to `/mcp` that asks the server to close the connection after the answer.
fn post_text(body: &Value, extra: &[(&str, &str)]) -> String {
    let body = body.to_string();
    let mut text = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&body);
    text
}

/// Sends `request` on a new connection and reads until the server closes it: (status, whole response).
async fn exchange(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange_on(&mut stream, request).await
}

/// A connection the server closed without answering gives status 0.
async fn exchange_on(stream: &mut TcpStream, request: &str) -> (u16, String) {
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut out = Vec::new();
    // A reset (the server closing on accept) reads as the end.
    let _ = timeout(BOUND, stream.read_to_end(&mut out)).await.expect("the server answers in time");
    let text = String::from_utf8_lossy(&out).into_owned();
    (status_of(&text), text)
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The JSON messages of the `data:` lines of an SSE response.
fn sse_messages(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|d| serde_json::from_str(d).ok()).collect()
}

/// A well-behaved modern call succeeds.
async fn served(addr: SocketAddr) {
    let (status, text) = exchange(addr, &modern_call("echo", json!({}))).await;
    assert_eq!(status, 200, "a well-behaved client is served: {text}");
    assert!(text.contains("\"echo\""), "{text}");
}

/// Reads from `stream` until `pattern` appears (or the bound passes).
async fn read_until(stream: &mut TcpStream, seen: &mut String, pattern: &str) {
    let mut buf = [0u8; 4096];
    while !seen.contains(pattern) {
        let n = timeout(BOUND, stream.read(&mut buf)).await.expect("more bytes in time").unwrap();
        assert!(n > 0, "closed before {pattern:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// Reads until the server closes `stream`; what arrived.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = timeout(BOUND, stream.read_to_end(&mut out)).await.expect("the server closes the connection in time");
    String::from_utf8_lossy(&out).into_owned()
}

// Finding 2: slow bodies hold no request slot and time out; half-sent headers are cut off.

#[tokio::test]
async fn slow_bodies_hold_no_slot_and_time_out() {
    let config =
        HttpConfig::default().max_concurrent_requests(8).max_connections_per_peer(1000).body_read_timeout(SHORT);
    let running = start(config).await;
    // 200 uploads that send their headers and one byte of a 100-byte body, then stall.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        let head = "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                    mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/list\r\ncontent-length: 100\r\n\r\n{";
        stream.write_all(head.as_bytes()).await.unwrap();
        slow.push(stream);
    }
    // Far more stalled uploads than slots, and a normal call still answers.
    served(running.addr).await;
    // Each stalled upload gets 408 once its body makes no progress for the configured time.
    for stream in slow.iter_mut().take(5) {
        let text = read_to_close(stream).await;
        assert_eq!(status_of(&text), 408, "{text}");
    }
    served(running.addr).await;
}

#[tokio::test]
async fn a_stalled_body_gets_408_where_the_service_is_mounted_elsewhere() {
    // The application's own hyper loop has no body timeout: the service's applies.
    let addr = mount(server().http_service(HttpConfig::default().body_read_timeout(SHORT))).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\r\n").await;
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    served(addr).await;
}

#[tokio::test]
async fn half_sent_headers_are_cut_off() {
    let running = start(HttpConfig::default().header_read_timeout(SHORT)).await;
    // Headers never finished (or never started), on a fresh connection and after a first request on a
    // kept-alive one.
    let mut partial = TcpStream::connect(running.addr).await.unwrap();
    partial.write_all(b"POST /mcp HTTP/1.1\r\nhost: localhost\r\n").await.unwrap();
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    let mut kept = TcpStream::connect(running.addr).await.unwrap();
    let first = modern_call("echo", json!({})).replace("connection: close\r\n", "");
    kept.write_all(first.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut kept, &mut seen, "\"echo\"").await;
    kept.write_all(b"POST /mcp HTTP/1.1\r\nhost: local").await.unwrap();
    // And a kept-alive connection that sends nothing after its first request.
    let mut idle = TcpStream::connect(running.addr).await.unwrap();
    idle.write_all(first.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut idle, &mut seen, "\"echo\"").await;
    served(running.addr).await;
    let started = tokio::time::Instant::now();
    for stream in [&mut partial, &mut silent, &mut kept, &mut idle] {
        let rest = read_to_close(stream).await;
        assert!(!rest.contains("HTTP/1.1 200"), "no answer to unfinished headers: {rest}");
    }
    assert!(started.elapsed() < Duration::from_secs(3), "closed by the header timeout, not by the test's bound");
    served(running.addr).await;
}

#[tokio::test]
async fn connections_per_peer_are_capped() {
    let running = start(HttpConfig::default().max_connections_per_peer(4)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(running.addr).await.unwrap());
    }
    // The fifth from the same address is closed on accept, without an answer.
    let (status, text) = exchange(running.addr, &modern_call("echo", json!({}))).await;
    assert_eq!(status, 0, "refused: {text}");
    // Another peer address is not affected.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(running.addr).await.unwrap();
    let (status, text) = exchange_on(&mut other, &modern_call("echo", json!({}))).await;
    assert_eq!(status, 200, "{text}");
    // A connection that ends gives its place back.
    drop(held.pop());
    let mut admitted = false;
    for _ in 0..500 {
        let (status, _) = exchange(running.addr, &modern_call("echo", json!({}))).await;
        if status == 200 {
            admitted = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(admitted, "room again once a connection from that peer closed");
}

// Finding 12: the authority is checked in every HTTP version.

#[tokio::test]
async fn the_authority_is_checked_in_every_http_version() {
    let running = start(HttpConfig::default()).await;
    // HTTP/1.0 without Host (a request that is otherwise fine).
    let bare = modern_call("echo", json!({})).replace("HTTP/1.1", "HTTP/1.0").replace("host: localhost\r\n", "");
    assert!(!bare.contains("host"));
    let (status, text) = exchange(running.addr, &bare).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("missing Host header"), "{text}");
    // HTTP/2 (cleartext, prior knowledge): the authority is `:authority`, with no Host header.
    assert_eq!(h2_status(running.addr, "evil.example").await, 403);
    assert_eq!(h2_status(running.addr, "localhost:1").await, 200, "a well-behaved HTTP/2 client is served");
    served(running.addr).await;
}

async fn h2_status(addr: SocketAddr, authority: &str) -> u16 {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}}});
    let request = http::Request::post(format!("http://{authority}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    assert!(request.headers().get("host").is_none());
    let response = timeout(BOUND, sender.send_request(request)).await.unwrap().unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

// Issue 12, item 1: every frame sent before a handler returns precedes the answer.

#[tokio::test]
async fn modern_notifications_sent_with_the_answer_all_arrive_first() {
    let running = start(HttpConfig::default()).await;
    for _ in 0..20 {
        let meta = json!({"progressToken": 7, "io.modelcontextprotocol/logLevel": "debug"});
        let (status, text) = exchange(running.addr, &modern_call("burst", meta)).await;
        assert_eq!(status, 200, "{text}");
        let messages = sse_messages(&text);
        let progress: Vec<f64> = messages.iter().filter_map(|m| m["params"]["progress"].as_f64()).collect();
        let expected: Vec<f64> = (0..=BURST).map(|i| i as f64).collect();
        assert_eq!(progress, expected, "every progress notification, in order: {text}");
        assert_eq!(messages[messages.len() - 2]["params"]["data"], "last words", "{text}");
        assert_eq!(messages.last().unwrap()["result"]["content"][0]["text"], "done", "the answer comes last");
    }
}

#[tokio::test]
async fn legacy_notifications_sent_with_the_answer_all_arrive_first() {
    let running = start(HttpConfig::default()).await;
    let session = legacy_session(running.addr).await;
    for id in 1..=20 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "burst", "_meta": {"progressToken": id}}});
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        stream.write_all(post_text(&call, &[("mcp-session-id", &session)]).as_bytes()).await.unwrap();
        let mut text = String::new();
        read_until(&mut stream, &mut text, "\"done\"").await;
        let messages = sse_messages(&text);
        let progress: Vec<f64> = messages.iter().filter_map(|m| m["params"]["progress"].as_f64()).collect();
        assert_eq!(progress, (0..=BURST).map(|i| i as f64).collect::<Vec<_>>(), "{text}");
        assert_eq!(messages.last().unwrap()["result"]["content"][0]["text"], "done");
    }
}

/// Initializes a legacy session; its id.
async fn legacy_session(addr: SocketAddr) -> String {
    legacy_session_with(addr, json!({})).await
}

async fn legacy_session_with(addr: SocketAddr, capabilities: Value) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}});
    let (status, text) = exchange(addr, &post_text(&init, &[])).await;
    assert_eq!(status, 200, "{text}");
    let session =
        text.lines().find_map(|l| l.strip_prefix("mcp-session-id: ")).expect("a session id").trim().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _) = exchange(addr, &post_text(&initialized, &[("mcp-session-id", &session)])).await;
    assert_eq!(status, 202);
    session
}

/// Opens the session's standalone GET stream and reads its priming event.
async fn open_get_stream(addr: SocketAddr, session: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let get = format!(
        "GET /mcp HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\nmcp-session-id: {session}\r\n\r\n"
    );
    stream.write_all(get.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "data:").await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    (stream, seen)
}

// Issue 12, item 2: graceful shutdown.

#[tokio::test]
async fn shutdown_refuses_new_requests_cancels_after_the_grace_and_ends_streams_with_retry() {
    let service = server().http_service(HttpConfig::default().shutdown_grace(SHORT).sse_retry_ms(1234));
    let addr = mount(service.clone()).await;
    let session = legacy_session(addr).await;
    let (mut get, _) = open_get_stream(addr, &session).await;
    // A modern call that would never finish, streaming (it asked for progress).
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck.write_all(modern_call("forever", json!({"progressToken": 1})).as_bytes()).await.unwrap();
    FOREVER_STARTED.notified().await;
    served(addr).await;

    let shutdown = tokio::spawn({
        let service = service.clone();
        async move { service.shutdown().await }
    });
    // From the first call on, new requests get 503 with Retry-After.
    let refused = until_refused(addr).await;
    assert!(refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");

    // After the grace, the stuck call is cancelled and answered, with a retry hint, and the GET stream
    // ends with one too.
    let answer = read_to_close(&mut stuck).await;
    assert!(answer.contains("retry: 1234"), "{answer}");
    let last = sse_messages(&answer).pop().expect("an answer");
    assert!(last["error"]["message"].as_str().unwrap().contains("shutting down"), "{answer}");
    let mut rest = String::new();
    read_until(&mut get, &mut rest, "retry: 1234").await;
    timeout(BOUND, shutdown).await.expect("shutdown resolves once nothing is in flight").unwrap();
}

/// Modern requests until one gets 503 (the shutdown has started); that response.
async fn until_refused(addr: SocketAddr) -> String {
    for _ in 0..200 {
        let (status, text) = exchange(addr, &modern_call("echo", json!({}))).await;
        if status == 503 {
            return text;
        }
        tokio::task::yield_now().await;
    }
    panic!("never refused");
}

#[tokio::test]
async fn during_the_grace_answers_to_server_requests_still_get_in() {
    let service = server().http_service(HttpConfig::default().shutdown_grace(Duration::from_secs(3)));
    let addr = mount(service.clone()).await;
    let session = legacy_session_with(addr, json!({"elicitation": {}})).await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "ask"}});
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(post_text(&call, &[("mcp-session-id", &session)]).as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "elicitation/create").await;
    let request = sse_messages(&seen).into_iter().find(|m| m["method"] == "elicitation/create").unwrap();

    let started = tokio::time::Instant::now();
    let shutdown = tokio::spawn({
        let service = service.clone();
        async move { service.shutdown().await }
    });
    until_refused(addr).await;
    // New requests are refused, but the answer the call waits for is taken.
    let answer =
        json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"name": "Grace"}}});
    let (status, text) = exchange(addr, &post_text(&answer, &[("mcp-session-id", &session)])).await;
    assert_eq!(status, 202, "{text}");
    read_until(&mut stream, &mut seen, "hello Grace").await;
    timeout(BOUND, shutdown).await.expect("the shutdown resolves once the call is done").unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "it did not wait out the grace");
}

#[tokio::test]
async fn calls_in_flight_finish_within_the_grace() {
    let service = server().http_service(HttpConfig::default().shutdown_grace(Duration::from_secs(3)));
    let addr = mount(service.clone()).await;
    let call = tokio::spawn(async move { exchange(addr, &modern_call("slow", json!({}))).await });
    // The call holds its slot once its handler runs: the shutdown must then wait for it.
    SLOW_STARTED.notified().await;
    let started = tokio::time::Instant::now();
    timeout(BOUND, service.shutdown()).await.expect("the shutdown resolves once the call is done");
    assert!(SLOW_DONE.load(std::sync::atomic::Ordering::SeqCst), "the shutdown waited for the call");
    let (status, text) = call.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("slow done"), "the call finished normally: {text}");
    assert!(started.elapsed() < Duration::from_secs(2), "the shutdown did not wait out the grace");
}

#[tokio::test]
async fn serve_http_on_stops_with_a_legacy_get_stream_open() {
    let mut running = start(HttpConfig::default()).await;
    let session = legacy_session(running.addr).await;
    let (mut get, _) = open_get_stream(running.addr, &session).await;
    let started = tokio::time::Instant::now();
    drop(running.stop.take());
    let rest = read_to_close(&mut get).await;
    assert!(rest.contains("retry: "), "the stream ends with a retry hint: {rest}");
    timeout(Duration::from_secs(2), &mut running.done).await.expect("serve_http_on returns").unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(TcpStream::connect(running.addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn serve_http_on_keeps_open_connections_for_answers_during_the_grace() {
    let mut running = start(HttpConfig::default().shutdown_grace(Duration::from_secs(3))).await;
    let session = legacy_session_with(running.addr, json!({"elicitation": {}})).await;
    // A kept-alive connection, used once before the shutdown.
    let mut kept = TcpStream::connect(running.addr).await.unwrap();
    let ping = modern_call("echo", json!({})).replace("connection: close\r\n", "");
    kept.write_all(ping.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut kept, &mut seen, "\"echo\"").await;
    // A call that waits for the client's answer.
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "ask"}});
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream.write_all(post_text(&call, &[("mcp-session-id", &session)]).as_bytes()).await.unwrap();
    let mut events = String::new();
    read_until(&mut stream, &mut events, "elicitation/create").await;
    let request = sse_messages(&events).into_iter().find(|m| m["method"] == "elicitation/create").unwrap();

    drop(running.stop.take());
    // The listener stops accepting; the open connection still carries the answer.
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(running.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "no longer accepting");
    let answer =
        json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"name": "Kept"}}});
    let (status, text) = exchange_on(&mut kept, &post_text(&answer, &[("mcp-session-id", &session)])).await;
    assert_eq!(status, 202, "{text}");
    read_until(&mut stream, &mut events, "hello Kept").await;
    timeout(BOUND, &mut running.done).await.expect("serve_http_on returns once the call is done").unwrap().unwrap();
}
