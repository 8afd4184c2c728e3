//! The MCP client API: connect over any [`Transport`], agree on a revision, and call the server.
//!
//! ```no_run
//! use keel_mcp::client::Client;
//! use keel_mcp::protocol::Implementation;
//! use keel_mcp::transport::ChildProcess;
//!
//! # async fn run() -> Result<(), keel_mcp::Error> {
//! let server = ChildProcess::new("my-mcp-server").spawn()?;
//! let client = Client::builder(Implementation::new("my-app", "1.0.0")).connect(server).await?;
//! for tool in client.list_all_tools().await? {
//!     println!("{}", tool.name);
//! }
//! let result = client.call_tool("add", serde_json::json!({"a": 2, "b": 3})).await?;
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! On connect the client probes with `server/discover` (modern era). A discover result, or a recognised
//! modern error such as `UnsupportedProtocolVersion`, keeps it modern; any other error or a timeout makes it
//! fall back to `initialize` (legacy era), as the 2026-07-28 versioning rules describe. Over HTTP
//! (`http::HttpTransport`, feature `http-client`) the same probe runs, the era is cached per origin (a cached
//! legacy era that fails, or that a modern-only client cannot use, leads to a fresh probe), and the
//! deprecated HTTP+SSE transport is the last resort.
//!
//! What the server may ask of the client is answered by handlers registered on the builder; each one
//! declares its capability. The same handlers serve legacy server-initiated requests and the input requests
//! of modern input-required results ([`Client::call`] runs those rounds):
//!
//! ```no_run
//! use keel_mcp::client::{Client, ServerNotification};
//! use keel_mcp::protocol::{ElicitResult, Implementation};
//!
//! # async fn run(transport: keel_mcp::transport::memory::MemoryTransport) -> Result<(), keel_mcp::Error> {
//! let client = Client::builder(Implementation::new("my-app", "1.0.0"))
//!     // Accept forms as they are; fields left out get the schema's defaults (SEP-1034).
//!     .on_elicitation(|_request| async { Ok(ElicitResult::accept(None)) })
//!     .roots(vec![])
//!     .on_notification(|n| async move {
//!         if let ServerNotification::Log(log) = n {
//!             eprintln!("server log: {}", log.data);
//!         }
//!     })
//!     .connect(transport)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`Transport`]: crate::transport::Transport

#[cfg(feature = "http-client")]
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use crate::Limits;
use crate::engine::peer::Identity;
use crate::engine::{Connection, Peer};
use crate::error::Error;
use crate::protocol::capabilities::{ClientCapabilities, ElicitationCapability, RootsCapability, SamplingCapability};
use crate::protocol::jsonrpc::code;
use crate::protocol::lifecycle::{DiscoverParams, EmptyResult, InitializeParams, InitializedParams, PingParams};
use crate::protocol::logging::{LoggingLevel, SetLevelParams};
use crate::protocol::version::{Era, accept_initialize_answer, choose_from_offered};
use crate::protocol::{
    CreateMessageParams, CreateMessageResult, ElicitParams, ElicitResult, ErrorObject, Implementation, ListRootsParams,
    ListRootsResult, ProtocolVersion, Request, Root, ServerCapabilities,
};
use crate::transport::Transport;

mod calls;
mod handlers;
mod input;
pub mod middleware;

pub use crate::engine::{CancellationToken, Progress, ProgressCallback, RequestOptions};
pub use handlers::ServerNotification;
use handlers::{ClientHandler, Handlers, callback};
pub use input::InputRetry;

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    info: Implementation,
    capabilities: ClientCapabilities,
    limits: Limits,
    versions: Vec<ProtocolVersion>,
    probe_timeout: Duration,
    handlers: Handlers,
    max_input_rounds: usize,
    middleware: Option<middleware::Next>,
}

impl ClientBuilder {
    /// Puts a request layer ([`middleware`]) around every request the client sends once connected: any
    /// tower layer over [`middleware::Next`], or a [`from_fn`](crate::middleware::from_fn) (retries, audit,
    /// extra `_meta`). Several calls nest, the last outermost. Without a layer, requests go straight to the
    /// connection at no cost.
    pub fn layer(mut self, layer: impl middleware::RequestLayer) -> Self {
        self.middleware = Some(middleware::Next::wrap(self.middleware.take(), layer));
        self
    }

    /// Answers the server's `sampling/createMessage` requests (declares the `sampling` capability).
    pub fn on_sampling<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(CreateMessageParams) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<CreateMessageResult, ErrorObject>> + Send + 'static,
    {
        self.handlers.sampling = Some(callback(f));
        self.capabilities.sampling.get_or_insert_with(SamplingCapability::default);
        self
    }

    /// Answers the server's `elicitation/create` requests (declares the `elicitation` capability). When
    /// the handler accepts a form, fields it leaves out are filled with the schema's defaults (SEP-1034).
    pub fn on_elicitation<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(ElicitParams) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ElicitResult, ErrorObject>> + Send + 'static,
    {
        self.handlers.elicitation = Some(callback(f));
        self.capabilities.elicitation.get_or_insert_with(ElicitationCapability::default);
        self
    }

    /// Answers the server's `roots/list` requests (declares the `roots` capability).
    pub fn on_list_roots<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(ListRootsParams) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ListRootsResult, ErrorObject>> + Send + 'static,
    {
        self.handlers.roots = Some(callback(f));
        self.capabilities.roots.get_or_insert_with(RootsCapability::default);
        self
    }

    /// Offers a fixed list of roots (declares the `roots` capability).
    pub fn roots(self, roots: Vec<Root>) -> Self {
        self.on_list_roots(move |_| {
            let result = ListRootsResult { roots: roots.clone(), result_type: None, meta: None };
            std::future::ready(Ok(result))
        })
    }

    /// Receives the server's notifications (log messages, list changes, resource updates, …). Progress of
    /// a request goes to that request's callback ([`RequestOptions::on_progress`]) instead.
    pub fn on_notification<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(ServerNotification) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.handlers.notification = Some(Arc::new(move |n| Box::pin(f(n))));
        self
    }

    /// How many input-required rounds one `tools/call`, `prompts/get` or `resources/read` may take before
    /// the client gives up (default 8).
    pub fn max_input_rounds(mut self, rounds: usize) -> Self {
        self.max_input_rounds = rounds.max(1);
        self
    }

    /// Connects to the streamable HTTP endpoint at `url`.
    #[cfg(feature = "http-client")]
    pub async fn connect_http(self, url: &str) -> Result<Client, Error> {
        let transport = http::HttpTransport::new(url)?.limits(self.limits.clone());
        self.connect(transport).await
    }

    /// Sets the capabilities the client declares.
    pub fn capabilities(mut self, capabilities: ClientCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets the connection limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Restricts the revisions the client will speak (default: all Keel speaks).
    pub fn protocol_versions(mut self, versions: impl IntoIterator<Item = ProtocolVersion>) -> Self {
        self.versions = versions.into_iter().collect();
        self
    }

    /// How long the `server/discover` probe waits before assuming a legacy server (default 10 s).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Connects over `transport` and agrees on a revision.
    pub async fn connect<T: Transport>(self, transport: T) -> Result<Client, Error> {
        let handler = Arc::new(ClientHandler { handlers: self.handlers.clone() });
        let connection = crate::engine::serve(transport, handler, self.limits.clone());
        let peer = connection.peer.clone();
        peer.set_identity(Identity { capabilities: self.capabilities.clone(), info: self.info.clone() });
        let mut client = Client {
            peer,
            connection: Some(connection),
            info: self.info,
            capabilities: self.capabilities,
            server: ServerDetails::default(),
            handlers: self.handlers,
            max_input_rounds: self.max_input_rounds,
            log_level: std::sync::Mutex::new(None),
            middleware: self.middleware,
        };
        match client.negotiate(&self.versions, self.probe_timeout).await {
            Ok(version) => {
                client.peer.set_protocol_version(version);
                Ok(client)
            }
            Err(e) => {
                client.close().await;
                Err(e)
            }
        }
    }
}

/// What the server told the client about itself.
#[derive(Clone, Debug, Default)]
pub struct ServerDetails {
    /// The server's identity.
    pub info: Option<Implementation>,
    /// The server's capabilities.
    pub capabilities: ServerCapabilities,
    /// Guidance for the model.
    pub instructions: Option<String>,
}

/// A connected MCP client.
#[derive(Debug)]
pub struct Client {
    peer: Peer,
    connection: Option<Connection>,
    info: Implementation,
    capabilities: ClientCapabilities,
    server: ServerDetails,
    handlers: Handlers,
    max_input_rounds: usize,
    log_level: std::sync::Mutex<Option<LoggingLevel>>,
    middleware: Option<middleware::Next>,
}

impl Client {
    /// Starts building a client that introduces itself as `info`.
    pub fn builder(info: Implementation) -> ClientBuilder {
        ClientBuilder {
            info,
            capabilities: ClientCapabilities::default(),
            limits: Limits::default(),
            versions: ProtocolVersion::ALL.to_vec(),
            probe_timeout: Duration::from_secs(10),
            handlers: Handlers::default(),
            max_input_rounds: 8,
            middleware: None,
        }
    }

    /// The negotiated revision.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.peer.protocol_version().expect("set on connect")
    }

    /// The era of the negotiated revision.
    pub fn era(&self) -> Era {
        self.protocol_version().era()
    }

    /// What the server said about itself.
    pub fn server(&self) -> &ServerDetails {
        &self.server
    }

    /// The connection, for raw requests and notifications.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Sends a typed request, adding what the negotiated era requires.
    pub async fn request<R: Request>(&self, params: R) -> Result<R::Result, Error> {
        self.request_with(params, RequestOptions::default()).await
    }

    /// Sends a typed request with options (timeout, progress, cancellation).
    pub async fn request_with<R: Request>(&self, mut params: R, options: RequestOptions) -> Result<R::Result, Error> {
        self.stamp_log_level(&mut params);
        let raw = self.send(&mut params, options).await?;
        Ok(serde_json::from_str(raw.get())?)
    }

    /// Sends a request through the layers, if any, and returns the raw result.
    async fn send<R: Request>(&self, params: &mut R, options: RequestOptions) -> Result<Box<RawValue>, Error> {
        match &self.middleware {
            None => self.peer.request_raw(params, options).await,
            Some(chain) => chain.clone().run(middleware::Outgoing::new(params, options, self.peer.clone())?).await,
        }
    }

    /// The capabilities this client declared.
    pub fn capabilities(&self) -> &ClientCapabilities {
        &self.capabilities
    }

    /// Who this client says it is.
    pub fn info(&self) -> &Implementation {
        &self.info
    }

    /// Sets the level of log messages the server should send: `logging/setLevel` in the legacy era; in the
    /// modern era the level travels in every later request's `_meta`.
    pub async fn set_logging_level(&self, level: LoggingLevel) -> Result<(), Error> {
        if self.era() == Era::Modern {
            *self.log_level.lock().expect("log level lock") = Some(level);
            return Ok(());
        }
        let _: EmptyResult = self.request(SetLevelParams { level, meta: None }).await?;
        Ok(())
    }

    fn stamp_log_level<R: Request>(&self, params: &mut R) {
        if let Some(level) = *self.log_level.lock().expect("log level lock") {
            params.meta_mut().get_or_insert_with(Default::default).log_level.get_or_insert(level);
        }
    }

    /// Checks the connection is alive (legacy era only; the modern era has no `ping`).
    pub async fn ping(&self) -> Result<(), Error> {
        let _: EmptyResult = self.request(PingParams::default()).await?;
        Ok(())
    }

    /// Closes the connection and waits for the transport to shut down (a child process exits).
    pub async fn close(mut self) {
        self.peer.close();
        if let Some(connection) = self.connection.take() {
            connection.finished().await;
        }
    }

    /// Agrees on a revision: the modern probe, else `initialize`.
    ///
    /// A transport that remembers an origin as legacy answers the probe itself (forgetting the origin as it
    /// does). That memory may be stale — the server was upgraded — or of no use to this client, configured
    /// for modern revisions only: then a failed `initialize`, or none to send, leads to a real probe.
    async fn negotiate(&mut self, ours: &[ProtocolVersion], timeout: Duration) -> Result<ProtocolVersion, Error> {
        match self.probe(ours, timeout).await? {
            Probe::Modern(version) => return Ok(version),
            Probe::Legacy => return self.initialize(ours).await,
            Probe::RememberedLegacy => {}
        }
        let mut refused = None;
        if ours.iter().any(|v| v.era() == Era::Legacy) {
            match self.initialize(ours).await {
                Ok(version) => return Ok(version),
                Err(e) if ends_connect(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "initialize failed on an origin remembered as legacy; probing");
                    refused = Some(e);
                }
            }
        }
        match self.probe(ours, timeout).await? {
            Probe::Modern(version) => Ok(version),
            Probe::Legacy | Probe::RememberedLegacy => match refused {
                Some(e) => Err(e),
                None => self.initialize(ours).await,
            },
        }
    }

    /// The modern probe: the modern revision to use, or a fall back to `initialize`.
    ///
    /// An `UnsupportedProtocolVersion` answer is a modern answer: the client retries once with the newest
    /// revision both sides list and never falls back on it. A server that cannot be reached or refuses the
    /// credentials would do the same to `initialize`: that error ends the connect.
    async fn probe(&mut self, ours: &[ProtocolVersion], timeout: Duration) -> Result<Probe, Error> {
        let Some(newest) = ours.iter().filter(|v| v.era() == Era::Modern).max() else { return Ok(Probe::Legacy) };
        let mut attempt = newest.clone();
        for _ in 0..2 {
            let mut params = DiscoverParams::default();
            self.peer.stamp(&mut params, &attempt);
            let options = RequestOptions { timeout: Some(timeout), ..Default::default() };
            match self.peer.request_with(params, options).await {
                Ok(discovered) => {
                    let Some(chosen) = choose_from_offered(ours, &discovered.supported_versions) else {
                        return Ok(Probe::Legacy);
                    };
                    self.server = ServerDetails {
                        info: discovered
                            .meta
                            .as_ref()
                            .and_then(|m| m.get(crate::protocol::meta::keys::SERVER_INFO))
                            .and_then(|v| serde_json::from_value(v.clone()).ok()),
                        capabilities: discovered.capabilities,
                        instructions: discovered.instructions,
                    };
                    return Ok(if chosen.era() == Era::Modern { Probe::Modern(chosen) } else { Probe::Legacy });
                }
                Err(Error::Rpc(e)) if e.code == code::UNSUPPORTED_PROTOCOL_VERSION => {
                    match choose_from_offered(ours, &offered_versions(&e)) {
                        Some(chosen) if chosen.era() == Era::Modern => attempt = chosen,
                        _ => return Ok(Probe::Legacy),
                    }
                }
                Err(Error::Rpc(e)) if e.code == REMEMBERED_LEGACY.0 && e.message == REMEMBERED_LEGACY.1 => {
                    return Ok(Probe::RememberedLegacy);
                }
                Err(e) if ends_connect(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "server/discover probe failed; falling back to initialize");
                    return Ok(Probe::Legacy);
                }
            }
        }
        Ok(Probe::Legacy)
    }

    async fn initialize(&mut self, ours: &[ProtocolVersion]) -> Result<ProtocolVersion, Error> {
        let requested = ours
            .iter()
            .filter(|v| v.era() == Era::Legacy)
            .max()
            .cloned()
            .ok_or_else(|| Error::Protocol("the server speaks no revision this client is configured for".into()))?;
        let params = InitializeParams {
            protocol_version: requested,
            capabilities: self.capabilities.clone(),
            client_info: self.info.clone(),
            meta: None,
        };
        let result = self.peer.request(params).await?;
        if !accept_initialize_answer(&result.protocol_version, ours) {
            return Err(Error::Protocol(format!(
                "the server offered protocol version {}, which this client does not speak",
                result.protocol_version
            )));
        }
        self.server = ServerDetails {
            info: Some(result.server_info),
            capabilities: result.capabilities,
            instructions: result.instructions,
        };
        self.peer.notify(&InitializedParams::default()).await?;
        Ok(result.protocol_version)
    }
}

/// The code and message of the answer a transport gives, instead of sending `server/discover`, to an origin
/// it remembers as legacy (the HTTP transport's era cache).
pub(crate) const REMEMBERED_LEGACY: (i64, &str) = (-32000, "legacy server (cached era)");

/// How the modern probe ended.
enum Probe {
    /// The server speaks this modern revision of ours.
    Modern(ProtocolVersion),
    /// The server is legacy, or speaks no modern revision of ours: `initialize` next.
    Legacy,
    /// The transport answered from its memory of the origin, without asking the server.
    RememberedLegacy,
}

/// Errors any other request would meet alike (unreachable server, refused credentials): they end the connect.
fn ends_connect(error: &Error) -> bool {
    match error {
        Error::Transport(_) => true,
        #[cfg(feature = "http-client")]
        Error::Unauthorized(_) => true,
        _ => false,
    }
}

fn offered_versions(error: &ErrorObject) -> Vec<ProtocolVersion> {
    error
        .data
        .as_ref()
        .and_then(|d| d.get("supported"))
        .and_then(|s| serde_json::from_value::<Vec<ProtocolVersion>>(s.clone()).ok())
        .unwrap_or_default()
}
