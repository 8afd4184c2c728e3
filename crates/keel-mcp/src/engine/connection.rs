//! The read loop and write loop of one connection, and the [`Handler`] they dispatch to.

use std::sync::Arc;

use crate::engine::CancellationToken;
use serde_json::value::RawValue;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::BoxFuture;
use super::peer::{Inbound, Outbound, Peer};
use crate::Limits;
use crate::protocol::cancellation::CancelledParams;
use crate::protocol::jsonrpc::{self, ErrorObject, Message, RawNotification, RawRequest};
use crate::protocol::progress::ProgressParams;
use crate::protocol::{Notification, decode_params};
use crate::transport::{FrameError, FrameReader, FrameWriter, Transport};

/// Handles what the other side sends. Implemented by the server and by the client (for server-initiated
/// requests); both can also be driven without a connection (the stateless HTTP path).
pub trait Handler: Send + Sync + 'static {
    /// Answers one request: its raw result, or an error.
    fn handle_request(&self, request: RawRequest, ctx: Inbound) -> BoxFuture<Result<Box<RawValue>, ErrorObject>>;

    /// Whether `method` must be handled before the next message is read (lifecycle requests such as
    /// `initialize`, whose effect later requests depend on). Other requests run concurrently.
    fn is_sequential(&self, method: &str) -> bool {
        let _ = method;
        false
    }

    /// Reacts to one notification. Cancellation and progress are handled by the engine before this.
    fn handle_notification(&self, notification: RawNotification, peer: Peer) -> BoxFuture<()>;
}

/// A running connection: its [`Peer`] handle and the task that drives it.
#[derive(Debug)]
pub struct Connection {
    /// Sends requests and notifications to the other side.
    pub peer: Peer,
    task: JoinHandle<()>,
}

impl Connection {
    /// Waits until the connection has closed and every in-flight request has finished.
    pub async fn finished(self) {
        let _ = self.task.await;
    }
}

/// Starts driving `transport`: incoming requests and notifications go to `handler`.
pub fn serve<T: Transport, H: Handler>(transport: T, handler: Arc<H>, limits: Limits) -> Connection {
    let (reader, writer) = transport.split();
    let (tx, rx) = mpsc::channel(limits.outbound_queue);
    let peer = Peer::new(tx, limits);
    #[cfg(feature = "otel")]
    let _ = peer.shared.wire.set(crate::telemetry::Wire::of(&writer));
    // The connection's tasks stay in the span it was opened in.
    let writer_task = tokio::spawn(write_loop(writer, rx).in_current_span());
    let task = tokio::spawn(read_loop(reader, handler, peer.clone(), writer_task).in_current_span());
    Connection { peer, task }
}

async fn write_loop<W: FrameWriter>(mut writer: W, mut rx: mpsc::Receiver<Outbound>) {
    while let Some(item) = rx.recv().await {
        match item {
            Outbound::Frame(frame) => {
                if let Err(e) = writer.write_frame(&frame).await {
                    tracing::debug!(error = %e, "transport write failed");
                    break;
                }
                // Flush once the queue is drained, so bursts go out in one write.
                if rx.is_empty()
                    && let Err(e) = writer.flush().await
                {
                    tracing::debug!(error = %e, "transport flush failed");
                    break;
                }
            }
            Outbound::Shutdown => break,
        }
    }
    rx.close();
    if let Err(e) = writer.close().await {
        tracing::debug!(error = %e, "transport close failed");
    }
}

async fn read_loop<R: FrameReader, H: Handler>(mut reader: R, handler: Arc<H>, peer: Peer, writer: JoinHandle<()>) {
    let shared = peer.shared.clone();
    // Two bounds: `running` handlers at once, and `admitted` requests (running or waiting for a `running`
    // slot). The loop itself never waits for either: it must go on reading, because the answers to the
    // handlers' own requests (sampling, elicitation) and cancellations arrive on the same stream. Every
    // admitted request holds an `admitted` permit, so taking them all back later waits for the last one.
    let max_running = shared.limits.max_concurrent_requests.clamp(1, u32::MAX as usize / 2);
    let max_admitted = max_running + shared.limits.max_queued_requests.min(u32::MAX as usize / 2);
    let running = Arc::new(Semaphore::new(max_running));
    let admitted = Arc::new(Semaphore::new(max_admitted));
    loop {
        let frame = tokio::select! {
            frame = reader.read_frame() => frame,
            _ = shared.closed.cancelled() => break,
        };
        let bytes = match frame {
            None => break,
            Some(Ok(bytes)) => bytes,
            Some(Err(FrameError::TooLarge { limit })) => {
                let error = ErrorObject::parse_error(format!("message exceeds the {limit}-byte limit"));
                let _ = peer.send_frame(jsonrpc::encode_error(None, &error)).await;
                continue;
            }
            Some(Err(FrameError::Io(e))) => {
                tracing::debug!(error = %e, "transport read failed");
                break;
            }
            Some(Err(FrameError::RequestFailed { id, error })) => {
                shared.pending.fail(&id, error);
                continue;
            }
        };
        if bytes.len() > shared.limits.max_message_bytes {
            let error = ErrorObject::parse_error("message exceeds the size limit");
            let _ = peer.send_frame(jsonrpc::encode_error(None, &error)).await;
            continue;
        }
        if jsonrpc::is_batch(&bytes) {
            let error = ErrorObject::invalid_request("JSON-RPC batches are not supported");
            let _ = peer.send_frame(jsonrpc::encode_error(None, &error)).await;
            continue;
        }
        match Message::decode(&bytes) {
            Ok(Message::Request(request)) => {
                let id = request.id.clone();
                let sequential = handler.is_sequential(&request.method);
                let Ok(permit) = admitted.clone().try_acquire_owned() else {
                    let error = ErrorObject::internal("too many requests in progress; retry later");
                    let _ = peer.send_frame(jsonrpc::encode_error(Some(&id), &error)).await;
                    continue;
                };
                let token = CancellationToken::new();
                let duplicate = {
                    let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
                    let duplicate = in_flight.contains_key(&id);
                    if !duplicate {
                        in_flight.insert(id.clone(), token.clone());
                    }
                    duplicate
                };
                if duplicate {
                    let error = ErrorObject::invalid_request("a request with this id is already in progress");
                    let _ = peer.send_frame(jsonrpc::encode_error(Some(&id), &error)).await;
                    continue;
                }
                let ctx = Inbound { id: id.clone(), cancellation: token.clone(), peer: peer.clone() };
                let future = handler.handle_request(request, ctx);
                let peer = peer.clone();
                // A sequential request runs inline and so needs no running slot: waiting for one here would
                // stop the loop until some handler ends, which may be waiting on an answer behind it.
                let slot = (!sequential).then(|| running.clone());
                let grace = shared.limits.cancel_grace;
                let task = async move {
                    // Cancelled while waiting for a slot: the handler never started and needs no grace.
                    let running = match slot {
                        None => Ok(None),
                        Some(_) if token.is_cancelled() => Err(()),
                        // A free slot is taken at once, without registering a wait on the token.
                        Some(slot) => match slot.clone().try_acquire_owned() {
                            Ok(permit) => Ok(Some(Ok(permit))),
                            Err(_) => tokio::select! {
                                biased;
                                _ = token.cancelled() => Err(()),
                                permit = slot.acquire_owned() => Ok(Some(permit)),
                            },
                        },
                    };
                    // A cancelled handler sees its token fire, gets a grace period, and no answer is sent.
                    let outcome = match running {
                        Ok(_running) => super::run_with_grace(future, token, grace).await,
                        Err(()) => None,
                    };
                    peer.shared.in_flight.lock().expect("in-flight lock").remove(&id);
                    // A cancelled request gets no answer.
                    if let Some(outcome) = outcome {
                        let _ = peer.send_frame(jsonrpc::encode_answer(&id, &outcome)).await;
                    }
                    drop(permit);
                };
                if sequential {
                    task.await;
                } else {
                    tokio::spawn(task.instrument(super::current_span()));
                }
            }
            Ok(Message::Notification(notification)) => {
                #[cfg(feature = "otel")]
                if let Some(operation) = crate::telemetry::server::ServerOperation::received(&notification, &peer) {
                    operation.handled(on_notification(&*handler, notification, &peer)).await;
                    continue;
                }
                on_notification(&*handler, notification, &peer).await
            }
            Ok(Message::Response(response)) => {
                if !shared.pending.resolve(&response.id, response.outcome) {
                    tracing::debug!(id = %response.id, "answer to no pending request");
                }
            }
            Err(e) if e.reply => {
                let _ = peer.send_frame(jsonrpc::encode_error(e.id.as_ref(), &e.error)).await;
            }
            Err(e) => tracing::debug!(error = %e.error, "ignored a malformed response"),
        }
    }
    // Stop taking input; let running handlers finish (a closed stdin still deserves its answers), then
    // fail whatever waits for the other side and close the transport.
    shared.closed.cancel();
    let _ = admitted.acquire_many(max_admitted as u32).await;
    shared.pending.clear();
    let _ = shared.out.send(Outbound::Shutdown).await;
    let _ = writer.await;
}

/// Cancellation and progress go to the engine, every other notification to the handler.
async fn on_notification<H: Handler + ?Sized>(handler: &H, notification: RawNotification, peer: &Peer) {
    match notification.method.as_str() {
        CancelledParams::METHOD => on_cancelled(peer, notification.params.as_deref()),
        ProgressParams::METHOD if on_progress(peer, notification.params.as_deref()) => {}
        _ => handler.handle_notification(notification, peer.clone()).await,
    }
}

fn on_cancelled(peer: &Peer, params: Option<&RawValue>) {
    let Ok(CancelledParams { request_id: Some(id), .. }) = decode_params::<CancelledParams>(params) else { return };
    if let Some(token) = peer.shared.in_flight.lock().expect("in-flight lock").get(&id) {
        token.cancel();
    }
}

/// Routes a progress notification to the callback of the request it belongs to. Returns false when no
/// request of ours asked for it, so the handler sees it.
fn on_progress(peer: &Peer, params: Option<&RawValue>) -> bool {
    decode_params::<ProgressParams>(params).is_ok_and(|p| peer.shared.pending.progress(p))
}
