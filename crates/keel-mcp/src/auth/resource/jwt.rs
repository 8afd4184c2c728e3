//! [`JwtVerifier`]: checks JWT access tokens (RFC 9068 and plain JWTs) against the authorization server's
//! published keys, and maps their claims to a [`Principal`].
//!
//! What a token must pass, in order: a signature algorithm on the allow-list (RS256, PS256, ES256, EdDSA —
//! never `none`, never an HMAC, so a public key can never be used as a shared secret); `typ` = `at+jwt` when
//! required; a key the JWKS publishes for that `kid`, restricted to that algorithm if the key says so; a valid
//! signature (checked by `jsonwebtoken`, not here); `iss` equal to the configured issuer, exactly; `aud`
//! naming the configured resource (RFC 8707); `exp` required and `nbf` / `iat` checked, each with a bounded
//! leeway.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::jwks::{KeyCache, KeyCachePolicy};
use super::verified_cache::VerifiedCache;
use super::{TokenVerifier, VerifiedToken, VerifyError, VerifyFuture};
use crate::server::Principal;

/// The signature algorithms a [`JwtVerifier`] accepts.
pub const ALLOWED_ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];
const ALLOWED: [Algorithm; 4] = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// Most clock skew a [`JwtConfig::leeway`] may allow.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// What a [`JwtVerifier`] checks tokens against. Every limit has a safe default.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct JwtConfig {
    /// The issuer (`iss`) tokens must name, compared exactly (no slash added or removed).
    pub issuer: String,
    /// Where the issuer publishes its signing keys (JWKS). `https`, or `http` on a loopback host.
    pub jwks_url: String,
    /// The audience tokens must name in `aud`: this resource's identifier (RFC 8707).
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`. Default 60 s; at most [`MAX_LEEWAY`].
    pub leeway: Duration,
    /// Whether the token's `typ` header must be `at+jwt` (RFC 9068). Default `false`: many authorization
    /// servers issue plain JWTs.
    pub require_at_jwt: bool,
    /// How long fetched keys are used before they are fetched again. Default 10 min.
    pub keys_ttl: Duration,
    /// Least time between two fetches of the key set: a token naming an unknown key within it is refused
    /// without a fetch (and a failed fetch is not retried before it). Default 10 s.
    pub refetch_interval: Duration,
    /// Longest a key-set fetch may take. Default 5 s.
    pub fetch_timeout: Duration,
    /// Largest key set accepted, in bytes. Default 64 KiB.
    pub max_jwks_bytes: usize,
    /// Most keys read from a key set. Default 32.
    pub max_keys: usize,
}

impl JwtConfig {
    /// Tokens from `issuer`, signed with the keys at `jwks_url`, for the resource `audience`.
    pub fn new(issuer: impl Into<String>, jwks_url: impl Into<String>, audience: impl Into<String>) -> Self {
        JwtConfig {
            issuer: issuer.into(),
            jwks_url: jwks_url.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(60),
            require_at_jwt: false,
            keys_ttl: Duration::from_secs(600),
            refetch_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
            max_jwks_bytes: 64 * 1024,
            max_keys: 32,
        }
    }

    /// Sets [`JwtConfig::leeway`] (capped at [`MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// Sets [`JwtConfig::require_at_jwt`].
    pub fn require_at_jwt(mut self, on: bool) -> Self {
        self.require_at_jwt = on;
        self
    }

    /// Sets [`JwtConfig::keys_ttl`].
    pub fn keys_ttl(mut self, ttl: Duration) -> Self {
        self.keys_ttl = ttl;
        self
    }

    /// Sets [`JwtConfig::refetch_interval`].
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Sets [`JwtConfig::fetch_timeout`].
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Sets [`JwtConfig::max_jwks_bytes`].
    pub fn max_jwks_bytes(mut self, n: usize) -> Self {
        self.max_jwks_bytes = n;
        self
    }
}

/// Why a [`JwtVerifier`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// The JWKS URL is not `https` (or `http` on a loopback host).
    #[error("the JWKS URL must be https (http only on a loopback host): {0}")]
    JwksUrl(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client for the JWKS could not be built: {0}")]
    Client(String),
}

/// Verifies JWT access tokens against a JWKS URL.
///
/// What a token must pass, in order: a signature algorithm on the allow-list ([`ALLOWED_ALGORITHMS`]: never
/// `none`, never an HMAC, so a public key can never serve as a shared secret); `typ` = `at+jwt` when
/// [required](JwtConfig::require_at_jwt); a key the JWKS publishes for its `kid`, restricted to that algorithm
/// if the key says so; a valid signature (checked by `jsonwebtoken`); `iss` equal to [`JwtConfig::issuer`],
/// exactly; `aud` naming [`JwtConfig::audience`] (RFC 8707); `exp` present and `nbf` / `iat` checked, each
/// with [`JwtConfig::leeway`]. The claims become the [`Principal`]: `sub`, `client_id` (or `azp`), `scope`
/// (or `scp`), `aud`, `exp`, `iss` and every claim; `cnf.jkt` becomes [`VerifiedToken::jkt`].
///
/// A token that passed is remembered until its `exp`, for at most a minute, so a client that repeats its token
/// pays for one signature check; a repeat costs a keyed hash, a comparison and a shared read lock.
pub struct JwtVerifier {
    config: JwtConfig,
    keys: KeyCache,
    verified: VerifiedCache,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier").field("config", &self.config).finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for `config`. Keys are fetched on the first token, not here.
    pub fn new(config: JwtConfig) -> Result<Self, JwtConfigError> {
        check_jwks_url(&config.jwks_url)?;
        // reqwest is built without a bundled crypto provider; ring is the one the crate ships with.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.fetch_timeout)
            .build()
            .map_err(|e| JwtConfigError::Client(e.to_string()))?;
        let policy = KeyCachePolicy {
            ttl: config.keys_ttl,
            refetch_interval: config.refetch_interval,
            fetch_timeout: config.fetch_timeout,
            max_bytes: config.max_jwks_bytes,
            max_keys: config.max_keys,
        };
        let keys = KeyCache::new(config.jwks_url.clone(), http, policy);
        let config = JwtConfig { leeway: config.leeway.min(MAX_LEEWAY), ..config };
        Ok(JwtVerifier { config, keys, verified: VerifiedCache::default() })
    }

    async fn check_and_remember(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let verified = self.check_uncached(token).await?;
        self.verified.put(token, &verified);
        Ok(verified)
    }

    async fn check_uncached(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let invalid = |why: &str| VerifyError::Invalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a signed JWT"))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(invalid("signature algorithm not allowed"));
        }
        if self.config.require_at_jwt
            && !header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"))
        {
            return Err(invalid("not an access token (typ must be at+jwt)"));
        }
        let key = self.keys.key(header.kid.as_deref()).await?;
        if key.algorithm.is_some_and(|alg| alg != header.alg) {
            return Err(invalid("the key is not for this signature algorithm"));
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| invalid(describe(e.kind())))?;
        let claims = data.claims;
        self.check_issued_at(&claims)?;
        Ok(verified(claims))
    }

    /// `iat`, when present, is a number and not in the future (beyond the leeway).
    fn check_issued_at(&self, claims: &Map<String, Value>) -> Result<(), VerifyError> {
        let Some(iat) = claims.get("iat") else { return Ok(()) };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match iat.as_f64() {
            Some(iat) if iat <= (now + self.config.leeway.as_secs()) as f64 => Ok(()),
            Some(_) => Err(VerifyError::Invalid("the token is issued in the future".into())),
            None => Err(VerifyError::Invalid("iat is not a number".into())),
        }
    }
}

impl TokenVerifier for JwtVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        // A hit is answered by a ready future: the (large) checking future is not even built.
        match self.verified.get(token) {
            Some(verified) => Box::pin(std::future::ready(Ok(verified))),
            None => Box::pin(self.check_and_remember(token)),
        }
    }
}

/// A fixed description of why `jsonwebtoken` refused a token: never its text, which could quote the token.
fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => "bad signature",
        K::ExpiredSignature => "the token has expired",
        K::ImmatureSignature => "the token is not valid yet (nbf)",
        K::InvalidIssuer => "wrong issuer",
        K::InvalidAudience => "the token is not for this resource (aud)",
        K::MissingRequiredClaim(_) => "a required claim (exp, iss, aud) is missing",
        K::InvalidClaimFormat(_) => "a claim has the wrong type",
        K::InvalidAlgorithm => "the key does not match the signature algorithm",
        _ => "malformed token",
    }
}

/// The principal and key binding a token's claims describe.
fn verified(claims: Map<String, Value>) -> VerifiedToken {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let audience = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let expires_at =
        claims.get("exp").and_then(Value::as_u64).and_then(|exp| UNIX_EPOCH.checked_add(Duration::from_secs(exp)));
    let jkt = claims.get("cnf").and_then(|cnf| cnf.get("jkt")).and_then(Value::as_str).map(str::to_owned);
    let principal = Principal {
        issuer: text("iss"),
        subject: text("sub"),
        client_id: text("client_id").or_else(|| text("azp")),
        scopes: scopes(&claims),
        audience,
        expires_at,
        claims,
    };
    VerifiedToken { principal: principal.into(), jkt }
}

/// The granted scopes: `scope` (RFC 9068, space-separated) or `scp` (a list, or a string, as some issuers
/// send it).
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let split = |text: &str| text.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(text)) => split(text),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// `https`, or `http` on a loopback host (development and tests).
fn check_jwks_url(url: &str) -> Result<(), JwtConfigError> {
    let bad = || JwtConfigError::JwksUrl(url.to_owned());
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad()),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_map_to_a_principal() {
        let claims = serde_json::json!({
            "iss": "https://idp.example", "sub": "alice", "azp": "app", "aud": ["https://notes.example/mcp", "x"],
            "exp": 2_000_000_000u64, "scope": "notes:read  notes:write", "cnf": {"jkt": "thumb"}
        });
        let Value::Object(claims) = claims else { unreachable!() };
        let token = verified(claims);
        let p = &token.principal;
        assert_eq!(p.issuer.as_deref(), Some("https://idp.example"));
        assert_eq!(p.subject.as_deref(), Some("alice"));
        assert_eq!(p.client_id.as_deref(), Some("app"));
        assert_eq!(p.scopes, vec!["notes:read", "notes:write"]);
        assert_eq!(p.audience.len(), 2);
        assert_eq!(p.expires_at, UNIX_EPOCH.checked_add(Duration::from_secs(2_000_000_000)));
        assert_eq!(token.jkt.as_deref(), Some("thumb"));
        let Value::Object(scp) = serde_json::json!({"scp": ["a", "b"], "client_id": "c", "azp": "ignored"}) else {
            unreachable!()
        };
        let token = verified(scp);
        assert_eq!(token.principal.scopes, vec!["a", "b"]);
        assert_eq!(token.principal.client_id.as_deref(), Some("c"));
        assert!(token.jkt.is_none());
    }

    #[test]
    fn the_jwks_url_must_be_https_unless_loopback() {
        assert!(check_jwks_url("https://idp.example/jwks").is_ok());
        assert!(check_jwks_url("http://127.0.0.1:9/jwks").is_ok());
        assert!(check_jwks_url("http://localhost/jwks").is_ok());
        assert!(check_jwks_url("http://idp.example/jwks").is_err());
        assert!(check_jwks_url("file:///etc/jwks").is_err());
    }
}
