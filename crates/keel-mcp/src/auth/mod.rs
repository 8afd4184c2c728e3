//! Authorization for HTTP transports (feature `http-client`; the OAuth client needs feature `auth`).
//!
//! [`HttpAuth`] is the seam between the streamable HTTP client transport and whatever supplies its
//! credentials: the transport asks for credential headers before each request and reports every 401 / 403
//! it gets as a [`Challenge`]; the implementation decides whether a retry can succeed. With `http-client`
//! alone you get the trait, the [`Challenge`] and a fixed [`BearerToken`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use keel_mcp::auth::BearerToken;
//! use keel_mcp::client::{Client, http::HttpTransport};
//! use keel_mcp::protocol::Implementation;
//!
//! # async fn run() -> Result<(), keel_mcp::Error> {
//! let token = std::env::var("NOTES_TOKEN").unwrap_or_default();
//! let transport = HttpTransport::new("https://notes.example/mcp")?.auth(Arc::new(BearerToken::new(token)));
//! match Client::builder(Implementation::new("my-app", "1.0.0")).connect(transport).await {
//!     Ok(client) => client.close().await,
//!     // A refusal that the credentials could not fix: log in (401) or ask for more scope (403).
//!     Err(keel_mcp::Error::Unauthorized(challenge)) => eprintln!("log in first: {challenge}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! The OAuth 2.1 client (`auth::client`, feature `auth`) implements [`HttpAuth`] with discovery,
//! registration, the authorization-code flow and refresh.
//!
//! The server side is `auth::resource` (feature `resource-server`): Keel's HTTP server as an OAuth 2.1
//! resource server.
#![cfg_attr(
    not(feature = "http-client"),
    doc = "\n(This build has feature `resource-server` without `http-client`: only `auth::resource` is here.)"
)]

#[cfg(feature = "http-client")]
use crate::engine::BoxFuture;
#[cfg(feature = "http-client")]
use crate::error::Error;

#[cfg(feature = "http-client")]
mod challenge;
#[cfg(feature = "auth")]
pub mod client;
#[cfg(feature = "resource-server")]
pub mod resource;
#[cfg(feature = "authorization-server")]
pub mod server;

#[cfg(feature = "http-client")]
pub use challenge::Challenge;

/// Supplies credentials for requests to one MCP server URL.
#[cfg(feature = "http-client")]
pub trait HttpAuth: Send + Sync + 'static {
    /// The `Authorization` header value for the next request to `url` (e.g. `Bearer …`), if any.
    fn authorization(&self, url: &str) -> BoxFuture<Result<Option<String>, Error>>;

    /// The server refused a request to `url`. Returns `Ok(true)` when new credentials were obtained and the
    /// request should be sent again, `Ok(false)` when retrying cannot help. The transport bounds retries.
    fn unauthorized(&self, url: &str, challenge: Challenge) -> BoxFuture<Result<bool, Error>>;

    /// Every credential header for one request, `method` to `url`: `Authorization`, and for sender-constrained
    /// tokens a proof bound to the method and URL (a DPoP proof, RFC 9449). The transport calls this, not
    /// [`HttpAuth::authorization`], before each request; the default sends what `authorization` gives.
    fn request_headers(&self, method: &str, url: &str) -> BoxFuture<Result<Vec<(String, String)>, Error>> {
        let _ = method;
        let authorization = self.authorization(url);
        Box::pin(
            async move { Ok(authorization.await?.map(|v| vec![("authorization".to_owned(), v)]).unwrap_or_default()) },
        )
    }

    /// The server's `DPoP-Nonce` header from a response to `url` (RFC 9449 §9), for the next proof. The
    /// transport reports it before it reports a refusal. The default ignores it.
    fn dpop_nonce(&self, url: &str, nonce: &str) {
        let _ = (url, nonce);
    }
}

/// A fixed bearer token (e.g. from the environment), never refreshed.
#[cfg(feature = "http-client")]
#[derive(Clone)]
pub struct BearerToken(String);

#[cfg(feature = "http-client")]
impl BearerToken {
    /// A token sent as `Authorization: Bearer <token>`.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }
}

#[cfg(feature = "http-client")]
impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens never reach logs.
        f.write_str("BearerToken(…)")
    }
}

#[cfg(feature = "http-client")]
impl HttpAuth for BearerToken {
    fn authorization(&self, _url: &str) -> BoxFuture<Result<Option<String>, Error>> {
        let header = format!("Bearer {}", self.0);
        Box::pin(std::future::ready(Ok(Some(header))))
    }

    fn unauthorized(&self, _url: &str, _challenge: Challenge) -> BoxFuture<Result<bool, Error>> {
        Box::pin(std::future::ready(Ok(false)))
    }
}
