//! [`HandlerError`]: how a tool, prompt or resource handler says it did not produce a result, and what
//! the client is told about it.

use std::error::Error as StdError;
use std::fmt;

use crate::protocol::ErrorObject;
use crate::protocol::tools::CallToolResult;

/// Why a handler returned no result.
///
/// # What the client sees
///
/// | error | tool | prompt, resource |
/// |---|---|---|
/// | [`failed(msg)`](HandlerError::failed) | tool error (`isError: true`) with `msg` | internal error with `msg` |
/// | any error through `?` ([`Internal`](HandlerError::Internal)) | tool error saying only that the tool failed | internal error without details |
/// | [`not_found()`](HandlerError::not_found) | tool error "not found" | resource: the era's resource-not-found error; prompt: invalid params |
/// | [`Protocol`](HandlerError::Protocol) | that JSON-RPC error | that JSON-RPC error |
///
/// `?` works on every error that converts into `Box<dyn Error + Send + Sync>`: any `std::error::Error +
/// Send + Sync + 'static`, `anyhow::Error`, `Box<dyn Error + Send + Sync>`, and `String`/`&str`. Such an
/// error may carry internal details (paths, SQL, addresses), so its message stays on the server: it is
/// logged with `tracing` (at `error`, in the request's span, with its source chain) and the client gets a
/// generic message. To show a message to the client, say so with [`HandlerError::failed`]:
///
/// ```
/// use keel_mcp::server::HandlerError;
///
/// fn parse(text: &str) -> Result<u32, HandlerError> {
///     // The model can fix this one, so it sees why.
///     let n: u32 = text.parse().map_err(|e| HandlerError::failed(format!("not a number: {e}")))?;
///     // This one is ours: logged, and the client only hears that the tool failed.
///     std::fs::metadata("/var/lib/app/db")?;
///     Ok(n)
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError {
    /// The handler failed, with a message meant for the client. For a tool this reaches the model as a
    /// tool error (`isError: true`); for a prompt or resource it becomes an internal error.
    Failed(String),
    /// The handler failed for a reason the client is not told: logged on the server, reported to the
    /// client as a generic failure. What `?` makes of any error.
    Internal(Box<dyn StdError + Send + Sync>),
    /// What was asked for does not exist: for `resources/read` the revision's resource-not-found error
    /// (-32002 before 2026-07-28, -32602 from it on, with `data.uri`).
    NotFound,
    /// A protocol error, sent to the client as a JSON-RPC error (e.g. invalid params).
    Protocol(ErrorObject),
    /// The handler needs input from the client first (2026-07-28). The requests were recorded on the
    /// [`RequestContext`](super::RequestContext); the client will retry with the answers.
    InputRequired,
}

impl HandlerError {
    /// A failure with a message the client sees.
    pub fn failed(message: impl Into<String>) -> Self {
        HandlerError::Failed(message.into())
    }

    /// An invalid-params (-32602) protocol error.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        HandlerError::Protocol(ErrorObject::invalid_params(message.into()))
    }

    /// What was asked for does not exist (see [`HandlerError::NotFound`]).
    pub fn not_found() -> Self {
        HandlerError::NotFound
    }

    /// Sorts the error into what the client is told; an internal error is logged here, once.
    pub(crate) fn disclose(self) -> Disclosed {
        match self {
            HandlerError::Failed(message) => Disclosed::Message(message),
            HandlerError::Internal(error) => {
                tracing::error!(error = %Chain(&*error), "handler failed");
                Disclosed::Message(INTERNAL.to_owned())
            }
            HandlerError::NotFound => Disclosed::NotFound,
            HandlerError::Protocol(error) => Disclosed::Protocol(error),
            HandlerError::InputRequired => Disclosed::InputRequired,
        }
    }
}

/// What the client hears of a [`HandlerError`].
pub(crate) enum Disclosed {
    /// A failure with a message fit for the client.
    Message(String),
    NotFound,
    Protocol(ErrorObject),
    InputRequired,
}

impl Disclosed {
    /// How a tool reports it: failures and not-found are tool errors the model reads; the rest is no
    /// tool result.
    pub(crate) fn into_tool_result(self) -> Result<CallToolResult, NoToolResult> {
        match self {
            Disclosed::Message(message) => Ok(CallToolResult::error(message)),
            Disclosed::NotFound => Ok(CallToolResult::error("not found")),
            Disclosed::Protocol(error) => Err(NoToolResult::Protocol(error)),
            Disclosed::InputRequired => Err(NoToolResult::InputRequired),
        }
    }
}

/// A tool's [`HandlerError`] that does not become a tool error.
pub(crate) enum NoToolResult {
    Protocol(ErrorObject),
    InputRequired,
}

/// What the client is told about an error whose details stay on the server.
const INTERNAL: &str = "internal error (details are in the server's log)";

/// An error and its sources, `: `-separated.
struct Chain<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Failed(m) => f.write_str(m),
            HandlerError::Internal(e) => write!(f, "{}", Chain(&**e)),
            HandlerError::NotFound => f.write_str("not found"),
            HandlerError::Protocol(e) => write!(f, "{e}"),
            HandlerError::InputRequired => f.write_str("input from the client is required"),
        }
    }
}

/// `?` on any error that converts into `Box<dyn Error + Send + Sync>` (std errors, `anyhow::Error`, boxed
/// errors, strings) makes an [`HandlerError::Internal`].
///
/// Why not `From<E: std::error::Error>`: neither `anyhow::Error` nor `Box<dyn Error + Send + Sync>` is a
/// `std::error::Error`, and coherence forbids adding impls for them beside that blanket one. Every such
/// type converts into the box, and `HandlerError` itself does not (it is no `std::error::Error`), so this
/// single blanket impl covers them all without overlapping `From<HandlerError> for HandlerError`.
impl<E: Into<Box<dyn StdError + Send + Sync>>> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError::Internal(e.into())
    }
}

/// A JSON-RPC error object is a protocol error (it is not a `std::error::Error`, so `?` keeps it one).
impl From<ErrorObject> for HandlerError {
    fn from(e: ErrorObject) -> Self {
        HandlerError::Protocol(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_takes_std_boxed_and_string_errors_and_keeps_the_chain() {
        fn io() -> Result<(), HandlerError> {
            Err(std::io::Error::other("disk on fire"))?
        }
        fn boxed() -> Result<(), HandlerError> {
            let e: Box<dyn StdError + Send + Sync> = "boxed".into();
            Err(e)?
        }
        assert!(matches!(io(), Err(HandlerError::Internal(e)) if e.to_string() == "disk on fire"));
        assert!(matches!(boxed(), Err(HandlerError::Internal(e)) if e.to_string() == "boxed"));
        // The client hears nothing of the details.
        assert!(matches!(io().unwrap_err().disclose(), Disclosed::Message(m) if m == INTERNAL));
    }
}
