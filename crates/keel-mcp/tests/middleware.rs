//! Operation middleware (issue 15): layers that pass on, answer, refuse and time out; per-target layers;
//! tower's own layers unchanged; the order of layers; both eras on streams and over HTTP; and the
//! visibility predicate deciding lists and calls alike.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use keel_mcp::client::Client;
use keel_mcp::client::middleware::Outgoing;
use keel_mcp::middleware::from_fn;
use keel_mcp::protocol::tools::CallToolResult;
use keel_mcp::protocol::{ErrorObject, Implementation, ProtocolVersion};
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::middleware::{Next, Operation, OperationLayer, Reply};
use keel_mcp::server::visibility::{Target, Viewer};
use keel_mcp::server::{HandlerError, NoArgs, PromptDef, RequestContext, ResourceDef, Server, ToolDef};
use keel_mcp::transport::memory;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tower::ServiceExt;

const ERAS: [ProtocolVersion; 2] = [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28];

async fn connect(server: &Server, version: &ProtocolVersion) -> Client {
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    Client::builder(Implementation::new("t", "1")).protocol_versions([version.clone()]).connect(b).await.unwrap()
}

fn text(result: &CallToolResult) -> &str {
    result.content[0].as_text().unwrap_or_default()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Echo {
    text: String,
}

/// What the layers and handlers report, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn log_layer(log: &Log, name: &'static str) -> impl OperationLayer {
    let log = log.clone();
    from_fn(move |op: Operation, next: Next| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(format!("{name} {} {}", op.method(), op.target()));
            next.run(op).await
        }
    })
}

#[tokio::test]
async fn a_layer_passes_on_answers_or_refuses_in_both_eras() {
    let seen: Log = Arc::default();
    let record = seen.clone();
    let policy = from_fn(move |op: Operation, next: Next| {
        let record = record.clone();
        async move {
            let arguments = op.arguments().map(|raw| raw.get().to_owned()).unwrap_or_default();
            record.lock().unwrap().push(format!("{} {} {arguments} {:?}", op.method(), op.target(), op.era()));
            match op.target() {
                "cached" => Ok(Reply::Tool(CallToolResult::text("from the layer"))),
                "forbidden" => Err(HandlerError::failed("quota exceeded")),
                "invalid" => Err(HandlerError::Protocol(ErrorObject::invalid_params("refused by policy"))),
                _ => next.run(op).await,
            }
        }
    });
    let server = Server::builder(Implementation::new("t", "1"))
        .layer(policy)
        .tool("echo", "Echoes", |Echo { text }: Echo| async move { text })
        .tool("cached", "Never runs", |_: NoArgs| async { "handler" })
        .tool("forbidden", "Never runs", |_: NoArgs| async { "handler" })
        .tool("invalid", "Never runs", |_: NoArgs| async { "handler" })
        .build();
    for version in &ERAS {
        let client = connect(&server, version).await;
        let echoed = client.call_tool("echo", json!({"text": "hi"})).await.unwrap();
        assert_eq!(text(&echoed), "hi", "{version}: passed on");
        let cached = client.call_tool("cached", json!({})).await.unwrap();
        assert_eq!(text(&cached), "from the layer", "{version}: answered by the layer");
        let forbidden = client.call_tool("forbidden", json!({})).await.unwrap();
        assert!(forbidden.is_error(), "{version}: a tool error");
        assert_eq!(text(&forbidden), "quota exceeded");
        let invalid = client.call_tool("invalid", json!({})).await.unwrap_err();
        assert!(
            matches!(&invalid, keel_mcp::Error::Rpc(e) if e.code == -32602 && e.message == "refused by policy"),
            "{version}: {invalid:?}"
        );
        client.close().await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], r#"tools/call echo {"text":"hi"} Legacy"#);
    assert_eq!(seen[4], r#"tools/call echo {"text":"hi"} Modern"#);
    assert_eq!(seen.len(), 8);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_layer_cancels_the_handler_which_sees_its_token() {
    let (events, mut seen) = mpsc::unbounded_channel::<&'static str>();
    let slow = ToolDef::new("slow", move |ctx: RequestContext, _: NoArgs| {
        let events = events.clone();
        async move {
            ctx.cancellation().cancelled().await;
            // Work after the cancellation: the handler was not simply dropped.
            tokio::task::yield_now().await;
            let _ = events.send("cleaned");
            "cancelled"
        }
    })
    .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)));
    let server = Server::builder(Implementation::new("t", "1"))
        .tool_def(slow)
        .tool("fast", "Answers at once", |_: NoArgs| async { "fast" })
        .build();
    for version in &ERAS {
        let client = connect(&server, version).await;
        let started = tokio::time::Instant::now();
        let result = client.call_tool("slow", json!({})).await.unwrap();
        assert!(result.is_error(), "{version}: {result:?}");
        assert_eq!(text(&result), "the request timed out");
        assert_eq!(started.elapsed(), Duration::from_secs(2), "{version}");
        assert_eq!(seen.recv().await, Some("cleaned"), "{version}");
        // Only the tool with the layer is timed.
        assert_eq!(text(&client.call_tool("fast", json!({})).await.unwrap()), "fast");
        client.close().await;
    }
}

#[tokio::test]
async fn a_tool_layer_applies_to_that_tool_only_after_the_server_layers() {
    let log: Log = Arc::default();
    let server = Server::builder(Implementation::new("t", "1"))
        .layer(log_layer(&log, "server-inner"))
        .layer(log_layer(&log, "server-outer"))
        .tool_def(
            ToolDef::new("audited", |_: NoArgs| async { "a" })
                .layer(log_layer(&log, "tool-inner"))
                .layer(log_layer(&log, "tool-outer")),
        )
        .tool("plain", "No layer of its own", |_: NoArgs| async { "p" })
        .build();
    let client = connect(&server, &ProtocolVersion::V2026_07_28).await;
    client.call_tool("audited", json!({})).await.unwrap();
    client.call_tool("plain", json!({})).await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "server-outer tools/call audited",
            "server-inner tools/call audited",
            "tool-outer tools/call audited",
            "tool-inner tools/call audited",
            "server-outer tools/call plain",
            "server-inner tools/call plain",
        ]
    );
}

#[tokio::test]
async fn resource_and_prompt_layers_see_their_operations() {
    let log: Log = Arc::default();
    let server = Server::builder(Implementation::new("t", "1"))
        .layer(log_layer(&log, "server"))
        .resource(ResourceDef::text("mem://a", "a", "text/plain", "A").layer(log_layer(&log, "resource")))
        .prompt_def(PromptDef::new("greet", |_: NoArgs| async { "hi".to_owned() }).layer(log_layer(&log, "prompt")))
        .build();
    for version in &ERAS {
        let client = connect(&server, version).await;
        let read = client.read_resource("mem://a").await.unwrap();
        assert_eq!(read.contents.len(), 1);
        client.get_prompt("greet", None).await.unwrap();
        client.close().await;
    }
    let log = log.lock().unwrap().clone();
    let expected = [
        "server resources/read mem://a",
        "resource resources/read mem://a",
        "server prompts/get greet",
        "prompt prompts/get greet",
    ];
    assert_eq!(log, [expected, expected].concat());
}

#[tokio::test]
async fn tower_concurrency_limit_holds_calls_until_a_slot_frees() {
    let gate = Arc::new(Semaphore::new(0));
    let (started, mut starts) = mpsc::unbounded_channel::<()>();
    let hold = gate.clone();
    let server = Server::builder(Implementation::new("t", "1"))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1))
        .tool("held", "Waits for the gate", move |_: NoArgs| {
            let (hold, started) = (hold.clone(), started.clone());
            async move {
                let _ = started.send(());
                hold.acquire().await.unwrap().forget();
                "done"
            }
        })
        .build();
    let client = Arc::new(connect(&server, &ProtocolVersion::V2026_07_28).await);
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call_tool("held", json!({})).await }
    });
    starts.recv().await.unwrap();
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.call_tool("held", json!({})).await }
    });
    // The second call waits for the first one's slot: its handler has not started.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(starts.try_recv().is_err(), "the second handler started while the first held the only slot");
    gate.add_permits(1);
    assert_eq!(text(&first.await.unwrap().unwrap()), "done");
    starts.recv().await.unwrap();
    gate.add_permits(1);
    assert_eq!(text(&second.await.unwrap().unwrap()), "done");
}

#[tokio::test(start_paused = true)]
async fn tower_rate_limit_spaces_calls_out() {
    let server = Server::builder(Implementation::new("t", "1"))
        .layer(tower::limit::RateLimitLayer::new(2, Duration::from_secs(10)))
        .tool("ping", "Pings", |_: NoArgs| async { "pong" })
        .build();
    let client = connect(&server, &ProtocolVersion::V2026_07_28).await;
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        client.call_tool("ping", json!({})).await.unwrap();
    }
    // Two calls fit the first window; the third waits for the next.
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

fn who_is_admin(viewer: &Viewer<'_>, target: Target<'_>) -> bool {
    !target.name().starts_with("admin") || viewer.principal().is_some_and(|p| p.has_scope("admin"))
}

fn admin_server(log: &Log) -> Server {
    Server::builder(Implementation::new("t", "1"))
        .visibility(who_is_admin)
        .layer(log_layer(log, "server"))
        .tool("admin_reset", "Resets", |_: NoArgs| async { "reset" })
        .tool("hello", "Says hello", |ctx: RequestContext, _: NoArgs| async move {
            format!("hello {}", ctx.principal().and_then(|p| p.subject.clone()).unwrap_or_default())
        })
        .resource(ResourceDef::text("mem://admin", "admin_notes", "text/plain", "secret"))
        .resource(ResourceDef::text("mem://public", "public", "text/plain", "open"))
        .prompt("admin_prompt", "Admin only", |_: NoArgs| async { "admin".to_owned() })
        .build()
}

fn http_post(body: &Value, modern: bool, session: Option<&str>, scopes: &[&str]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if modern {
        builder =
            builder.header("mcp-protocol-version", "2026-07-28").header("mcp-method", body["method"].as_str().unwrap());
        if let Some(name) = body["params"]["name"].as_str().or(body["params"]["uri"].as_str()) {
            builder = builder.header("mcp-name", name);
        }
    } else {
        builder = builder.header("mcp-protocol-version", "2025-11-25");
    }
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    let mut request = builder.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let mut principal = keel_mcp::server::Principal::default();
    principal.subject = Some("ada".into());
    principal.scopes = scopes.iter().map(|s| s.to_string()).collect();
    request.extensions_mut().insert(Arc::new(principal));
    request
}

async fn answer(service: &keel_mcp::server::http::McpService, request: Request<Full<Bytes>>) -> Value {
    let response = service.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    // A legacy answer may come as one SSE event.
    let json = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or(&text);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list["result"][key].as_array().unwrap().iter().map(|t| t[field].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn lists_and_calls_agree_on_what_a_caller_may_see_over_http_in_both_eras() {
    let log: Log = Arc::default();
    let service = admin_server(&log).http_service(HttpConfig::default());
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for modern in [true, false] {
        for (scopes, admin) in [(&[][..], false), (&["admin"][..], true)] {
            let session = if modern {
                None
            } else {
                let response = service.clone().oneshot(http_post(&init, false, None, scopes)).await.unwrap();
                let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
                let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                service.clone().oneshot(http_post(&initialized, false, Some(&session), scopes)).await.unwrap();
                Some(session)
            };
            let post = |method: &str, params: Value| {
                let mut params = params;
                if modern {
                    params["_meta"] = meta.clone();
                }
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                http_post(&body, modern, session.as_deref(), scopes)
            };
            let tools = answer(&service, post("tools/list", json!({}))).await;
            let expected: &[&str] = if admin { &["admin_reset", "hello"] } else { &["hello"] };
            assert_eq!(names(&tools, "tools", "name"), expected, "modern {modern}, admin {admin}");
            let resources = answer(&service, post("resources/list", json!({}))).await;
            let expected: &[&str] = if admin { &["admin_notes", "public"] } else { &["public"] };
            assert_eq!(names(&resources, "resources", "name"), expected);
            let prompts = answer(&service, post("prompts/list", json!({}))).await;
            assert_eq!(names(&prompts, "prompts", "name").len(), usize::from(admin));

            let reset = answer(&service, post("tools/call", json!({"name": "admin_reset"}))).await;
            let read = answer(&service, post("resources/read", json!({"uri": "mem://admin"}))).await;
            let prompt = answer(&service, post("prompts/get", json!({"name": "admin_prompt"}))).await;
            if admin {
                assert_eq!(reset["result"]["content"][0]["text"], "reset");
                assert_eq!(read["result"]["contents"][0]["text"], "secret");
                assert_eq!(prompt["result"]["messages"][0]["content"]["text"], "admin");
            } else {
                // Hidden is unknown: the same errors as for names that do not exist.
                let unknown = answer(&service, post("tools/call", json!({"name": "no_such_tool"}))).await;
                assert_eq!(reset["error"]["code"], unknown["error"]["code"], "{reset}");
                assert!(reset["error"]["message"].as_str().unwrap().contains("admin_reset"), "{reset}");
                let missing = answer(&service, post("resources/read", json!({"uri": "mem://nothing"}))).await;
                assert_eq!(read["error"]["code"], missing["error"]["code"], "{read}");
                assert_eq!(prompt["error"]["message"], "unknown prompt: admin_prompt");
            }
            // The layers see the principal over HTTP, in both eras.
            let hello = answer(&service, post("tools/call", json!({"name": "hello"}))).await;
            assert_eq!(hello["result"]["content"][0]["text"], "hello ada");
        }
    }
    // A hidden target never reached the layers.
    let log = log.lock().unwrap().clone();
    assert!(log.iter().filter(|l| l.contains("admin")).count() == 6, "{log:?}");
}

#[tokio::test]
async fn without_a_principal_hidden_targets_stay_hidden_on_streams() {
    let log: Log = Arc::default();
    let client = connect(&admin_server(&log), &ProtocolVersion::V2025_11_25).await;
    let tools = client.list_tools(None).await.unwrap();
    assert_eq!(tools.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["hello"]);
    assert!(client.call_tool("admin_reset", json!({})).await.is_err());
}

/// A server whose layer refuses the first two attempts at `flaky` and records the tenant each attempt
/// carried in its `_meta`.
fn flaky_server(attempts: &Log) -> Server {
    let attempts = attempts.clone();
    Server::builder(Implementation::new("t", "1"))
        .layer(from_fn(move |op: Operation, next: Next| {
            let attempts = attempts.clone();
            async move {
                let tenant = op.meta().and_then(|m| m.other.get("example.com/tenant")).cloned();
                let count = {
                    let mut attempts = attempts.lock().unwrap();
                    attempts.push(format!("{} {tenant:?}", op.target()));
                    attempts.len()
                };
                if count < 3 {
                    return Err(HandlerError::Protocol(ErrorObject::internal("busy, try again")));
                }
                next.run(op).await
            }
        }))
        .tool("flaky", "Works on the third attempt", |_: NoArgs| async { "finally" })
        .build()
}

#[tokio::test]
async fn a_client_layer_retries_tags_and_audits_requests_in_both_eras() {
    for version in &ERAS {
        let attempts: Log = Arc::default();
        let audit: Log = Arc::default();
        let record = audit.clone();
        let retry = from_fn(move |mut request: Outgoing, next: keel_mcp::client::middleware::Next| {
            let record = record.clone();
            async move {
                request.meta_mut().insert("example.com/tenant".into(), "acme".into());
                let mut tries = 0;
                loop {
                    tries += 1;
                    let answer = next.clone().run(request.clone()).await;
                    record.lock().unwrap().push(format!("{} ok={}", request.method(), answer.is_ok()));
                    match answer {
                        Err(keel_mcp::Error::Rpc(e)) if e.message == "busy, try again" && tries < 3 => continue,
                        other => return other,
                    }
                }
            }
        });
        let (a, b) = memory::pair();
        let _running = flaky_server(&attempts).serve(a);
        let client = Client::builder(Implementation::new("t", "1"))
            .protocol_versions([version.clone()])
            .layer(retry)
            .connect(b)
            .await
            .unwrap();
        let result = client.call_tool("flaky", json!({})).await.unwrap();
        assert_eq!(text(&result), "finally", "{version}");
        assert_eq!(*attempts.lock().unwrap(), [r#"flaky Some(String("acme"))"#; 3], "{version}");
        assert_eq!(*audit.lock().unwrap(), ["tools/call ok=false", "tools/call ok=false", "tools/call ok=true"]);
        // Every request goes through the layers, lists included.
        client.list_tools(None).await.unwrap();
        assert_eq!(audit.lock().unwrap().last().unwrap(), "tools/list ok=true", "{version}");
        client.close().await;
    }
}

#[tokio::test(start_paused = true)]
async fn tower_timeout_works_on_the_client_too() {
    let server = Server::builder(Implementation::new("t", "1"))
        .tool("sleepy", "Sleeps", |_: NoArgs| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "awake"
        })
        .build();
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    let client = Client::builder(Implementation::new("t", "1"))
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1)))
        .connect(b)
        .await
        .unwrap();
    let error = client.call_tool("sleepy", json!({})).await.unwrap_err();
    assert!(matches!(&error, keel_mcp::Error::Protocol(m) if m.contains("timed out")), "{error:?}");
}

#[tokio::test]
async fn visibility_and_definition_scopes_compose_in_lists_and_calls() {
    let server = Server::builder(Implementation::new("t", "1"))
        .visibility(who_is_admin)
        .tool("admin_reset", "Resets", |_: NoArgs| async { "reset" })
        .tool_def(ToolDef::new("notes", |_: NoArgs| async { "notes" }).scopes(["notes:read"]))
        .tool("hello", "Says hello", |_: NoArgs| async { "hello" })
        .build();
    let service = server.http_service(HttpConfig::default());
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let post = |method: &str, params: Value, scopes: &[&str]| {
        let mut params = params;
        params["_meta"] = meta.clone();
        http_post(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}), true, None, scopes)
    };
    for (scopes, expected) in [
        (&[][..], &["hello"][..]),
        (&["notes:read"][..], &["notes", "hello"][..]),
        (&["admin", "notes:read"][..], &["admin_reset", "notes", "hello"][..]),
    ] {
        let tools = answer(&service, post("tools/list", json!({}), scopes)).await;
        assert_eq!(names(&tools, "tools", "name"), expected, "scopes {scopes:?}");
    }
    // Hidden is unknown; visible but not granted is an insufficient-scope refusal the client can step up from.
    let hidden = answer(&service, post("tools/call", json!({"name": "admin_reset"}), &["notes:read"])).await;
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");
    let scoped = answer(&service, post("tools/call", json!({"name": "notes"}), &[])).await;
    assert_eq!(scoped["error"]["code"], -32003, "{scoped}");
    let granted = answer(&service, post("tools/call", json!({"name": "notes"}), &["notes:read"])).await;
    assert_eq!(granted["result"]["content"][0]["text"], "notes");
}
