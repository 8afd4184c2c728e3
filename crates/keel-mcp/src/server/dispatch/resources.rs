//! `resources/list`, `resources/templates/list`, `resources/read` and the legacy `resources/subscribe` /
//! `resources/unsubscribe`.

use std::collections::BTreeMap;

use crate::protocol::jsonrpc::code;
use crate::protocol::lifecycle::EmptyResult;
use crate::protocol::resources::{
    ListResourceTemplatesParams, ListResourceTemplatesResult, ListResourcesParams, ListResourcesResult,
    ReadResourceParams, ReadResourceResult, SubscribeParams,
};
use crate::protocol::{ErrorObject, Request as _, decode_params};
use crate::server::catalog::Catalog;
use crate::server::error::Disclosed;
use crate::server::inner::ServerInner;
use crate::server::input::StateBinding;
use crate::server::middleware::{Handler, Next, Reply, Run, Targeted};
use crate::server::request::{
    Access, Caller, Incoming, Outcome, Scope, TargetedIn, cache, check_name, context, declared, finish, input_required,
    layered, legacy_only, open_input, require_scopes, scope, visible,
};
use crate::server::resource::{ErasedRead, TemplateVars};
use crate::server::visibility::{Target, Viewer};

/// `resources/list`.
pub(super) fn list(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: ListResourcesParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    declared(server.capabilities.resources.is_some(), method)?;
    let catalog = server.catalog();
    let cursor = params.cursor.as_deref();
    let (page, next_cursor) = super::visible_page(
        server,
        &scope,
        call,
        &catalog.resources,
        |r| (&r.scopes, Target::Resource(&r.resource)),
        cursor,
    )?;
    let mut result = ListResourcesResult {
        resources: page.iter().map(|r| r.resource.clone()).collect(),
        next_cursor,
        ..Default::default()
    };
    (result.ttl_ms, result.cache_scope) = cache(server, &scope);
    finish(server, &scope, result)
}

/// `resources/templates/list`.
pub(super) fn templates(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: ListResourceTemplatesParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    declared(server.capabilities.resources.is_some(), method)?;
    let catalog = server.catalog();
    let cursor = params.cursor.as_deref();
    let (page, next_cursor) = super::visible_page(
        server,
        &scope,
        call,
        &catalog.templates,
        |t| (&t.scopes, Target::Template(&t.template)),
        cursor,
    )?;
    let mut result = ListResourceTemplatesResult {
        resource_templates: page.iter().map(|t| t.template.clone()).collect(),
        next_cursor,
        ..Default::default()
    };
    (result.ttl_ms, result.cache_scope) = cache(server, &scope);
    finish(server, &scope, result)
}

/// `resources/read`: a listed resource or the first template that matches.
pub(super) async fn read(req: Incoming<'_>, mut call: Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let mut params: TargetedIn = decode_params(params)?;
    let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
    declared(server.capabilities.resources.is_some(), method)?;
    let uri = params.uri.ok_or_else(|| ErrorObject::invalid_params("missing uri"))?;
    check_uri_length(server, &uri)?;
    check_name(headers, &uri)?;
    let catalog = server.catalog();
    let viewer = Viewer::new(call.channel.client(), &scope.version);
    let found = find_resource(&catalog, &uri).filter(|found| visible(server, &viewer, found.target));
    let Found { read, vars, layers, scopes, .. } = found.ok_or_else(|| resource_not_found(&scope, &uri))?;
    require_scopes(&call, scopes)?;
    let binding = StateBinding { method, target: &uri, arguments: None };
    let input = open_input(server, &scope, &call, binding, params.input_responses, params.request_state)?;
    let layered = layered(server, layers, &mut call);
    let ctx = context(server, call, &scope, params.meta.as_ref(), input.clone());
    let read = match layered {
        None => Run::Handler(read(ctx, uri.clone(), vars)),
        Some(layered) => {
            let handler = Handler::Resource(read.clone(), vars);
            let meta = params.meta.take();
            let request = Targeted { method: ReadResourceParams::METHOD, target: uri.clone(), arguments: None, meta };
            layered.run(request, ctx, handler, Reply::into_resource)
        }
    };
    match read.await {
        Ok(contents) if contents.is_empty() => Err(resource_not_found(&scope, &uri)),
        Ok(contents) => {
            let mut result = ReadResourceResult { contents, ..Default::default() };
            (result.ttl_ms, result.cache_scope) = cache(server, &scope);
            finish(server, &scope, result)
        }
        Err(error) => match error.disclose() {
            Disclosed::Message(message) => Err(ErrorObject::internal(message)),
            Disclosed::NotFound => Err(resource_not_found(&scope, &uri)),
            Disclosed::Protocol(error) => Err(error),
            Disclosed::InputRequired => input_required(server, &scope, binding, input),
        },
    }
}

/// `resources/subscribe` and `resources/unsubscribe` (legacy; replaced by `subscriptions/listen`).
pub(super) fn subscribe(req: Incoming<'_>, call: &Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: SubscribeParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    // Replaced by subscriptions/listen in 2026-07-28.
    legacy_only(&scope, method)?;
    declared(server.capabilities.resources.as_ref().is_some_and(|r| r.subscribe == Some(true)), method)?;
    check_uri_length(server, &params.uri)?;
    let subscribing = method == SubscribeParams::METHOD;
    // Only what the server can read can change: a subscription to anything else would never fire. Nor can
    // a caller follow the changes of what it may not read.
    if subscribing {
        let viewer = Viewer::new(call.channel.client(), &scope.version);
        let catalog = server.catalog();
        let found = find_resource(&catalog, &params.uri).filter(|found| visible(server, &viewer, found.target));
        let found = found.ok_or_else(|| resource_not_found(&scope, &params.uri))?;
        require_scopes(call, found.scopes)?;
    }
    if let Some(session) = session {
        let mut session = session.lock().expect("session lock");
        if !subscribing {
            session.subscriptions.remove(&params.uri);
        } else if session.subscriptions.len() < server.limits.max_subscriptions
            || session.subscriptions.contains(&params.uri)
        {
            session.subscriptions.insert(params.uri);
        } else {
            return Err(ErrorObject::invalid_params(format!(
                "this session already has {} resource subscriptions; unsubscribe from some first",
                server.limits.max_subscriptions
            )));
        }
    }
    finish(server, &scope, EmptyResult::default())
}

/// Refuses a resource URI longer than [`Limits::max_resource_uri_bytes`](crate::Limits::max_resource_uri_bytes)
/// before any matching work is spent on it.
fn check_uri_length(server: &crate::server::inner::ServerInner, uri: &str) -> Result<(), ErrorObject> {
    let limit = server.limits.max_resource_uri_bytes;
    if uri.len() > limit {
        return Err(ErrorObject::invalid_params(format!("uri exceeds the {limit}-byte limit")));
    }
    Ok(())
}
/// What a URI reads: a listed resource or the first template that matches it.
struct Found<'a> {
    read: &'a ErasedRead,
    vars: TemplateVars,
    layers: Option<&'a Next>,
    /// The OAuth scopes reading it needs.
    scopes: &'a [String],
    /// What the visibility predicate decides on.
    target: Target<'a>,
}

/// Whether the caller may follow the changes of `uri`: the server can read it, and the caller may see it
/// and holds its scopes (what `resources/subscribe` checks, and `subscriptions/listen` filters by).
pub(super) fn may_follow(server: &ServerInner, viewer: &Viewer<'_>, call: &Caller, uri: &str) -> bool {
    let catalog = server.catalog();
    find_resource(&catalog, uri)
        .is_some_and(|found| visible(server, viewer, found.target) && Access::of(call).permits(found.scopes))
}

fn find_resource<'a>(catalog: &'a Catalog, uri: &str) -> Option<Found<'a>> {
    if let Some(resource) = catalog.resource(uri) {
        let target = Target::Resource(&resource.resource);
        let (read, layers, scopes) = (&resource.read, resource.layers.as_ref(), &resource.scopes[..]);
        return Some(Found { read, vars: BTreeMap::new(), layers, scopes, target });
    }
    let (template, vars) = catalog.match_template(uri)?;
    let target = Target::Template(&template.template);
    Some(Found { read: &template.read, vars, layers: template.layers.as_ref(), scopes: &template.scopes, target })
}

/// Resource not found: -32602 with `data.uri` from 2026-07-28 on (SEP-2164), -32002 before.
fn resource_not_found(scope: &Scope, uri: &str) -> ErrorObject {
    let code = if scope.version.resource_not_found_is_invalid_params() {
        code::INVALID_PARAMS
    } else {
        code::RESOURCE_NOT_FOUND
    };
    ErrorObject::new(code, format!("resource not found: {uri}")).with_data(serde_json::json!({ "uri": uri }))
}
