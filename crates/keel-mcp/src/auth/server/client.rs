//! Registered clients: what the server knows of each (redirect URIs, grants, how it authenticates), secrets
//! kept only as salted SHA-256 hashes compared in constant time, and the redirect URI rules — exact string
//! match, except that a loopback redirect URI matches on any port (RFC 8252 §7.3).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::error::AuthServerError;
use crate::auth::client::pkce::constant_time_eq;

/// How a client authenticates at the token and revocation endpoints (RFC 7591 `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A public client: no secret, only its `client_id`.
    None,
    /// A secret in the HTTP Basic `Authorization` header.
    ClientSecretBasic,
    /// A secret in the form body.
    ClientSecretPost,
    /// A JWT signed with one of the client's registered keys (RFC 7523).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::None, Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt]
            .into_iter()
            .find(|m| m.as_str() == name)
    }

    /// Whether the method proves possession of a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost)
    }
}

/// The grant types the server implements.
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
/// See [`GRANT_AUTHORIZATION_CODE`].
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// See [`GRANT_AUTHORIZATION_CODE`].
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

/// A client the server knows: pre-registered, dynamically registered, or read from its metadata document.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Client {
    /// The `client_id`.
    pub client_id: String,
    /// Salted SHA-256 of the secret (`None` for public and `private_key_jwt` clients).
    pub secret_hash: Option<SecretHash>,
    /// How it authenticates at the token endpoint.
    pub auth_method: ClientAuthMethod,
    /// Registered redirect URIs, compared as strings (loopback: any port).
    pub redirect_uris: Vec<String>,
    /// Registered grant types.
    pub grant_types: Vec<String>,
    /// Scopes it may ask for; `None` means any scope the server supports.
    pub scopes: Option<Vec<String>>,
    /// Human-readable name, shown on the consent page.
    pub client_name: Option<String>,
    /// Logo (https), shown on the consent page.
    pub logo_uri: Option<String>,
    /// Home page.
    pub client_uri: Option<String>,
    /// Public keys for `private_key_jwt` (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Seconds since the epoch when it was registered.
    pub issued_at: u64,
    /// Registered by the operator ([`super::AuthorizationServer::register_client`]), not by dynamic
    /// registration or a metadata document: such clients get capacity that outsiders cannot fill.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) registered_by_operator: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("auth_method", &self.auth_method)
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A public client (`none`) with one or more redirect URIs and the `authorization_code` and
    /// `refresh_token` grants.
    pub fn public(client_id: impl Into<String>, redirect_uris: Vec<String>) -> Self {
        Client {
            client_id: client_id.into(),
            secret_hash: None,
            auth_method: ClientAuthMethod::None,
            redirect_uris,
            grant_types: vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()],
            scopes: None,
            client_name: None,
            logo_uri: None,
            client_uri: None,
            jwks: None,
            issued_at: crate::auth::client::token::now_secs(),
            registered_by_operator: false,
        }
    }

    /// A confidential client authenticating with `secret` (`client_secret_basic`, `client_secret_post`
    /// accepted too), with the `authorization_code` and `refresh_token` grants.
    pub fn confidential(
        client_id: impl Into<String>,
        secret: &str,
        redirect_uris: Vec<String>,
    ) -> Result<Self, AuthServerError> {
        let mut client = Client::public(client_id, redirect_uris);
        client.auth_method = ClientAuthMethod::ClientSecretBasic;
        client.secret_hash = Some(SecretHash::new(secret)?);
        Ok(client)
    }

    /// Sets the grant types.
    pub fn grant_types(mut self, grants: &[&str]) -> Self {
        self.grant_types = grants.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// Whether the client registered `grant`.
    pub fn has_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// The registered redirect URI that `requested` matches, if any.
    pub fn matching_redirect_uri(&self, requested: &str) -> Option<&str> {
        self.redirect_uris.iter().map(String::as_str).find(|registered| redirect_uri_matches(registered, requested))
    }
}

/// A secret as stored: a random salt and SHA-256(salt ‖ secret), both base64url.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretHash {
    salt: String,
    hash: String,
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(…)")
    }
}

impl SecretHash {
    /// Hashes `secret` with a fresh salt.
    pub fn new(secret: &str) -> Result<Self, AuthServerError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| AuthServerError::Key(e.to_string()))?;
        let salt = URL_SAFE_NO_PAD.encode(salt);
        let hash = Self::digest(&salt, secret);
        Ok(SecretHash { salt, hash })
    }

    fn digest(salt: &str, secret: &str) -> String {
        let mut h = hmac_sha256::Hash::new();
        h.update(salt.as_bytes());
        h.update(secret.as_bytes());
        URL_SAFE_NO_PAD.encode(h.finalize())
    }

    /// Whether `secret` is the one hashed; the comparison takes the same time wherever the hashes differ.
    pub fn verify(&self, secret: &str) -> bool {
        constant_time_eq(&Self::digest(&self.salt, secret), &self.hash)
    }
}

/// Whether the request's `redirect_uri` matches a registered one: the same string, or — for an `http`
/// loopback IP literal (`127.0.0.1`, `[::1]`) — the same URI on any port (RFC 8252 §7.3).
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        let loopback_ip = match u.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        };
        u.scheme() == "http" && loopback_ip
    };
    if !loopback(&a) || !loopback(&b) {
        return false;
    }
    // Only the port may differ; everything else is compared after the same parse on both sides, and the
    // raw strings must agree once their authorities are removed (so no normalisation slips something in).
    a.host() == b.host()
        && a.path() == b.path()
        && a.query() == b.query()
        && a.fragment().is_none()
        && b.fragment().is_none()
        && b.username().is_empty()
        && b.password().is_none()
        && without_authority(registered) == without_authority(requested)
}

/// `http://host:port/rest` → `/rest` (the path, query and fragment as written).
fn without_authority(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.find(['/', '?', '#']).map_or("", |i| &rest[i..])
}

/// Whether `uri` may be registered as a redirect URI: https, http on a loopback IP literal or `localhost`, or
/// a private-use scheme of a native app (RFC 8252 §7.1: a reverse domain name, so it contains a dot); no
/// fragment, no user info.
pub fn redirect_uri_is_acceptable(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else { return false };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() || uri.len() > 2048 {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        // Schemes that would run code or read local data in the browser are never redirect targets.
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => false,
        scheme => scheme.contains('.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_table() {
        let cases = [
            ("https://app.example/cb", "https://app.example/cb", true),
            ("https://app.example/cb", "https://app.example/cb/", false),
            ("https://app.example/cb", "https://APP.example/cb", false),
            ("https://app.example:443/cb", "https://app.example:8443/cb", false),
            ("https://app.example/cb", "https://app.example/cb?x=1", false),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.1:49152/callback", true),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.1/callback", true),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.1:1/callback2", false),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.2:3000/callback", false),
            ("http://127.0.0.1:3000/callback", "http://[::1]:3000/callback", false),
            ("http://[::1]:3000/cb", "http://[::1]:4000/cb", true),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000/callback#x", false),
            ("http://127.0.0.1:3000/callback", "http://u@127.0.0.1:3000/callback", false),
            ("http://127.0.0.1:3000/callback", "https://127.0.0.1:3000/callback", false),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000/%63allback", false),
            ("http://localhost:3000/cb", "http://localhost:4000/cb", false),
            ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000@evil.example/callback", false),
        ];
        for (registered, requested, ok) in cases {
            assert_eq!(redirect_uri_matches(registered, requested), ok, "{registered} vs {requested}");
        }
    }

    #[test]
    fn acceptable_redirect_uris() {
        let cases = [
            ("https://app.example/cb", true),
            ("http://127.0.0.1:3000/callback", true),
            ("http://localhost/cb", true),
            ("http://app.example/cb", false),
            ("https://app.example/cb#frag", false),
            ("com.example.app:/oauth", true),
            ("javascript:alert(1)", false),
            ("myapp:/cb", false),
            ("not a uri", false),
        ];
        for (uri, ok) in cases {
            assert_eq!(redirect_uri_is_acceptable(uri), ok, "{uri}");
        }
    }

    #[test]
    fn secrets_are_salted_and_checked() {
        let a = SecretHash::new("s3cret").unwrap();
        let b = SecretHash::new("s3cret").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.verify("s3cret"));
        assert!(!a.verify("s3cre"));
        assert!(!a.verify(""));
        assert!(!format!("{a:?}").contains(&a.hash));
    }
}
