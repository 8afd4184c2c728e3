//! What the server's operation layers ([`server::middleware`](crate::server::middleware)) and the client's
//! request layers ([`client::middleware`](crate::client::middleware)) share: tower's [`Layer`] and
//! [`Service`] traits, so that tower's own layers (timeout, concurrency limit, rate limit, retry) apply
//! unchanged, and [`from_fn`], which turns an async function into a layer without writing a `Service` by
//! hand.

use std::fmt;

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
