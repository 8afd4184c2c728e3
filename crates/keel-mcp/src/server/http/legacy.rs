//! The session path (2025-11-25 and earlier): `initialize` mints a session; POSTs carry requests,
//! notifications and the client's answers to server requests; responses stream as resumable SSE; GET opens
//! the standalone stream or resumes one with `Last-Event-ID`; DELETE ends the session.
//!
//! What a client can make a session hold is bounded: requests in flight
//! ([`HttpConfig::max_requests_per_session`](super::HttpConfig::max_requests_per_session)), their ids
//! ([`MAX_REQUEST_ID_BYTES`]), what `initialize` leaves behind ([`MAX_CAPABILITIES_BYTES`], a trimmed
//! `clientInfo`), and streams nobody reads
//! ([`HttpConfig::stream_resume_grace`](super::HttpConfig::stream_resume_grace)).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::engine::CancellationToken;
use bytes::Bytes;
use futures_util::Stream;
use http::header::HeaderValue;
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::body::{self, ResponseBody, sse_event};
use super::bus::Kind;
use super::event_log::{EventLog, Reader, parse_event_id};
use super::modern::{Started, start};
use super::session::{Busy, Found, HttpSession, InFlight, lock};
use super::session_owner::{self, SessionOwner};
use super::session_store::{SessionRecord, SessionStore, SessionUpdate, StoreError};
use super::shutdown::{StreamStop, shutting_down};
use super::{HttpInner, RequestSlot, ResponseChannel, accepts, header, unavailable};
use crate::engine::{BoxFuture, run_with_grace};
use crate::protocol::cancellation::CancelledParams;
use crate::protocol::jsonrpc::{self, Message, RawRequest, RequestId};
use crate::protocol::{ErrorObject, Implementation, Notification as _, ProtocolVersion, decode_params};
use crate::server::context::Channel;
use crate::server::dispatch::dispatch;
use crate::server::peer_addr::PeerAddr;
use crate::server::principal::Principal;
use crate::server::request::{Caller, INSUFFICIENT_SCOPE};

const SESSION_HEADER: &str = "mcp-session-id";

/// Longest request id a session accepts, in bytes (a string id's UTF-8). A running request's id is kept
/// until it ends, so a longer one is refused with -32600 instead of being held.
pub(crate) const MAX_REQUEST_ID_BYTES: usize = 256;

/// Largest `capabilities` object an `initialize` may declare, in bytes of JSON; a session keeps it for its
/// whole life. Larger ones are refused with -32602.
pub(crate) const MAX_CAPABILITIES_BYTES: usize = 4 * 1024;

/// Most JSON values (objects, arrays, scalars) in `capabilities`: parsed, each costs far more than its
/// bytes, so the byte cap alone would not bound what a session holds. More are refused with -32602.
pub(crate) const MAX_CAPABILITIES_VALUES: usize = 128;

/// Longest `clientInfo` text field (name, version, title) a session keeps, in bytes; longer ones are cut.
/// The other fields (icons, description, website) are not kept.
const MAX_CLIENT_INFO_FIELD_BYTES: usize = 256;

/// Longest session id looked up in a shared [`SessionStore`], in bytes (Keel's own are 49 at most); a
/// longer one is unknown without asking the store.
const MAX_SESSION_ID_BYTES: usize = 64;

/// What a 503 says when the shared session store cannot be reached.
const STORE_UNAVAILABLE: &str = "the session store is unavailable; retry shortly";

type Outcome = Result<Box<RawValue>, ErrorObject>;

pub(super) async fn initialize(inner: &Arc<HttpInner>, parts: Parts, message: Message) -> Response<ResponseBody> {
    let Message::Request(request) = message else {
        // A notification (no id) named `initialize`: nothing to answer, nothing to start.
        let error = ErrorObject::invalid_request("initialize must be a request with an id");
        return body::rpc_error(StatusCode::BAD_REQUEST, None, &error);
    };
    if let Some(refusal) = oversized_id(&request.id) {
        return refusal;
    }
    if header(&parts.headers, "mcp-protocol-version").is_some_and(|v| ProtocolVersion::new(v.to_owned()).is_modern()) {
        // A 2026-07-28 client: `initialize` does not exist in its revision.
        let error = ErrorObject::method_not_found("initialize");
        return body::rpc_error(StatusCode::NOT_FOUND, Some(&request.id), &error);
    }
    if let Err(error) = check_retained_size(request.params.as_deref()) {
        return body::rpc_error(StatusCode::BAD_REQUEST, Some(&request.id), &error);
    }
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
    let principal = parts.extensions.get::<Arc<Principal>>().cloned();
    let client_only = parts.extensions.get::<crate::server::principal::ClientOnlyOwners>().is_some();
    if principal.as_deref().is_some_and(|p| !SessionOwner::can_own(p, client_only)) {
        // Bound to (issuer, no subject, client), the session would be open to every other user of the client.
        let error = ErrorObject::invalid_request(
            "the access token names no subject, so no session can be bound to it; use the 2026-07-28 \
             protocol (no sessions) or a token with `sub`",
        );
        return body::rpc_error(StatusCode::FORBIDDEN, Some(&request.id), &error);
    }
    let session = inner.sessions.create(peer, principal, inner.server.limits.max_pending_requests, &inner.config);
    let id = request.id.clone();
    let outcome = run_inline(inner, &session, request, parts).await;
    if let Err(error) = &outcome {
        inner.sessions.remove(&session.id);
        return body::rpc_error(StatusCode::OK, Some(&id), error);
    }
    trim_client_info(&mut lock(&session.state).client_info);
    if let Some(store) = &inner.config.session_store
        && let Err(error) = save(&**store, inner, &session).await
    {
        inner.sessions.remove(&session.id);
        return store_unavailable(&error);
    }
    let mut response = body::json(StatusCode::OK, jsonrpc::encode_answer(&id, &outcome));
    if let Ok(value) = HeaderValue::from_str(&session.id) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// Refuses an `initialize` whose `capabilities` a session could not keep within [`MAX_CAPABILITIES_BYTES`]
/// and [`MAX_CAPABILITIES_VALUES`]. Only sizes are read here; the params are decoded (and checked) by
/// dispatch.
fn check_retained_size(params: Option<&RawValue>) -> Result<(), ErrorObject> {
    #[derive(serde::Deserialize)]
    struct Sizes<'a> {
        #[serde(borrow, default)]
        capabilities: Option<&'a RawValue>,
    }
    let Some(capabilities) =
        params.and_then(|p| serde_json::from_str::<Sizes<'_>>(p.get()).ok()).and_then(|s| s.capabilities)
    else {
        return Ok(());
    };
    let size = capabilities.get().len();
    if size > MAX_CAPABILITIES_BYTES {
        return Err(ErrorObject::invalid_params(format!(
            "capabilities take {size} bytes; at most {MAX_CAPABILITIES_BYTES} are accepted"
        )));
    }
    // Small enough to parse twice; dispatch reports what does not parse.
    let values = serde_json::from_str::<serde_json::Value>(capabilities.get()).map_or(0, |v| count_values(&v));
    if values > MAX_CAPABILITIES_VALUES {
        return Err(ErrorObject::invalid_params(format!(
            "capabilities hold {values} JSON values; at most {MAX_CAPABILITIES_VALUES} are accepted"
        )));
    }
    Ok(())
}

fn count_values(value: &serde_json::Value) -> usize {
    1 + match value {
        serde_json::Value::Array(items) => items.iter().map(count_values).sum(),
        serde_json::Value::Object(members) => members.values().map(count_values).sum(),
        _ => 0,
    }
}

/// Keeps only the identifying text of `clientInfo`, each field cut to [`MAX_CLIENT_INFO_FIELD_BYTES`].
fn trim_client_info(info: &mut Option<Implementation>) {
    if let Some(full) = info.take() {
        let mut kept = Implementation::new(truncated(full.name), truncated(full.version));
        kept.title = full.title.map(truncated);
        *info = Some(kept);
    }
}

fn truncated(mut text: String) -> String {
    if text.len() > MAX_CLIENT_INFO_FIELD_BYTES {
        let mut end = MAX_CLIENT_INFO_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.shrink_to_fit();
    }
    text
}

/// The -32600 answer to a request whose id is longer than [`MAX_REQUEST_ID_BYTES`] (not echoed back).
fn oversized_id(id: &RequestId) -> Option<Response<ResponseBody>> {
    let RequestId::String(text) = id else { return None };
    (text.len() > MAX_REQUEST_ID_BYTES).then(|| {
        let error = ErrorObject::invalid_request(format!("request ids are limited to {MAX_REQUEST_ID_BYTES} bytes"));
        body::rpc_error(StatusCode::BAD_REQUEST, None, &error)
    })
}

pub(super) async fn post(
    inner: &Arc<HttpInner>,
    session_id: &str,
    parts: Parts,
    message: Message,
    accepts_sse: bool,
    slot: RequestSlot,
) -> Response<ResponseBody> {
    let session = match resolve(inner, session_id, &parts.extensions).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let headers = &parts.headers;
    if let Some(version) = header(headers, "mcp-protocol-version") {
        let version = ProtocolVersion::new(version.to_owned());
        if !inner.server.versions.contains(&version) {
            let error = ErrorObject::invalid_request(format!("unsupported MCP-Protocol-Version {version}"));
            return body::rpc_error(StatusCode::BAD_REQUEST, None, &error);
        }
    }
    match message {
        Message::Request(request) => {
            if let Some(refusal) = oversized_id(&request.id) {
                return refusal;
            }
            if request.method == "initialize" {
                let error = ErrorObject::invalid_request("the session is already initialized");
                return body::rpc_error(StatusCode::BAD_REQUEST, Some(&request.id), &error);
            }
            call(inner, session, request, parts, accepts_sse, slot).await
        }
        Message::Notification(notification) => {
            #[cfg(feature = "otel")]
            let operation = crate::telemetry::server::ServerOperation::received_over_http(
                &notification,
                &parts,
                &session.id,
                &session.state,
            );
            if notification.method == "notifications/initialized" {
                session.mark_initialized();
            } else if notification.method == CancelledParams::METHOD
                && let Ok(CancelledParams { request_id: Some(id), .. }) =
                    decode_params::<CancelledParams>(notification.params.as_deref())
                && !session.cancel(&id)
                && let Some(bus) = &session.bus
                && let Ok(frame) =
                    jsonrpc::encode_notification(CancelledParams::METHOD, Some(&serde_json::json!({"requestId": id})))
            {
                // The call may run on another instance.
                bus.publish(Kind::Cancel, &session.id, Some(&frame));
            }
            #[cfg(feature = "otel")]
            if let Some(operation) = operation {
                operation.done();
            }
            body::empty(StatusCode::ACCEPTED)
        }
        Message::Response(response) => {
            let id = response.id;
            match &session.bus {
                // Another instance's request (its number is in the id's high bits): pass the answer on.
                Some(bus) if bus.issued_elsewhere(&id) && !session.pending.has(&id) => {
                    bus.publish(Kind::Answer, &session.id, Some(&jsonrpc::encode_answer(&id, &response.outcome)));
                }
                _ => {
                    if !session.pending.resolve(&id, response.outcome) {
                        tracing::debug!(%id, "answer to no pending server request");
                    }
                }
            }
            body::empty(StatusCode::ACCEPTED)
        }
    }
}

/// Runs one request of a session. It answers JSON when it finishes before sending anything else; once it
/// sends a notification or a request, the answer becomes an SSE stream whose events are logged, so a client
/// that loses the connection can resume it with `Last-Event-ID` without losing events.
///
/// A client that hangs up frees what it held: the running call (and its in-flight entry) at once on the
/// JSON path, and on the SSE path once no client has read the stream for
/// [`HttpConfig::stream_resume_grace`](super::HttpConfig::stream_resume_grace). The request slot goes with
/// the call on the JSON path (a cancelled handler holds it through its grace period); a stream's body holds
/// it, so a hang-up frees it at once (the call runs on for a client that resumes).
async fn call(
    inner: &Arc<HttpInner>,
    session: Arc<HttpSession>,
    request: RawRequest,
    parts: Parts,
    accepts_sse: bool,
    slot: RequestSlot,
) -> Response<ResponseBody> {
    let id = request.id.clone();
    let method_scopes = super::method_scopes(inner, &request.method);
    let in_flight = match session.begin(&id) {
        Ok(in_flight) => in_flight,
        Err(Busy::Full) => {
            let error = ErrorObject::internal("too many requests in progress in this session; retry shortly");
            let mut response = body::rpc_error(StatusCode::TOO_MANY_REQUESTS, Some(&id), &error);
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(Busy::DuplicateId) => {
            let error = ErrorObject::invalid_request("a request with this id is still running in this session");
            return body::rpc_error(StatusCode::BAD_REQUEST, Some(&id), &error);
        }
    };
    let (stream, frames) = if accepts_sse {
        let (tx, rx) = mpsc::channel(32);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let channel = Arc::new(ResponseChannel {
        parts,
        stream,
        session: Some(session.clone()),
        timeout: inner.server.limits.request_timeout,
    });
    let server = inner.server.clone();
    let call_session = session.clone();
    let call_id = id.clone();
    let call_token = in_flight.cancellation.clone();
    let stop = StreamStop::new(inner);
    // Shared by the call and, once it streams, the stream's body, which takes the slot over.
    let slot = Arc::new(std::sync::Mutex::new(Some(slot)));
    let held = slot.clone();
    // Other instances see what this request changes in the session once it is saved, before the answer.
    let saves = inner.config.session_store.is_some() && changes_record(&request.method);
    let save_to = saves.then(|| inner.clone());
    let dispatched: BoxFuture<Outcome> = Box::pin(async move {
        let _slot = held;
        // What the copy was before the change: the revision first, so that a copy restored meanwhile is
        // seen as stale rather than overwritten.
        let before = save_to.is_some().then(|| (call_session.revision.load(Ordering::Relaxed), call_session.record()));
        let call = Caller { id: call_id, cancellation: call_token, channel: Channel::Shared(channel) };
        let outcome = tokio::select! {
            biased;
            outcome = dispatch(&server, Some(&call_session.state), request, call, None) => outcome,
            _ = stop.fired() => Err(shutting_down()),
        };
        if let Some(inner) = save_to
            && let Some(before) = before
            && outcome.is_ok()
            && let Some(store) = &inner.config.session_store
        {
            save_change(&**store, &inner, &call_session, before).await?;
        }
        outcome
    });
    // `notifications/cancelled` (or the client dropping a plain-JSON answer) fires the handler's token first;
    // it gets a grace period, and a cancelled request is answered with nothing.
    let graceful = run_with_grace(dispatched, in_flight.cancellation.clone(), inner.server.limits.cancel_grace);
    let call: BoxFuture<Outcome> =
        Box::pin(async move { graceful.await.unwrap_or_else(|| Err(ErrorObject::invalid_request("cancelled"))) });
    match start(call, frames).await {
        Started::Done(outcome) => {
            if in_flight.cancellation.is_cancelled() {
                return body::empty(StatusCode::ACCEPTED);
            }
            // Refused for a missing scope: an HTTP-level refusal the client can step up on, in this era too.
            if let Err(error) = &outcome
                && error.code == INSUFFICIENT_SCOPE
            {
                return super::insufficient_scope(inner, &id, error, method_scopes);
            }
            // Legacy HTTP answers JSON-RPC errors with 200, like results.
            body::json(StatusCode::OK, jsonrpc::encode_answer(&id, &outcome))
        }
        Started::Streaming { first, frames, call } => {
            let log = session.open_stream();
            let priming = priming(inner, &session, &log);
            let slot = lock(&slot).take();
            let body = replay(session, log.attach(false), 0, priming, slot, StreamStop::new(inner));
            record(&log, first).await;
            let grace = inner.config.stream_resume_grace;
            let counted = inner.shutdown.streamed_call();
            let background = async move {
                finish_in_background(log, frames, call, id, in_flight, grace).await;
                drop(counted);
            };
            tokio::spawn(tracing::Instrument::in_current_span(background));
            body::sse(body)
        }
    }
}

/// Keeps a streaming call running while a client reads its stream or may still resume it (a disconnect
/// alone is not a cancellation in these revisions); everything it sends lands in the stream's log. Once
/// nobody has read the stream for `grace`, the call is cancelled.
async fn finish_in_background(
    log: Arc<EventLog>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut call: BoxFuture<Outcome>,
    id: RequestId,
    in_flight: InFlight,
    grace: std::time::Duration,
) {
    let abandoned = log.abandoned(grace);
    tokio::pin!(abandoned);
    let outcome = loop {
        tokio::select! {
            biased;
            Some(frame) = frames.recv() => record(&log, frame).await,
            outcome = &mut call => break outcome,
            _ = &mut abandoned, if !in_flight.cancellation.is_cancelled() => {
                tracing::debug!(%id, "legacy stream abandoned by its client; cancelling the call");
                in_flight.cancellation.cancel();
            }
        }
    };
    while let Ok(frame) = frames.try_recv() {
        record(&log, frame).await;
    }
    if !in_flight.cancellation.is_cancelled() {
        log.append(jsonrpc::encode_answer(&id, &outcome).into());
    }
    log.finish();
}

/// Logs a frame from the handler; an empty frame is the handler asking to drop the connection
/// ([`RequestContext::close_sse_stream`](crate::server::RequestContext::close_sse_stream)).
async fn record(log: &EventLog, frame: Vec<u8>) {
    if frame.is_empty() {
        log.disconnect().await;
    } else {
        log.append(frame.into());
    }
}

/// The priming event (an id and empty data) that lets a 2025-11-25 client resume from the very start, with
/// the reconnection delay to use (SEP-1699). Older clients get none.
fn priming(inner: &HttpInner, session: &HttpSession, log: &EventLog) -> Option<Bytes> {
    let version = lock(&session.state).version.clone()?;
    (version >= ProtocolVersion::V2025_11_25)
        .then(|| sse_event(Some(&log.event_id(0)), Some(inner.config.sse_retry_ms), b""))
}

/// An SSE body that sends the reader's events after `cursor` as they come, until the stream or session
/// ends. The body owns the reader (and the request slot, when it has one), so the client hanging up
/// detaches it and frees the slot.
fn replay(
    session: Arc<HttpSession>,
    reader: Reader,
    cursor: u64,
    priming: Option<Bytes>,
    slot: Option<RequestSlot>,
    stop: StreamStop,
) -> impl Stream<Item = Bytes> + Send {
    struct State {
        session: Arc<HttpSession>,
        reader: Reader,
        cursor: u64,
        epoch: u64,
        priming: Option<Bytes>,
        queued: std::collections::VecDeque<(u64, Bytes)>,
        finished: bool,
        _slot: Option<RequestSlot>,
        stop: StreamStop,
    }
    let epoch = reader.log().epoch();
    let state = State {
        session,
        reader,
        cursor,
        epoch,
        priming,
        queued: Default::default(),
        finished: false,
        _slot: slot,
        stop,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if let Some(priming) = state.priming.take() {
            return Some((priming, state));
        }
        loop {
            if let Some((seq, message)) = state.queued.pop_front() {
                state.cursor = seq;
                let event = sse_event(Some(&state.reader.log().event_id(seq)), None, &message);
                return Some((event, state));
            }
            if state.finished {
                return None;
            }
            let batch = tokio::select! {
                // What the log already holds goes out before a shutdown ends the stream.
                biased;
                batch = state.reader.log().next_after(state.cursor, state.epoch) => batch,
                _ = state.session.closed.cancelled() => return None,
                // The server is shutting down: tell the client to reconnect (elsewhere).
                _ = state.stop.fired() => {
                    state.finished = true;
                    return Some((state.stop.final_event(), state));
                }
            };
            state.queued.extend(batch.events);
            state.finished = batch.finished || batch.disconnected;
        }
    })
}

/// Runs a request to completion without streaming (used for `initialize`).
async fn run_inline(inner: &HttpInner, session: &Arc<HttpSession>, request: RawRequest, parts: Parts) -> Outcome {
    let channel = Arc::new(ResponseChannel {
        parts,
        stream: None,
        session: Some(session.clone()),
        timeout: inner.server.limits.request_timeout,
    });
    let call =
        Caller { id: request.id.clone(), cancellation: CancellationToken::new(), channel: Channel::Shared(channel) };
    dispatch(&inner.server, Some(&session.state), request, call, None).await
}

/// GET: resume a stream with `Last-Event-ID`, or open the session's standalone stream. The standalone
/// stream ends when its GET does (the client hanging up included), so the client can open another.
pub(super) async fn get(
    inner: &Arc<HttpInner>,
    session_id: &str,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> Response<ResponseBody> {
    let session = match resolve(inner, session_id, extensions).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if !accepts(headers, "text/event-stream") {
        let error = ErrorObject::invalid_request("GET needs Accept: text/event-stream");
        return body::rpc_error(StatusCode::NOT_ACCEPTABLE, None, &error);
    }
    if let Some(last) = header(headers, "last-event-id") {
        let Some((stream, seq)) = parse_event_id(last.trim()) else {
            let error = ErrorObject::invalid_request("unknown Last-Event-ID");
            return body::rpc_error(StatusCode::BAD_REQUEST, None, &error);
        };
        if let Some(log) = session.stream(stream) {
            return body::sse(replay(session, log.attach(false), seq, None, None, StreamStop::new(inner)));
        }
        // Another instance ran the stream (or this one did, and forgot it): the shared store may hold it.
        return match inner.config.event_store.replay(session_id, stream, seq).await {
            Ok(Some(events)) => {
                let grace = inner.config.stream_resume_grace;
                body::sse(replay_remote(session, stream, events, grace, StreamStop::new(inner)))
            }
            Ok(None) => {
                let error = ErrorObject::invalid_request("that stream is no longer available");
                body::rpc_error(StatusCode::NOT_FOUND, None, &error)
            }
            Err(error) => {
                tracing::warn!(%error, "could not resume a stream from the shared event store");
                unavailable("the event store is unavailable; retry shortly")
            }
        };
    }
    match session.open_standalone() {
        Some(log) => {
            let reader = log.attach(true);
            // Other instances send their messages for this stream here once they know it is open.
            if let Err(error) = inner.config.event_store.standalone_opened(session_id, log.number()).await {
                tracing::warn!(%error, "other instances may not know of this standalone stream");
            }
            let priming = priming(inner, &session, &log);
            body::sse(replay(session, reader, 0, priming, None, StreamStop::new(inner)))
        }
        None => {
            let error = ErrorObject::invalid_request("the session's standalone stream is already open");
            body::rpc_error(StatusCode::CONFLICT, None, &error)
        }
    }
}

/// DELETE: the client ends its session, on every instance when sessions are shared. Only the principal
/// that opened a session may end it; for anyone else it does not exist.
pub(super) async fn delete(
    inner: &Arc<HttpInner>,
    session_id: &str,
    extensions: &http::Extensions,
) -> Response<ResponseBody> {
    // Resolving checks the owner (loading the session from a shared store when this instance has no copy).
    if let Err(response) = resolve(inner, session_id, extensions).await {
        return response;
    }
    let here = inner.sessions.remove(session_id);
    let shared = match &inner.config.session_store {
        Some(store) => match store.remove(session_id).await {
            Ok(existed) => existed,
            Err(error) => {
                // The removal may have run though its answer never came, and the retry would then find no
                // session: end the other instances' copies now (idempotent; a session that survived is
                // loaded again by its next request).
                if let Some(bus) = &inner.bus {
                    bus.publish(Kind::Delete, session_id, None);
                }
                return store_unavailable(&error);
            }
        },
        None => false,
    };
    if shared && !here {
        // This instance held no copy whose end would have dropped the session's events.
        inner.config.event_store.remove_session(session_id);
    }
    if shared && let Some(bus) = &inner.bus {
        bus.publish_heard(Kind::Delete, session_id, None).await;
    }
    if here || shared { body::empty(StatusCode::OK) } else { unknown_session() }
}

/// Session `id`, if the request (by its principal) may use it: a session another principal opened looks
/// exactly like an unknown one. `Err` is the response to give instead.
///
/// This process's copy, or, with a shared [`SessionStore`], the stored session taken over. With a store, a
/// session this process holds costs one round trip, which refreshes its expiry and tells whether another
/// instance changed or ended it; with a [`SessionBus`](super::SessionBus) too, only once per
/// [`HttpConfig::session_check_interval`](super::HttpConfig::session_check_interval) while no change is
/// announced (the bus says when another instance changes or ends it). The owner is checked first: another
/// principal's request neither marks a copy held here active nor refreshes the record in the store (it is
/// read with [`SessionStore::read`]), and never makes this process take over a stored session.
async fn resolve(
    inner: &HttpInner,
    id: &str,
    extensions: &http::Extensions,
) -> Result<Arc<HttpSession>, Response<ResponseBody>> {
    let local = match inner.sessions.get(id, |s| session_owner::may_use(s.owner.as_ref(), extensions)) {
        Found::Here(session) => Some(session),
        Found::NotYours => return Err(unknown_session()),
        Found::Absent => None,
    };
    let Some(store) = &inner.config.session_store else { return local.ok_or_else(unknown_session) };
    if id.len() > MAX_SESSION_ID_BYTES {
        return Err(unknown_session());
    }
    let ttl = record_ttl(inner);
    let Some(session) = local else {
        // Read without refreshing its expiry until the owner is known: another principal's request must
        // not keep the session alive.
        let found = match store.read(id, ttl).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(unknown_session()),
            Err(error) => return Err(store_unavailable(&error)),
        };
        if !session_owner::may_use(found.0.principal.as_deref().map(SessionOwner::of_principal).as_ref(), extensions) {
            return Err(unknown_session());
        }
        return match store.load(id, ttl).await {
            // Not marked checked: an announcement made while it was read found no copy here to mark stale,
            // so the copy's next request checks it.
            Ok(Some(found)) => {
                let max_pending = inner.server.limits.max_pending_requests;
                Ok(inner.sessions.adopt(id, found, max_pending, &inner.config))
            }
            Ok(None) => Err(unknown_session()),
            Err(error) => Err(store_unavailable(&error)),
        };
    };
    // Read before the store, so that a subscription lost during the round trip is not trusted after it.
    let epoch = bus_epoch(inner);
    if session.current(epoch, check_interval(inner)) {
        return Ok(session);
    }
    let asked = Instant::now();
    let seen = session.revision.load(std::sync::atomic::Ordering::Relaxed);
    let stored = match store.touch(id, ttl).await {
        Ok(Some(revision)) if revision == seen => {
            session.checked(asked, epoch);
            return Ok(session);
        }
        // Another instance changed the session (log level, subscriptions): take its version.
        Ok(Some(_)) => store.load(id, ttl).await,
        Ok(None) => Ok(None),
        Err(error) => Err(error),
    };
    match stored {
        Ok(Some((record, revision))) => {
            // Not taken when a request here saved a change meanwhile: the next check reads again.
            if session.refresh(record, revision, seen) {
                session.checked(asked, epoch);
            }
            Ok(session)
        }
        // Deleted or expired on another instance.
        Ok(None) => {
            inner.sessions.release(id);
            Err(unknown_session())
        }
        // The session is here: serve it while the store is away.
        Err(error) => {
            tracing::warn!(%error, "session store unreachable; serving this instance's copy");
            Ok(session)
        }
    }
}

/// The state of this instance's session bus subscription, which copies checked against the store are
/// trusted under; `None` without a bus (or while it is down): every request checks.
fn bus_epoch(inner: &HttpInner) -> Option<super::bus::BusEpoch> {
    inner.bus.as_ref()?.epoch()
}

/// How long a copy checked against the store is served without another check: the configured interval,
/// at most a quarter of the idle timeout (the check is what refreshes the record's expiry).
fn check_interval(inner: &HttpInner) -> Duration {
    inner.config.session_check_interval.min(inner.config.session_idle_timeout / 4)
}

/// The time to live of a shared session's record, refreshed at each check of a copy: the idle timeout
/// counted from the session's last use, which may come up to one check interval after the check.
fn record_ttl(inner: &HttpInner) -> Duration {
    let between_checks = if inner.bus.is_some() { check_interval(inner) } else { Duration::ZERO };
    inner.config.session_idle_timeout.saturating_add(between_checks)
}

/// Saves `session`'s record to `store` and notes the revision this copy now reflects.
async fn save(store: &dyn SessionStore, inner: &HttpInner, session: &HttpSession) -> Result<(), StoreError> {
    let (epoch, asked) = (bus_epoch(inner), Instant::now());
    let revision = store.save(&session.id, &session.record(), record_ttl(inner)).await?;
    session.revision.store(revision, std::sync::atomic::Ordering::Relaxed);
    session.checked(asked, epoch);
    Ok(())
}

/// How often a change is re-applied over other instances' changes before the request gives up.
const SAVE_ATTEMPTS: usize = 8;

/// Saves the change a request made to `session` (from `before`, at its revision, to what the copy holds
/// now) over the shared record: never over a record another instance changed since (that one is loaded and
/// the change re-applied to it), and never bringing back a session deleted or expired meanwhile.
async fn save_change(
    store: &dyn SessionStore,
    inner: &HttpInner,
    session: &HttpSession,
    (mut revision, before): (u64, SessionRecord),
) -> Result<(), ErrorObject> {
    let ttl = record_ttl(inner);
    let after = session.record();
    let mut record = after.clone();
    let (seen, mut reapplied) = (revision, false);
    let unsaved = |error: StoreError| {
        tracing::warn!(%error, "the session's change was not saved to the shared store");
        ErrorObject::internal(STORE_UNAVAILABLE)
    };
    for _ in 0..SAVE_ATTEMPTS {
        let current = match store.update(&session.id, &record, revision, ttl).await.map_err(unsaved)? {
            SessionUpdate::Saved(saved) => {
                if !reapplied {
                    // Saved over what the copy held: the copy has the change already, and whatever
                    // another request here changed since, which taking `record` would undo.
                    session.saved(seen, saved);
                } else {
                    // Re-applied over another instance's change, which the copy lacks.
                    session.refresh(record, saved, seen);
                }
                if let Some(bus) = &inner.bus {
                    bus.publish_heard(Kind::Changed, &session.id, Some(saved.to_string().as_bytes())).await;
                }
                return Ok(());
            }
            SessionUpdate::Stale => store.load(&session.id, ttl).await.map_err(unsaved)?,
            SessionUpdate::Gone => None,
        };
        let Some((current, current_revision)) = current else {
            // Deleted or expired on another instance while the request ran (this copy goes at the session's
            // next request, which finds it gone: releasing it here would cancel this very request).
            return Err(ErrorObject::invalid_request(UNKNOWN_SESSION));
        };
        record = reapply(&before, &after, current);
        revision = current_revision;
        reapplied = true;
    }
    Err(unsaved(StoreError::new("other instances kept changing the record")))
}

/// `current` with the change from `before` to `after` made to it: the log level and the subscriptions a
/// request set, over what another instance saved meanwhile.
fn reapply(before: &SessionRecord, after: &SessionRecord, mut current: SessionRecord) -> SessionRecord {
    if after.log_level != before.log_level {
        current.log_level = after.log_level;
    }
    let (was, is): (HashSet<&String>, HashSet<&String>) =
        (before.subscriptions.iter().collect(), after.subscriptions.iter().collect());
    current.subscriptions.retain(|uri| !was.contains(uri) || is.contains(uri));
    for &uri in is.difference(&was) {
        if !current.subscriptions.contains(uri) {
            current.subscriptions.push(uri.clone());
        }
    }
    current
}

/// Whether a successful request of `method` changes what a session's shared record holds.
fn changes_record(method: &str) -> bool {
    matches!(method, "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe")
}

fn store_unavailable(error: &StoreError) -> Response<ResponseBody> {
    tracing::warn!(%error, "legacy session refused: the shared session store is unavailable");
    unavailable(STORE_UNAVAILABLE)
}

/// An SSE body relaying the events of stream `stream` that another instance ran, read from the shared
/// event store, until that stream or the session ends. While the client reads, the instance running the
/// stream's call hears so on the bus every half `grace`, and once more when the relay ends (the store may end
/// it before the stream: the Redis one after 10 s without an event), so that it does not cancel the call
/// as abandoned while the client comes back within `grace`.
fn replay_remote(
    session: Arc<HttpSession>,
    stream: u64,
    events: super::RemoteEvents,
    grace: std::time::Duration,
    stop: StreamStop,
) -> impl Stream<Item = Bytes> + Send {
    struct State {
        session: Arc<HttpSession>,
        stream: u64,
        events: super::RemoteEvents,
        reading: tokio::time::Interval,
        stop: StreamStop,
        finished: bool,
    }
    // The first tick is at once: the running instance may be close to giving up.
    let mut reading = tokio::time::interval((grace / 2).max(std::time::Duration::from_millis(1)));
    reading.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State { session, stream, events, reading, stop, finished: false };
    futures_util::stream::unfold(state, |mut state| async move {
        use futures_util::StreamExt as _;
        if state.finished {
            return None;
        }
        loop {
            tokio::select! {
                // First: a relay that always has events ready must still say it reads.
                biased;
                _ = state.reading.tick() => {
                    if let Some(bus) = &state.session.bus {
                        bus.publish(Kind::Reading, &state.session.id, Some(state.stream.to_string().as_bytes()));
                    }
                }
                event = state.events.next() => {
                    let Some((seq, message)) = event else {
                        // The relay ended, at the stream's end or, say, after a silent while: the client
                        // resumes again after its retry delay, and has a whole grace from now to do so.
                        if let Some(bus) = &state.session.bus {
                            bus.publish(Kind::Reading, &state.session.id, Some(state.stream.to_string().as_bytes()));
                        }
                        return None;
                    };
                    let event = sse_event(Some(&format!("{}_{seq}", state.stream)), None, &message);
                    return Some((event, state));
                }
                _ = state.session.closed.cancelled() => return None,
                _ = state.stop.fired() => {
                    state.finished = true;
                    return Some((state.stop.final_event(), state));
                }
            }
        }
    })
}

/// What a request naming a session nobody holds gets.
const UNKNOWN_SESSION: &str = "unknown or expired session; initialize a new one";

fn unknown_session() -> Response<ResponseBody> {
    let error = ErrorObject::invalid_request(UNKNOWN_SESSION);
    body::rpc_error(StatusCode::NOT_FOUND, None, &error)
}
