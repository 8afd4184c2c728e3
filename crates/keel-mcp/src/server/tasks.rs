//! The tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) on the server: long tool calls that run
//! in the background while the client polls `tasks/get`, answers input requests with `tasks/update`, and
//! may `tasks/cancel`.
//!
//! Task creation is server-directed: a tool registered with task support calls
//! [`RequestContext::continue_as_task`](super::RequestContext::continue_as_task) when it decides the rest
//! of its work should not hold the request open. From that point the client gets a `CreateTaskResult`, the
//! handler keeps running in the background, and its requests for input park the task as `input_required`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::engine::CancellationToken;
use tokio::sync::{Notify, oneshot};

use super::error::HandlerError;
use super::error::NoToolResult;
#[cfg(feature = "http-server")]
use super::peer_addr::PeerKey;
use super::principal::{Principal, PrincipalId, same_caller};
use crate::protocol::jsonrpc::code;
use crate::protocol::tasks::TaskStatus;
use crate::protocol::tasks::extension::{DetailedTask, Task};
use crate::protocol::tools::CallToolResult;
use crate::protocol::{ErrorObject, InputRequest, InputRequests, InputResponse, InputResponses, JsonObject};

/// Whether a tool may, or must, run as a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskSupport {
    /// Never (the default).
    #[default]
    Forbidden,
    /// When the client declared the tasks extension; otherwise the tool runs synchronously.
    Optional,
    /// Only as a task: clients that did not declare the extension get -32021.
    Required,
}

/// The tasks a server is running or keeps results of.
///
/// Everything a task holds is bounded: the table by [`Limits::max_tasks`], each client's running tasks by
/// [`Limits::max_tasks_per_client`], a task's life by [`Limits::task_ttl`] (a task still running then is
/// cancelled: its handler is dropped), and each wait for the client's answer by
/// [`Limits::task_input_timeout`].
///
/// Who is a client: the session, on stream connections (stdio, child process, in memory) and legacy HTTP.
/// Stateless (2026-07-28) HTTP requests have no session: they count by the peer's address (an IPv6 peer by
/// its /64), the `PeerAddr` that `Server::serve_http_on` puts in each request; requests without one (an
/// `McpService` mounted without it) share one allowance. Behind a reverse proxy every client has the proxy's
/// address: insert the client's own as `PeerAddr`.
///
/// [`Limits::max_tasks`]: crate::Limits::max_tasks
/// [`Limits::max_tasks_per_client`]: crate::Limits::max_tasks_per_client
/// [`Limits::task_ttl`]: crate::Limits::task_ttl
/// [`Limits::task_input_timeout`]: crate::Limits::task_input_timeout
#[derive(Debug)]
pub(crate) struct TaskStore {
    tasks: Mutex<HashMap<String, Arc<TaskEntry>>>,
    /// Where tasks are shared with other instances of the server, when they are (HTTP scale-out).
    share: OnceLock<Arc<dyn TaskShare>>,
    max_tasks: usize,
    max_per_client: usize,
    ttl: Duration,
    poll_interval: Duration,
    input_timeout: Duration,
}

/// The client a task belongs to, as [`Limits::max_tasks_per_client`](crate::Limits::max_tasks_per_client)
/// counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskOwner {
    /// A session (its client id).
    Session(u64),
    /// A stateless HTTP peer, by address.
    #[cfg(feature = "http-server")]
    Peer(PeerKey),
    /// Stateless requests from an unknown peer: one shared allowance.
    Unknown,
}

/// A task as another instance recorded it, and the principal that created it.
pub(crate) type SharedTask = (DetailedTask, Option<PrincipalId>);

/// Tasks shared by several instances of a server: each instance records the state of the tasks it runs,
/// and serves `tasks/*` for the others' from those records, passing answers and cancellations on to the
/// instance that runs the task.
pub(crate) trait TaskShare: Send + Sync + std::fmt::Debug + 'static {
    /// Records task `id`'s state and the principal that created it (without waiting), to be kept for `ttl`.
    fn save(&self, id: &str, task: &DetailedTask, principal: Option<&PrincipalId>, ttl: Duration);

    /// Records task `id`'s state and creator, after every earlier save, and resolves once the other instances
    /// can read it; an error (bounded by the store's own timeout) when they may not.
    fn save_now<'a>(
        &'a self,
        id: &'a str,
        task: &'a DetailedTask,
        principal: Option<&'a PrincipalId>,
        ttl: Duration,
    ) -> ShareFuture<'a, Result<(), ErrorObject>>;

    /// Another instance's task `id` and the principal that created it (`None`: no such task); a task still
    /// running on an instance that is gone is `failed`. An error (retryable) when the store cannot say.
    fn load<'a>(&'a self, id: &'a str) -> ShareFuture<'a, Result<Option<SharedTask>, ErrorObject>>;

    /// Passes `command` on to the instance running task `id` (without waiting).
    fn forward(&self, id: &str, command: TaskCommand);

    /// The terminal state another instance recorded for task `id`, which this instance runs (see
    /// [`TaskStore::overruled`]); `None` when there is none, or the store cannot say now (bounded by its
    /// timeout).
    fn ended_elsewhere<'a>(&'a self, id: &'a str) -> ShareFuture<'a, Option<DetailedTask>>;
}

/// What [`TaskShare::load`] returns.
pub(crate) type ShareFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What another instance asks of a task this one runs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TaskCommand {
    /// `tasks/update`.
    Deliver(InputResponses),
    /// `tasks/cancel`.
    Cancel,
}

/// One task.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    id: String,
    share: Option<Arc<dyn TaskShare>>,
    owner: TaskOwner,
    /// The principal whose request created the task: only it may see or steer the task.
    principal: Option<PrincipalId>,
    input_timeout: Duration,
    created_at: String,
    created: Instant,
    ttl: Duration,
    poll_interval: Duration,
    state: Mutex<TaskState>,
    changed: Notify,
    pub(crate) cancellation: CancellationToken,
}

#[derive(Debug)]
struct TaskState {
    status: TaskStatus,
    updated_at: String,
    /// Questions the handler waits on, by key.
    pending: InputRequests,
    /// Answers delivered by `tasks/update` that the handler has not picked up yet.
    answers: InputResponses,
    result: Option<JsonObject>,
    error: Option<ErrorObject>,
}

impl TaskStore {
    pub(crate) fn new(limits: &crate::Limits, poll_interval: Duration) -> Self {
        TaskStore {
            tasks: Mutex::new(HashMap::new()),
            share: OnceLock::new(),
            max_tasks: limits.max_tasks.max(1),
            max_per_client: limits.max_tasks_per_client.max(1),
            ttl: limits.task_ttl,
            poll_interval,
            input_timeout: limits.task_input_timeout,
        }
    }

    /// Creates a task in `working` state for `owner`, bound to `principal`; it can be read back at once
    /// (durable creation).
    pub(crate) fn create(
        &self,
        owner: TaskOwner,
        principal: Option<PrincipalId>,
    ) -> Result<Arc<TaskEntry>, ErrorObject> {
        let mut tasks = self.tasks.lock().expect("task store lock");
        tasks.retain(|_, t| {
            let live = t.created.elapsed() < t.ttl;
            if !live {
                // Forgetting a task also stops its handler (a no-op once it has finished).
                t.cancellation.cancel();
            }
            live
        });
        let running = tasks.values().filter(|t| t.owner == owner && !t.status().is_terminal()).count();
        if running >= self.max_per_client {
            return Err(ErrorObject::internal(format!(
                "this client already has {running} running tasks; wait for some to finish"
            )));
        }
        if tasks.len() >= self.max_tasks {
            // Make room by forgetting the oldest finished task.
            let oldest =
                tasks.values().filter(|t| t.status().is_terminal()).min_by_key(|t| t.created).map(|t| t.id.clone());
            match oldest {
                Some(id) => {
                    tasks.remove(&id);
                }
                None => return Err(ErrorObject::internal("too many running tasks; try again later")),
            }
        }
        let now = timestamp();
        let entry = Arc::new(TaskEntry {
            id: new_task_id(),
            share: self.share.get().cloned(),
            owner,
            principal,
            input_timeout: self.input_timeout,
            created_at: now.clone(),
            created: Instant::now(),
            ttl: self.ttl,
            poll_interval: self.poll_interval,
            state: Mutex::new(TaskState {
                status: TaskStatus::Working,
                updated_at: now,
                pending: InputRequests::new(),
                answers: InputResponses::new(),
                result: None,
                error: None,
            }),
            changed: Notify::new(),
            cancellation: CancellationToken::new(),
        });
        tasks.insert(entry.id.clone(), entry.clone());
        drop(tasks);
        // Shared by whoever answers its creation (see `TaskEntry::persist`).
        Ok(entry)
    }

    /// Shares this server's tasks with other instances from now on (the first share set stays).
    #[cfg_attr(not(feature = "redis"), expect(dead_code, reason = "only the Redis stores share tasks"))]
    pub(crate) fn share_with(&self, share: Arc<dyn TaskShare>) {
        let _ = self.share.set(share);
    }

    /// How tasks are shared with other instances, if they are.
    pub(crate) fn shared(&self) -> Option<&Arc<dyn TaskShare>> {
        self.share.get()
    }

    /// Acts on what another instance passed on for a task this one runs (unknown tasks are ignored).
    #[cfg_attr(not(feature = "http-server"), expect(dead_code, reason = "commands arrive on the HTTP session bus"))]
    pub(crate) fn command(&self, id: &str, command: TaskCommand) {
        let Ok(task) = self.get(id) else { return };
        match command {
            TaskCommand::Deliver(responses) => task.deliver(responses),
            TaskCommand::Cancel => task.cancel(),
        }
    }

    /// Makes task `id` what another instance recorded (`recorded`, terminal) while this one's heartbeat
    /// lapsed, and stops its handler: the clients were told so, for good.
    #[cfg_attr(not(feature = "redis"), expect(dead_code, reason = "only the Redis stores share tasks"))]
    pub(crate) fn overruled(&self, id: &str, recorded: DetailedTask) {
        let Ok(task) = self.get(id) else { return };
        {
            let mut state = task.state.lock().expect("task lock");
            if state.status == recorded.task.status {
                return;
            }
            tracing::warn!(
                task = %id,
                status = ?recorded.task.status,
                "another instance ended this instance's task while its heartbeat had lapsed; the task stops"
            );
            state.status = recorded.task.status;
            state.updated_at = recorded.task.last_updated_at;
            state.pending.clear();
            state.result = recorded.result;
            state.error = recorded.error;
        }
        task.changed.notify_waiters();
        task.cancellation.cancel();
    }

    /// The ids of the tasks this instance runs that have not ended.
    #[cfg_attr(
        not(all(feature = "redis", feature = "tasks")),
        expect(dead_code, reason = "only the Redis stores share tasks")
    )]
    pub(crate) fn running(&self) -> Vec<String> {
        let tasks = self.tasks.lock().expect("task store lock");
        tasks.values().filter(|t| !t.status().is_terminal()).map(|t| t.id.clone()).collect()
    }

    /// Forgets a task that outlived its time to live.
    fn expire(&self, task: &TaskEntry) {
        task.cancel();
        self.tasks.lock().expect("task store lock").remove(&task.id);
    }

    /// A live task by id; unknown ids are invalid params.
    pub(crate) fn get(&self, id: &str) -> Result<Arc<TaskEntry>, ErrorObject> {
        let tasks = self.tasks.lock().expect("task store lock");
        tasks.get(id).filter(|t| t.created.elapsed() < t.ttl).cloned().ok_or_else(|| unknown_task(id))
    }

    /// A live task by id, for `caller`: another principal's task is as unknown as a task that never existed.
    pub(crate) fn get_for(&self, id: &str, caller: Option<&Principal>) -> Result<Arc<TaskEntry>, ErrorObject> {
        self.get(id).and_then(|task| if task.belongs_to(caller) { Ok(task) } else { Err(unknown_task(id)) })
    }
}

/// The answer about a task that does not exist, or that belongs to another principal.
fn unknown_task(id: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("unknown task: {id}"))
}

impl TaskEntry {
    /// Whether `caller` is the principal that created the task (or neither has one).
    pub(crate) fn belongs_to(&self, caller: Option<&Principal>) -> bool {
        same_caller(self.principal.as_ref(), caller)
    }

    fn status(&self) -> TaskStatus {
        self.state.lock().expect("task lock").status
    }

    fn base(&self, state: &TaskState) -> Task {
        Task {
            task_id: self.id.clone(),
            status: state.status,
            status_message: None,
            created_at: self.created_at.clone(),
            last_updated_at: state.updated_at.clone(),
            ttl_ms: Some(self.ttl.as_millis() as u64),
            poll_interval_ms: Some(self.poll_interval.as_millis() as u64),
        }
    }

    /// The task as `CreateTaskResult` shows it.
    pub(crate) fn summary(&self) -> Task {
        self.base(&self.state.lock().expect("task lock"))
    }

    /// The task as `tasks/get` shows it: outstanding questions, the result or the error inline.
    pub(crate) fn detailed(&self) -> DetailedTask {
        let state = self.state.lock().expect("task lock");
        DetailedTask {
            task: self.base(&state),
            input_requests: (state.status == TaskStatus::InputRequired && !state.pending.is_empty())
                .then(|| state.pending.clone()),
            result: state.result.clone(),
            error: state.error.clone(),
        }
    }

    fn update(&self, edit: impl FnOnce(&mut TaskState)) {
        {
            let mut state = self.state.lock().expect("task lock");
            edit(&mut state);
            state.updated_at = timestamp();
        }
        self.changed.notify_waiters();
        self.mirror();
    }

    /// Records the task's state where other instances read it, when tasks are shared, and waits until they
    /// can (bounded by the store's timeout): before its creation is answered, and once it ended.
    pub(crate) async fn persist(&self) -> Result<(), ErrorObject> {
        match &self.share {
            Some(share) => {
                let ttl = self.ttl.saturating_sub(self.created.elapsed());
                share.save_now(&self.id, &self.detailed(), self.principal.as_ref(), ttl).await
            }
            None => Ok(()),
        }
    }

    /// The terminal state another instance recorded for this task, when tasks are shared.
    async fn ended_elsewhere(&self) -> Option<DetailedTask> {
        match &self.share {
            Some(share) => share.ended_elsewhere(&self.id).await,
            None => None,
        }
    }

    /// Records the task's state where other instances read it, when tasks are shared.
    fn mirror(&self) {
        if let Some(share) = &self.share {
            let ttl = self.ttl.saturating_sub(self.created.elapsed());
            share.save(&self.id, &self.detailed(), self.principal.as_ref(), ttl);
        }
    }

    /// Delivers answers (`tasks/update`); answered questions leave the pending list at once.
    pub(crate) fn deliver(&self, responses: InputResponses) {
        self.update(|state| {
            for (key, value) in responses {
                if state.pending.remove(&key).is_some() {
                    state.answers.insert(key, value);
                }
            }
            if state.status == TaskStatus::InputRequired && state.pending.is_empty() {
                state.status = TaskStatus::Working;
            }
        });
    }

    /// Cancels a running task; a finished one stays as it is (cancel is idempotent).
    pub(crate) fn cancel(&self) {
        self.update(|state| {
            if !state.status.is_terminal() {
                state.status = TaskStatus::Cancelled;
                state.pending.clear();
            }
        });
        self.cancellation.cancel();
    }

    /// Asks the client a question from inside the task and waits for the answer `tasks/update` brings, for
    /// at most the input timeout; then the question is withdrawn and the handler gets an error.
    pub(crate) async fn ask(&self, key: &str, request: InputRequest) -> Result<InputResponse, HandlerError> {
        match tokio::time::timeout(self.input_timeout, self.wait_for_answer(key, request)).await {
            Ok(answer) => answer,
            Err(_) => {
                self.update(|state| {
                    state.pending.remove(key);
                    if state.status == TaskStatus::InputRequired && state.pending.is_empty() {
                        state.status = TaskStatus::Working;
                    }
                });
                Err(HandlerError::failed(format!("no answer to {key:?} within {:?}", self.input_timeout)))
            }
        }
    }

    async fn wait_for_answer(&self, key: &str, request: InputRequest) -> Result<InputResponse, HandlerError> {
        loop {
            let changed = self.changed.notified();
            {
                let mut state = self.state.lock().expect("task lock");
                if let Some(answer) = state.answers.remove(key) {
                    return request.decode_response(&answer).map_err(|e| {
                        HandlerError::invalid_params(format!("answer {key:?} does not fit {}: {e}", request.method()))
                    });
                }
                if state.status.is_terminal() {
                    return Err(HandlerError::failed("the task has ended"));
                }
                if !state.pending.contains_key(key) {
                    state.pending.insert(key.to_owned(), request.clone());
                    state.status = TaskStatus::InputRequired;
                    state.updated_at = timestamp();
                    drop(state);
                    self.mirror();
                }
            }
            tokio::select! {
                _ = changed => {}
                _ = self.cancellation.cancelled() => return Err(HandlerError::failed("the task was cancelled")),
            }
        }
    }

    /// Records how the handler ended.
    pub(crate) fn finish(&self, outcome: Result<CallToolResult, HandlerError>) {
        self.update(|state| {
            if state.status.is_terminal() {
                return;
            }
            state.pending.clear();
            let completed = |result: CallToolResult| match serde_json::to_value(result) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => None,
            };
            // A tool error is a completed task whose result says so; `failed` means a protocol error.
            match outcome.or_else(|e| e.disclose().into_tool_result()) {
                Ok(result) => {
                    state.status = TaskStatus::Completed;
                    state.result = completed(result);
                }
                Err(NoToolResult::Protocol(error)) => {
                    state.status = TaskStatus::Failed;
                    state.error = Some(error);
                }
                Err(NoToolResult::InputRequired) => {
                    state.status = TaskStatus::Failed;
                    state.error = Some(ErrorObject::internal("the task asked for input it could not wait for"));
                }
            }
        });
    }
}

/// How many times an ended task's state is written to the shared store before giving up (and logging).
const FINAL_SAVE_ATTEMPTS: u32 = 3;

/// Runs a task's handler in the background until it ends, the client cancels the task, or the task outlives
/// its time to live (then it is cancelled and forgotten). Either way the handler is dropped here.
pub(crate) fn run_in_background<F>(store: Arc<TaskStore>, task: Arc<TaskEntry>, run: F)
where
    F: Future<Output = Result<CallToolResult, HandlerError>> + Send + 'static,
{
    let background = async move {
        let expiry = tokio::time::sleep(task.ttl.saturating_sub(task.created.elapsed()));
        tokio::select! {
            // Published only if no other instance ended the task meanwhile (its heartbeat lapsed, and
            // clients were told the task failed, for good).
            outcome = run => match task.ended_elsewhere().await {
                Some(recorded) => store.overruled(&task.id, recorded),
                None => task.finish(outcome),
            },
            _ = task.cancellation.cancelled() => {}
            _ = expiry => return store.expire(&task),
        }
        // Its final state must reach the other instances, or they would say `working` until it expires.
        for attempt in 1..=FINAL_SAVE_ATTEMPTS {
            match task.persist().await {
                Ok(()) => break,
                Err(error) if attempt == FINAL_SAVE_ATTEMPTS => {
                    tracing::warn!(%error.message, task = %task.id, "a task's final state was not shared");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200) * attempt).await,
            }
        }
    };
    // Still in the request's span: the task's logs say which call it was.
    tokio::spawn(tracing::Instrument::in_current_span(background));
}

/// Where a request that may turn into a task stands. Shared by the dispatcher and the handler's context.
#[derive(Debug)]
pub(crate) struct TaskSlot {
    store: Arc<TaskStore>,
    owner: TaskOwner,
    principal: Option<PrincipalId>,
    escalate: Mutex<Option<oneshot::Sender<Arc<TaskEntry>>>>,
    pub(crate) entry: OnceLock<Arc<TaskEntry>>,
}

impl TaskSlot {
    /// The slot of a request by `owner`, made by `principal` (which the task will be bound to).
    pub(crate) fn new(
        store: Arc<TaskStore>,
        owner: TaskOwner,
        principal: Option<PrincipalId>,
    ) -> (Arc<TaskSlot>, oneshot::Receiver<Arc<TaskEntry>>) {
        let (tx, rx) = oneshot::channel();
        let slot = TaskSlot { store, owner, principal, escalate: Mutex::new(Some(tx)), entry: OnceLock::new() };
        (Arc::new(slot), rx)
    }

    /// Turns the request into a task: creates it and tells the dispatcher to answer with it.
    pub(crate) fn escalate(&self) -> Result<(), HandlerError> {
        let Some(tx) = self.escalate.lock().expect("slot lock").take() else { return Ok(()) };
        let entry = self.store.create(self.owner, self.principal.clone())?;
        let _ = self.entry.set(entry.clone());
        let _ = tx.send(entry);
        Ok(())
    }
}

/// The -32021 error for a client that did not declare the tasks extension.
pub(crate) fn extension_required() -> ErrorObject {
    ErrorObject::new(code::MISSING_REQUIRED_CLIENT_CAPABILITY, "this needs the io.modelcontextprotocol/tasks extension")
        .with_data(serde_json::json!({
            "requiredCapabilities": { "extensions": { crate::protocol::capabilities::extension_ids::TASKS: {} } }
        }))
}

fn new_task_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now as an RFC 3339 UTC timestamp with milliseconds.
pub(crate) fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (now.as_secs(), now.subsec_millis());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a (year, month, day) date in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert!(timestamp().ends_with('Z'));
    }

    #[tokio::test]
    async fn input_round_trip_and_cancellation() {
        let store = TaskStore::new(&crate::Limits::default(), Duration::from_millis(100));
        let task = store.create(TaskOwner::Unknown, None).unwrap();
        assert_eq!(store.get(&task.id).unwrap().status(), TaskStatus::Working);
        let asker = {
            let task = task.clone();
            tokio::spawn(async move { task.ask("k", InputRequest::ListRoots(None)).await })
        };
        tokio::task::yield_now().await;
        while task.status() != TaskStatus::InputRequired {
            tokio::task::yield_now().await;
        }
        assert!(task.detailed().input_requests.unwrap().contains_key("k"));
        let mut answers = InputResponses::new();
        answers.insert("k".into(), serde_json::json!({"roots": []}));
        answers.insert("stray".into(), serde_json::json!({}));
        task.deliver(answers);
        assert!(matches!(asker.await.unwrap(), Ok(InputResponse::ListRoots(_))));
        assert_eq!(task.status(), TaskStatus::Working);
        task.finish(Err(HandlerError::failed("boom")));
        assert_eq!(task.detailed().result.unwrap()["isError"], true);
        task.cancel();
        assert_eq!(task.status(), TaskStatus::Completed, "cancel leaves a finished task alone");
        assert!(store.get("nope").is_err());
    }

    /// A share in which another instance declared every task failed.
    #[derive(Debug)]
    struct FailedElsewhere;

    impl TaskShare for FailedElsewhere {
        fn save(&self, _: &str, _: &DetailedTask, _: Option<&PrincipalId>, _: Duration) {}

        fn save_now<'a>(
            &'a self,
            _: &'a str,
            _: &'a DetailedTask,
            _: Option<&'a PrincipalId>,
            _: Duration,
        ) -> ShareFuture<'a, Result<(), ErrorObject>> {
            Box::pin(async { Ok(()) })
        }

        fn load<'a>(&'a self, _: &'a str) -> ShareFuture<'a, Result<Option<SharedTask>, ErrorObject>> {
            Box::pin(async { Ok(None) })
        }

        fn forward(&self, _: &str, _: TaskCommand) {}

        fn ended_elsewhere<'a>(&'a self, id: &'a str) -> ShareFuture<'a, Option<DetailedTask>> {
            Box::pin(async move {
                let task = Task {
                    task_id: id.to_owned(),
                    status: TaskStatus::Failed,
                    status_message: None,
                    created_at: timestamp(),
                    last_updated_at: timestamp(),
                    ttl_ms: None,
                    poll_interval_ms: None,
                };
                let error = Some(ErrorObject::internal("the server instance running this task stopped"));
                Some(DetailedTask { task, input_requests: None, result: None, error })
            })
        }
    }

    #[tokio::test]
    async fn a_task_another_instance_ended_never_publishes_its_handlers_result() {
        let store = Arc::new(TaskStore::new(&crate::Limits::default(), Duration::from_millis(100)));
        store.share_with(Arc::new(FailedElsewhere));
        let task = store.create(TaskOwner::Unknown, None).unwrap();
        let published = task.changed.notified();
        run_in_background(store.clone(), task.clone(), async { Ok(CallToolResult::text("done")) });
        tokio::time::timeout(Duration::from_secs(10), published).await.expect("the task ends");
        let ended = task.detailed();
        assert_eq!(ended.task.status, TaskStatus::Failed, "{ended:?}");
        assert!(ended.result.is_none(), "{ended:?}");
    }
}
