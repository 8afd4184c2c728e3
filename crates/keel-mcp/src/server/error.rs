//! [`HandlerError`]: how a tool, prompt or resource handler says it did not produce a result.

use std::fmt;

use crate::protocol::ErrorObject;

/// Why a handler returned no result.
///
/// Any `std::error::Error` converts into [`HandlerError::Failed`] with `?`.
#[derive(Debug)]
pub enum HandlerError {
    /// The handler failed. For a tool this reaches the model as a tool error (`isError: true`); for a
    /// prompt or resource it becomes an internal error.
    Failed(String),
    /// A protocol error, sent to the client as a JSON-RPC error (e.g. invalid params).
    Protocol(ErrorObject),
    /// The handler needs input from the client first (2026-07-28). The requests were recorded on the
    /// [`RequestContext`](super::RequestContext); the client will retry with the answers.
    InputRequired,
}

impl HandlerError {
    /// A failure with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        HandlerError::Failed(message.into())
    }

    /// An invalid-params (-32602) protocol error.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        HandlerError::Protocol(ErrorObject::invalid_params(message.into()))
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Failed(m) => f.write_str(m),
            HandlerError::Protocol(e) => write!(f, "{e}"),
            HandlerError::InputRequired => f.write_str("input from the client is required"),
        }
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError::Failed(e.to_string())
    }
}

/// A JSON-RPC error object is a protocol error (it is not a `std::error::Error`, so `?` keeps it one).
impl From<ErrorObject> for HandlerError {
    fn from(e: ErrorObject) -> Self {
        HandlerError::Protocol(e)
    }
}
