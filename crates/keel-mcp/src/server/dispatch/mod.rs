//! Request dispatch: decides each request's era, decodes its params once into the method's type, runs the
//! handler and stamps the result as the era requires. Every transport ends here: the engine for stream
//! connections, and the HTTP service directly, request by request.
//!
//! This module only routes: what every method shares (era scope, input rounds, encoding, pagination) is in
//! [`request`](super::request), and each feature area's methods live in a submodule of their own.

mod lifecycle;
mod prompts;
mod resources;
#[cfg(feature = "skills")]
mod skills;
mod subscriptions;
#[cfg(feature = "tasks")]
mod tasks;
#[cfg(not(feature = "tasks"))]
#[path = "no_tasks.rs"]
mod tasks;
mod tools;

use std::sync::Mutex;

use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::Instrument as _;

use super::inner::ServerInner;
use super::request::{Access, Caller, HeaderChecks, Incoming, Outcome, Scope, paginate, visible};
use super::session::LegacySession;
use super::visibility::{Target, Viewer};
use crate::protocol::completion::CompleteParams;
use crate::protocol::jsonrpc::RawRequest;
use crate::protocol::lifecycle::{DiscoverParams, InitializeParams, PingParams};
use crate::protocol::logging::SetLevelParams;
use crate::protocol::meta::RequestMeta;
use crate::protocol::prompts::{GetPromptParams, ListPromptsParams};
use crate::protocol::resources::{
    ListResourceTemplatesParams, ListResourcesParams, ReadResourceParams, SubscribeParams, UnsubscribeParams,
};
#[cfg(feature = "skills")]
use crate::protocol::skills::{GetSkillParams, ListSkillsParams, ReadDirectoryParams};
use crate::protocol::subscriptions::ListenParams;
#[cfg(feature = "tasks")]
use crate::protocol::tasks::extension::{CancelTaskParams, GetTaskParams, UpdateTaskParams};
use crate::protocol::tools::{CallToolParams, ListToolsParams};
use crate::protocol::{ErrorObject, Request, decode_params};

/// Handles one request. `session` is the legacy session the request belongs to (`None` on the stateless
/// HTTP path); `headers` are the HTTP headers to check against the body (modern HTTP only).
///
/// Everything it does runs in one `mcp.request` span (method, id, era once known, HTTP session), which the
/// handler and whatever it spawns with `in_current_span` inherit. Without a subscriber the span is a no-op.
/// With the `otel` feature, the request is also an OpenTelemetry operation ([`crate::telemetry`]).
pub(crate) async fn dispatch(
    server: &ServerInner,
    session: Option<&Mutex<LegacySession>>,
    request: RawRequest,
    call: Caller,
    headers: Option<&HeaderChecks>,
) -> Outcome {
    let span = tracing::info_span!(
        "mcp.request",
        method = request.method.as_str(),
        id = %call.id,
        era = tracing::field::Empty,
        session = tracing::field::Empty,
    );
    // Without a subscriber, nothing to record: spare the hot path the call.
    if !span.is_disabled()
        && let Some(session) = call.channel.client().session_id()
    {
        span.record("session", session);
    }
    #[cfg(feature = "otel")]
    let operation = crate::telemetry::server::ServerOperation::dispatched(&request, &call, session);
    let handling = route(server, session, request, call, headers).instrument(span);
    #[cfg(feature = "otel")]
    if let Some(operation) = operation {
        return operation.run(handling).await;
    }
    handling.await
}

async fn route(
    server: &ServerInner,
    session: Option<&Mutex<LegacySession>>,
    request: RawRequest,
    call: Caller,
    headers: Option<&HeaderChecks>,
) -> Outcome {
    let params = request.params.as_deref();
    let method = request.method.as_str();
    if REMOVED_IN_MODERN.contains(&method) && is_modern(params, headers) {
        // Whatever the params, a method the revision removed does not exist.
        return Err(ErrorObject::method_not_found(method));
    }
    let req = Incoming { server, session, method, params, headers };
    match method {
        InitializeParams::METHOD => match session {
            Some(session) => lifecycle::initialize(server, session, decode_params(params)?),
            None => Err(ErrorObject::method_not_found(InitializeParams::METHOD)),
        },
        PingParams::METHOD => lifecycle::ping(req),
        DiscoverParams::METHOD => lifecycle::discover(req),
        SetLevelParams::METHOD => lifecycle::set_level(req),
        ListToolsParams::METHOD => tools::list(req, &call),
        CallToolParams::METHOD => tools::call(req, call).await,
        ListResourcesParams::METHOD => resources::list(req, &call),
        ListResourceTemplatesParams::METHOD => resources::templates(req, &call),
        ReadResourceParams::METHOD => resources::read(req, call).await,
        SubscribeParams::METHOD | UnsubscribeParams::METHOD => resources::subscribe(req, &call),
        ListPromptsParams::METHOD => prompts::list(req, &call),
        GetPromptParams::METHOD => prompts::get(req, call).await,
        CompleteParams::METHOD => prompts::complete(req, &call).await,
        ListenParams::METHOD => subscriptions::listen(req, call).await,
        #[cfg(feature = "skills")]
        ListSkillsParams::METHOD | GetSkillParams::METHOD | ReadDirectoryParams::METHOD => skills::dispatch(req),
        #[cfg(feature = "tasks")]
        GetTaskParams::METHOD | UpdateTaskParams::METHOD | CancelTaskParams::METHOD => {
            tasks::dispatch(req, &call).await
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// One page of a list as this caller sees it: only the items the visibility predicate shows
/// ([`ServerBuilder::visibility`](super::ServerBuilder::visibility)) and, when lists are filtered by scope (the
/// default over HTTP once definitions name scopes), whose scopes the caller holds — so the list never shows
/// what a call would refuse. The one place lists narrow per caller; `about` gives each item's scopes and what
/// the predicate sees of it.
fn visible_page<'a, T>(
    server: &ServerInner,
    scope: &Scope,
    call: &Caller,
    items: &'a [T],
    about: impl Fn(&'a T) -> (&'a [String], Target<'a>),
    cursor: Option<&str>,
) -> Result<(Vec<&'a T>, Option<String>), crate::protocol::ErrorObject> {
    // Without scoped items there is nothing to hide by scope, and the caller's access is not even looked up.
    let access = items.iter().any(|item| !about(item).0.is_empty()).then(|| Access::of(call));
    let access = access.filter(Access::filters_lists);
    if access.is_some() || server.visibility.is_some() {
        let viewer = Viewer::new(call.channel.client(), &scope.version);
        let shown: Vec<&T> = items
            .iter()
            .filter(|item| {
                let (scopes, target) = about(item);
                access.as_ref().is_none_or(|access| access.permits(scopes)) && visible(server, &viewer, target)
            })
            .collect();
        let (page, next) = paginate(&shown, cursor, server.page_size)?;
        return Ok((page.to_vec(), next));
    }
    let (page, next) = paginate(items, cursor, server.page_size)?;
    Ok((page.iter().collect(), next))
}

/// Methods the 2026-07-28 revision removed (besides `initialize`, which never reaches a modern scope).
const REMOVED_IN_MODERN: [&str; 4] =
    [PingParams::METHOD, SetLevelParams::METHOD, SubscribeParams::METHOD, UnsubscribeParams::METHOD];

/// Whether a request speaks the modern era, judged before its params are decoded into the method's type.
fn is_modern(params: Option<&RawValue>, headers: Option<&HeaderChecks>) -> bool {
    #[derive(Deserialize)]
    struct MetaOnly {
        #[serde(rename = "_meta", default)]
        meta: Option<RequestMeta>,
    }
    headers.is_some()
        || decode_params::<MetaOnly>(params).is_ok_and(|p| p.meta.is_some_and(|m| m.protocol_version.is_some()))
}
