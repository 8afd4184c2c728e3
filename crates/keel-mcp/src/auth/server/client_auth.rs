//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3, RFC 7523 §2.2).
//!
//! What the client presented is read first ([`Presented`]): exactly one of HTTP Basic, a secret in the body,
//! a JWT assertion, or only a `client_id`. It must then be a method the client registered with: a client
//! that has a secret must prove it (Basic or body; the two are the same secret), however the request was
//! sent — so advertising `none` never opens a confidential client to anyone who knows its id.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde::Deserialize;

use super::Inner;
use super::client::{Client, ClientAuthMethod};
use super::error::OAuthError;
use super::response::Params;
use crate::auth::client::assertion::JWT_BEARER_ASSERTION_TYPE;
use crate::auth::client::token::now_secs;

/// Signature algorithms accepted for client assertions (asymmetric only).
pub(crate) const ASSERTION_ALGORITHMS: [&str; 5] = ["ES256", "ES384", "RS256", "PS256", "EdDSA"];
/// Longest accepted lifetime of a client assertion.
const MAX_ASSERTION_LIFETIME: u64 = 600;
/// Most live assertion ids remembered per client for replay detection (a client past it is refused until
/// its assertions expire; others are not affected).
const MAX_SEEN_PER_CLIENT: usize = 1_000;
/// Most clients with live assertion ids remembered.
const MAX_SEEN_CLIENTS: usize = 1_000;
/// Clock skew allowed on an assertion's `exp`: its id is remembered for as long.
const ASSERTION_LEEWAY: u64 = 30;

/// What the request carried.
#[derive(Debug)]
pub(crate) enum Presented {
    /// Only a `client_id`.
    Id(String),
    /// `Authorization: Basic`.
    Basic { id: String, secret: String },
    /// `client_secret` in the body.
    Post { id: String, secret: String },
    /// `client_assertion` (`private_key_jwt`).
    Assertion { id: Option<String>, assertion: String },
}

impl Presented {
    /// Reads the credentials of a token or revocation request.
    pub fn read(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
        let body_id = params.get("client_id")?;
        let body_secret = params.get("client_secret")?;
        let assertion = params.get("client_assertion")?;
        let basic = match headers.get(http::header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(parse_basic(value.to_str().unwrap_or(""))?),
        };
        let presented = match (basic, body_secret, assertion) {
            (Some((id, secret)), None, None) => {
                if body_id.is_some_and(|b| b != id) {
                    return Err(basic_failure("client_id differs from the Basic credentials"));
                }
                Presented::Basic { id, secret }
            }
            (None, Some(secret), None) => {
                let id = body_id.ok_or_else(|| OAuthError::invalid_request("client_secret without client_id"))?;
                Presented::Post { id: id.to_owned(), secret: secret.to_owned() }
            }
            (None, None, Some(assertion)) => {
                if params.get("client_assertion_type")? != Some(JWT_BEARER_ASSERTION_TYPE) {
                    return Err(OAuthError::invalid_request("client_assertion_type must be the JWT bearer type"));
                }
                Presented::Assertion { id: body_id.map(str::to_owned), assertion: assertion.to_owned() }
            }
            (None, None, None) => match body_id {
                Some(id) => Presented::Id(id.to_owned()),
                None => return Err(OAuthError::invalid_client("client authentication is required")),
            },
            _ => return Err(OAuthError::invalid_request("use exactly one client authentication method")),
        };
        Ok(presented)
    }

    fn basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }
}

fn basic_failure(why: &str) -> OAuthError {
    OAuthError::invalid_client(why).with_basic_challenge(true)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &str) -> Result<(String, String), OAuthError> {
    let (scheme, encoded) = value.split_once(' ').ok_or_else(|| basic_failure("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("the token endpoint takes Basic client credentials only"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| basic_failure("malformed Basic credentials"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| basic_failure("malformed Basic credentials"))?;
    let (id, secret) = decoded.split_once(':').ok_or_else(|| basic_failure("malformed Basic credentials"))?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if id.is_empty() {
        return Err(basic_failure("malformed Basic credentials"));
    }
    Ok((id, secret))
}

/// Reads a token or revocation request's form and authenticates the client that sent it.
pub(crate) async fn authenticated_form<B>(
    inner: &Inner,
    request: http::Request<B>,
) -> Result<(Params, Client), OAuthError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let params = super::response::read_form(&parts.headers, body).await?;
    let ip = parts.extensions.get::<crate::server::http::PeerAddr>().map(|p| p.0.ip());
    let client = authenticate(inner, &parts.headers, &params, ip).await?;
    Ok((params, client))
}

/// Authenticates the client that sent `headers` and `params` from `ip`.
pub(crate) async fn authenticate(
    inner: &Inner,
    headers: &HeaderMap,
    params: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<Client, OAuthError> {
    let presented = Presented::read(headers, params)?;
    let basic = presented.basic();
    let fail = |why: &str| OAuthError::invalid_client(why).with_basic_challenge(basic);
    let id = match &presented {
        Presented::Id(id) | Presented::Basic { id, .. } | Presented::Post { id, .. } => id.clone(),
        Presented::Assertion { id: Some(id), .. } => id.clone(),
        Presented::Assertion { id: None, assertion } => {
            assertion_subject(assertion).ok_or_else(|| fail("bad client assertion"))?
        }
    };
    // Anyone can name any client: before authentication only this address's attempts are counted.
    if !inner.limiter.allow_client_attempt(&id, ip) {
        return Err(OAuthError::rate_limited());
    }
    let client = inner.client(&id).await?.ok_or_else(|| fail("unknown client"))?;
    let used = match &presented {
        Presented::Id(_) => ClientAuthMethod::None,
        Presented::Basic { .. } => ClientAuthMethod::ClientSecretBasic,
        Presented::Post { .. } => ClientAuthMethod::ClientSecretPost,
        Presented::Assertion { .. } => ClientAuthMethod::PrivateKeyJwt,
    };
    if !inner.auth_methods.contains(&used) {
        return Err(fail("this client authentication method is not accepted here"));
    }
    match (&presented, client.auth_method) {
        // A public client proves nothing, so it has no budget of its own that a request could fairly spend.
        (Presented::Id(_), ClientAuthMethod::None) => return Ok(client),
        (Presented::Basic { secret, .. } | Presented::Post { secret, .. }, registered) if registered.uses_secret() => {
            match &client.secret_hash {
                Some(hash) if hash.verify(secret) => {}
                _ => return Err(fail("client authentication failed")),
            }
        }
        (Presented::Assertion { assertion, .. }, ClientAuthMethod::PrivateKeyJwt) => {
            verify_assertion(inner, &client, assertion)?;
        }
        // A public client sending a secret, or a confidential one sending none: refused either way.
        _ => return Err(fail("client authentication failed")),
    }
    if !inner.limiter.allow_authenticated_client(&client.client_id) {
        return Err(OAuthError::rate_limited());
    }
    Ok(client)
}

/// The unverified `sub` of an assertion, only to find the client whose keys verify it.
fn assertion_subject(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    jsonwebtoken::dangerous::insecure_decode::<Subject>(assertion).ok().map(|t| t.claims.sub)
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: u64,
    jti: String,
}

/// Assertion ids already used per client, kept until the assertions can no longer be accepted.
#[derive(Debug, Default)]
pub(crate) struct SeenAssertions(Mutex<HashMap<String, HashMap<String, u64>>>);

impl SeenAssertions {
    /// `false` when `client`'s `jti` was seen (a replay), or when `client` (or the table of clients) is
    /// full of live ids. `exp` is the assertion's; the id is kept until `exp` plus the leeway.
    fn first_use(&self, client: &str, jti: &str, exp: u64, now: u64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_SEEN_CLIENTS && !seen.contains_key(client) {
            seen.retain(|_, ids| {
                ids.retain(|_, until| *until >= now);
                !ids.is_empty()
            });
            if seen.len() >= MAX_SEEN_CLIENTS {
                return false;
            }
        }
        let ids = seen.entry(client.to_owned()).or_default();
        if ids.len() >= MAX_SEEN_PER_CLIENT {
            ids.retain(|_, until| *until >= now);
        }
        if ids.len() >= MAX_SEEN_PER_CLIENT || ids.contains_key(jti) {
            return false;
        }
        ids.insert(jti.to_owned(), exp.saturating_add(ASSERTION_LEEWAY));
        true
    }
}

/// Verifies a `private_key_jwt` assertion with the client's registered keys: signature, `iss` = `sub` =
/// client id, `aud` the issuer or the token endpoint, a short lifetime, and a `jti` used once.
fn verify_assertion(inner: &Inner, client: &Client, assertion: &str) -> Result<(), OAuthError> {
    let fail = || OAuthError::invalid_client("client assertion rejected");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| fail())?;
    let alg = format!("{:?}", header.alg);
    if !ASSERTION_ALGORITHMS.contains(&alg.as_str()) {
        return Err(fail());
    }
    let jwks: jsonwebtoken::jwk::JwkSet =
        client.jwks.clone().and_then(|v| serde_json::from_value(v).ok()).ok_or_else(fail)?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&client.client_id]);
    validation.set_audience(&[inner.issuer.clone(), inner.endpoint("token")]);
    validation.sub = Some(client.client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = ASSERTION_LEEWAY;
    let candidates = jwks.keys.iter().filter(|k| header.kid.is_none() || k.common.key_id == header.kid);
    let claims = candidates
        .filter_map(|jwk| jsonwebtoken::DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation).ok())
        .ok_or_else(fail)?
        .claims;
    let now = now_secs();
    if claims.exp > now + MAX_ASSERTION_LIFETIME || claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(fail());
    }
    if !inner.assertion_ids.first_use(&client.client_id, &claims.jti, claims.exp, now) {
        return Err(OAuthError::invalid_client("client assertion replayed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn presented_table() {
        let basic = format!("Basic {}", STANDARD.encode("my%20id:p%3Ass+w"));
        let p = Presented::read(&headers(Some(&basic)), &Params::parse(b"").unwrap()).unwrap();
        assert!(matches!(p, Presented::Basic { ref id, ref secret } if id == "my id" && secret == "p:ss+w"));
        let p = Presented::read(&headers(None), &Params::parse(b"client_id=a&client_secret=s").unwrap()).unwrap();
        assert!(matches!(p, Presented::Post { .. }));
        let p = Presented::read(&headers(None), &Params::parse(b"client_id=a").unwrap()).unwrap();
        assert!(matches!(p, Presented::Id(_)));
        let two = Presented::read(&headers(Some(&basic)), &Params::parse(b"client_id=a&client_secret=s").unwrap());
        assert_eq!(two.unwrap_err().code, "invalid_request");
        let none = Presented::read(&headers(None), &Params::parse(b"").unwrap());
        assert_eq!(none.unwrap_err().code, "invalid_client");
        let mismatch = Presented::read(&headers(Some(&basic)), &Params::parse(b"client_id=other").unwrap());
        assert!(mismatch.unwrap_err().basic_challenge);
        for bad in ["Basic !!!", "Basic", "Bearer x", &format!("Basic {}", STANDARD.encode("nocolon"))] {
            assert!(Presented::read(&headers(Some(bad)), &Params::parse(b"").unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn replayed_assertions() {
        let seen = SeenAssertions::default();
        assert!(seen.first_use("c", "a", 10, 1));
        assert!(!seen.first_use("c", "a", 10, 1));
        assert!(seen.first_use("c", "b", 10, 1));
        assert!(seen.first_use("d", "a", 10, 1), "ids are per client");
    }

    #[test]
    fn an_assertion_is_remembered_as_long_as_it_is_accepted() {
        let seen = SeenAssertions::default();
        assert!(seen.first_use("c", "a", 10, 1));
        // Past `exp` but within the leeway the assertion still verifies; a full table is pruned meanwhile.
        for i in 1..MAX_SEEN_PER_CLIENT {
            assert!(seen.first_use("c", &format!("filler{i}"), 5, 1));
        }
        assert!(!seen.first_use("c", "a", 10, 11 + ASSERTION_LEEWAY - 1), "still a replay");
    }

    #[test]
    fn a_flooding_client_fills_only_its_own_table() {
        let seen = SeenAssertions::default();
        let mut refused = 0;
        for i in 0..MAX_SEEN_PER_CLIENT + 5 {
            refused += usize::from(!seen.first_use("flood", &i.to_string(), 1_000, 1));
        }
        assert_eq!(refused, 5, "the flooding client is refused past its share");
        assert!(seen.first_use("other", "x", 1_000, 1), "another client is not");
    }
}
