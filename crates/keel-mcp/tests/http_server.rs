//! The streamable HTTP server, driven in-process through `tower::ServiceExt::oneshot`: every error status,
//! both eras, streaming, server-to-client requests, and resumption after a dropped stream.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::elicitation::{ElicitParams, PrimitiveSchema, RequestedSchema};
use keel_mcp::server::http::{HostPolicy, HttpConfig, McpService, ResponseBody};
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server};
use serde_json::{Value, json};
use tower::ServiceExt;

mod schema_support;

const MODERN: &str = "2026-07-28";

static RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// The `linger` tool's life: it started, saw its cancellation, may end (the test says so), ended.
static LINGER_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static LINGER_CANCELLED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static LINGER_RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();
static LINGER_ENDED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn server() -> Server {
    server_with(keel_mcp::Limits::default())
}

fn server_with(limits: keel_mcp::Limits) -> Server {
    Server::builder(Implementation::new("http-test", "1.0.0"))
        .limits(limits)
        .tool("echo", "Echoes", |a: EchoArgs| async move { a.text })
        .tool("progress", "Streams progress", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(1.0, Some(2.0), None).await;
            ctx.progress(2.0, Some(2.0), None).await;
            "done"
        })
        .tool("ask", "Asks the user for a name", |ctx: RequestContext, _: NoArgs| async move {
            let schema = RequestedSchema::new(
                vec![(
                    "name".into(),
                    PrimitiveSchema::from_object(json!({"type": "string"}).as_object().unwrap().clone()),
                )],
                &["name"],
            );
            let answer = ctx.elicit("name", ElicitParams::form("Name?", schema)).await?;
            let name = answer.content.and_then(|c| c.get("name").map(|v| json!(v))).unwrap_or_default();
            Ok::<_, HandlerError>(format!("hello {}", name.as_str().unwrap_or_default()))
        })
        .tool("block", "Waits until released", |_: NoArgs| async {
            RELEASE.notified().await;
            "released"
        })
        .tool("linger", "Cleans up slowly once cancelled", |ctx: RequestContext, _: NoArgs| async move {
            LINGER_STARTED.notify_one();
            ctx.cancellation().cancelled().await;
            LINGER_CANCELLED.notify_one();
            LINGER_RELEASE.notified().await;
            LINGER_ENDED.notify_one();
            "cleaned up"
        })
        .tool("drop_stream", "Drops its SSE connection, then answers", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(1.0, None, Some("before the drop")).await;
            ctx.close_sse_stream().await;
            tokio::time::sleep(Duration::from_millis(30)).await;
            ctx.progress(2.0, None, Some("after the drop")).await;
            "survived"
        })
        .build()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

fn service(config: HttpConfig) -> McpService {
    server().http_service(config)
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}})
}

fn post(body: &Value) -> http::request::Builder {
    let _ = body;
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

fn modern(method: &str, params: Value, name: Option<&str>) -> Request<Full<Bytes>> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut builder = post(&body).header("mcp-protocol-version", MODERN).header("mcp-method", method);
    if let Some(name) = name {
        builder = builder.header("mcp-name", name);
    }
    builder.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn send(service: &McpService, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
    service.clone().oneshot(request).await.unwrap()
}

async fn body_text(response: Response<ResponseBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json_body(response: Response<ResponseBody>) -> Value {
    serde_json::from_str(&body_text(response).await).unwrap()
}

/// The `data:` payloads of an SSE body (skipping the empty priming data).
fn sse_messages(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect()
}

fn sse_ids(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix("id: ")).map(str::to_owned).collect()
}

#[tokio::test]
async fn dns_rebinding_protection() {
    let svc = service(HttpConfig::default());
    let params = json!({"_meta": meta()});
    let mut request = modern("server/discover", params.clone(), None);
    request.headers_mut().insert("host", "evil.example.com".parse().unwrap());
    assert_eq!(send(&svc, request).await.status(), StatusCode::FORBIDDEN);
    let mut request = modern("server/discover", params.clone(), None);
    request.headers_mut().insert("origin", "http://evil.example.com".parse().unwrap());
    assert_eq!(send(&svc, request).await.status(), StatusCode::FORBIDDEN);
    let mut request = modern("server/discover", params.clone(), None);
    request.headers_mut().insert("host", "127.0.0.1:9".parse().unwrap());
    assert_eq!(send(&svc, request).await.status(), StatusCode::OK);
    // An explicit allow-list replaces the loopback default.
    let svc = service(HttpConfig::default().hosts(HostPolicy::Allow(vec!["mcp.example.com".into()])));
    let mut request = modern("server/discover", params, None);
    request.headers_mut().insert("host", "mcp.example.com".parse().unwrap());
    assert_eq!(send(&svc, request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn transport_level_errors() {
    let svc = service(HttpConfig::default().max_body_bytes(64));
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"pad": "y".repeat(100)}});
    let request = post(&big).body(Full::new(Bytes::from(big.to_string()))).unwrap();
    assert_eq!(send(&svc, request).await.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let svc = service(HttpConfig::default());
    let request = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    assert_eq!(send(&svc, request).await.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let request = post(&json!({})).body(Full::new(Bytes::from("{nope"))).unwrap();
    let response = send(&svc, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"]["code"], -32700);

    for method in [Method::GET, Method::DELETE, Method::PUT] {
        let request = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(send(&svc, request).await.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn modern_header_and_meta_errors_map_to_status_and_code() {
    let svc = service(HttpConfig::default());
    let cases: Vec<(Request<Full<Bytes>>, StatusCode, i64)> = vec![
        // Missing MCP-Protocol-Version.
        (
            {
                let mut r = modern("tools/list", json!({"_meta": meta()}), None);
                r.headers_mut().remove("mcp-protocol-version");
                r
            },
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // Mcp-Method disagrees with the body.
        (
            {
                let mut r = modern("tools/list", json!({"_meta": meta()}), None);
                r.headers_mut().insert("mcp-method", "prompts/list".parse().unwrap());
                r
            },
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // Mcp-Name missing on tools/call.
        (
            modern("tools/call", json!({"_meta": meta(), "name": "echo", "arguments": {"text": "x"}}), None),
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // Header version differs from _meta.
        (
            modern(
                "tools/list",
                json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "v9", "io.modelcontextprotocol/clientCapabilities": {}}}),
                None,
            ),
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // No _meta at all.
        (modern("tools/list", json!({}), None), StatusCode::BAD_REQUEST, -32602),
        // Unknown and removed methods.
        (modern("nope/nothing", json!({"_meta": meta()}), None), StatusCode::NOT_FOUND, -32601),
        (modern("ping", json!({"_meta": meta()}), None), StatusCode::NOT_FOUND, -32601),
        (modern("logging/setLevel", json!({"_meta": meta()}), None), StatusCode::NOT_FOUND, -32601),
        // The client cannot answer an elicitation it did not declare.
        (modern("tools/call", json!({"_meta": meta(), "name": "ask"}), Some("ask")), StatusCode::BAD_REQUEST, -32021),
    ];
    for (request, status, code) in cases {
        let response = send(&svc, request).await;
        assert_eq!(response.status(), status);
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["id"], 1, "errors echo the request id");
    }

    // An unsupported version names what is supported.
    let mut request = modern(
        "tools/list",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "v999", "io.modelcontextprotocol/clientCapabilities": {}}}),
        None,
    );
    request.headers_mut().insert("mcp-protocol-version", "v999".parse().unwrap());
    let response = send(&svc, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], -32022);
    assert_eq!(body["error"]["data"]["requested"], "v999");
}

#[tokio::test]
async fn modern_calls_answer_json_or_stream_when_the_handler_streams() {
    let svc = service(HttpConfig::default());
    let response = send(
        &svc,
        modern("tools/call", json!({"_meta": meta(), "name": "echo", "arguments": {"text": "hi"}}), Some("echo")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_body(response).await;
    assert_eq!(body["result"]["content"][0]["text"], "hi");
    assert_eq!(body["result"]["resultType"], "complete");
    schema_support::assert_valid_from_server(MODERN, &body);

    let params = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}, "progressToken": "p"}, "name": "progress"});
    let response = send(&svc, modern("tools/call", params, Some("progress"))).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let messages = sse_messages(&body_text(response).await);
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages[2]["result"]["content"][0]["text"], "done");
    for m in &messages {
        schema_support::assert_valid_from_server(MODERN, m);
    }
}

#[tokio::test]
async fn modern_input_required_round_trip() {
    let svc = service(HttpConfig::default());
    let caps = json!({"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
    let round1 =
        json_body(send(&svc, modern("tools/call", json!({"_meta": caps, "name": "ask"}), Some("ask"))).await).await;
    assert_eq!(round1["result"]["resultType"], "input_required");
    assert_eq!(round1["result"]["inputRequests"]["name"]["method"], "elicitation/create");
    schema_support::assert_valid_from_server(MODERN, &round1);
    let state = round1["result"]["requestState"].as_str().unwrap().to_owned();
    let answer = json!({"name": {"action": "accept", "content": {"name": "Ada"}}});
    let params = json!({"_meta": caps, "name": "ask", "inputResponses": answer, "requestState": state});
    let round2 = json_body(send(&svc, modern("tools/call", params, Some("ask"))).await).await;
    assert_eq!(round2["result"]["content"][0]["text"], "hello Ada");
    // A tampered state is rejected.
    let params = json!({"_meta": caps, "name": "ask", "inputResponses": answer, "requestState": format!("{state}x")});
    let response = send(&svc, modern("tools/call", params, Some("ask"))).await;
    assert_eq!(json_body(response).await["error"]["code"], -32602);
}

fn legacy(session: Option<&str>, body: Value) -> Request<Full<Bytes>> {
    let mut builder = post(&body).header("mcp-protocol-version", "2025-11-25");
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    builder.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn initialize(svc: &McpService, capabilities: Value) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}});
    let request = post(&body).body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let response = send(svc, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert!(session.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let result = json_body(response).await;
    schema_support::assert_valid("2025-11-25", "InitializeResult", &result["result"]);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(send(svc, legacy(Some(&session), initialized)).await.status(), StatusCode::ACCEPTED);
    session
}

#[tokio::test]
async fn legacy_sessions_live_until_deleted() {
    let svc = service(HttpConfig::default());
    let session = initialize(&svc, json!({})).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let response = send(&svc, legacy(Some(&session), list.clone())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    schema_support::assert_valid_from_server("2025-11-25", &body);
    assert_eq!(body["result"]["tools"].as_array().unwrap().len(), 6);

    // No session → this is a modern request without _meta; an unknown session → 404.
    assert_eq!(send(&svc, legacy(Some("nope"), list.clone())).await.status(), StatusCode::NOT_FOUND);
    let delete = Request::builder()
        .method(Method::DELETE)
        .uri("/mcp")
        .header("host", "localhost")
        .header("mcp-session-id", &session)
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&svc, delete).await.status(), StatusCode::OK);
    assert_eq!(send(&svc, legacy(Some(&session), list)).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn legacy_server_requests_travel_on_the_stream_and_answers_come_back_by_post() {
    let svc = service(HttpConfig::default());
    let session = initialize(&svc, json!({"elicitation": {}})).await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "ask"}});
    let response = send(&svc, legacy(Some(&session), call)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    // Read until the elicitation request arrives.
    let mut seen = String::new();
    let request = loop {
        let frame = body.frame().await.unwrap().unwrap();
        seen.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
        if let Some(m) = sse_messages(&seen).into_iter().find(|m| m["method"] == "elicitation/create") {
            break m;
        }
    };
    schema_support::assert_valid_from_server("2025-11-25", &request);
    let answer =
        json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"name": "Grace"}}});
    assert_eq!(send(&svc, legacy(Some(&session), answer)).await.status(), StatusCode::ACCEPTED);
    let rest = body.collect().await.unwrap().to_bytes();
    seen.push_str(std::str::from_utf8(&rest).unwrap());
    let result = sse_messages(&seen).into_iter().find(|m| m["id"] == 5).unwrap();
    assert_eq!(result["result"]["content"][0]["text"], "hello Grace");
}

#[tokio::test]
async fn an_unanswered_server_request_times_out_and_is_cancelled_on_the_stream() {
    let limits = keel_mcp::Limits::default().request_timeout(Duration::from_millis(150));
    let svc = server_with(limits).http_service(HttpConfig::default());
    let session = initialize(&svc, json!({"elicitation": {}})).await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "ask"}});
    let response = send(&svc, legacy(Some(&session), call)).await;
    // The client never answers the elicitation: the stream carries the request, then its cancellation, then
    // the tool's answer (a tool error naming the timeout).
    let text = body_text(response).await;
    let messages = sse_messages(&text);
    let request = messages.iter().find(|m| m["method"] == "elicitation/create").expect("the request went out");
    let cancelled = messages.iter().find(|m| m["method"] == "notifications/cancelled").expect("and was cancelled");
    assert_eq!(cancelled["params"]["requestId"], request["id"]);
    schema_support::assert_valid_from_server("2025-11-25", cancelled);
    let result = messages.iter().find(|m| m["id"] == 5).expect("the call was answered");
    assert_eq!(result["result"]["isError"], true, "{result}");
    // A late answer finds nothing waiting and changes nothing.
    let late = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "decline"}});
    assert_eq!(send(&svc, legacy(Some(&session), late)).await.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_dropped_stream_resumes_with_last_event_id_and_loses_nothing() {
    let svc = service(HttpConfig::default().sse_retry_ms(10));
    let session = initialize(&svc, json!({})).await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "drop_stream", "_meta": {"progressToken": "t"}}});
    let first = body_text(send(&svc, legacy(Some(&session), call)).await).await;
    // Priming event (id, retry, empty data) first; the connection then ends without the result.
    assert!(first.starts_with("id: ") && first.contains("retry: 10\n"), "{first}");
    assert!(sse_messages(&first).iter().all(|m| m.get("result").is_none()), "{first}");
    let last_id = sse_ids(&first).last().unwrap().clone();

    let resume = Request::builder()
        .method(Method::GET)
        .uri("/mcp")
        .header("host", "localhost")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("last-event-id", &last_id)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let second = body_text(send(&svc, resume).await).await;
    let all: Vec<Value> = sse_messages(&first).into_iter().chain(sse_messages(&second)).collect();
    let progress: Vec<&str> = all.iter().filter_map(|m| m["params"]["message"].as_str()).collect();
    assert_eq!(progress, ["before the drop", "after the drop"], "every event exactly once");
    assert_eq!(all.last().unwrap()["result"]["content"][0]["text"], "survived");
}

#[tokio::test]
async fn requests_in_progress_are_bounded() {
    let svc = service(HttpConfig::default().max_concurrent_requests(1));
    let first = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, modern("tools/call", json!({"_meta": meta(), "name": "block"}), Some("block"))).await }
    });
    // Until the first request finishes, there is no room for a second.
    let mut refused = None;
    for _ in 0..100 {
        let response = send(&svc, modern("tools/list", json!({"_meta": meta()}), None)).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = refused.expect("a second request is refused while the first holds the only slot");
    assert_eq!(refused.headers()["retry-after"], "1");
    RELEASE.notify_one();
    assert_eq!(first.await.unwrap().status(), StatusCode::OK);
    assert_eq!(send(&svc, modern("tools/list", json!({"_meta": meta()}), None)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cancelled_handler_keeps_its_slot_through_its_grace_period() {
    let limits = keel_mcp::Limits::default().cancel_grace(Duration::from_secs(600));
    let svc = server_with(limits).http_service(HttpConfig::default().max_concurrent_requests(1));
    let call = send(&svc, modern("tools/call", json!({"_meta": meta(), "name": "linger"}), Some("linger")));
    tokio::select! {
        _ = call => panic!("linger answers only when cancelled"),
        _ = LINGER_STARTED.notified() => {}
    }
    // The client left (its response future is dropped): the handler sees the cancellation and cleans up.
    tokio::time::timeout(Duration::from_secs(5), LINGER_CANCELLED.notified()).await.expect("the handler is cancelled");
    let refused = send(&svc, modern("tools/list", json!({"_meta": meta()}), None)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "the lingering handler still holds the only slot");
    LINGER_RELEASE.notify_one();
    tokio::time::timeout(Duration::from_secs(5), LINGER_ENDED.notified()).await.expect("the handler ends");
    // One thread: the task that ran the handler's grace dropped the slot in the poll that ended it, before
    // this test runs again.
    let accepted = send(&svc, modern("tools/list", json!({"_meta": meta()}), None)).await;
    assert_eq!(accepted.status(), StatusCode::OK);

    // The same in a legacy session, on the JSON path.
    let session = initialize(&svc, json!({})).await;
    let linger = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "linger"}});
    let call = send(&svc, legacy(Some(&session), linger));
    tokio::select! {
        _ = call => panic!("linger answers only when cancelled"),
        _ = LINGER_STARTED.notified() => {}
    }
    tokio::time::timeout(Duration::from_secs(5), LINGER_CANCELLED.notified()).await.expect("the handler is cancelled");
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let refused = send(&svc, legacy(Some(&session), list.clone())).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "the lingering handler still holds the only slot");
    LINGER_RELEASE.notify_one();
    tokio::time::timeout(Duration::from_secs(5), LINGER_ENDED.notified()).await.expect("the handler ends");
    assert_eq!(send(&svc, legacy(Some(&session), list)).await.status(), StatusCode::OK);
}
