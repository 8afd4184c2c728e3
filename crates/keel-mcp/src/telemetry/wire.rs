//! [`Wire`]: what a span says of the transport a message crosses.

use std::any::Any;
#[cfg(any(feature = "http-server", feature = "http-client"))]
use std::sync::Arc;

/// The transport of a message, as its span names it: `tcp` over HTTP, `pipe` over a stream (stdio, a child
/// process, in memory), and the legacy HTTP session when there is one.
#[derive(Clone, Default)]
pub(crate) struct Wire {
    /// Over HTTP (`tcp`), or over a stream (`pipe`).
    pub(crate) http: bool,
    session: Session,
}

#[derive(Clone, Default)]
enum Session {
    #[default]
    None,
    #[cfg(feature = "http-server")]
    Known(Arc<str>),
    /// Read when a span starts: the HTTP client's session comes with `initialize`'s answer, after the
    /// connection was made, and changes when the server forgets it.
    #[cfg(feature = "http-client")]
    Probe(Arc<dyn Fn() -> Option<String> + Send + Sync>),
}

impl Wire {
    /// The wire of an engine connection whose frames go to `writer`.
    pub(crate) fn of<W: Any>(writer: &W) -> Wire {
        #[cfg(feature = "http-client")]
        if let Some(writer) = (writer as &dyn Any).downcast_ref::<crate::client::http::HttpWriter>() {
            return Wire { http: true, session: Session::Probe(writer.session_probe()) };
        }
        let _ = writer;
        Wire::default()
    }

    /// An HTTP exchange, in `session` if it has one.
    #[cfg(feature = "http-server")]
    pub(crate) fn http(session: Option<&str>) -> Wire {
        Wire { http: true, session: session.map_or(Session::None, |id| Session::Known(id.into())) }
    }

    /// The session the message belongs to, if any.
    pub(crate) fn session(&self) -> Option<String> {
        match &self.session {
            Session::None => None,
            #[cfg(feature = "http-server")]
            Session::Known(id) => Some(id.to_string()),
            #[cfg(feature = "http-client")]
            Session::Probe(probe) => probe(),
        }
    }
}
