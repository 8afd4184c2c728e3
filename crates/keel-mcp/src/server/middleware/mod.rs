//! Operation middleware: tower layers around the MCP operations that run a handler — `tools/call`,
//! `resources/read`, `prompts/get` — on every transport and in both eras.
//!
//! A layer is a tower [`Layer`] over [`Next`], whose service takes an [`Operation`] (the method,
//! the target's name, its raw arguments and the handler's [`RequestContext`]: principal, request id,
//! protocol version, cancellation) and answers with a [`Reply`]. So a layer can:
//!
//! - **pass on**: `next.run(op).await`, and look at what came back (audit, metrics);
//! - **answer** itself: `Ok(Reply::Tool(CallToolResult::text("cached")))`;
//! - **refuse** with a proper MCP error: `Err(HandlerError::failed("quota exceeded"))` reaches the model as
//!   a tool error, `Err(HandlerError::Protocol(ErrorObject::invalid_params(..)))` as that JSON-RPC error
//!   (see [`HandlerError`] for what the client sees of each);
//! - **time out**: tower's [`TimeoutLayer`](https://docs.rs/tower/latest/tower/timeout/struct.TimeoutLayer.html)
//!   works unchanged. When a layer gives up on a running handler, the handler's
//!   [`RequestContext::cancellation`] fires and it gets [`Limits::cancel_grace`](crate::Limits::cancel_grace)
//!   to finish, as when the client cancels; the client gets a tool error "the request timed out" (an
//!   internal error for resources and prompts).
//!
//! Tower's concurrency limit and rate limit work too: the chain is driven as tower expects (readiness first,
//! then one call), one caller at a time through readiness, so a rate limit or concurrency limit holds for the
//! whole server (or the one tool it wraps).
//!
//! Layers apply server-wide ([`ServerBuilder::layer`](super::ServerBuilder::layer)) or to one tool,
//! resource, template or prompt ([`ToolDef::layer`](super::ToolDef::layer) and friends). A request meets the
//! server-wide layers first, then its target's, then the handler; among layers added one after another, the
//! one added last is outermost (it sees the request first), as with axum's `Router::layer`.
//!
//! They run after the request was checked (era, capabilities, `Mcp-Name` headers, a known and visible
//! target, valid arguments) and before the handler: what they see is a request the handler would run.
//! Which targets a caller may see at all is the job of
//! [`ServerBuilder::visibility`](super::ServerBuilder::visibility), which decides lists and calls alike.
//!
//! # Errors
//!
//! A layer's error that is not a [`HandlerError`] (carried in an [`OperationError`]) is one Keel did not
//! make: tower's timeout becomes "the request timed out", tower's load-shed "the server is overloaded, retry
//! later", anything else an internal error — logged, and the client hears only that the request failed.
//!
//! # Cost
//!
//! With no layer installed the dispatch path is the one without middleware: no allocation, no boxing. Each
//! layered request costs a few small allocations (the operation, its boxed futures and its own cancellation
//! token); the operation is one pointer wide, so passing it through layers copies nothing large.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use keel_mcp::middleware::from_fn;
//! use keel_mcp::protocol::Implementation;
//! use keel_mcp::server::middleware::{Next, Operation};
//! use keel_mcp::server::{HandlerError, NoArgs, Server, ToolDef};
//!
//! let audit = from_fn(|op: Operation, next: Next| async move {
//!     let who = op.principal().and_then(|p| p.subject.clone()).unwrap_or_default();
//!     let (method, target) = (op.method(), op.target().to_owned());
//!     let reply = next.run(op).await;
//!     tracing::info!(method, target, who, ok = reply.is_ok(), "audit");
//!     reply
//! });
//! let slow = ToolDef::new("slow", |_: NoArgs| async { "done" })
//!     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)));
//! let server = Server::builder(Implementation::new("demo", "1.0.0")).layer(audit).tool_def(slow).build();
//! # let _ = (server, HandlerError::failed(""));
//! ```

mod next;

use std::error::Error as StdError;
use std::fmt;

use serde_json::value::RawValue;

pub use self::next::Next;
pub use self::next::OperationLayer;
pub(crate) use self::next::{Handler, Layered, Link, Run, Targeted};
pub use crate::middleware::{BoxError, Layer, Service};

use super::context::RequestContext;
use super::error::HandlerError;
use super::principal::Principal;
use crate::engine::CancellationToken;
use crate::protocol::ResourceContents;
use crate::protocol::meta::RequestMeta;
use crate::protocol::prompts::GetPromptResult;
use crate::protocol::tools::CallToolResult;
use crate::protocol::version::Era;
use crate::protocol::{ProtocolVersion, RequestId};

/// One MCP operation on its way to a handler: what a layer sees and passes on.
pub struct Operation(Box<Parts>);

/// What an [`Operation`] carries, boxed: every layer moves the operation (and every future that holds it
/// is moved into its box), so it stays one pointer wide.
struct Parts {
    /// What the request names (method, target, arguments, `_meta`), as dispatch made it.
    request: Targeted,
    context: RequestContext,
    /// The handler at the end of the chain.
    handler: Handler,
    /// The target's own layers, run after the server-wide ones.
    target_chain: Option<Next>,
    link: Link,
}

impl Operation {
    /// The JSON-RPC method: `tools/call`, `resources/read` or `prompts/get`.
    pub fn method(&self) -> &'static str {
        self.0.request.method
    }

    /// The tool or prompt name, or the resource URI.
    pub fn target(&self) -> &str {
        &self.0.request.target
    }

    /// The arguments as the client sent them (tools and prompts), not decoded: a layer that needs them
    /// decodes what it needs.
    pub fn arguments(&self) -> Option<&RawValue> {
        self.0.request.arguments.as_deref()
    }

    /// The request's `_meta`: what the protocol defines (progress token, the 2026-07-28 protocol version
    /// and capabilities) and, in [`other`](RequestMeta::other), any further keys the client sent.
    pub fn meta(&self) -> Option<&RequestMeta> {
        self.0.request.meta.as_ref()
    }

    /// The context the handler will get: request id, protocol version, principal, cancellation, shared state.
    pub fn context(&self) -> &RequestContext {
        &self.0.context
    }

    /// The verified caller, when an authorization layer in front of the HTTP service put one in the request
    /// ([`RequestContext::principal`]).
    pub fn principal(&self) -> Option<&Principal> {
        self.0.context.principal()
    }

    /// The request's id.
    pub fn request_id(&self) -> &RequestId {
        self.0.context.request_id()
    }

    /// The revision the request speaks.
    pub fn protocol_version(&self) -> &ProtocolVersion {
        self.0.context.protocol_version()
    }

    /// The era of [`protocol_version`](Self::protocol_version).
    pub fn era(&self) -> Era {
        self.0.context.protocol_version().era()
    }

    /// Fires when the client cancels the request, or a layer gives up on it.
    pub fn cancellation(&self) -> &CancellationToken {
        self.0.context.cancellation()
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("method", &self.0.request.method)
            .field("target", &self.0.request.target)
            .field("request_id", self.request_id())
            .field("protocol_version", self.protocol_version())
            .finish_non_exhaustive()
    }
}

/// What an operation comes to when it succeeds: the handler's output, or a layer's own answer. The variant
/// must fit the method (`Tool` for `tools/call`, ...); another is answered with an internal error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// The result of a `tools/call` (which may itself be a tool error, `isError: true`).
    Tool(CallToolResult),
    /// The contents a `resources/read` returns.
    Resource(Vec<ResourceContents>),
    /// The result of a `prompts/get`.
    Prompt(GetPromptResult),
}

impl Reply {
    pub(crate) fn into_tool(self) -> Option<CallToolResult> {
        match self {
            Reply::Tool(result) => Some(result),
            _ => None,
        }
    }

    pub(crate) fn into_resource(self) -> Option<Vec<ResourceContents>> {
        match self {
            Reply::Resource(contents) => Some(contents),
            _ => None,
        }
    }

    pub(crate) fn into_prompt(self) -> Option<GetPromptResult> {
        match self {
            Reply::Prompt(result) => Some(result),
            _ => None,
        }
    }
}

/// A [`HandlerError`] as a `std::error::Error`, so that it travels through tower layers (which box their
/// inner service's errors) and comes out as the MCP error it says. [`from_fn`](crate::middleware::from_fn)
/// layers and [`Next::run`] convert both ways for you; a hand-written `Service` returns it boxed.
#[derive(Debug)]
pub struct OperationError(pub HandlerError);

impl fmt::Display for OperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for OperationError {}

impl From<HandlerError> for OperationError {
    fn from(error: HandlerError) -> Self {
        OperationError(error)
    }
}

/// What the client is told of an error that came out of the layers: see [Errors](self#errors).
pub(crate) fn handler_error(error: BoxError) -> HandlerError {
    let error = match error.downcast::<OperationError>() {
        Ok(error) => return error.0,
        Err(error) => error,
    };
    if error.is::<tower::timeout::error::Elapsed>() {
        HandlerError::failed("the request timed out")
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        HandlerError::failed("the server is overloaded, retry later")
    } else {
        HandlerError::Internal(error)
    }
}

impl<F, Fut> Service<Operation> for crate::middleware::FromFn<F, Next>
where
    F: Fn(Operation, Next) -> Fut,
    Fut: Future<Output = Result<Reply, HandlerError>> + Send + 'static,
{
    type Response = Reply;
    type Error = OperationError;
    type Future = FromFnFuture<Fut>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        // `Next` is always ready: whatever waits does so inside `run`.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, op: Operation) -> Self::Future {
        FromFnFuture { reply: (self.f)(op, self.next.clone()) }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`from_fn`](crate::middleware::from_fn) layer's service: the function's own, its
    /// error made an [`OperationError`] (no box of its own: the chain that runs it boxes it once).
    pub struct FromFnFuture<Fut> {
        #[pin]
        reply: Fut,
    }
}

impl<Fut: Future<Output = Result<Reply, HandlerError>>> Future for FromFnFuture<Fut> {
    type Output = Result<Reply, OperationError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.project().reply.poll(cx).map_err(OperationError)
    }
}

impl<Fut> fmt::Debug for FromFnFuture<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFnFuture").finish_non_exhaustive()
    }
}
