//! [`Next`], the rest of an operation's chain, and how dispatch sends a request through it: the
//! [`Layered`] path a request takes only when some layer applies to it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::value::RawValue;

use super::{BoxError, Layer, Operation, OperationError, Parts, Reply, Service, handler_error};
use crate::engine::{BoxFuture, CancellationToken, cancel_on_drop};
use crate::middleware::Shared;
use crate::protocol::ResourceContents;
use crate::protocol::meta::RequestMeta;
use crate::protocol::prompts::GetPromptResult;
use crate::protocol::tools::CallToolResult;
use crate::server::context::RequestContext;
use crate::server::error::HandlerError;

/// The rest of an operation's chain: the layers inside this one, then the handler. A layer's service
/// receives it from [`Layer::layer`] and calls it (a tower [`Service`], always ready) or [`run`](Next::run)s
/// it to pass the operation on. Cheap to clone.
#[derive(Clone)]
pub struct Next {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// The end of the server-wide chain: the target's own layers, if any, then its handler.
    Target,
    /// The end of a target's chain: its handler.
    Handler,
    /// A layered service.
    Layered(Shared<Operation, Reply>),
}

impl Next {
    pub(crate) fn target_end() -> Self {
        Next { kind: Kind::Target }
    }

    pub(crate) fn handler_end() -> Self {
        Next { kind: Kind::Handler }
    }

    /// Puts `layer` around `chain` (or `end`, for the first layer).
    pub(crate) fn wrap(chain: Option<Next>, end: Next, layer: impl OperationLayer) -> Next {
        layer.wrap_next(chain.unwrap_or(end))
    }

    /// Passes `op` on and waits for the reply, with the layers' errors turned into what the client will be
    /// told ([Errors](super#errors)).
    pub async fn run(mut self, op: Operation) -> Result<Reply, HandlerError> {
        Service::call(&mut self, op).await.map_err(handler_error)
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Target => "target",
            Kind::Handler => "handler",
            Kind::Layered(_) => "layered",
        };
        f.debug_tuple("Next").field(&kind).finish()
    }
}

impl Service<Operation> for Next {
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<Result<Reply, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut op: Operation) -> Self::Future {
        match &self.kind {
            Kind::Handler => run_handler(op),
            Kind::Target => match op.0.target_chain.take() {
                Some(mut chain) => Service::call(&mut chain, op),
                None => run_handler(op),
            },
            Kind::Layered(service) => service.call(op),
        }
    }
}

/// A layer that fits around operations: a tower [`Layer`] over [`Next`] whose service takes an
/// [`Operation`] and answers with a [`Reply`], with any error type tower layers use. Implemented for every
/// such layer (tower's timeout, concurrency limit, rate limit, [`from_fn`](crate::middleware::from_fn)...).
pub trait OperationLayer {
    #[doc(hidden)]
    fn wrap_next(self, inner: Next) -> Next;
}

impl<L> OperationLayer for L
where
    L: Layer<Next>,
    L::Service: Service<Operation, Response = Reply> + Send + 'static,
    <L::Service as Service<Operation>>::Error: Into<BoxError>,
    <L::Service as Service<Operation>>::Future: Send + 'static,
{
    fn wrap_next(self, inner: Next) -> Next {
        Next { kind: Kind::Layered(Shared::new(self.layer(inner))) }
    }
}

/// The handler at the end of an operation's chain, with what it needs besides the context and arguments.
/// The types are the definitions' erased handlers (`tool::ErasedTool`, `resource::ErasedRead`,
/// `prompt::ErasedPrompt`), spelled out so that this module imports none of the modules that import it.
pub(crate) enum Handler {
    Tool(ToolFn),
    Resource(ReadFn, Vars),
    Prompt(PromptFn, Vars),
}

type ToolFn =
    Arc<dyn Fn(RequestContext, Option<&RawValue>) -> BoxFuture<Result<CallToolResult, HandlerError>> + Send + Sync>;
type ReadFn =
    Arc<dyn Fn(RequestContext, String, Vars) -> BoxFuture<Result<Vec<ResourceContents>, HandlerError>> + Send + Sync>;
type PromptFn = Arc<dyn Fn(RequestContext, Vars) -> BoxFuture<Result<GetPromptResult, HandlerError>> + Send + Sync>;

/// Template variables, or prompt arguments.
type Vars = BTreeMap<String, String>;

/// What ties a layered operation to the request it serves: the request's own cancellation (the client's)
/// and how long a handler that a layer gave up on may take to notice.
pub(crate) struct Link {
    request: CancellationToken,
    grace: Duration,
}

/// Runs the handler. The handler's token is its own: a layer that drops it (a timeout) cancels only the
/// handler, whose answer — the layer's error — still goes out; a cancelled request cancels the handler too.
///
/// The handler's future is made before the box: the box then holds only it and the link, not the context
/// and arguments the handler took.
fn run_handler(op: Operation) -> BoxFuture<Result<Reply, BoxError>> {
    // Field by field out of the box: the request's `_meta`, the largest part, is never copied.
    let parts = op.0;
    let (context, handler, link) = (parts.context, parts.handler, parts.link);
    let own = context.cancellation.clone();
    match handler {
        Handler::Tool(run) => finish(run(context, parts.request.arguments.as_deref()), link, own, Reply::Tool),
        Handler::Resource(read, vars) => finish(read(context, parts.request.target, vars), link, own, Reply::Resource),
        Handler::Prompt(get, arguments) => finish(get(context, arguments), link, own, Reply::Prompt),
    }
}

/// Runs a handler's future [`linked`] to its request, its output made a [`Reply`].
fn finish<T: Send + 'static>(
    handler: BoxFuture<Result<T, HandlerError>>,
    link: Link,
    own: CancellationToken,
    reply: fn(T) -> Reply,
) -> BoxFuture<Result<Reply, BoxError>> {
    Box::pin(async move {
        let output = linked(handler, &link, own).await;
        output.map(reply).map_err(|error| Box::new(OperationError(error)) as BoxError)
    })
}

/// Runs `handler` with `own` cancelled when the request is, or when a layer drops it unfinished (then it
/// finishes its grace period in a task of its own).
async fn linked<T: Send + 'static>(handler: BoxFuture<T>, link: &Link, own: CancellationToken) -> T {
    let mut running = std::pin::pin!(cancel_on_drop(handler, own.clone(), link.grace));
    // The handler first, and the request's cancellation only while it waits: a handler that answers at
    // once never registers with the request's token (`select!` would set up both branches every poll).
    let mut cancelled = std::pin::pin!(link.request.cancelled());
    let finished = std::future::poll_fn(|cx| match running.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => cancelled.as_mut().poll(cx).map(|()| None),
    })
    .await;
    match finished {
        Some(output) => output,
        None => {
            own.cancel();
            running.await
        }
    }
}

/// A request some layer applies to: dispatch sends it through the chain instead of straight to its handler.
pub(crate) struct Layered {
    link: Link,
    server_chain: Option<Next>,
    target_chain: Option<Next>,
}

impl Layered {
    /// `None` when no layer applies (the request takes the plain path, at no cost). Otherwise the handler's
    /// context gets a cancellation token of its own, in place of the request's `cancellation` (see
    /// [`run_handler`]).
    pub(crate) fn new(
        server_chain: Option<&Next>,
        target_chain: Option<&Next>,
        cancellation: &mut CancellationToken,
        grace: Duration,
    ) -> Option<Self> {
        if server_chain.is_none() && target_chain.is_none() {
            return None;
        }
        let request = std::mem::take(cancellation);
        Some(Layered {
            link: Link { request, grace },
            server_chain: server_chain.cloned(),
            target_chain: target_chain.cloned(),
        })
    }

    /// Sends the operation through the chain; `expect` takes the reply apart for the method.
    pub(crate) fn run<T>(
        self,
        request: Targeted,
        context: RequestContext,
        handler: Handler,
        expect: fn(Reply) -> Option<T>,
    ) -> Run<T> {
        let Layered { link, server_chain, target_chain } = self;
        let (mut chain, target_chain) = match (server_chain, target_chain) {
            (Some(server), target) => (server, target),
            (None, target) => (target.unwrap_or_else(Next::handler_end), None),
        };
        let method = request.method;
        let op = Operation(Box::new(Parts { request, context, handler, target_chain, link }));
        Run::Layered { chain: Service::call(&mut chain, op), method, expect }
    }
}

/// A handler's run, straight or through the layers: one future type for both paths, so that the layered
/// one needs no box of its own around the chain's.
pub(crate) enum Run<T> {
    /// No layer applies: the handler's own future.
    Handler(BoxFuture<Result<T, HandlerError>>),
    /// The chain's future, and how to take its reply apart.
    Layered { chain: BoxFuture<Result<Reply, BoxError>>, method: &'static str, expect: fn(Reply) -> Option<T> },
}

impl<T> Future for Run<T> {
    type Output = Result<T, HandlerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Run::Handler(run) => run.as_mut().poll(cx),
            Run::Layered { chain, method, expect } => {
                let reply = std::task::ready!(chain.as_mut().poll(cx)).map_err(handler_error)?;
                Poll::Ready(expect(reply).ok_or_else(|| {
                    HandlerError::Internal(format!("a layer answered {method} with another method's reply").into())
                }))
            }
        }
    }
}

/// What a layered request names: its method, target, arguments and `_meta`.
pub(crate) struct Targeted {
    pub(crate) method: &'static str,
    pub(crate) target: String,
    pub(crate) arguments: Option<Box<RawValue>>,
    pub(crate) meta: Option<RequestMeta>,
}
