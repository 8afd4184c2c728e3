//! `prompts/list`, `prompts/get` and `completion/complete`.

use std::collections::BTreeMap;

use crate::protocol::completion::{CompleteParams, CompleteResult, Completion, CompletionReference};
use crate::protocol::prompts::{GetPromptParams, ListPromptsParams, ListPromptsResult};
use crate::protocol::{ErrorObject, Request as _, decode_params};
use crate::server::completion::{CompletionRequest, CompletionTarget};
use crate::server::error::Disclosed;
use crate::server::input::StateBinding;
use crate::server::middleware::{Handler, Reply, Run, Targeted};
use crate::server::request::{
    Caller, Incoming, Outcome, TargetedIn, cache, check_name, context, declared, finish, input_required, layered,
    open_input, require_scopes, scope, visible,
};
use crate::server::visibility::{Target, Viewer};

/// `prompts/list`.
pub(super) fn list(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: ListPromptsParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    declared(server.capabilities.prompts.is_some(), method)?;
    let catalog = server.catalog();
    let cursor = params.cursor.as_deref();
    let (page, next_cursor) = super::visible_page(
        server,
        &scope,
        call,
        &catalog.prompts,
        |p| (&p.scopes, Target::Prompt(&p.prompt)),
        cursor,
    )?;
    let mut result = ListPromptsResult {
        prompts: page.iter().map(|p| p.prompt.clone()).collect(),
        next_cursor,
        ..Default::default()
    };
    (result.ttl_ms, result.cache_scope) = cache(server, &scope);
    finish(server, &scope, result)
}

/// `prompts/get`.
pub(super) async fn get(req: Incoming<'_>, mut call: Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let mut params: TargetedIn = decode_params(params)?;
    let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
    declared(server.capabilities.prompts.is_some(), method)?;
    let name = params.name.ok_or_else(|| ErrorObject::invalid_params("missing name"))?;
    check_name(headers, &name)?;
    let catalog = server.catalog();
    let viewer = Viewer::new(call.channel.client(), &scope.version);
    let prompt = catalog
        .prompt(&name)
        .filter(|p| visible(server, &viewer, Target::Prompt(&p.prompt)))
        .ok_or_else(|| unknown_prompt(&name))?;
    require_scopes(&call, &prompt.scopes)?;
    let arguments: BTreeMap<String, String> = match &params.arguments {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| ErrorObject::invalid_params(format!("prompt arguments must be strings: {e}")))?,
        None => BTreeMap::new(),
    };
    let binding = StateBinding { method, target: &name, arguments: params.arguments.as_deref() };
    let input = open_input(server, &scope, &call, binding, params.input_responses, params.request_state)?;
    let layered = layered(server, prompt.layers.as_ref(), &mut call);
    let ctx = context(server, call, &scope, params.meta.as_ref(), input.clone());
    let get = match layered {
        None => Run::Handler((prompt.get)(ctx, arguments)),
        Some(layered) => {
            let handler = Handler::Prompt(prompt.get.clone(), arguments);
            let (arguments, meta) = (params.arguments.clone(), params.meta.take());
            let request = Targeted { method: GetPromptParams::METHOD, target: name.clone(), arguments, meta };
            layered.run(request, ctx, handler, Reply::into_prompt)
        }
    };
    match get.await {
        Ok(mut result) => {
            if result.description.is_none() {
                result.description = prompt.prompt.description.clone();
            }
            finish(server, &scope, result)
        }
        Err(error) => match error.disclose() {
            Disclosed::Message(message) => Err(ErrorObject::internal(message)),
            Disclosed::NotFound => Err(ErrorObject::invalid_params(format!("prompt not found: {name}"))),
            Disclosed::Protocol(error) => Err(error),
            Disclosed::InputRequired => input_required(server, &scope, binding, input),
        },
    }
}

/// `completion/complete`, for prompt arguments and resource template variables.
pub(super) async fn complete(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: CompleteParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    declared(server.capabilities.completions.is_some(), method)?;
    let catalog = server.catalog();
    let viewer = Viewer::new(call.channel.client(), &scope.version);
    let target = match &params.reference {
        CompletionReference::Prompt(p) => {
            let prompt = catalog
                .prompt(&p.name)
                .filter(|found| visible(server, &viewer, Target::Prompt(&found.prompt)))
                .ok_or_else(|| unknown_prompt(&p.name))?;
            // Suggestions for a prompt's arguments are part of what its scopes guard.
            require_scopes(call, &prompt.scopes)?;
            Some(CompletionTarget::Prompt(p.name.clone()))
        }
        CompletionReference::Resource(r) => {
            // A template hidden from the caller suggests nothing, like one without a completer.
            let template = catalog.templates.iter().find(|t| t.template.uri_template == r.uri);
            let hidden = template.is_some_and(|t| !visible(server, &viewer, Target::Template(&t.template)));
            // Suggestions for a template's variables are part of what its scopes guard, as for prompts.
            if let Some(template) = template.filter(|_| !hidden) {
                require_scopes(call, &template.scopes)?;
            }
            (!hidden).then(|| CompletionTarget::Template(r.uri.clone()))
        }
    };
    let completer = target.and_then(|target| catalog.completers.get(&(target, params.argument.name.clone())));
    let values = match completer {
        Some(complete) => {
            let request = CompletionRequest {
                argument: params.argument.name.clone(),
                value: params.argument.value.clone(),
                context: params.context.and_then(|c| c.arguments).unwrap_or_default(),
            };
            complete(request).await
        }
        None => Vec::new(),
    };
    finish(server, &scope, CompleteResult { completion: Completion::from_values(values), ..Default::default() })
}

fn unknown_prompt(name: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("unknown prompt: {name}"))
}
