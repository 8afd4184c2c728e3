//! Request dispatch: decides each request's era, decodes its params once into the method's type, runs the
//! handler and stamps the result as the era requires.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::context::RequestContext;
use super::{ServerInner, tool};
use tokio_util::sync::CancellationToken;

use super::context::Channel;
use crate::engine::{BoxFuture, Handler, Inbound, Peer};
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::jsonrpc::{RawNotification, RawRequest, code};
use crate::protocol::lifecycle::{
    DiscoverParams, DiscoverResult, EmptyResult, InitializeParams, InitializeResult, PingParams,
};
use crate::protocol::logging::{LoggingLevel, SetLevelParams};
use crate::protocol::meta::{RequestMeta, keys};
use crate::protocol::tools::{CallToolParams, ListToolsParams, ListToolsResult};
use crate::protocol::version::{Era, negotiate_initialize};
use crate::protocol::{
    ErrorObject, Implementation, JsonObject, McpResult, ProtocolVersion, Request, RequestId, ResultType, decode_params,
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
}

/// How one request is to be treated, decided from its `_meta` or the session.
struct Scope {
    version: ProtocolVersion,
    log_level: Option<LoggingLevel>,
    client_capabilities: ClientCapabilities,
}

impl Scope {
    fn modern(&self) -> bool {
        self.version.era() == Era::Modern
    }
}

impl ServerConnection {
    pub(crate) fn new(server: Arc<ServerInner>) -> Self {
        ServerConnection { server, session: Arc::new(Mutex::new(Session::default())) }
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
        matches!(method, InitializeParams::METHOD | SetLevelParams::METHOD)
    }

    fn handle_notification(&self, notification: RawNotification, _peer: Peer) -> BoxFuture<()> {
        match notification.method.as_str() {
            "notifications/initialized" | "notifications/roots/list_changed" => {}
            other => tracing::debug!(method = other, "ignored notification"),
        }
        Box::pin(std::future::ready(()))
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
    match request.method.as_str() {
        InitializeParams::METHOD => match session {
            Some(session) => initialize(server, session, decode_params(params)?),
            None => Err(ErrorObject::method_not_found(InitializeParams::METHOD)),
        },
        PingParams::METHOD => {
            let params: PingParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), true, headers)?;
            if scope.modern() {
                // Removed in 2026-07-28.
                return Err(ErrorObject::method_not_found(PingParams::METHOD));
            }
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
            if scope.modern() {
                // Removed in 2026-07-28: the level travels with each request.
                return Err(ErrorObject::method_not_found(SetLevelParams::METHOD));
            }
            if let Some(session) = session {
                session.lock().expect("session lock").log_level = Some(params.level);
            }
            finish(server, &scope, EmptyResult::default())
        }
        ListToolsParams::METHOD => {
            let params: ListToolsParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            let (page, next_cursor) = paginate(&server.tools, params.cursor.as_deref(), server.page_size)?;
            let mut result = ListToolsResult {
                tools: page.iter().map(|t| t.tool.clone()).collect(),
                next_cursor,
                ..Default::default()
            };
            if scope.modern() {
                result.ttl_ms = Some(server.cache_hint.ttl_ms);
                result.cache_scope = Some(server.cache_hint.scope);
            }
            finish(server, &scope, result)
        }
        CallToolParams::METHOD => {
            let params: CallToolIn = decode_params(params)?;
            let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
            check_name(headers, &params.name)?;
            let index = *server.tool_index.get(&params.name).ok_or_else(|| tool::unknown_tool(&params.name))?;
            let ctx = RequestContext {
                id: call.id,
                cancellation: call.cancellation,
                channel: call.channel,
                version: scope.version.clone(),
                client_capabilities: scope.client_capabilities.clone(),
                progress_token: params.meta.as_ref().and_then(|m| m.progress_token.clone()),
                log_level: scope.log_level,
            };
            let result = (server.tools[index].run)(ctx, params.arguments.as_deref()).await;
            finish(server, &scope, result)
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// `tools/call` params as the server reads them: the arguments stay raw until the tool's own argument
/// type decodes them, so they are parsed once.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallToolIn {
    name: String,
    #[serde(default)]
    arguments: Option<Box<RawValue>>,
    #[serde(rename = "_meta", default)]
    meta: Option<RequestMeta>,
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
fn scope(
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

/// On modern HTTP, `Mcp-Name` must repeat the tool, prompt or resource the body names.
fn check_name(headers: Option<&HeaderChecks>, name: &str) -> Result<(), ErrorObject> {
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
fn finish<R: McpResult>(server: &ServerInner, scope: &Scope, mut result: R) -> Result<Box<RawValue>, ErrorObject> {
    if scope.modern() {
        if result.result_type().is_none() {
            result.set_result_type(ResultType::Complete);
        }
        let info = serde_json::to_value(&server.info).map_err(|e| ErrorObject::internal(e.to_string()))?;
        result.meta_mut().get_or_insert_with(JsonObject::new).insert(keys::SERVER_INFO.to_owned(), info);
    }
    encode(&result)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| ErrorObject::internal(format!("result could not be encoded: {e}")))
}

/// One page of `items` after the opaque `cursor`, and the cursor of the next page.
fn paginate<'a, T>(
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
