//! [`ResponseChannel`]: how a handler reaches the client over HTTP — the request's own SSE stream when it
//! has one, else the session's standalone (GET) stream. It is the context's [`ClientChannel`] for HTTP,
//! and carries the HTTP request the handler may read.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use http::request::Parts;
use serde_json::value::RawValue;

use super::bus::Kind;
use super::session::HttpSession;
use crate::engine::peer::cancelled_by_sender;
use crate::error::Error;
use crate::protocol::jsonrpc::{self, RequestId};
use crate::server::context::{ChannelFuture, ClientChannel};

/// The way back to the client for one HTTP request, and that request. Allocated once per request, in an
/// `Arc` the handler's context shares.
pub(crate) struct ResponseChannel {
    /// The HTTP request the MCP request came in (`RequestContext::http_request`).
    pub(crate) parts: Parts,
    /// Frames for this request's response stream (absent when the client only accepts JSON).
    pub(crate) stream: Option<mpsc::Sender<Vec<u8>>>,
    /// The legacy session, which can carry server-to-client requests; absent on the stateless path.
    pub(crate) session: Option<Arc<HttpSession>>,
    /// How long a server-to-client request waits for its answer.
    pub(crate) timeout: Duration,
}

// By hand: `RequestContext`'s `Debug` reaches this, and the request's header values (`Authorization`, `DPoP`,
// cookies) and query must never reach a log; header names, the method and the path are enough to debug.
impl std::fmt::Debug for ResponseChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseChannel")
            .field("method", &self.parts.method)
            .field("path", &self.parts.uri.path())
            .field("headers", &self.parts.headers.keys().collect::<Vec<_>>())
            .field("streamed", &self.stream.is_some())
            .field("session", &self.session.as_ref().map(|session| &session.id))
            .finish_non_exhaustive()
    }
}

impl ResponseChannel {
    /// Sends a message related to the request; returns false when it had nowhere to go.
    pub(crate) async fn send(&self, _related: &RequestId, frame: Vec<u8>) -> bool {
        match &self.stream {
            Some(stream) => stream.send(frame).await.is_ok(),
            None => self.append_standalone(frame),
        }
    }

    /// Sends without waiting (for use in `Drop`): false when the stream is full or gone.
    fn try_send(&self, frame: Vec<u8>) -> bool {
        match &self.stream {
            Some(stream) => stream.try_send(frame).is_ok(),
            None => self.append_standalone(frame),
        }
    }

    /// Puts a frame on the session's standalone (GET) stream, the way back for a request without its own.
    /// When this instance does not hold that stream, the frame goes on the session bus to the one that
    /// does (if any: the bus cannot tell).
    fn append_standalone(&self, frame: Vec<u8>) -> bool {
        let Some(session) = &self.session else { return false };
        if let Some(log) = session.standalone() {
            return log.append(frame.into());
        }
        match &session.bus {
            Some(bus) => {
                bus.publish(Kind::Frame, &session.id, Some(&frame));
                true
            }
            None => false,
        }
    }

    /// Drops the client's connection to this request's stream (legacy era only: the client resumes with
    /// `Last-Event-ID`). An empty frame is the signal; it never reaches the wire.
    pub(crate) async fn disconnect(&self) {
        if let (Some(stream), Some(_)) = (&self.stream, &self.session) {
            let _ = stream.send(Vec::new()).await;
        }
    }

    /// Sends a request to the client and waits for the answer, which arrives in a later POST. A request that
    /// ends unanswered (timeout, or the handler dropped) is forgotten and the client told to stop
    /// (`notifications/cancelled`), as the engine does on stream connections.
    async fn request_encoded(
        &self,
        id: RequestId,
        method: &str,
        params: Box<RawValue>,
    ) -> Result<Box<RawValue>, Error> {
        let Some(session) = &self.session else { return Err(no_requests()) };
        if self.stream.is_none()
            && session.standalone().is_none()
            && session.bus.is_some()
            && session.standalone_open().await == Some(false)
        {
            // No instance holds the session's standalone stream: nobody would see the request.
            return Err(Error::Protocol("no open stream to the client to send the request on".into()));
        }
        let frame = jsonrpc::encode_request(&id, method, &params)?;
        let answer = session.pending.insert(id.clone(), None)?;
        if !self.send(&id, frame).await {
            session.pending.forget(&id);
            return Err(Error::Protocol("no open stream to the client to send the request on".into()));
        }
        let mut waiting = Waiting { channel: self, session, id: &id, answered: false };
        let outcome = tokio::select! {
            answer = answer => {
                waiting.answered = true;
                answer.map_err(|_| Error::Closed)?.map_err(Error::Rpc)
            }
            _ = tokio::time::sleep(self.timeout) => return Err(Error::Timeout(self.timeout)),
            _ = session.closed.cancelled() => {
                waiting.answered = true;
                return Err(Error::Closed);
            }
        }?;
        Ok(outcome)
    }
}

impl ClientChannel for ResponseChannel {
    fn notify<'a>(&'a self, related: &'a RequestId, frame: Vec<u8>) -> ChannelFuture<'a, ()> {
        Box::pin(async move {
            self.send(related, frame).await;
        })
    }

    fn next_request_id(&self) -> Result<RequestId, Error> {
        self.session.as_ref().map(|session| session.pending.next_id()).ok_or_else(no_requests)
    }

    fn request<'a>(
        &'a self,
        id: RequestId,
        method: &'static str,
        params: Box<RawValue>,
    ) -> ChannelFuture<'a, Result<Box<RawValue>, Error>> {
        Box::pin(self.request_encoded(id, method, params))
    }

    fn close_stream(&self) -> ChannelFuture<'_, ()> {
        Box::pin(self.disconnect())
    }

    fn http_request(&self) -> Option<&Parts> {
        Some(&self.parts)
    }

    fn session_id(&self) -> Option<&str> {
        self.session.as_deref().map(|session| &*session.id)
    }
}

/// Why a request to the client cannot go out: only a legacy session has a way back for one.
fn no_requests() -> Error {
    Error::Protocol(
        "a 2026-07-28 server sends no requests to the client; return an input-required result instead".into(),
    )
}

/// A server-to-client request waiting for its answer; cleans up if it ends any other way.
struct Waiting<'a> {
    channel: &'a ResponseChannel,
    session: &'a HttpSession,
    id: &'a RequestId,
    answered: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.session.pending.forget(self.id);
        if let Some(frame) = cancelled_by_sender(self.id) {
            // Best effort: the client bounds its own work on a request nobody waits for.
            let _ = self.channel.try_send(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credential_or_query() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/mcp?access_token=query-secret")
            .header("authorization", "Bearer header-secret")
            .header("dpop", "proof-secret")
            .header("cookie", "session=cookie-secret")
            .body(())
            .unwrap();
        let channel =
            ResponseChannel { parts: request.into_parts().0, stream: None, session: None, timeout: Duration::ZERO };
        let shown = format!("{channel:?}");
        for secret in ["query-secret", "header-secret", "proof-secret", "cookie-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("authorization") && shown.contains("/mcp"), "{shown}");
    }
}
