//! What a protected server binds to the principal of a token. Tasks belong to the principal whose request
//! created them: `tasks/get`, `tasks/update` and `tasks/cancel` from another principal get exactly the answer
//! of an unknown task, on the instance that runs the task and, with tasks shared through Redis, on any other
//! (skipped loudly without `redis-server`). A response stream lasts no longer than the token that opened it.
//! A modern call's `requestState` opens only for the principal it was issued to.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};

use http_body_util::BodyExt;
use keel_mcp::auth::resource::{ResourceServerConfig, TokenVerifier, VerifiedToken, VerifyError, VerifyFuture};
use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::elicitation::{ElicitParams, RequestedSchema};
use keel_mcp::server::http::{HttpConfig, McpService};
use keel_mcp::server::{HandlerError, NoArgs, Principal, RequestContext, Server, TaskSupport, ToolDef};
use serde_json::{Value, json};
use tower::ServiceExt;

#[path = "support/instances.rs"]
mod instances;
#[cfg(feature = "redis")]
#[path = "support/redis.rs"]
mod redis_server;

const BOUND: Duration = Duration::from_secs(60);
const ISSUER: &str = "https://idp.example";
const RESOURCE: &str = "http://localhost/mcp";
const SHORT_LIFE: Duration = Duration::from_secs(30);

/// `progress_forever` saw its cancellation.
static PROGRESS_CANCELLED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tokens `alice` and `bob`, standing for the subjects of those names (same issuer, same client), and
/// `short`, for carol, which expires [`SHORT_LIFE`] after it is checked, and `nameless`, which names neither a
/// subject nor a client.
struct Subjects;

impl TokenVerifier for Subjects {
    fn verify<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        let answer = match token {
            "alice" | "bob" => {
                let mut principal = Principal::default();
                principal.issuer = Some(ISSUER.into());
                principal.subject = Some(token.into());
                principal.client_id = Some("app".into());
                Ok(VerifiedToken::new(principal))
            }
            "short" => {
                let mut principal = Principal::default();
                principal.subject = Some("carol".into());
                principal.expires_at = Some(SystemTime::now() + SHORT_LIFE);
                Ok(VerifiedToken::new(principal))
            }
            // A client but no subject (client_credentials, or an authorization server that leaves `sub` out
            // of introspection answers): every user of the client app would share this identity.
            "app-only" => {
                let mut principal = Principal::default();
                principal.issuer = Some(ISSUER.into());
                principal.client_id = Some("app".into());
                Ok(VerifiedToken::new(principal))
            }
            // Neither a subject nor a client: nothing to bind a session or a task to.
            "nameless" => {
                let mut principal = Principal::default();
                principal.issuer = Some(ISSUER.into());
                Ok(VerifiedToken::new(principal))
            }
            _ => Err(VerifyError::Invalid("unknown token".into())),
        };
        Box::pin(std::future::ready(answer))
    }
}

fn server() -> Server {
    Server::builder(Implementation::new("tasks-test", "1.0.0"))
        .tool_def(
            ToolDef::new("task_wait", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                std::future::pending::<()>().await;
                Ok::<_, HandlerError>("never")
            })
            .task_support(TaskSupport::Optional),
        )
        .tool(
            "progress_forever",
            "Reports progress, then runs until cancelled",
            |ctx: RequestContext, _: NoArgs| async move {
                ctx.progress(1.0, None, None).await;
                ctx.cancellation().cancelled().await;
                PROGRESS_CANCELLED.notify_one();
                "cancelled"
            },
        )
        .tool("ask", "Asks the user to confirm", |ctx: RequestContext, _: NoArgs| async move {
            let answer = ctx.elicit("ok", ElicitParams::form("Go on?", RequestedSchema::new(vec![], &[]))).await?;
            Ok::<_, HandlerError>(format!("{:?}", answer.action))
        })
        .tool_def(
            ToolDef::new("task_quick", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                // Pending once: the call has become a task by the time it ends (when it may become one).
                tokio::task::yield_now().await;
                Ok::<_, HandlerError>("done")
            })
            .task_support(TaskSupport::Optional),
        )
        .build()
}

fn config() -> HttpConfig {
    let protection = ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(Subjects));
    HttpConfig::default().resource_server(protection).unwrap()
}

/// A modern request by the holder of `token`, from a client with the tasks extension; the JSON-RPC answer.
async fn modern(service: &McpService, token: &str, method: &str, name: &str, params: Value) -> Value {
    let capabilities = json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    let request = with_token(instances::modern(method, name, params, capabilities), token);
    let response = service.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn start_task(service: &McpService, token: &str) -> String {
    let created =
        modern(service, token, "tools/call", "task_wait", json!({"name": "task_wait", "arguments": {}})).await;
    created["result"]["taskId"].as_str().expect("a task").to_owned()
}

/// What `tasks/get`, `tasks/update` and `tasks/cancel` of task `id` answer the holder of `token`.
async fn steer(service: &McpService, token: &str, id: &str) -> [Value; 3] {
    [
        modern(service, token, "tasks/get", id, json!({"taskId": id})).await,
        modern(service, token, "tasks/update", id, json!({"taskId": id, "inputResponses": {}})).await,
        modern(service, token, "tasks/cancel", id, json!({"taskId": id})).await,
    ]
}

/// Another principal's task answers as a task that does not exist, error message included (the id alone).
fn assert_unknown(answers: [Value; 3], foreign: &str, unknown: [Value; 3]) {
    for (answer, unknown) in answers.into_iter().zip(unknown) {
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert_eq!(answer["error"]["code"], unknown["error"]["code"]);
        let (message, reference) = (answer["error"]["message"].as_str().unwrap(), unknown["error"]["message"].as_str());
        assert_eq!(message.replace(foreign, "ID"), reference.unwrap().replace("no-such-task", "ID"), "{answer}");
    }
}

#[tokio::test]
async fn another_principal_cannot_see_or_steer_a_task() {
    tokio::time::timeout(BOUND, async {
        let service = server().http_service(config());
        let task = start_task(&service, "alice").await;
        let unknown = steer(&service, "bob", "no-such-task").await;
        assert_unknown(steer(&service, "bob", &task).await, &task, unknown);
        // Bob's cancel did nothing: alice's task still runs, and alice steers it.
        let got = modern(&service, "alice", "tasks/get", &task, json!({"taskId": task})).await;
        assert_eq!(got["result"]["status"], "working", "{got}");
        let cancelled = modern(&service, "alice", "tasks/cancel", &task, json!({"taskId": task})).await;
        assert!(cancelled["result"].is_object(), "{cancelled}");
        let got = modern(&service, "alice", "tasks/get", &task, json!({"taskId": task})).await;
        assert_eq!(got["result"]["status"], "cancelled", "{got}");
    })
    .await
    .expect("bounded");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn another_principal_cannot_see_a_task_through_another_instance() {
    use keel_mcp::server::http::{RedisConfig, RedisStores};
    let Some(redis) = redis_server::RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let instance = || async {
            let shared = RedisConfig::new(redis.url()).key_prefix("owned:").timeout(Duration::from_millis(500));
            let stores = RedisStores::connect(shared).await.expect("Redis is up");
            (server().http_service(config().redis(&stores)), stores)
        };
        let (a, _sa) = instance().await;
        let (b, _sb) = instance().await;
        let task = start_task(&a, "alice").await;
        // B learns of the task from Redis (written in the background): alice sees it there first.
        let mut seen = false;
        for _ in 0..200 {
            let got = modern(&b, "alice", "tasks/get", &task, json!({"taskId": task})).await;
            if got["result"]["status"] == "working" {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(seen, "the task never reached the other instance");
        let unknown = steer(&b, "bob", "no-such-task").await;
        assert_unknown(steer(&b, "bob", &task).await, &task, unknown);
        let got = modern(&a, "alice", "tasks/get", &task, json!({"taskId": task})).await;
        assert_eq!(got["result"]["status"], "working", "bob's cancel through B reached nothing: {got}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn another_principal_cannot_open_a_request_state() {
    tokio::time::timeout(BOUND, async {
        let service = server().http_service(config());
        let ask = |token: &'static str, params: Value| {
            let request = instances::modern("tools/call", "ask", params, json!({"elicitation": {}}));
            let service = service.clone();
            async move {
                let response = service.oneshot(with_token(request, token)).await.unwrap();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                serde_json::from_slice::<Value>(&bytes).unwrap()
            }
        };
        let round1 = ask("alice", json!({"name": "ask"})).await;
        assert_eq!(round1["result"]["resultType"], "input_required", "{round1}");
        let state = round1["result"]["requestState"].as_str().expect("a requestState").to_owned();
        let answers = json!({"ok": {"action": "accept", "content": {}}});
        let retry = |state: String| json!({"name": "ask", "inputResponses": answers, "requestState": state});
        let tampered = ask("alice", retry(format!("{state}x"))).await;
        assert_eq!(tampered["error"]["code"], -32602, "{tampered}");
        // Bob replays alice's state: refused exactly as a tampered one, so he learns nothing from the answer.
        let replayed = ask("bob", retry(state.clone())).await;
        assert_eq!(replayed["error"], tampered["error"], "{replayed}");
        let finished = ask("alice", retry(state)).await;
        assert_eq!(finished["result"]["resultType"], "complete", "{finished}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_token_naming_no_subject_gets_no_request_state_unless_each_client_is_one_party() {
    tokio::time::timeout(BOUND, async {
        let ask = |service: McpService| async move {
            let request = instances::modern("tools/call", "ask", json!({"name": "ask"}), json!({"elicitation": {}}));
            let response = service.oneshot(with_token(request, "app-only")).await.unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        // A state sealed to this token would open for every user of the app: none is issued, and the
        // answer says why.
        let refused = ask(server().http_service(config())).await;
        assert_eq!(refused["error"]["code"], -32600, "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("names no subject"), "{refused}");
        // The deployment said each client is one party: the state is bound to the client.
        let protection =
            ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(Subjects)).bind_client_only_tokens(true);
        let bound = ask(server().http_service(HttpConfig::default().resource_server(protection).unwrap())).await;
        assert_eq!(bound["result"]["resultType"], "input_required", "{bound}");
    })
    .await
    .expect("bounded");
}

/// `request` with the bearer `token`.
fn with_token(
    mut request: http::Request<http_body_util::Full<bytes::Bytes>>,
    token: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A legacy session of the holder of `token`, and its standalone (GET) stream.
async fn legacy_get_stream(service: &McpService, token: &str) -> (String, keel_mcp::server::http::ResponseBody) {
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": instances::LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response =
        instances::send(service, with_token(instances::request(Method::POST, None, Some(&initialize)), token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let request = with_token(instances::request(Method::POST, Some(&session), Some(&initialized)), token);
    assert_eq!(instances::send(service, request).await.status(), StatusCode::ACCEPTED);
    let get = instances::send(service, with_token(instances::request(Method::GET, Some(&session), None), token)).await;
    assert_eq!(get.status(), StatusCode::OK);
    (session, get.into_body())
}

/// How long `stream` stays open (whatever it sends meanwhile), if it ends cleanly within `bound`.
async fn lifetime(stream: &mut keel_mcp::server::http::ResponseBody, bound: Duration) -> Option<Duration> {
    let opened = tokio::time::Instant::now();
    let ended = tokio::time::timeout(bound, async {
        while let Some(frame) = stream.frame().await {
            frame.unwrap();
        }
    })
    .await;
    ended.ok().map(|()| opened.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_legacy_get_stream_ends_when_its_token_expires() {
    let protection =
        ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(Subjects)).stream_expiry_grace(Duration::ZERO);
    let service = server().http_service(HttpConfig::default().resource_server(protection).unwrap());
    let (session, mut stream) = legacy_get_stream(&service, "short").await;
    // Open until the token expires, then ended cleanly: the client reconnects.
    let lived = lifetime(&mut stream, SHORT_LIFE * 2).await.expect("the stream outlived its token");
    assert!(lived >= SHORT_LIFE - Duration::from_secs(1) && lived <= SHORT_LIFE + Duration::from_secs(1), "{lived:?}");
    // The session's stream slot is free again: the client reconnects with its fresh token.
    drop(stream);
    let again =
        instances::send(&service, with_token(instances::request(Method::GET, Some(&session), None), "short")).await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_stream_opened_with_a_token_without_expiry_ends_too() {
    // Introspection answers may omit `exp`: a revoked token's stream must still end.
    let service = server().http_service(config());
    let (_, mut stream) = legacy_get_stream(&service, "alice").await;
    let lived = lifetime(&mut stream, Duration::from_secs(3600)).await.expect("the stream never ends");
    let default = keel_mcp::auth::resource::DEFAULT_STREAM_LIFETIME_WITHOUT_EXPIRY;
    assert!(lived >= default - Duration::from_secs(1) && lived <= default + Duration::from_secs(1), "{lived:?}");
}

/// What a legacy `initialize` by the holder of `token` gets.
async fn initialize_status(service: &McpService, token: &str) -> StatusCode {
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": instances::LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let request = with_token(instances::request(Method::POST, None, Some(&initialize)), token);
    instances::send(service, request).await.status()
}

#[tokio::test]
async fn a_token_naming_only_a_client_owns_nothing_unless_configured() {
    tokio::time::timeout(BOUND, async {
        // By default: Alice's and Bob's tokens of one client app without `sub` would be one owner.
        let service = server().http_service(config());
        assert_eq!(initialize_status(&service, "app-only").await, StatusCode::FORBIDDEN);
        let call = json!({"name": "task_quick", "arguments": {}});
        let answer = modern(&service, "app-only", "tools/call", "task_quick", call.clone()).await;
        assert!(answer["result"]["taskId"].is_null(), "{answer}");
        assert_eq!(answer["result"]["content"][0]["text"], "done", "{answer}");
        // A client_credentials deployment, where each client is one party, says so.
        let protection =
            ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(Subjects)).bind_client_only_tokens(true);
        let service = server().http_service(HttpConfig::default().resource_server(protection).unwrap());
        assert_eq!(initialize_status(&service, "app-only").await, StatusCode::OK);
        let answer = modern(&service, "app-only", "tools/call", "task_quick", call.clone()).await;
        assert!(answer["result"]["taskId"].is_string(), "{answer}");
        assert_eq!(initialize_status(&service, "nameless").await, StatusCode::FORBIDDEN, "still needs a client");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_token_naming_nobody_gets_no_session_and_no_task() {
    tokio::time::timeout(BOUND, async {
        let service = server().http_service(config());
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": instances::LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let request = with_token(instances::request(Method::POST, None, Some(&initialize)), "nameless");
        let refused = instances::send(&service, request).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(refused.headers().get("mcp-session-id").is_none());
        // The same call that is a task for alice runs to its end for the nameless token.
        let call = json!({"name": "task_quick", "arguments": {}});
        let alice = modern(&service, "alice", "tools/call", "task_quick", call.clone()).await;
        assert!(alice["result"]["taskId"].is_string(), "{alice}");
        let nameless = modern(&service, "nameless", "tools/call", "task_quick", call).await;
        assert!(nameless["result"]["taskId"].is_null(), "{nameless}");
        assert_eq!(nameless["result"]["content"][0]["text"], "done", "{nameless}");
    })
    .await
    .expect("bounded");
}

#[tokio::test(start_paused = true)]
async fn a_modern_streamed_call_ends_when_its_token_expires() {
    let protection =
        ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(Subjects)).stream_expiry_grace(Duration::ZERO);
    let service = server().http_service(HttpConfig::default().resource_server(protection).unwrap());
    let mut request =
        instances::modern("tools/call", "progress_forever", json!({"name": "progress_forever"}), json!({}));
    // A progress token makes the answer a stream; `instances::modern` wrote the rest of `_meta`.
    let mut body: Value = serde_json::from_slice(&request.body().clone().collect().await.unwrap().to_bytes()).unwrap();
    body["params"]["_meta"]["progressToken"] = json!("p");
    *request.body_mut() = http_body_util::Full::new(bytes::Bytes::from(body.to_string()));
    let response = instances::send(&service, with_token(request, "short")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body();
    let first = stream.frame().await.expect("an event").unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    let opened = tokio::time::Instant::now();
    let ended = tokio::time::timeout(SHORT_LIFE * 2, async {
        while let Some(frame) = stream.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token");
    assert!(opened.elapsed() <= SHORT_LIFE + Duration::from_secs(1));
    // As for a client gone away: the call is cancelled.
    drop(stream);
    tokio::time::timeout(BOUND, PROGRESS_CANCELLED.notified()).await.expect("the call was cancelled");
}
