//! Streamable HTTP for both eras on one endpoint, as a `tower::Service` (mount it in axum or hyper) with
//! a convenience [`Server::serve_http`](crate::server::Server::serve_http) on top.
//!
//! - **Modern (2026-07-28)**: each POST is a self-contained request. Headers (`MCP-Protocol-Version`,
//!   `Mcp-Method`, `Mcp-Name`) are checked against the body, the request is dispatched directly (no
//!   background task, no session), and the answer is JSON — or SSE when the handler streams notifications
//!   before its result. GET and DELETE get 405.
//! - **Legacy (≤ 2025-11-25)**: `initialize` mints an `Mcp-Session-Id`; later POSTs carry it; responses
//!   stream as SSE with per-stream event ids, resumable with `Last-Event-ID` on GET; GET also opens the
//!   session's standalone stream; DELETE ends the session.
//!
//! A request belongs to the legacy era when it carries a session id or is an `initialize`; every other
//! POST is treated as modern.

mod body;
mod channel;
mod event_log;
mod event_store;
mod guard;
mod legacy;
mod modern;
mod session;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

pub use body::ResponseBody;
pub(crate) use channel::ResponseChannel;
pub use event_store::{EventStore, MemoryEventStore};
pub use guard::HostPolicy;

use super::{Server, ServerInner};
use crate::protocol::jsonrpc::Message;
use crate::protocol::lifecycle::InitializeParams;
use crate::protocol::{ErrorObject, Request as _};

/// HTTP transport settings. Every limit has a safe default.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Which `Host` / `Origin` values are accepted (DNS-rebinding protection). Default: loopback names.
    pub hosts: HostPolicy,
    /// Largest request body, in bytes; larger bodies get 413. Default 4 MiB.
    pub max_body_bytes: usize,
    /// A legacy session unused this long ends. Default 30 minutes.
    pub session_idle_timeout: Duration,
    /// Most live legacy sessions; `initialize` gets 503 past it. Default 10,000.
    pub max_sessions: usize,
    /// Where legacy SSE events are kept for resumption. Default: in memory, the last 1,024 per stream.
    pub event_store: Arc<dyn EventStore>,
    /// The `retry` hint (milliseconds) of the priming event that opens a legacy SSE stream (SEP-1699).
    /// Default 1,000.
    pub sse_retry_ms: u64,
    /// POSTs handled at once, streams included; past it requests get 503. Default 4,096.
    pub max_concurrent_requests: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            hosts: HostPolicy::Loopback,
            max_body_bytes: 4 * 1024 * 1024,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
            event_store: Arc::new(MemoryEventStore::new(1024)),
            sse_retry_ms: 1000,
            max_concurrent_requests: 4096,
        }
    }
}

impl HttpConfig {
    /// Sets [`HttpConfig::hosts`].
    pub fn hosts(mut self, hosts: HostPolicy) -> Self {
        self.hosts = hosts;
        self
    }

    /// Sets [`HttpConfig::max_body_bytes`].
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Sets [`HttpConfig::session_idle_timeout`].
    pub fn session_idle_timeout(mut self, d: Duration) -> Self {
        self.session_idle_timeout = d;
        self
    }

    /// Sets [`HttpConfig::max_sessions`].
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Sets [`HttpConfig::event_store`].
    pub fn event_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.event_store = store;
        self
    }

    /// Sets [`HttpConfig::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n.max(1);
        self
    }

    /// Sets [`HttpConfig::sse_retry_ms`].
    pub fn sse_retry_ms(mut self, ms: u64) -> Self {
        self.sse_retry_ms = ms;
        self
    }
}

/// The MCP endpoint as a `tower::Service`. Cheap to clone; clones share sessions.
#[derive(Clone, Debug)]
pub struct McpService {
    inner: Arc<HttpInner>,
}

#[derive(Debug)]
pub(crate) struct HttpInner {
    pub(crate) server: Arc<ServerInner>,
    pub(crate) config: HttpConfig,
    pub(crate) sessions: session::SessionStore,
    /// Bounds the requests in progress (see [`HttpConfig::max_concurrent_requests`]).
    requests: Arc<tokio::sync::Semaphore>,
}

/// A slot among the requests in progress, held until the request's answer (or stream) is done.
pub(crate) type RequestSlot = tokio::sync::OwnedSemaphorePermit;

impl Server {
    /// The MCP endpoint as a `tower::Service`, to mount at a path of your choice (e.g. `/mcp`).
    pub fn http_service(&self, config: HttpConfig) -> McpService {
        let sessions = session::SessionStore::new(config.session_idle_timeout, config.max_sessions);
        let requests = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_requests));
        McpService { inner: Arc::new(HttpInner { server: self.inner.clone(), config, sessions, requests }) }
    }

    /// Serves the MCP endpoint at `/mcp` on `addr` until the process ends.
    pub async fn serve_http(&self, addr: SocketAddr, config: HttpConfig) -> Result<(), crate::Error> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        self.serve_http_on(listener, config, std::future::pending()).await
    }

    /// Serves the MCP endpoint at `/mcp` on a bound listener until `shutdown` completes.
    pub async fn serve_http_on(
        &self,
        listener: tokio::net::TcpListener,
        config: HttpConfig,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), crate::Error> {
        let service = self.http_service(config);
        let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let service = PathFilter { path: "/mcp", inner: service.clone() };
            let builder = builder.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper_util::service::TowerToHyperService::new(service);
                if let Err(e) = builder.serve_connection(io, service).await {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
            });
        }
    }
}

/// Routes one path to the MCP service and answers 404 elsewhere.
#[derive(Clone, Debug)]
struct PathFilter {
    path: &'static str,
    inner: McpService,
}

impl<B> tower_service::Service<Request<B>> for PathFilter
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path() != self.path {
            return Box::pin(std::future::ready(Ok(body::empty(StatusCode::NOT_FOUND))));
        }
        self.inner.call(request)
    }
}

impl<B> tower_service::Service<Request<B>> for McpService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(handle(inner, request).await) })
    }
}

async fn handle<B>(inner: Arc<HttpInner>, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Err(why) = inner.config.hosts.check(request.headers()) {
        return body::rpc_error(StatusCode::FORBIDDEN, None, &ErrorObject::invalid_request(why));
    }
    let session_id = header(request.headers(), "mcp-session-id").map(str::to_owned);
    match *request.method() {
        Method::POST => {}
        Method::GET | Method::DELETE if session_id.is_some() => {
            let session_id = session_id.expect("checked");
            return if request.method() == Method::GET {
                legacy::get(&inner, &session_id, request.headers()).await
            } else {
                legacy::delete(&inner, &session_id)
            };
        }
        // Sessionless GET / DELETE: the 2026-07-28 revision has neither.
        _ => return method_not_allowed(),
    }
    let Ok(slot) = inner.requests.clone().try_acquire_owned() else {
        let mut response = body::rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            &ErrorObject::internal("too many requests in progress; retry shortly"),
        );
        response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        return response;
    };
    let (parts, request_body) = request.into_parts();
    if !header(&parts.headers, CONTENT_TYPE.as_str()).is_some_and(|v| v.starts_with("application/json")) {
        return body::rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            &ErrorObject::invalid_request("Content-Type must be application/json"),
        );
    }
    let bytes = match http_body_util::Limited::new(request_body, inner.config.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return body::rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                &ErrorObject::invalid_request(format!("body exceeds {} bytes", inner.config.max_body_bytes)),
            );
        }
    };
    let message = match Message::decode(&bytes) {
        Ok(message) => message,
        Err(e) => return body::rpc_error(StatusCode::BAD_REQUEST, e.id.as_ref(), &e.error),
    };
    let accepts_sse = accepts(&parts.headers, "text/event-stream");
    // Shared with the handler's context (`RequestContext::http_request`) without copying the headers.
    let parts = Arc::new(parts);
    if let Some(id) = session_id {
        return legacy::post(&inner, &id, &parts, message, accepts_sse, slot).await;
    }
    if message.method() == Some(InitializeParams::METHOD) {
        return legacy::initialize(&inner, &parts, message).await;
    }
    modern::post(&inner, &parts, message, accepts_sse, slot).await
}

fn method_not_allowed() -> Response<ResponseBody> {
    let mut response = body::empty(StatusCode::METHOD_NOT_ALLOWED);
    response.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    response
}

/// A header's value as text (absent when missing or not visible ASCII).
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the `Accept` header admits `media` (or `*/*`).
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let item = item.split(';').next().unwrap_or("").trim();
        item.eq_ignore_ascii_case(media) || item == "*/*"
    })
}
