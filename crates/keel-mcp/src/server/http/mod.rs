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
//!
//! Several instances behind a load balancer serve every legacy session when they share a
//! [`SessionStore`], an [`EventStore`] and a [`SessionBus`] (`HttpConfig::redis` sets all three with the
//! `redis` feature): any instance takes a session over, resumes its streams, and passes answers,
//! cancellations and stream messages to the instance that holds their target. Modern requests need none of
//! it.
//!
//! [`McpService::shutdown`] drains the service (503 for new requests, a grace for calls in flight, then a
//! `retry` hint on every open stream); [`Server::serve_http_on`] adds the listener's own limits and calls it
//! when its shutdown future completes.
//!
//! [`Server::serve_http_on`]: crate::server::Server::serve_http_on

mod body;
mod bus;
mod channel;
mod event_log;
mod event_store;
mod guard;
mod legacy;
mod listener;
pub(crate) mod modern;
#[cfg(feature = "resource-server")]
mod protect;
#[cfg(feature = "redis")]
mod redis_stores;
mod request_body;
mod session;
mod session_owner;
mod session_store;
mod shutdown;
mod slots;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};

pub use super::peer_addr::PeerAddr;
pub use body::ResponseBody;
pub use bus::{MemorySessionBus, SessionBus};
pub(crate) use channel::ResponseChannel;
pub use event_store::{EventStore, MemoryEventStore, RemoteEvents};
pub use guard::HostPolicy;
#[cfg(feature = "redis")]
pub use redis_stores::{RedisConfig, RedisEventStore, RedisSessionBus, RedisSessionStore, RedisStores};
use request_body::BodyError;
pub use session_store::{MemorySessionStore, SessionRecord, SessionStore, SessionUpdate, StoreError, StoreFuture};
use shutdown::SHUTTING_DOWN;
pub use shutdown::shutdown_signal;

use super::inner::ServerInner;
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
    /// Most live legacy sessions. Past it, `initialize` evicts a session: first one that never completed
    /// the handshake within [`HttpConfig::session_init_grace`], else the one idle longest. Default 10,000.
    ///
    /// With a shared [`SessionStore`], this bounds the copies this instance holds (evicting one ends nothing
    /// for its client: the next request takes the session over again), and a copy with work under way
    /// (running calls, server requests awaiting an answer, open streams) is never evicted, so the table may
    /// hold more than this while such copies are all there is.
    pub max_sessions: usize,
    /// Most live legacy sessions per peer (IP address; an IPv6 /64, read from [`PeerAddr`]). Past it, the
    /// peer's own sessions are evicted the same way. Default 64.
    ///
    /// Behind a reverse proxy every request comes from the proxy's address unless you put the client's
    /// address (from a header only your proxy sets) in [`PeerAddr`]; raise this bound otherwise. With a
    /// shared [`SessionStore`], only the sessions `initialize` created here count: a copy taken over from
    /// another instance counts toward no peer.
    pub max_sessions_per_peer: usize,
    /// How long a new legacy session may go without `notifications/initialized` before it is the first to
    /// be evicted when room is needed. Default 10 s.
    pub session_init_grace: Duration,
    /// Client requests running at once in one legacy session, streams included; past it a request gets 429
    /// with `Retry-After`. Default 64.
    pub max_requests_per_session: usize,
    /// How long a legacy streaming call goes on with no client reading its stream (the client hung up and
    /// has not resumed with `Last-Event-ID`, on this instance or, with a [`SessionBus`], on another one
    /// sharing the session) before it is cancelled. Keep it above [`HttpConfig::sse_retry_ms`] plus the
    /// clients' own backoff: a client following a call on another instance reconnects each time the relay
    /// there ends (with the Redis stores, after 10 s without an event), and has this long from then to come
    /// back. Default 10 s.
    pub stream_resume_grace: Duration,
    /// Where legacy SSE events are kept for resumption. Default: in memory, the last 1,024 per stream.
    pub event_store: Arc<dyn EventStore>,
    /// Where legacy sessions are shared with other instances of this server, so that any instance serves
    /// any session (see [`SessionStore`]). Default: none, sessions live in this process only. Set a shared
    /// [`event_store`](Self::event_store) with it, so that streams resume on any instance too.
    pub session_store: Option<Arc<dyn SessionStore>>,
    /// How instances sharing sessions reach the one holding a waiting handler, a running call or an open
    /// stream, and hear each other's resource changes (see [`SessionBus`]). Default: none.
    pub session_bus: Option<Arc<dyn SessionBus>>,
    /// With a shared [`SessionStore`] and a [`SessionBus`] that reports its subscription
    /// ([`SessionBus::subscription`]): how long this instance serves its copy of a session without asking
    /// the store. Other instances announce every change to a session's record, and its end, on the bus
    /// (and hear the announcement back before they answer), so a copy is checked again as soon as one is
    /// heard, after the bus subscription was down or fell behind (messages may have been lost), and
    /// otherwise at the first request this long after the last check; that check also refreshes the
    /// record's expiry in the store (which is why the interval is at most a quarter of
    /// [`session_idle_timeout`](Self::session_idle_timeout), and the record lives one interval longer).
    /// So another instance's change reaches a copy here when its announcement is handled, usually before
    /// the client's next request, or within this time when the announcement was lost. Zero asks the store
    /// on every request (one round trip), as it does without a bus. Default 2 s.
    pub session_check_interval: Duration,
    /// Where tasks are shared (set by [`HttpConfig::redis`]).
    #[cfg(all(feature = "redis", feature = "tasks"))]
    pub(crate) redis_tasks: Option<Arc<redis_stores::RedisTasks>>,
    /// The `retry` hint (milliseconds) of the priming event that opens a legacy SSE stream (SEP-1699).
    /// Default 1,000.
    pub sse_retry_ms: u64,
    /// POSTs handled at once, streams included; past it requests get 503. A request takes its slot only
    /// once its body is read, so slow uploads never hold one, and keeps it until its handler ends: a handler
    /// cancelled by the client leaving holds it through its [`Limits::cancel_grace`](crate::Limits::cancel_grace)
    /// (a legacy SSE stream, whose call may be resumed, frees it when its client hangs up). Default 4,096.
    pub max_concurrent_requests: usize,
    /// Time a connection of [`Server::serve_http_on`](crate::server::Server::serve_http_on) gets to send a request's complete headers; past it the
    /// connection is closed. An idle kept-alive HTTP/1 connection is closed after it too. Default 10 s.
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body (no progress for this long gets 408). Applies
    /// wherever the service is mounted. Default 30 s.
    pub body_read_timeout: Duration,
    /// Most connections one peer IP address (an IPv6 peer: its /64 network) holds at once with
    /// [`Server::serve_http_on`](crate::server::Server::serve_http_on); further ones are closed on accept. Behind a reverse proxy every client
    /// shares the proxy's address: raise it there. Default 256.
    pub max_connections_per_peer: usize,
    /// On [`McpService::shutdown`], how long calls in flight get to finish before they are cancelled.
    /// Default 5 s.
    pub shutdown_grace: Duration,
    /// The OAuth 2.1 resource-server protection, when set with [`HttpConfig::resource_server`].
    #[cfg(feature = "resource-server")]
    pub(crate) protection: Option<Arc<crate::auth::resource::protection::Protection>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            hosts: HostPolicy::Loopback,
            max_body_bytes: 4 * 1024 * 1024,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
            max_sessions_per_peer: 64,
            session_init_grace: Duration::from_secs(10),
            max_requests_per_session: 64,
            stream_resume_grace: Duration::from_secs(10),
            event_store: Arc::new(MemoryEventStore::new(1024)),
            session_store: None,
            session_bus: None,
            session_check_interval: Duration::from_secs(2),
            #[cfg(all(feature = "redis", feature = "tasks"))]
            redis_tasks: None,
            sse_retry_ms: 1000,
            max_concurrent_requests: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections_per_peer: 256,
            shutdown_grace: Duration::from_secs(5),
            #[cfg(feature = "resource-server")]
            protection: None,
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

    /// Sets [`HttpConfig::max_sessions_per_peer`].
    pub fn max_sessions_per_peer(mut self, n: usize) -> Self {
        self.max_sessions_per_peer = n.max(1);
        self
    }

    /// Sets [`HttpConfig::session_init_grace`].
    pub fn session_init_grace(mut self, d: Duration) -> Self {
        self.session_init_grace = d;
        self
    }

    /// Sets [`HttpConfig::max_requests_per_session`].
    pub fn max_requests_per_session(mut self, n: usize) -> Self {
        self.max_requests_per_session = n.max(1);
        self
    }

    /// Sets [`HttpConfig::stream_resume_grace`].
    pub fn stream_resume_grace(mut self, d: Duration) -> Self {
        self.stream_resume_grace = d;
        self
    }

    /// Sets [`HttpConfig::event_store`].
    pub fn event_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.event_store = store;
        self
    }

    /// Sets [`HttpConfig::session_store`].
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.session_store = Some(store);
        self
    }

    /// Sets [`HttpConfig::session_bus`].
    pub fn session_bus(mut self, bus: Arc<dyn SessionBus>) -> Self {
        self.session_bus = Some(bus);
        self
    }

    /// Sets [`HttpConfig::session_check_interval`].
    pub fn session_check_interval(mut self, every: Duration) -> Self {
        self.session_check_interval = every;
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

    /// Sets [`HttpConfig::header_read_timeout`].
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }

    /// Sets [`HttpConfig::body_read_timeout`].
    pub fn body_read_timeout(mut self, d: Duration) -> Self {
        self.body_read_timeout = d;
        self
    }

    /// Sets [`HttpConfig::max_connections_per_peer`] (at least 1).
    pub fn max_connections_per_peer(mut self, n: usize) -> Self {
        self.max_connections_per_peer = n.max(1);
        self
    }

    /// Sets [`HttpConfig::shutdown_grace`].
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// Protects the endpoint as an OAuth 2.1 resource server (feature `resource-server`; see
    /// [`auth::resource`](crate::auth::resource)): every request needs a token `config.verifier` accepts, and
    /// the protected resource metadata is served at its well-known URL. Mounted in your own router, route that
    /// URL (`/.well-known/oauth-protected-resource` followed by the resource's path) to this service too.
    ///
    /// Fails when `config.resource` is not an absolute `http(s)` URL without a fragment, or names no
    /// authorization server.
    #[cfg(feature = "resource-server")]
    pub fn resource_server(
        mut self,
        config: crate::auth::resource::ResourceServerConfig,
    ) -> Result<Self, crate::auth::resource::ResourceUrlError> {
        self.protection = Some(Arc::new(crate::auth::resource::protection::Protection::new(config)?));
        Ok(self)
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
    pub(crate) sessions: session::SessionTable,
    /// This instance's end of [`HttpConfig::session_bus`].
    pub(crate) bus: Option<Arc<bus::Bus>>,
    /// Bounds the requests in progress (see [`HttpConfig::max_concurrent_requests`]).
    requests: Arc<slots::Slots>,
    pub(crate) shutdown: shutdown::Shutdown,
}

impl McpService {
    /// Shuts the service down gracefully.
    ///
    /// From the first call on, new requests (and new GET streams) get 503 with `Retry-After`; a client's
    /// answers to the server's own requests and its cancellations are still taken, so that the calls
    /// waiting on them can finish. Calls in flight get [`HttpConfig::shutdown_grace`] to finish, then are
    /// cancelled (their answer is an internal error saying the server is shutting down). Then open SSE
    /// streams — legacy GET streams and the streams of POSTed requests — end with a final event carrying a
    /// `retry` hint, so clients reconnect elsewhere. Resolves when nothing is in flight (waiting at most a
    /// quarter of a second more, after the grace, for calls whose client stopped reading) and, with a shared
    /// [`EventStore`] (Redis), once the streams' last events reached it (bounded by its own timeout), so that
    /// clients resuming on another instance get them. Every clone of the service shares this state; calling
    /// it again waits again.
    ///
    /// Mounted in axum, call it from the future given to `with_graceful_shutdown`, so that open streams end
    /// and the server can stop:
    ///
    /// ```no_run
    /// # async fn example(service: keel_mcp::server::http::McpService) {
    /// let on_signal = {
    ///     let service = service.clone();
    ///     async move {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///         service.shutdown().await;
    ///     }
    /// };
    /// # let _ = on_signal;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        shutdown::run(&self.inner).await;
    }
}

pub(crate) use slots::RequestSlot;

impl McpService {
    /// The endpoint of `server` ([`Server::http_service`](crate::server::Server::http_service)).
    pub(crate) fn new(server: Arc<ServerInner>, config: HttpConfig) -> McpService {
        let instance = config.session_store.as_ref().map_or(0, |store| store.instance() & 0xF_FFFF);
        let bus = config.session_bus.clone().map(|b| Arc::new(bus::Bus::new(b, instance)));
        let sessions = session::SessionTable::new(&config, bus.clone());
        let requests = Arc::new(slots::Slots::new(config.max_concurrent_requests));
        let shutdown = shutdown::Shutdown::default();
        #[cfg(all(feature = "redis", feature = "tasks"))]
        if let (Some(tasks), Some(bus)) = (&config.redis_tasks, &bus) {
            server.tasks.share_with(Arc::new(redis_stores::TaskLink::new(tasks.clone(), bus.clone(), &server.tasks)));
        }
        let inner = Arc::new(HttpInner { server, config, sessions, bus, requests, shutdown });
        bus::Bus::start(&inner);
        McpService { inner }
    }
}

pub(crate) use listener::serve;

/// The future of a response from the service.
type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<B> tower_service::Service<Request<B>> for McpService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

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
    // The metadata is public and CORS-readable, so it is served before the Host / Origin check; every
    // other request is authenticated after it. Unprotected, this costs one branch.
    #[cfg(feature = "resource-server")]
    let mut request = request;
    #[cfg(feature = "resource-server")]
    if let Some(protection) = &inner.config.protection
        && let Some(response) = protect::metadata(protection, &request)
    {
        return response;
    }
    if let Err(why) = inner.config.hosts.check(request.uri(), request.headers()) {
        return body::rpc_error(StatusCode::FORBIDDEN, None, &ErrorObject::invalid_request(why));
    }
    // A stream opened with a token ends when the token does (plus a grace): the client then reconnects with a
    // fresh one, instead of being served on an expired or revoked token for as long as it keeps the stream.
    #[cfg(feature = "resource-server")]
    let streams_end = match &inner.config.protection {
        Some(protection) => match protect::authenticate(protection, &mut request).await {
            Ok(streams_end) => streams_end,
            Err(refusal) => return refusal,
        },
        None => None,
    };
    let response = route(inner, request).await;
    #[cfg(feature = "resource-server")]
    if let Some(deadline) = streams_end {
        return response.map(|body| body.until(deadline));
    }
    response
}

/// The answer to an admitted request for the MCP endpoint.
async fn route<B>(inner: Arc<HttpInner>, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let session_id = header(request.headers(), "mcp-session-id").map(str::to_owned);
    match (request.method(), session_id) {
        (&Method::POST, session_id) => post(inner, request, session_id).await,
        (&Method::GET, Some(_)) if inner.shutdown.is_draining() => unavailable(SHUTTING_DOWN),
        (&Method::GET, Some(session_id)) => {
            legacy::get(&inner, &session_id, request.headers(), request.extensions()).await
        }
        (&Method::DELETE, Some(session_id)) => legacy::delete(&inner, &session_id, request.extensions()).await,
        // Sessionless GET / DELETE: the 2026-07-28 revision has neither.
        _ => method_not_allowed(),
    }
}

async fn post<B>(inner: Arc<HttpInner>, request: Request<B>, session_id: Option<String>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
{
    let (parts, request_body) = request.into_parts();
    if !header(&parts.headers, CONTENT_TYPE.as_str()).is_some_and(|v| v.starts_with("application/json")) {
        return body::rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            &ErrorObject::invalid_request("Content-Type must be application/json"),
        );
    }
    let config = &inner.config;
    let bytes = match request_body::read(request_body, config.max_body_bytes, config.body_read_timeout).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let (status, message) = match e {
                BodyError::TooLarge => {
                    (StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {} bytes", config.max_body_bytes))
                }
                BodyError::Stalled => (StatusCode::REQUEST_TIMEOUT, "the request body stalled".to_owned()),
                BodyError::Broken => (StatusCode::BAD_REQUEST, "the request body could not be read".to_owned()),
            };
            return body::rpc_error(status, None, &ErrorObject::invalid_request(message));
        }
    };
    let message = match Message::decode(&bytes) {
        Ok(message) => message,
        Err(e) => return body::rpc_error(StatusCode::BAD_REQUEST, e.id.as_ref(), &e.error),
    };
    // A shutdown refuses new requests only: answers to the server's own requests and cancellations still
    // reach the calls that are finishing.
    if inner.shutdown.is_draining() && matches!(message, Message::Request(_)) {
        return unavailable(SHUTTING_DOWN);
    }
    if let Message::Request(request) = &message {
        let needed = method_scopes(&inner, &request.method);
        if !needed.is_empty() {
            let access = crate::server::request::Access::Http {
                principal: parts.extensions.get::<Arc<crate::server::principal::Principal>>().map(|p| &**p),
                filter_lists: true,
            };
            if let Err(error) = access.require(needed) {
                return insufficient_scope(&inner, &request.id, &error, needed);
            }
        }
    }
    // Only now, with the whole body in hand: a slow upload must not hold a slot.
    let Some(slot) = inner.requests.try_acquire() else {
        return unavailable("too many requests in progress; retry shortly");
    };
    let accepts_sse = accepts(&parts.headers, "text/event-stream");
    // `parts` move into the request's response channel, shared with the handler's context
    // (`RequestContext::http_request`) without copying the headers.
    if let Some(id) = session_id {
        return legacy::post(&inner, &id, parts, message, accepts_sse, slot).await;
    }
    if message.method() == Some(InitializeParams::METHOD) {
        let response = legacy::initialize(&inner, parts, message).await;
        drop(slot);
        return response;
    }
    modern::post(&inner, parts, message, accepts_sse, slot).await
}

/// The scopes every request of `method` needs on this endpoint (none unless it is protected and configured
/// so).
pub(crate) fn method_scopes<'a>(inner: &'a HttpInner, method: &str) -> &'a [String] {
    #[cfg(feature = "resource-server")]
    if let Some(protection) = &inner.config.protection {
        return protection.method_scopes(method);
    }
    let _ = (inner, method);
    &[]
}

/// The answer to a request refused for a missing scope ([`INSUFFICIENT_SCOPE`]): 403, and on a protected
/// endpoint the `insufficient_scope` challenge naming every scope the request needs — its method's and its
/// target's (`data.scopes`) — so the client can step up.
///
/// [`INSUFFICIENT_SCOPE`]: crate::server::request::INSUFFICIENT_SCOPE
pub(crate) fn insufficient_scope(
    inner: &HttpInner,
    id: &crate::protocol::RequestId,
    error: &ErrorObject,
    method_scopes: &[String],
) -> Response<ResponseBody> {
    #[cfg_attr(
        not(feature = "resource-server"),
        expect(unused_mut, reason = "only a protected endpoint adds a challenge")
    )]
    let mut response = body::rpc_error(StatusCode::FORBIDDEN, Some(id), error);
    #[cfg(feature = "resource-server")]
    if let Some(protection) = &inner.config.protection {
        let target: Vec<String> = error
            .data
            .as_ref()
            .and_then(|data| data.get("scopes"))
            .and_then(|scopes| serde_json::from_value(scopes.clone()).ok())
            .unwrap_or_default();
        if let Some(challenge) = protection.insufficient_scope(method_scopes, &target).challenge {
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, challenge);
        }
    }
    let _ = (inner, method_scopes);
    response
}

/// 503 with `Retry-After`.
fn unavailable(why: &'static str) -> Response<ResponseBody> {
    let mut response = body::rpc_error(StatusCode::SERVICE_UNAVAILABLE, None, &ErrorObject::internal(why));
    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
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
    // On bytes: a visible-ASCII value (what `to_str` admits) trims the same as text, and byte splitting
    // spares the char-by-char search on every request.
    let media = media.as_bytes();
    headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.as_bytes().split(|b| *b == b',').any(|item| {
            let item = item.split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
            item.eq_ignore_ascii_case(media) || item == b"*/*"
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_are_read_item_by_item() {
        let with = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(ACCEPT, http::HeaderValue::from_static(v));
            }
            headers
        };
        let sse = "text/event-stream";
        assert!(accepts(&with(&["application/json, text/event-stream"]), sse));
        assert!(accepts(&with(&["application/json", " Text/Event-Stream ;q=0.5"]), sse));
        assert!(accepts(&with(&["*/*"]), sse));
        assert!(!accepts(&with(&["application/json"]), sse));
        assert!(!accepts(&with(&["text/event-streams, text/*"]), sse));
        assert!(!accepts(&with(&[]), sse));
        let mut opaque = with(&[]);
        opaque.append(ACCEPT, http::HeaderValue::from_bytes(b"text/event-stream, \xff").unwrap());
        assert!(!accepts(&opaque, sse), "a value that is not visible ASCII is ignored as before");
    }
}
