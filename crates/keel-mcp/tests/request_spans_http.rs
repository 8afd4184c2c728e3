//! The `mcp.request` span of a request on a legacy HTTP session names that session, so that the server's
//! log ties a handler's lines to the client's session. A test binary of its own, like `request_spans.rs`:
//! the thread-local subscriber must see every callsite.

use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{NoArgs, Server};
use serde_json::{Value, json};
use tower::ServiceExt;

mod span_capture;
use span_capture::capture;

fn post(session: Option<&str>, body: &Value) -> Request<Full<bytes::Bytes>> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.body(Full::new(bytes::Bytes::from(body.to_string()))).unwrap()
}

// One thread, so the thread-local subscriber sees the service's work too.
#[tokio::test(flavor = "current_thread")]
async fn a_legacy_http_request_span_names_its_session() {
    let (captured, _default) = capture(tracing::Level::INFO);
    let server = Server::builder(Implementation::new("t", "1"))
        .tool("work", "Logs", |_: NoArgs| async {
            tracing::info!("working over http");
            "done"
        })
        .build();
    let service = server.http_service(HttpConfig::default());
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = service.clone().oneshot(post(None, &init)).await.unwrap();
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = response.into_body().collect().await.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "work", "arguments": {}}});
    let response = service.clone().oneshot(post(Some(&session), &call)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("done"), "{body:?}");
    let text = captured.text();
    let line = text.lines().find(|l| l.contains("working over http")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("session=\"{session}\"")), "{line}");
    assert!(line.contains("era=\"legacy\""), "{line}");
}
