//! The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): the `authorization_code`, `refresh_token` and
//! `client_credentials` grants, and the RFC 9068 JWT access tokens they issue.

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{Value, json};

use super::authorize::{random_value, requested_resource, requested_scopes};
use super::client::{Client, ClientAuthMethod, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN};
use super::client_auth::authenticated_form;
use super::error::OAuthError;
use super::response::{self, Params};
use super::store::{CodeRedemption, RefreshGrant, RefreshUse, token_key};
use super::{Inner, OFFLINE_ACCESS};
use crate::auth::client::pkce::{constant_time_eq, s256};
use crate::auth::client::token::now_secs;
use crate::server::http::ResponseBody;

pub(crate) async fn handle<B>(inner: &Inner, request: Request<B>) -> Result<http::Response<ResponseBody>, OAuthError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (params, client) = authenticated_form(inner, request).await?;
    let tokens = match params.require("grant_type")? {
        "authorization_code" => authorization_code(inner, &client, &params)?,
        "refresh_token" => refresh_token(inner, &client, &params)?,
        "client_credentials" => client_credentials(inner, &client, &params)?,
        _ => return Err(OAuthError::unsupported_grant_type("grant_type is not supported")),
    };
    Ok(response::json(StatusCode::OK, &tokens))
}

fn authorization_code(inner: &Inner, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    let code = params.require("code")?;
    let verifier = params.require("code_verifier")?;
    let redirect_uri = params.get("redirect_uri")?;
    let resource = params.get("resource")?;
    let key = token_key(code);
    // The family is named before the code is spent, so a replay racing this redemption can revoke it.
    let family_secret = random_value()?;
    let family = token_key(&family_secret);
    let grant = match inner.store.redeem_code(&key, &family, now_secs())? {
        CodeRedemption::Fresh(grant) => grant,
        CodeRedemption::Replayed { family } => {
            // A code seen twice was stolen or leaked: what the first redemption issued is revoked too. The
            // first redemption may not have started the family yet; it cannot once its code has expired.
            if let Some(family) = family {
                let until = now_secs() + inner.code_ttl.as_secs() + 60;
                inner.store.revoke_family(&family, until)?;
            }
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        CodeRedemption::Unknown => return Err(OAuthError::invalid_grant("unknown or expired authorization code")),
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if !(43..=128).contains(&verifier.len())
        || !verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        || !constant_time_eq(&s256(verifier), &grant.code_challenge)
    {
        return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
    }
    if grant.redirect_uri.as_deref() != redirect_uri
        && !(grant.redirect_uri.is_none() && redirect_uri.is_some_and(|r| client.redirect_uris.iter().any(|x| x == r)))
    {
        return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
    }
    if resource.is_some_and(|r| r != grant.resource) {
        return Err(OAuthError::invalid_target("resource differs from the authorization request"));
    }
    let refresh = if client.has_grant(GRANT_REFRESH_TOKEN) && grant.scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        let token = refresh_token_value(&family_secret)?;
        let started = inner.store.start_refresh_family(
            token_key(&token),
            RefreshGrant {
                family,
                client_id: client.client_id.clone(),
                subject: grant.subject.clone(),
                scopes: grant.scopes.clone(),
                resource: grant.resource.clone(),
                expires_at: now_secs() + inner.refresh_ttl.as_secs(),
            },
        )?;
        if !started {
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        Some(token)
    } else {
        None
    };
    issue(inner, client, &grant.subject, &grant.scopes, &grant.resource, refresh)
}

/// A refresh token of the family whose secret is `family_secret`: `{family secret}.{random}`. The family
/// part lets the store recognise every token of a family, spent ones included, without keeping them.
fn refresh_token_value(family_secret: &str) -> Result<String, OAuthError> {
    Ok(format!("{family_secret}.{}", random_value()?))
}

/// The family secret of a refresh token and the family's key, or `None` when it is not one of ours.
pub(crate) fn refresh_token_family(token: &str) -> Option<(&str, String)> {
    token.split_once('.').map(|(family_secret, _)| (family_secret, token_key(family_secret)))
}

fn refresh_token(inner: &Inner, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    let unknown = || OAuthError::invalid_grant("unknown, expired or revoked refresh token");
    let token = params.require("refresh_token")?;
    let (family_secret, family) = refresh_token_family(token).ok_or_else(unknown)?;
    let now = now_secs();
    // Bound to its client: another client presenting it learns nothing and spends nothing.
    let grant = match inner.store.refresh_family(&family, now)? {
        Some(grant) if grant.client_id == client.client_id => grant,
        _ => return Err(unknown()),
    };
    if !client.has_grant(GRANT_REFRESH_TOKEN) {
        return Err(OAuthError::unauthorized_client("the client did not register the refresh_token grant"));
    }
    // Checked before the token is spent: a refused request leaves the client its grant.
    let scopes = match params.get("scope")? {
        None => grant.scopes.clone(),
        Some(scope) => {
            let asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if let Some(bad) = asked.iter().find(|s| !grant.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("scope {bad:?} was not granted")));
            }
            asked
        }
    };
    if params.get("resource")?.is_some_and(|r| r != grant.resource) {
        return Err(OAuthError::invalid_target("resource differs from the original grant"));
    }
    let next = refresh_token_value(family_secret)?;
    let grant = match inner.store.rotate_refresh_token(&family, &token_key(token), token_key(&next), now)? {
        RefreshUse::Current(grant) => grant,
        RefreshUse::Reused => {
            return Err(OAuthError::invalid_grant("refresh token reused: every token of this grant is revoked"));
        }
        _ => return Err(unknown()),
    };
    issue(inner, client, &grant.subject, &scopes, &grant.resource, Some(next))
}

fn client_credentials(inner: &Inner, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    if !client.has_grant(GRANT_CLIENT_CREDENTIALS) || client.auth_method == ClientAuthMethod::None {
        return Err(OAuthError::unauthorized_client("the client may not use the client_credentials grant"));
    }
    let mut scopes = requested_scopes(inner, client, params.get("scope")?)?;
    scopes.retain(|s| s != OFFLINE_ACCESS);
    let resource = requested_resource(inner, params.get("resource")?)?;
    issue(inner, client, &client.client_id, &scopes, &resource, None)
}

/// The token response: a signed access token, and `refresh_token` (already stored) when there is one.
fn issue(
    inner: &Inner,
    client: &Client,
    subject: &str,
    scopes: &[String],
    resource: &str,
    refresh_token: Option<String>,
) -> Result<Value, OAuthError> {
    let now = now_secs();
    let ttl = inner.token_ttl.as_secs().max(1);
    let scope = scopes.join(" ");
    // RFC 9068 §2.2.
    let claims = json!({
        "iss": inner.issuer,
        "sub": subject,
        "aud": resource,
        "client_id": client.client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": random_value()?,
    });
    let access_token = inner.keys.sign("at+jwt", &claims)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    Ok(body)
}
