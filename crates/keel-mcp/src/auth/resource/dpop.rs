//! Server-side DPoP (RFC 9449): the checks a resource server makes on the `DPoP` proof that comes with a
//! DPoP-bound access token (`Authorization: DPoP <token>`).
//!
//! [`DpopVerifier::verify`] runs every check of RFC 9449 §4.3 and §7.1 against one request: the proof is a
//! JWS of type `dpop+jwt` signed with an asymmetric algorithm from the allow-list by the public key in its
//! own header (no private members, key type matching the algorithm), its `htm` and `htu` name this request's
//! method and URL, its `iat` is recent, its `ath` is the hash of the access token, the key's RFC 7638
//! thumbprint is the token's `cnf.jkt`, its `jti` was not seen before, and — when the server asks for
//! nonces — it carries a current server nonce. Signatures are checked by `jsonwebtoken`; nothing here
//! verifies a signature by hand.
//!
//! The replay cache and the nonces are bounded in memory and time: a `jti` is remembered only as long as a
//! proof carrying it could still pass the `iat` check, and nonces are MACs of the current rotation period,
//! so no per-client state is kept for them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The proof signature algorithms accepted by default (RFC 9449 §5.1 recommends ES256; RS256, PS256 and
/// EdDSA are common). HMAC and `none` can never be enabled.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [Algorithm::ES256, Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA];

/// Largest `DPoP` header accepted, in bytes (a proof with a 4096-bit RSA key is about 1.5 KiB).
pub const DEFAULT_MAX_PROOF_BYTES: usize = 8 * 1024;

/// How old a proof's `iat` may be by default.
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(60);

/// How far in the future a proof's `iat` may be by default (client clock skew).
pub const DEFAULT_IAT_SKEW: Duration = Duration::from_secs(5);

/// How many `jti`s the replay cache holds by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// How many `jti`s of one key the replay cache holds by default: a tenth of it, about 150 proofs a second
/// per key sustained over the default `iat` window and skew, so one key cannot fill the cache for the others.
pub const DEFAULT_REPLAY_QUOTA_PER_KEY: usize = DEFAULT_REPLAY_CAPACITY / 10;

/// Smallest and largest RSA modulus accepted in a proof's key, in bits (a huge key is a slow check).
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// Longest RSA public exponent accepted, in bytes (65537 takes 3; a huge exponent is a slow check).
const MAX_RSA_EXPONENT_BYTES: usize = 4;

/// Longest `jti` accepted (it is hashed before it is stored).
const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a DPoP proof was refused. Each maps to one answer of the resource server (RFC 9449 §7.1, §9).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopError {
    /// The proof is malformed, badly signed, or does not fit this request: 401 with
    /// `WWW-Authenticate: DPoP error="invalid_dpop_proof"`. The text says which check failed; it never
    /// contains the proof or the token.
    InvalidProof(&'static str),
    /// The proof is valid but signed by a key other than the one the token is bound to (`cnf.jkt`):
    /// 401 `error="invalid_token"`.
    KeyMismatch,
    /// The server requires a nonce and the proof has none or a stale one: 401 `error="use_dpop_nonce"` with
    /// a fresh `DPoP-Nonce` header; the client retries with it.
    UseNonce,
    /// The replay cache is full of proofs still inside their `iat` window, so a new `jti` cannot be
    /// remembered: 503 (fail closed rather than forget a `jti` that could then be replayed).
    ReplayCacheFull,
    /// This key has as many proofs in the replay cache as [`DpopVerifier::replay_quota_per_key`] allows:
    /// 429 with `Retry-After` for this client only, until its older proofs leave their `iat` window.
    KeyQuotaExceeded,
}

impl std::fmt::Display for DpopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DpopError::InvalidProof(why) => write!(f, "invalid DPoP proof: {why}"),
            DpopError::KeyMismatch => f.write_str("the DPoP proof is not signed by the key the token is bound to"),
            DpopError::UseNonce => f.write_str("the resource server requires a DPoP nonce"),
            DpopError::ReplayCacheFull => f.write_str("DPoP replay cache full; retry shortly"),
            DpopError::KeyQuotaExceeded => f.write_str("too many DPoP proofs from this key; retry shortly"),
        }
    }
}

impl std::error::Error for DpopError {}

impl DpopError {
    /// The OAuth error code for the `WWW-Authenticate` challenge, or `None` for [`DpopError::ReplayCacheFull`]
    /// and [`DpopError::KeyQuotaExceeded`] (a 503 or 429, not a challenge).
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            DpopError::InvalidProof(_) => Some("invalid_dpop_proof"),
            DpopError::KeyMismatch => Some("invalid_token"),
            DpopError::UseNonce => Some("use_dpop_nonce"),
            DpopError::ReplayCacheFull | DpopError::KeyQuotaExceeded => None,
        }
    }
}

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The HTTP method, as sent (`POST`).
    pub method: &'a str,
    /// The request's URL as the client addressed it: scheme, authority and path (a query or fragment is
    /// ignored). Behind a TLS-terminating proxy, build it from the public origin, not from the `Host` header.
    pub url: &'a str,
    /// The access token from `Authorization: DPoP <token>`; the proof's `ath` must be its hash.
    pub access_token: &'a str,
    /// The token's `cnf.jkt`: the RFC 7638 SHA-256 thumbprint of the key the token is bound to.
    pub jkt: &'a str,
}

/// Checks DPoP proofs for one resource server: the algorithm allow-list, the `iat` window, the `jti`
/// replay cache and the optional server nonces. Share one (`Arc`) across requests.
///
/// ```
/// use std::time::Duration;
/// use keel_mcp::auth::resource::dpop::DpopVerifier;
///
/// let verifier = DpopVerifier::new()
///     .iat_window(Duration::from_secs(30))
///     .require_nonce(Duration::from_secs(300));
/// assert!(verifier.current_nonce().is_some());
/// ```
pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    max_proof_bytes: usize,
    iat_window: Duration,
    iat_skew: Duration,
    replay: Mutex<ReplayCache>,
    nonce: Option<NonceSource>,
    /// A nonce key given before [`DpopVerifier::require_nonce`].
    shared_nonce_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The nonce key stays out of logs.
        f.debug_struct("DpopVerifier")
            .field("algorithms", &self.algorithms)
            .field("max_proof_bytes", &self.max_proof_bytes)
            .field("iat_window", &self.iat_window)
            .field("iat_skew", &self.iat_skew)
            .field("nonce_rotation", &self.nonce.as_ref().map(|n| n.rotation))
            .finish_non_exhaustive()
    }
}

impl Default for DpopVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopVerifier {
    /// A verifier with the defaults: [`DEFAULT_ALGORITHMS`], proofs up to [`DEFAULT_MAX_PROOF_BYTES`], `iat`
    /// at most [`DEFAULT_IAT_WINDOW`] old and [`DEFAULT_IAT_SKEW`] ahead, [`DEFAULT_REPLAY_CAPACITY`] `jti`s
    /// remembered (at most [`DEFAULT_REPLAY_QUOTA_PER_KEY`] per key), no nonces.
    pub fn new() -> Self {
        DpopVerifier {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_proof_bytes: DEFAULT_MAX_PROOF_BYTES,
            iat_window: DEFAULT_IAT_WINDOW,
            iat_skew: DEFAULT_IAT_SKEW,
            replay: Mutex::new(ReplayCache::new(DEFAULT_REPLAY_CAPACITY, None)),
            nonce: None,
            shared_nonce_key: None,
        }
    }

    /// The accepted proof algorithms. HMAC algorithms are dropped (a proof must be signed with the private
    /// half of the key in its header); an empty list refuses every proof.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms
            .iter()
            .copied()
            .filter(|a| a.family() != AlgorithmFamily::Hmac && algorithm_name(*a) != "unknown")
            .collect();
        self
    }

    /// The signature algorithms accepted, for `dpop_signing_alg_values_supported` and the `algs` challenge
    /// parameter.
    pub fn algorithm_names(&self) -> Vec<&'static str> {
        self.algorithms.iter().map(|a| algorithm_name(*a)).collect()
    }

    /// The largest proof accepted, in bytes.
    pub fn max_proof_bytes(mut self, bytes: usize) -> Self {
        self.max_proof_bytes = bytes;
        self
    }

    /// The largest proof accepted, in bytes (for bounding the `DPoP` header before it is read).
    pub fn proof_limit(&self) -> usize {
        self.max_proof_bytes
    }

    /// How old a proof's `iat` may be. A `jti` is remembered for this long plus the skew, so a longer window
    /// needs a larger replay cache at the same request rate.
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window;
        self
    }

    /// How far ahead of this server's clock a proof's `iat` may be.
    pub fn iat_skew(mut self, skew: Duration) -> Self {
        self.iat_skew = skew;
        self
    }

    /// How many `jti`s the replay cache holds. Past it, new proofs are refused with
    /// [`DpopError::ReplayCacheFull`] until old ones leave their `iat` window. Unless
    /// [`DpopVerifier::replay_quota_per_key`] says otherwise, one key may hold a tenth of it.
    pub fn replay_capacity(self, capacity: usize) -> Self {
        self.replay.lock().unwrap_or_else(|e| e.into_inner()).capacity = capacity;
        self
    }

    /// How many `jti`s of one key (the token's `cnf.jkt`) the replay cache holds (at least 1). Past it, that
    /// key's new proofs are refused with [`DpopError::KeyQuotaExceeded`] until its older ones leave their `iat`
    /// window; other keys are unaffected. Default: a tenth of the [capacity](DpopVerifier::replay_capacity),
    /// [`DEFAULT_REPLAY_QUOTA_PER_KEY`] with the default capacity.
    pub fn replay_quota_per_key(self, quota: usize) -> Self {
        self.replay.lock().unwrap_or_else(|e| e.into_inner()).quota = Some(quota.max(1));
        self
    }

    /// Requires a server nonce in every proof (RFC 9449 §9), rotated every `rotation` (the previous one
    /// stays valid for one more period, so a client that just fetched one is not refused at the edge).
    /// The nonce key is random per process; give several instances behind one load balancer the same key
    /// with [`DpopVerifier::nonce_key`].
    pub fn require_nonce(mut self, rotation: Duration) -> Self {
        let key = self.shared_nonce_key.unwrap_or_else(|| {
            let mut key = [0u8; 32];
            // Without OS randomness the nonces would be guessable; a fixed key still works but a warning says so.
            if getrandom::fill(&mut key).is_err() {
                tracing::warn!("no OS randomness for the DPoP nonce key; nonces are predictable");
            }
            key
        });
        self.nonce = Some(NonceSource { key, rotation: rotation.max(Duration::from_secs(1)) });
        self
    }

    /// Sets the key nonces are derived from (share it across instances; keep it secret), before or after
    /// [`DpopVerifier::require_nonce`]; without that call no nonces are required.
    pub fn nonce_key(mut self, key: [u8; 32]) -> Self {
        self.shared_nonce_key = Some(key);
        if let Some(n) = self.nonce.as_mut() {
            n.key = key;
        }
        self
    }

    /// Whether proofs must carry a server nonce.
    pub fn requires_nonce(&self) -> bool {
        self.nonce.is_some()
    }

    /// The nonce to send in `DPoP-Nonce`, when nonces are required.
    pub fn current_nonce(&self) -> Option<String> {
        self.nonce.as_ref().map(|n| n.at(unix_now()))
    }

    /// Checks `proof` (the `DPoP` header value) against `request`. On success the proof's `jti` is
    /// remembered, so the same proof is refused next time.
    pub fn verify(&self, proof: &str, request: &DpopRequest<'_>) -> Result<(), DpopError> {
        self.verify_at(proof, request, unix_now_f64())
    }

    fn verify_at(&self, proof: &str, request: &DpopRequest<'_>, now: f64) -> Result<(), DpopError> {
        if proof.len() > self.max_proof_bytes {
            return Err(DpopError::InvalidProof("proof too large"));
        }
        let (alg, jwk) = self.check_header(proof)?;
        // The binding first: it is cheap, and a proof from another key (a stolen token) costs no signature check.
        let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| DpopError::InvalidProof("unusable jwk"))?;
        if !constant_time_eq(thumbprint.as_bytes(), request.jkt.as_bytes()) {
            return Err(DpopError::KeyMismatch);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::InvalidProof("unusable jwk"))?;
        let mut validation = Validation::new(alg);
        // Only the signature is jsonwebtoken's job here: a proof has no exp/aud, its time rule is `iat`.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
            .map_err(|_| DpopError::InvalidProof("bad signature or claims"))?
            .claims;

        if claims.htm != request.method {
            return Err(DpopError::InvalidProof("htm does not match the request method"));
        }
        // The normalized form also keys the replay cache, so a respelled `htu` is the same target.
        let htu = match (normalize_htu(&claims.htu), normalize_htu(request.url)) {
            (Some(got), Some(want)) if got == want => got,
            _ => return Err(DpopError::InvalidProof("htu does not match the request URL")),
        };
        if !claims.iat.is_finite() || claims.iat < now - self.iat_window.as_secs_f64() {
            return Err(DpopError::InvalidProof("iat too old"));
        }
        if claims.iat > now + self.iat_skew.as_secs_f64() {
            return Err(DpopError::InvalidProof("iat in the future"));
        }
        match claims.ath.as_deref() {
            Some(ath) if ath == access_token_hash(request.access_token) => {}
            Some(_) => return Err(DpopError::InvalidProof("ath does not match the access token")),
            None => return Err(DpopError::InvalidProof("ath missing")),
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(DpopError::InvalidProof("jti missing or too long"));
        }
        if let Some(source) = &self.nonce {
            let now_secs = now.max(0.0) as u64;
            if !claims.nonce.as_deref().is_some_and(|n| source.accepts(n, now_secs)) {
                return Err(DpopError::UseNonce);
            }
        }
        // Last, so that only a proof that passed every other check takes a slot.
        let mut key = hmac_sha256::Hash::new();
        key.update(htu.as_bytes());
        key.update([0u8]);
        key.update(claims.jti.as_bytes());
        let remember_for = self.iat_window + self.iat_skew;
        let mut replay = self.replay.lock().unwrap_or_else(|e| e.into_inner());
        replay.insert(key.finalize(), request.jkt, Instant::now(), remember_for)
    }

    /// The JOSE header checks of RFC 9449 §4.3 (2-7): three parts, `typ`, an allowed `alg`, a public `jwk`
    /// whose type fits `alg`, no `crit`.
    fn check_header(&self, proof: &str) -> Result<(Algorithm, Jwk), DpopError> {
        let mut parts = proof.split('.');
        let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(DpopError::InvalidProof("not a compact JWS"));
        };
        let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| DpopError::InvalidProof("header is not base64url"))?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header).map_err(|_| DpopError::InvalidProof("header is not a JSON object"))?;
        if !header.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
            return Err(DpopError::InvalidProof("typ is not dpop+jwt"));
        }
        if header.contains_key("crit") {
            return Err(DpopError::InvalidProof("crit header not understood"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<Algorithm>().ok())
            .filter(|a| self.algorithms.contains(a))
            .ok_or(DpopError::InvalidProof("alg not allowed"))?;
        let Some(Value::Object(jwk)) = header.get("jwk") else {
            return Err(DpopError::InvalidProof("jwk missing"));
        };
        if PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(DpopError::InvalidProof("jwk holds a private key"));
        }
        let jwk: Jwk = serde_json::from_value(Value::Object(jwk.clone()))
            .map_err(|_| DpopError::InvalidProof("jwk is not a public key"))?;
        if !key_fits(alg, &jwk) {
            return Err(DpopError::InvalidProof("jwk does not fit alg"));
        }
        Ok((alg, jwk))
    }
}

/// Whether `jwk` is a well-formed public key of the type `alg` signs with (base64url members, RSA at
/// least [`MIN_RSA_BITS`]).
fn key_fits(alg: Algorithm, jwk: &Jwk) -> bool {
    let is_b64 = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match (&jwk.algorithm, alg.family()) {
        (AlgorithmParameters::EllipticCurve(ec), AlgorithmFamily::Ec) => {
            let curve = match alg {
                Algorithm::ES256 => EllipticCurve::P256,
                Algorithm::ES384 => EllipticCurve::P384,
                _ => return false,
            };
            ec.curve == curve && is_b64(&ec.x) && is_b64(&ec.y)
        }
        (AlgorithmParameters::RSA(rsa), AlgorithmFamily::Rsa) => {
            let significant =
                |b64: &str| URL_SAFE_NO_PAD.decode(b64).ok().map(|bytes| bytes.iter().skip_while(|b| **b == 0).count());
            is_b64(&rsa.e)
                && is_b64(&rsa.n)
                && significant(&rsa.e).is_some_and(|e| (1..=MAX_RSA_EXPONENT_BYTES).contains(&e))
                && significant(&rsa.n).is_some_and(|n| (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&(n * 8)))
        }
        (AlgorithmParameters::OctetKeyPair(okp), AlgorithmFamily::Ed) => {
            okp.curve == EllipticCurve::Ed25519 && is_b64(&okp.x)
        }
        _ => false,
    }
}

/// The proof's claims (RFC 9449 §4.2). `iat` may be fractional (a NumericDate).
#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: f64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(access_token.as_bytes()))
}

/// `htu` in comparable form (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2-6.2.3): scheme and host lowercased, the
/// default port dropped, dot segments removed, percent-encodings in upper case, an empty path as `/`, and
/// the query and fragment ignored. `None` when it is not an absolute http(s) URL.
pub fn normalize_htu(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    let mut out = String::with_capacity(url.len());
    out.push_str(parsed.scheme());
    out.push_str("://");
    out.push_str(host);
    if let Some(port) = parsed.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    // `url` keeps the case of percent-encodings; RFC 3986 §6.2.2.1 says they are case-insensitive.
    let mut rest = parsed.path().chars();
    while let Some(c) = rest.next() {
        out.push(c);
        if c == '%' {
            for h in rest.by_ref().take(2) {
                out.push(h.to_ascii_uppercase());
            }
        }
    }
    Some(out)
}

fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // An algorithm a newer jsonwebtoken adds: `algorithms` drops it, so it is never offered.
        _ => "unknown",
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn unix_now_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Stateless server nonces: the MAC of the rotation period's number, so every instance sharing the key
/// issues and accepts the same nonces without remembering any.
struct NonceSource {
    key: [u8; 32],
    rotation: Duration,
}

impl NonceSource {
    fn period(&self, now: u64) -> u64 {
        now / self.rotation.as_secs().max(1)
    }

    fn for_period(&self, period: u64) -> String {
        let mut mac = hmac_sha256::HMAC::new(self.key);
        mac.update(b"keel dpop nonce\0");
        mac.update(period.to_be_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize())
    }

    fn at(&self, now: u64) -> String {
        self.for_period(self.period(now))
    }

    /// The current nonce and the previous one are accepted.
    fn accepts(&self, nonce: &str, now: u64) -> bool {
        let period = self.period(now);
        [Some(period), period.checked_sub(1)]
            .into_iter()
            .flatten()
            .any(|p| constant_time_eq(self.for_period(p).as_bytes(), nonce.as_bytes()))
    }
}

/// The `jti`s (hashed with the `htu`) of accepted proofs, each kept until no proof carrying it could pass
/// the `iat` check any more. Entries expire in insertion order (every one lives as long), so a queue finds
/// the expired ones without a scan. Each key (`jkt`) may hold at most `quota` of them, so one key cannot
/// fill the cache and make every other client's proofs fail.
struct ReplayCache {
    capacity: usize,
    /// Entries one key may hold; `None`: a tenth of the capacity.
    quota: Option<usize>,
    seen: HashSet<[u8; 32]>,
    order: VecDeque<([u8; 32], Instant, Arc<str>)>,
    /// Entries held per key; a key with none is removed.
    per_key: HashMap<Arc<str>, usize>,
}

impl ReplayCache {
    fn new(capacity: usize, quota: Option<usize>) -> Self {
        ReplayCache { capacity, quota, seen: HashSet::new(), order: VecDeque::new(), per_key: HashMap::new() }
    }

    fn insert(&mut self, key: [u8; 32], jkt: &str, now: Instant, ttl: Duration) -> Result<(), DpopError> {
        while let Some((old, expires, owner)) = self.order.front() {
            if *expires > now {
                break;
            }
            self.seen.remove(old);
            if let Some(held) = self.per_key.get_mut(owner) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    self.per_key.remove(owner);
                }
            }
            self.order.pop_front();
        }
        if self.seen.contains(&key) {
            return Err(DpopError::InvalidProof("jti replayed"));
        }
        let quota = self.quota.unwrap_or(self.capacity / 10).max(1);
        let held = self.per_key.get_key_value(jkt);
        if held.is_some_and(|(_, held)| *held >= quota) {
            return Err(DpopError::KeyQuotaExceeded);
        }
        if self.seen.len() >= self.capacity {
            return Err(DpopError::ReplayCacheFull);
        }
        // One shared copy of the thumbprint per key, however many of its proofs are held.
        let owner = held.map_or_else(|| Arc::from(jkt), |(owner, _)| owner.clone());
        *self.per_key.entry(owner.clone()).or_insert(0) += 1;
        self.seen.insert(key);
        self.order.push_back((key, now + ttl, owner));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
    use serde_json::json;

    const URL: &str = "https://mcp.example/mcp";
    const TOKEN: &str = "access-token-1";

    enum Key {
        Es256(EcdsaKeyPair),
        Ed25519(Ed25519KeyPair),
    }

    impl Key {
        fn es256() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Key::Es256(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap())
        }

        fn ed25519() -> Self {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            Key::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }

        fn jwk(&self) -> Value {
            match self {
                Key::Es256(k) => {
                    let p = k.public_key().as_ref();
                    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&p[1..33]),
                           "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
                }
                Key::Ed25519(k) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(k.public_key().as_ref())})
                }
            }
        }

        fn alg(&self) -> &'static str {
            match self {
                Key::Es256(_) => "ES256",
                Key::Ed25519(_) => "EdDSA",
            }
        }

        fn jkt(&self) -> String {
            let jwk: Jwk = serde_json::from_value(self.jwk()).unwrap();
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
        }

        fn sign_raw(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = match self {
                Key::Es256(k) => k.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
                Key::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            };
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }

        fn sign(&self, claims: &Value) -> String {
            self.sign_raw(&json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()}), claims)
        }
    }

    fn claims(jti: &str, now: f64) -> Value {
        json!({"jti": jti, "htm": "POST", "htu": URL, "iat": now, "ath": access_token_hash(TOKEN)})
    }

    fn request(jkt: &str) -> DpopRequest<'_> {
        DpopRequest { method: "POST", url: URL, access_token: TOKEN, jkt }
    }

    #[test]
    fn valid_es256_and_eddsa_proofs_pass_once() {
        for key in [Key::es256(), Key::ed25519()] {
            let v = DpopVerifier::new();
            let now = unix_now_f64();
            let proof = key.sign(&claims("j1", now));
            let jkt = key.jkt();
            assert_eq!(v.verify_at(&proof, &request(&jkt), now), Ok(()), "{}", key.alg());
            assert_eq!(v.verify_at(&proof, &request(&jkt), now), Err(DpopError::InvalidProof("jti replayed")));
        }
    }

    #[test]
    fn htu_is_compared_normalized_and_without_query() {
        let key = Key::es256();
        let v = DpopVerifier::new();
        let now = unix_now_f64();
        let proof = key.sign(&json!({"jti": "x", "htm": "GET", "htu": "HTTPS://MCP.example:443/a/../mcp",
                                     "iat": now, "ath": access_token_hash(TOKEN)}));
        let req =
            DpopRequest { method: "GET", url: "https://mcp.example/mcp?q=1", access_token: TOKEN, jkt: &key.jkt() };
        assert_eq!(v.verify_at(&proof, &req, now), Ok(()), "htu is compared normalized, without the query");
    }

    #[test]
    fn each_claim_check_refuses() {
        let key = Key::es256();
        let jkt = key.jkt();
        let v = DpopVerifier::new();
        let now = unix_now_f64();
        let base = claims("j", now);
        let with = |field: &str, value: Value, jti: &str| {
            let mut c = base.clone();
            c[field] = value;
            c["jti"] = json!(jti);
            key.sign(&c)
        };
        let cases = [
            (with("htm", json!("GET"), "a"), DpopError::InvalidProof("htm does not match the request method")),
            (
                with("htu", json!("https://other.example/mcp"), "b"),
                DpopError::InvalidProof("htu does not match the request URL"),
            ),
            (
                with("htu", json!("https://mcp.example/mcp2"), "c"),
                DpopError::InvalidProof("htu does not match the request URL"),
            ),
            (with("iat", json!(now - 61.0), "d"), DpopError::InvalidProof("iat too old")),
            (with("iat", json!(now + 60.0), "e"), DpopError::InvalidProof("iat in the future")),
            (
                with("ath", json!(access_token_hash("another")), "f"),
                DpopError::InvalidProof("ath does not match the access token"),
            ),
            (with("jti", json!(""), ""), DpopError::InvalidProof("jti missing or too long")),
            (with("jti", json!("x".repeat(300)), &"x".repeat(300)), DpopError::InvalidProof("jti missing or too long")),
        ];
        for (proof, want) in cases {
            assert_eq!(v.verify_at(&proof, &request(&jkt), now), Err(want));
        }
        let mut no_ath = base.clone();
        no_ath.as_object_mut().unwrap().remove("ath");
        assert_eq!(v.verify_at(&key.sign(&no_ath), &request(&jkt), now), Err(DpopError::InvalidProof("ath missing")));
        // A refused proof took no replay slot: the same jti still passes once correct.
        assert_eq!(v.verify_at(&with("jti", json!("a"), "a"), &request(&jkt), now), Ok(()));
    }

    #[test]
    fn a_respelled_htu_is_still_a_replay() {
        let key = Key::es256();
        let jkt = key.jkt();
        let v = DpopVerifier::new();
        let now = unix_now_f64();
        let mut c = claims("same-jti", now);
        assert_eq!(v.verify_at(&key.sign(&c), &request(&jkt), now), Ok(()));
        c["htu"] = json!("HTTPS://MCP.EXAMPLE:443/mcp");
        assert_eq!(v.verify_at(&key.sign(&c), &request(&jkt), now), Err(DpopError::InvalidProof("jti replayed")));
    }

    #[test]
    fn key_other_than_the_bound_one_is_a_token_error() {
        let (signer, bound) = (Key::es256(), Key::es256());
        let v = DpopVerifier::new();
        let now = unix_now_f64();
        let proof = signer.sign(&claims("j", now));
        assert_eq!(v.verify_at(&proof, &request(&bound.jkt()), now), Err(DpopError::KeyMismatch));
        assert_eq!(DpopError::KeyMismatch.error_code(), Some("invalid_token"));
    }

    #[test]
    fn header_checks_refuse() {
        let key = Key::es256();
        let jkt = key.jkt();
        let v = DpopVerifier::new();
        let now = unix_now_f64();
        let c = claims("j", now);
        let mut private = key.jwk();
        private["d"] = json!("AAAA");
        let hs = {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(
                    json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}).to_string()
                ),
                URL_SAFE_NO_PAD.encode(c.to_string())
            );
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(hmac_sha256::HMAC::mac(input.as_bytes(), b"secret")))
        };
        let cases = [
            (key.sign_raw(&json!({"typ": "JWT", "alg": "ES256", "jwk": key.jwk()}), &c), "typ is not dpop+jwt"),
            (key.sign_raw(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}), &c), "alg not allowed"),
            (key.sign_raw(&json!({"typ": "dpop+jwt", "alg": "ES384", "jwk": key.jwk()}), &c), "alg not allowed"),
            (key.sign_raw(&json!({"typ": "dpop+jwt", "alg": "ES256"}), &c), "jwk missing"),
            (key.sign_raw(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}), &c), "jwk holds a private key"),
            (key.sign_raw(&json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.jwk()}), &c), "jwk does not fit alg"),
            (
                key.sign_raw(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk(), "crit": ["x"]}), &c),
                "crit header not understood",
            ),
            (hs, "alg not allowed"),
            ("a.b".to_owned(), "not a compact JWS"),
            ("a.b.c.d".to_owned(), "not a compact JWS"),
            ("!!.b.c".to_owned(), "header is not base64url"),
            (format!("{}.e30.c", URL_SAFE_NO_PAD.encode("[1]")), "header is not a JSON object"),
            ("x".repeat(DEFAULT_MAX_PROOF_BYTES + 1), "proof too large"),
        ];
        for (proof, why) in cases {
            assert_eq!(v.verify_at(&proof, &request(&jkt), now), Err(DpopError::InvalidProof(why)), "{why}");
        }
        // Tampered signature and tampered claims.
        let good = key.sign(&c);
        let (head, sig) = good.rsplit_once('.').unwrap();
        let mut bad_sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bad_sig[0] ^= 1;
        let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(bad_sig));
        assert_eq!(
            v.verify_at(&tampered, &request(&jkt), now),
            Err(DpopError::InvalidProof("bad signature or claims"))
        );
        // HMAC can never be enabled.
        assert!(DpopVerifier::new().algorithms(&[Algorithm::HS256, Algorithm::ES256]).algorithm_names() == ["ES256"]);
    }

    #[test]
    fn rsa_keys_must_be_of_sane_size() {
        let rsa = |n_bytes: usize, e: &[u8]| -> Jwk {
            let mut n = vec![0xC5u8; n_bytes];
            n[0] = 0xFF;
            serde_json::from_value(
                json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(e)}),
            )
            .unwrap()
        };
        assert!(key_fits(Algorithm::RS256, &rsa(256, &[1, 0, 1])), "2048-bit, e = 65537");
        assert!(key_fits(Algorithm::PS256, &rsa(512, &[1, 0, 1])), "4096-bit");
        assert!(!key_fits(Algorithm::RS256, &rsa(128, &[1, 0, 1])), "1024-bit is too weak");
        assert!(!key_fits(Algorithm::RS256, &rsa(2048, &[1, 0, 1])), "16384-bit is too slow");
        assert!(!key_fits(Algorithm::RS256, &rsa(256, &[0xFF; 64])), "huge exponent");
        assert!(!key_fits(Algorithm::ES256, &rsa(256, &[1, 0, 1])), "RSA key for an EC algorithm");
    }

    #[test]
    fn nonce_round_trip_and_rotation() {
        let key = Key::es256();
        let jkt = key.jkt();
        let v = DpopVerifier::new().require_nonce(Duration::from_secs(60)).nonce_key([7; 32]);
        let now = unix_now_f64();
        assert_eq!(v.verify_at(&key.sign(&claims("a", now)), &request(&jkt), now), Err(DpopError::UseNonce));
        let nonce = v.current_nonce().unwrap();
        let mut c = claims("b", now);
        c["nonce"] = json!(nonce);
        assert_eq!(v.verify_at(&key.sign(&c), &request(&jkt), now), Ok(()));
        c["nonce"] = json!("made-up");
        c["jti"] = json!("c");
        assert_eq!(v.verify_at(&key.sign(&c), &request(&jkt), now), Err(DpopError::UseNonce));
        // One period later the nonce still passes, two periods later it is stale.
        let source = v.nonce.as_ref().unwrap();
        let t = unix_now();
        assert!(source.accepts(&source.at(t), t + 60));
        assert!(!source.accepts(&source.at(t), t + 120));
        assert_ne!(source.at(t), source.at(t + 120), "nonces rotate");
        // Another key derives other nonces; the key may be given before or after require_nonce.
        let other = DpopVerifier::new().require_nonce(Duration::from_secs(60)).nonce_key([8; 32]);
        assert_ne!(other.current_nonce(), v.current_nonce());
        let same = DpopVerifier::new().nonce_key([7; 32]).require_nonce(Duration::from_secs(60));
        assert_eq!(same.current_nonce(), v.current_nonce());
    }

    #[test]
    fn replay_cache_is_bounded_in_size_and_time() {
        let mut cache = ReplayCache::new(2, Some(2));
        let t0 = Instant::now();
        let ttl = Duration::from_secs(65);
        assert_eq!(cache.insert([1; 32], "k", t0, ttl), Ok(()));
        assert_eq!(cache.insert([2; 32], "l", t0, ttl), Ok(()));
        assert_eq!(cache.insert([1; 32], "k", t0, ttl), Err(DpopError::InvalidProof("jti replayed")));
        assert_eq!(cache.insert([3; 32], "m", t0, ttl), Err(DpopError::ReplayCacheFull), "full: fail closed");
        // Once the first entries leave their window, their slots are free again.
        let later = t0 + ttl;
        assert_eq!(cache.insert([3; 32], "m", later, ttl), Ok(()));
        assert_eq!(cache.seen.len(), 1);
        assert_eq!(cache.per_key.len(), 1, "keys with nothing held are forgotten");
        assert_eq!(cache.insert([1; 32], "k", later, ttl), Ok(()), "an expired jti cannot pass iat any more anyway");
    }

    #[test]
    fn one_key_cannot_fill_the_replay_cache() {
        let mut cache = ReplayCache::new(100, Some(3));
        let t0 = Instant::now();
        let ttl = Duration::from_secs(65);
        for i in 0..3 {
            assert_eq!(cache.insert([i; 32], "flooder", t0, ttl), Ok(()));
        }
        assert_eq!(cache.insert([9; 32], "flooder", t0, ttl), Err(DpopError::KeyQuotaExceeded));
        assert_eq!(cache.insert([10; 32], "someone-else", t0, ttl), Ok(()), "other keys still pass");
        assert_eq!(cache.insert([9; 32], "flooder", t0 + ttl, ttl), Ok(()), "the quota frees as proofs expire");
    }

    #[test]
    fn htu_normalization_table() {
        let cases = [
            ("https://MCP.Example/mcp", Some("https://mcp.example/mcp")),
            ("https://mcp.example:443/mcp?x=1#f", Some("https://mcp.example/mcp")),
            ("http://mcp.example:80", Some("http://mcp.example/")),
            ("http://mcp.example:8080/a/./b/../mcp", Some("http://mcp.example:8080/a/mcp")),
            ("https://mcp.example/%7emcp", Some("https://mcp.example/%7Emcp")),
            ("ftp://mcp.example/mcp", None),
            ("/mcp", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_htu(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn ath_is_the_rfc_example() {
        // RFC 9449 §7.1's example token and its ath.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
