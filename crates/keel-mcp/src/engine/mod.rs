//! The JSON-RPC engine: one peer type used by both client and server, over any [`Transport`].
//!
//! It allocates request ids, keeps pending requests with timeouts, decodes each answer as the result type
//! of the request waiting under its id, runs incoming requests concurrently up to a bound, relays
//! cancellation (`notifications/cancelled`) and progress (`notifications/progress`) in both directions, and
//! answers malformed input with the right JSON-RPC error while it keeps serving.
//!
//! [`Transport`]: crate::transport::Transport

mod cancellation;
mod connection;
mod grace;
pub(crate) mod peer;
mod pending;

pub use cancellation::{CancellationToken, DropGuard};
pub use connection::{Connection, Handler, serve};
#[cfg(feature = "server")]
pub(crate) use grace::cancel_on_drop;
pub(crate) use grace::run_with_grace;
pub use peer::{Inbound, Peer, Progress, ProgressCallback, RequestOptions};
pub use pending::{Answer, PendingRequests};

/// The current `tracing` span, for per-request code to hand to what it spawns. While no subscriber was ever
/// set (a server that does not trace), that is no span, and the dispatcher lookup is spared.
pub(crate) fn current_span() -> tracing::Span {
    if tracing::dispatcher::has_been_set() { tracing::Span::current() } else { tracing::Span::none() }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;
