//! [`RequestContext`]: what a handler gets besides its arguments — cancellation, progress, logging, and the
//! way back to the client, whichever transport and era the request came on.

use tokio_util::sync::CancellationToken;

use crate::engine::Peer;
use crate::error::Error;
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::jsonrpc;
use crate::protocol::logging::{LoggingLevel, LoggingMessageParams};
use crate::protocol::progress::ProgressParams;
use crate::protocol::{Notification, ProgressToken, ProtocolVersion, Request, RequestId};

/// Where a handler's messages to the client go.
#[derive(Clone, Debug)]
pub(crate) enum Channel {
    /// A connection driven by the engine (stdio, child process, in memory).
    Peer(Peer),
    /// An HTTP response (its SSE stream, if any, and the session for server-to-client requests).
    #[cfg(feature = "http-server")]
    Http(super::http::ResponseChannel),
}

impl Channel {
    async fn send_notification<N: Notification>(&self, related: &RequestId, params: &N) {
        let Ok(frame) = jsonrpc::encode_notification(N::METHOD, Some(params)) else { return };
        match self {
            Channel::Peer(peer) => {
                let _ = peer.send_frame(frame).await;
            }
            #[cfg(feature = "http-server")]
            Channel::Http(http) => {
                http.send(related, frame).await;
            }
        }
        let _ = related;
    }

    async fn request<R: Request>(&self, params: R) -> Result<R::Result, Error> {
        match self {
            Channel::Peer(peer) => peer.request(params).await,
            #[cfg(feature = "http-server")]
            Channel::Http(http) => http.request(params).await,
        }
    }
}

/// The context of one request being handled.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) cancellation: CancellationToken,
    pub(crate) channel: Channel,
    pub(crate) version: ProtocolVersion,
    pub(crate) client_capabilities: ClientCapabilities,
    pub(crate) progress_token: Option<ProgressToken>,
    pub(crate) log_level: Option<LoggingLevel>,
}

impl RequestContext {
    /// The request's id.
    pub fn request_id(&self) -> &RequestId {
        &self.id
    }

    /// The revision this request speaks.
    pub fn protocol_version(&self) -> &ProtocolVersion {
        &self.version
    }

    /// The capabilities the client declared (for this request in the modern era, for the session in the
    /// legacy era).
    pub fn client_capabilities(&self) -> &ClientCapabilities {
        &self.client_capabilities
    }

    /// Triggered when the client cancels the request.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }

    /// Whether the client cancelled the request.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// The engine connection to the client, when the request came on one (stdio, child process).
    pub fn peer(&self) -> Option<&Peer> {
        match &self.channel {
            Channel::Peer(peer) => Some(peer),
            #[cfg(feature = "http-server")]
            Channel::Http(_) => None,
        }
    }

    /// Whether the client asked for progress on this request.
    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Reports progress; does nothing when the client did not ask for progress.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else { return };
        let mut params = ProgressParams::new(token.clone(), progress, total);
        params.message = message.map(str::to_owned);
        self.channel.send_notification(&self.id, &params).await;
    }

    /// Sends a log message when the client asked for messages at `level` or above (per session in the
    /// legacy era, per request in the modern era; never without being asked).
    pub async fn log(&self, level: LoggingLevel, logger: Option<&str>, data: impl Into<serde_json::Value>) {
        if self.log_level.is_none_or(|threshold| level < threshold) {
            return;
        }
        let params = LoggingMessageParams { level, logger: logger.map(str::to_owned), data: data.into(), meta: None };
        self.channel.send_notification(&self.id, &params).await;
    }

    /// Sends a request to the client and waits for its answer (legacy era: sampling, elicitation, roots).
    pub async fn request<R: Request>(&self, params: R) -> Result<R::Result, Error> {
        self.channel.request(params).await
    }
}
