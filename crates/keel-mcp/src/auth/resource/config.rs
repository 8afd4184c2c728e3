//! [`ResourceServerConfig`]: what a protected Keel server says about itself and how strict it is.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::TokenVerifier;
use super::dpop::DpopVerifier;

/// How Keel's HTTP service protects itself as an OAuth 2.1 resource server; hand it to
/// [`HttpConfig::resource_server`](crate::server::http::HttpConfig::resource_server).
///
/// Every setting has a safe default: credentials only in the `Authorization` header, at most
/// [`DEFAULT_MAX_AUTHORIZATION_BYTES`] of it, lists filtered by the caller's scopes, metadata only at the
/// path-inserted well-known URL.
#[derive(Clone)]
#[non_exhaustive]
pub struct ResourceServerConfig {
    /// The resource identifier (RFC 8707/9728): the canonical URL of the MCP endpoint, e.g.
    /// `https://notes.example/mcp`. Published exactly as given (no slash added) and used to build the
    /// metadata URL; a [`JwtVerifier`](super::JwtVerifier) requires it in each token's `aud`.
    pub resource: String,
    /// The issuers of the authorization servers clients may get tokens from (at least one).
    pub authorization_servers: Vec<String>,
    /// The scopes the metadata advertises (`scopes_supported`). Default: none (the field is left out).
    pub scopes_supported: Vec<String>,
    /// The scopes a client should ask for when it has no token yet: sent as `scope="…"` in the 401
    /// challenge. Default: none (no `scope` parameter).
    pub default_scopes: Vec<String>,
    /// Scopes every request of a JSON-RPC method needs, on top of what its target needs (e.g.
    /// `("tools/call", ["mcp:tools"])`). Default: none.
    pub method_scopes: Vec<(String, Vec<String>)>,
    /// A human-readable name for the metadata (`resource_name`).
    pub resource_name: Option<String>,
    /// A URL of documentation for developers (`resource_documentation`).
    pub resource_documentation: Option<String>,
    /// Largest `Authorization` header accepted, in bytes; a larger one gets 431 before any verification.
    /// Default [`DEFAULT_MAX_AUTHORIZATION_BYTES`].
    pub max_authorization_bytes: usize,
    /// Whether `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list` leave out what
    /// the caller's scopes would not let it use. Default `true` (it only matters once definitions name
    /// scopes).
    pub filter_lists: bool,
    /// Whether the metadata is also served at the root well-known URL
    /// (`/.well-known/oauth-protected-resource`), for clients that look only there. Default `false`.
    pub serve_root_metadata: bool,
    /// Checks each token.
    pub verifier: Arc<dyn TokenVerifier>,
    /// DPoP (RFC 9449): checks the proof that must come with every DPoP-bound token. Default: none (a
    /// DPoP-bound token is refused, `Authorization: DPoP` is not accepted).
    pub dpop: Option<Arc<DpopVerifier>>,
    /// Whether every token must be DPoP-bound and presented with a proof (`Bearer` refused). Default `false`.
    pub dpop_required: bool,
    /// How long a response stream (a legacy `GET` stream, a `POST` answered as SSE, `subscriptions/listen`)
    /// may outlive the expiry (`exp`) of the token that opened it; then the stream ends and the client
    /// reconnects with a fresh token. Default [`DEFAULT_STREAM_EXPIRY_GRACE`]: the default
    /// [`JwtConfig::leeway`](super::JwtConfig::leeway), so a stream is never cut while its token would
    /// still be accepted (keep it at least the verifier's leeway, or a client whose token is within the
    /// leeway gets a stream that ends at once). A call still answering on such a stream sees what a dropped
    /// connection does: calls that may outlive a token should run as tasks.
    pub stream_expiry_grace: Duration,
}

/// Default of [`ResourceServerConfig::max_authorization_bytes`]: 8 KiB, room for a JWT with many claims.
pub const DEFAULT_MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// Default of [`ResourceServerConfig::stream_expiry_grace`]: 60 s.
pub const DEFAULT_STREAM_EXPIRY_GRACE: Duration = Duration::from_secs(60);

impl ResourceServerConfig {
    /// Protects the resource `resource` (the MCP endpoint's canonical URL) with tokens from
    /// `authorization_servers`, checked by `verifier`.
    pub fn new<I, S>(resource: impl Into<String>, authorization_servers: I, verifier: Arc<dyn TokenVerifier>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ResourceServerConfig {
            resource: resource.into(),
            authorization_servers: authorization_servers.into_iter().map(Into::into).collect(),
            scopes_supported: Vec::new(),
            default_scopes: Vec::new(),
            method_scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            max_authorization_bytes: DEFAULT_MAX_AUTHORIZATION_BYTES,
            filter_lists: true,
            serve_root_metadata: false,
            verifier,
            dpop: None,
            dpop_required: false,
            stream_expiry_grace: DEFAULT_STREAM_EXPIRY_GRACE,
        }
    }

    /// Sets [`ResourceServerConfig::scopes_supported`].
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`ResourceServerConfig::default_scopes`].
    pub fn default_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.default_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Requires `scopes` for every request of `method` (adds to [`ResourceServerConfig::method_scopes`]).
    pub fn method_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        method: impl Into<String>,
        scopes: I,
    ) -> Self {
        self.method_scopes.push((method.into(), scopes.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets [`ResourceServerConfig::resource_name`].
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets [`ResourceServerConfig::resource_documentation`].
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// Sets [`ResourceServerConfig::max_authorization_bytes`].
    pub fn max_authorization_bytes(mut self, n: usize) -> Self {
        self.max_authorization_bytes = n;
        self
    }

    /// Sets [`ResourceServerConfig::filter_lists`].
    pub fn filter_lists(mut self, on: bool) -> Self {
        self.filter_lists = on;
        self
    }

    /// Accepts DPoP-bound tokens (`Authorization: DPoP <token>` with a `DPoP` proof header), checked by
    /// `verifier`; with `required`, plain bearer tokens are refused. Sets [`ResourceServerConfig::dpop`] and
    /// [`ResourceServerConfig::dpop_required`]; the metadata then advertises the proof algorithms.
    ///
    /// A proof's `htu` must name the resource's origin (scheme, host, port) followed by the request's path:
    /// the origin comes from [`ResourceServerConfig::resource`], never from the `Host` header, so a
    /// TLS-terminating proxy in front is fine, but one that rewrites the path is not.
    pub fn dpop(mut self, verifier: DpopVerifier, required: bool) -> Self {
        self.dpop = Some(Arc::new(verifier));
        self.dpop_required = required;
        self
    }

    /// Sets [`ResourceServerConfig::stream_expiry_grace`].
    pub fn stream_expiry_grace(mut self, grace: Duration) -> Self {
        self.stream_expiry_grace = grace;
        self
    }

    /// Sets [`ResourceServerConfig::serve_root_metadata`].
    pub fn serve_root_metadata(mut self, on: bool) -> Self {
        self.serve_root_metadata = on;
        self
    }
}

impl fmt::Debug for ResourceServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceServerConfig")
            .field("resource", &self.resource)
            .field("authorization_servers", &self.authorization_servers)
            .field("scopes_supported", &self.scopes_supported)
            .field("default_scopes", &self.default_scopes)
            .field("method_scopes", &self.method_scopes)
            .field("max_authorization_bytes", &self.max_authorization_bytes)
            .field("filter_lists", &self.filter_lists)
            .field("serve_root_metadata", &self.serve_root_metadata)
            .field("dpop", &self.dpop)
            .field("dpop_required", &self.dpop_required)
            .field("stream_expiry_grace", &self.stream_expiry_grace)
            .finish_non_exhaustive()
    }
}
