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

mod connection;
mod era_cache;
mod exchange;
pub mod headers;
pub mod sse;
mod streams;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::CancellationToken;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;

use self::connection::{Inner, State};
use crate::Limits;
use crate::auth::HttpAuth;
use crate::error::Error;
use crate::protocol::Era;
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
