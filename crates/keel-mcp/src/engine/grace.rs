//! How a cancelled request ends: its [`CancellationToken`] fires first, the handler keeps running for a
//! grace period to see it and clean up, and only then is its future dropped. The same rule on every
//! transport: the engine's connections, and HTTP, where the request going away drops the answer's future
//! mid-flight — then what is left of the handler finishes its grace period in a task of its own.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument as _;

use super::{BoxFuture, CancellationToken};

/// Runs `future` until it finishes — `Some(output)` — or `token` fires, whichever comes first. After the
/// token fires the future still runs, for `grace` at most, and its output is discarded: `None`.
///
/// Dropping the returned future before the end cancels `token` and hands the rest of `future` (and of its
/// grace period) to a task of its own, in the same tracing span.
pub(crate) fn run_with_grace<T: Send + 'static>(
    future: BoxFuture<T>,
    token: CancellationToken,
    grace: Duration,
) -> impl Future<Output = Option<T>> + Send + 'static {
    let mut guard = Detach { future: Some(future), token, grace, deadline: None, span: super::current_span() };
    async move {
        let running = guard.future.as_mut()?;
        // The future first: one that finishes in its first poll (most do) never registers a wait on the
        // token. A token cancelled before that still discards the output.
        tokio::select! {
            biased;
            output = running => {
                // Finished: nothing left for the drop guard to carry on.
                let _ = guard.future.take();
                return (!guard.token.is_cancelled()).then_some(output);
            }
            _ = guard.token.cancelled() => {}
        }
        let deadline = Instant::now() + guard.grace;
        guard.deadline = Some(deadline);
        if let Some(running) = guard.future.as_mut() {
            let _ = tokio::time::timeout_at(deadline, running).await;
        }
        let _ = guard.future.take();
        None
    }
}

/// Runs `future` to its end; only dropping the returned future (the HTTP request going away) cancels:
/// `token` fires and the rest of `future` gets `grace` in a task of its own, in the same tracing span. For
/// callers whose token fires by nothing else, this spares [`run_with_grace`]'s wait on the token.
/// Stateless HTTP calls have such a token, and so do handlers behind operation layers (`server::middleware`).
#[cfg(any(test, feature = "server"))]
pub(crate) fn cancel_on_drop<T: Send + 'static>(
    future: BoxFuture<T>,
    token: CancellationToken,
    grace: Duration,
) -> impl Future<Output = T> + Send + 'static {
    let mut guard = Detach { future: Some(future), token, grace, deadline: None, span: super::current_span() };
    std::future::poll_fn(move |cx| {
        let Some(running) = guard.future.as_mut() else { return std::task::Poll::Pending };
        let output = std::task::ready!(running.as_mut().poll(cx));
        // Finished: nothing left for the drop guard to carry on.
        guard.future = None;
        std::task::Poll::Ready(output)
    })
}

/// Owns the handler's future; if dropped with it unfinished, cancels and finishes the grace period
/// elsewhere.
struct Detach<T: Send + 'static> {
    future: Option<BoxFuture<T>>,
    token: CancellationToken,
    grace: Duration,
    /// When the grace period, once begun, ends.
    deadline: Option<Instant>,
    span: tracing::Span,
}

impl<T: Send + 'static> Drop for Detach<T> {
    fn drop(&mut self) {
        let Some(future) = self.future.take() else { return };
        self.token.cancel();
        let deadline = self.deadline.unwrap_or_else(|| Instant::now() + self.grace);
        if deadline <= Instant::now() {
            return;
        }
        // Outside a runtime (its shutdown) the future is simply dropped.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let rest = async move {
                let _ = tokio::time::timeout_at(deadline, future).await;
            };
            runtime.spawn(rest.instrument(self.span.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A handler that, on cancellation, takes `cleanup` to clean up and then records that it did.
    fn handler(token: CancellationToken, cleanup: Duration, cleaned: Arc<AtomicBool>) -> BoxFuture<&'static str> {
        Box::pin(async move {
            token.cancelled().await;
            tokio::time::sleep(cleanup).await;
            cleaned.store(true, Ordering::SeqCst);
            "cleaned up"
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_future_answers_and_a_cancelled_one_gets_its_grace_but_no_answer() {
        let token = CancellationToken::new();
        let done = run_with_grace(Box::pin(async { 7 }), token.clone(), Duration::from_secs(1)).await;
        assert_eq!(done, Some(7));

        let cleaned = Arc::new(AtomicBool::new(false));
        let run = run_with_grace(
            handler(token.clone(), Duration::from_millis(500), cleaned.clone()),
            token.clone(),
            Duration::from_secs(1),
        );
        token.cancel();
        assert_eq!(run.await, None);
        assert!(cleaned.load(Ordering::SeqCst), "the handler ran its cleanup within the grace period");
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_grace_period_the_future_is_dropped() {
        let token = CancellationToken::new();
        let cleaned = Arc::new(AtomicBool::new(false));
        let run = run_with_grace(
            handler(token.clone(), Duration::from_secs(5), cleaned.clone()),
            token.clone(),
            Duration::from_secs(1),
        );
        token.cancel();
        let started = Instant::now();
        assert_eq!(run.await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(!cleaned.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_either_run_cancels_and_finishes_the_grace_period_in_the_background() {
        let token = CancellationToken::new();
        assert_eq!(cancel_on_drop(Box::pin(async { 7 }), token.clone(), Duration::from_secs(1)).await, 7);
        assert!(!token.is_cancelled(), "cancel_on_drop cancels only when dropped");
        for watched in [true, false] {
            let token = CancellationToken::new();
            let cleaned = Arc::new(AtomicBool::new(false));
            let work = handler(token.clone(), Duration::from_millis(200), cleaned.clone());
            let grace = Duration::from_secs(1);
            let mut run: BoxFuture<()> = if watched {
                Box::pin(async move {
                    let _ = run_with_grace(work, token, grace).await;
                })
            } else {
                Box::pin(async move {
                    let _ = cancel_on_drop(work, token, grace).await;
                })
            };
            // Started, then abandoned (an HTTP client going away).
            assert!(futures_poll_once(run.as_mut()).await.is_none());
            drop(run);
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(cleaned.load(Ordering::SeqCst), "watched: {watched}");
        }
    }

    async fn futures_poll_once<F: Future + Unpin>(mut future: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
