//! Client ID metadata documents: a `client_id` that is an https URL names the client's own metadata,
//! fetched from that URL with the OAuth client's SSRF guards — https only, no private or loopback
//! addresses (literal or resolved) unless the policy allows them, no redirects, a size cap and a timeout —
//! then validated (its `client_id` must be the URL, byte for byte; no secrets) and cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Inner;
use super::client::{Client, ClientAuthMethod, GRANT_CLIENT_CREDENTIALS};
use super::error::{AuthServerError, OAuthError};
use crate::auth::client::http::OAuthHttp;
use crate::auth::client::url_policy::UrlPolicy;

/// How client ID metadata documents are fetched.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct CimdPolicy {
    /// Documents on private, loopback and link-local addresses are allowed (tests only). Default `false`.
    pub allow_private: bool,
    /// Longest fetch. Default 5 s.
    pub fetch_timeout: Duration,
    /// Largest document. Default 16 KiB.
    pub max_bytes: usize,
    /// How long a fetched document is used before it is fetched again. Default 5 minutes.
    pub cache_ttl: Duration,
    /// Most documents cached. Default 1,000.
    pub max_cached: usize,
}

impl Default for CimdPolicy {
    fn default() -> Self {
        CimdPolicy {
            allow_private: false,
            fetch_timeout: Duration::from_secs(5),
            max_bytes: 16 * 1024,
            cache_ttl: Duration::from_secs(300),
            max_cached: 1000,
        }
    }
}

impl CimdPolicy {
    /// The default policy, with private addresses allowed (for tests against a local document server).
    pub fn allowing_private_addresses() -> Self {
        CimdPolicy { allow_private: true, ..CimdPolicy::default() }
    }
}

/// Whether `client_id` names a metadata document: an https URL with a path.
pub(crate) fn is_cimd_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// Fetches, validates and caches documents.
pub(crate) struct CimdResolver {
    policy: CimdPolicy,
    http: OAuthHttp,
    cache: Mutex<HashMap<String, (Instant, Client)>>,
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl CimdResolver {
    pub fn new(policy: CimdPolicy) -> Result<Self, AuthServerError> {
        let url_policy = UrlPolicy { allow_private: policy.allow_private };
        let http = OAuthHttp::for_policy(url_policy).map_err(|e| AuthServerError::Config(e.to_string()))?;
        Ok(CimdResolver { policy, http, cache: Mutex::default() })
    }

    /// Test builds only: fetches trusting only the certificate `root_der` (the tests' loopback document
    /// server). The policy must allow private addresses, as that server is on loopback.
    #[cfg(test)]
    pub fn trusting_test_root(policy: CimdPolicy, root_der: &[u8]) -> Result<Self, AuthServerError> {
        if !policy.allow_private {
            return Err(AuthServerError::Config("a test document server on loopback needs allow_private".into()));
        }
        let http = OAuthHttp::trusting_only_for_tests(root_der).map_err(|e| AuthServerError::Config(e.to_string()))?;
        Ok(CimdResolver { policy, http, cache: Mutex::default() })
    }

    fn cached(&self, url: &str) -> Option<Client> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(url).filter(|(at, _)| at.elapsed() < self.policy.cache_ttl).map(|(_, c)| c.clone())
    }

    fn remember(&self, url: &str, client: &Client) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.policy.max_cached {
            let ttl = self.policy.cache_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        if cache.len() < self.policy.max_cached {
            cache.insert(url.to_owned(), (Instant::now(), client.clone()));
        }
    }

    /// The client whose metadata document is at `url`.
    pub async fn resolve(&self, inner: &Inner, url: &str) -> Result<Client, OAuthError> {
        if let Some(client) = self.cached(url) {
            return Ok(client);
        }
        let refuse = |why: &str| OAuthError::invalid_client(format!("client metadata document refused: {why}"));
        check_client_id_url(url, self.policy.allow_private).map_err(refuse)?;
        let fetched =
            tokio::time::timeout(self.policy.fetch_timeout, self.http.get_json_capped(url, self.policy.max_bytes))
                .await
                .map_err(|_| refuse("fetching it timed out"))?
                .map_err(|e| refuse(&e.to_string()))?;
        if fetched.status != 200 {
            return Err(refuse(&format!("fetching it answered HTTP {}", fetched.status)));
        }
        let document = fetched.body.ok_or_else(|| refuse("it is not a JSON object"))?;
        let client = client_from_document(inner, url, document).map_err(|e| refuse(&e.description))?;
        self.remember(url, &client);
        Ok(client)
    }
}

/// The URL rules of the CIMD draft: https, a path, no fragment, no credentials, no dot segments; and the
/// SSRF policy for literal hosts (names are judged when resolved).
fn check_client_id_url(url: &str, allow_private: bool) -> Result<(), &'static str> {
    let parsed =
        UrlPolicy { allow_private }.check(url).map_err(|_| "the URL is not https or points at a private address")?;
    if parsed.scheme() != "https" {
        return Err("the URL is not https");
    }
    if parsed.path() == "/"
        || url.contains("/./")
        || url.contains("/../")
        || url.ends_with("/.")
        || url.ends_with("/..")
    {
        return Err("the URL needs a path without dot segments");
    }
    Ok(())
}

/// A client from its document: validated like a registration, but public or `private_key_jwt` only, and
/// named by the URL it came from.
fn client_from_document(
    inner: &Inner,
    url: &str,
    mut document: serde_json::Map<String, Value>,
) -> Result<Client, OAuthError> {
    let bad = |why: &str| OAuthError::invalid_client_metadata(why);
    if document.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(bad("its client_id is not the URL it was fetched from"));
    }
    if document.contains_key("client_secret") || document.contains_key("client_secret_expires_at") {
        return Err(bad("a metadata document carries no secret"));
    }
    let method = document.get("token_endpoint_auth_method").and_then(Value::as_str).unwrap_or("none");
    if !matches!(ClientAuthMethod::parse(method), Some(ClientAuthMethod::None | ClientAuthMethod::PrivateKeyJwt)) {
        return Err(bad("token_endpoint_auth_method must be none or private_key_jwt"));
    }
    document.insert("token_endpoint_auth_method".into(), Value::String(method.to_owned()));
    let (mut client, secret) = super::registration::client_from_metadata(inner, &document)?;
    if secret.is_some() || client.has_grant(GRANT_CLIENT_CREDENTIALS) {
        return Err(bad("a metadata document client uses no secret and no client_credentials grant"));
    }
    client.client_id = url.to_owned();
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls() {
        let cases = [
            ("https://app.example/client.json", false, true),
            ("https://app.example/", false, false),
            ("https://app.example", false, false),
            ("http://app.example/client.json", false, false),
            ("https://app.example/a/../client.json", false, false),
            ("https://app.example/client.json#x", false, false),
            ("https://u:p@app.example/client.json", false, false),
            ("https://10.0.0.1/client.json", false, false),
            ("https://127.0.0.1/client.json", false, false),
            ("https://169.254.169.254/latest", false, false),
            ("https://[::1]/client.json", false, false),
            ("https://127.0.0.1/client.json", true, true),
        ];
        for (url, private, ok) in cases {
            assert_eq!(check_client_id_url(url, private).is_ok(), ok, "{url}");
        }
    }
}
