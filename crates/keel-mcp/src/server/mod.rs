//! The MCP server API: register tools (and, with the server feature set, resources, prompts, …) on a
//! [`ServerBuilder`], then serve the [`Server`] over stdio, any [`Transport`], or HTTP.
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
//! revision in each request's `_meta`; handlers see the difference only through [`RequestContext`].
//!
//! [`Transport`]: crate::transport::Transport

use std::collections::HashMap;
use std::sync::Arc;

pub(crate) mod context;
pub(crate) mod dispatch;
#[cfg(feature = "http-server")]
pub mod http;
mod tool;

pub use context::RequestContext;
pub use tool::{IntoToolResult, Json, NoArgs, ToolDef, ToolHandler};

use crate::Limits;
use crate::engine::Connection;
use crate::protocol::capabilities::{ListChangedCapability, ServerCapabilities};
use crate::protocol::{CacheHint, Implementation, ProtocolVersion};

/// Builds a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder {
    info: Implementation,
    instructions: Option<String>,
    tools: Vec<ToolDef>,
    limits: Limits,
    versions: Vec<ProtocolVersion>,
    cache_hint: CacheHint,
    page_size: usize,
}

impl ServerBuilder {
    /// Adds a tool: `handler` is an `async fn(Args)` or `async fn(RequestContext, Args)` where `Args`
    /// derives `Deserialize` and `JsonSchema`.
    pub fn tool<M, H: ToolHandler<M>>(
        self,
        name: impl Into<String>,
        description: impl Into<String>,
        handler: H,
    ) -> Self {
        self.tool_def(ToolDef::new(name, handler).description(description))
    }

    /// Adds a fully described tool.
    pub fn tool_def(mut self, tool: ToolDef) -> Self {
        self.tools.retain(|t| t.tool.name != tool.tool.name);
        self.tools.push(tool);
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

    /// Sets the cache hints on list results (2026-07-28). Default: immediately stale, private.
    pub fn cache_hint(mut self, hint: CacheHint) -> Self {
        self.cache_hint = hint;
        self
    }

    /// Sets how many items a list page holds (default 100).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Builds the server. Registries are fixed from here on and shared by every connection.
    pub fn build(self) -> Server {
        let mut capabilities = ServerCapabilities::default();
        if !self.tools.is_empty() {
            capabilities.tools = Some(ListChangedCapability { list_changed: Some(false) });
        }
        capabilities.logging = Some(Default::default());
        let index = self.tools.iter().enumerate().map(|(i, t)| (t.tool.name.clone(), i)).collect();
        let mut versions = self.versions;
        versions.sort();
        versions.dedup();
        Server {
            inner: Arc::new(ServerInner {
                info: self.info,
                instructions: self.instructions,
                capabilities,
                tools: self.tools,
                tool_index: index,
                limits: self.limits,
                versions,
                cache_hint: self.cache_hint,
                page_size: self.page_size,
            }),
        }
    }
}

/// An MCP server: cheap to clone, shared by all its connections.
#[derive(Clone, Debug)]
pub struct Server {
    inner: Arc<ServerInner>,
}

#[derive(Debug)]
pub(crate) struct ServerInner {
    pub(crate) info: Implementation,
    pub(crate) instructions: Option<String>,
    pub(crate) capabilities: ServerCapabilities,
    pub(crate) tools: Vec<ToolDef>,
    pub(crate) tool_index: HashMap<String, usize>,
    pub(crate) limits: Limits,
    pub(crate) versions: Vec<ProtocolVersion>,
    pub(crate) cache_hint: CacheHint,
    pub(crate) page_size: usize,
}

impl Server {
    /// Starts building a server that introduces itself as `info`.
    pub fn builder(info: Implementation) -> ServerBuilder {
        ServerBuilder {
            info,
            instructions: None,
            tools: Vec::new(),
            limits: Limits::default(),
            versions: ProtocolVersion::ALL.to_vec(),
            cache_hint: CacheHint::default(),
            page_size: 100,
        }
    }

    /// The capabilities this server declares.
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.inner.capabilities
    }

    /// Serves one connection over `transport`; returns at once with the running connection.
    pub fn serve<T: crate::transport::Transport>(&self, transport: T) -> Connection {
        let handler = Arc::new(dispatch::ServerConnection::new(self.inner.clone()));
        crate::engine::serve(transport, handler, self.inner.limits.clone())
    }

    /// Serves stdin/stdout until stdin closes.
    #[cfg(feature = "stdio")]
    pub async fn serve_stdio(self) -> Result<(), crate::Error> {
        let transport = crate::transport::Stdio::new().max_line(self.inner.limits.max_message_bytes);
        self.serve(transport).finished().await;
        Ok(())
    }
}
