//! The streamable HTTP client transport, for both eras, with the 2024-11-05 HTTP+SSE transport as a last
//! resort.
//!
//! [`HttpTransport`] is a [`Transport`]: the engine keeps ids, pending requests, timeouts, cancellation
//! and progress, exactly as over stdio; this module turns each outgoing frame into a POST and feeds every
//! message that comes back (a JSON body, or the events of an SSE stream) to the engine's reader.
//!
//! ```no_run
//! use keel_mcp::client::{Client, http::HttpTransport};
//! use keel_mcp::protocol::Implementation;
//!
//! # async fn run() -> Result<(), keel_mcp::Error> {
//! let transport = HttpTransport::new("http://localhost:3000/mcp")?;
//! let client = Client::builder(Implementation::new("my-app", "1.0.0")).connect(transport).await?;
//! println!("{} tools", client.list_all_tools().await?.len());
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! What the transport does per era:
//! - **Modern (2026-07-28)**: headers `MCP-Protocol-Version` (equal to the request's `_meta`), `Mcp-Method`,
//!   `Mcp-Name` and `Mcp-Param-*` for tool arguments annotated with `x-mcp-header`. Tools whose annotations
//!   are invalid are dropped from `tools/list` results (with a warning). A `HeaderMismatch` (-32020) answer
//!   to `tools/call` makes the transport re-list tools and retry once. Cancelling a request closes its
//!   response stream; no notification is sent.
//! - **Legacy (≤ 2025-11-25)**: `Mcp-Session-Id` and `MCP-Protocol-Version` after `initialize`; a 404 for a
//!   session re-runs `initialize` and retries once; the standalone GET stream carries server requests
//!   (404/405 tolerated); SSE streams that end early are resumed with GET + `Last-Event-ID` after the
//!   server's `retry` delay; `DELETE` ends the session on close.
//! - **Era detection** (per the 2026-07-28 versioning rules): the client's modern probe goes first; an HTTP
//!   error without a recognisable JSON-RPC body becomes a generic error, so the client falls back to
//!   `initialize`; if `initialize` also fails that way, the transport tries the HTTP+SSE transport (GET,
//!   expecting an `endpoint` event). The era an origin spoke is cached for the process.
//!
//! Every body is bounded by [`Limits::max_message_bytes`]; authentication goes through [`HttpAuth`].
//!
//! [`Transport`]: crate::transport::Transport
//! [`HttpAuth`]: crate::auth::HttpAuth

mod era_cache;
pub mod headers;
pub mod sse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use self::headers::HeaderParam;
use self::sse::SseDecoder;
use crate::Limits;
use crate::auth::{Challenge, HttpAuth};
use crate::error::Error;
use crate::protocol::jsonrpc::{self, ErrorObject, RequestId, code};
use crate::protocol::{Era, Notification as _, ProtocolVersion};
use crate::transport::{FrameError, FrameReader, FrameWriter, Transport};

/// Authorization attempts per request (the first plus retries after a 401 / 403).
const MAX_AUTH_ATTEMPTS: usize = 3;
/// Reconnections of one SSE stream in a row that bring no event.
const MAX_RECONNECTS: usize = 5;
/// Pages read when the transport re-lists tools after a header mismatch.
const MAX_RELIST_PAGES: usize = 100;
/// The JSON-RPC error code the transport uses for HTTP failures it cannot map to a server error.
const TRANSPORT_ERROR: i64 = -32000;

/// A streamable HTTP connection to one MCP endpoint. See the [module docs](self).
#[derive(Clone)]
pub struct HttpTransport {
    url: reqwest::Url,
    auth: Option<Arc<dyn HttpAuth>>,
    limits: Limits,
    http: Option<reqwest::Client>,
    extra_headers: HeaderMap,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport").field("url", &self.url.as_str()).field("auth", &self.auth.is_some()).finish()
    }
}

impl HttpTransport {
    /// A transport to the MCP endpoint at `url` (`http` or `https`).
    pub fn new(url: &str) -> Result<Self, Error> {
        let url = reqwest::Url::parse(url).map_err(|e| Error::Protocol(format!("invalid server URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Protocol(format!("unsupported URL scheme {:?}", url.scheme())));
        }
        Ok(HttpTransport { url, auth: None, limits: Limits::default(), http: None, extra_headers: HeaderMap::new() })
    }

    /// Supplies credentials: asked before each request, told of each 401 / 403.
    pub fn auth(mut self, auth: Arc<dyn HttpAuth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets the limits (body size, queue depth).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds a header sent with every request (e.g. a static API key).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| Error::Protocol(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| Error::Protocol(e.to_string()))?;
        self.extra_headers.insert(name, value);
        Ok(self)
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The era this endpoint's origin spoke last time in this process, if known.
    pub fn cached_era(&self) -> Option<Era> {
        era_cache::get(&origin(&self.url))
    }
}

/// A shared HTTP client with rustls on the ring provider.
fn default_http_client() -> Result<reqwest::Client, Error> {
    // Whoever installed a provider first wins; ring is ours if nobody did.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Transport(std::io::Error::other(e)))
}

fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

impl Transport for HttpTransport {
    type Reader = HttpReader;
    type Writer = HttpWriter;

    fn split(self) -> (HttpReader, HttpWriter) {
        let (tx, rx) = mpsc::channel(self.limits.outbound_queue);
        let closed = CancellationToken::new();
        let http = match self.http {
            Some(http) => Ok(http),
            None => default_http_client(),
        };
        let inner = Arc::new(Inner {
            origin: origin(&self.url),
            url: self.url,
            auth: self.auth,
            limits: self.limits,
            extra_headers: self.extra_headers,
            http: http.as_ref().ok().cloned(),
            inbound: tx,
            closed: closed.clone(),
            state: Mutex::new(State::default()),
        });
        let startup_error = http.err().map(|e| e.to_string());
        (HttpReader { rx, closed }, HttpWriter { inner, startup_error })
    }
}

/// Messages from the server, in arrival order.
#[derive(Debug)]
pub struct HttpReader {
    rx: mpsc::Receiver<Vec<u8>>,
    closed: CancellationToken,
}

impl FrameReader for HttpReader {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        tokio::select! {
            frame = self.rx.recv() => frame.map(Ok),
            _ = self.closed.cancelled() => None,
        }
    }
}

/// Sends each frame as its own HTTP request.
pub struct HttpWriter {
    inner: Arc<Inner>,
    startup_error: Option<String>,
}

impl std::fmt::Debug for HttpWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWriter").field("url", &self.inner.url.as_str()).finish()
    }
}

impl FrameWriter for HttpWriter {
    async fn write_frame(&mut self, frame: &[u8]) -> std::io::Result<()> {
        if let Some(e) = &self.startup_error {
            return Err(std::io::Error::other(e.clone()));
        }
        self.inner.clone().dispatch(frame.to_vec()).await;
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    async fn close(self) -> std::io::Result<()> {
        self.inner.shutdown().await;
        Ok(())
    }
}

#[derive(Default)]
struct State {
    era: Option<Era>,
    session: Option<String>,
    /// The legacy revision `initialize` agreed on (for the version header).
    version: Option<ProtocolVersion>,
    /// The last `initialize` sent, replayed when the server forgets the session.
    init_frame: Option<Vec<u8>>,
    /// `x-mcp-header` annotations of the tools listed so far.
    tool_headers: HashMap<String, Vec<HeaderParam>>,
    in_flight: HashMap<RequestId, AbortHandle>,
    get_stream: Option<AbortHandle>,
    /// 2024-11-05 HTTP+SSE: where to POST (the `endpoint` event), once known.
    sse_endpoint: Option<reqwest::Url>,
    sse_stream: Option<AbortHandle>,
    next_internal_id: u64,
}

struct Inner {
    url: reqwest::Url,
    origin: String,
    auth: Option<Arc<dyn HttpAuth>>,
    limits: Limits,
    extra_headers: HeaderMap,
    http: Option<reqwest::Client>,
    inbound: mpsc::Sender<Vec<u8>>,
    closed: CancellationToken,
    state: Mutex<State>,
}

/// What an outgoing frame is, read once.
#[derive(Clone, Debug)]
struct Outgoing {
    frame: Vec<u8>,
    id: Option<RequestId>,
    method: Option<String>,
    params: Option<Value>,
}

impl Outgoing {
    fn parse(frame: Vec<u8>) -> Outgoing {
        let value: Value = serde_json::from_slice(&frame).unwrap_or(Value::Null);
        let id = value.get("id").and_then(|v| serde_json::from_value(v.clone()).ok());
        let method = value.get("method").and_then(Value::as_str).map(str::to_owned);
        let params = value.get("params").cloned();
        Outgoing { frame, id, method, params }
    }

    fn is_request(&self) -> bool {
        self.id.is_some() && self.method.is_some()
    }

    fn method(&self) -> &str {
        self.method.as_deref().unwrap_or_default()
    }

    /// The revision named in `_meta` (modern requests carry it).
    fn meta_version(&self) -> Option<ProtocolVersion> {
        let v = self.params.as_ref()?.get("_meta")?.get(crate::protocol::meta::keys::PROTOCOL_VERSION)?;
        Some(ProtocolVersion::new(v.as_str()?.to_owned()))
    }
}

/// How one POST ended, for the request it carried.
enum Exchange {
    /// The answer was delivered (or none is due).
    Done,
    /// The server forgot the session (legacy 404).
    SessionGone,
    /// A JSON-RPC error came back in an HTTP error response; not yet delivered.
    RpcError(ErrorObject),
}

impl Inner {
    fn http(&self) -> &reqwest::Client {
        self.http.as_ref().expect("checked at split")
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("http transport state lock")
    }

    async fn dispatch(self: Arc<Self>, frame: Vec<u8>) {
        let out = Outgoing::parse(frame);
        let method = out.method().to_owned();
        if method == crate::protocol::CancelledParams::METHOD {
            let target = out
                .params
                .as_ref()
                .and_then(|p| p.get("requestId"))
                .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok());
            if let Some(target) = target
                && let Some(handle) = self.state().in_flight.remove(&target)
            {
                // Closing the response stream is how a modern request is cancelled; for a legacy one the
                // notification below tells the server too.
                handle.abort();
            }
            if self.state().era == Some(Era::Modern) {
                return;
            }
        }
        if out.is_request() {
            if out.meta_version().is_some_and(|v| v.is_modern()) {
                self.state().era = Some(Era::Modern);
            }
            if method == "initialize" {
                let mut state = self.state();
                state.era = Some(Era::Legacy);
                state.session = None;
                state.init_frame = Some(out.frame.clone());
            }
            if method == "server/discover" && era_cache::get(&self.origin) == Some(Era::Legacy) {
                // This origin spoke the legacy era last time: skip the probe. The entry is dropped meanwhile;
                // a successful `initialize` records it again, and anything else probes afresh next time.
                era_cache::forget(&self.origin);
                let error = ErrorObject::new(TRANSPORT_ERROR, "legacy server (cached era)");
                self.deliver_error(out.id.as_ref(), error).await;
                return;
            }
            let id = out.id.clone().expect("requests have ids");
            let this = self.clone();
            let task = tokio::spawn(async move {
                let id = out.id.clone();
                if let Err(e) = this.clone().send_request(&out).await {
                    tracing::debug!(method = %out.method(), error = %e, "HTTP request failed");
                    if out.method() == "initialize" || out.method() == "server/discover" {
                        era_cache::forget(&this.origin);
                    }
                    let error = ErrorObject::new(TRANSPORT_ERROR, e.to_string());
                    this.deliver_error(id.as_ref(), error).await;
                }
                if let Some(id) = &id {
                    this.state().in_flight.remove(id);
                }
            });
            self.state().in_flight.insert(id, task.abort_handle());
            return;
        }
        // Notifications and responses: modern servers take none (besides what is handled above).
        if self.state().era == Some(Era::Modern) {
            tracing::debug!(method = %method, "no client-to-server notifications over modern HTTP; dropped");
            return;
        }
        // Sent in order, before whatever the engine writes next: `notifications/initialized` must reach the
        // server (and the standalone stream must be open) before the first request of the session.
        match self.send_one_way(&out, true).await {
            Ok(()) if method == "notifications/initialized" => self.open_get_stream().await,
            Ok(()) => {}
            Err(e) => tracing::debug!(method = %method, error = %e, "HTTP message failed"),
        }
    }

    /// Sends a request and delivers its answer (or an error standing for it).
    async fn send_request(self: Arc<Self>, out: &Outgoing) -> Result<(), Error> {
        let mut reinitialized = false;
        let mut relisted = false;
        loop {
            match self.exchange(out).await? {
                Exchange::Done => return Ok(()),
                Exchange::SessionGone if !reinitialized && out.method() != "initialize" => {
                    reinitialized = true;
                    self.reinitialize().await?;
                }
                Exchange::SessionGone => {
                    return Err(Error::Protocol("the server does not know the session".into()));
                }
                Exchange::RpcError(e)
                    if e.code == code::HEADER_MISMATCH && out.method() == "tools/call" && !relisted =>
                {
                    relisted = true;
                    tracing::debug!("header mismatch; re-listing tools before one retry");
                    self.relist_tools(out).await;
                }
                Exchange::RpcError(e) => {
                    if out.method() == "initialize" || out.method() == "server/discover" {
                        era_cache::forget(&self.origin);
                    }
                    self.deliver_error(out.id.as_ref(), e).await;
                    return Ok(());
                }
            }
        }
    }

    /// One POST of a request and everything it brings back.
    async fn exchange(self: &Arc<Self>, out: &Outgoing) -> Result<Exchange, Error> {
        let response = self.post(out).await?;
        let status = response.status();
        let legacy = self.state().era != Some(Era::Modern);
        if legacy && let Some(session) = session_header(&response) {
            self.state().session = Some(session);
        }
        if status == reqwest::StatusCode::NOT_FOUND && legacy && self.state().session.is_some() {
            return Ok(Exchange::SessionGone);
        }
        if self.state().sse_endpoint.is_some() && status.is_success() {
            // HTTP+SSE: the answer comes on the GET stream.
            return Ok(Exchange::Done);
        }
        if status.is_success() {
            if status == reqwest::StatusCode::ACCEPTED || status == reqwest::StatusCode::NO_CONTENT {
                return Ok(Exchange::Done);
            }
            if is_event_stream(&response) {
                let id = out.id.clone();
                let mut stream = self.read_stream(response, id.as_ref(), out.method()).await;
                // A legacy stream that ends before the answer is resumed, not abandoned.
                let mut attempts = 0;
                while !stream.answered && legacy && attempts < MAX_RECONNECTS {
                    let Some(last_id) = stream.last_id.clone() else { break };
                    attempts += 1;
                    tokio::time::sleep(reconnect_delay(stream.retry, attempts)).await;
                    let resumed = match self.get(Some(&last_id)).await {
                        Ok(r) if r.status().is_success() && is_event_stream(&r) => r,
                        Ok(r) => {
                            tracing::debug!(status = %r.status(), "resuming the stream failed");
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "resuming the stream failed");
                            continue;
                        }
                    };
                    let next = self.read_stream(resumed, id.as_ref(), out.method()).await;
                    if next.events > 0 {
                        attempts = 0;
                    }
                    stream = StreamEnd {
                        answered: next.answered,
                        last_id: next.last_id.or(stream.last_id),
                        retry: next.retry.or(stream.retry),
                        events: next.events,
                    };
                }
                if !stream.answered {
                    return Err(Error::Protocol("the response stream ended without an answer".into()));
                }
                return Ok(Exchange::Done);
            }
            let body = self.read_body(response).await?;
            let answered = out.id.as_ref().is_some_and(|id| answers(&body, id));
            if !body.is_empty() {
                self.deliver(&body, out.method()).await;
            }
            if !answered {
                return Err(Error::Protocol(format!("HTTP {status} without an answer to the request")));
            }
            return Ok(Exchange::Done);
        }
        // An HTTP error. A JSON-RPC error in the body is the server's answer; anything else is not.
        let body = self.read_body(response).await.unwrap_or_default();
        if let Some(error) = rpc_error(&body) {
            return Ok(Exchange::RpcError(error));
        }
        if out.method() == "initialize"
            && matches!(status.as_u16(), 400 | 404 | 405)
            && self.state().sse_endpoint.is_none()
            && self.connect_legacy_sse().await.is_ok()
        {
            let response = self.post(out).await?;
            if response.status().is_success() {
                return Ok(Exchange::Done);
            }
            return Err(Error::Protocol(format!("HTTP {} from the HTTP+SSE endpoint", response.status())));
        }
        Err(Error::Protocol(format!("HTTP {status} from the server")))
    }

    /// Sends a notification or a response (legacy era); expects 202.
    async fn send_one_way(self: &Arc<Self>, out: &Outgoing, renew: bool) -> Result<(), Error> {
        for _ in 0..2 {
            let response = self.post(out).await?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND && renew && self.state().session.is_some() {
                Box::pin(self.reinitialize()).await?;
                continue;
            }
            if status.is_success() {
                return Ok(());
            }
            return Err(Error::Protocol(format!("HTTP {status}")));
        }
        Err(Error::Protocol("the server does not know the session".into()))
    }

    /// POSTs a frame with the headers its era needs, handling 401 / 403 through [`HttpAuth`].
    async fn post(&self, out: &Outgoing) -> Result<reqwest::Response, Error> {
        let target = self.state().sse_endpoint.clone().unwrap_or_else(|| self.url.clone());
        let mut headers = self.base_headers();
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.era_headers(out, &mut headers);
        self.send_with_auth(|| self.http().post(target.clone()).headers(headers.clone()).body(out.frame.clone())).await
    }

    /// A GET for the standalone stream or to resume one (`Last-Event-ID`).
    async fn get(&self, last_event_id: Option<&str>) -> Result<reqwest::Response, Error> {
        let mut headers = self.base_headers();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(id) = last_event_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert("last-event-id", id);
        }
        self.legacy_headers(&mut headers);
        self.send_with_auth(|| self.http().get(self.url.clone()).headers(headers.clone())).await
    }

    async fn send_with_auth(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        let url = self.url.as_str();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = build();
            if let Some(auth) = &self.auth
                && let Some(value) = auth.authorization(url).await?
            {
                let mut value =
                    HeaderValue::from_str(&value).map_err(|_| Error::Protocol("invalid Authorization value".into()))?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            let response = tokio::select! {
                r = request.send() => r.map_err(|e| Error::Transport(std::io::Error::other(e)))?,
                _ = self.closed.cancelled() => return Err(Error::Closed),
            };
            let status = response.status().as_u16();
            if matches!(status, 401 | 403)
                && let Some(auth) = &self.auth
                && attempt < MAX_AUTH_ATTEMPTS
            {
                let www_authenticate = response
                    .headers()
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_owned))
                    .collect();
                if auth.unauthorized(url, Challenge { status, www_authenticate }).await? {
                    continue;
                }
            }
            return Ok(response);
        }
    }

    fn base_headers(&self) -> HeaderMap {
        let mut headers = self.extra_headers.clone();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        headers
    }

    fn legacy_headers(&self, headers: &mut HeaderMap) {
        let state = self.state();
        if let Some(session) = state.session.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert("mcp-session-id", session);
        }
        if let Some(version) = state.version.as_ref().filter(|v| v.has_version_header()) {
            headers.insert("mcp-protocol-version", HeaderValue::from_str(version.as_str()).expect("dates are ASCII"));
        }
    }

    /// Modern: version, method, name and mirrored-parameter headers. Legacy: session and version.
    fn era_headers(&self, out: &Outgoing, headers: &mut HeaderMap) {
        let modern_version = out.meta_version().filter(ProtocolVersion::is_modern);
        let Some(version) = modern_version else {
            self.legacy_headers(headers);
            return;
        };
        let mut put = |name: &str, value: &str| {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        };
        put("mcp-protocol-version", version.as_str());
        put("mcp-method", out.method());
        let params = out.params.as_ref();
        let name = match out.method() {
            "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")).and_then(Value::as_str),
            "resources/read" => params.and_then(|p| p.get("uri")).and_then(Value::as_str),
            _ => None,
        };
        if let Some(name) = name {
            put("mcp-name", &headers::encode_text(name));
        }
        if out.method() == "tools/call"
            && let Some(tool) = name
        {
            let declared = self.state().tool_headers.get(tool).cloned().unwrap_or_default();
            let arguments = params.and_then(|p| p.get("arguments")).and_then(Value::as_object);
            for (header, value) in headers::param_headers(&declared, arguments) {
                put(&header, &value);
            }
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Error> {
        let limit = self.limits.max_message_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(Error::Protocol(format!("response body exceeds {limit} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::Transport(std::io::Error::other(e)))? {
            if body.len() + chunk.len() > limit {
                return Err(Error::Protocol(format!("response body exceeds {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads an SSE response, delivering each message, until it ends or the answer to `id` arrived.
    async fn read_stream(&self, mut response: reqwest::Response, id: Option<&RequestId>, method: &str) -> StreamEnd {
        let mut decoder = SseDecoder::new(self.limits.max_message_bytes);
        let mut end = StreamEnd::default();
        loop {
            let chunk = tokio::select! {
                c = response.chunk() => c,
                _ = self.closed.cancelled() => break,
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "SSE stream broke");
                    break;
                }
            };
            let events = match decoder.feed(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "SSE stream dropped");
                    break;
                }
            };
            for event in events {
                end.events += 1;
                if event.data.trim().is_empty() || !(event.event.is_empty() || event.event == "message") {
                    continue;
                }
                if let Some(id) = id
                    && answers(event.data.as_bytes(), id)
                {
                    end.answered = true;
                }
                self.deliver(event.data.as_bytes(), method).await;
            }
            if end.answered {
                break;
            }
        }
        end.last_id = decoder.last_event_id().map(str::to_owned);
        end.retry = decoder.retry();
        end
    }

    /// Hands a message to the engine, after the transport's own bookkeeping.
    async fn deliver(&self, body: &[u8], method: &str) {
        let body = match self.inspect(body, method) {
            Some(rewritten) => rewritten,
            None => body.to_vec(),
        };
        let _ = self.inbound.send(body).await;
    }

    /// Learns from answers (negotiated version, tool header annotations, era) and drops tools with invalid
    /// `x-mcp-header` annotations. Returns a rewritten message when it changed one.
    fn inspect(&self, body: &[u8], method: &str) -> Option<Vec<u8>> {
        if !matches!(method, "initialize" | "tools/list" | "server/discover") {
            return None;
        }
        let mut message: Value = serde_json::from_slice(body).ok()?;
        let result = message.get_mut("result")?;
        match method {
            "initialize" => {
                let version = result.get("protocolVersion").and_then(Value::as_str)?.to_owned();
                self.state().version = Some(ProtocolVersion::new(version));
                era_cache::set(&self.origin, Era::Legacy);
                None
            }
            "server/discover" => {
                era_cache::set(&self.origin, Era::Modern);
                None
            }
            _ => {
                let tools = result.get_mut("tools")?.as_array_mut()?;
                let before = tools.len();
                let mut state = self.state();
                tools.retain(|tool| {
                    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                    let Some(schema) = tool.get("inputSchema").and_then(Value::as_object) else { return true };
                    match headers::header_params(schema) {
                        Ok(params) => {
                            state.tool_headers.insert(name.to_owned(), params);
                            true
                        }
                        Err(e) => {
                            tracing::warn!(tool = %name, error = %e, "dropping a tool with an invalid x-mcp-header");
                            state.tool_headers.remove(name);
                            false
                        }
                    }
                });
                (tools.len() != before).then(|| serde_json::to_vec(&message).expect("JSON values encode"))
            }
        }
    }

    async fn deliver_error(&self, id: Option<&RequestId>, error: ErrorObject) {
        let _ = self.inbound.send(jsonrpc::encode_error(id, &error)).await;
    }

    /// Re-runs `initialize` (and `notifications/initialized`) after the server forgot the session.
    async fn reinitialize(self: &Arc<Self>) -> Result<(), Error> {
        let frame = self.state().init_frame.clone().ok_or_else(|| Error::Protocol("no session to renew".into()))?;
        {
            let mut state = self.state();
            state.session = None;
            if let Some(get) = state.get_stream.take() {
                get.abort();
            }
        }
        let out = Outgoing::parse(frame);
        let response = self.post(&out).await?;
        if !response.status().is_success() {
            return Err(Error::Protocol(format!("re-initialize failed: HTTP {}", response.status())));
        }
        if let Some(session) = session_header(&response) {
            self.state().session = Some(session);
        }
        // The answer is ours, not the engine's (its request finished long ago); just drain it.
        if !is_event_stream(&response) {
            let body = self.read_body(response).await?;
            self.inspect(&body, "initialize");
        }
        let initialized = jsonrpc::encode_notification::<Value>("notifications/initialized", None)?;
        self.send_one_way(&Outgoing::parse(initialized), false).await.ok();
        Box::pin(self.open_get_stream()).await;
        Ok(())
    }

    /// Fetches `tools/list` again (all pages) to refresh header annotations, with the `_meta` of `call`.
    async fn relist_tools(&self, call: &Outgoing) {
        let meta = call.params.as_ref().and_then(|p| p.get("_meta")).cloned();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_RELIST_PAGES {
            let id = {
                let mut state = self.state();
                state.next_internal_id += 1;
                RequestId::String(format!("keel-relist-{}", state.next_internal_id).into())
            };
            let mut params = serde_json::Map::new();
            if let Some(meta) = &meta {
                params.insert("_meta".into(), meta.clone());
            }
            if let Some(cursor) = cursor.take() {
                params.insert("cursor".into(), Value::String(cursor));
            }
            let Ok(frame) = jsonrpc::encode_request(&id, "tools/list", &params) else { return };
            let out = Outgoing::parse(frame);
            let Ok(response) = self.post(&out).await else { return };
            if !response.status().is_success() || is_event_stream(&response) {
                return;
            }
            let Ok(body) = self.read_body(response).await else { return };
            self.inspect(&body, "tools/list");
            let next = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("result")?.get("nextCursor")?.as_str().map(str::to_owned));
            match next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    /// Opens the standalone GET stream for server-initiated messages (legacy), tolerating servers without
    /// one; waits (briefly) for the response headers so the stream exists before the next request.
    async fn open_get_stream(self: &Arc<Self>) {
        if self.state().sse_endpoint.is_some() || self.closed.is_cancelled() {
            return;
        }
        let first = match tokio::time::timeout(Duration::from_secs(5), self.get(None)).await {
            Ok(Ok(response)) if response.status().is_success() && is_event_stream(&response) => Some(response),
            Ok(Ok(response)) => {
                // 404 / 405: the server offers no standalone stream.
                tracing::debug!(status = %response.status(), "no standalone SSE stream");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "standalone SSE stream failed");
                return;
            }
            Err(_) => None,
        };
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut response = first;
            let mut last_id: Option<String> = None;
            let mut retry = None;
            let mut failures = 0;
            while failures < MAX_RECONNECTS && !this.closed.is_cancelled() {
                let current = match response.take() {
                    Some(r) => r,
                    None => match this.get(last_id.as_deref()).await {
                        Ok(r) if r.status().is_success() && is_event_stream(&r) => r,
                        Ok(r) => {
                            tracing::debug!(status = %r.status(), "standalone SSE stream refused");
                            return;
                        }
                        Err(_) => {
                            failures += 1;
                            tokio::time::sleep(reconnect_delay(retry, failures)).await;
                            continue;
                        }
                    },
                };
                let end = this.read_stream(current, None, "").await;
                last_id = end.last_id.or(last_id);
                retry = end.retry.or(retry);
                failures = if end.events > 0 { 1 } else { failures + 1 };
                tokio::time::sleep(reconnect_delay(retry, failures)).await;
            }
        });
        if let Some(old) = self.state().get_stream.replace(task.abort_handle()) {
            old.abort();
        }
    }

    /// The 2024-11-05 HTTP+SSE transport: GET the URL, wait for the `endpoint` event, then keep reading the
    /// stream for every message while requests are POSTed to the endpoint.
    async fn connect_legacy_sse(self: &Arc<Self>) -> Result<(), Error> {
        let mut headers = self.base_headers();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        let mut response = self.send_with_auth(|| self.http().get(self.url.clone()).headers(headers.clone())).await?;
        if !response.status().is_success() || !is_event_stream(&response) {
            return Err(Error::Protocol("no HTTP+SSE endpoint either".into()));
        }
        let mut decoder = SseDecoder::new(self.limits.max_message_bytes);
        let endpoint = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let chunk = response.chunk().await.ok()??;
                for event in decoder.feed(&chunk).ok()? {
                    if event.event == "endpoint" {
                        return self.url.join(event.data.trim()).ok();
                    }
                }
            }
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Error::Protocol("the SSE stream sent no endpoint event".into()))?;
        if origin(&endpoint) != self.origin {
            return Err(Error::Protocol("the HTTP+SSE endpoint is on another origin".into()));
        }
        self.state().sse_endpoint = Some(endpoint);
        let this = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    c = response.chunk() => c,
                    _ = this.closed.cancelled() => break,
                };
                let Ok(Some(chunk)) = chunk else { break };
                let Ok(events) = decoder.feed(&chunk) else { break };
                for event in events {
                    if (event.event.is_empty() || event.event == "message") && !event.data.trim().is_empty() {
                        this.deliver(event.data.as_bytes(), "").await;
                    }
                }
            }
            // The stream is the connection: when it ends, so does the transport.
            this.closed.cancel();
        });
        self.state().sse_stream = Some(task.abort_handle());
        Ok(())
    }

    /// Ends everything: aborts streams and requests, and ends a legacy session with DELETE.
    async fn shutdown(&self) {
        let (session, tasks) = {
            let mut state = self.state();
            let mut tasks: Vec<AbortHandle> = state.in_flight.drain().map(|(_, h)| h).collect();
            tasks.extend(state.get_stream.take());
            tasks.extend(state.sse_stream.take());
            (state.session.take().filter(|_| state.era == Some(Era::Legacy)), tasks)
        };
        for task in tasks {
            task.abort();
        }
        if let Some(session) = session
            && let Some(http) = &self.http
        {
            let mut headers = self.base_headers();
            if let Ok(value) = HeaderValue::from_str(&session) {
                headers.insert("mcp-session-id", value);
            }
            if let Some(version) = self.state().version.as_ref().filter(|v| v.has_version_header()) {
                headers.insert("mcp-protocol-version", HeaderValue::from_str(version.as_str()).expect("ASCII"));
            }
            let mut request = http.delete(self.url.clone()).headers(headers).timeout(Duration::from_secs(2));
            if let Some(auth) = &self.auth
                && let Ok(Some(value)) = auth.authorization(self.url.as_str()).await
            {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            // 404 / 405 mean there is nothing (more) to end.
            match request.send().await {
                Ok(r) => tracing::debug!(status = %r.status(), "session ended"),
                Err(e) => tracing::debug!(error = %e, "DELETE of the session failed"),
            }
        }
        self.closed.cancel();
    }
}

#[derive(Default)]
struct StreamEnd {
    answered: bool,
    last_id: Option<String>,
    retry: Option<u64>,
    events: usize,
}

fn session_header(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get("mcp-session-id")?.to_str().ok()?;
    // Visible ASCII only, as the spec requires.
    (!value.is_empty() && value.bytes().all(|b| (0x21..=0x7e).contains(&b))).then(|| value.to_owned())
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}

/// Whether `message` is the response to request `id`.
fn answers(message: &[u8], id: &RequestId) -> bool {
    #[derive(serde::Deserialize)]
    struct Peek {
        id: Option<RequestId>,
        method: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Peek>(message).is_ok_and(|p| p.method.is_none() && p.id.as_ref() == Some(id))
}

/// The JSON-RPC error in an HTTP error body, if there is one.
fn rpc_error(body: &[u8]) -> Option<ErrorObject> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: ErrorObject,
    }
    serde_json::from_slice::<Body>(body).ok().map(|b| b.error)
}

/// The server's `retry` when it gave one (honoured exactly); otherwise exponential backoff from 500 ms,
/// capped at 30 s, with up to 25 % jitter.
fn reconnect_delay(retry: Option<u64>, attempt: usize) -> Duration {
    if let Some(ms) = retry {
        return Duration::from_millis(ms);
    }
    let base = 500u64.saturating_mul(1 << attempt.min(6)).min(30_000);
    let mut bytes = [0u8; 2];
    let jitter = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from(u16::from_le_bytes(bytes)) * (base / 4) / u64::from(u16::MAX),
        Err(_) => 0,
    };
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_is_honoured_exactly_and_backoff_is_bounded() {
        assert_eq!(reconnect_delay(Some(500), 3), Duration::from_millis(500));
        let d = reconnect_delay(None, 1);
        assert!(d >= Duration::from_millis(1000) && d <= Duration::from_millis(1250));
        assert!(reconnect_delay(None, 50) <= Duration::from_millis(37_500));
    }

    #[test]
    fn answers_and_errors_are_recognised() {
        let id = RequestId::Number(3);
        assert!(answers(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#, &id));
        assert!(!answers(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#, &id));
        assert!(!answers(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#, &id));
        let e = rpc_error(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32022,"message":"x"}}"#).unwrap();
        assert_eq!(e.code, -32022);
        assert!(rpc_error(b"Not Found").is_none());
    }
}
