//! The SDK's error type and its mapping to JSON-RPC errors.

use std::time::Duration;

use crate::protocol::ErrorObject;

/// Everything that can go wrong when talking to a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered with a JSON-RPC error.
    #[error("the peer answered with an error: {0}")]
    Rpc(ErrorObject),
    /// No answer arrived in time; the request was cancelled.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request was cancelled locally.
    #[error("the request was cancelled")]
    Cancelled,
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// Too many requests are waiting for answers.
    #[error("too many pending requests (limit {0})")]
    TooManyPending(usize),
    /// A message could not be encoded or decoded.
    #[error("invalid message: {0}")]
    Json(#[from] serde_json::Error),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] std::io::Error),
    /// Authorization failed: discovery, registration, the authorization grant or a token refresh did not
    /// succeed, or a security check stopped the flow.
    #[cfg(feature = "auth")]
    #[error("authorization failed: {0}")]
    Auth(#[from] crate::auth::client::AuthError),
    /// The two sides share no protocol revision, or the peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
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
