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
//!   expecting an `endpoint` event). The era an origin spoke is cached for the process; a cached legacy era
//!   skips the probe once, and the client probes after all when `initialize` then fails or when it speaks
//!   modern revisions only.
//!
//! Every body is bounded by [`Limits::max_message_bytes`]; authentication goes through [`HttpAuth`]. An
//! [`HttpObserver`] ([`HttpTransport::observer`]) sees each request, response head and SSE event id as it
//! happens, with credentials redacted, for wire traces.
//!
//! **Errors.** A server that cannot be reached (connection refused, DNS, TLS, a connect timeout) or a
//! connection that breaks fails the request with [`Error::Transport`]; a 401 or 403 that [`HttpAuth`] could
//! not fix (or any 401 / 403 without it) fails it with [`Error::Unauthorized`], whose [`Challenge`] carries
//! what the server asked for; a JSON-RPC error the server sent stays [`Error::Rpc`]. So "log in" and "the
//! server is down" never look like a server bug.
//!
//! **Redirects are never followed**, on any method: a 3xx fails the request with [`Error::Protocol`] naming
//! the `Location`, so the URL can be fixed. Following one would replay the request — with `Authorization`,
//! `DPoP` and `Mcp-Session-Id` — to wherever the server points (reqwest's default policy strips only
//! `Authorization`, and only across hosts). [`HttpTransport::with_client`] explains what that means for a
//! client you bring.
//!
//! [`Transport`]: crate::transport::Transport
//! [`HttpAuth`]: crate::auth::HttpAuth
//! [`Challenge`]: crate::auth::Challenge

mod connection;
mod era_cache;
mod exchange;
mod failure;
pub mod headers;
pub mod observer;
pub mod sse;
mod streams;

/// The reqwest crate Keel's HTTP transport is built on, for [`HttpTransport::with_client`] and
/// [`HttpTransport::with_client_builder`] (same version, so the types match).
pub use reqwest;

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
pub use observer::HttpObserver;

/// Authorization attempts per request (the first plus retries after a 401 / 403).
const MAX_AUTH_ATTEMPTS: usize = 3;
/// Reconnections of one SSE stream in a row that bring no event.
const MAX_RECONNECTS: usize = 5;
/// Pages read when the transport re-lists tools after a header mismatch.
const MAX_RELIST_PAGES: usize = 100;
/// How long the client Keel builds waits for a TCP (and TLS) connection, unless told otherwise.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A streamable HTTP connection to one MCP endpoint. See the [module docs](self).
#[derive(Clone)]
pub struct HttpTransport {
    url: reqwest::Url,
    auth: Option<Arc<dyn HttpAuth>>,
    limits: Limits,
    http: Option<reqwest::Client>,
    connect_timeout: Duration,
    extra_headers: HeaderMap,
    observer: Option<Arc<dyn HttpObserver>>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport").field("url", &self.url.as_str()).field("auth", &self.auth.is_some()).finish()
    }
}

impl HttpTransport {
    /// A transport to the MCP endpoint at `url` (`http` or `https`), over an HTTP client Keel builds
    /// (rustls with the ring provider, no redirects followed, a 30 s [connect timeout](Self::connect_timeout)).
    pub fn new(url: &str) -> Result<Self, Error> {
        let mut url =
            reqwest::Url::parse(url).map_err(|e| Error::Protocol(format!("invalid server URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Protocol(format!("unsupported URL scheme {:?}", url.scheme())));
        }
        // Never sent; dropped so the URL a response reports compares equal to the one requested.
        url.set_fragment(None);
        Ok(HttpTransport {
            url,
            auth: None,
            limits: Limits::default(),
            http: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_headers: HeaderMap::new(),
            observer: None,
        })
    }

    /// A transport that sends through `client`, an HTTP client you built: a proxy, custom root
    /// certificates, client certificates, timeouts, or a connection pool your application shares.
    ///
    /// Keel still sets every MCP header and credential per request, bounds every body by [`Limits`], and
    /// refuses any response that arrives after a redirect ([`Error::Protocol`]). What it cannot do is change
    /// the client's redirect policy: reqwest's default follows up to 10 redirects and sends `Authorization`
    /// again to the same host (`DPoP` and `Mcp-Session-Id` to any host) before Keel sees the answer. So
    /// build the client with [`redirect::Policy::none()`](reqwest::redirect::Policy::none), or hand Keel
    /// the builder ([`HttpTransport::with_client_builder`]), which sets it for you.
    /// [`connect_timeout`](Self::connect_timeout) does not apply: the client's own settings do.
    ///
    /// reqwest as Keel enables it brings no TLS crypto provider of its own; if nothing in the process
    /// installed one, install rustls' ring provider before building the client (as below), or use
    /// [`with_client_builder`](Self::with_client_builder), which does.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use keel_mcp::client::{Client, http::HttpTransport};
    /// use keel_mcp::protocol::Implementation;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let _ = rustls::crypto::ring::default_provider().install_default();
    /// let http = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .proxy(reqwest::Proxy::all("http://proxy.internal:3128")?)
    ///     .timeout(Duration::from_secs(120))
    ///     .build()?;
    /// let transport = HttpTransport::with_client("https://notes.example/mcp", http)?;
    /// let client = Client::builder(Implementation::new("my-app", "1.0.0")).connect(transport).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_client(url: &str, client: reqwest::Client) -> Result<Self, Error> {
        let mut transport = HttpTransport::new(url)?;
        transport.http = Some(client);
        Ok(transport)
    }

    /// A transport over a client built from `builder`, your settings (proxy, roots, timeouts, …) plus Keel's
    /// policy: no redirects followed. Installs rustls' ring provider as the process default when none is.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use keel_mcp::client::http::HttpTransport;
    ///
    /// # fn run() -> Result<(), keel_mcp::Error> {
    /// let builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).pool_max_idle_per_host(4);
    /// let transport = HttpTransport::with_client_builder("https://notes.example/mcp", builder)?;
    /// # Ok(()) }
    /// ```
    pub fn with_client_builder(url: &str, builder: reqwest::ClientBuilder) -> Result<Self, Error> {
        let client = build_client(builder)?;
        HttpTransport::with_client(url, client)
    }

    /// How long to wait for the TCP and TLS connection to the server (default 30 s); past it the request
    /// fails with [`Error::Transport`] of kind `TimedOut`. Applies to the client Keel builds, not to one
    /// given to [`with_client`](Self::with_client).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
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

    /// Shows every HTTP exchange to `observer`: requests, response heads, SSE event ids (credentials
    /// redacted). See [`HttpObserver`].
    pub fn observer(mut self, observer: Arc<dyn HttpObserver>) -> Self {
        self.observer = Some(observer);
        self
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

/// Builds a client with Keel's redirect policy (none followed), rustls on the ring provider unless another
/// provider was installed first.
fn build_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, Error> {
    // Whoever installed a provider first wins; ring is ours if nobody did.
    let _ = rustls::crypto::ring::default_provider().install_default();
    builder.redirect(reqwest::redirect::Policy::none()).build().map_err(|e| Error::Transport(std::io::Error::other(e)))
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
            None => build_client(reqwest::Client::builder().connect_timeout(self.connect_timeout)),
        };
        let inner = Arc::new(Inner {
            origin: origin(&self.url),
            url: self.url,
            auth: self.auth,
            limits: self.limits,
            extra_headers: self.extra_headers,
            observer: self.observer,
            http: http.as_ref().ok().cloned(),
            inbound: tx,
            closed: closed.clone(),
            state: Mutex::new(State::default()),
        });
        let startup_error = http.err().map(|e| e.to_string());
        (HttpReader { rx, closed }, HttpWriter { inner, startup_error })
    }
}

/// Messages from the server in arrival order, and the requests the transport could not carry.
#[derive(Debug)]
pub struct HttpReader {
    rx: mpsc::Receiver<Result<Vec<u8>, FrameError>>,
    closed: CancellationToken,
}

impl FrameReader for HttpReader {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        tokio::select! {
            frame = self.rx.recv() => frame,
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

#[cfg(feature = "otel")]
impl HttpWriter {
    /// Reads the legacy session id for the connection's spans; holds the transport weakly, so that the
    /// engine's handle on it never keeps the transport alive.
    pub(crate) fn session_probe(&self) -> Arc<dyn Fn() -> Option<String> + Send + Sync> {
        let inner = Arc::downgrade(&self.inner);
        Arc::new(move || inner.upgrade()?.state().session.clone())
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
