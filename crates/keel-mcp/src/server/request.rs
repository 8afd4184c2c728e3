//! What every method handler shares, whatever routed the request to it: the incoming request and how it
//! reached the server, its era [`Scope`], the checks of names and declared capabilities, pagination, cache
//! hints, input rounds, and the encoding of results as the era requires. A leaf below the router
//! (`dispatch`) and the extensions' methods: it knows no method.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::context::{Channel, RequestContext};
use super::header_params::HeaderValue;
use super::inner::ServerInner;
use super::input::{InputRound, StateBinding};
use super::middleware::{Layered, Next};
use super::session::LegacySession;
use super::visibility::{Target, Viewer};
use crate::engine::CancellationToken;
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::jsonrpc::code;
use crate::protocol::logging::LoggingLevel;
use crate::protocol::meta::{RequestMeta, keys};
use crate::protocol::mrtr::InputRequiredResult;
use crate::protocol::version::Era;
use crate::protocol::{ErrorObject, InputResponses, JsonObject, McpResult, ProtocolVersion, RequestId, ResultType};

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

/// What a method's handling comes to: the encoded result, or the JSON-RPC error to answer with.
pub(crate) type Outcome = Result<Box<RawValue>, ErrorObject>;

/// One request as its method's handler reads it: the method, its params, and what decides its era. The
/// engine's [`Inbound`](crate::engine::Inbound) becomes this and a [`Caller`].
#[derive(Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub(crate) server: &'a ServerInner,
    /// The legacy session (`None` on the stateless HTTP path).
    pub(crate) session: Option<&'a Mutex<LegacySession>>,
    pub(crate) method: &'a str,
    pub(crate) params: Option<&'a RawValue>,
    /// Modern HTTP only: the headers to check against the body.
    pub(crate) headers: Option<&'a HeaderChecks>,
}

/// Who waits for one request's answer: the request's id, its cancellation, and the way back to the client.
/// It moves into the handler's [`RequestContext`].
pub(crate) struct Caller {
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
    pub(crate) params: Vec<(String, HeaderValue)>,
}

/// Keel's JSON-RPC error code for a request whose token lacks a scope its target needs; `data.scopes` lists
/// every scope the target needs. The HTTP service answers it with 403 and an `insufficient_scope` challenge.
pub(crate) const INSUFFICIENT_SCOPE: i64 = -32003;

/// Turns off scope filtering of lists for one HTTP request (the resource server's
/// [`filter_lists`](crate::auth::resource::ResourceServerConfig::filter_lists) set to `false`): an HTTP
/// request extension.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "http-server"), expect(dead_code, reason = "only the HTTP service sets it"))]
pub(crate) struct UnfilteredLists;

/// Who asks, as far as scopes go.
pub(crate) enum Access<'a> {
    /// Not over HTTP (stdio, a child process, in memory): no token, nothing to check.
    Local,
    /// Over HTTP: the principal an authorization layer verified (`None`: nobody did, so no scope is held).
    #[cfg_attr(not(feature = "http-server"), expect(dead_code, reason = "only HTTP requests carry a principal"))]
    Http { principal: Option<&'a super::principal::Principal>, filter_lists: bool },
}

impl<'a> Access<'a> {
    /// The access of the request `call` waits on.
    pub(crate) fn of(call: &'a Caller) -> Self {
        #[cfg(feature = "http-server")]
        if let Some(parts) = call.channel.client().http_request() {
            let principal = parts.extensions.get::<Arc<super::principal::Principal>>().map(|p| &**p);
            let filter_lists = parts.extensions.get::<UnfilteredLists>().is_none();
            return Access::Http { principal, filter_lists };
        }
        let _ = call;
        Access::Local
    }

    /// Whether the caller holds every scope of `needed`.
    pub(crate) fn permits(&self, needed: &[String]) -> bool {
        match self {
            _ if needed.is_empty() => true,
            Access::Local => true,
            Access::Http { principal: Some(p), .. } => needed.iter().all(|scope| p.has_scope(scope)),
            Access::Http { principal: None, .. } => false,
        }
    }

    /// Refuses a caller that lacks a scope of `needed` ([`INSUFFICIENT_SCOPE`], naming them all).
    pub(crate) fn require(&self, needed: &[String]) -> Result<(), ErrorObject> {
        if self.permits(needed) {
            return Ok(());
        }
        Err(ErrorObject::new(
            INSUFFICIENT_SCOPE,
            format!("insufficient scope: this request needs {}", needed.join(" ")),
        )
        .with_data(serde_json::json!({ "scopes": needed })))
    }

    /// Whether lists leave out what the caller may not use.
    pub(crate) fn filters_lists(&self) -> bool {
        matches!(self, Access::Http { filter_lists: true, .. })
    }
}

/// Refuses the caller of `call` when it lacks a scope of `needed` (see [`Access::require`]). A target that
/// needs no scope costs nothing: the request's extensions are only read when there is something to check.
pub(crate) fn require_scopes(call: &Caller, needed: &[String]) -> Result<(), ErrorObject> {
    if needed.is_empty() {
        return Ok(());
    }
    Access::of(call).require(needed)
}

/// Params of the methods that name a target and may ask for input, as the server reads them: tool
/// arguments stay raw until the tool's own argument type decodes them, so they are parsed once.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TargetedIn {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) uri: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) input_responses: Option<InputResponses>,
    #[serde(default)]
    pub(crate) request_state: Option<String>,
    #[serde(rename = "_meta", default)]
    pub(crate) meta: Option<RequestMeta>,
}

/// Decides the era of one request. A `_meta` protocol version makes it a modern, self-contained request;
/// otherwise it belongs to the legacy session, which must have been initialized (`ping` excepted).
pub(crate) fn scope(
    server: &ServerInner,
    session: Option<&Mutex<LegacySession>>,
    meta: Option<&RequestMeta>,
    allowed_before_initialize: bool,
    headers: Option<&HeaderChecks>,
) -> Result<Scope, ErrorObject> {
    let scope = decide_scope(server, session, meta, allowed_before_initialize, headers)?;
    crate::engine::current_span().record("era", if scope.modern() { "modern" } else { "legacy" });
    Ok(scope)
}

fn decide_scope(
    server: &ServerInner,
    session: Option<&Mutex<LegacySession>>,
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

/// The context a handler gets for the request `caller` waits on.
pub(crate) fn context(
    server: &ServerInner,
    caller: Caller,
    scope: &Scope,
    meta: Option<&RequestMeta>,
    input: Option<Arc<InputRound>>,
) -> RequestContext {
    RequestContext {
        states: server.states.clone(),
        id: caller.id,
        cancellation: caller.cancellation,
        channel: caller.channel,
        version: scope.version.clone(),
        client_capabilities: scope.client_capabilities.clone(),
        progress_token: meta.and_then(|m| m.progress_token.clone()),
        log_level: scope.log_level,
        input,
        #[cfg(feature = "tasks")]
        task: None,
    }
}

/// Whether the caller may see `target`. Every list and every call, read and get asks here, and only here:
/// the one place where what a caller may see is decided, so lists and calls agree.
pub(crate) fn visible(server: &ServerInner, viewer: &Viewer<'_>, target: Target<'_>) -> bool {
    server.visibility.as_ref().is_none_or(|predicate| predicate.allows(viewer, target))
}

/// The layers a request for a target with `target_layers` goes through, if any: `None` (no cost) when
/// neither the server nor the target has layers.
pub(crate) fn layered(server: &ServerInner, target_layers: Option<&Next>, call: &mut Caller) -> Option<Layered> {
    Layered::new(server.middleware.as_ref(), target_layers, &mut call.cancellation, server.limits.cancel_grace)
}

/// Opens the input round of a modern request: verifies the echoed state and keeps the answers.
/// The round remembers `call`'s principal, to whom the next state is sealed.
pub(crate) fn open_input(
    server: &ServerInner,
    scope: &Scope,
    call: &Caller,
    binding: StateBinding<'_>,
    responses: Option<InputResponses>,
    state: Option<String>,
) -> Result<Option<Arc<InputRound>>, ErrorObject> {
    if !scope.modern() {
        return Ok(None);
    }
    let caller = super::context::shared_principal_of(call.channel.client());
    let state = match state {
        Some(token) => server.sealer.open(binding, caller.map(|p| &**p), &token)?,
        None => None,
    };
    let client_only = super::context::client_only_owners(call.channel.client());
    Ok(Some(Arc::new(InputRound::new(responses, state, caller.cloned(), client_only))))
}

/// The input-required result a handler's requests for input turn into.
pub(crate) fn input_required(
    server: &ServerInner,
    scope: &Scope,
    binding: StateBinding<'_>,
    input: Option<Arc<InputRound>>,
) -> Result<Box<RawValue>, ErrorObject> {
    let Some(input) = input else {
        return Err(ErrorObject::internal("the handler asked for input outside the 2026-07-28 revision"));
    };
    let requests = input.take_requests();
    if requests.is_empty() {
        return Err(ErrorObject::internal("the handler asked for input but recorded no input request"));
    }
    if input.unbindable {
        // Sealed to a token every user of its client shares, the state would open for all of them.
        return Err(ErrorObject::invalid_request(
            "this tool needs more input, and a requestState is bound to its caller: the access token names no \
             subject (sub), so it cannot be told from other users of its client. Use a token issued to a user, \
             or a server configured with bind_client_only_tokens(true)",
        ));
    }
    let state = input.next_state.lock().expect("input lock").take();
    let sealed = server.sealer.seal(binding, input.caller.as_deref(), state);
    finish(server, scope, InputRequiredResult::new(Some(requests), Some(sealed)))
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
    let mut text = serde_json::to_string(result).map_err(encoding_failed)?;
    // A result is a JSON object: open it back up at its closing brace.
    if text.pop() != Some('}') {
        return Err(ErrorObject::internal("a result must encode as a JSON object"));
    }
    if !text.ends_with('{') {
        text.push(',');
    }
    text.push_str(&server.server_info_meta);
    text.push('}');
    RawValue::from_string(text).map_err(encoding_failed)
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value).map_err(encoding_failed)
}

pub(crate) fn encoding_failed(e: serde_json::Error) -> ErrorObject {
    ErrorObject::internal(format!("result could not be encoded: {e}"))
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

/// The error for a revision this server does not serve, listing those it does.
pub(crate) fn unsupported_version(server: &ServerInner, requested: &ProtocolVersion) -> ErrorObject {
    let supported: Vec<&str> = server.versions.iter().rev().map(ProtocolVersion::as_str).collect();
    ErrorObject::new(code::UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol version")
        .with_data(serde_json::json!({ "supported": supported, "requested": requested.as_str() }))
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
