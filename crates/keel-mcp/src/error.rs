//! The SDK's error type and its mapping to JSON-RPC errors.

use std::fmt;
use std::time::Duration;

use crate::protocol::ErrorObject;

/// Everything that can go wrong when talking to a peer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered with a JSON-RPC error.
    Rpc(ErrorObject),
    /// No answer arrived in time; the request was cancelled.
    Timeout(Duration),
    /// The request was cancelled locally.
    Cancelled,
    /// The connection is closed.
    Closed,
    /// Too many requests are waiting for answers.
    TooManyPending(usize),
    /// A message could not be encoded or decoded.
    Json(serde_json::Error),
    /// The transport failed: the peer could not be reached (connection refused, DNS, TLS, a connect
    /// timeout) or the connection broke (reset, closed mid-message). The [`kind`](std::io::Error::kind) says
    /// what the operating system reported where it did (`ConnectionRefused`, `ConnectionReset`, `TimedOut`,
    /// …), the message says which step failed, and [`source`](std::error::Error::source) leads to the
    /// underlying error. Retrying later, or checking the URL, may help; the server never saw the request
    /// or never answered it.
    Transport(std::io::Error),
    /// The HTTP server refused the request (401: log in; 403: the credentials do not allow it) and the
    /// transport's [`HttpAuth`](crate::auth::HttpAuth), if any, could not fix it. The [`Challenge`] says what
    /// the server asked for (scheme, `error`, `scope`, `resource_metadata`). Boxed to keep `Error` small.
    ///
    /// [`Challenge`]: crate::auth::Challenge
    #[cfg(feature = "http-client")]
    Unauthorized(Box<crate::auth::Challenge>),
    /// Authorization failed: discovery, registration, the authorization grant or a token refresh did not
    /// succeed, or a security check stopped the flow.
    #[cfg(feature = "auth")]
    Auth(crate::auth::client::AuthError),
    /// The two sides share no protocol revision, or the peer broke the protocol.
    Protocol(String),
}

// Display and Error by hand: a derive macro crate would be the only proc-macro a minimal server needs
// besides serde's and schemars'.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rpc(e) => write!(f, "the peer answered with an error: {e}"),
            Error::Timeout(d) => write!(f, "no answer within {d:?}"),
            Error::Cancelled => f.write_str("the request was cancelled"),
            Error::Closed => f.write_str("the connection is closed"),
            Error::TooManyPending(limit) => write!(f, "too many pending requests (limit {limit})"),
            Error::Json(e) => write!(f, "invalid message: {e}"),
            Error::Transport(e) => write!(f, "transport error: {e}"),
            #[cfg(feature = "http-client")]
            Error::Unauthorized(challenge) => write!(f, "the server refused the request: {challenge}"),
            #[cfg(feature = "auth")]
            Error::Auth(e) => write!(f, "authorization failed: {e}"),
            Error::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Json(e) => Some(e),
            Error::Transport(e) => Some(e),
            #[cfg(feature = "auth")]
            Error::Auth(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Transport(e)
    }
}

#[cfg(feature = "auth")]
impl From<crate::auth::client::AuthError> for Error {
    fn from(e: crate::auth::client::AuthError) -> Self {
        Error::Auth(e)
    }
}

impl Error {
    /// The JSON-RPC error the peer sent, if that is what this is.
    pub fn as_rpc(&self) -> Option<&ErrorObject> {
        match self {
            Error::Rpc(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ErrorObject> for Error {
    fn from(e: ErrorObject) -> Self {
        Error::Rpc(e)
    }
}
