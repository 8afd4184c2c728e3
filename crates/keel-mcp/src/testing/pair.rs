//! A server and a client joined in memory: no sockets, no child process, either era.

use crate::Limits;
use crate::client::{Client, ClientBuilder};
use crate::engine::Connection;
use crate::error::Error;
use crate::protocol::{Implementation, ProtocolVersion};
use crate::server::Server;
use crate::server::http::HttpConfig;
use crate::transport::{Transport, memory};

use super::{Faults, FaultyTransport, HttpServiceTransport, Notifications, Script};

/// A [`Server`] serving a [`Client`] in the same process, over the in-memory transport, with the client's
/// notifications captured ([`Notifications`]) and its answers to the server scripted ([`Script`]).
///
/// The era is the revision the client asks for ([`TestPairBuilder::protocol_version`]): 2025-11-25 and
/// earlier run the legacy handshake and session, 2026-07-28 sends self-contained requests — the same
/// dispatch a stdio or HTTP transport reaches.
///
/// ```
/// use keel_mcp::protocol::{Implementation, ProtocolVersion};
/// use keel_mcp::server::{NoArgs, RequestContext, Server};
/// use keel_mcp::testing::{Script, TestPair};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel_mcp::Error> {
/// let server = Server::builder(Implementation::new("demo", "1"))
///     .tool("poem", "Asks the client's model for a poem", |ctx: RequestContext, _: NoArgs| async move {
///         let params = serde_json::from_value(json!({
///             "messages": [{"role": "user", "content": {"type": "text", "text": "a poem"}}],
///             "maxTokens": 100
///         }))?;
///         let answer = ctx.create_message("poem", params).await?;
///         Ok::<_, keel_mcp::server::HandlerError>(answer.model)
///     })
///     .build();
/// let pair = TestPair::builder()
///     .protocol_version(ProtocolVersion::V2025_11_25)
///     .script(Script::new().sampling_text("roses are red", "test-model"))
///     .connect(&server)
///     .await?;
/// let result = pair.client().call_tool("poem", json!({})).await?;
/// assert_eq!(result.content[0].as_text(), Some("test-model"));
/// assert_eq!(pair.script().sampling_requests().len(), 1);
/// pair.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestPair {
    client: Client,
    notifications: Notifications,
    script: Script,
    /// The server's end of the in-memory stream (none over HTTP: each request is its own exchange).
    server: Option<Connection>,
}

impl TestPair {
    /// A pair to configure (revision, script, faults, limits) before connecting.
    pub fn builder() -> TestPairBuilder {
        TestPairBuilder::default()
    }

    /// Connects a client to `server` with the defaults (the newest revision both support).
    pub async fn connect(server: &Server) -> Result<TestPair, Error> {
        TestPair::builder().connect(server).await
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What the client received besides answers.
    pub fn notifications(&self) -> &Notifications {
        &self.notifications
    }

    /// The client's scripted answers, and the server's requests they answered.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// The server's end of the in-memory stream (its [`Peer`](crate::engine::Peer) sends to the client);
    /// `None` over HTTP.
    pub fn server(&self) -> Option<&Connection> {
        self.server.as_ref()
    }

    /// Closes the client and waits until the server has finished with the connection.
    pub async fn close(self) {
        self.client.close().await;
        if let Some(server) = self.server {
            server.finished().await;
        }
    }
}

/// Configures a [`TestPair`].
#[derive(Debug, Default)]
pub struct TestPairBuilder {
    version: Option<ProtocolVersion>,
    script: Script,
    notifications: Option<Notifications>,
    faults: Option<Faults>,
    limits: Option<Limits>,
    http: Option<HttpConfig>,
}

impl TestPairBuilder {
    /// The revision the client asks for (and so the era the pair speaks).
    pub fn protocol_version(mut self, version: ProtocolVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// The client's answers to the server's sampling, elicitation and roots requests.
    pub fn script(mut self, script: Script) -> Self {
        self.script = script;
        self
    }

    /// Captures into `notifications` (to set its wait bound, or share it).
    pub fn notifications(mut self, notifications: Notifications) -> Self {
        self.notifications = Some(notifications);
        self
    }

    /// Injects `faults` into the client's side of the connection (from the handshake on).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    /// The client's limits (request timeout, ...).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Connects through the server's HTTP service (configured by `config`) in memory instead of the
    /// in-memory stream: the requests take the streamable HTTP transport's paths, each era its own.
    pub fn over_http(mut self, config: HttpConfig) -> Self {
        self.http = Some(config);
        self
    }

    /// Starts `server` on one end of an in-memory connection and connects the client to the other.
    pub async fn connect(self, server: &Server) -> Result<TestPair, Error> {
        let notifications = self.notifications.unwrap_or_default();
        let mut builder = Client::builder(Implementation::new("keel-test-client", env!("CARGO_PKG_VERSION")));
        if let Some(version) = self.version {
            builder = builder.protocol_versions([version]);
        }
        if let Some(limits) = self.limits {
            builder = builder.limits(limits);
        }
        builder = notifications.install(self.script.install(builder));
        let (client, connection) = match self.http {
            Some(config) => {
                let transport = HttpServiceTransport::new(server.http_service(config));
                (connect(builder, transport, self.faults).await?, None)
            }
            None => {
                let (server_end, client_end) = memory::pair();
                let connection = server.serve(server_end);
                (connect(builder, client_end, self.faults).await?, Some(connection))
            }
        };
        Ok(TestPair { client, notifications, script: self.script, server: connection })
    }
}

async fn connect<T: Transport>(builder: ClientBuilder, transport: T, faults: Option<Faults>) -> Result<Client, Error> {
    match faults {
        Some(faults) => builder.connect(FaultyTransport::new(transport, faults)).await,
        None => builder.connect(transport).await,
    }
}
