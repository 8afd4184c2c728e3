//! The OAuth client's error type. Messages name URLs without their query or userinfo and never carry a
//! token, a secret, a code or a PKCE verifier.

/// Why the OAuth client could not obtain or use credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A URL is neither https nor http on an exact loopback host, or could not be parsed.
    #[error("insecure or invalid URL refused: {0}")]
    InsecureUrl(String),
    /// A metadata or endpoint host is a private, loopback or link-local address (SSRF guard).
    #[error("private address refused: {0}")]
    PrivateAddress(String),
    /// The challenge pointed at resource metadata on another origin than the MCP server.
    #[error("protected resource metadata at {0} is not on the MCP server's origin")]
    CrossOriginMetadata(String),
    /// The protected resource metadata names another resource than the MCP server.
    #[error("protected resource metadata names resource {found:?}, which does not cover {expected:?}")]
    ResourceMismatch {
        /// The MCP server URL in use.
        expected: String,
        /// The `resource` the metadata named.
        found: String,
    },
    /// The protected resource metadata lists no authorization server.
    #[error("protected resource metadata lists no authorization server")]
    NoAuthorizationServer,
    /// The authorization server metadata names another issuer than the one it was discovered for.
    #[error("authorization server metadata issuer {found:?} differs from {expected:?}")]
    IssuerMismatch {
        /// The issuer the discovery URL was built from.
        expected: String,
        /// The `issuer` in the document.
        found: String,
    },
    /// No authorization server metadata was found at any well-known URL.
    #[error("no authorization server metadata found for issuer {0}")]
    NoAuthServerMetadata(String),
    /// A metadata document is missing a required field.
    #[error("authorization server metadata has no {0}")]
    MissingEndpoint(&'static str),
    /// The authorization server does not advertise PKCE with S256.
    #[error("the authorization server does not advertise PKCE S256; refusing to authorize")]
    PkceUnsupported,
    /// A response was not what the protocol requires (status, size, JSON shape).
    #[error("invalid response from {url}: {reason}")]
    InvalidResponse {
        /// Where it came from (no query).
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The HTTP request itself failed.
    #[error("request to {url} failed: {reason}")]
    Http {
        /// Where it went (no query).
        url: String,
        /// What failed.
        reason: String,
    },
    /// There is no way to register with this authorization server.
    #[error("no client registration possible with {0}: no pre-registered credentials, CIMD or registration endpoint")]
    NoRegistration(String),
    /// Pre-registered credentials belong to another authorization server.
    #[error("pre-registered credentials are bound to {bound}, but the resource now uses {current}")]
    PreRegisteredForOtherIssuer {
        /// The issuer the credentials belong to.
        bound: String,
        /// The issuer the resource names now.
        current: String,
    },
    /// Dynamic client registration was refused.
    #[error("client registration refused: {0}")]
    RegistrationRefused(String),
    /// The authorization response failed a check (`state`, `iss`, missing code).
    #[error("authorization response rejected: {0}")]
    CallbackRejected(&'static str),
    /// The authorization server answered the authorization request with an error.
    #[error("authorization denied: {0}")]
    AuthorizationDenied(String),
    /// The token endpoint answered with an OAuth error.
    #[error("token endpoint error: {error}")]
    TokenEndpoint {
        /// The OAuth `error` code (e.g. `invalid_grant`).
        error: String,
    },
    /// The token endpoint refused the client itself (`invalid_client`, `unauthorized_client`): asking the user
    /// again cannot help. A dynamic registration stored for this authorization server has been discarded, so
    /// the next run registers anew; pre-registered credentials need fixing.
    #[error(
        "the authorization server {issuer} refused this client at its token endpoint ({error}): the client ID or \
         secret is wrong, or the registration is no longer known there"
    )]
    ClientRejected {
        /// The authorization server.
        issuer: String,
        /// The OAuth `error` code.
        error: String,
    },
    /// The redirect step (browser, loopback listener) failed.
    #[error("redirect step failed: {0}")]
    Redirect(String),
    /// Too many re-authorizations for the same demand.
    #[error("gave up after {0} authorization attempts for the same scope")]
    RetryLimit(u32),
    /// A client assertion key could not be read or used.
    #[error("the client assertion key is not a PKCS#8 P-256 private key")]
    InvalidKey,
    /// The token store failed.
    #[error("token store: {0}")]
    Store(#[from] std::io::Error),
}

impl AuthError {
    /// True when the token endpoint refused the client's authentication or the grant for this client
    /// (`invalid_client`, `unauthorized_client`), which no new authorization by the user can fix.
    pub fn is_client_rejected(&self) -> bool {
        matches!(self, AuthError::TokenEndpoint { error } if error == "invalid_client" || error == "unauthorized_client")
            || matches!(self, AuthError::ClientRejected { .. })
    }

    /// True when the token endpoint said `invalid_grant` (a dead refresh token).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, AuthError::TokenEndpoint { error } if error == "invalid_grant")
    }
}

/// A URL fit for an error message: scheme, host, port and path only.
pub(crate) fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}
