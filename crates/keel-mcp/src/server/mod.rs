//! The MCP server API: register tools, resources, resource templates, prompts and completions on a
//! [`ServerBuilder`], then serve the [`Server`] over stdio, any [`Transport`], or streamable HTTP.
//!
//! ```no_run
//! use keel_mcp::server::Server;
//! use keel_mcp::protocol::Implementation;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Add { a: f64, b: f64 }
//!
//! # async fn run() -> Result<(), keel_mcp::Error> {
//! Server::builder(Implementation::new("calculator", "1.0.0"))
//!     .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { format!("{}", a + b) })
//!     .build()
//!     .serve_stdio()
//!     .await
//! # }
//! ```
//!
//! One server answers both eras: a legacy client `initialize`s a session, a modern client names its
//! revision in each request's `_meta`. Handlers see the difference only through [`RequestContext`], whose
//! helpers (progress, logging, elicitation, sampling, roots) do the right thing in either era.
//!
//! [`Transport`]: crate::transport::Transport

use std::future::Future;
use std::sync::{Arc, RwLock};
#[cfg(feature = "tasks")]
use std::time::Duration;

// Imports point one way (checked by `tests/server_layers.rs`): definitions and leaves (`tool`, `catalog`,
// `session`, `state`, `tasks`, ...) ← `context` (what a handler gets) ← `inner` (the shared server) ←
// `request` (what every method shares) ← `dispatch` (the router and the methods) ← the transports
// (`connection`, `http`) ← this module, which nothing imports back.
mod catalog;
mod completion;
pub(crate) mod connection;
pub(crate) mod context;
pub(crate) mod dispatch;
pub(crate) mod error;
pub(crate) mod header_params;
#[cfg(feature = "http-server")]
pub mod http;
mod inner;
pub(crate) mod input;
#[cfg(feature = "http-server")]
pub(crate) mod peer_addr;
mod principal;
mod prompt;
pub(crate) mod request;
mod resource;
pub(crate) mod session;
#[cfg(feature = "skills")]
mod skills;
mod state;
#[cfg(feature = "tasks")]
mod tasks;
mod tool;
pub mod uri_template;
#[cfg(feature = "schema-validation")]
mod validation;

pub use catalog::Change;
pub use completion::CompletionRequest;
pub use context::RequestContext;
pub use error::HandlerError;
pub use principal::Principal;
pub use prompt::{IntoPromptResult, PromptDef, PromptHandler};
pub use resource::{IntoContents, ResourceDef, TemplateDef, TemplateVars};
#[cfg(feature = "skills")]
pub use skills::SkillDef;
#[cfg(feature = "tasks")]
pub use tasks::TaskSupport;
pub use tool::{IntoToolResult, Json, NoArgs, ToolDef, ToolHandler};

use catalog::Catalog;
use completion::CompletionTarget;
use inner::ServerInner;
use tokio::sync::broadcast;

use crate::Limits;
use crate::engine::Connection;
use crate::protocol::capabilities::{ListChangedCapability, ResourcesCapability, ServerCapabilities};
use crate::protocol::{CacheHint, Implementation, JsonObject, ProtocolVersion};

/// Builds a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder {
    info: Implementation,
    instructions: Option<String>,
    catalog: Catalog,
    limits: Limits,
    versions: Vec<ProtocolVersion>,
    cache_hint: CacheHint,
    page_size: usize,
    state_key: Option<[u8; 32]>,
    extensions: Vec<(String, JsonObject)>,
    states: state::StateMap,
}

impl ServerBuilder {
    /// Adds a tool: `handler` is an `async fn(Args) -> R` or `async fn(RequestContext, Args) -> R` (a
    /// closure or a plain `async fn`; the context comes first).
    ///
    /// **Arguments** (`Args`): a struct deriving `serde::Deserialize` and `schemars::JsonSchema` —
    /// schemars **1.x**, re-exported as [`keel_mcp::schemars`](crate::schemars) — whose fields are the
    /// tool's arguments (its doc comments on fields become their descriptions); [`NoArgs`] for a tool that
    /// takes none; or a map (`serde_json::Map`, `HashMap<String, _>`). The input schema must be a JSON
    /// object, so a bare `u32`, `String` or `Vec` is refused: registering it panics, naming the tool.
    ///
    /// **Return types** (`R`):
    ///
    /// | return | the client gets |
    /// |---|---|
    /// | `String`, `&'static str` | one text block |
    /// | [`Json<T>`] (`T: Serialize + JsonSchema`, an object) | `structuredContent` plus the same JSON as text; `T`'s schema is published as `outputSchema` |
    /// | `ContentBlock`, `Vec<ContentBlock>` | those blocks (images, audio, resources) |
    /// | `CallToolResult` | exactly that |
    /// | `Result<R, E>` | `Ok`: as above; `Err`: see [`HandlerError`] — `E` is `HandlerError` or any error `?` converts (std errors, `anyhow::Error`, `Box<dyn Error + Send + Sync>`) |
    ///
    /// ```
    /// use keel_mcp::protocol::Implementation;
    /// use keel_mcp::server::{HandlerError, Json, NoArgs, RequestContext, Server};
    ///
    /// #[derive(serde::Deserialize, keel_mcp::schemars::JsonSchema)]
    /// #[schemars(crate = "keel_mcp::schemars")]
    /// struct Lookup {
    ///     /// The note's id.
    ///     id: u64,
    /// }
    ///
    /// #[derive(serde::Serialize, keel_mcp::schemars::JsonSchema)]
    /// #[schemars(crate = "keel_mcp::schemars")]
    /// struct Note { id: u64, text: String }
    ///
    /// let server = Server::builder(Implementation::new("notes", "1.0.0"))
    ///     .tool("ping", "Answers pong", |_: NoArgs| async { "pong" })
    ///     .tool("get", "Reads a note", |ctx: RequestContext, Lookup { id }: Lookup| async move {
    ///         ctx.progress(0.5, None, None).await;
    ///         if id == 0 {
    ///             return Err(HandlerError::failed("ids start at 1"));
    ///         }
    ///         Ok(Json(Note { id, text: "hello".into() }))
    ///     })
    ///     .build();
    /// ```
    ///
    /// A handler that does not fit says which shapes would:
    ///
    /// ```compile_fail
    /// # use keel_mcp::protocol::Implementation;
    /// # use keel_mcp::server::{NoArgs, RequestContext, Server};
    /// // The context comes first, and a number is no tool result: "is not a tool handler".
    /// Server::builder(Implementation::new("x", "1")).tool("n", "", |_: NoArgs, _ctx: RequestContext| async { 1u32 });
    /// ```
    ///
    /// # Panics
    /// When `Args`' schema is not a JSON object, or a `Json<T>` output's is not (see [`ToolDef::new`]).
    pub fn tool<M, H: ToolHandler<M>>(
        self,
        name: impl Into<String>,
        description: impl Into<String>,
        handler: H,
    ) -> Self {
        self.tool_def(ToolDef::new(name, handler).description(description))
    }

    /// Adds a fully described tool (replacing one of the same name).
    pub fn tool_def(mut self, tool: ToolDef) -> Self {
        self.catalog.upsert_tool(tool);
        self
    }

    /// Adds a resource with a fixed URI.
    pub fn resource(mut self, resource: ResourceDef) -> Self {
        self.catalog.resources.retain(|r| r.resource.uri != resource.resource.uri);
        self.catalog.resources.push(resource);
        self
    }

    /// Publishes a skill (skills extension): its files become `skill://` resources, and `skills/list`,
    /// `skills/get` and `resources/directory/read` serve it.
    #[cfg(feature = "skills")]
    pub fn skill(mut self, skill: SkillDef) -> Self {
        let published = skill.publish();
        for resource in published.resources {
            self.catalog.resources.retain(|r| r.resource.uri != resource.resource.uri);
            self.catalog.resources.push(resource);
        }
        for (dir, children) in published.directories {
            self.catalog.directories.entry(dir).or_default().extend(children);
        }
        self.catalog.skills.retain(|s| s.uri != published.entry.uri);
        self.catalog.skills.push(published.entry);
        self
    }

    /// Adds a resource template.
    pub fn resource_template(mut self, template: TemplateDef) -> Self {
        self.catalog.templates.push(template);
        self
    }

    /// Adds a prompt: `handler` is an `async fn(Args)` or `async fn(RequestContext, Args)`.
    pub fn prompt<M, H: PromptHandler<M>>(
        self,
        name: impl Into<String>,
        description: impl Into<String>,
        handler: H,
    ) -> Self {
        self.prompt_def(PromptDef::new(name, handler).description(description))
    }

    /// Adds a fully described prompt (replacing one of the same name).
    pub fn prompt_def(mut self, prompt: PromptDef) -> Self {
        self.catalog.prompts.retain(|p| p.prompt.name != prompt.prompt.name);
        self.catalog.prompts.push(prompt);
        self
    }

    /// Suggests values for argument `argument` of prompt `prompt`.
    pub fn complete_prompt_argument<F, Fut>(mut self, prompt: &str, argument: &str, complete: F) -> Self
    where
        F: Fn(CompletionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<String>> + Send + 'static,
    {
        let key = (CompletionTarget::Prompt(prompt.to_owned()), argument.to_owned());
        self.catalog.completers.insert(key, completion::erase(complete));
        self
    }

    /// Suggests values for variable `variable` of the resource template `uri_template`.
    pub fn complete_template_variable<F, Fut>(mut self, uri_template: &str, variable: &str, complete: F) -> Self
    where
        F: Fn(CompletionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<String>> + Send + 'static,
    {
        let key = (CompletionTarget::Template(uri_template.to_owned()), variable.to_owned());
        self.catalog.completers.insert(key, completion::erase(complete));
        self
    }

    /// Declares an extension (e.g. `io.modelcontextprotocol/tasks`) with its settings.
    pub fn extension(mut self, id: impl Into<String>, settings: JsonObject) -> Self {
        self.extensions.push((id.into(), settings));
        self
    }

    /// Shares `value` with every handler: [`RequestContext::state::<T>()`](RequestContext::state) returns it.
    /// One value per type (a second `state` of the same type replaces the first); wrap what handlers
    /// change in a `Mutex` or use atomics, as with axum's `State`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use keel_mcp::protocol::Implementation;
    /// use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server};
    ///
    /// #[derive(Default)]
    /// struct Counter(AtomicU64);
    ///
    /// let server = Server::builder(Implementation::new("counter", "1.0.0"))
    ///     .state(Counter::default())
    ///     .tool("hit", "Counts calls", |ctx: RequestContext, _: NoArgs| async move {
    ///         let counter = ctx.state::<Counter>()?;
    ///         Ok::<_, HandlerError>(counter.0.fetch_add(1, Ordering::Relaxed).to_string())
    ///     })
    ///     .build();
    /// ```
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Sets the instructions given to the model.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// Sets the limits of each connection.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Restricts the protocol revisions served (default: all Keel speaks).
    pub fn protocol_versions(mut self, versions: impl IntoIterator<Item = ProtocolVersion>) -> Self {
        self.versions = versions.into_iter().collect();
        self
    }

    /// Sets the cache hints on list and read results (2026-07-28). Default: immediately stale, private.
    pub fn cache_hint(mut self, hint: CacheHint) -> Self {
        self.cache_hint = hint;
        self
    }

    /// Sets how many items a list page holds (default 100).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Sets the key that seals `requestState` (2026-07-28). Servers behind a load balancer must share one;
    /// by default each server draws a random key.
    pub fn request_state_key(mut self, key: [u8; 32]) -> Self {
        self.state_key = Some(key);
        self
    }

    /// Builds the server. Registries are shared by every connection; runtime changes go through
    /// [`Server::add_tool`] and friends.
    pub fn build(self) -> Server {
        let catalog = self.catalog.reindex();
        let mut capabilities = ServerCapabilities::default();
        let listed = Some(ListChangedCapability { list_changed: Some(true) });
        if !catalog.tools.is_empty() {
            capabilities.tools = listed.clone();
        }
        if !catalog.prompts.is_empty() {
            capabilities.prompts = listed;
        }
        if !catalog.resources.is_empty() || !catalog.templates.is_empty() {
            capabilities.resources = Some(ResourcesCapability { list_changed: Some(true), subscribe: Some(true) });
        }
        // Only a registered completer makes `completion/complete` worth calling.
        if !catalog.completers.is_empty() {
            capabilities.completions = Some(JsonObject::new());
        }
        capabilities.logging = Some(JsonObject::new());
        #[cfg_attr(
            not(any(feature = "tasks", feature = "skills")),
            expect(unused_mut, reason = "extensions add theirs")
        )]
        let mut extensions = self.extensions;
        #[cfg(feature = "skills")]
        if !catalog.skills.is_empty() {
            let mut settings = JsonObject::new();
            settings.insert("directoryRead".into(), true.into());
            extensions.push((crate::protocol::capabilities::extension_ids::SKILLS.to_owned(), settings));
        }
        #[cfg(feature = "tasks")]
        if catalog.tools.iter().any(|t| t.def.task_support != TaskSupport::Forbidden) {
            extensions.push((crate::protocol::capabilities::extension_ids::TASKS.to_owned(), JsonObject::new()));
        }
        if !extensions.is_empty() {
            capabilities.extensions = Some(extensions.into_iter().collect());
        }
        let mut versions = self.versions;
        versions.sort();
        versions.dedup();
        let (changes, _) = broadcast::channel(64);
        let info_json = serde_json::to_value(&self.info).expect("implementation info encodes");
        let server_info_meta =
            format!("\"_meta\":{{{}:{info_json}}}", serde_json::Value::from(crate::protocol::meta::keys::SERVER_INFO));
        #[cfg(feature = "tasks")]
        let tasks = Arc::new(tasks::TaskStore::new(&self.limits, Duration::from_millis(500)));
        Server {
            inner: Arc::new(ServerInner {
                info_json,
                server_info_meta,
                info: self.info,
                instructions: self.instructions,
                capabilities,
                catalog: RwLock::new(Arc::new(catalog)),
                changes,
                limits: self.limits,
                versions,
                cache_hint: self.cache_hint,
                page_size: self.page_size,
                #[cfg(feature = "tasks")]
                tasks,
                states: Arc::new(self.states),
                sealer: match self.state_key {
                    Some(key) => input::StateSealer::with_key(key),
                    None => input::StateSealer::random(),
                },
            }),
        }
    }
}

/// An MCP server: cheap to clone, shared by all its connections.
#[derive(Clone, Debug)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl Server {
    /// Starts building a server that introduces itself as `info`.
    pub fn builder(info: Implementation) -> ServerBuilder {
        ServerBuilder {
            info,
            instructions: None,
            catalog: Catalog::default(),
            limits: Limits::default(),
            versions: ProtocolVersion::ALL.to_vec(),
            cache_hint: CacheHint::default(),
            page_size: 100,
            state_key: None,
            extensions: Vec::new(),
            states: state::StateMap::default(),
        }
    }

    /// The capabilities this server declares.
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.inner.capabilities
    }

    /// Adds (or replaces) a tool while serving; clients that listen are told the list changed.
    pub fn add_tool(&self, tool: ToolDef) {
        self.inner.change(|c| c.upsert_tool(tool), Change::Tools);
    }

    /// Removes a tool; returns whether it existed.
    pub fn remove_tool(&self, name: &str) -> bool {
        let exists = self.inner.catalog().tools.iter().any(|t| t.def.tool.name == name);
        if exists {
            self.inner.change(|c| c.tools.retain(|t| t.def.tool.name != name), Change::Tools);
        }
        exists
    }

    /// Offers or withdraws a tool without forgetting it; returns whether it exists.
    pub fn set_tool_enabled(&self, name: &str, enabled: bool) -> bool {
        let exists = self.inner.catalog().tools.iter().any(|t| t.def.tool.name == name);
        if exists {
            let edit = |c: &mut Catalog| {
                for t in c.tools.iter_mut().filter(|t| t.def.tool.name == name) {
                    t.enabled = enabled;
                }
            };
            self.inner.change(edit, Change::Tools);
        }
        exists
    }

    /// Adds (or replaces) a prompt while serving.
    pub fn add_prompt(&self, prompt: PromptDef) {
        let edit = |c: &mut Catalog| {
            c.prompts.retain(|p| p.prompt.name != prompt.prompt.name);
            c.prompts.push(prompt);
        };
        self.inner.change(edit, Change::Prompts);
    }

    /// Removes a prompt; returns whether it existed.
    pub fn remove_prompt(&self, name: &str) -> bool {
        let exists = self.inner.catalog().prompt(name).is_some();
        if exists {
            self.inner.change(|c| c.prompts.retain(|p| p.prompt.name != name), Change::Prompts);
        }
        exists
    }

    /// Adds (or replaces) a resource while serving.
    pub fn add_resource(&self, resource: ResourceDef) {
        let edit = |c: &mut Catalog| {
            c.resources.retain(|r| r.resource.uri != resource.resource.uri);
            c.resources.push(resource);
        };
        self.inner.change(edit, Change::Resources);
    }

    /// Removes a resource; returns whether it existed.
    pub fn remove_resource(&self, uri: &str) -> bool {
        let exists = self.inner.catalog().resource(uri).is_some();
        if exists {
            self.inner.change(|c| c.resources.retain(|r| r.resource.uri != uri), Change::Resources);
        }
        exists
    }

    /// Tells subscribed clients that the content of `uri` changed.
    pub fn resource_updated(&self, uri: &str) {
        let _ = self.inner.changes.send(Change::ResourceUpdated(uri.to_owned()));
    }

    /// Serves one connection over `transport`; returns at once with the running connection.
    pub fn serve<T: crate::transport::Transport>(&self, transport: T) -> Connection {
        let handler = Arc::new(connection::ServerConnection::new(self.inner.clone()));
        let session = handler.session();
        let connection = crate::engine::serve(transport, handler, self.inner.limits.clone());
        let forward = connection::forward_changes(self.inner.clone(), session, connection.peer.clone());
        tokio::spawn(tracing::Instrument::in_current_span(forward));
        connection
    }

    /// Serves stdin/stdout until stdin closes.
    #[cfg(feature = "stdio")]
    pub async fn serve_stdio(self) -> Result<(), crate::Error> {
        let transport = crate::transport::Stdio::new().max_line(self.inner.limits.max_message_bytes);
        self.serve(transport).finished().await;
        Ok(())
    }
}

/// Streamable HTTP: the entry points live here, with the rest of `Server`, so that `http` never imports this
/// module back.
#[cfg(feature = "http-server")]
impl Server {
    /// The MCP endpoint as a `tower::Service`, to mount at a path of your choice (e.g. `/mcp`).
    pub fn http_service(&self, config: http::HttpConfig) -> http::McpService {
        http::McpService::new(self.inner.clone(), config)
    }

    /// Serves the MCP endpoint at `/mcp` on `addr` until the process ends. The listener's limits
    /// (header timeout, connections per peer) are those of [`serve_http_on`](Self::serve_http_on).
    pub async fn serve_http(&self, addr: std::net::SocketAddr, config: http::HttpConfig) -> Result<(), crate::Error> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        self.serve_http_on(listener, config, std::future::pending()).await
    }

    /// Serves the MCP endpoint at `/mcp` on a bound listener until `shutdown` completes. Other paths get
    /// 404.
    ///
    /// Each connection must deliver complete request headers within [`HttpConfig::header_read_timeout`],
    /// and one peer address holds at most [`HttpConfig::max_connections_per_peer`] connections. When
    /// `shutdown` completes, the listener stops accepting, the service shuts down ([`McpService::shutdown`]:
    /// calls get [`HttpConfig::shutdown_grace`], streams end), connections close once their last response
    /// is written, and after at most a quarter of a second more this returns `Ok(())`.
    ///
    /// [`HttpConfig::header_read_timeout`]: http::HttpConfig::header_read_timeout
    /// [`HttpConfig::max_connections_per_peer`]: http::HttpConfig::max_connections_per_peer
    /// [`HttpConfig::shutdown_grace`]: http::HttpConfig::shutdown_grace
    /// [`McpService::shutdown`]: http::McpService::shutdown
    pub async fn serve_http_on(
        &self,
        listener: tokio::net::TcpListener,
        config: http::HttpConfig,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), crate::Error> {
        http::serve(listener, self.http_service(config), shutdown).await
    }
}
