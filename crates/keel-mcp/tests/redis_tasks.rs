//! Tasks (tasks extension) shared through Redis by several instances (skipped loudly without
//! `redis-server`): `tasks/get`, `tasks/update` and `tasks/cancel` work on any instance, and a task whose
//! instance died ends `failed`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::elicitation::{ElicitParams, PrimitiveSchema, RequestedSchema};
use keel_mcp::server::http::{HttpConfig, McpService, RedisConfig, RedisStores, SessionStore};
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server, TaskSupport, ToolDef};
use serde_json::{Value, json};
use tower::ServiceExt;

#[path = "support/instances.rs"]
mod instances;
#[path = "support/redis.rs"]
mod redis_server;
#[path = "span_capture/mod.rs"]
mod span_capture;

use redis_server::RedisServer;

const BOUND: Duration = Duration::from_secs(60);

/// Whether the handler of a `task_watched` task was stopped before it got its answer (one test uses it).
static WATCHED_STOPPED: AtomicBool = AtomicBool::new(false);

/// Sets [`WATCHED_STOPPED`] when dropped unanswered.
struct Answered(bool);

impl Drop for Answered {
    fn drop(&mut self) {
        if !self.0 {
            WATCHED_STOPPED.store(true, Ordering::SeqCst);
        }
    }
}

fn server() -> Server {
    let text = json!({"type": "string"});
    let form = move || {
        let property = PrimitiveSchema::from_object(text.as_object().unwrap().clone());
        ElicitParams::form("Name?", RequestedSchema::new(vec![("name".into(), property)], &["name"]))
    };
    let watched_form = form.clone();
    Server::builder(Implementation::new("tasks-test", "1.0.0"))
        .tool_def(
            ToolDef::new("task_ask", move |ctx: RequestContext, _: NoArgs| {
                let form = form.clone();
                async move {
                    ctx.continue_as_task().await?;
                    let answer = ctx.elicit("name", form()).await?;
                    let name = answer.content.and_then(|c| c.get("name").map(|v| json!(v))).unwrap_or_default();
                    Ok::<_, HandlerError>(format!("hello {}", name.as_str().unwrap_or_default()))
                }
            })
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            // As task_ask, but says whether it was stopped before its answer came (see `WATCHED_STOPPED`).
            ToolDef::new("task_watched", move |ctx: RequestContext, _: NoArgs| {
                let form = watched_form.clone();
                async move {
                    let mut answered = Answered(false);
                    ctx.continue_as_task().await?;
                    let answer = ctx.elicit("name", form()).await;
                    answered.0 = answer.is_ok();
                    answer?;
                    Ok::<_, HandlerError>("answered")
                }
            })
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            ToolDef::new("task_wait", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                // Runs until cancelled (the task's cancellation drops it).
                std::future::pending::<()>().await;
                Ok::<_, HandlerError>("never")
            })
            .task_support(TaskSupport::Optional),
        )
        .build()
}

async fn instance(redis: &RedisServer) -> (McpService, RedisStores) {
    instance_with(redis, Duration::from_millis(500)).await
}

/// An instance whose Redis calls wait up to `timeout`.
async fn instance_with(redis: &RedisServer, timeout: Duration) -> (McpService, RedisStores) {
    // As if Redis had held the data for long: the instance takes its number without waiting for running
    // instances to renew their claims (tests/redis_stores.rs tests that wait).
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET").arg("tasks:live").arg(1).arg("PX").arg(60_000).query_async(&mut conn).await.unwrap();
    let config = RedisConfig::new(redis.url()).key_prefix("tasks:").timeout(timeout);
    let stores = RedisStores::connect(config).await.expect("Redis is up");
    (server().http_service(HttpConfig::default().redis(&stores)), stores)
}

/// A modern request on `service`, from a client with the tasks extension; `name` goes in `Mcp-Name`.
async fn modern(service: &McpService, method: &str, name: &str, params: Value) -> Value {
    let capabilities = json!({"elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}});
    let request = instances::modern(method, name, params, capabilities);
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    // Modern errors have their own statuses; results are 200.
    assert!(status == StatusCode::OK || answer["error"].is_object(), "{status}: {answer}");
    answer
}

async fn task_get(service: &McpService, task: &str) -> Value {
    modern(service, "tasks/get", task, json!({"taskId": task})).await
}

/// `tasks/get` on `service` until the task reaches `status`. The instance running it writes its state to
/// Redis in the background and tells no one: poll, at a bounded pace.
async fn wait_for(service: &McpService, task: &str, status: &str) -> Value {
    for _ in 0..200 {
        let answer = task_get(service, task).await;
        if answer["result"]["status"] == status {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {task} never reached {status}");
}

#[tokio::test]
async fn a_task_is_read_answered_and_cancelled_through_any_instance() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis).await;
        let (b, _sb) = instance(&redis).await;
        let created = modern(&a, "tools/call", "task_ask", json!({"name": "task_ask", "arguments": {}})).await;
        let task = created["result"]["taskId"].as_str().expect("a task").to_owned();
        // The task was shared before its creation was answered: B knows it at once.
        let first = task_get(&b, &task).await;
        assert!(first["result"].is_object(), "{first}");
        // B reads the task A runs, questions included, and passes the answer on to A.
        let asked = wait_for(&b, &task, "input_required").await;
        assert!(asked["result"]["inputRequests"]["name"].is_object(), "{asked}");
        let answer = json!({"name": {"action": "accept", "content": {"name": "Ada"}}});
        let updated = modern(&b, "tasks/update", &task, json!({"taskId": task, "inputResponses": answer})).await;
        assert!(updated["result"].is_object(), "{updated}");
        let done = wait_for(&b, &task, "completed").await;
        assert_eq!(done["result"]["result"]["content"][0]["text"], "hello Ada");

        // A task A runs is cancelled through B.
        let created = modern(&a, "tools/call", "task_wait", json!({"name": "task_wait", "arguments": {}})).await;
        let task = created["result"]["taskId"].as_str().expect("a task").to_owned();
        wait_for(&b, &task, "working").await;
        let cancelled = modern(&b, "tasks/cancel", &task, json!({"taskId": task})).await;
        assert!(cancelled["result"].is_object(), "{cancelled}");
        wait_for(&b, &task, "cancelled").await;
        assert_eq!(task_get(&a, &task).await["result"]["status"], "cancelled");

        // Unknown everywhere.
        let unknown = task_get(&b, "no-such-task").await;
        assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_task_whose_instance_died_ends_failed() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, stores_a) = instance(&redis).await;
        let (b, _sb) = instance(&redis).await;
        let created = modern(&a, "tools/call", "task_wait", json!({"name": "task_wait", "arguments": {}})).await;
        let task = created["result"]["taskId"].as_str().expect("a task").to_owned();
        wait_for(&b, &task, "working").await;
        // A dies: its heartbeat stops, and its "alive" key lapses (here at once).
        let instance = stores_a.session_store().instance();
        drop((a, stores_a));
        let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("DEL").arg(format!("tasks:alive:{instance}")).query_async(&mut conn).await.unwrap();
        let failed = task_get(&b, &task).await;
        assert_eq!(failed["result"]["status"], "failed", "{failed}");
        assert!(failed["result"]["error"]["message"].as_str().unwrap().contains("stopped"), "{failed}");
        // For good.
        assert_eq!(task_get(&b, &task).await["result"]["status"], "failed");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_task_is_not_failed_while_redis_comes_back_without_its_instance_s_heartbeat() {
    let Some(mut redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        // A timeout well above a heartbeat: A's claim is back well before Redis's data has settled.
        let (a, _sa) = instance_with(&redis, Duration::from_secs(5)).await;
        let (b, _sb) = instance_with(&redis, Duration::from_secs(5)).await;
        let created = modern(&a, "tools/call", "task_wait", json!({"name": "task_wait", "arguments": {}})).await;
        let task = created["result"]["taskId"].as_str().expect("a task").to_owned();
        wait_for(&b, &task, "working").await;
        // Redis restarts from a snapshot that has the task but no heartbeat (they expired meanwhile).
        let key = format!("tasks:task:{task}");
        let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let record: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
        redis.restart();
        let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET").arg(&key).arg(record).arg("PX").arg(60_000).query_async(&mut conn).await.unwrap();
        // B, asked at once (its connection comes back first), does not take A's missing heartbeat for death.
        let read = loop {
            let read = task_get(&b, &task).await;
            if read["error"]["code"] != -32603 {
                break read;
            }
        };
        assert_eq!(read["result"]["status"], "working", "{read}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_task_failed_elsewhere_while_its_heartbeat_lapsed_stays_failed() {
    let Some(redis) = RedisServer::start() else { return };
    // The heartbeat runs on this (current-thread) runtime, so this thread's subscriber sees its warnings.
    let (logged, _guard) = span_capture::capture(tracing::Level::WARN);
    tokio::time::timeout(BOUND, async {
        let (a, stores_a) = instance(&redis).await;
        let (b, _sb) = instance(&redis).await;
        let created = modern(&a, "tools/call", "task_watched", json!({"name": "task_watched", "arguments": {}})).await;
        let task = created["result"]["taskId"].as_str().expect("a task").to_owned();
        wait_for(&b, &task, "input_required").await;
        // A's heartbeat lapses (here by hand; a partition or a stalled Redis does it for real), and B, asked
        // about A's task meanwhile, declares it failed, for good.
        let claim = format!("tasks:alive:{}", stores_a.session_store().instance());
        let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let failed = loop {
            let _: () = redis::cmd("DEL").arg(&claim).query_async(&mut conn).await.unwrap();
            let read = task_get(&b, &task).await;
            // (A's heartbeat may come back in between: then try again.)
            if read["result"]["status"] == "failed" {
                break read;
            }
        };
        assert!(failed["result"]["error"]["message"].as_str().unwrap().contains("stopped"), "{failed}");
        // A's next beat takes its claim back, says that others may have taken it for dead, and stops the
        // handler, which saves nothing and would wait for its answer until the input timeout.
        for _ in 0..500 {
            if WATCHED_STOPPED.load(Ordering::SeqCst) && logged.text().contains("claim had lapsed") {
                break;
            }
            // The heartbeat runs every 2 s and tells no one: poll, at a bounded pace.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(logged.text().contains("claim had lapsed"), "{}", logged.text());
        assert!(WATCHED_STOPPED.load(Ordering::SeqCst), "the handler of a task failed elsewhere still runs");
        // The answer comes too late: the task stays failed, on B and on A.
        let answer = json!({"name": {"action": "accept", "content": {"name": "Ada"}}});
        modern(&a, "tasks/update", &task, json!({"taskId": task, "inputResponses": answer})).await;
        let on_a = wait_for(&a, &task, "failed").await;
        assert!(on_a["result"]["result"].is_null(), "{on_a}");
        assert_eq!(task_get(&b, &task).await["result"]["status"], "failed");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn without_redis_a_task_is_not_started_and_reading_one_is_retryable() {
    let Some(mut redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis).await;
        let (b, _sb) = instance(&redis).await;
        redis.stop();
        // Another instance could not read the task: it is not started, and the client hears why.
        let created = modern(&a, "tools/call", "task_wait", json!({"name": "task_wait", "arguments": {}})).await;
        assert_eq!(created["error"]["code"], -32603, "{created}");
        // An instance that cannot ask Redis does not call a task unknown (-32602, final), but unavailable.
        let read = task_get(&b, "some-task").await;
        assert_eq!(read["error"]["code"], -32603, "{read}");
    })
    .await
    .expect("bounded");
}
