//! [`ResponseChannel`]: how a handler reaches the client over HTTP — the request's own SSE stream when it
//! has one, else the session's standalone (GET) stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::session::HttpSession;
use crate::error::Error;
use crate::protocol::Request;
use crate::protocol::jsonrpc::{self, RequestId};

/// The way back to the client for one HTTP request.
#[derive(Clone, Debug)]
pub(crate) struct ResponseChannel {
    /// Frames for this request's response stream (absent when the client only accepts JSON).
    pub(crate) stream: Option<mpsc::Sender<Vec<u8>>>,
    /// The legacy session, which can carry server-to-client requests; absent on the stateless path.
    pub(crate) session: Option<Arc<HttpSession>>,
    /// How long a server-to-client request waits for its answer.
    pub(crate) timeout: Duration,
}

impl ResponseChannel {
    /// Sends a message related to the request; returns false when it had nowhere to go.
    pub(crate) async fn send(&self, _related: &RequestId, frame: Vec<u8>) -> bool {
        if let Some(stream) = &self.stream {
            return stream.send(frame).await.is_ok();
        }
        match self.session.as_ref().and_then(|s| s.standalone()) {
            Some(log) => log.append(frame.into()),
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

    /// Sends a request to the client and waits for the answer, which arrives in a later POST.
    pub(crate) async fn request<R: Request>(&self, params: R) -> Result<R::Result, Error> {
        let Some(session) = &self.session else {
            return Err(Error::Protocol(
                "a 2026-07-28 server sends no requests to the client; return an input-required result instead".into(),
            ));
        };
        let id = session.pending.next_id();
        let frame = jsonrpc::encode_request(&id, R::METHOD, &params)?;
        let answer = session.pending.insert(id.clone(), None)?;
        if !self.send(&id, frame).await {
            session.pending.forget(&id);
            return Err(Error::Protocol("no open stream to the client to send the request on".into()));
        }
        let outcome = tokio::select! {
            answer = answer => answer.map_err(|_| Error::Closed)?.map_err(Error::Rpc),
            _ = tokio::time::sleep(self.timeout) => {
                session.pending.forget(&id);
                return Err(Error::Timeout(self.timeout));
            }
            _ = session.closed.cancelled() => return Err(Error::Closed),
        }?;
        Ok(serde_json::from_str(outcome.get())?)
    }
}
