//! Request dispatch: decides each request's era, decodes its params once into the method's type, runs the
//! handler and stamps the result as the era requires. Every transport ends here: the engine for stream
//! connections, and the HTTP service directly, request by request.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::engine::CancellationToken;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

#[cfg(feature = "tasks")]
use super::TaskSupport;
use super::catalog::{Catalog, Change};
use super::completion::{CompletionRequest, CompletionTarget};
use super::context::Channel;
use super::input::InputRound;
#[cfg(feature = "tasks")]
use super::tasks::{self, TaskSlot};
use super::{HandlerError, RequestContext, ServerInner, tool};
use crate::engine::{BoxFuture, Handler, Inbound, Peer};
use crate::protocol::capabilities::ClientCapabilities;
#[cfg(feature = "tasks")]
use crate::protocol::capabilities::extension_ids;
use crate::protocol::completion::{CompleteParams, CompleteResult, Completion, CompletionReference};
use crate::protocol::jsonrpc::{RawNotification, RawRequest, code};
use crate::protocol::lifecycle::{
    DiscoverParams, DiscoverResult, EmptyResult, InitializeParams, InitializeResult, PingParams,
};
use crate::protocol::logging::{LoggingLevel, SetLevelParams};
use crate::protocol::meta::{RequestMeta, keys};
use crate::protocol::mrtr::InputRequiredResult;
use crate::protocol::prompts::{GetPromptParams, ListPromptsParams, ListPromptsResult, PromptListChangedParams};
use crate::protocol::resources::{
    ListResourceTemplatesParams, ListResourceTemplatesResult, ListResourcesParams, ListResourcesResult,
    ReadResourceParams, ReadResourceResult, ResourceListChangedParams, ResourceUpdatedParams, SubscribeParams,
    UnsubscribeParams,
};
#[cfg(feature = "skills")]
use crate::protocol::skills::{GetSkillParams, ListSkillsParams, ReadDirectoryParams};
use crate::protocol::subscriptions::ListenParams;
#[cfg(feature = "tasks")]
use crate::protocol::tasks::extension::{CancelTaskParams, CreateTaskResult, GetTaskParams, UpdateTaskParams};
use crate::protocol::tools::{CallToolParams, CallToolResult, ListToolsParams, ListToolsResult, ToolListChangedParams};
use crate::protocol::version::{Era, negotiate_initialize};
use crate::protocol::{
    ErrorObject, Implementation, InputResponses, JsonObject, McpResult, Notification, ProtocolVersion, Request,
    RequestId, ResultType, decode_params,
};

/// One connection's view of the server: the shared registries plus this connection's legacy session.
pub(crate) struct ServerConnection {
    server: Arc<ServerInner>,
    session: Arc<Mutex<Session>>,
}

/// What a legacy (`initialize`d) session remembers. Modern requests never read it.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub(crate) version: Option<ProtocolVersion>,
    client_capabilities: ClientCapabilities,
    client_info: Option<Implementation>,
    log_level: Option<LoggingLevel>,
    /// Resources the client subscribed to (`resources/subscribe`).
    pub(crate) subscriptions: HashSet<String>,
}

/// How one request is to be treated, decided from its `_meta` or the session.
pub(crate) struct Scope {
    pub(crate) version: ProtocolVersion,
    pub(crate) log_level: Option<LoggingLevel>,
    pub(crate) client_capabilities: ClientCapabilities,
}

impl Scope {
    pub(crate) fn modern(&self) -> bool {
        self.version.era() == Era::Modern
    }
}

impl ServerConnection {
    pub(crate) fn new(server: Arc<ServerInner>) -> Self {
        ServerConnection { server, session: Arc::new(Mutex::new(Session::default())) }
    }

    pub(crate) fn session(&self) -> Arc<Mutex<Session>> {
        self.session.clone()
    }
}

impl Handler for ServerConnection {
    fn handle_request(&self, request: RawRequest, inbound: Inbound) -> BoxFuture<Result<Box<RawValue>, ErrorObject>> {
        let server = self.server.clone();
        let session = self.session.clone();
        Box::pin(async move {
            let call =
                Call { id: inbound.id, cancellation: inbound.cancellation, channel: Channel::Peer(inbound.peer) };
            dispatch(&server, Some(&session), request, call, None).await
        })
    }

    fn is_sequential(&self, method: &str) -> bool {
        matches!(
            method,
            InitializeParams::METHOD | SetLevelParams::METHOD | SubscribeParams::METHOD | UnsubscribeParams::METHOD
        )
    }

    fn handle_notification(&self, notification: RawNotification, _peer: Peer) -> BoxFuture<()> {
        match notification.method.as_str() {
            "notifications/initialized" | "notifications/roots/list_changed" => {}
            other => tracing::debug!(method = other, "ignored notification"),
        }
        Box::pin(std::future::ready(()))
    }
}

/// Tells a legacy stream connection about catalog changes (modern clients use `subscriptions/listen`).
pub(crate) async fn forward_changes(server: Arc<ServerInner>, session: Arc<Mutex<Session>>, peer: Peer) {
    let mut changes = server.changes.subscribe();
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = peer.closed() => return,
        };
        let change = match change {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let (legacy, subscribed) = {
            let session = session.lock().expect("session lock");
            let legacy = session.version.as_ref().is_some_and(|v| v.era() == Era::Legacy);
            let subscribed = matches!(&change, Change::ResourceUpdated(uri) if session.subscriptions.contains(uri));
            (legacy, subscribed)
        };
        if !legacy {
            continue;
        }
        let _ = match change {
            Change::Tools => peer.notify(&ToolListChangedParams::default()).await,
            Change::Prompts => peer.notify(&PromptListChangedParams::default()).await,
            Change::Resources => peer.notify(&ResourceListChangedParams::default()).await,
            Change::ResourceUpdated(uri) if subscribed => peer.notify(&ResourceUpdatedParams { uri, meta: None }).await,
            Change::ResourceUpdated(_) => Ok(()),
        };
    }
}

/// How one request reached the server: its id, its cancellation, and the way back to the client.
pub(crate) struct Call {
    pub(crate) id: RequestId,
    pub(crate) cancellation: CancellationToken,
    pub(crate) channel: Channel,
}

/// What the HTTP transport saw in the headers of a modern request, checked against the body.
#[derive(Debug, Default)]
pub(crate) struct HeaderChecks {
    /// `MCP-Protocol-Version`.
    pub(crate) protocol_version: Option<String>,
    /// `Mcp-Name`, decoded from its base64 form when wrapped.
    pub(crate) name: Option<String>,
    /// Every `Mcp-Param-*` header: lowercase name and decoded value (`None` when undecodable).
    pub(crate) params: Vec<(String, super::header_params::HeaderValue)>,
}

/// Params of the methods that name a target and may ask for input, as the server reads them: tool
/// arguments stay raw until the tool's own argument type decodes them, so they are parsed once.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetedIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    arguments: Option<Box<RawValue>>,
    #[serde(default)]
    input_responses: Option<InputResponses>,
    #[serde(default)]
    request_state: Option<String>,
    #[serde(rename = "_meta", default)]
    meta: Option<RequestMeta>,
}

/// Handles one request. `session` is the legacy session the request belongs to (`None` on the stateless
/// HTTP path); `headers` are the HTTP headers to check against the body (modern HTTP only).
pub(crate) async fn dispatch(
    server: &ServerInner,
    session: Option<&Mutex<Session>>,
    request: RawRequest,
    call: Call,
    headers: Option<&HeaderChecks>,
) -> Result<Box<RawValue>, ErrorObject> {
    let params = request.params.as_deref();
    let method = request.method.as_str();
    if REMOVED_IN_MODERN.contains(&method) && is_modern(params, headers) {
        // Whatever the params, a method the revision removed does not exist.
        return Err(ErrorObject::method_not_found(method));
    }
    match method {
        InitializeParams::METHOD => match session {
            Some(session) => initialize(server, session, decode_params(params)?),
            None => Err(ErrorObject::method_not_found(InitializeParams::METHOD)),
        },
        PingParams::METHOD => {
            let params: PingParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), true, headers)?;
            legacy_only(&scope, method)?;
            finish(server, &scope, EmptyResult::default())
        }
        DiscoverParams::METHOD => {
            let params: DiscoverParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            let result = DiscoverResult {
                supported_versions: server.versions.iter().rev().cloned().collect(),
                capabilities: server.capabilities.clone(),
                instructions: server.instructions.clone(),
                ttl_ms: Some(server.cache_hint.ttl_ms),
                cache_scope: Some(server.cache_hint.scope),
                result_type: None,
                meta: None,
            };
            finish(server, &scope, result)
        }
        SetLevelParams::METHOD => {
            let params: SetLevelParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            // Removed in 2026-07-28: the level travels with each request.
            legacy_only(&scope, method)?;
            if let Some(session) = session {
                session.lock().expect("session lock").log_level = Some(params.level);
            }
            finish(server, &scope, EmptyResult::default())
        }
        ListToolsParams::METHOD => {
            let params: ListToolsParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.tools.is_some(), method)?;
            let catalog = server.catalog();
            let tools = catalog.enabled_tools();
            let (page, next_cursor) = paginate(&tools, params.cursor.as_deref(), server.page_size)?;
            let mut result = ListToolsResult {
                tools: page.iter().map(|t| t.tool.clone()).collect(),
                next_cursor,
                ..Default::default()
            };
            (result.ttl_ms, result.cache_scope) = cache(server, &scope);
            finish(server, &scope, result)
        }
        CallToolParams::METHOD => {
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
                super::header_params::check(&tool.header_params, arguments.as_ref(), &headers.params)?;
            }
            #[cfg(feature = "tasks")]
            let tasks_declared = scope.client_capabilities.has_extension(extension_ids::TASKS);
            #[cfg(feature = "tasks")]
            if tool.task_support == TaskSupport::Required && !tasks_declared {
                return Err(tasks::extension_required());
            }
            let input = open_input(server, &scope, method, &name, params.input_responses, params.request_state)?;
            #[cfg_attr(not(feature = "tasks"), expect(unused_mut, reason = "only a task slot is set later"))]
            let mut ctx = context(call, &scope, params.meta.as_ref(), input.clone());
            #[cfg(feature = "tasks")]
            let escalated = if tool.task_support != TaskSupport::Forbidden && tasks_declared && scope.modern() {
                let (slot, escalated) = TaskSlot::new(server.tasks.clone());
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
                            let background = task.clone();
                            tokio::spawn(async move {
                                let outcome = tokio::select! {
                                    outcome = run => Some(outcome),
                                    _ = background.cancellation.cancelled() => None,
                                };
                                if let Some(outcome) = outcome {
                                    background.finish(outcome);
                                }
                            });
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
                Err(HandlerError::Failed(message)) => finish(server, &scope, CallToolResult::error(message)),
                Err(HandlerError::Protocol(error)) => Err(error),
                Err(HandlerError::InputRequired) => input_required(server, &scope, method, &name, input),
            }
        }
        ListResourcesParams::METHOD => {
            let params: ListResourcesParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.resources.is_some(), method)?;
            let catalog = server.catalog();
            let (page, next_cursor) = paginate(&catalog.resources, params.cursor.as_deref(), server.page_size)?;
            let mut result = ListResourcesResult {
                resources: page.iter().map(|r| r.resource.clone()).collect(),
                next_cursor,
                ..Default::default()
            };
            (result.ttl_ms, result.cache_scope) = cache(server, &scope);
            finish(server, &scope, result)
        }
        ListResourceTemplatesParams::METHOD => {
            let params: ListResourceTemplatesParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.resources.is_some(), method)?;
            let catalog = server.catalog();
            let (page, next_cursor) = paginate(&catalog.templates, params.cursor.as_deref(), server.page_size)?;
            let mut result = ListResourceTemplatesResult {
                resource_templates: page.iter().map(|t| t.template.clone()).collect(),
                next_cursor,
                ..Default::default()
            };
            (result.ttl_ms, result.cache_scope) = cache(server, &scope);
            finish(server, &scope, result)
        }
        ReadResourceParams::METHOD => {
            let params: TargetedIn = decode_params(params)?;
            let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
            declared(server.capabilities.resources.is_some(), method)?;
            let uri = params.uri.ok_or_else(|| ErrorObject::invalid_params("missing uri"))?;
            check_name(headers, &uri)?;
            let catalog = server.catalog();
            let (read, vars) = find_resource(&catalog, &uri).ok_or_else(|| resource_not_found(&scope, &uri))?;
            let input = open_input(server, &scope, method, &uri, params.input_responses, params.request_state)?;
            let ctx = context(call, &scope, params.meta.as_ref(), input.clone());
            match read(ctx, uri.clone(), vars).await {
                Ok(contents) if contents.is_empty() => Err(resource_not_found(&scope, &uri)),
                Ok(contents) => {
                    let mut result = ReadResourceResult { contents, ..Default::default() };
                    (result.ttl_ms, result.cache_scope) = cache(server, &scope);
                    finish(server, &scope, result)
                }
                Err(HandlerError::Failed(message)) => Err(ErrorObject::internal(message)),
                Err(HandlerError::Protocol(error)) => Err(error),
                Err(HandlerError::InputRequired) => input_required(server, &scope, method, &uri, input),
            }
        }
        SubscribeParams::METHOD | UnsubscribeParams::METHOD => {
            let params: SubscribeParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            // Replaced by subscriptions/listen in 2026-07-28.
            legacy_only(&scope, method)?;
            declared(server.capabilities.resources.as_ref().is_some_and(|r| r.subscribe == Some(true)), method)?;
            if let Some(session) = session {
                let mut session = session.lock().expect("session lock");
                if method == SubscribeParams::METHOD {
                    session.subscriptions.insert(params.uri);
                } else {
                    session.subscriptions.remove(&params.uri);
                }
            }
            finish(server, &scope, EmptyResult::default())
        }
        ListPromptsParams::METHOD => {
            let params: ListPromptsParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.prompts.is_some(), method)?;
            let catalog = server.catalog();
            let (page, next_cursor) = paginate(&catalog.prompts, params.cursor.as_deref(), server.page_size)?;
            let mut result = ListPromptsResult {
                prompts: page.iter().map(|p| p.prompt.clone()).collect(),
                next_cursor,
                ..Default::default()
            };
            (result.ttl_ms, result.cache_scope) = cache(server, &scope);
            finish(server, &scope, result)
        }
        GetPromptParams::METHOD => {
            let params: TargetedIn = decode_params(params)?;
            let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
            declared(server.capabilities.prompts.is_some(), method)?;
            let name = params.name.ok_or_else(|| ErrorObject::invalid_params("missing name"))?;
            check_name(headers, &name)?;
            let catalog = server.catalog();
            let prompt =
                catalog.prompt(&name).ok_or_else(|| ErrorObject::invalid_params(format!("unknown prompt: {name}")))?;
            let arguments: BTreeMap<String, String> = match params.arguments {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|e| ErrorObject::invalid_params(format!("prompt arguments must be strings: {e}")))?,
                None => BTreeMap::new(),
            };
            let input = open_input(server, &scope, method, &name, params.input_responses, params.request_state)?;
            let ctx = context(call, &scope, params.meta.as_ref(), input.clone());
            match (prompt.get)(ctx, arguments).await {
                Ok(mut result) => {
                    if result.description.is_none() {
                        result.description = prompt.prompt.description.clone();
                    }
                    finish(server, &scope, result)
                }
                Err(HandlerError::Failed(message)) => Err(ErrorObject::internal(message)),
                Err(HandlerError::Protocol(error)) => Err(error),
                Err(HandlerError::InputRequired) => input_required(server, &scope, method, &name, input),
            }
        }
        CompleteParams::METHOD => {
            let params: CompleteParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.completions.is_some(), method)?;
            let catalog = server.catalog();
            let target = match &params.reference {
                CompletionReference::Prompt(p) => {
                    catalog
                        .prompt(&p.name)
                        .ok_or_else(|| ErrorObject::invalid_params(format!("unknown prompt: {}", p.name)))?;
                    CompletionTarget::Prompt(p.name.clone())
                }
                CompletionReference::Resource(r) => CompletionTarget::Template(r.uri.clone()),
            };
            let values = match catalog.completers.get(&(target, params.argument.name.clone())) {
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
        ListenParams::METHOD => {
            let params: ListenParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            if !scope.modern() {
                return Err(ErrorObject::method_not_found(method));
            }
            let result = super::subscriptions::listen(server, params.notifications, call).await;
            finish(server, &scope, result)
        }
        #[cfg(feature = "skills")]
        ListSkillsParams::METHOD | GetSkillParams::METHOD | ReadDirectoryParams::METHOD => {
            super::skills::dispatch(server, session, method, params, headers)
        }
        #[cfg(feature = "tasks")]
        GetTaskParams::METHOD | UpdateTaskParams::METHOD | CancelTaskParams::METHOD => {
            super::tasks::dispatch(server, session, method, params, headers)
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}

fn initialize(
    server: &ServerInner,
    session: &Mutex<Session>,
    params: InitializeParams,
) -> Result<Box<RawValue>, ErrorObject> {
    let Some(version) = negotiate_initialize(&params.protocol_version, &server.versions) else {
        return Err(unsupported_version(server, &params.protocol_version));
    };
    {
        let mut session = session.lock().expect("session lock");
        session.version = Some(version.clone());
        session.client_capabilities = params.capabilities;
        session.client_info = Some(params.client_info);
    }
    let result = InitializeResult {
        protocol_version: version,
        capabilities: server.capabilities.clone(),
        server_info: server.info.clone(),
        instructions: server.instructions.clone(),
        result_type: None,
        meta: None,
    };
    encode(&result)
}

/// Decides the era of one request. A `_meta` protocol version makes it a modern, self-contained request;
/// otherwise it belongs to the legacy session, which must have been initialized (`ping` excepted).
pub(crate) fn scope(
    server: &ServerInner,
    session: Option<&Mutex<Session>>,
    meta: Option<&RequestMeta>,
    allowed_before_initialize: bool,
    headers: Option<&HeaderChecks>,
) -> Result<Scope, ErrorObject> {
    let meta_version = meta.and_then(|m| m.protocol_version.as_ref());
    if let Some(headers) = headers {
        // Stateless HTTP: the body must name its revision and capabilities, and agree with the header.
        let Some(version) = meta_version else {
            return Err(ErrorObject::invalid_params(format!("missing _meta[\"{}\"]", keys::PROTOCOL_VERSION)));
        };
        if meta.is_some_and(|m| m.client_capabilities.is_none()) {
            return Err(ErrorObject::invalid_params(format!("missing _meta[\"{}\"]", keys::CLIENT_CAPABILITIES)));
        }
        if headers.protocol_version.as_deref() != Some(version.as_str()) {
            return Err(ErrorObject::new(
                code::HEADER_MISMATCH,
                "the MCP-Protocol-Version header does not match _meta[\"io.modelcontextprotocol/protocolVersion\"]",
            ));
        }
    }
    if let Some(version) = meta_version {
        if version.era() != Era::Modern || !server.versions.contains(version) {
            return Err(unsupported_version(server, version));
        }
        let meta = meta.expect("checked above");
        let Some(client_capabilities) = meta.client_capabilities.clone() else {
            return Err(ErrorObject::invalid_params(format!("missing _meta[\"{}\"]", keys::CLIENT_CAPABILITIES)));
        };
        return Ok(Scope { version: version.clone(), log_level: meta.log_level, client_capabilities });
    }
    let Some(session) = session else {
        return Err(ErrorObject::invalid_params(format!("missing _meta[\"{}\"]", keys::PROTOCOL_VERSION)));
    };
    let session = session.lock().expect("session lock");
    match &session.version {
        Some(version) => Ok(Scope {
            version: version.clone(),
            log_level: session.log_level,
            client_capabilities: session.client_capabilities.clone(),
        }),
        None if allowed_before_initialize => Ok(Scope {
            version: ProtocolVersion::LATEST_LEGACY,
            log_level: None,
            client_capabilities: ClientCapabilities::default(),
        }),
        None => Err(ErrorObject::invalid_params(format!(
            "missing _meta[\"{}\"]: name the protocol version in each request, or initialize a session first",
            keys::PROTOCOL_VERSION
        ))),
    }
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

/// Methods the 2026-07-28 revision removed.
pub(crate) fn legacy_only(scope: &Scope, method: &str) -> Result<(), ErrorObject> {
    if scope.modern() { Err(ErrorObject::method_not_found(method)) } else { Ok(()) }
}

/// A method whose capability the server did not declare does not exist.
pub(crate) fn declared(declared: bool, method: &str) -> Result<(), ErrorObject> {
    if declared { Ok(()) } else { Err(ErrorObject::method_not_found(method)) }
}

/// The cache hints of a list or read result: present in the modern era only.
pub(crate) fn cache(server: &ServerInner, scope: &Scope) -> (Option<u64>, Option<crate::protocol::CacheScope>) {
    if scope.modern() { (Some(server.cache_hint.ttl_ms), Some(server.cache_hint.scope)) } else { (None, None) }
}

fn context(call: Call, scope: &Scope, meta: Option<&RequestMeta>, input: Option<Arc<InputRound>>) -> RequestContext {
    RequestContext {
        id: call.id,
        cancellation: call.cancellation,
        channel: call.channel,
        version: scope.version.clone(),
        client_capabilities: scope.client_capabilities.clone(),
        progress_token: meta.and_then(|m| m.progress_token.clone()),
        log_level: scope.log_level,
        input,
        #[cfg(feature = "tasks")]
        task: None,
    }
}

/// Opens the input round of a modern request: verifies the echoed state and keeps the answers.
fn open_input(
    server: &ServerInner,
    scope: &Scope,
    method: &str,
    target: &str,
    responses: Option<InputResponses>,
    state: Option<String>,
) -> Result<Option<Arc<InputRound>>, ErrorObject> {
    if !scope.modern() {
        return Ok(None);
    }
    let state = match state {
        Some(token) => server.sealer.open(method, target, &token)?,
        None => None,
    };
    Ok(Some(Arc::new(InputRound::new(responses, state))))
}

/// The input-required result a handler's requests for input turn into.
fn input_required(
    server: &ServerInner,
    scope: &Scope,
    method: &str,
    target: &str,
    input: Option<Arc<InputRound>>,
) -> Result<Box<RawValue>, ErrorObject> {
    let Some(input) = input else {
        return Err(ErrorObject::internal("the handler asked for input outside the 2026-07-28 revision"));
    };
    let requests = input.take_requests();
    if requests.is_empty() {
        return Err(ErrorObject::internal("the handler asked for input but recorded no input request"));
    }
    let state = input.next_state.lock().expect("input lock").take();
    let sealed = server.sealer.seal(method, target, state);
    finish(server, scope, InputRequiredResult::new(Some(requests), Some(sealed)))
}

type Reader = super::resource::ErasedRead;

fn find_resource(catalog: &Catalog, uri: &str) -> Option<(Reader, super::resource::TemplateVars)> {
    if let Some(resource) = catalog.resource(uri) {
        return Some((resource.read.clone(), BTreeMap::new()));
    }
    catalog.match_template(uri).map(|(template, vars)| (template.read.clone(), vars))
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

/// On modern HTTP, `Mcp-Name` must repeat the tool, prompt or resource the body names.
pub(crate) fn check_name(headers: Option<&HeaderChecks>, name: &str) -> Result<(), ErrorObject> {
    match headers {
        Some(h) if h.name.as_deref() != Some(name) => {
            Err(ErrorObject::new(code::HEADER_MISMATCH, "the Mcp-Name header does not match the request body"))
        }
        _ => Ok(()),
    }
}

fn unsupported_version(server: &ServerInner, requested: &ProtocolVersion) -> ErrorObject {
    let supported: Vec<&str> = server.versions.iter().rev().map(ProtocolVersion::as_str).collect();
    ErrorObject::new(code::UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol version")
        .with_data(serde_json::json!({ "supported": supported, "requested": requested.as_str() }))
}

/// Stamps what the era requires on a result and encodes it.
pub(crate) fn finish<R: McpResult>(
    server: &ServerInner,
    scope: &Scope,
    mut result: R,
) -> Result<Box<RawValue>, ErrorObject> {
    if scope.modern() {
        if result.result_type().is_none() {
            result.set_result_type(ResultType::Complete);
        }
        if result.meta_mut().is_none() {
            return encode_with_server_info(server, &result);
        }
        result
            .meta_mut()
            .get_or_insert_with(JsonObject::new)
            .insert(keys::SERVER_INFO.to_owned(), server.info_json.clone());
    }
    encode(&result)
}

/// Encodes a result without `_meta` and adds `_meta.serverInfo` as pre-encoded text: the common modern answer
/// then costs no map to build and no copy of the server's info per request.
fn encode_with_server_info<R: McpResult>(server: &ServerInner, result: &R) -> Result<Box<RawValue>, ErrorObject> {
    let mut text = serde_json::to_string(result)
        .map_err(|e| ErrorObject::internal(format!("result could not be encoded: {e}")))?;
    // A result is a JSON object: open it back up at its closing brace.
    if text.pop() != Some('}') {
        return Err(ErrorObject::internal("a result must encode as a JSON object"));
    }
    if !text.ends_with('{') {
        text.push(',');
    }
    text.push_str(&server.server_info_meta);
    text.push('}');
    RawValue::from_string(text).map_err(|e| ErrorObject::internal(format!("result could not be encoded: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| ErrorObject::internal(format!("result could not be encoded: {e}")))
}

/// One page of `items` after the opaque `cursor`, and the cursor of the next page.
pub(crate) fn paginate<'a, T>(
    items: &'a [T],
    cursor: Option<&str>,
    page_size: usize,
) -> Result<(&'a [T], Option<String>), ErrorObject> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .strip_prefix("o:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n <= items.len())
            .ok_or_else(|| ErrorObject::invalid_params("invalid cursor"))?,
    };
    let end = (start + page_size).min(items.len());
    let next = (end < items.len()).then(|| format!("o:{end}"));
    Ok((&items[start..end], next))
}

impl Channel {
    /// Sends a notification on behalf of request `related`.
    pub(crate) async fn notify<N: Notification>(&self, related: &RequestId, params: &N) {
        self.send_notification(related, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::paginate;

    #[test]
    fn pagination_walks_every_item_once() {
        let items: Vec<u32> = (0..5).collect();
        let (a, next) = paginate(&items, None, 2).unwrap();
        assert_eq!((a, next.as_deref()), (&[0, 1][..], Some("o:2")));
        let (b, next) = paginate(&items, next.as_deref(), 2).unwrap();
        assert_eq!((b, next.as_deref()), (&[2, 3][..], Some("o:4")));
        let (c, next) = paginate(&items, next.as_deref(), 2).unwrap();
        assert_eq!((c, next), (&[4][..], None));
        assert!(paginate(&items, Some("o:9"), 2).is_err());
        assert!(paginate(&items, Some("garbage"), 2).is_err());
    }
}
