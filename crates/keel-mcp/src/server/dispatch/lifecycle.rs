//! Lifecycle and utility methods: `initialize` (legacy sessions), `ping`, `server/discover` and
//! `logging/setLevel`.

use std::sync::Mutex;

use crate::protocol::Request as _;
use crate::protocol::decode_params;
use crate::protocol::lifecycle::{
    DiscoverParams, DiscoverResult, EmptyResult, InitializeParams, InitializeResult, PingParams,
};
use crate::protocol::logging::SetLevelParams;
use crate::protocol::version::negotiate_initialize;
use crate::server::inner::ServerInner;
use crate::server::request::{Incoming, Outcome, encode, finish, legacy_only, scope, unsupported_version};
use crate::server::session::LegacySession;

pub(super) fn initialize(server: &ServerInner, session: &Mutex<LegacySession>, params: InitializeParams) -> Outcome {
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

/// `ping`: legacy only (2026-07-28 removed it).
pub(super) fn ping(req: Incoming<'_>) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: PingParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), true, headers)?;
    legacy_only(&scope, method)?;
    finish(server, &scope, EmptyResult::default())
}

/// `server/discover`: what the server supports, in either era.
pub(super) fn discover(req: Incoming<'_>) -> Outcome {
    let Incoming { server, session, params, headers, .. } = req;
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

/// `logging/setLevel`: legacy only; the modern era sends the level with each request.
pub(super) fn set_level(req: Incoming<'_>) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: SetLevelParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    // Removed in 2026-07-28: the level travels with each request.
    legacy_only(&scope, method)?;
    if let Some(session) = session {
        session.lock().expect("session lock").log_level = Some(params.level);
    }
    finish(server, &scope, EmptyResult::default())
}
