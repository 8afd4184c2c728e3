//! [`RequestContext`]: what a handler gets besides its arguments — cancellation, progress, logging, and the
//! connection back to the client.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::engine::{Inbound, Peer};
use crate::protocol::logging::{LoggingLevel, LoggingMessageParams};
use crate::protocol::{ProgressToken, ProtocolVersion, RequestId};

/// The context of one request being handled.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub(crate) inbound: Inbound,
    pub(crate) version: ProtocolVersion,
    pub(crate) progress_token: Option<ProgressToken>,
    pub(crate) log_level: Option<LoggingLevel>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressOut<'a> {
    progress_token: &'a ProgressToken,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl RequestContext {
    /// The request's id.
    pub fn request_id(&self) -> &RequestId {
        &self.inbound.id
    }

    /// The revision this request speaks.
    pub fn protocol_version(&self) -> &ProtocolVersion {
        &self.version
    }

    /// Triggered when the client cancels the request.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inbound.cancellation
    }

    /// Whether the client cancelled the request.
    pub fn is_cancelled(&self) -> bool {
        self.inbound.cancellation.is_cancelled()
    }

    /// The connection to the client.
    pub fn peer(&self) -> &Peer {
        &self.inbound.peer
    }

    /// Whether the client asked for progress on this request.
    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Reports progress; does nothing when the client did not ask for progress.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else { return };
        let params = ProgressOut { progress_token: token, progress, total, message };
        if let Ok(frame) = crate::protocol::jsonrpc::encode_notification("notifications/progress", Some(&params)) {
            let _ = self.inbound.peer.send_frame(frame).await;
        }
    }

    /// Sends a log message when the client asked for messages at `level` or above (per session in the
    /// legacy era, per request in the modern era; never without being asked).
    pub async fn log(&self, level: LoggingLevel, logger: Option<&str>, data: impl Into<serde_json::Value>) {
        if self.log_level.is_none_or(|threshold| level < threshold) {
            return;
        }
        let params = LoggingMessageParams { level, logger: logger.map(str::to_owned), data: data.into(), meta: None };
        let _ = self.inbound.peer.notify(&params).await;
    }
}
