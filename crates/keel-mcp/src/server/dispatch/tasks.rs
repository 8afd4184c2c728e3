//! The tasks extension's methods (`io.modelcontextprotocol/tasks`, 2026-07-28 only): `tasks/get`,
//! `tasks/update` and `tasks/cancel`, on the tasks the server's [`TaskStore`](crate::server::tasks::TaskStore)
//! keeps; and the [`TaskOffer`] through which a `tools/call` may continue as a task. Without the `tasks`
//! feature, `no_tasks.rs` stands in with the same interface.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::oneshot;

use crate::protocol::capabilities::extension_ids;
use crate::protocol::lifecycle::EmptyResult;
use crate::protocol::meta::RequestMeta;
use crate::protocol::tasks::extension::{CreateTaskResult, GetTaskParams, GetTaskResult, UpdateTaskParams};
use crate::protocol::tools::CallToolResult;
use crate::protocol::{ErrorObject, InputResponses, Request, decode_params};
use crate::server::context::{RequestContext, principal_of};
use crate::server::error::HandlerError;
use crate::server::inner::ServerInner;
use crate::server::middleware::Run;
#[cfg(feature = "http-server")]
use crate::server::peer_addr::{PeerAddr, PeerKey};
use crate::server::principal::{PrincipalId, same_caller};
use crate::server::request::{Caller, Incoming, Outcome, Scope, check_name, finish, scope};
use crate::server::session::LegacySession;
use crate::server::tasks::{
    TaskCommand, TaskEntry, TaskOwner, TaskSlot, TaskSupport, extension_required, run_in_background,
};
use crate::server::tool::ToolDef;

/// `tasks/get`, `tasks/update` and `tasks/cancel` (tasks extension, 2026-07-28 only).
pub(super) async fn dispatch(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TaskIn {
        task_id: String,
        #[serde(default)]
        input_responses: Option<InputResponses>,
        #[serde(rename = "_meta", default)]
        meta: Option<RequestMeta>,
    }
    let params: TaskIn = decode_params(params)?;
    let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
    // The 2025-11-25 experimental tasks are not served; the extension is a 2026-07-28 surface.
    if !scope.modern() {
        return Err(ErrorObject::method_not_found(method));
    }
    if !scope.client_capabilities.has_extension(extension_ids::TASKS) {
        return Err(extension_required());
    }
    check_name(headers, &params.task_id)?;
    // A task answers only the principal that created it; to anyone else it does not exist.
    let caller = principal_of(call.channel.client());
    let task = match server.tasks.get_for(&params.task_id, caller) {
        Ok(task) => task,
        // Not running here: another instance sharing tasks may run it.
        Err(unknown) => {
            let Some(share) = server.tasks.shared() else { return Err(unknown) };
            let Some((remote, owner)) = share.load(&params.task_id).await? else { return Err(unknown) };
            if !same_caller(owner.as_ref(), caller) {
                return Err(unknown);
            }
            return match method {
                GetTaskParams::METHOD => {
                    finish(server, &scope, GetTaskResult { task: remote, result_type: None, meta: None })
                }
                UpdateTaskParams::METHOD => {
                    let responses = params.input_responses.unwrap_or_default();
                    share.forward(&params.task_id, TaskCommand::Deliver(responses));
                    finish(server, &scope, EmptyResult::default())
                }
                _ => {
                    share.forward(&params.task_id, TaskCommand::Cancel);
                    finish(server, &scope, EmptyResult::default())
                }
            };
        }
    };
    match method {
        GetTaskParams::METHOD => {
            finish(server, &scope, GetTaskResult { task: task.detailed(), result_type: None, meta: None })
        }
        UpdateTaskParams::METHOD => {
            task.deliver(params.input_responses.unwrap_or_default());
            finish(server, &scope, EmptyResult::default())
        }
        _ => {
            task.cancel();
            finish(server, &scope, EmptyResult::default())
        }
    }
}

/// A `tools/call` whose tool may run as a task, checked before anything else about the call is read.
pub(super) struct TaskOffer {
    declared: bool,
}

impl TaskOffer {
    /// Refuses a tool that runs only as a task to a client that did not declare the extension (-32021).
    pub(super) fn check(tool: &ToolDef, scope: &Scope) -> Result<Self, ErrorObject> {
        let declared = scope.client_capabilities.has_extension(extension_ids::TASKS);
        if tool.task_support == TaskSupport::Required && !declared {
            return Err(extension_required());
        }
        Ok(TaskOffer { declared })
    }

    /// Gives the handler's context a task slot when the call may become a task (the tool supports tasks, the
    /// client declared the extension, and the request is modern).
    pub(super) fn offer(
        self,
        server: &ServerInner,
        session: Option<&Mutex<LegacySession>>,
        tool: &ToolDef,
        scope: &Scope,
        ctx: &mut RequestContext,
    ) -> TaskRun {
        if tool.task_support == TaskSupport::Forbidden || !self.declared || !scope.modern() {
            return TaskRun { escalated: None };
        }
        let owner = match session {
            Some(session) => TaskOwner::Session(session.lock().expect("session lock").client),
            None => TaskOwner::stateless(ctx),
        };
        // A principal naming no subject could not be told from other users of its client (or, naming no
        // client either, of its issuer): its calls run to the end instead of becoming tasks they could read.
        let client_only = crate::server::context::client_only_owners(ctx.channel.client());
        if ctx.principal().is_some_and(|p| !PrincipalId::can_own(p, client_only)) {
            return TaskRun { escalated: None };
        }
        let principal = ctx.principal().map(PrincipalId::of_principal);
        let (slot, escalated) = TaskSlot::new(server.tasks.clone(), owner, principal);
        ctx.task = Some(slot);
        TaskRun { escalated: Some(escalated) }
    }
}

/// A tool call that may continue as a task once its handler asks to.
pub(super) struct TaskRun {
    escalated: Option<oneshot::Receiver<Arc<TaskEntry>>>,
}

impl TaskRun {
    /// Runs the handler until it ends (`Ok`) or continues as a task: then it goes on in the background and
    /// the answer is the `CreateTaskResult` (`Err`).
    pub(super) async fn run(
        self,
        server: &ServerInner,
        scope: &Scope,
        run: Run<CallToolResult>,
    ) -> Result<Result<CallToolResult, HandlerError>, Outcome> {
        let Some(escalated) = self.escalated else { return Ok(run.await) };
        let mut run = run;
        tokio::select! {
            biased;
            outcome = &mut run => Ok(outcome),
            Ok(task) = escalated => {
                // Other instances must know the task before its client does (it may poll any of them).
                if let Err(error) = task.persist().await {
                    tracing::warn!(%error.message, "a task could not be shared; cancelling it");
                    task.cancel();
                    return Err(Err(error));
                }
                run_in_background(server.tasks.clone(), task.clone(), run);
                Err(finish(server, scope, CreateTaskResult::new(task.summary())))
            }
        }
    }
}

impl TaskOwner {
    /// The owner of a task that a stateless request starts: its HTTP peer, when the request says who that is.
    /// Here rather than in `tasks.rs`, which the handler's context imports: the store must not need the context.
    #[cfg_attr(not(feature = "http-server"), expect(unused_variables, reason = "only HTTP knows the peer"))]
    fn stateless(ctx: &RequestContext) -> Self {
        #[cfg(feature = "http-server")]
        if let Some(PeerAddr(addr)) = ctx.http_request().and_then(|parts| parts.extensions.get()) {
            return TaskOwner::Peer(PeerKey::of(addr.ip()));
        }
        TaskOwner::Unknown
    }
}
