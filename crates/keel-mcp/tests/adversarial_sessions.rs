//! Adversarial end-to-end tests of legacy (≤ 2025-11-25) HTTP sessions (issue 10, findings 3, 4, 7, 8, 9,
//! 10): a real server on an ephemeral loopback port, a misbehaving client, and a well-behaved one that must
//! be served meanwhile. Peers are told apart by source address (127.0.0.x). Tests run one at a time, so that
//! the memory of one is not counted against another.

use std::time::Duration;

use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{NoArgs, RequestContext, Server};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod raw_client;
use raw_client::{Conn, JSON_AND_SSE, echo, events, initialize, rss, serve, session};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WELL_BEHAVED: u8 = 1;
const ATTACKER: u8 = 2;

/// Sends on `ended` when dropped: tells the test that a handler stopped (finished or cancelled).
struct Ends(mpsc::UnboundedSender<()>);

impl Drop for Ends {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

/// `echo`, and `hold`: reports progress (so the answer becomes a stream when the client accepts one), then
/// waits forever; each `hold` handler signals `ended` when it stops.
fn server(ended: mpsc::UnboundedSender<()>) -> Server {
    Server::builder(Implementation::new("adversarial", "1.0.0"))
        .tool("echo", "Echoes", |a: EchoArgs| async move { a.text })
        .tool("hold", "Holds on", move |ctx: RequestContext, _: NoArgs| {
            let ends = Ends(ended.clone());
            async move {
                let _ends = ends;
                ctx.progress(1.0, None, Some("started")).await;
                std::future::pending::<()>().await;
                "never"
            }
        })
        .build()
}

fn hold_call(id: u64, streaming: bool) -> Vec<u8> {
    let mut params = json!({"name": "hold"});
    if streaming {
        params["_meta"] = json!({"progressToken": id});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string().into_bytes()
}

/// One test's server, holding the lock that keeps tests apart; `ended` hears from stopped `hold` handlers.
struct Test {
    addr: std::net::SocketAddr,
    ended: mpsc::UnboundedReceiver<()>,
    _running: raw_client::Running,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Test {
    async fn start(config: HttpConfig) -> Test {
        let serial = SERIAL.lock().await;
        let (tx, ended) = mpsc::unbounded_channel();
        let running = serve(server(tx), config).await;
        Test { addr: running.addr, ended, _running: running, _serial: serial }
    }
}

/// Retries `attempt` until it yields `want`, at most 100 times over about 5 s: the server learns that a
/// client hung up asynchronously.
async fn eventually<F, Fut>(want: u16, mut attempt: F) -> u16
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let mut last = 0;
    for _ in 0..100 {
        last = attempt().await;
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Awaits `n` signals, failing after 5 s.
async fn ended(rx: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    for i in 0..n {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {i} of {n} handlers ended"));
    }
}

/// Finding 3: streaming calls whose client hung up free their request slot at once and are cancelled once
/// nobody resumed them within the grace, while a well-behaved client is served.
#[tokio::test]
async fn abandoned_streams_free_their_slot_and_are_cancelled() {
    let config = HttpConfig::default().max_concurrent_requests(4).stream_resume_grace(Duration::from_millis(200));
    let mut test = Test::start(config).await;
    let addr = test.addr;
    let attacker = session(addr, ATTACKER).await;
    for id in 0..4 {
        let mut conn = Conn::open(addr, ATTACKER).await;
        let extra = [("accept", JSON_AND_SSE), ("mcp-session-id", attacker.as_str())];
        conn.send("POST", &extra, Some(&hold_call(id, true))).await;
        let head = conn.head().await.unwrap();
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        // Wait for the progress event, so the call is surely streaming, then hang up.
        let mut text = String::new();
        while !text.contains("started") {
            text.push_str(&String::from_utf8(conn.piece(&head).await.unwrap()).unwrap());
        }
        conn.abort();
    }
    // Every slot was held by an abandoned stream; they are free again without waiting for the handlers.
    let well_behaved = session(addr, WELL_BEHAVED).await;
    assert_eq!(eventually(200, || echo(addr, WELL_BEHAVED, &well_behaved)).await, 200);
    // And the abandoned handlers are cancelled after the grace.
    ended(&mut test.ended, 4).await;
}

/// Finding 3 (per-session cap) and 8 (JSON calls abandoned by the client leave nothing behind).
#[tokio::test]
async fn a_session_runs_a_bounded_number_of_requests_and_hung_up_ones_leave() {
    let mut test = Test::start(HttpConfig::default().max_requests_per_session(2)).await;
    let addr = test.addr;
    let attacker = session(addr, ATTACKER).await;
    let mut held = Vec::new();
    for id in 0..2 {
        let mut conn = Conn::open(addr, ATTACKER).await;
        let extra = [("accept", "application/json"), ("mcp-session-id", attacker.as_str())];
        conn.send("POST", &extra, Some(&hold_call(id, false))).await;
        held.push(conn);
    }
    let third = || async {
        let mut conn = Conn::open(addr, ATTACKER).await;
        let (head, body) = conn.post(Some(&attacker), "application/json", &hold_call(7, false)).await.unwrap();
        if head.status == 429 {
            assert_eq!(head.header("retry-after"), Some("1"));
            let error: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["id"], 7);
        }
        head.status
    };
    assert_eq!(eventually(429, third).await, 429, "a third request in the session is refused");
    let well_behaved = session(addr, WELL_BEHAVED).await;
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
    // The client hangs up on its JSON calls: their handlers end and their entries leave the session.
    for conn in held {
        conn.abort();
    }
    ended(&mut test.ended, 2).await;
    assert_eq!(eventually(200, || echo(addr, ATTACKER, &attacker)).await, 200);
}

/// Finding 4: a session keeps little of what `initialize` carries: oversized capabilities are refused,
/// clientInfo extras (icons, ...) are not kept.
#[tokio::test]
async fn initialize_payloads_are_refused_or_not_retained() {
    let test = Test::start(HttpConfig::default().max_sessions_per_peer(1000)).await;
    let addr = test.addr;
    let well_behaved = session(addr, WELL_BEHAVED).await;
    let megabyte = "x".repeat(1 << 20);

    let mut conn = Conn::open(addr, ATTACKER).await;
    for _ in 0..5 {
        let status = initialize(&mut conn, &json!({"experimental": {"big": {"blob": megabyte}}})).await;
        assert_eq!(status, Err(400), "1 MB of capabilities is refused");
    }
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"experimental": {"big": {"blob": megabyte}}},
        "clientInfo": {"name": "t", "version": "1"}}});
    let (_, answer) = conn.post(None, JSON_AND_SSE, body.to_string().as_bytes()).await.unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    // Small in bytes but many values (each costs far more parsed than on the wire): refused too.
    let many: serde_json::Map<String, Value> = (0..300).map(|i| (format!("k{i}"), json!({}))).collect();
    assert_eq!(initialize(&mut conn, &json!({"experimental": many})).await, Err(400));

    // 40 sessions whose clientInfo carries 1 MB each: accepted, but the megabytes are not kept.
    let before = rss();
    for _ in 0..40 {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": megabyte, "version": "1", "icons": [{"src": megabyte}]}}});
        let (head, _) = conn.post(None, JSON_AND_SSE, body.to_string().as_bytes()).await.unwrap();
        assert_eq!(head.status, 200);
    }
    let grown = rss().saturating_sub(before);
    assert!(grown < 24 << 20, "40 sessions of 2 MB clientInfo grew RSS by {} MiB", grown >> 20);
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
}

/// Finding 7: a notification named `initialize` is an invalid request, not a crash.
#[tokio::test]
async fn a_notification_named_initialize_is_an_invalid_request() {
    let test = Test::start(HttpConfig::default()).await;
    let addr = test.addr;
    let well_behaved = session(addr, WELL_BEHAVED).await;
    for _ in 0..3 {
        let mut conn = Conn::open(addr, ATTACKER).await;
        let body = br#"{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
        let (head, body) = conn.post(None, JSON_AND_SSE, body).await.expect("an answer, not a dropped connection");
        assert_eq!(head.status, 400);
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["code"], -32600);
        // The connection lives on.
        let (head, _) = conn
            .post(Some(&well_behaved), "application/json", br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
            .await
            .unwrap();
        assert_eq!(head.status, 200);
    }
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
}

/// Finding 8: request ids are bounded (a 1 MB id is refused, not held), in `initialize` and in a session.
#[tokio::test]
async fn huge_request_ids_are_refused_and_not_held() {
    let test = Test::start(HttpConfig::default()).await;
    let addr = test.addr;
    let well_behaved = session(addr, WELL_BEHAVED).await;
    let attacker = session(addr, ATTACKER).await;
    let id = "i".repeat(1 << 20);
    let before = rss();
    for _ in 0..40 {
        let mut conn = Conn::open(addr, ATTACKER).await;
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "hold"}});
        let (head, body) = conn.post(Some(&attacker), "application/json", call.to_string().as_bytes()).await.unwrap();
        assert_eq!(head.status, 400);
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["code"], -32600);
        assert!(body.len() < 1024, "the id is not echoed back");
        conn.abort();
    }
    let grown = rss().saturating_sub(before);
    assert!(grown < 24 << 20, "40 calls with 1 MB ids grew RSS by {} MiB", grown >> 20);
    let mut conn = Conn::open(addr, ATTACKER).await;
    let init = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (head, _) = conn.post(None, JSON_AND_SSE, init.to_string().as_bytes()).await.unwrap();
    assert_eq!(head.status, 400);
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
}

/// Finding 9: the standalone GET stream ends with the client's connection, so the client can open another.
#[tokio::test]
async fn a_hung_up_standalone_stream_can_be_opened_again() {
    let test = Test::start(HttpConfig::default()).await;
    let addr = test.addr;
    let well_behaved = session(addr, WELL_BEHAVED).await;
    let open = |session: String| async move {
        let mut conn = Conn::open(addr, ATTACKER).await;
        let extra = [("accept", "text/event-stream"), ("mcp-session-id", session.as_str())];
        conn.send("GET", &extra, None).await;
        let head = conn.head().await.unwrap();
        (conn, head.status)
    };
    let attacker = session(addr, ATTACKER).await;
    let (first, status) = open(attacker.clone()).await;
    assert_eq!(status, 200);
    let (second, status) = open(attacker.clone()).await;
    assert_eq!(status, 409, "one standalone stream at a time");
    drop(second);
    first.abort();
    let reopened = eventually(200, || async {
        let (conn, status) = open(attacker.clone()).await;
        drop(conn);
        status
    })
    .await;
    assert_eq!(reopened, 200, "the stream of a client that hung up is over");
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
}

/// Finding 10: a flood of sessions neither refuses newcomers nor evicts clients that completed their
/// handshake while stalled ones remain; each peer has a bounded share.
#[tokio::test]
async fn a_session_flood_evicts_stalled_handshakes_not_everyone() {
    let config = HttpConfig::default().max_sessions(20).max_sessions_per_peer(5).session_init_grace(Duration::ZERO);
    let test = Test::start(config).await;
    let addr = test.addr;
    let well_behaved = session(addr, WELL_BEHAVED).await;
    // One peer opening many sessions only evicts its own.
    let mut conn = Conn::open(addr, ATTACKER).await;
    let mut own = Vec::new();
    for _ in 0..50 {
        own.push(initialize(&mut conn, &json!({})).await.expect("never refused"));
    }
    assert_eq!(echo(addr, ATTACKER, &own[0]).await, 404, "the peer's oldest session made room");
    assert_eq!(echo(addr, ATTACKER, &own[49]).await, 200);
    // Many peers filling the table evict the stalled handshakes, not the client that completed its own.
    for peer in 10..40u8 {
        let mut conn = Conn::open(addr, peer).await;
        for _ in 0..5 {
            initialize(&mut conn, &json!({})).await.expect("never refused");
        }
    }
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
    let newcomer = session(addr, 3).await;
    assert_eq!(echo(addr, 3, &newcomer).await, 200);
    assert_eq!(echo(addr, WELL_BEHAVED, &well_behaved).await, 200);
}

/// Finding 3's other half: a stream resumed with `Last-Event-ID` within the grace goes on; once its last
/// reader is gone for the grace, the call is cancelled.
#[tokio::test]
async fn a_stream_resumed_within_the_grace_goes_on() {
    let mut test = Test::start(HttpConfig::default().stream_resume_grace(Duration::from_millis(300))).await;
    let addr = test.addr;
    let session = session(addr, WELL_BEHAVED).await;
    let mut conn = Conn::open(addr, WELL_BEHAVED).await;
    let extra = [("accept", JSON_AND_SSE), ("mcp-session-id", session.as_str())];
    conn.send("POST", &extra, Some(&hold_call(1, true))).await;
    let head = conn.head().await.unwrap();
    let mut text = String::new();
    let mut last = None;
    while last.is_none() {
        text.push_str(&String::from_utf8(conn.piece(&head).await.unwrap()).unwrap());
        last = events(&mut text).into_iter().filter(|e| e.data.contains("started")).find_map(|e| e.id);
    }
    conn.abort();
    let last = last.unwrap();
    let mut resumed = Conn::open(addr, WELL_BEHAVED).await;
    let extra = [("accept", "text/event-stream"), ("mcp-session-id", session.as_str()), ("last-event-id", &last)];
    resumed.send("GET", &extra, None).await;
    assert_eq!(resumed.head().await.unwrap().status, 200);
    // Well past the grace, the call still runs for its reader...
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(test.ended.try_recv().is_err(), "a read stream is not abandoned");
    // ... and ends once that reader too is gone.
    resumed.abort();
    ended(&mut test.ended, 1).await;
}
