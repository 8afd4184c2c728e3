//! Dynamic client registration (RFC 7591): validates the metadata, stores the client, and answers with its
//! credentials. A secret is generated for secret-based methods and returned once; only its hash is kept.

use std::net::IpAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{Map, Value, json};

use super::Inner;
use super::authorize::random_value;
use super::client::{
    Client, ClientAuthMethod, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, SecretHash,
    redirect_uri_is_acceptable,
};
use super::error::OAuthError;
use super::response;
use crate::auth::client::token::now_secs;
use crate::server::http::ResponseBody;

/// Most redirect URIs per client.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest `client_name`.
const MAX_NAME: usize = 200;
/// Most keys in a registered JWK Set.
const MAX_KEYS: usize = 10;

pub(crate) async fn handle<B>(
    inner: &Inner,
    request: Request<B>,
    ip: Option<IpAddr>,
) -> Result<http::Response<ResponseBody>, OAuthError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !inner.limiter.allow_registration(ip) {
        return Err(OAuthError::rate_limited());
    }
    let (parts, body) = request.into_parts();
    if !response::content_type_is(&parts.headers, "application/json") {
        return Err(OAuthError::invalid_request("POST the client metadata as application/json"));
    }
    let body = response::read_body(body).await?;
    let metadata: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|_| OAuthError::invalid_client_metadata("the body is not a JSON object"))?;
    let (client, secret) = client_from_metadata(inner, &metadata)?;
    let mut answer = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": if client.has_grant(GRANT_AUTHORIZATION_CODE) { json!(["code"]) } else { json!([]) },
        "token_endpoint_auth_method": client.auth_method.as_str(),
    });
    for (field, value) in
        [("client_name", &client.client_name), ("logo_uri", &client.logo_uri), ("client_uri", &client.client_uri)]
    {
        if let Some(v) = value {
            answer[field] = json!(v);
        }
    }
    if let Some(jwks) = &client.jwks {
        answer["jwks"] = jwks.clone();
    }
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(0);
    }
    inner.store.put_client(client)?;
    Ok(response::json(StatusCode::CREATED, &answer))
}

/// The client described by `metadata`, and its new secret if it gets one.
pub(crate) fn client_from_metadata(
    inner: &Inner,
    metadata: &Map<String, Value>,
) -> Result<(Client, Option<String>), OAuthError> {
    fn bad(description: impl Into<String>) -> OAuthError {
        OAuthError::invalid_client_metadata(description)
    }
    let strings = |field: &str| -> Result<Option<Vec<String>>, OAuthError> {
        match metadata.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if items.len() <= 16 => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(format!("{field} must be strings"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad(format!("{field} must be an array of at most 16 strings"))),
        }
    };
    let string = |field: &str, max: usize| -> Result<Option<String>, OAuthError> {
        match metadata.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{field} must be a string of at most {max} bytes"))),
        }
    };
    let auth_method = match string("token_endpoint_auth_method", 64)? {
        Some(name) => ClientAuthMethod::parse(&name)
            .filter(|m| inner.auth_methods.contains(m))
            .ok_or_else(|| bad(format!("token_endpoint_auth_method {name:?} is not supported")))?,
        // RFC 7591 §2's default, where the server takes it.
        None if inner.auth_methods.contains(&ClientAuthMethod::ClientSecretBasic) => {
            ClientAuthMethod::ClientSecretBasic
        }
        None => inner.auth_methods.first().copied().unwrap_or(ClientAuthMethod::None),
    };
    let grant_types = strings("grant_types")?.unwrap_or_else(|| vec![GRANT_AUTHORIZATION_CODE.into()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| ![GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS].contains(&g.as_str()))
    {
        return Err(bad(format!("grant type {g:?} is not supported")));
    }
    // Anyone may register: a self-registered client_credentials client would get tokens that no user ever
    // approved. Machine clients are registered by the operator (`AuthorizationServer::register_client`).
    if grant_types.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS) {
        return Err(bad("client_credentials clients are registered by the operator, not dynamically"));
    }
    let uses_code = grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE);
    if let Some(types) = strings("response_types")? {
        let expected: &[&str] = if uses_code { &["code"] } else { &[] };
        if types != expected {
            return Err(bad("response_types must be [\"code\"] with the authorization_code grant, else empty"));
        }
    }
    let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
    if uses_code && redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri("redirect_uris is required for the authorization_code grant"));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!("at most {MAX_REDIRECT_URIS} redirect URIs")));
    }
    if let Some(uri) = redirect_uris.iter().find(|u| !redirect_uri_is_acceptable(u)) {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "redirect URI {uri:?} must be https, http on a loopback address, or a private-use scheme, without fragment"
        )));
    }
    // The scope a client registers is checked but not kept as a limit: MCP clients register with the scope
    // of their first challenge and ask for more after a 403 `insufficient_scope` (step-up), and anyone can
    // register another client anyway. RFC 7591 §3.2.1 lets the server replace it; the answer omits it.
    if let Some(scope) = string("scope", 1024)?
        && let Some(s) = scope.split(' ').filter(|s| !s.is_empty()).find(|s| !inner.scopes.iter().any(|x| x == s))
    {
        return Err(bad(format!("scope {s:?} is not supported")));
    }
    let https_uri = |field: &str| -> Result<Option<String>, OAuthError> {
        let value = string(field, 2048)?;
        match &value {
            Some(v) if !v.starts_with("https://") || url::Url::parse(v).is_err() => {
                Err(bad(format!("{field} must be an https URL")))
            }
            _ => Ok(value),
        }
    };
    let jwks = match metadata.get("jwks") {
        None | Some(Value::Null) => None,
        Some(jwks) => {
            let set: jsonwebtoken::jwk::JwkSet =
                serde_json::from_value(jwks.clone()).map_err(|_| bad("jwks is not a JWK Set"))?;
            if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
                return Err(bad(format!("jwks must hold 1 to {MAX_KEYS} keys")));
            }
            Some(jwks.clone())
        }
    };
    if auth_method == ClientAuthMethod::PrivateKeyJwt && jwks.is_none() {
        return Err(bad("private_key_jwt needs the public keys inline in jwks (jwks_uri is not supported)"));
    }
    let client_name = string("client_name", MAX_NAME)?;
    let secret = if auth_method.uses_secret() { Some(random_value()?) } else { None };
    let client = Client {
        client_id: random_value()?,
        secret_hash: secret.as_deref().map(SecretHash::new).transpose()?,
        auth_method,
        redirect_uris,
        grant_types,
        scopes: None,
        client_name,
        logo_uri: https_uri("logo_uri")?,
        client_uri: https_uri("client_uri")?,
        jwks,
        issued_at: now_secs(),
    };
    Ok((client, secret))
}
