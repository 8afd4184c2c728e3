//! What a server author meets on the first day (issue 12): cancellation a handler can see, registration
//! mistakes caught early, `?` on any error without leaking it, structured output with its schema, resource
//! not-found, the HTTP request and shared state in the context. (Request spans: `request_spans.rs`.)

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use keel_mcp::client::Client;
use keel_mcp::client::http::HttpTransport;
use keel_mcp::engine::{CancellationToken, RequestOptions};
use keel_mcp::protocol::{CallToolParams, Implementation, ProtocolVersion};
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{HandlerError, Json, NoArgs, RequestContext, Server, TemplateDef};
use keel_mcp::transport::memory;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;

const ERAS: [ProtocolVersion; 2] = [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28];

/// What the cancellation tools report: `cleaned` once a handler ran code after its token fired,
/// `dropped` when a handler's future was dropped.
struct Events(mpsc::UnboundedSender<&'static str>);

/// Sends `dropped` when the handler's future is dropped.
struct OnDrop(mpsc::UnboundedSender<&'static str>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

fn cancellation_server(events: mpsc::UnboundedSender<&'static str>, grace: Duration) -> Server {
    Server::builder(Implementation::new("cancel", "1"))
        .limits(keel_mcp::Limits::default().cancel_grace(grace))
        .state(Events(events))
        .tool("cleanup", "Cleans up when cancelled", |ctx: RequestContext, _: NoArgs| async move {
            let events = ctx.state::<Events>()?.0.clone();
            ctx.cancellation().cancelled().await;
            // Work after the cancellation: only possible when the handler is not dropped at once.
            tokio::task::yield_now().await;
            let _ = events.send("cleaned");
            Ok::<_, HandlerError>("cancelled")
        })
        .tool("stubborn", "Ignores cancellation", |ctx: RequestContext, _: NoArgs| async move {
            let _guard = OnDrop(ctx.state::<Events>()?.0.clone());
            std::future::pending::<()>().await;
            Ok::<_, HandlerError>("never")
        })
        .build()
}

/// Calls `tool` and cancels the call once `started` says the handler runs.
async fn call_and_cancel(client: &Client, tool: &str) {
    let token = CancellationToken::new();
    let options = RequestOptions { cancellation: Some(token.clone()), ..Default::default() };
    let call = client.call(CallToolParams::new(tool, None), options);
    let cancel = async {
        // Let the request reach the handler.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        token.cancel();
    };
    let (outcome, ()) = tokio::join!(call, cancel);
    assert!(matches!(outcome, Err(keel_mcp::Error::Cancelled)), "{outcome:?}");
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<&'static str>) -> &'static str {
    tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("an event within 5 s").expect("open")
}

#[tokio::test]
async fn a_cancelled_handler_sees_its_token_and_cleans_up_on_streams_in_both_eras() {
    for version in ERAS {
        let (tx, mut events) = mpsc::unbounded_channel();
        let server = cancellation_server(tx, Duration::from_secs(5));
        let client = connect(&server, &version).await;
        call_and_cancel(&client, "cleanup").await;
        assert_eq!(next_event(&mut events).await, "cleaned", "{version}");
        client.close().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_ignores_cancellation_is_dropped_after_the_grace_period() {
    for version in ERAS {
        let (tx, mut events) = mpsc::unbounded_channel();
        let grace = Duration::from_millis(700);
        let server = cancellation_server(tx, grace);
        let client = connect(&server, &version).await;
        call_and_cancel(&client, "stubborn").await;
        let cancelled_at = tokio::time::Instant::now();
        assert_eq!(next_event(&mut events).await, "dropped");
        // Paused time: the drop comes exactly when the grace period ends, not when the token fires.
        let waited = cancelled_at.elapsed();
        assert!(waited >= grace && waited < grace + Duration::from_millis(100), "{version}: dropped after {waited:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn a_cancelled_handler_cleans_up_over_http_in_both_eras() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let server = cancellation_server(tx, Duration::from_secs(5));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        server.serve_http_on(listener, HttpConfig::default(), shutdown).await.unwrap();
    });
    // Modern: the HTTP request goes away; legacy: `notifications/cancelled`. (Modern first: the HTTP client
    // remembers a legacy origin for the process and a modern-only client would then not probe it again.)
    for version in [ProtocolVersion::V2026_07_28, ProtocolVersion::V2025_11_25] {
        let client = Client::builder(Implementation::new("t", "1"))
            .protocol_versions([version.clone()])
            .connect(HttpTransport::new(&url).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{version}: {e:?}"));
        call_and_cancel(&client, "cleanup").await;
        assert_eq!(next_event(&mut events).await, "cleaned", "{version}");
        client.close().await;
    }
    drop(stop);
}

#[test]
#[should_panic(expected = "tool `double`: its argument type `u32` has a JSON Schema of type \"integer\"")]
fn a_tool_whose_arguments_are_not_an_object_is_refused_at_registration() {
    let _ = Server::builder(Implementation::new("t", "1"))
        .tool("double", "Doubles", |n: u32| async move { (n * 2).to_string() });
}

#[test]
#[should_panic(expected = "tool `list`: it returns `Json<T>` where T's JSON Schema has type \"array\"")]
fn a_tool_whose_structured_output_is_not_an_object_is_refused_at_registration() {
    let _ =
        Server::builder(Implementation::new("t", "1")).tool("list", "Lists", |_: NoArgs| async { Json(vec![1, 2, 3]) });
}

async fn connect(server: &Server, version: &ProtocolVersion) -> Client {
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    Client::builder(Implementation::new("t", "1")).protocol_versions([version.clone()]).connect(b).await.unwrap()
}

#[tokio::test]
async fn no_args_publishes_a_bare_object_and_completions_need_a_completer() {
    let server = Server::builder(Implementation::new("t", "1"))
        .tool("now", "Tells the time", |_: NoArgs| async { "noon" })
        .prompt("greet", "Greets", |_: NoArgs| async { "hi".to_owned() })
        .build();
    assert!(server.capabilities().completions.is_none(), "no completer, no completions capability");
    let client = connect(&server, &ProtocolVersion::V2026_07_28).await;
    let tools = client.list_all_tools().await.unwrap();
    let schema = &tools[0].input_schema;
    assert_eq!(schema["type"], "object");
    assert!(!schema.contains_key("description"), "NoArgs's doc comment is not the tool's business: {schema:?}");

    let with_completer = Server::builder(Implementation::new("t", "1"))
        .prompt("greet", "Greets", |_: NoArgs| async { "hi".to_owned() })
        .complete_prompt_argument("greet", "name", |_| async { vec!["ada".to_owned()] })
        .build();
    assert!(with_completer.capabilities().completions.is_some());
}

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Debug, PartialEq)]
struct Note {
    id: u64,
    text: String,
}

#[tokio::test]
async fn question_mark_on_any_error_keeps_details_on_the_server() {
    let server = Server::builder(Implementation::new("t", "1"))
        .tool("anyhow", "Fails with anyhow", |_: NoArgs| async {
            let failed: anyhow::Result<()> = Err(anyhow::anyhow!("password=hunter2"));
            failed?;
            Ok::<_, HandlerError>("unreachable")
        })
        .tool("boxed", "Fails with a boxed error", |_: NoArgs| async {
            let failed: Result<(), Box<dyn std::error::Error + Send + Sync>> = Err("db at 10.0.0.7 is down".into());
            failed?;
            Ok::<_, HandlerError>("unreachable")
        })
        .tool("told", "Fails with a message for the model", |_: NoArgs| async {
            Err::<String, _>(HandlerError::failed("id must be positive"))
        })
        .build();
    for version in ERAS {
        let client = connect(&server, &version).await;
        for tool in ["anyhow", "boxed"] {
            let result = client.call_tool(tool, json!({})).await.unwrap();
            assert!(result.is_error());
            let text = result.content[0].as_text().unwrap();
            assert!(!text.contains("hunter2") && !text.contains("10.0.0.7"), "{tool} leaked: {text}");
            assert!(text.contains("internal error"), "{text}");
        }
        let told = client.call_tool("told", json!({})).await.unwrap();
        assert_eq!(told.content[0].as_text(), Some("id must be positive"));
    }
}

#[tokio::test]
async fn json_output_publishes_its_schema_and_decodes_typed_on_the_client() {
    let server = Server::builder(Implementation::new("t", "1"))
        .tool("note", "Reads a note", |_: NoArgs| async { Json(Note { id: 7, text: "hello".into() }) })
        .tool("maybe", "Reads a note or fails", |_: NoArgs| async {
            Err::<Json<Note>, _>(HandlerError::failed("no such note"))
        })
        .build();
    for version in ERAS {
        let client = connect(&server, &version).await;
        let tools = client.list_all_tools().await.unwrap();
        for tool in &tools {
            let schema =
                tool.output_schema.as_ref().unwrap_or_else(|| panic!("{} publishes no outputSchema", tool.name));
            assert_eq!(schema["type"], "object");
            assert_eq!(schema["required"], json!(["id", "text"]));
        }
        let note: Note = client.call_tool("note", json!({})).await.unwrap().into_typed().unwrap();
        assert_eq!(note, Note { id: 7, text: "hello".into() });
        let failed = client.call_tool("maybe", json!({})).await.unwrap().into_typed::<Note>().unwrap_err();
        assert!(failed.to_string().contains("no such note"), "{failed}");
    }
}

#[tokio::test]
async fn a_template_that_finds_nothing_answers_the_eras_not_found() {
    let server = Server::builder(Implementation::new("t", "1"))
        .resource_template(TemplateDef::new("notes://{id}", "note", |_, uri, vars| async move {
            (vars["id"] == "1").then(|| keel_mcp::protocol::ResourceContents::text(uri, None, "one"))
        }))
        .resource_template(TemplateDef::new("tags://{id}", "tag", |_, _uri, _vars| async move {
            Err::<keel_mcp::protocol::ResourceContents, _>(HandlerError::not_found())
        }))
        .build();
    for (version, code) in [(ProtocolVersion::V2025_11_25, -32002), (ProtocolVersion::V2026_07_28, -32602)] {
        let client = connect(&server, &version).await;
        assert!(client.read_resource("notes://1").await.is_ok());
        for uri in ["notes://2", "tags://x"] {
            match client.read_resource(uri).await {
                Err(keel_mcp::Error::Rpc(e)) => {
                    assert_eq!((e.code, e.data.as_ref().map(|d| d["uri"].clone())), (code, Some(json!(uri))));
                }
                other => panic!("{version} {uri}: {other:?}"),
            }
        }
    }
}

/// What an auth layer would put in the request's extensions.
#[derive(Clone, Debug)]
struct Principal(&'static str);

fn who_server() -> Server {
    Server::builder(Implementation::new("t", "1"))
        .tool("who", "Says who is asking", |ctx: RequestContext, _: NoArgs| async move {
            let Some(request) = ctx.http_request() else { return "not over HTTP".to_owned() };
            let user = request.headers.get("x-user").and_then(|v| v.to_str().ok()).unwrap_or("?");
            let principal = request.extensions.get::<Principal>().map_or("?", |p| p.0);
            format!("{user}/{principal}")
        })
        .build()
}

fn http_post(body: &Value, modern: bool, session: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-user", "ada");
    if modern {
        builder = builder
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", body["method"].as_str().unwrap())
            .header("mcp-name", "who");
    } else {
        builder = builder.header("mcp-protocol-version", "2025-11-25");
    }
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    let mut request = builder.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    request.extensions_mut().insert(Principal("ada@example.com"));
    request
}

async fn text_of(response: http::Response<keel_mcp::server::http::ResponseBody>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn handlers_see_the_http_request_headers_and_extensions_in_both_eras() {
    let service = who_server().http_service(HttpConfig::default());
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "who", "_meta": meta}});
    let answer = text_of(service.clone().oneshot(http_post(&call, true, None)).await.unwrap()).await;
    assert_eq!(answer["result"]["content"][0]["text"], "ada/ada@example.com");

    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = service.clone().oneshot(http_post(&init, false, None)).await.unwrap();
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = service.clone().oneshot(http_post(&initialized, false, Some(&session))).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "who"}});
    let answer = text_of(service.clone().oneshot(http_post(&call, false, Some(&session))).await.unwrap()).await;
    assert_eq!(answer["result"]["content"][0]["text"], "ada/ada@example.com");

    // A stream connection has no HTTP request.
    let client = connect(&who_server(), &ProtocolVersion::V2025_11_25).await;
    let result = client.call_tool("who", json!({})).await.unwrap();
    assert_eq!(result.content[0].as_text(), Some("not over HTTP"));
}

#[tokio::test]
async fn shared_state_reaches_every_handler_without_captured_clones() {
    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicU64);
    let server = Server::builder(Implementation::new("t", "1"))
        .state(Counter::default())
        .tool("hit", "Counts", |ctx: RequestContext, _: NoArgs| async move {
            let counter = ctx.state::<Counter>()?;
            Ok::<_, HandlerError>((counter.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1).to_string())
        })
        .tool("missing", "Wants state nobody registered", |ctx: RequestContext, _: NoArgs| async move {
            ctx.state::<String>().cloned()
        })
        .build();
    for (version, expected) in [(ProtocolVersion::V2025_11_25, "1"), (ProtocolVersion::V2026_07_28, "2")] {
        let client = connect(&server, &version).await;
        let result = client.call_tool("hit", json!({})).await.unwrap();
        assert_eq!(result.content[0].as_text(), Some(expected));
        assert!(client.call_tool("missing", json!({})).await.unwrap().is_error());
    }
}
