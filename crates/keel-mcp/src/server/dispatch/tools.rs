//! `tools/list` and `tools/call`.

#[cfg(feature = "tasks")]
use crate::protocol::capabilities::extension_ids;
#[cfg(feature = "tasks")]
use crate::protocol::tasks::extension::CreateTaskResult;
#[cfg(feature = "schema-validation")]
use crate::protocol::tools::CallToolResult;
use crate::protocol::tools::{ListToolsParams, ListToolsResult};
use crate::protocol::{ErrorObject, JsonObject, Request as _, decode_params};
#[cfg(feature = "tasks")]
use crate::server::context::RequestContext;
use crate::server::error::NoToolResult;
use crate::server::input::StateBinding;
#[cfg(all(feature = "tasks", feature = "http-server"))]
use crate::server::peer_addr::{PeerAddr, PeerKey};
#[cfg(feature = "tasks")]
use crate::server::tasks::TaskSupport;
#[cfg(feature = "tasks")]
use crate::server::tasks::{self, TaskOwner, TaskSlot};
use crate::server::tool;

use crate::server::request::{
    Caller, Incoming, Outcome, TargetedIn, cache, check_name, context, declared, finish, input_required, open_input,
    paginate, scope,
};

/// `tools/list`.
pub(super) fn list(req: Incoming<'_>) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: ListToolsParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    declared(server.capabilities.tools.is_some(), method)?;
    let catalog = server.catalog();
    let tools = catalog.enabled_tools();
    let (page, next_cursor) = paginate(&tools, params.cursor.as_deref(), server.page_size)?;
    let mut result =
        ListToolsResult { tools: page.iter().map(|t| t.tool.clone()).collect(), next_cursor, ..Default::default() };
    (result.ttl_ms, result.cache_scope) = cache(server, &scope);
    finish(server, &scope, result)
}

/// `tools/call`: checks the name and any `Mcp-Param-*` headers, runs the tool (maybe as a task), and turns
/// its outcome into a result, a tool error or an input-required result.
pub(super) async fn call(req: Incoming<'_>, call: Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: TargetedIn = decode_params(params)?;
    let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
    let name = params.name.ok_or_else(|| ErrorObject::invalid_params("missing name"))?;
    check_name(headers, &name)?;
    let catalog = server.catalog();
    let tool = catalog.tool(&name).ok_or_else(|| tool::unknown_tool(&name))?;
    if let Some(headers) = headers
        && !tool.header_params.is_empty()
    {
        let arguments: Option<JsonObject> = match &params.arguments {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| ErrorObject::invalid_params(format!("arguments must be an object: {e}")))?,
            None => None,
        };
        crate::server::header_params::check(&tool.header_params, arguments.as_ref(), &headers.params)?;
    }
    #[cfg(feature = "tasks")]
    let tasks_declared = scope.client_capabilities.has_extension(extension_ids::TASKS);
    #[cfg(feature = "tasks")]
    if tool.task_support == TaskSupport::Required && !tasks_declared {
        return Err(tasks::extension_required());
    }
    let binding = StateBinding { method, target: &name, arguments: params.arguments.as_deref() };
    let input = open_input(server, &scope, binding, params.input_responses, params.request_state)?;
    #[cfg_attr(not(feature = "tasks"), expect(unused_mut, reason = "only a task slot is set later"))]
    let mut ctx = context(server, call, &scope, params.meta.as_ref(), input.clone());
    #[cfg(feature = "tasks")]
    let escalated = if tool.task_support != TaskSupport::Forbidden && tasks_declared && scope.modern() {
        let owner = match session {
            Some(session) => TaskOwner::Session(session.lock().expect("session lock").client),
            None => TaskOwner::stateless(&ctx),
        };
        let (slot, escalated) = TaskSlot::new(server.tasks.clone(), owner);
        ctx.task = Some(slot);
        Some(escalated)
    } else {
        None
    };
    #[cfg(feature = "schema-validation")]
    if let Some(validators) = &tool.validators {
        let arguments = match &params.arguments {
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
            None => serde_json::Value::Object(JsonObject::new()),
        };
        if let Some(why) = validators.check_arguments(&arguments) {
            // SEP-1303: the model can fix its arguments, so this is a tool error, not a protocol error.
            return finish(server, &scope, CallToolResult::error(why));
        }
    }
    let run = (tool.run)(ctx, params.arguments.as_deref());
    #[cfg(not(feature = "tasks"))]
    let outcome = run.await;
    #[cfg(feature = "tasks")]
    let outcome = match escalated {
        None => run.await,
        Some(escalated) => {
            let mut run = run;
            tokio::select! {
                biased;
                outcome = &mut run => outcome,
                Ok(task) = escalated => {
                    // The handler goes on in the background; the client polls the task.
                    tasks::run_in_background(server.tasks.clone(), task.clone(), run);
                    return finish(server, &scope, CreateTaskResult::new(task.summary()));
                }
            }
        }
    };
    match outcome {
        Ok(result) => {
            #[cfg(feature = "schema-validation")]
            if let Some(validators) = &tool.validators
                && !result.is_error()
            {
                validators.check_output(result.structured_content.as_ref())?;
            }
            finish(server, &scope, result)
        }
        Err(error) => match error.disclose().into_tool_result() {
            Ok(tool_error) => finish(server, &scope, tool_error),
            Err(NoToolResult::Protocol(error)) => Err(error),
            Err(NoToolResult::InputRequired) => input_required(server, &scope, binding, input),
        },
    }
}

#[cfg(feature = "tasks")]
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
