//! The streamable HTTP client transport against Keel's own HTTP server, in both eras, over loopback.
#![cfg(all(feature = "http-client", feature = "http-server"))]

use std::sync::{Arc, Mutex};

use keel_mcp::client::Client;
use keel_mcp::client::http::HttpTransport;
use keel_mcp::engine::{Progress, RequestOptions};
use keel_mcp::protocol::{Era, Implementation, ProtocolVersion};
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{Json, NoArgs, RequestContext, Server};
use serde_json::json;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Add {
    a: f64,
    b: f64,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Sum {
    sum: f64,
}

/// Serves a small calculator at `http://127.0.0.1:<port>/mcp`; the server stops when the sender drops.
async fn serve() -> (String, tokio::sync::oneshot::Sender<()>) {
    serve_with(&ProtocolVersion::ALL, HttpConfig::default()).await
}

/// How many `hang` calls the server ended (dropped, or finished after seeing the cancellation).
static HANG_CANCELLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Signalled by each `hang` call once it runs, so a test cancels a call that has really started.
static HANG_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

struct EndedEarly;

impl Drop for EndedEarly {
    fn drop(&mut self) {
        HANG_CANCELLED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn serve_with(versions: &[ProtocolVersion], config: HttpConfig) -> (String, tokio::sync::oneshot::Sender<()>) {
    let server = Server::builder(Implementation::new("calc", "1.2.3"))
        .tool("hang", "Waits until cancelled", |ctx: RequestContext, _: NoArgs| async move {
            // Counts when the call ends early, whether the server drops it or it sees the cancellation.
            let _ended = EndedEarly;
            HANG_STARTED.notify_one();
            ctx.cancellation().cancelled().await;
            "cancelled"
        })
        .protocol_versions(versions.iter().cloned())
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .tool("count", "Reports progress", |ctx: RequestContext, _: NoArgs| async move {
            for i in 1..=3 {
                ctx.progress(i as f64, Some(3.0), Some("counting")).await;
            }
            "counted"
        })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        server.serve_http_on(listener, config, shutdown).await.unwrap();
    });
    (url, stop)
}

async fn exercise(client: &Client) {
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"add") && names.contains(&"count"), "{names:?}");

    let result = client.call_tool("add", json!({"a": 2, "b": 3})).await.unwrap();
    assert_eq!(result.structured_content, Some(json!({"sum": 5.0})));

    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = seen.clone();
    let options =
        RequestOptions { on_progress: Some(Arc::new(move |p| sink.lock().unwrap().push(p))), ..Default::default() };
    let params = keel_mcp::protocol::CallToolParams::new("count", None);
    let counted = client.call(params, options).await.unwrap();
    assert!(!counted.is_error());
    // Progress arrives on the call's SSE stream, in order, before the answer.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|p| p.progress).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);

    let missing = client.call_tool("nope", json!({})).await;
    assert!(missing.is_err() || missing.unwrap().is_error());
}

#[tokio::test]
async fn modern_era_over_http() {
    let (url, _stop) = serve().await;
    let client =
        Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await.unwrap();
    assert_eq!(client.era(), Era::Modern);
    assert_eq!(client.server().info.as_ref().map(|i| i.name.as_str()), Some("calc"));
    exercise(&client).await;
    client.close().await;
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Modern));
}

#[tokio::test]
async fn legacy_era_over_http() {
    let (url, _stop) = serve().await;
    for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2025_06_18, ProtocolVersion::V2025_03_26] {
        let client = Client::builder(Implementation::new("t", "1"))
            .protocol_versions([version.clone()])
            .connect(HttpTransport::new(&url).unwrap())
            .await
            .unwrap();
        assert_eq!(client.protocol_version(), version);
        exercise(&client).await;
        client.ping().await.unwrap();
        client.close().await;
    }
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Legacy));
}

#[tokio::test]
async fn unreachable_servers_fail_cleanly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let outcome = Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await;
    assert!(outcome.is_err());
    assert!(HttpTransport::new("ftp://example.com").is_err());
}

#[tokio::test]
async fn a_dual_era_client_falls_back_to_initialize_on_a_legacy_server() {
    let (url, _stop) =
        serve_with(&[ProtocolVersion::V2025_06_18, ProtocolVersion::V2025_11_25], HttpConfig::default()).await;
    let client =
        Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await.unwrap();
    assert_eq!(client.protocol_version(), ProtocolVersion::V2025_11_25);
    exercise(&client).await;
    client.close().await;
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Legacy));
    // The cached era skips the probe next time; the connection still works.
    let again =
        Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await.unwrap();
    assert_eq!(again.era(), Era::Legacy);
    again.close().await;
}

#[tokio::test]
async fn an_expired_session_is_renewed_transparently() {
    let config = HttpConfig::default().session_idle_timeout(std::time::Duration::from_millis(200));
    let (url, _stop) = serve_with(&ProtocolVersion::ALL, config).await;
    let client = Client::builder(Implementation::new("t", "1"))
        .protocol_versions([ProtocolVersion::V2025_11_25])
        .connect(HttpTransport::new(&url).unwrap())
        .await
        .unwrap();
    client.call_tool("add", json!({"a": 1, "b": 1})).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    // The server forgot the session (404); the transport re-initializes and retries once.
    let result = client.call_tool("add", json!({"a": 2, "b": 2})).await.unwrap();
    assert_eq!(result.structured_content, Some(json!({"sum": 4.0})));
    client.close().await;
}

#[tokio::test]
async fn cancelling_a_call_reaches_the_server_in_both_eras() {
    let (url, _stop) = serve().await;
    for (round, versions) in
        [vec![ProtocolVersion::V2026_07_28], vec![ProtocolVersion::V2025_11_25]].into_iter().enumerate()
    {
        let client = Client::builder(Implementation::new("t", "1"))
            .protocol_versions(versions)
            .connect(HttpTransport::new(&url).unwrap())
            .await
            .unwrap();
        let token = keel_mcp::engine::CancellationToken::new();
        let options = RequestOptions { cancellation: Some(token.clone()), ..Default::default() };
        let call = client.call(keel_mcp::protocol::CallToolParams::new("hang", None), options);
        let cancel = async {
            HANG_STARTED.notified().await;
            token.cancel();
        };
        let (outcome, ()) = tokio::join!(call, cancel);
        assert!(matches!(outcome, Err(keel_mcp::Error::Cancelled)), "{outcome:?}");
        // Modern: the closed response stream; legacy: notifications/cancelled.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while HANG_CANCELLED.load(std::sync::atomic::Ordering::SeqCst) <= round {
            assert!(tokio::time::Instant::now() < deadline, "round {round}: the server never saw the cancellation");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        client.close().await;
    }
}

#[tokio::test]
async fn modern_listen_streams_change_notifications_over_http() {
    let server = Server::builder(Implementation::new("calc", "1.2.3"))
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let serving = server.clone();
    tokio::spawn(async move { serving.serve_http_on(listener, HttpConfig::default(), std::future::pending()).await });

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let client = Client::builder(Implementation::new("t", "1"))
        .on_notification(move |n| {
            let sink = sink.clone();
            async move {
                if let keel_mcp::client::ServerNotification::ToolListChanged = n {
                    sink.lock().unwrap().push("tools");
                }
            }
        })
        .connect(HttpTransport::new(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(client.era(), Era::Modern);
    let client = Arc::new(client);
    let token = keel_mcp::engine::CancellationToken::new();
    let listening = {
        let (client, token) = (client.clone(), token.clone());
        tokio::spawn(async move {
            let filter =
                keel_mcp::protocol::SubscriptionFilter { tools_list_changed: Some(true), ..Default::default() };
            let options = RequestOptions { cancellation: Some(token), ..Default::default() };
            client.listen(filter, options).await
        })
    };
    // The listen stream may not be open yet when the first tool is added (a loaded machine): change the
    // catalog again until a notification arrives, instead of guessing how long the subscription takes.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut added = 0;
    while seen.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no list-changed notification arrived");
        if !listening.is_finished() {
            added += 1;
            server.add_tool(keel_mcp::server::ToolDef::new(format!("late{added}"), |_: NoArgs| async { "late" }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    token.cancel();
    assert!(matches!(listening.await.unwrap(), Err(keel_mcp::Error::Cancelled)));
}

#[tokio::test]
async fn a_modern_only_client_probes_an_origin_remembered_as_legacy() {
    let (url, _stop) = serve().await;
    let legacy = Client::builder(Implementation::new("t", "1"))
        .protocol_versions([ProtocolVersion::V2025_11_25])
        .connect(HttpTransport::new(&url).unwrap())
        .await
        .unwrap();
    legacy.close().await;
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Legacy));
    // This client cannot use the remembered era: it asks the server instead of giving up.
    let modern = Client::builder(Implementation::new("t", "1"))
        .protocol_versions([ProtocolVersion::V2026_07_28])
        .connect(HttpTransport::new(&url).unwrap())
        .await
        .expect("a fresh probe finds the modern era");
    assert_eq!(modern.era(), Era::Modern);
    exercise(&modern).await;
    modern.close().await;
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Modern));
}

/// A listener on `addr` (port 0: any) that a later listener may take over once it is closed.
fn reusable_listener(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(64).unwrap()
}

/// Serves the calculator speaking `versions` on `listener` until `stop` fires; the task ends with the server.
fn serve_on(
    listener: tokio::net::TcpListener,
    versions: &[ProtocolVersion],
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let server = Server::builder(Implementation::new("calc", "2.0.0"))
        .protocol_versions(versions.iter().cloned())
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        server.serve_http_on(listener, HttpConfig::default(), shutdown).await.unwrap();
    });
    (stop, running)
}

#[tokio::test]
async fn a_server_upgraded_to_modern_only_is_probed_after_initialize_fails() {
    let listener = reusable_listener("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/mcp");
    let (stop, running) = serve_on(listener, &[ProtocolVersion::V2025_11_25]);
    let client =
        Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await.unwrap();
    assert_eq!(client.era(), Era::Legacy);
    client.close().await;
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Legacy));
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), running).await.expect("the old server stops").unwrap();

    // Same origin, new server: the remembered era is stale.
    let (_stop, _running) = serve_on(reusable_listener(addr), &[ProtocolVersion::V2026_07_28]);
    let client = Client::builder(Implementation::new("t", "1"))
        .connect(HttpTransport::new(&url).unwrap())
        .await
        .expect("initialize fails, and a fresh probe finds the modern era");
    assert_eq!(client.era(), Era::Modern);
    assert_eq!(client.server().info.as_ref().map(|i| i.version.as_str()), Some("2.0.0"));
    let sum = client.call_tool("add", json!({"a": 1, "b": 2})).await.unwrap();
    assert_eq!(sum.structured_content, Some(json!({"sum": 3.0})));
    client.close().await;
    assert_eq!(HttpTransport::new(&url).unwrap().cached_era(), Some(Era::Modern));
}

/// Records what an [`HttpObserver`](keel_mcp::client::http::HttpObserver) sees.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl keel_mcp::client::http::HttpObserver for Recorder {
    fn request(&self, method: &str, _url: &str, headers: &keel_mcp::client::http::reqwest::header::HeaderMap) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("-");
        let session = headers.contains_key("mcp-session-id");
        self.0.lock().unwrap().push(format!("> {method} auth={auth} session={session}"));
    }

    fn response(
        &self,
        method: &str,
        _url: &str,
        status: u16,
        _headers: &keel_mcp::client::http::reqwest::header::HeaderMap,
    ) {
        self.0.lock().unwrap().push(format!("< {status} {method}"));
    }

    fn sse_event(&self, _url: &str, event: &str, id: Option<&str>) {
        self.0.lock().unwrap().push(format!("sse {event} id={}", id.is_some()));
    }
}

#[tokio::test]
async fn an_observer_sees_each_exchange_and_sse_event_without_credentials() {
    let (url, _stop) = serve().await;
    let recorder = Arc::new(Recorder::default());
    let transport =
        HttpTransport::new(&url).unwrap().header("Authorization", "Bearer s3cret").unwrap().observer(recorder.clone());
    let client = Client::builder(Implementation::new("t", "1"))
        .protocol_versions([ProtocolVersion::V2025_11_25])
        .connect(transport)
        .await
        .unwrap();
    let options = RequestOptions::default().on_progress(|_| {});
    client.call_tool_with("count", json!({}), options).await.unwrap();
    client.close().await;
    let seen = recorder.0.lock().unwrap().clone();
    assert!(seen.iter().all(|line| !line.contains("s3cret")), "{seen:?}");
    assert_eq!(seen.first().map(String::as_str), Some("> POST auth=[redacted] session=false"), "{seen:?}");
    assert!(seen.iter().any(|l| l == "> POST auth=[redacted] session=true"), "{seen:?}");
    assert!(seen.iter().any(|l| l == "< 200 POST"), "{seen:?}");
    // Event type `""` is a `message` event; the server numbers its events.
    assert!(seen.iter().any(|l| l == "sse  id=true"), "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("> DELETE")), "{seen:?}");
}
