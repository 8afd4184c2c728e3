//! Adversarial tests of the core (issue 10): each drives a running server the way a hostile or careless peer
//! would, and asserts both the refusal and that a well-behaved request is served meanwhile.
//!
//! Stream tests speak raw JSON-RPC over the in-memory transport, so the test controls every frame. Tests whose
//! failure mode is a wedged runtime run on a two-worker runtime that is abandoned (not joined) at the end, so
//! that even against a server that wedges a worker the test ends, failing, within its bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use keel_mcp::Limits;
use keel_mcp::engine::Connection;
use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::elicitation::{ElicitParams, PrimitiveSchema, RequestedSchema};
use keel_mcp::protocol::sampling::CreateMessageParams;
use keel_mcp::server::http::{HttpConfig, McpService, PeerAddr};
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server, TaskSupport, TemplateDef, ToolDef};
use keel_mcp::transport::memory::{self, MemoryReader, MemoryWriter};
use keel_mcp::transport::{FrameReader, FrameWriter, Transport};
use serde_json::{Value, json};
use tower::ServiceExt;

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";
/// How long any single answer may take before the test fails.
const BOUND: Duration = Duration::from_secs(5);

/// Runs `test` on a two-worker runtime and abandons the runtime afterwards: a worker stuck in a handler that
/// never yields must not keep the test from ending.
fn run<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(test)));
    runtime.shutdown_background();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A raw JSON-RPC client over the in-memory transport.
struct Raw {
    reader: MemoryReader,
    writer: MemoryWriter,
    _connection: Connection,
}

impl Raw {
    fn connect(server: &Server) -> Raw {
        let (ours, theirs) = memory::pair();
        let connection = server.serve(theirs);
        let (reader, writer) = ours.split();
        Raw { reader, writer, _connection: connection }
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.writer.write_frame(text.as_bytes()).await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let frame = tokio::time::timeout(BOUND, self.reader.read_frame())
            .await
            .expect("the server answers within the bound")
            .expect("the connection is open")
            .unwrap();
        serde_json::from_slice(&frame).unwrap()
    }

    /// Sends a request and returns its answer, answering nothing else on the way.
    async fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        let answer = self.recv().await;
        assert_eq!(answer["id"], id, "unexpected frame: {answer}");
        answer
    }

    /// Opens a legacy session whose client can sample and elicit.
    async fn initialize(&mut self) {
        let params = json!({
            "protocolVersion": LEGACY,
            "capabilities": {"sampling": {}, "elicitation": {}},
            "clientInfo": {"name": "raw", "version": "1"}
        });
        let answer = self.call(0, "initialize", params).await;
        assert!(answer["result"].is_object(), "{answer}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    }
}

/// `_meta` of a modern request, with the client's capabilities.
fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

fn tasks_meta() -> Value {
    meta(json!({"elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}))
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {answer}"))
}

fn name_form() -> ElicitParams {
    let property = PrimitiveSchema::from_object(json!({"type": "string"}).as_object().unwrap().clone());
    ElicitParams::form("Name?", RequestedSchema::new(vec![("name".into(), property)], &["name"]))
}

/// Tells the test when it is dropped: proof that a handler's future was dropped, not left running.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Fired when the `forever` tool's future is dropped.
type DroppedSignal = Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>;

fn server(limits: Limits) -> Server {
    server_with_signal(limits, DroppedSignal::default())
}

fn server_with_signal(limits: Limits, dropped: DroppedSignal) -> Server {
    Server::builder(Implementation::new("adversarial", "1.0.0"))
        .limits(limits)
        .tool("ping_tool", "Answers at once", |_: NoArgs| async { "pong" })
        .tool("sample", "Asks the client's model", |ctx: RequestContext, _: NoArgs| async move {
            let params: CreateMessageParams = serde_json::from_value(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
                "maxTokens": 10
            }))
            .unwrap();
            let answer = ctx.create_message("sample", params).await?;
            Ok::<_, HandlerError>(answer.model)
        })
        .tool("ask", "Asks the user for a name", |ctx: RequestContext, _: Value| async move {
            let answer = ctx.elicit("name", name_form()).await?;
            Ok::<_, HandlerError>(format!("{:?}", answer.content))
        })
        .tool_def(
            ToolDef::new("forever", move |ctx: RequestContext, _: NoArgs| {
                let dropped = dropped.clone();
                async move {
                    ctx.continue_as_task().await?;
                    let _signal = DropSignal(dropped.lock().unwrap().take());
                    std::future::pending::<()>().await;
                    Ok::<_, HandlerError>("never")
                }
            })
            .description("Runs as a task and never ends")
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            ToolDef::new("task_ask", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                match ctx.elicit("name", name_form()).await {
                    Ok(_) => Ok::<_, HandlerError>("answered".to_owned()),
                    Err(_) => Ok("gave up waiting".to_owned()),
                }
            })
            .description("Runs as a task and asks a question")
            .task_support(TaskSupport::Optional),
        )
        .resource_template(TemplateDef::new("x://{+a}/{+b}/{c}.{d}", "deep", |_, uri, vars| async move {
            keel_mcp::protocol::ResourceContents::text(uri, None, format!("{vars:?}").as_str())
        }))
        .resource_template(TemplateDef::new("x://item/{id}", "item", |_, uri, _| async move {
            keel_mcp::protocol::ResourceContents::text(uri, None, "item")
        }))
        .build()
}

// Finding 1: URI-template matching was quadratic (and worse with several variables) and never yielded.
#[test]
fn long_resource_uris_cost_linear_work_and_others_are_served_meanwhile() {
    run(async {
        let server = server(Limits::default());
        let mut raw = Raw::connect(&server);
        let m = meta(json!({}));
        // Just under the default URI bound, shaped so that every split point looks promising.
        let uri = format!("x://{}", "/a.b".repeat(2000));
        raw.send(json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri, "_meta": m}}))
            .await;
        raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list", "params": {"_meta": m}})).await;
        let mut answered = Vec::new();
        for _ in 0..2 {
            let answer = raw.recv().await;
            assert!(answer["result"].is_object(), "{answer}");
            answered.push(answer["id"].as_u64().unwrap());
        }
        answered.sort();
        assert_eq!(answered, [1, 2]);
        // Past the bound (here about 4 MB, close to the largest message): refused before any matching.
        let uri = format!("x://{}", "/a.b".repeat(1_000_000));
        let answer = raw.call(3, "resources/read", json!({"uri": uri, "_meta": m})).await;
        assert_eq!(error_code(&answer), -32602, "{answer}");
        let answer = raw.call(4, "resources/list", json!({"_meta": m})).await;
        assert!(answer["result"]["resources"].is_array());
    });
}

// Finding 5: resources/subscribe took any URI, unknown ones included, into an unbounded set.
#[test]
fn subscriptions_are_bounded_per_session_and_known_only() {
    run(async {
        let server = server(Limits::default());
        let mut raw = Raw::connect(&server);
        raw.initialize().await;
        let answer = raw.call(1, "resources/subscribe", json!({"uri": "x://nowhere"})).await;
        assert_eq!(error_code(&answer), -32002, "unknown resources are not found: {answer}");
        let long = format!("x://item/{}", "i".repeat(20_000));
        let answer = raw.call(2, "resources/subscribe", json!({"uri": long})).await;
        assert_eq!(error_code(&answer), -32602, "{answer}");
        // Use up the default allowance, in batches that fit the transport's buffers.
        let limit = Limits::default().max_subscriptions as u64;
        for batch in (0..limit).collect::<Vec<_>>().chunks(50) {
            for &i in batch {
                let params = json!({"uri": format!("x://item/{i}")});
                raw.send(json!({"jsonrpc": "2.0", "id": 10 + i, "method": "resources/subscribe", "params": params}))
                    .await;
            }
            for _ in batch {
                let answer = raw.recv().await;
                assert!(answer["result"].is_object(), "{answer}");
            }
        }
        let answer = raw.call(5_000, "resources/subscribe", json!({"uri": "x://item/one-too-many"})).await;
        assert_eq!(error_code(&answer), -32602, "past the allowance: {answer}");
        let answer = raw.call(5_001, "resources/subscribe", json!({"uri": "x://item/0"})).await;
        assert!(answer["result"].is_object(), "subscribing again is idempotent: {answer}");
        let answer = raw.call(5_002, "resources/unsubscribe", json!({"uri": "x://item/0"})).await;
        assert!(answer["result"].is_object(), "{answer}");
        let answer = raw.call(5_003, "resources/subscribe", json!({"uri": "x://item/one-too-many"})).await;
        assert!(answer["result"].is_object(), "room again after an unsubscribe: {answer}");
        let answer = raw.call(5_004, "tools/list", json!({})).await;
        assert!(answer["result"]["tools"].is_array());
    });
}

async fn create_task(raw: &mut Raw, id: u64, tool: &str) -> Value {
    raw.call(id, "tools/call", json!({"name": tool, "arguments": {}, "_meta": tasks_meta()})).await
}

async fn task_status(raw: &mut Raw, id: u64, task_id: &Value) -> Value {
    raw.call(id, "tasks/get", json!({"taskId": task_id, "_meta": tasks_meta()})).await
}

// Finding 6: an expired task was dropped from the table while its handler ran on forever.
#[tokio::test(start_paused = true)]
async fn an_expired_task_is_cancelled_and_its_handler_dropped() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let server = server_with_signal(Limits::default(), Arc::new(std::sync::Mutex::new(Some(dropped_tx))));
    let mut raw = Raw::connect(&server);
    let created = create_task(&mut raw, 1, "forever").await;
    let task_id = created["result"]["taskId"].clone();
    assert_eq!(created["result"]["status"], "working", "{created}");
    // Time runs only in the test's clock: the task outlives its 5-minute life at once.
    tokio::time::timeout(Duration::from_secs(3600), dropped_rx)
        .await
        .expect("the expired task's handler is dropped")
        .unwrap();
    let answer = task_status(&mut raw, 2, &task_id).await;
    assert_eq!(error_code(&answer), -32602, "an expired task is forgotten: {answer}");
    let answer = create_task(&mut raw, 3, "ping_tool").await;
    assert_eq!(answer["result"]["content"][0]["text"], "pong");
}

// Finding 6: a task waiting for input waited forever.
#[tokio::test(start_paused = true)]
async fn a_task_waiting_for_input_times_out() {
    let server = server(Limits::default());
    let mut raw = Raw::connect(&server);
    let created = create_task(&mut raw, 1, "task_ask").await;
    let task_id = created["result"]["taskId"].clone();
    let mut status = Value::Null;
    // Poll in the test's clock, well within the task's life and past the input timeout.
    for id in 2..42 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        status = task_status(&mut raw, id, &task_id).await;
        if status["result"]["status"] == "completed" {
            break;
        }
    }
    assert_eq!(status["result"]["status"], "completed", "{status}");
    assert_eq!(status["result"]["result"]["content"][0]["text"], "gave up waiting");
}

// Finding 6: 10,000 tasks from one client blocked every client.
#[tokio::test]
async fn one_client_cannot_take_every_task_slot() {
    let server = server(Limits::default());
    let mut greedy = Raw::connect(&server);
    let allowance = Limits::default().max_tasks_per_client as u64;
    for id in 0..allowance {
        let created = create_task(&mut greedy, id, "forever").await;
        assert_eq!(created["result"]["status"], "working", "{created}");
    }
    let refused = create_task(&mut greedy, allowance, "forever").await;
    assert_eq!(error_code(&refused), -32603, "past the per-client allowance: {refused}");
    let mut other = Raw::connect(&server);
    let created = create_task(&mut other, 1, "forever").await;
    assert_eq!(created["result"]["status"], "working", "another client still gets a task: {created}");
}

/// A stateless HTTP POST of `body`, a `method` request.
fn modern_post(method: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A stateless `tools/call` of `tool` as a task, from `peer` (or from nobody knows where).
async fn create_task_over_http(service: &McpService, peer: Option<&str>, tool: &str) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": tasks_meta()}
    });
    let mut request = modern_post("tools/call", &body.to_string());
    request.headers_mut().insert("mcp-name", tool.parse().unwrap());
    if let Some(peer) = peer {
        request.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
    }
    let response = tokio::time::timeout(BOUND, service.clone().oneshot(request)).await.unwrap().unwrap();
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

// Stateless HTTP requests shared one task allowance: one peer could take every client's.
#[tokio::test]
async fn stateless_peers_each_get_their_own_task_allowance() {
    let service = server(Limits::default().max_tasks_per_client(1)).http_service(HttpConfig::default());
    let created = create_task_over_http(&service, Some("127.0.0.1:40000"), "forever").await;
    assert_eq!(created["result"]["status"], "working", "{created}");
    // Another connection from the same address is the same peer.
    let refused = create_task_over_http(&service, Some("127.0.0.1:40001"), "forever").await;
    assert_eq!(error_code(&refused), -32603, "past the peer's allowance: {refused}");
    let other = create_task_over_http(&service, Some("127.0.0.2:40000"), "forever").await;
    assert_eq!(other["result"]["status"], "working", "another peer still gets a task: {other}");
    let v6 = create_task_over_http(&service, Some("[2001:db8::1]:40000"), "forever").await;
    assert_eq!(v6["result"]["status"], "working", "{v6}");
    let same_64 = create_task_over_http(&service, Some("[2001:db8::2]:40000"), "forever").await;
    assert_eq!(error_code(&same_64), -32603, "an IPv6 peer counts by its /64: {same_64}");
    // Requests that do not say who sent them share one allowance of their own.
    let unknown = create_task_over_http(&service, None, "forever").await;
    assert_eq!(unknown["result"]["status"], "working", "{unknown}");
    let refused = create_task_over_http(&service, None, "forever").await;
    assert_eq!(error_code(&refused), -32603, "{refused}");
}

// Finding 11: the read loop stopped reading while a request waited for a slot, so the answers to the
// handlers' own sampling requests were never read.
#[test]
fn sampling_answers_are_read_while_requests_wait_for_a_slot() {
    run(async {
        let server = server(Limits::default().max_concurrent_requests(2));
        let mut raw = Raw::connect(&server);
        raw.initialize().await;
        let calls = 4;
        for id in 1..=calls {
            raw.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "sample"}})).await;
        }
        raw.send(json!({"jsonrpc": "2.0", "id": 99, "method": "ping"})).await;
        let (mut results, mut pinged) = (0, false);
        while results < calls || !pinged {
            let frame = raw.recv().await;
            if frame["method"] == "sampling/createMessage" {
                let answer = json!({"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"});
                raw.send(json!({"jsonrpc": "2.0", "id": frame["id"], "result": answer})).await;
            } else if frame["id"] == 99 {
                pinged = true;
            } else {
                assert_eq!(frame["result"]["content"][0]["text"], "m", "{frame}");
                results += 1;
            }
        }
    });
}

// Finding 11: requests waiting for a slot are bounded too.
#[test]
fn requests_past_the_queue_are_refused_at_once() {
    run(async {
        let limits = Limits::default().max_concurrent_requests(1).max_queued_requests(1);
        let server = server(limits);
        let mut raw = Raw::connect(&server);
        raw.initialize().await;
        for id in 1..=3 {
            raw.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "sample"}})).await;
        }
        let mut refused = Vec::new();
        let mut results = 0;
        while results < 2 || refused.is_empty() {
            let frame = raw.recv().await;
            if frame["method"] == "sampling/createMessage" {
                let answer = json!({"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"});
                raw.send(json!({"jsonrpc": "2.0", "id": frame["id"], "result": answer})).await;
            } else if frame.get("error").is_some() {
                assert_eq!(error_code(&frame), -32603, "{frame}");
                refused.push(frame["id"].clone());
            } else {
                results += 1;
            }
        }
        assert_eq!(refused, [json!(3)]);
    });
}

// Finding 16: a requestState issued for one call was accepted on a call with other arguments.
#[test]
fn request_state_is_bound_to_the_arguments_of_its_call() {
    run(async {
        let server = server(Limits::default());
        let mut raw = Raw::connect(&server);
        let m = meta(json!({"elicitation": {}}));
        let first = raw.call(1, "tools/call", json!({"name": "ask", "arguments": {"x": 1}, "_meta": m})).await;
        assert_eq!(first["result"]["resultType"], "input_required", "{first}");
        let state = first["result"]["requestState"].clone();
        let answers = json!({"name": {"action": "accept", "content": {"name": "Ada"}}});
        let retry = |id: u64, arguments: Value| {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "ask", "arguments": arguments, "inputResponses": answers, "requestState": state, "_meta": m
            }})
        };
        raw.send(retry(2, json!({"x": 2}))).await;
        let replayed = raw.recv().await;
        assert_eq!(error_code(&replayed), -32602, "a state from another call is refused: {replayed}");
        raw.send(retry(3, json!({"x": 1}))).await;
        let honest = raw.recv().await;
        assert_eq!(honest["result"]["resultType"], "complete", "{honest}");
    });
}

// Finding 17: a message given as a JSON array, or a request with a null id, was accepted.
#[test]
fn positional_arrays_and_null_ids_are_invalid_requests_on_every_transport() {
    run(async {
        let server = server(Limits::default());
        let mut raw = Raw::connect(&server);
        raw.send_text(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).await;
        raw.send_text(r#"["2.0",7,"ping"]"#).await;
        raw.send_text(r#"{"jsonrpc":"2.0","id":8,"method":"ping"}"#).await;
        let first = raw.recv().await;
        assert_eq!(error_code(&first), -32600, "a null id is no notification: {first}");
        assert!(first.get("id").is_none());
        let second = raw.recv().await;
        assert_eq!(error_code(&second), -32600, "{second}");
        let third = raw.recv().await;
        assert_eq!(third["id"], 8);

        let service = server.http_service(HttpConfig::default());
        let post = |body: &str| modern_post("server/discover", body);
        let discover =
            json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta(json!({}))}});
        let positional = json!(["2.0", 1, "server/discover", {"_meta": meta(json!({}))}]);
        let null_id =
            json!({"jsonrpc": "2.0", "id": null, "method": "server/discover", "params": {"_meta": meta(json!({}))}});
        for bad in [positional, null_id] {
            let response = service.clone().oneshot(post(&bad.to_string())).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
            let body: Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
            assert_eq!(error_code(&body), -32600, "{bad}");
        }
        let response = service.clone().oneshot(post(&discover.to_string())).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    });
}
