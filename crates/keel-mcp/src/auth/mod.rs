//! Authorization for HTTP transports.
//!
//! [`HttpAuth`] is the seam between the streamable HTTP client transport and whatever supplies its
//! credentials: the transport asks for an `Authorization` header before each request and reports every
//! 401 / 403 it gets; the implementation (the OAuth 2.1 client in [`client`], a static token, …) decides
//! whether a retry can succeed.

use crate::engine::BoxFuture;
use crate::error::Error;

#[cfg(feature = "auth")]
pub mod client;

/// What the server said when it refused a request.
#[derive(Clone, Debug)]
pub struct Challenge {
    /// 401 (no or invalid credentials) or 403 (insufficient scope).
    pub status: u16,
    /// Every `WWW-Authenticate` header value, verbatim.
    pub www_authenticate: Vec<String>,
}

/// Supplies credentials for requests to one MCP server URL.
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
#[derive(Clone)]
pub struct BearerToken(String);

impl BearerToken {
    /// A token sent as `Authorization: Bearer <token>`.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens never reach logs.
        f.write_str("BearerToken(…)")
    }
}

impl HttpAuth for BearerToken {
    fn authorization(&self, _url: &str) -> BoxFuture<Result<Option<String>, Error>> {
        let header = format!("Bearer {}", self.0);
        Box::pin(std::future::ready(Ok(Some(header))))
    }

    fn unauthorized(&self, _url: &str, _challenge: Challenge) -> BoxFuture<Result<bool, Error>> {
        Box::pin(std::future::ready(Ok(false)))
    }
}
