//! The resource-server step of the HTTP service (feature `resource-server`): serves the protected resource
//! metadata, admits requests whose token the verifier accepts (their [`Principal`] goes into the request's
//! extensions) and renders every refusal. The decisions are made in [`crate::auth::resource`]; this module
//! only turns them into responses.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};

use super::body::{self, ResponseBody};
use crate::auth::resource::protection::{Protection, Refusal};
use crate::protocol::ErrorObject;
use crate::server::principal::Principal;
use crate::server::request::UnfilteredLists;

/// The answer at a metadata URL; `None` for any other path.
pub(super) fn metadata<B>(protection: &Protection, request: &Request<B>) -> Option<Response<ResponseBody>> {
    protection.is_metadata_path(request.uri().path()).then(|| metadata_answer(protection, request.method()))
}

/// Authenticates a request for the MCP endpoint: its verified principal goes into its extensions, or the
/// refusal is the answer. `Ok` carries when a response stream opened by this request must end: the token's
/// expiry plus the configured grace (`None` for a token without expiry).
pub(super) async fn authenticate<B>(
    protection: &Protection,
    request: &mut Request<B>,
) -> Result<Option<SystemTime>, Response<ResponseBody>> {
    match protection.authenticate(request.method(), request.uri(), request.headers()).await {
        Ok(principal) => {
            let grace = protection.config.stream_expiry_grace;
            let streams_end = principal.expires_at.map(|expiry| expiry.checked_add(grace).unwrap_or(expiry));
            let extensions = request.extensions_mut();
            extensions.insert::<Arc<Principal>>(principal);
            if !protection.config.filter_lists {
                extensions.insert(UnfilteredLists);
            }
            Ok(streams_end)
        }
        Err(refusal) => Err(refused(refusal)),
    }
}

fn metadata_answer(protection: &Protection, method: &http::Method) -> Response<ResponseBody> {
    let answer = protection.metadata(method);
    let mut response = match answer.body {
        Some(document) => body::json(answer.status, document),
        None => body::empty(answer.status),
    };
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    for (name, value) in answer.headers {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// A refusal as a response: the status, its challenge, `Retry-After`, and a JSON-RPC error body.
pub(super) fn refused(refusal: Refusal) -> Response<ResponseBody> {
    let error = if refusal.status == StatusCode::SERVICE_UNAVAILABLE {
        ErrorObject::internal(refusal.message)
    } else {
        ErrorObject::invalid_request(refusal.message)
    };
    let mut response = body::rpc_error(refusal.status, None, &error);
    let headers = response.headers_mut();
    if let Some(challenge) = refusal.challenge {
        headers.insert(WWW_AUTHENTICATE, challenge);
    }
    if let Some(challenge) = refusal.dpop_challenge {
        headers.append(WWW_AUTHENTICATE, challenge);
    }
    if let Some(nonce) = refusal.dpop_nonce {
        headers.insert("dpop-nonce", nonce);
    }
    if let Some(after) = refusal.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    response
}
