//! Keel's HTTP server as an OAuth 2.1 resource server (feature `resource-server`): what the authorization
//! part of the MCP specification asks of a protected MCP server.
//!
//! Give the HTTP service a [`ResourceServerConfig`] ([`HttpConfig::resource_server`]) and it
//!
//! - serves its protected resource metadata (RFC 9728) at the path-inserted well-known URL
//!   (`/.well-known/oauth-protected-resource/mcp` for a resource `https://host/mcp`), CORS-readable;
//! - refuses a request without credentials with 401 and `WWW-Authenticate: Bearer resource_metadata="…"`
//!   (plus `scope="…"` when default scopes are configured), a bad token with 401 `error="invalid_token"`, and
//!   answers 503 with `Retry-After` when the verifier cannot decide (never 200);
//! - puts the verified [`Principal`] into the request's extensions, where
//!   [`RequestContext::principal`](crate::server::RequestContext::principal) finds it, in both eras;
//! - binds each legacy session to the principal that created it (another principal gets 404), and each task
//!   likewise (to another principal, `tasks/get`, `tasks/update` and `tasks/cancel` answer as for an unknown
//!   task);
//! - refuses a tool, resource or prompt whose required scopes ([`ToolDef::scopes`] and friends) the token
//!   lacks with 403 `error="insufficient_scope", scope="…"`, and leaves it out of the lists.
//!
//! Tokens are checked by a [`TokenVerifier`]: [`JwtVerifier`] checks JWT access tokens against the
//! authorization server's keys (a JWKS URL); implement the trait for anything else.
//! [`IntrospectionVerifier`](introspection::IntrospectionVerifier) asks the authorization server about each
//! token instead (RFC 7662), with a bounded cache, failing closed. DPoP-bound tokens (RFC 9449) are
//! accepted with a proof checked by a [`DpopVerifier`](dpop::DpopVerifier), configured with
//! [`ResourceServerConfig::dpop`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use keel_mcp::auth::resource::{JwtConfig, JwtVerifier, ResourceServerConfig};
//! use keel_mcp::protocol::Implementation;
//! use keel_mcp::server::{NoArgs, Server, ToolDef, http::HttpConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = "https://notes.example/mcp";
//! let verifier = JwtVerifier::new(JwtConfig::new(
//!     "https://idp.example",
//!     "https://idp.example/.well-known/jwks.json",
//!     resource,
//! ))?;
//! let protection = ResourceServerConfig::new(resource, ["https://idp.example"], Arc::new(verifier))
//!     .scopes_supported(["notes:read", "notes:write"]);
//! let list = ToolDef::new("list_notes", |_: NoArgs| async { "[]" }).scopes(["notes:read"]);
//! let server = Server::builder(Implementation::new("notes", "1.0.0")).tool_def(list).build();
//! let config = HttpConfig::default().resource_server(protection)?;
//! server.serve_http("127.0.0.1:8080".parse()?, config).await?;
//! # Ok(()) }
//! ```
//!
//! Mounted in your own router instead, route the metadata URL to the service as well as the endpoint.
//!
//! [`HttpConfig::resource_server`]: crate::server::http::HttpConfig::resource_server
//! [`ToolDef::scopes`]: crate::server::ToolDef::scopes

mod challenge;
mod config;
mod credentials;
pub mod dpop;
pub mod introspection;
mod jwks;
mod jwt;
mod metadata;
pub(crate) mod protection;
mod verified_cache;

use std::sync::Arc;
use std::time::Duration;

pub use config::{DEFAULT_MAX_AUTHORIZATION_BYTES, DEFAULT_STREAM_EXPIRY_GRACE, ResourceServerConfig};
pub use jwt::{ALLOWED_ALGORITHMS, JwtConfig, JwtConfigError, JwtVerifier, MAX_LEEWAY};
pub use metadata::ResourceUrlError;

use crate::server::Principal;

/// The future of [`TokenVerifier::verify`]: it may borrow the verifier and the token.
pub type VerifyFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<VerifiedToken, VerifyError>> + Send + 'a>>;

/// Verifies an access token and says who it stands for.
///
/// Implement it to check tokens your own way (an opaque-token lookup, a test verifier); Keel calls it once per
/// HTTP request that carries a token, before the request reaches dispatch. It must never log or echo the token.
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies an access token; never logs or echoes the token.
    fn verify<'a>(&'a self, token: &'a str) -> VerifyFuture<'a>;
}

/// What a [`TokenVerifier`] learned from a valid token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedToken {
    /// Who the token stands for (subject, client, scopes, audience, expiry, every claim). Shared: a verifier
    /// that caches its answers hands out the same principal on every hit, without copying its claims.
    pub principal: Arc<Principal>,
    /// The JWK SHA-256 thumbprint the token is bound to (RFC 9449 `cnf.jkt`), if it is DPoP-bound: such a
    /// token is only accepted with a DPoP proof made with that key, never as a plain bearer token.
    pub jkt: Option<String>,
}

impl VerifiedToken {
    /// A token standing for `principal` (a [`Principal`] or an `Arc<Principal>`), bound to no key.
    pub fn new(principal: impl Into<Arc<Principal>>) -> Self {
        VerifiedToken { principal: principal.into(), jkt: None }
    }

    /// Binds the token to the key with JWK thumbprint `jkt` (RFC 9449 `cnf.jkt`).
    pub fn with_jkt(mut self, jkt: impl Into<String>) -> Self {
        self.jkt = Some(jkt.into());
        self
    }
}

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not valid here (bad signature, expired, wrong issuer or audience, unknown key, …): the
    /// client gets 401 `error="invalid_token"`. The text says why, for the server's logs and the client's
    /// `error_description`; it never contains the token.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The verifier cannot decide now (its key set or introspection endpoint is unreachable): the client gets
    /// 503 with this `Retry-After`, never access.
    #[error("the token cannot be verified now; retry in {} s", retry_after.as_secs())]
    Unavailable {
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier that refuses every token.
    pub(super) struct Refuse;

    impl TokenVerifier for Refuse {
        fn verify<'a>(&'a self, _token: &'a str) -> VerifyFuture<'a> {
            Box::pin(std::future::ready(Err(VerifyError::Invalid("refused".into()))))
        }
    }
}
