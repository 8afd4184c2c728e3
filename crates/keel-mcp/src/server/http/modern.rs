//! The stateless path (2026-07-28): check the headers against the body, dispatch directly, answer JSON —
//! or SSE once the handler streams a notification before its result.

use std::sync::Arc;

use crate::engine::{CancellationToken, DropGuard};
use bytes::Bytes;
use futures_util::Stream;
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::body::{self, ResponseBody, sse_event};
use super::shutdown::{StreamStop, shutting_down};
use super::{HttpInner, RequestSlot, ResponseChannel, header};
use crate::engine::{BoxFuture, cancel_on_drop};
use crate::protocol::ErrorObject;
use crate::protocol::Request as _;
use crate::protocol::jsonrpc::{self, Message, RawRequest, RequestId, code};
use crate::protocol::subscriptions::ListenParams;
use crate::server::context::Channel;
use crate::server::dispatch::dispatch;
use crate::server::request::{Caller, HeaderChecks, INSUFFICIENT_SCOPE};

type Outcome = Result<Box<RawValue>, ErrorObject>;

pub(super) async fn post(
    inner: &Arc<HttpInner>,
    parts: Parts,
    message: Message,
    accepts_sse: bool,
    slot: RequestSlot,
) -> Response<ResponseBody> {
    let headers = &parts.headers;
    let request = match message {
        Message::Request(request) => request,
        // The core protocol defines no client notification over stateless HTTP; accept and ignore.
        Message::Notification(_) => return body::empty(StatusCode::ACCEPTED),
        Message::Response(_) => {
            let error = ErrorObject::invalid_request("a 2026-07-28 client sends no responses");
            return body::rpc_error(StatusCode::BAD_REQUEST, None, &error);
        }
    };
    let id = request.id.clone();
    let method_scopes = super::method_scopes(inner, &request.method);
    let checks = match header_checks(headers, &request.method) {
        Ok(checks) => checks,
        Err(error) => return body::rpc_error(StatusCode::BAD_REQUEST, Some(&id), &error),
    };
    let cancellation = CancellationToken::new();
    // Closing the response (the client going away) is the cancellation in this revision.
    let guard = cancellation.clone().drop_guard();
    let (stream, frames) = if accepts_sse && may_stream(&request) {
        let (tx, rx) = mpsc::channel(32);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let channel =
        Arc::new(ResponseChannel { parts, stream, session: None, timeout: inner.server.limits.request_timeout });
    let server = inner.server.clone();
    let call_id = id.clone();
    let stopped = inner.shutdown.stopped().clone();
    let token = cancellation.clone();
    let call: BoxFuture<Outcome> = Box::pin(async move {
        // The slot goes with the handler, so a cancelled one holds it through its grace period too.
        let _slot = slot;
        let call = Caller { id: call_id, cancellation, channel: Channel::Shared(channel) };
        // The shutdown's grace is over: drop the handler. Polled only while the call is pending.
        tokio::select! {
            biased;
            outcome = dispatch(&server, None, request, call, Some(&checks)) => outcome,
            _ = stopped.cancelled() => Err(shutting_down()),
        }
    });
    // The client going away is the only cancellation: the handler sees its token fire and gets a grace period.
    let call: BoxFuture<Outcome> = Box::pin(cancel_on_drop(call, token, inner.server.limits.cancel_grace));
    match start(call, frames).await {
        Started::Done(Err(error)) if error.code == INSUFFICIENT_SCOPE => {
            super::insufficient_scope(inner, &id, &error, method_scopes)
        }
        Started::Done(outcome) => answer_json(&id, outcome),
        Started::Streaming { first, frames, call } => {
            body::sse(stream_call(first, frames, call, id, guard, StreamStop::new(inner)))
        }
    }
}

/// Whether a request can produce anything before its answer. In this revision a handler streams only
/// progress (when the request carries a progress token), log messages (when it sets a log level) and
/// `subscriptions/listen` notifications; every other request is answered as plain JSON without setting up
/// a stream. A false positive (the text appears elsewhere in the params) only costs a channel.
fn may_stream(request: &RawRequest) -> bool {
    request.method == ListenParams::METHOD
        || request.params.as_ref().is_some_and(|p| {
            let text = p.get();
            text.contains("\"progressToken\"") || text.contains("io.modelcontextprotocol/logLevel")
        })
}

/// Reads and checks the standard headers that do not need the body.
fn header_checks(headers: &HeaderMap, method: &str) -> Result<HeaderChecks, ErrorObject> {
    let mismatch = |what: &str| ErrorObject::new(code::HEADER_MISMATCH, what.to_owned());
    let Some(version) = header(headers, "mcp-protocol-version") else {
        return Err(mismatch("missing MCP-Protocol-Version header"));
    };
    match header(headers, "mcp-method").map(str::trim) {
        Some(m) if m == method => {}
        Some(_) => return Err(mismatch("the Mcp-Method header does not match the request body")),
        None => return Err(mismatch("missing Mcp-Method header")),
    }
    let name = match header(headers, "mcp-name") {
        Some(raw) => Some(decode_header_value(raw.trim()).ok_or_else(|| mismatch("invalid Mcp-Name header"))?),
        None => None,
    };
    let params = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("mcp-param-"))
        .map(|(name, value)| {
            let decoded = value.to_str().ok().and_then(|v| decode_header_value(v.trim()));
            (name.as_str().to_owned(), decoded)
        })
        .collect();
    Ok(HeaderChecks { protocol_version: Some(version.trim().to_owned()), name, params })
}

/// Decodes a header value that may be wrapped as `=?base64?…?=` (for values HTTP headers cannot carry).
pub(crate) fn decode_header_value(raw: &str) -> Option<String> {
    use base64::Engine as _;
    match raw.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(raw.to_owned()),
    }
}

/// How a call began: finished before it sent anything, or streaming.
pub(super) enum Started {
    Done(Outcome),
    Streaming { first: Vec<u8>, frames: mpsc::Receiver<Vec<u8>>, call: BoxFuture<Outcome> },
}

/// Runs `call` until it finishes or sends its first frame, whichever comes first.
pub(super) async fn start(mut call: BoxFuture<Outcome>, frames: Option<mpsc::Receiver<Vec<u8>>>) -> Started {
    let Some(mut frames) = frames else { return Started::Done(call.await) };
    tokio::select! {
        biased;
        outcome = &mut call => match frames.try_recv() {
            // It finished, but not before sending something: the answer must follow those messages.
            Ok(first) => Started::Streaming { first, frames, call: Box::pin(std::future::ready(outcome)) },
            Err(_) => Started::Done(outcome),
        },
        Some(first) = frames.recv() => Started::Streaming { first, frames, call },
    }
}

fn answer_json(id: &RequestId, outcome: Outcome) -> Response<ResponseBody> {
    match outcome {
        Ok(result) => body::json(StatusCode::OK, jsonrpc::encode_result(id, &result).expect("raw results encode")),
        Err(error) => body::rpc_error(body::status_for(&error), Some(id), &error),
    }
}

/// The SSE body of a streaming call: its notifications, then its answer. The call runs as the body is
/// read, so dropping the body (the client leaving) drops and cancels it. Every frame the call sent before
/// it returned precedes the answer. A call ended by the shutdown answers in an event that also carries the
/// `retry` hint, so the client reconnects elsewhere.
fn stream_call(
    first: Vec<u8>,
    frames: mpsc::Receiver<Vec<u8>>,
    call: BoxFuture<Outcome>,
    id: RequestId,
    guard: DropGuard,
    stop: StreamStop,
) -> impl Stream<Item = Bytes> + Send {
    struct State {
        first: Option<Vec<u8>>,
        frames: mpsc::Receiver<Vec<u8>>,
        call: BoxFuture<Outcome>,
        id: RequestId,
        stop: StreamStop,
        /// Cancels the call when the body is dropped.
        _guard: DropGuard,
    }
    let state = State { first: Some(first), frames, call, id, stop, _guard: guard };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        if let Some(first) = state.first.take() {
            return Some((sse_event(None, None, &first), Some(state)));
        }
        tokio::select! {
            biased;
            Some(frame) = state.frames.recv() => Some((sse_event(None, None, &frame), Some(state))),
            outcome = &mut state.call => {
                // The call may have queued frames in the very poll that finished it: they go first, in one
                // chunk with the answer.
                let mut chunk = Vec::new();
                while let Ok(frame) = state.frames.try_recv() {
                    chunk.extend_from_slice(&sse_event(None, None, &frame));
                }
                let retry = state.stop.retry_hint();
                let answer = sse_event(None, retry, &jsonrpc::encode_answer(&state.id, &outcome));
                if chunk.is_empty() {
                    return Some((answer, None));
                }
                chunk.extend_from_slice(&answer);
                Some((Bytes::from(chunk), None))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::decode_header_value;

    #[test]
    fn header_values_decode_from_base64_when_wrapped() {
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        assert_eq!(decode_header_value("=?base64?w6lsw6g=?=").as_deref(), Some("élè"));
        assert_eq!(decode_header_value("=?base64?***?="), None);
    }
}
