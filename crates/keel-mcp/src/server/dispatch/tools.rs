//! `tools/list` and `tools/call`.

use crate::protocol::tools::{CallToolParams, CallToolResult, ListToolsParams, ListToolsResult};
use crate::protocol::{ErrorObject, JsonObject, Request as _, decode_params};
use crate::server::error::NoToolResult;
use crate::server::input::StateBinding;
use crate::server::middleware::{Handler, Reply, Run, Targeted};
use crate::server::request::{
    Caller, Incoming, Outcome, TargetedIn, cache, check_name, context, declared, finish, input_required, layered,
    open_input, require_scopes, scope, visible,
};
use crate::server::tool;
use crate::server::visibility::{Target, Viewer};

use super::tasks::TaskOffer;

/// `tools/list`.
pub(super) fn list(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: ListToolsParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    declared(server.capabilities.tools.is_some(), method)?;
    let catalog = server.catalog();
    let tools = catalog.enabled_tools();
    let (page, next_cursor) = super::visible_page(
        server,
        &scope,
        call,
        &tools,
        |t| (&t.scopes, Target::Tool(&t.tool)),
        params.cursor.as_deref(),
    )?;
    let mut result =
        ListToolsResult { tools: page.iter().map(|t| t.tool.clone()).collect(), next_cursor, ..Default::default() };
    (result.ttl_ms, result.cache_scope) = cache(server, &scope);
    finish(server, &scope, result)
}

/// `tools/call`: checks the name and any `Mcp-Param-*` headers, runs the tool (maybe as a task), and turns
/// its outcome into a result, a tool error or an input-required result.
pub(super) async fn call(req: Incoming<'_>, mut call: Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let mut params: TargetedIn = decode_params(params)?;
    let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
    let name = params.name.ok_or_else(|| ErrorObject::invalid_params("missing name"))?;
    check_name(headers, &name)?;
    let catalog = server.catalog();
    let tool = catalog.tool(&name).ok_or_else(|| tool::unknown_tool(&name))?;
    // A tool hidden from this caller does not exist for it.
    if !visible(server, &Viewer::new(call.channel.client(), &scope.version), Target::Tool(&tool.tool)) {
        return Err(tool::unknown_tool(&name));
    }
    require_scopes(&call, &tool.scopes)?;
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
    let task = TaskOffer::check(tool, &scope)?;
    let binding = StateBinding { method, target: &name, arguments: params.arguments.as_deref() };
    let input = open_input(server, &scope, &call, binding, params.input_responses, params.request_state)?;
    let layered = layered(server, tool.layers.as_ref(), &mut call);
    let mut ctx = context(server, call, &scope, params.meta.as_ref(), input.clone());
    let task = task.offer(server, session, tool, &scope, &mut ctx);
    if let Some(why) = tool.invalid_arguments(params.arguments.as_deref()) {
        // SEP-1303: the model can fix its arguments, so this is a tool error, not a protocol error.
        return finish(server, &scope, CallToolResult::error(why));
    }
    let run = match layered {
        None => Run::Handler((tool.run)(ctx, params.arguments.as_deref())),
        Some(layered) => {
            let handler = Handler::Tool(tool.run.clone());
            let (arguments, meta) = (params.arguments.clone(), params.meta.take());
            let request = Targeted { method: CallToolParams::METHOD, target: name.clone(), arguments, meta };
            layered.run(request, ctx, handler, Reply::into_tool)
        }
    };
    let outcome = match task.run(server, &scope, run).await {
        Ok(outcome) => outcome,
        // The handler goes on in the background; the client polls the task.
        Err(became_task) => return became_task,
    };
    match outcome {
        Ok(result) => {
            tool.check_output(&result)?;
            finish(server, &scope, result)
        }
        Err(error) => match error.disclose().into_tool_result() {
            Ok(tool_error) => finish(server, &scope, tool_error),
            Err(NoToolResult::Protocol(error)) => Err(error),
            Err(NoToolResult::InputRequired) => input_required(server, &scope, binding, input),
        },
    }
}
