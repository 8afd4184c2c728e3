//! A client transport that calls an [`McpService`] in memory: each frame the client writes becomes an HTTP
//! request to the service, with the headers the streamable HTTP transport sends, and each message of the
//! response (a JSON body or the events of an SSE stream) comes back as a frame. The HTTP server's own paths
//! (header checks, sessions, streams) run; no socket is opened.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tower_service::Service as _;

use crate::client::http::headers::encode_text;
use crate::client::http::sse::SseDecoder;
use crate::protocol::ProtocolVersion;
use crate::server::http::{McpService, ResponseBody};
use crate::transport::{FrameError, FrameReader, FrameWriter, Transport};

/// Frames on their way back to the client before the service's answers wait.
const CAPACITY: usize = 256;

/// The client's end of an in-memory HTTP connection to `service` (both eras: a modern client's requests
/// carry `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`; a legacy client's carry its session once
/// `initialize` gave it one, and it opens the standalone GET stream after `notifications/initialized`).
///
/// Tool arguments mirrored into `Mcp-Param-*` headers (`x-mcp-header`) are not sent: a tool that declares
/// them answers a header mismatch here.
#[derive(Debug)]
pub struct HttpServiceTransport {
    service: McpService,
}

impl HttpServiceTransport {
    /// Calls `service` for every frame.
    pub fn new(service: McpService) -> HttpServiceTransport {
        HttpServiceTransport { service }
    }
}

impl Transport for HttpServiceTransport {
    type Reader = HttpServiceReader;
    type Writer = HttpServiceWriter;

    fn split(self) -> (HttpServiceReader, HttpServiceWriter) {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let writer = HttpServiceWriter {
            service: self.service,
            tx,
            session: Arc::new(Mutex::new(Session::default())),
            calls: JoinSet::new(),
            streams: HashMap::new(),
        };
        (HttpServiceReader { rx }, writer)
    }
}

/// What a legacy client keeps between requests.
#[derive(Debug, Default)]
struct Session {
    id: Option<String>,
    version: Option<ProtocolVersion>,
    /// The id of the `initialize` request, to read the negotiated revision from its answer.
    initialize: Option<Value>,
}

/// The receiving half of an [`HttpServiceTransport`].
#[derive(Debug)]
pub struct HttpServiceReader {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl FrameReader for HttpServiceReader {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        self.rx.recv().await.map(Ok)
    }
}

/// The sending half of an [`HttpServiceTransport`]. Closing it ends every response stream and a legacy
/// session (`DELETE`).
#[derive(Debug)]
pub struct HttpServiceWriter {
    service: McpService,
    tx: mpsc::Sender<Vec<u8>>,
    session: Arc<Mutex<Session>>,
    /// The responses being read; dropping the writer ends them all.
    calls: JoinSet<()>,
    /// The response stream of each request still running (a modern client cancels by closing it).
    streams: HashMap<String, AbortHandle>,
}

impl FrameWriter for HttpServiceWriter {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        while self.calls.try_join_next().is_some() {}
        self.streams.retain(|_, stream| !stream.is_finished());
        // A frame that is not JSON (a truncation fault, say) goes to the server as it is, to be refused there.
        let message: Value = serde_json::from_slice(frame).unwrap_or(Value::Null);
        let method = message.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
        let id = message.get("id").filter(|_| !method.is_empty()).cloned();
        let version = modern_version(&message);
        if method == "notifications/cancelled"
            && version.is_some()
            && let Some(cancelled) = message.pointer("/params/requestId")
        {
            // The modern revision cancels by closing the request's stream; nothing is sent.
            if let Some(stream) = self.streams.remove(&cancelled.to_string()) {
                stream.abort();
            }
            return Ok(());
        }
        if method == "initialize" {
            lock(&self.session).initialize = id.clone();
        }
        let request = self.post(&message, &method, version.as_ref(), frame.to_vec());
        // Each exchange runs on its own, as over a network: a long call does not hold up the next one.
        let (service, tx, session) = (self.service.clone(), self.tx.clone(), self.session.clone());
        let answer_id = id.clone();
        let exchange = self.calls.spawn(async move {
            let response = call(service, request).await;
            if let Some(id) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                lock(&session).id = Some(id.to_owned());
            }
            read_response(response, answer_id, tx, session).await;
        });
        if let Some(id) = id {
            self.streams.insert(id.to_string(), exchange);
        }
        if method == "notifications/initialized" {
            self.open_get_stream();
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn close(mut self) -> io::Result<()> {
        self.calls.abort_all();
        // A legacy session ends with the client, as the HTTP transport ends it.
        if lock(&self.session).id.is_some() {
            let request = Request::builder().method(Method::DELETE).uri("/mcp").header("host", "localhost");
            let request = self.legacy_headers(request).body(Full::new(Bytes::new())).unwrap_or_default();
            let _ = call(self.service.clone(), request).await;
        }
        Ok(())
    }
}

impl HttpServiceWriter {
    fn post(
        &self,
        message: &Value,
        method: &str,
        modern: Option<&ProtocolVersion>,
        body: Vec<u8>,
    ) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        match modern {
            Some(version) => {
                request = request.header("mcp-protocol-version", version.as_str()).header("mcp-method", method);
                let name = match method {
                    "tools/call" | "prompts/get" => message.pointer("/params/name"),
                    "resources/read" => message.pointer("/params/uri"),
                    _ => None,
                };
                if let Some(name) = name.and_then(Value::as_str) {
                    request = request.header("mcp-name", encode_text(name));
                }
            }
            None => request = self.legacy_headers(request),
        }
        request.body(Full::new(Bytes::from(body))).unwrap_or_default()
    }

    fn legacy_headers(&self, mut request: http::request::Builder) -> http::request::Builder {
        let session = lock(&self.session);
        if let Some(id) = &session.id {
            request = request.header("mcp-session-id", id.as_str());
        }
        if let Some(version) = session.version.as_ref().filter(|v| v.has_version_header()) {
            request = request.header("mcp-protocol-version", version.as_str());
        }
        request
    }

    /// The standalone stream a legacy server sends its unrelated notifications and requests on.
    fn open_get_stream(&mut self) {
        let request = Request::builder()
            .method(Method::GET)
            .uri("/mcp")
            .header("host", "localhost")
            .header("accept", "text/event-stream");
        let request = self.legacy_headers(request).body(Full::new(Bytes::new())).unwrap_or_default();
        let (service, tx, session) = (self.service.clone(), self.tx.clone(), self.session.clone());
        self.calls.spawn(async move {
            let response = call(service, request).await;
            if response.status() == StatusCode::OK {
                read_response(response, None, tx, session).await;
            }
        });
    }
}

async fn call(mut service: McpService, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
    // The service is always ready and never fails.
    let _ =
        std::future::poll_fn(|cx| tower_service::Service::<Request<Full<Bytes>>>::poll_ready(&mut service, cx)).await;
    match service.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The revision a modern request names in its `_meta` (`None` for a legacy message).
fn modern_version(message: &Value) -> Option<ProtocolVersion> {
    let version = message.pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")?;
    serde_json::from_value::<ProtocolVersion>(version.clone()).ok().filter(ProtocolVersion::is_modern)
}

/// Hands every message of `response` to the client; a request the server refused without a JSON-RPC
/// answer gets one, so the client does not wait for nothing.
async fn read_response(
    response: Response<ResponseBody>,
    id: Option<Value>,
    tx: mpsc::Sender<Vec<u8>>,
    session: Arc<Mutex<Session>>,
) {
    let status = response.status();
    let event_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = response.into_body();
    let mut answered = false;
    // Notes what the transport must know of each message on its way through.
    let mut note = |bytes: &[u8]| {
        if let Ok(message) = serde_json::from_slice::<Value>(bytes) {
            if message.get("id").is_some() && message.get("id") == id.as_ref() && message.get("method").is_none() {
                answered = true;
            }
            note_initialized(&session, &message);
        }
    };
    if event_stream {
        let mut events = SseDecoder::new(crate::Limits::default().max_message_bytes);
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(chunk) = frame.into_data() else { continue };
            let Ok(events) = events.feed(&chunk) else { break };
            for event in events.into_iter().filter(|e| !e.data.is_empty()) {
                let data = event.data.into_bytes();
                note(&data);
                if tx.send(data).await.is_err() {
                    return;
                }
            }
        }
    } else {
        let Ok(collected) = body.collect().await;
        let bytes = collected.to_bytes();
        if !bytes.is_empty() {
            note(&bytes);
            let _ = tx.send(bytes.to_vec()).await;
        }
    }
    if let Some(id) = id.filter(|_| !answered && !status.is_success()) {
        let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": format!("HTTP {status}")}});
        let _ = tx.send(error.to_string().into_bytes()).await;
    }
}

/// Reads the negotiated revision from the answer to `initialize`, for the version header of what follows.
fn note_initialized(session: &Mutex<Session>, message: &Value) {
    let mut session = lock(session);
    if session.initialize.is_some() && message.get("id") == session.initialize.as_ref() {
        session.version = message
            .pointer("/result/protocolVersion")
            .and_then(|v| serde_json::from_value::<ProtocolVersion>(v.clone()).ok());
        session.initialize = None;
    }
}

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}
