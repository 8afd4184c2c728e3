//! Response bodies: a whole JSON document, or a server-sent-event stream, and the SSE wire format.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use crate::protocol::ErrorObject;
use crate::protocol::jsonrpc::{RequestId, code, encode_error};

/// The body of every response the MCP service sends.
pub struct ResponseBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Full(b) => f.debug_tuple("ResponseBody::Full").field(&b.as_ref().map(Bytes::len)).finish(),
            Kind::Stream(_) => f.write_str("ResponseBody::Stream"),
        }
    }
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ResponseBody { kind: Kind::Full(Some(bytes.into())) }
    }

    /// An empty body.
    pub fn empty() -> Self {
        ResponseBody { kind: Kind::Full(None) }
    }

    /// A streamed body (already SSE-framed chunks).
    pub fn stream(stream: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        ResponseBody { kind: Kind::Stream(Box::pin(stream)) }
    }

    /// This body, ending at `deadline` if it is a stream (a whole body is left as it is). The stream ends
    /// between two chunks, so the client never sees half an event.
    #[cfg(feature = "resource-server")]
    pub(crate) fn until(self, deadline: std::time::SystemTime) -> Self {
        use futures_util::StreamExt as _;
        match self.kind {
            Kind::Stream(stream) => {
                // Timed on the tokio clock, so that paused time in tests moves it.
                let left = deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default();
                ResponseBody::stream(stream.take_until(tokio::time::sleep(left)))
            }
            whole => ResponseBody { kind: whole },
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(stream) => stream.as_mut().poll_next(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

/// One SSE event: optional id and retry, then the data (a compact JSON message, which has no newlines).
pub(crate) fn sse_event(id: Option<&str>, retry_ms: Option<u64>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    if let Some(retry) = retry_ms {
        out.extend_from_slice(format!("retry: {retry}\n").as_bytes());
    }
    if data.is_empty() {
        // An empty data field primes the client's Last-Event-ID without delivering an event.
        out.extend_from_slice(b"data:\n\n");
    } else {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\n\n");
    }
    Bytes::from(out)
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, bytes: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A response with no body.
pub(crate) fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = status;
    response
}

/// A JSON-RPC error response with an HTTP status.
pub(crate) fn rpc_error(status: StatusCode, id: Option<&RequestId>, error: &ErrorObject) -> Response<ResponseBody> {
    json(status, encode_error(id, error))
}

/// An SSE response.
pub(crate) fn sse(stream: impl Stream<Item = Bytes> + Send + 'static) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::stream(stream));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies must not buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The HTTP status that goes with a JSON-RPC error on the stateless (2026-07-28) path.
pub(crate) fn status_for(error: &ErrorObject) -> StatusCode {
    match error.code {
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        code::INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        crate::server::request::INSUFFICIENT_SCOPE => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_framing() {
        assert_eq!(sse_event(Some("1_2"), None, b"{}"), Bytes::from_static(b"id: 1_2\ndata: {}\n\n"));
        assert_eq!(sse_event(Some("1_0"), Some(500), b""), Bytes::from_static(b"id: 1_0\nretry: 500\ndata:\n\n"));
        assert_eq!(sse_event(None, None, b"{\"a\":1}"), Bytes::from_static(b"data: {\"a\":1}\n\n"));
    }
}
