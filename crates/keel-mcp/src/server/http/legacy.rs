//! The session path (2025-11-25 and earlier): `initialize` mints a session; POSTs carry requests,
//! notifications and the client's answers to server requests; responses stream as resumable SSE; GET opens
//! the standalone stream or resumes one with `Last-Event-ID`; DELETE ends the session.

use std::sync::Arc;

use crate::engine::CancellationToken;
use bytes::Bytes;
use futures_util::Stream;
use http::header::HeaderValue;
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use tokio::sync::mpsc;

use super::body::{self, ResponseBody, sse_event};
use super::event_log::{EventLog, parse_event_id};
use super::modern::{Started, start};
use super::session::HttpSession;
use super::{HttpInner, RequestSlot, ResponseChannel, accepts, header};
use crate::engine::{BoxFuture, run_with_grace};
use crate::protocol::cancellation::CancelledParams;
use crate::protocol::jsonrpc::{self, Message, RawRequest, RequestId};
use crate::protocol::{ErrorObject, Notification as _, ProtocolVersion, decode_params};
use crate::server::context::Channel;
use crate::server::dispatch::{Call, dispatch};

const SESSION_HEADER: &str = "mcp-session-id";

pub(super) async fn initialize(inner: &Arc<HttpInner>, parts: &Arc<Parts>, message: Message) -> Response<ResponseBody> {
    let headers = &parts.headers;
    let Message::Request(request) = message else { unreachable!("only requests have a method named initialize") };
    if header(headers, "mcp-protocol-version").is_some_and(|v| ProtocolVersion::new(v.to_owned()).is_modern()) {
        // A 2026-07-28 client: `initialize` does not exist in its revision.
        let error = ErrorObject::method_not_found("initialize");
        return body::rpc_error(StatusCode::NOT_FOUND, Some(&request.id), &error);
    }
    let limits = &inner.server.limits;
    let Some(session) = inner.sessions.create(limits.max_pending_requests, inner.config.event_store.clone()) else {
        let error = ErrorObject::internal("too many sessions; try again later");
        return body::rpc_error(StatusCode::SERVICE_UNAVAILABLE, Some(&request.id), &error);
    };
    let id = request.id.clone();
    let outcome = run_inline(inner, &session, request, parts).await;
    let mut response = match outcome {
        Ok(result) => body::json(StatusCode::OK, jsonrpc::encode_result(&id, &result).expect("raw results encode")),
        Err(error) => {
            inner.sessions.remove(&session.id);
            return body::rpc_error(StatusCode::OK, Some(&id), &error);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&session.id) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

pub(super) async fn post(
    inner: &Arc<HttpInner>,
    session_id: &str,
    parts: &Arc<Parts>,
    message: Message,
    accepts_sse: bool,
    slot: RequestSlot,
) -> Response<ResponseBody> {
    let headers = &parts.headers;
    let Some(session) = inner.sessions.get(session_id) else { return unknown_session() };
    if let Some(version) = header(headers, "mcp-protocol-version") {
        let version = ProtocolVersion::new(version.to_owned());
        if !inner.server.versions.contains(&version) {
            let error = ErrorObject::invalid_request(format!("unsupported MCP-Protocol-Version {version}"));
            return body::rpc_error(StatusCode::BAD_REQUEST, None, &error);
        }
    }
    match message {
        Message::Request(request) if request.method == "initialize" => {
            let error = ErrorObject::invalid_request("the session is already initialized");
            body::rpc_error(StatusCode::BAD_REQUEST, Some(&request.id), &error)
        }
        Message::Request(request) => call(inner, session, request, parts, accepts_sse, slot).await,
        Message::Notification(notification) => {
            if notification.method == CancelledParams::METHOD
                && let Ok(CancelledParams { request_id: Some(id), .. }) =
                    decode_params::<CancelledParams>(notification.params.as_deref())
                && let Some(token) = session.in_flight.lock().expect("in-flight lock").get(&id)
            {
                token.cancel();
            }
            body::empty(StatusCode::ACCEPTED)
        }
        Message::Response(response) => {
            if !session.pending.resolve(&response.id, response.outcome) {
                tracing::debug!(id = %response.id, "answer to no pending server request");
            }
            body::empty(StatusCode::ACCEPTED)
        }
    }
}

/// Runs one request of a session. It answers JSON when it finishes before sending anything else; once it
/// sends a notification or a request, the answer becomes an SSE stream whose events are logged, so a client
/// that loses the connection can resume it with `Last-Event-ID` without losing events.
async fn call(
    inner: &Arc<HttpInner>,
    session: Arc<HttpSession>,
    request: RawRequest,
    parts: &Arc<Parts>,
    accepts_sse: bool,
    slot: RequestSlot,
) -> Response<ResponseBody> {
    let id = request.id.clone();
    let cancellation = CancellationToken::new();
    session.in_flight.lock().expect("in-flight lock").insert(id.clone(), cancellation.clone());
    let (stream, frames) = if accepts_sse {
        let (tx, rx) = mpsc::channel(32);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let channel =
        ResponseChannel { stream, session: Some(session.clone()), timeout: inner.server.limits.request_timeout };
    let server = inner.server.clone();
    let call_session = session.clone();
    let call_id = id.clone();
    let call_token = cancellation.clone();
    let http_request = Some(parts.clone());
    let dispatched: BoxFuture<Result<Box<serde_json::value::RawValue>, ErrorObject>> = Box::pin(async move {
        let call = Call { id: call_id, cancellation: call_token, channel: Channel::Http(channel), http_request };
        dispatch(&server, Some(&call_session.state), request, call, None).await
    });
    // `notifications/cancelled` (or the client dropping a plain-JSON answer) fires the handler's token first;
    // it gets a grace period, and a cancelled request is answered with nothing.
    let graceful = run_with_grace(dispatched, cancellation.clone(), inner.server.limits.cancel_grace);
    let call: BoxFuture<Result<Box<serde_json::value::RawValue>, ErrorObject>> =
        Box::pin(async move { graceful.await.unwrap_or_else(|| Err(ErrorObject::invalid_request("cancelled"))) });
    match start(call, frames).await {
        Started::Done(outcome) => {
            session.in_flight.lock().expect("in-flight lock").remove(&id);
            if cancellation.is_cancelled() {
                return body::empty(StatusCode::ACCEPTED);
            }
            // Legacy HTTP answers JSON-RPC errors with 200, like results.
            body::json(StatusCode::OK, jsonrpc::encode_answer(&id, &outcome))
        }
        Started::Streaming { first, frames, call } => {
            let log = session.open_stream();
            let priming = priming(inner, &session, &log);
            let body = replay(session.clone(), log.clone(), 0, priming);
            record(&log, first);
            let background = async move {
                finish_in_background(session, log, frames, call, id, cancellation).await;
                drop(slot);
            };
            tokio::spawn(tracing::Instrument::in_current_span(background));
            body::sse(body)
        }
    }
}

/// Keeps a streaming call running even if the client disconnects (a disconnect is not a cancellation in
/// these revisions); everything it sends lands in the stream's log.
async fn finish_in_background(
    session: Arc<HttpSession>,
    log: Arc<EventLog>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut call: BoxFuture<Result<Box<serde_json::value::RawValue>, ErrorObject>>,
    id: RequestId,
    cancellation: CancellationToken,
) {
    let outcome = loop {
        tokio::select! {
            biased;
            Some(frame) = frames.recv() => record(&log, frame),
            outcome = &mut call => break outcome,
        }
    };
    while let Ok(frame) = frames.try_recv() {
        record(&log, frame);
    }
    session.in_flight.lock().expect("in-flight lock").remove(&id);
    if !cancellation.is_cancelled() {
        log.append(jsonrpc::encode_answer(&id, &outcome).into());
    }
    log.finish();
}

/// Logs a frame from the handler; an empty frame is the handler asking to drop the connection
/// ([`RequestContext::close_sse_stream`](crate::server::RequestContext::close_sse_stream)).
fn record(log: &EventLog, frame: Vec<u8>) {
    if frame.is_empty() {
        log.disconnect();
    } else {
        log.append(frame.into());
    }
}

/// The priming event (an id and empty data) that lets a 2025-11-25 client resume from the very start, with
/// the reconnection delay to use (SEP-1699). Older clients get none.
fn priming(inner: &HttpInner, session: &HttpSession, log: &EventLog) -> Option<Bytes> {
    let version = session.state.lock().expect("session lock").version.clone()?;
    (version >= ProtocolVersion::V2025_11_25)
        .then(|| sse_event(Some(&log.event_id(0)), Some(inner.config.sse_retry_ms), b""))
}

/// An SSE body that sends `log`'s events after `cursor` as they come, until the stream or session ends.
fn replay(
    session: Arc<HttpSession>,
    log: Arc<EventLog>,
    cursor: u64,
    priming: Option<Bytes>,
) -> impl Stream<Item = Bytes> + Send {
    struct State {
        session: Arc<HttpSession>,
        log: Arc<EventLog>,
        cursor: u64,
        epoch: u64,
        priming: Option<Bytes>,
        queued: std::collections::VecDeque<(u64, Bytes)>,
        finished: bool,
    }
    let epoch = log.epoch();
    let state = State { session, log, cursor, epoch, priming, queued: Default::default(), finished: false };
    futures_util::stream::unfold(state, |mut state| async move {
        if let Some(priming) = state.priming.take() {
            return Some((priming, state));
        }
        loop {
            if let Some((seq, message)) = state.queued.pop_front() {
                state.cursor = seq;
                let event = sse_event(Some(&state.log.event_id(seq)), None, &message);
                return Some((event, state));
            }
            if state.finished {
                return None;
            }
            let batch = tokio::select! {
                batch = state.log.next_after(state.cursor, state.epoch) => batch,
                _ = state.session.closed.cancelled() => return None,
            };
            state.queued.extend(batch.events);
            state.finished = batch.finished || batch.disconnected;
        }
    })
}

/// Runs a request to completion without streaming (used for `initialize`).
async fn run_inline(
    inner: &HttpInner,
    session: &Arc<HttpSession>,
    request: RawRequest,
    parts: &Arc<Parts>,
) -> Result<Box<serde_json::value::RawValue>, ErrorObject> {
    let channel =
        ResponseChannel { stream: None, session: Some(session.clone()), timeout: inner.server.limits.request_timeout };
    let call = Call {
        id: request.id.clone(),
        cancellation: CancellationToken::new(),
        channel: Channel::Http(channel),
        http_request: Some(parts.clone()),
    };
    dispatch(&inner.server, Some(&session.state), request, call, None).await
}

/// GET: resume a stream with `Last-Event-ID`, or open the session's standalone stream.
pub(super) async fn get(inner: &Arc<HttpInner>, session_id: &str, headers: &HeaderMap) -> Response<ResponseBody> {
    let Some(session) = inner.sessions.get(session_id) else { return unknown_session() };
    if !accepts(headers, "text/event-stream") {
        let error = ErrorObject::invalid_request("GET needs Accept: text/event-stream");
        return body::rpc_error(StatusCode::NOT_ACCEPTABLE, None, &error);
    }
    if let Some(last) = header(headers, "last-event-id") {
        let Some((stream, seq)) = parse_event_id(last.trim()) else {
            let error = ErrorObject::invalid_request("unknown Last-Event-ID");
            return body::rpc_error(StatusCode::BAD_REQUEST, None, &error);
        };
        return match session.stream(stream) {
            Some(log) => body::sse(replay(session, log, seq, None)),
            None => {
                let error = ErrorObject::invalid_request("that stream is no longer available");
                body::rpc_error(StatusCode::NOT_FOUND, None, &error)
            }
        };
    }
    match session.open_standalone() {
        Some(log) => {
            let priming = priming(inner, &session, &log);
            body::sse(replay(session, log, 0, priming))
        }
        None => {
            let error = ErrorObject::invalid_request("the session's standalone stream is already open");
            body::rpc_error(StatusCode::CONFLICT, None, &error)
        }
    }
}

/// DELETE: the client ends its session.
pub(super) fn delete(inner: &Arc<HttpInner>, session_id: &str) -> Response<ResponseBody> {
    if inner.sessions.remove(session_id) { body::empty(StatusCode::OK) } else { unknown_session() }
}

fn unknown_session() -> Response<ResponseBody> {
    let error = ErrorObject::invalid_request("unknown or expired session; initialize a new one");
    body::rpc_error(StatusCode::NOT_FOUND, None, &error)
}
