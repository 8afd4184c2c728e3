//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1).
//!
//! Order matters: until the client is known and the redirect URI matched against its registration, every
//! error is answered here (400), never redirected — that is what keeps the endpoint from being an open
//! redirector. After that, errors go back to the client's redirect URI with `state` and `iss` (RFC 9207).

use bytes::Bytes;
use http::Request;

use super::client::{Client, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN};
use super::consent::{ConsentDecision, ConsentRequest};
use super::error::OAuthError;
use super::response::{self, MAX_QUERY, Params};
use super::store::{CodeGrant, token_key};
use super::{Inner, OFFLINE_ACCESS};
use crate::auth::client::token::now_secs;
use crate::server::http::ResponseBody;

/// An error that goes back to the (trusted) redirect URI.
struct Redirected {
    code: &'static str,
    description: String,
}

fn redirected(code: &'static str, description: impl Into<String>) -> Redirected {
    Redirected { code, description: description.into() }
}

pub(crate) async fn handle<B>(inner: &Inner, request: Request<B>) -> Result<http::Response<ResponseBody>, OAuthError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let params = if parts.method == http::Method::POST {
        response::read_form(&parts.headers, body).await?
    } else {
        let query = parts.uri.query().unwrap_or("");
        if query.len() > MAX_QUERY {
            return Err(OAuthError::invalid_request("the authorization request is too long"));
        }
        Params::parse(query.as_bytes())?
    };

    // Phase 1: answered here.
    let client_id = params.require("client_id")?;
    let client = inner.client(client_id).await?.ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?;
    let requested_redirect = params.get("redirect_uri")?;
    let redirect_uri = match requested_redirect {
        Some(uri) => match client.matching_redirect_uri(uri) {
            Some(_) => uri.to_owned(),
            None => return Err(OAuthError::invalid_request("redirect_uri is not registered for this client")),
        },
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => return Err(OAuthError::invalid_request("redirect_uri is required")),
        },
    };

    // Phase 2: the redirect URI is trusted; errors go there.
    let state = params.get("state").ok().flatten();
    let back = |code: &str, description: &str| {
        let mut answer = vec![("error", code), ("error_description", description)];
        if let Some(state) = state {
            answer.push(("state", state));
        }
        answer.push(("iss", inner.issuer.as_str()));
        Ok(response::redirect(&response::with_query(&redirect_uri, &answer)))
    };
    let checked = match check(inner, &client, &params) {
        Ok(checked) => checked,
        Err(e) => return back(e.code, &e.description),
    };
    let decision = inner
        .consent
        .decide(ConsentRequest {
            client: &client,
            redirect_uri: &redirect_uri,
            scopes: &checked.scopes,
            resource: &checked.resource,
            params: &params.0,
            method: &parts.method,
            headers: &parts.headers,
        })
        .await;
    let (subject, approved) = match decision {
        ConsentDecision::Approve { subject, scopes } => (subject, scopes),
        ConsentDecision::Deny => return back("access_denied", "the user declined"),
        ConsentDecision::Respond(page) => return Ok(page),
    };
    // The policy may narrow the scopes, never widen them.
    let scopes: Vec<String> = checked.scopes.iter().filter(|s| approved.contains(s)).cloned().collect();
    let code = random_value()?;
    let grant = CodeGrant {
        client_id: client.client_id.clone(),
        redirect_uri: requested_redirect.map(str::to_owned),
        code_challenge: checked.code_challenge,
        scopes,
        resource: checked.resource,
        subject,
        expires_at: now_secs() + inner.code_ttl.as_secs().max(1),
    };
    inner.store.put_code(token_key(&code), grant)?;
    let mut answer = vec![("code", code.as_str())];
    if let Some(state) = state {
        answer.push(("state", state));
    }
    answer.push(("iss", inner.issuer.as_str()));
    Ok(response::redirect(&response::with_query(&redirect_uri, &answer)))
}

/// What a valid request asks for.
struct Checked {
    scopes: Vec<String>,
    resource: String,
    code_challenge: String,
}

fn check(inner: &Inner, client: &Client, params: &Params) -> Result<Checked, Redirected> {
    let get = |name: &str| params.get(name).map_err(|e| redirected("invalid_request", e.description));
    get("state")?;
    match get("response_type")? {
        None => return Err(redirected("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => return Err(redirected("unsupported_response_type", "only response_type=code is supported")),
    }
    if !client.has_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(redirected("unauthorized_client", "the client did not register the authorization_code grant"));
    }
    if get("code_challenge_method")? != Some("S256") {
        return Err(redirected("invalid_request", "PKCE is required, with code_challenge_method=S256"));
    }
    let code_challenge = get("code_challenge")?.unwrap_or("");
    if code_challenge.len() != 43
        || !code_challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(redirected("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)"));
    }
    let scopes = requested_scopes(inner, client, get("scope")?).map_err(|e| redirected(e.code, e.description))?;
    let resource = requested_resource(inner, get("resource")?).map_err(|e| redirected(e.code, e.description))?;
    Ok(Checked { scopes, resource, code_challenge: code_challenge.to_owned() })
}

/// The scopes of a request: each supported and allowed for the client, or the defaults when none are
/// named. `offline_access` is kept only for a client that registered the refresh grant (SEP-2207).
pub(crate) fn requested_scopes(inner: &Inner, client: &Client, scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let allowed = |s: &str| {
        inner.scopes.iter().any(|x| x == s) && client.scopes.as_ref().is_none_or(|c| c.iter().any(|x| x == s))
    };
    let mut scopes: Vec<String> = Vec::new();
    match scope {
        Some(scope) => {
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                if !allowed(s) {
                    return Err(OAuthError::invalid_scope(format!("scope {s:?} is not available")));
                }
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_owned());
                }
            }
        }
        None => scopes.extend(inner.default_scopes.iter().filter(|s| allowed(s)).cloned()),
    }
    if !client.has_grant(GRANT_REFRESH_TOKEN) {
        scopes.retain(|s| s != OFFLINE_ACCESS);
    }
    Ok(scopes)
}

/// The resource of a request: one of the configured ones, exactly; the first when none is named.
pub(crate) fn requested_resource(inner: &Inner, resource: Option<&str>) -> Result<String, OAuthError> {
    match resource {
        None => Ok(inner.resources.first().cloned().unwrap_or_default()),
        Some(r) if inner.resources.iter().any(|x| x == r) => Ok(r.to_owned()),
        Some(_) => Err(OAuthError::invalid_target("this server issues no tokens for that resource")),
    }
}

/// 32 random bytes, base64url.
pub(crate) fn random_value() -> Result<String, OAuthError> {
    crate::auth::client::pkce::random_token().map_err(|_| OAuthError::server_error("no randomness available"))
}
