//! [`KeyCache`]: the authorization server's signing keys (a JWKS, RFC 7517), fetched from one configured URL
//! and kept for a time-to-live. An unknown key id triggers a refetch — one at a time (single flight) and at
//! most once per refetch interval — so a key rotation needs no restart while a flood of forged key ids
//! cannot turn the server into a JWKS hammer. When the keys cannot be fetched the cache says
//! [`VerifyError::Unavailable`]: tokens are never accepted on keys it does not hold.
//!
//! The URL comes from the server's configuration, never from a token (`jku`, `x5u` are ignored).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::time::Instant;

use super::VerifyError;

/// One verification key.
pub(crate) struct Key {
    pub(crate) decoding: DecodingKey,
    /// The algorithm the key is restricted to (the JWK's `alg`), if any.
    pub(crate) algorithm: Option<Algorithm>,
}

/// The keys of one fetch.
#[derive(Default)]
struct KeySet {
    by_id: HashMap<String, Arc<Key>>,
    /// Keys without a `kid`: used for tokens without one, when there is exactly one.
    anonymous: Vec<Arc<Key>>,
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        match kid {
            Some(kid) => self.by_id.get(kid).cloned(),
            None if self.anonymous.len() == 1 => self.anonymous.first().cloned(),
            None => None,
        }
    }

    fn fresh(&self, now: Instant, ttl: Duration) -> bool {
        self.fetched_at.is_some_and(|at| now.saturating_duration_since(at) < ttl)
    }
}

/// How the cache fetches and keeps keys.
#[derive(Clone, Debug)]
pub(crate) struct KeyCachePolicy {
    pub(crate) ttl: Duration,
    pub(crate) refetch_interval: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) max_bytes: usize,
    pub(crate) max_keys: usize,
}

/// The keys of one JWKS URL.
pub(crate) struct KeyCache {
    url: String,
    http: reqwest::Client,
    policy: KeyCachePolicy,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching (single flight); remembers when the last fetch started.
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyCache {
    pub(crate) fn new(url: String, http: reqwest::Client, policy: KeyCachePolicy) -> Self {
        KeyCache { url, http, policy, keys: RwLock::default(), fetch: tokio::sync::Mutex::new(None) }
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key `kid` names (or the only key, for a token without `kid`).
    pub(crate) async fn key(&self, kid: Option<&str>) -> Result<Arc<Key>, VerifyError> {
        let ttl = self.policy.ttl;
        let set = self.current();
        if set.fresh(Instant::now(), ttl)
            && let Some(key) = set.find(kid)
        {
            return Ok(key);
        }
        // Stale keys, or a key id they do not have: one request fetches, the others wait for its result.
        let mut last_fetch = self.fetch.lock().await;
        let now = Instant::now();
        let set = self.current();
        let fresh = set.fresh(now, ttl);
        if fresh && let Some(key) = set.find(kid) {
            return Ok(key);
        }
        if let Some(last) = *last_fetch {
            let since = now.saturating_duration_since(last);
            if since < self.policy.refetch_interval {
                return Err(if fresh {
                    VerifyError::Invalid("the token names a key the authorization server does not publish".into())
                } else {
                    VerifyError::Unavailable { retry_after: self.policy.refetch_interval - since }
                });
            }
        }
        *last_fetch = Some(now);
        match self.download().await {
            Ok(mut fetched) => {
                fetched.fetched_at = Some(Instant::now());
                let found = fetched.find(kid);
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fetched);
                found.ok_or_else(|| {
                    VerifyError::Invalid("the token names a key the authorization server does not publish".into())
                })
            }
            Err(why) => {
                tracing::warn!(url = %self.url, reason = %why, "JWKS fetch failed");
                Err(VerifyError::Unavailable { retry_after: self.policy.refetch_interval.max(Duration::from_secs(1)) })
            }
        }
    }

    /// Fetches and parses the key set: no redirect, a deadline, a size bound, and only signing keys this
    /// verifier can use (others are skipped, not fatal).
    async fn download(&self) -> Result<KeySet, String> {
        let fetch = async {
            let mut response = self
                .http
                .get(&self.url)
                .header("accept", "application/json, application/jwk-set+json")
                .send()
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(format!("answered {}", response.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("body failed: {e}"))? {
                if body.len() + chunk.len() > self.policy.max_bytes {
                    return Err(format!("the key set exceeds {} bytes", self.policy.max_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let body = tokio::time::timeout(self.policy.fetch_timeout, fetch)
            .await
            .map_err(|_| format!("no answer within {:?}", self.policy.fetch_timeout))??;
        parse(&body, self.policy.max_keys)
    }
}

/// The usable signing keys of a JWKS document.
fn parse(body: &[u8], max_keys: usize) -> Result<KeySet, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut set = KeySet::default();
    for value in document.keys.into_iter().take(max_keys) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let algorithm = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => match signing_algorithm(alg) {
                Some(alg) => Some(alg),
                None => continue,
            },
        };
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else { continue };
        let key = Arc::new(Key { decoding, algorithm });
        match jwk.common.key_id {
            Some(kid) => {
                set.by_id.insert(kid, key);
            }
            None => set.anonymous.push(key),
        }
    }
    Ok(set)
}

/// The signature algorithm a JWK's `alg` names (encryption algorithms name none).
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_KEY: &str = r#"{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn only_usable_signing_keys_are_kept() {
        let body = format!(
            r#"{{"keys":[{EC_KEY},
                {{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},
                {{"kty":"weird","kid":"w"}},
                {{"kty":"RSA","kid":"oaep","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}}]}}"#
        );
        let set = parse(body.as_bytes(), 100).unwrap();
        assert_eq!(set.by_id.len(), 1);
        assert_eq!(set.find(Some("k1")).unwrap().algorithm, Some(Algorithm::ES256));
        assert!(set.find(Some("enc")).is_none());
        assert!(set.find(None).is_none(), "no kid-less key");
        assert!(parse(b"[]", 100).is_err());
        assert_eq!(parse(format!(r#"{{"keys":[{EC_KEY}]}}"#).as_bytes(), 0).unwrap().by_id.len(), 0, "max_keys");
    }
}
