//! The errors of the authorization server: [`OAuthError`] is what a peer gets back (an RFC 6749 §5.2 error
//! response); [`AuthServerError`] is what the application gets when it configures the server wrongly.

use http::StatusCode;

/// A configuration or storage error the application can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthServerError {
    /// The configuration is not usable (the message says which setting and why).
    #[error("authorization server configuration: {0}")]
    Config(String),
    /// A client registration was refused (the message says which field and why).
    #[error("invalid client registration: {0}")]
    InvalidClient(String),
    /// The store failed.
    #[error("authorization server store: {0}")]
    Store(String),
    /// The store holds its maximum of something ([`super::StoreLimits`]); peers get 503
    /// `temporarily_unavailable`.
    #[error("authorization server store full: {0}")]
    StoreFull(String),
    /// A signing key could not be made or read.
    #[error("signing key: {0}")]
    Key(String),
}

/// An OAuth error response: the HTTP status, the RFC error code and a description safe to show the peer
/// (never a token, secret or code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// The client tried HTTP Basic authentication: a 401 carries `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status, code, description: description.into(), basic_challenge: false }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", description)
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
    }

    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "request body too large")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request", "no such endpoint")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "method not allowed")
    }

    pub fn rate_limited() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", "too many requests, slow down")
    }

    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", description)
    }

    /// With the HTTP Basic challenge (the client authenticated with Basic).
    pub fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }
}

impl From<AuthServerError> for OAuthError {
    fn from(e: AuthServerError) -> Self {
        if let AuthServerError::StoreFull(what) = &e {
            tracing::warn!(error = %e, "authorization server store full");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                format!("{what}; try again later"),
            );
        }
        // Store and key failures are the server's, not the client's; their details stay in the log.
        tracing::warn!(error = %e, "authorization server failure");
        OAuthError::server_error("the authorization server failed; try again later")
    }
}
