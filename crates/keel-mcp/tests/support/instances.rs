//! Several in-process instances of one server sharing legacy sessions, driven request by request through
//! `tower::ServiceExt::oneshot`: a tiny legacy-era client for the shared-store tests.

#![allow(dead_code, reason = "each test file uses part of the helper")]

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::elicitation::{ElicitParams, PrimitiveSchema, RequestedSchema};
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::server::http::{McpService, ResponseBody};
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const LEGACY: &str = "2025-11-25";

/// The server every instance runs: `echo`, `count`, which streams `n` progress notifications, and more.
pub fn server() -> Server {
    Server::builder(Implementation::new("shared-test", "1.0.0"))
        .tool("echo", "Echoes", |a: EchoArgs| async move { a.text })
        .tool("count", "Streams n progress notifications", |ctx: RequestContext, a: CountArgs| async move {
            for i in 1..=a.n {
                ctx.progress(i as f64, Some(a.n as f64), None).await;
            }
            format!("counted {}", a.n)
        })
        .tool("nothing", "Does nothing", |_: NoArgs| async { "nothing" })
        .tool(
            "warn",
            "Logs a warning (sent when the session asked for warnings)",
            |ctx: RequestContext, _: NoArgs| async move {
                ctx.log(LoggingLevel::Warning, None, "careful").await;
                "warned"
            },
        )
        .tool("ask", "Asks the user for a name", |ctx: RequestContext, _: NoArgs| async move {
            let text = json!({"type": "string"});
            let schema = RequestedSchema::new(
                vec![("name".into(), PrimitiveSchema::from_object(text.as_object().unwrap().clone()))],
                &["name"],
            );
            let answer = ctx.elicit("name", ElicitParams::form("Name?", schema)).await?;
            let name = answer.content.and_then(|c| c.get("name").map(|v| json!(v))).unwrap_or_default();
            Ok::<_, HandlerError>(format!("hello {}", name.as_str().unwrap_or_default()))
        })
        .tool(
            "poll",
            "Closes its SSE stream (SEP-1699 polling), then answers once let go",
            |ctx: RequestContext, _: NoArgs| async move {
                ctx.close_sse_stream().await;
                POLL_GO_ON.notified().await;
                "polled"
            },
        )
        .tool(
            "linger",
            "Sends one progress notification, then runs until let go or cancelled",
            |ctx: RequestContext, _: NoArgs| async move {
                ctx.progress(1.0, None, None).await;
                tokio::select! {
                    _ = LINGER_GO_ON.notified() => "let go",
                    _ = ctx.cancellation().cancelled() => {
                        LINGER_CANCELLED.notify_one();
                        "cancelled"
                    }
                }
            },
        )
        .tool("wait_cancel", "Runs until cancelled", |ctx: RequestContext, _: NoArgs| async move {
            WAIT_STARTED.notify_one();
            ctx.cancellation().cancelled().await;
            WAIT_CANCELLED.notify_one();
            "cancelled"
        })
        .build()
}

/// Lets `poll` answer.
pub static POLL_GO_ON: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// Lets `linger` answer.
pub static LINGER_GO_ON: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// `linger` saw its cancellation.
pub static LINGER_CANCELLED: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// `wait_cancel` started.
pub static WAIT_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// `wait_cancel` saw its cancellation.
pub static WAIT_CANCELLED: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    pub text: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct CountArgs {
    pub n: u32,
}

pub fn request(method: Method, session: Option<&str>, body: Option<&Value>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", "localhost")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session).header("mcp-protocol-version", LEGACY);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).unwrap()
}

pub async fn send(service: &McpService, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
    service.clone().oneshot(request).await.unwrap()
}

/// `initialize` on `service`: the response (its session id in `Mcp-Session-Id`).
pub async fn initialize(service: &McpService) -> Response<ResponseBody> {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY,
        "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "shared-test-client", "version": "1.0.0"},
    }});
    send(service, request(Method::POST, None, Some(&body))).await
}

/// A new session, initialized (both steps) on `service`.
pub async fn session(service: &McpService) -> String {
    let response = initialize(service).await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = send(service, request(Method::POST, Some(&id), Some(&initialized))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    id
}

/// A request in `session` on `service`.
pub async fn call(service: &McpService, session: &str, id: u64, method: &str, params: Value) -> Response<ResponseBody> {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    send(service, request(Method::POST, Some(session), Some(&body))).await
}

/// A notification in `session` on `service`.
pub async fn notify(service: &McpService, session: &str, method: &str, params: Value) -> Response<ResponseBody> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params});
    send(service, request(Method::POST, Some(session), Some(&body))).await
}

/// A modern (2026-07-28) request with its headers; `name` goes in `Mcp-Name`.
pub fn modern(method: &str, name: &str, mut params: Value, capabilities: Value) -> Request<Full<Bytes>> {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A modern `tools/call` of `echo`, which needs no session.
pub fn modern_echo(text: &str) -> Request<Full<Bytes>> {
    modern("tools/call", "echo", json!({"name": "echo", "arguments": {"text": text}}), json!({}))
}

/// Calls `ask` on `on` and answers its elicitation with `name` through `via`; the call's answer text.
pub async fn ask_answered_elsewhere(on: &McpService, via: &McpService, session: &str, name: &str) -> String {
    let mut stream = call_tool(on, session, 1, "ask", json!({})).await.into_body();
    let asked = next_request(&mut stream, "elicitation/create").await;
    let reply = json!({"action": "accept", "content": {"name": name}});
    assert_eq!(answer(via, session, &asked, reply).await.status(), StatusCode::ACCEPTED);
    let rest = events(&mut stream, usize::MAX).await;
    let result = rest.iter().filter_map(|e| e.data.as_ref()).find(|d| d["id"] == 1).expect("the call's answer");
    result["result"]["content"][0]["text"].as_str().expect("a text result").to_owned()
}

/// With the client's standalone stream open on `via` (its priming event read), calls `ask` as request `id`
/// on `on` from a client that takes JSON only, and answers the question that reaches `via`'s stream with
/// `name`; the call's answer text.
pub async fn ask_through_standalone(on: &McpService, via: &McpService, session: &str, id: u64, name: &str) -> String {
    let response = get(via, session, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut standalone = response.into_body();
    assert_eq!(events(&mut standalone, 1).await.len(), 1, "the priming event");
    let call = {
        let (on, session) = (on.clone(), session.to_owned());
        tokio::spawn(async move { json_body(call_tool_json_only(&on, &session, id, "ask").await).await })
    };
    let asked = next_request(&mut standalone, "elicitation/create").await;
    let reply = json!({"action": "accept", "content": {"name": name}});
    assert_eq!(answer(via, session, &asked, reply).await.status(), StatusCode::ACCEPTED);
    let answered = call.await.unwrap();
    answered["result"]["content"][0]["text"].as_str().expect("a text result").to_owned()
}

/// `tools/call` of `name` in `session` on `service`, from a client that takes JSON only (so the tool's
/// messages to the client go on the session's standalone stream).
pub async fn call_tool_json_only(service: &McpService, session: &str, id: u64, name: &str) -> Response<ResponseBody> {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": {}}});
    let mut request = request(Method::POST, Some(session), Some(&body));
    request.headers_mut().insert("accept", "application/json".parse().unwrap());
    send(service, request).await
}

/// The client's answer to server request `id`, POSTed in `session` to `service`.
pub async fn answer(service: &McpService, session: &str, id: &Value, result: Value) -> Response<ResponseBody> {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
    send(service, request(Method::POST, Some(session), Some(&body))).await
}

/// Reads events from `body` until one carries a request of `method`; its id.
pub async fn next_request(body: &mut ResponseBody, method: &str) -> Value {
    loop {
        let batch = events(body, 1).await;
        assert!(!batch.is_empty(), "the stream ended before a {method} request");
        if let Some(data) = batch.iter().filter_map(|e| e.data.as_ref()).find(|d| d["method"] == method) {
            return data["id"].clone();
        }
    }
}

/// `tools/call` of `name` in `session` on `service`.
pub async fn call_tool(
    service: &McpService,
    session: &str,
    id: u64,
    name: &str,
    args: Value,
) -> Response<ResponseBody> {
    call(service, session, id, "tools/call", json!({"name": name, "arguments": args})).await
}

/// GET in `session` on `service`, resuming after `last_event_id` when given.
pub async fn get(service: &McpService, session: &str, last_event_id: Option<&str>) -> Response<ResponseBody> {
    let mut request = request(Method::GET, Some(session), None);
    if let Some(last) = last_event_id {
        request.headers_mut().insert("last-event-id", last.parse().unwrap());
    }
    send(service, request).await
}

/// DELETE of `session` on `service`.
pub async fn delete(service: &McpService, session: &str) -> Response<ResponseBody> {
    send(service, request(Method::DELETE, Some(session), None)).await
}

pub async fn body_text(response: Response<ResponseBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub async fn json_body(response: Response<ResponseBody>) -> Value {
    serde_json::from_str(&body_text(response).await).unwrap()
}

/// One SSE event: its id and its data (`None` for the priming event's empty data).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub data: Option<Value>,
}

/// Reads SSE events from `body` until it ends or `limit` events came.
pub async fn events(body: &mut ResponseBody, limit: usize) -> Vec<Event> {
    let mut text = String::new();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(frame) = body.frame().await else { break };
        let Ok(data) = frame.unwrap().into_data() else { continue };
        text.push_str(std::str::from_utf8(&data).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut event = Event { id: None, data: None };
            for line in block.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    event.id = Some(id.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ").filter(|d| !d.is_empty()) {
                    event.data = Some(serde_json::from_str(data).unwrap());
                }
            }
            if event.id.is_some() || event.data.is_some() {
                out.push(event);
            }
        }
    }
    out
}
