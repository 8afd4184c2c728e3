//! What the server's operation layers ([`server::middleware`](crate::server::middleware)) and the client's
//! request layers ([`client::middleware`](crate::client::middleware)) share: tower's [`Layer`] and
//! [`Service`] traits, so that tower's own layers (timeout, concurrency limit, rate limit, retry) apply
//! unchanged, and [`from_fn`], which turns an async function into a layer without writing a `Service` by
//! hand.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::engine::BoxFuture;

pub use tower_layer::Layer;
pub use tower_service::Service;

/// The error type layers may return: any error, boxed (what tower's own layers use).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A layer that runs `f` around the rest of the chain: `f(request, next)` may answer itself, refuse, or
/// call `next.run(request)` (once, several times, or not at all) and look at what comes back.
///
/// On the server `f` is `async fn(Operation, Next) -> Result<Reply, HandlerError>`
/// ([`server::middleware`](crate::server::middleware)); on the client it is
/// `async fn(Outgoing, Next) -> Result<Box<RawValue>, Error>`
/// ([`client::middleware`](crate::client::middleware)).
pub fn from_fn<F>(f: F) -> FromFnLayer<F> {
    FromFnLayer { f }
}

/// The layer [`from_fn`] makes.
#[derive(Clone)]
pub struct FromFnLayer<F> {
    f: F,
}

impl<F> fmt::Debug for FromFnLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFnLayer").finish_non_exhaustive()
    }
}

impl<S, F: Clone> Layer<S> for FromFnLayer<F> {
    type Service = FromFn<F, S>;

    fn layer(&self, next: S) -> Self::Service {
        FromFn { f: self.f.clone(), next }
    }
}

/// The service [`from_fn`] puts around the rest of the chain (`next`).
#[derive(Clone)]
pub struct FromFn<F, S> {
    pub(crate) f: F,
    pub(crate) next: S,
}

impl<F, S> fmt::Debug for FromFn<F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

/// A layered service with its types erased, shared by the clones of the chain it heads. Tower services are
/// driven through `&mut self` (readiness, then one call), so callers take turns through that part; the calls
/// themselves then run side by side.
pub(crate) struct Shared<Req, Resp>(Arc<dyn Fn(Req) -> BoxFuture<Result<Resp, BoxError>> + Send + Sync>);

impl<Req, Resp> Clone for Shared<Req, Resp> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<Req: Send + 'static, Resp: 'static> Shared<Req, Resp> {
    pub(crate) fn new<S>(service: S) -> Self
    where
        S: Service<Req, Response = Resp> + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let service = Arc::new(Mutex::new(service));
        // One box per call, holding the wait for readiness and the service's own future: the erasure is
        // this closure, not a trait object whose call would box that future again.
        Shared(Arc::new(move |request| {
            let service = service.clone();
            Box::pin(async move {
                // Uncontended, the lock is taken without a wait (a queued caller still goes first).
                let mut service = match service.try_lock() {
                    Ok(service) => service,
                    Err(_) => service.lock().await,
                };
                std::future::poll_fn(|cx| service.poll_ready(cx)).await.map_err(Into::into)?;
                let answer = service.call(request);
                // Ready and called: the next caller may get ready while this call runs.
                drop(service);
                answer.await.map_err(Into::into)
            })
        }))
    }

    /// Waits for the service to be ready, calls it, and waits for its answer.
    pub(crate) fn call(&self, request: Req) -> BoxFuture<Result<Resp, BoxError>> {
        (self.0)(request)
    }
}
