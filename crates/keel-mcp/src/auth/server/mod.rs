//! An embedded OAuth 2.1 authorization server (feature `authorization-server`): for development, tests, CI
//! and small self-hosted deployments that do not run an identity provider.
//!
//! [`AuthorizationServer`] is a `tower::Service`; mount it beside the MCP endpoint (its paths are the
//! issuer's path plus `/authorize`, `/token`, `/register`, `/revoke`, `/jwks`, and the well-known metadata
//! locations). It issues RFC 9068 JWT access tokens signed with ES256 whose `aud` is the resource, so a
//! resource server checks them against the published JWK Set with no shared state.
//!
//! ```no_run
//! use keel_mcp::auth::server::{AuthorizationServer, AutoApprove, Client};
//!
//! # fn demo() -> Result<(), keel_mcp::auth::server::AuthServerError> {
//! let server = AuthorizationServer::builder("http://127.0.0.1:3000")
//!     .resource("http://127.0.0.1:3000/mcp")
//!     .scopes(["notes:read", "notes:write"])
//!     .consent(AutoApprove::as_user("alice"))
//!     .build()?;
//! server.register_client(Client::public("my-cli", vec!["http://127.0.0.1:8000/callback".into()]))?;
//! // Route everything that is not `/mcp` to `server` (it answers 404 for paths it does not own).
//! # Ok(()) }
//! ```
//!
//! # What it implements
//!
//! * Metadata (RFC 8414) at `/.well-known/oauth-authorization-server{path}` and the OpenID-compatible
//!   locations, with `issuer` exactly as configured.
//! * Authorization endpoint (GET and POST): the client and its exact redirect URI are checked before
//!   anything is redirected (a loopback redirect URI matches on any port, RFC 8252 §7.3); PKCE S256 is
//!   required; `state` is echoed and `iss` added to every response (RFC 9207); `resource` (RFC 8707) is bound
//!   to the code. Consent is a [`Consent`] policy: [`AutoApprove`] for
//!   tests, or the built-in HTML [`ConsentPage`].
//! * Token endpoint: `authorization_code` (PKCE verified, codes single-use and short-lived, a replayed code
//!   revokes what it issued, redirect URI and resource must match), `refresh_token` (issued only to clients
//!   that registered the grant and were granted `offline_access`; rotated on every use; reuse of a rotated-out
//!   token revokes the whole family), `client_credentials`. Every response carries `Cache-Control: no-store`.
//! * Client authentication `none`, `client_secret_basic`, `client_secret_post`, `private_key_jwt`. Secrets
//!   are stored as salted hashes and compared in constant time; a client registered with a secret is never
//!   accepted without it, whatever the metadata advertises.
//! * Dynamic client registration (RFC 7591), client ID metadata documents (fetched with the OAuth client's
//!   SSRF guards), revocation (RFC 7009), rate limits per IP and per client ([`RateLimits`]), and storage
//!   behind [`Store`] ([`MemoryStore`] by default; `SqliteStore` with feature `authorization-server-sqlite`).
//!
//! Access tokens are stateless JWTs: revoking one is not possible before it expires, so keep
//! [`AuthorizationServerBuilder::token_ttl`] short. Revocation ends refresh-token families.

mod authorize;
mod cimd;
#[cfg(test)]
mod cimd_fetch_tests;
mod client;
mod client_auth;
mod consent;
mod consent_page;
mod error;
mod keys;
mod metadata;
mod rate_limit;
mod registration;
mod response;
mod revocation;
mod service;
#[cfg(feature = "authorization-server-sqlite")]
mod sqlite_store;
mod store;
mod token;

use std::sync::Arc;
use std::time::Duration;

pub use cimd::CimdPolicy;
pub use client::{
    Client, ClientAuthMethod, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, SecretHash,
    redirect_uri_matches,
};
pub use consent::{AutoApprove, Consent, ConsentDecision, ConsentRequest};
pub use consent_page::ConsentPage;
pub use error::AuthServerError;
pub use rate_limit::RateLimits;
#[cfg(feature = "authorization-server-sqlite")]
pub use sqlite_store::SqliteStore;
pub use store::{CodeGrant, CodeRedemption, MemoryStore, RefreshGrant, RefreshUse, Store, StoreLimits, token_key};

use client::redirect_uri_is_acceptable;
use keys::SigningKeys;
use rate_limit::RateLimiter;

/// The scope that asks for a refresh token (SEP-2207).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The authorization server, as a `tower::Service`. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct AuthorizationServer {
    inner: Arc<Inner>,
}

/// Everything a request handler reads.
#[derive(Debug)]
pub(crate) struct Inner {
    issuer: String,
    /// The issuer's path without a trailing `/` (`""` for an issuer at the origin's root).
    path: String,
    /// The issuer without a trailing `/`, the base of the endpoint URLs.
    base: String,
    resources: Vec<String>,
    scopes: Vec<String>,
    default_scopes: Vec<String>,
    auth_methods: Vec<ClientAuthMethod>,
    registration: bool,
    consent: Arc<dyn Consent>,
    store: Arc<dyn Store>,
    keys: SigningKeys,
    token_ttl: Duration,
    code_ttl: Duration,
    refresh_ttl: Duration,
    limiter: RateLimiter,
    cimd: Option<cimd::CimdResolver>,
    assertion_ids: client_auth::SeenAssertions,
}

impl std::fmt::Debug for dyn Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Consent")
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Inner {
    fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// The client `client_id`: from the store, or — for a URL — its client ID metadata document.
    async fn client(&self, client_id: &str) -> Result<Option<Client>, error::OAuthError> {
        if let Some(client) = self.store.client(client_id)? {
            return Ok(Some(client));
        }
        match &self.cimd {
            Some(cimd) if cimd::is_cimd_client_id(client_id) => cimd.resolve(self, client_id).await.map(Some),
            _ => Ok(None),
        }
    }
}

impl AuthorizationServer {
    /// A builder for the server whose issuer identifier is `issuer` (https, or http on a loopback host; no
    /// query or fragment). The string is published exactly as given.
    pub fn builder(issuer: impl Into<String>) -> AuthorizationServerBuilder {
        AuthorizationServerBuilder {
            issuer: issuer.into(),
            resources: Vec::new(),
            scopes: Vec::new(),
            default_scopes: None,
            auth_methods: vec![
                ClientAuthMethod::None,
                ClientAuthMethod::ClientSecretBasic,
                ClientAuthMethod::ClientSecretPost,
                ClientAuthMethod::PrivateKeyJwt,
            ],
            registration: true,
            consent: None,
            store: None,
            signing_key: None,
            token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            rate_limits: RateLimits::default(),
            cimd: Some(CimdPolicy::default()),
            #[cfg(test)]
            cimd_test_root: None,
        }
    }

    /// The issuer identifier, as configured.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The JWK Set URL (`{issuer}/jwks`).
    pub fn jwks_uri(&self) -> String {
        self.inner.endpoint("jwks")
    }

    /// The published JWK Set (the current signing key first, then retired ones still in use).
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keys.jwks()
    }

    /// Makes a new signing key current. The previous key stays in the JWK Set so tokens it signed keep
    /// verifying until they expire; call this less often than once per [`AuthorizationServerBuilder::token_ttl`].
    pub fn rotate_signing_key(&self) -> Result<(), AuthServerError> {
        self.inner.keys.rotate()
    }

    /// Registers (or replaces) a client, e.g. one configured ahead of time. Its redirect URIs must be https,
    /// http on a loopback host, or a native app's private-use scheme.
    pub fn register_client(&self, client: Client) -> Result<(), AuthServerError> {
        if let Some(bad) = client.redirect_uris.iter().find(|u| !redirect_uri_is_acceptable(u)) {
            return Err(AuthServerError::InvalidClient(format!("redirect URI {bad:?} is not allowed")));
        }
        if client.auth_method == ClientAuthMethod::PrivateKeyJwt && client.jwks.is_none() {
            return Err(AuthServerError::InvalidClient(format!(
                "client {:?}: private_key_jwt needs the client's public keys (jwks)",
                client.client_id
            )));
        }
        if client.auth_method.uses_secret() != client.secret_hash.is_some() {
            return Err(AuthServerError::InvalidClient(format!(
                "client {:?}: a secret goes with client_secret_basic/_post, and only with them",
                client.client_id
            )));
        }
        self.inner.store.put_client(client)
    }
}

/// Builds an [`AuthorizationServer`].
pub struct AuthorizationServerBuilder {
    issuer: String,
    resources: Vec<String>,
    scopes: Vec<String>,
    default_scopes: Option<Vec<String>>,
    auth_methods: Vec<ClientAuthMethod>,
    registration: bool,
    consent: Option<Arc<dyn Consent>>,
    store: Option<Arc<dyn Store>>,
    signing_key: Option<Vec<u8>>,
    token_ttl: Duration,
    code_ttl: Duration,
    refresh_ttl: Duration,
    rate_limits: RateLimits,
    cimd: Option<CimdPolicy>,
    /// Test builds only: the certificate the CIMD fetcher trusts instead of the system's roots.
    #[cfg(test)]
    cimd_test_root: Option<Vec<u8>>,
}

impl std::fmt::Debug for AuthorizationServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServerBuilder").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl AuthorizationServerBuilder {
    /// Adds a resource (RFC 8707) tokens may be issued for, e.g. the MCP endpoint's URL. The first is the
    /// default when a request names none. At least one is required; a request naming another gets
    /// `invalid_target`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The scopes clients may ask for (`offline_access` is always added).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// What a request without `scope` gets. Default: every supported scope except `offline_access`.
    pub fn default_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.default_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The client authentication methods accepted and advertised. Default: all four. Leave `none` out when
    /// the server serves only confidential clients (a client that sees `none` advertised may try it).
    pub fn token_endpoint_auth_methods(mut self, methods: impl IntoIterator<Item = ClientAuthMethod>) -> Self {
        self.auth_methods = methods.into_iter().collect();
        self
    }

    /// Whether dynamic client registration is open (default `true`, as MCP clients expect).
    pub fn dynamic_registration(mut self, open: bool) -> Self {
        self.registration = open;
        self
    }

    /// How users approve requests. Required.
    pub fn consent(mut self, consent: impl Consent) -> Self {
        self.consent = Some(Arc::new(consent));
        self
    }

    /// Where clients, codes and refresh tokens live. Default: a [`MemoryStore`].
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The ES256 signing key, PKCS#8 DER (so tokens survive a restart). Default: a fresh key.
    pub fn signing_key_pkcs8(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.signing_key = Some(der.into());
        self
    }

    /// Access token lifetime. Default one hour.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Authorization code lifetime. Default 60 s.
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Lifetime of a refresh-token family (rotation does not extend it). Default 30 days.
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Rate limits. Default [`RateLimits::default`].
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Client ID metadata documents: `None` turns them off. Default [`CimdPolicy::default`].
    pub fn client_id_metadata_documents(mut self, policy: Option<CimdPolicy>) -> Self {
        self.cimd = policy;
        self
    }

    /// Test builds only: client metadata documents are fetched trusting only the certificate `der` (with
    /// [`CimdPolicy::allow_private`], for a document server on loopback). No production build has it.
    #[cfg(test)]
    pub(crate) fn cimd_test_root(mut self, der: Vec<u8>) -> Self {
        self.cimd_test_root = Some(der);
        self
    }

    #[cfg(not(test))]
    fn cimd_resolver(&self, policy: CimdPolicy) -> Result<cimd::CimdResolver, AuthServerError> {
        cimd::CimdResolver::new(policy)
    }

    #[cfg(test)]
    fn cimd_resolver(&self, policy: CimdPolicy) -> Result<cimd::CimdResolver, AuthServerError> {
        match &self.cimd_test_root {
            Some(root) => cimd::CimdResolver::trusting_test_root(policy, root),
            None => cimd::CimdResolver::new(policy),
        }
    }

    /// The server.
    pub fn build(self) -> Result<AuthorizationServer, AuthServerError> {
        let cimd = match self.cimd {
            Some(policy) => Some(self.cimd_resolver(policy)?),
            None => None,
        };
        let issuer_url = crate::auth::client::url_policy::check_secure(&self.issuer).map_err(|_| {
            AuthServerError::Config(format!(
                "issuer {:?} must be https (or http on localhost/127.0.0.1/[::1]) with no fragment",
                self.issuer
            ))
        })?;
        if issuer_url.query().is_some() {
            return Err(AuthServerError::Config("the issuer has no query (RFC 8414 §2)".into()));
        }
        if self.resources.is_empty() {
            return Err(AuthServerError::Config("name at least one resource (the tokens' audience)".into()));
        }
        let consent =
            self.consent.ok_or_else(|| AuthServerError::Config("choose a consent policy (`consent`)".into()))?;
        if self.auth_methods.is_empty() {
            return Err(AuthServerError::Config("accept at least one client authentication method".into()));
        }
        let mut scopes = self.scopes;
        if !scopes.iter().any(|s| s == OFFLINE_ACCESS) {
            scopes.push(OFFLINE_ACCESS.into());
        }
        if let Some(bad) = scopes.iter().find(|s| s.is_empty() || !s.bytes().all(scope_char)) {
            return Err(AuthServerError::Config(format!("scope {bad:?} has characters RFC 6749 §3.3 forbids")));
        }
        let default_scopes =
            self.default_scopes.unwrap_or_else(|| scopes.iter().filter(|s| *s != OFFLINE_ACCESS).cloned().collect());
        if let Some(bad) = default_scopes.iter().find(|s| !scopes.contains(s)) {
            return Err(AuthServerError::Config(format!("default scope {bad:?} is not a supported scope")));
        }
        let path = issuer_url.path().trim_end_matches('/').to_owned();
        let base = self.issuer.trim_end_matches('/').to_owned();
        let keys = SigningKeys::new(self.signing_key.as_deref())?;
        let inner = Inner {
            issuer: self.issuer,
            path,
            base,
            resources: self.resources,
            scopes,
            default_scopes,
            auth_methods: self.auth_methods,
            registration: self.registration,
            consent,
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            keys,
            token_ttl: self.token_ttl,
            code_ttl: self.code_ttl,
            refresh_ttl: self.refresh_ttl,
            limiter: RateLimiter::new(self.rate_limits),
            cimd,
            assertion_ids: client_auth::SeenAssertions::default(),
        };
        Ok(AuthorizationServer { inner: Arc::new(inner) })
    }
}

/// `%x21 / %x23-5B / %x5D-7E` (RFC 6749 §3.3).
fn scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}
