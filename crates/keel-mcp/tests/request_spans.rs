//! One `mcp.request` span per handled request and one `mcp.send` span per outgoing request (issue 12,
//! item 14). A test binary of its own: a tracing subscriber set while other tests register the same
//! callsites on other threads could miss them.

use keel_mcp::client::Client;
use keel_mcp::protocol::{Implementation, ProtocolVersion};
use keel_mcp::server::{NoArgs, Server};
use keel_mcp::transport::memory;
use serde_json::json;

mod span_capture;
use span_capture::capture;

const ERAS: [ProtocolVersion; 2] = [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28];

async fn connect(server: &Server, version: &ProtocolVersion) -> Client {
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    Client::builder(Implementation::new("t", "1")).protocol_versions([version.clone()]).connect(b).await.unwrap()
}

// One thread, so the thread-local subscriber sees the server's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn each_request_has_a_span_that_handlers_and_client_calls_log_in() {
    let (captured, _default) = capture(tracing::Level::INFO);
    let server = Server::builder(Implementation::new("t", "1"))
        .tool("work", "Logs", |_: NoArgs| async {
            tracing::info!("working");
            "done"
        })
        .tool("fail", "Fails", |_: NoArgs| async { Err::<String, _>(std::io::Error::other("disk on fire")) })
        .build();
    for version in ERAS {
        let client = connect(&server, &version).await;
        client.call_tool("work", json!({})).await.unwrap();
        client.call_tool("fail", json!({})).await.unwrap();
        client.close().await;
    }
    let text = captured.text();
    let lines = |needle: &str| text.lines().filter(|l| l.contains(needle)).map(str::to_owned).collect::<Vec<_>>();
    let working = lines("working");
    assert_eq!(working.len(), 2, "{text}");
    for (line, era) in working.iter().zip(["legacy", "modern"]) {
        assert!(line.contains("mcp.request{method=\"tools/call\""), "the server's request span: {line}");
        assert!(line.contains(&format!("era=\"{era}\"")), "{line}");
    }
    // One span per outgoing call, with its id.
    let sent = lines("mcp.send{method=\"tools/call\" id=");
    assert_eq!(sent.iter().filter(|l| l.contains("close")).count(), 4, "{text}");
    // The internal error's details are in the server's log, in the request's span.
    let failed = lines("handler failed");
    assert_eq!(failed.len(), 2, "{text}");
    assert!(failed.iter().all(|l| l.contains("disk on fire") && l.contains("mcp.request")), "{failed:?}");
}

// The HTTP client's request tasks had no parent span: what they logged lost the caller's context.
#[cfg(feature = "http-client")]
#[tokio::test(flavor = "current_thread")]
async fn the_http_client_logs_in_the_span_of_whoever_connects() {
    use tracing::Instrument as _;

    let (captured, _default) = capture(tracing::Level::DEBUG);
    // Nobody listens there: the probe fails in the transport's request task, which says so.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let transport = keel_mcp::client::http::HttpTransport::new(&url).unwrap();
    let outcome = Client::builder(Implementation::new("t", "1"))
        .connect(transport)
        .instrument(tracing::info_span!("caller", job = "sync"))
        .await;
    assert!(outcome.is_err());
    let text = captured.text();
    let failed: Vec<&str> = text.lines().filter(|l| l.contains("HTTP request failed")).collect();
    assert!(!failed.is_empty(), "{text}");
    assert!(failed.iter().all(|l| l.contains("caller{job=\"sync\"}")), "{failed:?}");
}
