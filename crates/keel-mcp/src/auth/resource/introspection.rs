//! [`IntrospectionVerifier`]: a [`TokenVerifier`] that asks the authorization server about each token
//! (RFC 7662 token introspection), for opaque tokens or when revocation must take effect quickly.
//!
//! The call is client-authenticated (`client_secret_basic`, or `client_secret_post`), time-bounded and
//! size-bounded; answers are cached in a bounded cache keyed by the token's SHA-256 (never the token), no
//! longer than the token's `exp` and the configured TTL. The verifier fails closed: an endpoint that is
//! down, slow, answers an error status or anything but a JSON object makes the request fail with
//! [`VerifyError::Unavailable`] (503 with `Retry-After`), never succeed.
//!
//! An answer is accepted when `active` is `true`, `exp` / `nbf` allow it now, `iss` (when present) is the
//! configured issuer, `aud` names the resource (required unless configured otherwise) and `token_type`, when
//! present, is an access token's (`Bearer`, `DPoP`, `access_token` or the RFC 8693 access-token URN): many
//! authorization servers report refresh tokens as active too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::{TokenVerifier, VerifiedToken, VerifyError, VerifyFuture};
use crate::server::Principal;

/// How long an answer is cached at most, by default (so a revoked token is refused within this time).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// How many answers the cache holds by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// How long one introspection call may take by default, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest introspection response read by default. Cached answers keep the response's claims, so this
/// times the cache capacity bounds the cache's memory (16 KiB × 10,000 = 160 MiB at worst; typical answers
/// are well under 1 KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// How many introspection calls may be in flight at once by default; more wait up to the timeout.
pub const DEFAULT_MAX_CONCURRENT: usize = 64;
/// The `Retry-After` sent when the endpoint is unavailable, by default.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How the resource server authenticates to the introspection endpoint (RFC 7662 §2.1).
#[derive(Clone)]
enum ClientAuth {
    /// `Authorization: Basic …`, precomputed (RFC 6749 §2.3.1: id and secret form-encoded first).
    Basic(String),
    /// `client_id` and `client_secret` in the form body.
    Post { client_id: String, client_secret: String },
}

/// A configuration mistake found by [`IntrospectionBuilder::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntrospectionSetupError(String);

impl std::fmt::Display for IntrospectionSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "introspection verifier: {}", self.0)
    }
}

impl std::error::Error for IntrospectionSetupError {}

/// Configures an [`IntrospectionVerifier`]; start with [`IntrospectionVerifier::builder`].
pub struct IntrospectionBuilder {
    endpoint: String,
    resource: String,
    auth: Option<ClientAuth>,
    issuer: Option<String>,
    require_audience: bool,
    cache_ttl: Duration,
    cache_capacity: usize,
    timeout: Duration,
    max_response_bytes: usize,
    max_concurrent: usize,
    retry_after: Duration,
    allow_http: bool,
}

impl std::fmt::Debug for IntrospectionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret never reaches logs.
        f.debug_struct("IntrospectionBuilder")
            .field("endpoint", &self.endpoint)
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl IntrospectionBuilder {
    /// Authenticates with `Authorization: Basic` (`client_secret_basic`, the RFC 7662 default).
    pub fn client_secret_basic(mut self, client_id: &str, client_secret: &str) -> Self {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(client_id), encode(client_secret));
        self.auth = Some(ClientAuth::Basic(format!("Basic {}", STANDARD.encode(pair))));
        self
    }

    /// Authenticates with `client_id` and `client_secret` in the form body (`client_secret_post`).
    pub fn client_secret_post(mut self, client_id: &str, client_secret: &str) -> Self {
        self.auth = Some(ClientAuth::Post { client_id: client_id.to_owned(), client_secret: client_secret.to_owned() });
        self
    }

    /// Requires the response's `iss`, when it has one, to be exactly `issuer` (no normalization). A response
    /// without `iss` is accepted: `iss` is optional in RFC 7662, and the authenticated endpoint vouches for
    /// the token.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// Whether a response without `aud` is refused (default `true`). An `aud` that is present must always
    /// contain the resource; turn this off only for an authorization server that omits `aud` and issues
    /// tokens for this resource alone.
    pub fn require_audience(mut self, require: bool) -> Self {
        self.require_audience = require;
        self
    }

    /// How long an answer is cached at most ([`DEFAULT_CACHE_TTL`]); never past the token's `exp`.
    /// `Duration::ZERO` turns caching off.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How many answers are cached ([`DEFAULT_CACHE_CAPACITY`]); the least recently used go first.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// How long one call may take, connection included ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response read ([`DEFAULT_MAX_RESPONSE_BYTES`]); a larger one counts as unavailable.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// How many calls may be in flight ([`DEFAULT_MAX_CONCURRENT`]); a request that cannot get a slot
    /// within the timeout fails as unavailable, so a flood of unknown tokens cannot pile up calls.
    pub fn max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls.max(1);
        self
    }

    /// The `Retry-After` of the 503 sent while the endpoint is unavailable ([`DEFAULT_RETRY_AFTER`]).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// Allows a plain `http://` endpoint on a host other than loopback. The client secret and the tokens
    /// then cross the network in clear: only for a private network you trust.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The verifier. Fails when no client authentication was set or the endpoint is not an `https` URL
    /// (or `http` on loopback, or with [`IntrospectionBuilder::allow_http`]).
    pub fn build(self) -> Result<IntrospectionVerifier, IntrospectionSetupError> {
        let url = url::Url::parse(&self.endpoint)
            .map_err(|e| IntrospectionSetupError(format!("endpoint is not a URL: {e}")))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback || self.allow_http => {}
            _ => return Err(IntrospectionSetupError("endpoint must be https (or http on loopback)".into())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(IntrospectionSetupError("put client credentials in client_secret_basic, not the URL".into()));
        }
        let auth = self.auth.ok_or_else(|| IntrospectionSetupError("no client authentication configured".into()))?;
        // reqwest is built without a bundled crypto provider; ring is the one the crate ships with.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .build()
            .map_err(|e| IntrospectionSetupError(format!("HTTP client: {e}")))?;
        Ok(IntrospectionVerifier {
            endpoint: self.endpoint,
            resource: self.resource,
            auth,
            issuer: self.issuer,
            require_audience: self.require_audience,
            cache_ttl: self.cache_ttl,
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            retry_after: self.retry_after,
            http,
            cache: Mutex::new(AnswerCache::new(self.cache_capacity)),
            slots: tokio::sync::Semaphore::new(self.max_concurrent),
            #[cfg(test)]
            clock_offset_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// Verifies tokens by RFC 7662 introspection. Share one (`Arc`) across requests.
///
/// ```no_run
/// use keel_mcp::auth::resource::introspection::IntrospectionVerifier;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let secret = std::env::var("INTROSPECTION_SECRET")?;
/// let verifier = IntrospectionVerifier::builder("https://auth.example/introspect", "https://notes.example/mcp")
///     .client_secret_basic("notes-api", &secret)
///     .issuer("https://auth.example")
///     .build()?;
/// # let _ = verifier; Ok(()) }
/// ```
pub struct IntrospectionVerifier {
    endpoint: String,
    resource: String,
    auth: ClientAuth,
    issuer: Option<String>,
    require_audience: bool,
    cache_ttl: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    retry_after: Duration,
    http: reqwest::Client,
    cache: Mutex<AnswerCache>,
    slots: tokio::sync::Semaphore,
    #[cfg(test)]
    clock_offset_ms: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret never reaches logs.
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.endpoint)
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// A builder for tokens introspected at `endpoint` and meant for `resource` (the protected resource's
    /// identifier, compared exactly with the response's `aud`).
    pub fn builder(endpoint: &str, resource: &str) -> IntrospectionBuilder {
        IntrospectionBuilder {
            endpoint: endpoint.to_owned(),
            resource: resource.to_owned(),
            auth: None,
            issuer: None,
            require_audience: true,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            retry_after: DEFAULT_RETRY_AFTER,
            allow_http: false,
        }
    }

    fn now_ms(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        #[cfg(test)]
        let now = now + self.clock_offset_ms.load(std::sync::atomic::Ordering::Relaxed);
        now
    }

    fn unavailable(&self, why: &dyn std::fmt::Display) -> VerifyError {
        tracing::warn!(endpoint = %self.endpoint, "token introspection unavailable: {why}");
        VerifyError::Unavailable { retry_after: self.retry_after }
    }

    async fn verify_uncached(&self, token: &str, key: [u8; 32]) -> Result<VerifiedToken, VerifyError> {
        let _slot = match tokio::time::timeout(self.timeout, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(self.unavailable(&"too many introspection calls in flight")),
        };
        let body = self.call(token).await?;
        let now_ms = self.now_ms();
        let answer = judge(&body, &self.resource, self.issuer.as_deref(), self.require_audience, now_ms / 1000);
        let cache_until = match &answer {
            // A verified token is cached until its `exp` at the latest.
            Ok((_, Some(exp))) => (exp.saturating_mul(1000)).min(now_ms.saturating_add(millis(self.cache_ttl))),
            _ => now_ms.saturating_add(millis(self.cache_ttl)),
        };
        let answer = answer.map(|(verified, _)| verified);
        if !self.cache_ttl.is_zero() {
            self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, answer.clone(), cache_until);
        }
        answer.map_err(VerifyError::Invalid)
    }

    /// POSTs the token and returns the response object, or why the endpoint is unavailable.
    async fn call(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let mut request = self.http.post(&self.endpoint).header("accept", "application/json");
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token).append_pair("token_type_hint", "access_token");
            match &self.auth {
                ClientAuth::Basic(header) => request = request.header("authorization", header),
                ClientAuth::Post { client_id, client_secret } => {
                    form.append_pair("client_id", client_id).append_pair("client_secret", client_secret);
                }
            }
            form.finish()
        };
        let request = request.header("content-type", "application/x-www-form-urlencoded").body(body);
        let mut response = request.send().await.map_err(|e| self.unavailable(&e.without_url()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(self.unavailable(&format_args!("status {}", response.status().as_u16())));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unavailable(&e.without_url()))? {
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(self.unavailable(&"response larger than the limit"));
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice::<Map<String, Value>>(&bytes)
            .map_err(|_| self.unavailable(&"response is not a JSON object"))
    }
}

impl TokenVerifier for IntrospectionVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            let key = hmac_sha256::Hash::hash(token.as_bytes());
            let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key, self.now_ms());
            match cached {
                Some(answer) => answer.map_err(VerifyError::Invalid),
                None => self.verify_uncached(token, key).await,
            }
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `token_type` values of an access token in an introspection answer: the RFC 6749 / RFC 9449 types it
/// is used with, OAuth's `access_token`, and the RFC 8693 URN.
const ACCESS_TOKEN_TYPES: [&str; 4] =
    ["Bearer", "DPoP", "access_token", "urn:ietf:params:oauth:token-type:access_token"];

/// What an introspection response says about the token: the verified token and its `exp`, or why it is
/// refused. `now` is in Unix seconds.
fn judge(
    body: &Map<String, Value>,
    resource: &str,
    issuer: Option<&str>,
    require_audience: bool,
    now: u64,
) -> Result<(VerifiedToken, Option<u64>), String> {
    // RFC 7662 §2.2: anything but the JSON `true` is inactive.
    if body.get("active") != Some(&Value::Bool(true)) {
        return Err("token is not active".into());
    }
    // Many authorization servers report refresh tokens as active too (some with an `aud`): when the answer
    // says what kind of token it is, it must be an access token.
    if let Some(kind) = body.get("token_type")
        && !kind.as_str().is_some_and(|kind| ACCESS_TOKEN_TYPES.iter().any(|t| kind.eq_ignore_ascii_case(t)))
    {
        return Err("not an access token (token_type)".into());
    }
    let exp = match body.get("exp") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or("exp is not a number")?),
    };
    if exp.is_some_and(|exp| exp <= now) {
        return Err("token expired".into());
    }
    if let Some(nbf) = body.get("nbf")
        && nbf.as_u64().is_none_or(|nbf| nbf > now)
    {
        return Err("token not yet valid".into());
    }
    // `iss` is optional in a response (RFC 7662 §2.2): the authenticated endpoint vouches for the token.
    // When it is there, it must be the configured issuer, exactly.
    if let (Some(want), Some(got)) = (issuer, body.get("iss"))
        && got.as_str() != Some(want)
    {
        return Err("token issued by another issuer".into());
    }
    let audience: Vec<String> = match body.get("aud") {
        None => Vec::new(),
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => {
            list.iter().map(|a| a.as_str().map(str::to_owned)).collect::<Option<_>>().ok_or("aud is malformed")?
        }
        Some(_) => return Err("aud is malformed".into()),
    };
    let audience_ok = if audience.is_empty() && !body.contains_key("aud") {
        !require_audience
    } else {
        audience.iter().any(|a| a == resource)
    };
    if !audience_ok {
        return Err("token is not meant for this resource".into());
    }
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let jkt = body.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str).map(str::to_owned);
    let scopes = text("scope").map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let principal = Principal {
        // The session owner is (issuer, subject, client): name the configured issuer when the answer omits it.
        issuer: text("iss").or_else(|| issuer.map(str::to_owned)),
        subject: text("sub"),
        client_id: text("client_id"),
        scopes: scopes.unwrap_or_default(),
        audience,
        expires_at: exp.map(|exp| UNIX_EPOCH + Duration::from_secs(exp)),
        claims: body.clone(),
    };
    let verified = VerifiedToken::new(principal);
    Ok((
        match jkt {
            Some(jkt) => verified.with_jkt(jkt),
            None => verified,
        },
        exp,
    ))
}

/// Cached answers by token hash, bounded by two generations: lookups promote into the young one, and when
/// it is full the old one is dropped whole. That is an LRU approximation with O(1) work per call and at most
/// `capacity` entries.
struct AnswerCache {
    half: usize,
    young: HashMap<[u8; 32], (Result<VerifiedToken, String>, u64)>,
    old: HashMap<[u8; 32], (Result<VerifiedToken, String>, u64)>,
}

impl AnswerCache {
    fn new(capacity: usize) -> Self {
        AnswerCache { half: (capacity / 2).max(1), young: HashMap::new(), old: HashMap::new() }
    }

    fn get(&mut self, key: &[u8; 32], now_ms: u64) -> Option<Result<VerifiedToken, String>> {
        if let Some((answer, until)) = self.young.get(key) {
            return (*until > now_ms).then(|| answer.clone());
        }
        let (answer, until) = self.old.remove(key)?;
        if until <= now_ms {
            return None;
        }
        self.insert(*key, answer.clone(), until);
        Some(answer)
    }

    fn insert(&mut self, key: [u8; 32], answer: Result<VerifiedToken, String>, until_ms: u64) {
        if self.young.len() >= self.half && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, (answer, until_ms));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const RESOURCE: &str = "https://notes.example/mcp";

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn judge_table() {
        let now = 1_000_000;
        let ok = json!({"active": true, "aud": RESOURCE, "exp": now + 60, "iss": "https://as", "sub": "alice",
                        "client_id": "c1", "scope": "notes:read  notes:write", "cnf": {"jkt": "THUMB"}});
        let (token, exp) = judge(&body(ok.clone()), RESOURCE, Some("https://as"), true, now).unwrap();
        assert_eq!(exp, Some(now + 60));
        assert_eq!(token.jkt.as_deref(), Some("THUMB"));
        assert_eq!(token.principal.subject.as_deref(), Some("alice"));
        assert_eq!(token.principal.issuer.as_deref(), Some("https://as"));
        assert_eq!(token.principal.client_id.as_deref(), Some("c1"));
        assert_eq!(token.principal.scopes, ["notes:read", "notes:write"]);
        assert_eq!(token.principal.audience, [RESOURCE]);
        assert_eq!(token.principal.claims["sub"], "alice");

        let with = |k: &str, v: Value| {
            let mut b = ok.clone();
            b[k] = v;
            b
        };
        let without = |k: &str| {
            let mut b = ok.clone();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        let refused = [
            (json!({"active": false}), "token is not active"),
            (with("active", json!("true")), "token is not active"),
            (without("active"), "token is not active"),
            (with("exp", json!(now)), "token expired"),
            (with("exp", json!("soon")), "exp is not a number"),
            (with("nbf", json!(now + 10)), "token not yet valid"),
            (with("iss", json!("https://as/")), "token issued by another issuer"),
            (with("iss", json!(7)), "token issued by another issuer"),
            (with("aud", json!("https://notes.example/mcp/")), "token is not meant for this resource"),
            (with("aud", json!(["https://other", 3])), "aud is malformed"),
            (with("aud", json!([])), "token is not meant for this resource"),
            (without("aud"), "token is not meant for this resource"),
            (with("token_type", json!("refresh_token")), "not an access token (token_type)"),
            (
                with("token_type", json!("urn:ietf:params:oauth:token-type:refresh_token")),
                "not an access token (token_type)",
            ),
            (with("token_type", json!(1)), "not an access token (token_type)"),
        ];
        for (b, why) in refused {
            assert_eq!(
                judge(&body(b.clone()), RESOURCE, Some("https://as"), true, now).err().as_deref(),
                Some(why),
                "{b}"
            );
        }
        assert!(judge(&body(with("aud", json!(["x", RESOURCE]))), RESOURCE, None, true, now).is_ok());
        assert!(judge(&body(without("aud")), RESOURCE, None, false, now).is_ok(), "aud optional when configured");
        assert!(judge(&body(with("iss", json!("x"))), RESOURCE, None, true, now).is_ok(), "iss checked only when set");
        assert!(judge(&body(without("iss")), RESOURCE, Some("https://as"), true, now).is_ok(), "iss is optional");
        for kind in ["Bearer", "bearer", "DPoP", "access_token", "urn:ietf:params:oauth:token-type:access_token"] {
            assert!(judge(&body(with("token_type", json!(kind))), RESOURCE, None, true, now).is_ok(), "{kind}");
        }
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let mut cache = AnswerCache::new(4);
        for i in 0..100u8 {
            cache.insert([i; 32], Err("x".into()), 1_000);
            assert!(cache.len() <= 4);
        }
        assert!(cache.get(&[99; 32], 999).is_some());
        assert!(cache.get(&[99; 32], 1_000).is_none(), "expired at its deadline");
        assert!(cache.get(&[0; 32], 0).is_none(), "evicted");
        // A hit in the old generation survives the next rotation.
        let mut cache = AnswerCache::new(4);
        cache.insert([1; 32], Err("a".into()), 10);
        cache.insert([2; 32], Err("b".into()), 10);
        cache.insert([3; 32], Err("c".into()), 10);
        assert!(cache.get(&[1; 32], 0).is_some());
        cache.insert([4; 32], Err("d".into()), 10);
        assert!(cache.get(&[1; 32], 0).is_some());
    }

    #[test]
    fn setup_checks() {
        let b = |url: &str| IntrospectionVerifier::builder(url, RESOURCE).client_secret_basic("id", "s3cret");
        assert!(b("https://as.example/introspect").build().is_ok());
        assert!(b("http://127.0.0.1:9/introspect").build().is_ok());
        assert!(b("http://as.example/introspect").build().is_err());
        assert!(b("http://as.example/introspect").allow_http(true).build().is_ok());
        assert!(b("https://id:pw@as.example/introspect").build().is_err());
        assert!(IntrospectionVerifier::builder("https://as.example/i", RESOURCE).build().is_err(), "no client auth");
        let v = b("https://as.example/introspect").build().unwrap();
        assert!(!format!("{v:?}").contains("s3cret"));
        assert!(!format!("{:?}", b("https://as.example/introspect")).contains("s3cret"));
    }

    /// A one-route introspection endpoint on loopback: answers every POST with `answer(form)` and counts calls.
    async fn endpoint(
        answer: impl Fn(&str, Option<&str>) -> (u16, String) + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let (answer, counter) = (Arc::new(answer), calls.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (answer, counter) = (answer.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then Content-Length bytes of body.
                    let (head, body) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                break (head.to_owned(), body.to_owned());
                            }
                        }
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let auth = head.lines().find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                            .map(|(_, v)| v.trim().to_owned())
                    });
                    let (status, reply) = answer(&body, auth.as_deref());
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, calls)
    }

    #[tokio::test]
    async fn cached_until_exp_then_asked_again() {
        let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 30;
        let (url, calls) = endpoint(move |form, auth| {
            assert!(form.contains("token=tok-1"), "{form}");
            assert_eq!(auth, Some("Basic aWQ6czNjcmV0"), "client_secret_basic");
            (200, json!({"active": true, "aud": RESOURCE, "exp": exp, "sub": "alice"}).to_string())
        })
        .await;
        let v = IntrospectionVerifier::builder(&url, RESOURCE)
            .client_secret_basic("id", "s3cret")
            .cache_ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        assert_eq!(v.verify("tok-1").await.unwrap().principal.subject.as_deref(), Some("alice"));
        assert_eq!(v.verify("tok-1").await.unwrap().principal.subject.as_deref(), Some("alice"));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "second answer from the cache");
        // 31 s later the token's exp has passed: the hour-long TTL does not keep it alive.
        v.clock_offset_ms.store(31_000, Ordering::Relaxed);
        assert!(matches!(v.verify("tok-1").await, Err(VerifyError::Invalid(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again after exp");
    }

    #[tokio::test]
    async fn post_auth_and_failures_fail_closed() {
        let (url, _) = endpoint(|form, auth| {
            assert_eq!(auth, None);
            if form.contains("token=garbage") {
                (200, "<html>".into())
            } else if form.contains("token=big") {
                (200, format!("{{\"active\":true,\"pad\":\"{}\"}}", "x".repeat(100_000)))
            } else if form.contains("token=err") {
                (500, "{}".into())
            } else {
                assert!(form.contains("client_id=id&client_secret=s%26cret"), "{form}");
                (200, json!({"active": false}).to_string())
            }
        })
        .await;
        let v = IntrospectionVerifier::builder(&url, RESOURCE)
            .client_secret_post("id", "s&cret")
            .retry_after(Duration::from_secs(7))
            .build()
            .unwrap();
        assert!(matches!(v.verify("inactive").await, Err(VerifyError::Invalid(_))));
        for token in ["garbage", "big", "err"] {
            match v.verify(token).await {
                Err(VerifyError::Unavailable { retry_after }) => assert_eq!(retry_after, Duration::from_secs(7)),
                other => panic!("{token}: {other:?}"),
            }
        }
        // Nobody listening.
        let down = IntrospectionVerifier::builder("http://127.0.0.1:1/introspect", RESOURCE)
            .client_secret_basic("id", "s")
            .build()
            .unwrap();
        assert!(matches!(down.verify("t").await, Err(VerifyError::Unavailable { .. })));
    }
}
