//! [`Peer`]: the handle through which one side sends requests and notifications to the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tracing::Instrument as _;

use crate::engine::CancellationToken;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::pending::PendingRequests;
use crate::Limits;
use crate::error::Error;
use crate::protocol::cancellation::CancelledParams;
use crate::protocol::jsonrpc::{self, RequestId};
use crate::protocol::{ClientCapabilities, Implementation, Notification, ProtocolVersion, Request};

/// A progress update for a request this side sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Progress so far (increases with each update).
    pub progress: f64,
    /// The total, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Receives the progress updates of one request.
pub type ProgressCallback = Arc<dyn Fn(Progress) + Send + Sync>;

/// Per-request options for [`Peer::request_with`].
#[derive(Clone, Default)]
pub struct RequestOptions {
    /// Overrides [`Limits::request_timeout`].
    pub timeout: Option<Duration>,
    /// Asks for progress notifications and hands each to this callback.
    pub on_progress: Option<ProgressCallback>,
    /// Cancels the request when triggered (a `notifications/cancelled` is sent).
    pub cancellation: Option<CancellationToken>,
}

impl RequestOptions {
    /// Fails the request with [`Error::Timeout`] (and cancels it) when no answer came within `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Asks for progress notifications and hands each to `callback`.
    pub fn on_progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(callback));
        self
    }

    /// Cancels the request (and fails it with [`Error::Cancelled`]) when `token` is triggered.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancellation = Some(token);
        self
    }
}

impl std::fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("on_progress", &self.on_progress.is_some())
            .field("cancellation", &self.cancellation)
            .finish()
    }
}

pub(crate) enum Outbound {
    Frame(Vec<u8>),
    Shutdown,
}

pub(crate) struct Shared {
    pub(crate) out: mpsc::Sender<Outbound>,
    pub(crate) pending: PendingRequests,
    pub(crate) in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    pub(crate) limits: Limits,
    pub(crate) closed: CancellationToken,
    version: RwLock<Option<ProtocolVersion>>,
    identity: RwLock<Option<Arc<Identity>>>,
    /// The transport, as the connection's spans name it (set once, when the connection starts).
    #[cfg(feature = "otel")]
    pub(crate) wire: std::sync::OnceLock<crate::telemetry::Wire>,
}

/// What a modern-era client puts in every request's `_meta`.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) capabilities: ClientCapabilities,
    pub(crate) info: Implementation,
}

/// One side of a connection: sends requests and notifications, and knows the negotiated revision.
///
/// Cheap to clone; all clones speak for the same connection.
#[derive(Clone)]
pub struct Peer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("version", &self.protocol_version()).field("closed", &self.is_closed()).finish()
    }
}

impl Peer {
    pub(crate) fn new(out: mpsc::Sender<Outbound>, limits: Limits) -> Peer {
        Peer {
            shared: Arc::new(Shared {
                out,
                pending: PendingRequests::new(limits.max_pending_requests),
                in_flight: Mutex::new(HashMap::new()),
                limits,
                closed: CancellationToken::new(),
                version: RwLock::new(None),
                identity: RwLock::new(None),
                #[cfg(feature = "otel")]
                wire: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The revision negotiated on this connection, once known.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.shared.version.read().expect("version lock").clone()
    }

    /// Records the negotiated revision.
    pub fn set_protocol_version(&self, version: ProtocolVersion) {
        *self.shared.version.write().expect("version lock") = Some(version);
    }

    /// Makes every request of a modern revision carry the client's capabilities and identity in `_meta`
    /// (the era decision lives here, once, so raw requests through the peer get it too).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn set_identity(&self, identity: Identity) {
        *self.shared.identity.write().expect("identity lock") = Some(Arc::new(identity));
    }

    /// Fills the `_meta` keys a modern request must carry, leaving keys the caller set alone.
    pub(crate) fn stamp<R: Request>(&self, params: &mut R, version: &ProtocolVersion) {
        if version.era() != crate::protocol::Era::Modern {
            return;
        }
        let identity = self.shared.identity.read().expect("identity lock").clone();
        let meta = params.meta_mut().get_or_insert_with(Default::default);
        meta.protocol_version.get_or_insert_with(|| version.clone());
        if let Some(identity) = identity {
            meta.client_capabilities.get_or_insert_with(|| identity.capabilities.clone());
            meta.client_info.get_or_insert_with(|| identity.info.clone());
        }
    }

    /// The limits this connection runs under.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Waits until the connection closes.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await
    }

    /// Closes the connection: in-flight work is cancelled, pending requests fail with [`Error::Closed`], and
    /// the transport is closed (a child process is shut down).
    pub fn close(&self) {
        for token in self.shared.in_flight.lock().expect("in-flight lock").values() {
            token.cancel();
        }
        self.shared.closed.cancel();
    }

    /// Sends a request and waits for its result.
    pub async fn request<R: Request>(&self, params: R) -> Result<R::Result, Error> {
        self.request_with(params, RequestOptions::default()).await
    }

    /// Sends a request with options (timeout, progress, cancellation) and waits for its result.
    pub async fn request_with<R: Request>(&self, mut params: R, options: RequestOptions) -> Result<R::Result, Error> {
        let raw = self.request_raw_with(R::METHOD, &mut params, options).await?;
        Ok(serde_json::from_str(raw.get())?)
    }

    /// Sends a request whose params are already encoded; returns the raw result.
    pub async fn request_raw<R: Request>(
        &self,
        params: &mut R,
        options: RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        self.request_raw_with(R::METHOD, params, options).await
    }

    /// One span per outgoing request (`mcp.send`, with the method and the id it gets).
    pub(crate) async fn request_raw_with<R: Request>(
        &self,
        method: &str,
        params: &mut R,
        options: RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let id = self.shared.pending.next_id();
        let span = tracing::info_span!("mcp.send", method, id = %id);
        #[cfg(feature = "otel")]
        let operation = crate::telemetry::client::ClientOperation::start(
            method,
            &id,
            params,
            self.protocol_version().as_ref(),
            || self.wire(),
        );
        let outcome = self.send_request(id, method, params, options).instrument(span).await;
        #[cfg(feature = "otel")]
        if let Some(operation) = operation {
            operation.finish(&outcome);
        }
        outcome
    }

    async fn send_request<R: Request>(
        &self,
        id: RequestId,
        method: &str,
        params: &mut R,
        options: RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if let Some(version) = self.protocol_version() {
            self.stamp(params, &version);
        }
        if options.on_progress.is_some() {
            params.meta_mut().get_or_insert_with(Default::default).progress_token = Some(id.clone());
        }
        let frame = jsonrpc::encode_request(&id, method, params)?;
        let rx = self.shared.pending.insert_outcome(id.clone(), options.on_progress)?;
        let mut guard = PendingGuard { peer: self, id: &id, done: false };
        self.send_frame(frame).await?;
        let timeout = options.timeout.unwrap_or(self.shared.limits.request_timeout);
        let cancellation = options.cancellation.unwrap_or_default();
        let outcome = tokio::select! {
            answer = rx => match answer {
                Ok(outcome) => { guard.done = true; outcome }
                Err(_) => { guard.done = true; Err(Error::Closed) }
            },
            _ = tokio::time::sleep(timeout) => Err(Error::Timeout(timeout)),
            _ = cancellation.cancelled() => Err(Error::Cancelled),
            _ = self.shared.closed.cancelled() => { guard.done = true; Err(Error::Closed) }
        };
        drop(guard);
        outcome
    }

    /// Sends a notification.
    pub async fn notify<N: Notification>(&self, params: &N) -> Result<(), Error> {
        #[cfg(feature = "otel")]
        if let Some(sending) =
            crate::telemetry::client::NotificationSend::start(params, self.protocol_version().as_ref(), || self.wire())
        {
            let outcome = match sending.frame {
                Ok(frame) => self.send_frame(frame).await,
                Err(error) => Err(error.into()),
            };
            sending.operation.sent(&outcome);
            return outcome;
        }
        let frame = jsonrpc::encode_notification(N::METHOD, Some(params))?;
        self.send_frame(frame).await
    }

    /// The transport, as this connection's spans name it.
    #[cfg(feature = "otel")]
    pub(crate) fn wire(&self) -> crate::telemetry::Wire {
        self.shared.wire.get().cloned().unwrap_or_default()
    }

    /// Sends an already-encoded frame.
    pub(crate) async fn send_frame(&self, frame: Vec<u8>) -> Result<(), Error> {
        self.shared.out.send(Outbound::Frame(frame)).await.map_err(|_| Error::Closed)
    }

    fn forget(&self, id: &RequestId) {
        self.shared.pending.forget(id);
    }
}

/// Cleans up a request that ends without an answer (timeout, cancellation, a dropped future) and tells the
/// other side to stop working on it.
struct PendingGuard<'a> {
    peer: &'a Peer,
    id: &'a RequestId,
    done: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.peer.forget(self.id);
        if self.done || self.peer.is_closed() {
            return;
        }
        if let Some(frame) = cancelled_by_sender(self.id) {
            // Best effort: a full queue must not block a drop. The other side bounds its work anyway.
            let _ = self.peer.shared.out.try_send(Outbound::Frame(frame));
        }
    }
}

/// The `notifications/cancelled` frame that tells the other side to stop working on our request `id`.
pub(crate) fn cancelled_by_sender(id: &RequestId) -> Option<Vec<u8>> {
    let params = CancelledParams::new(id.clone(), Some("request cancelled by the sender".into()));
    jsonrpc::encode_notification(CancelledParams::METHOD, Some(&params)).ok()
}

/// What a handler gets with each incoming request.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The request's id.
    pub id: RequestId,
    /// Triggered when the other side cancels the request or the connection closes.
    pub cancellation: CancellationToken,
    /// The connection the request came on.
    pub peer: Peer,
}

impl Inbound {
    /// Whether the request was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }
}
