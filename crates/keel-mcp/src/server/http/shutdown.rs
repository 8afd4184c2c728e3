//! Graceful shutdown of the HTTP service: refuse new requests, give the calls in flight a grace period,
//! then cancel them and end every open SSE stream with a `retry` hint so clients reconnect elsewhere.
//!
//! Two signals, read by the request paths: *draining* (set at the first
//! [`McpService::shutdown`](super::McpService::shutdown); new requests get 503) and *stopped* (the grace is
//! over: running calls are cancelled and streams end). "In flight" is counted by the request slots
//! (`slots.rs`), which every call holds until its handler ends. Draining refuses new requests only:
//! a client's answers to the server's own requests (sampling, elicitation) and its cancellations still get
//! in, so that the calls waiting on them can finish within the grace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::HttpInner;
use super::body::sse_event;
use crate::engine::CancellationToken;
use crate::protocol::ErrorObject;

/// After the grace, how long cancelled calls get to give back their slots. Only a call whose response
/// nobody reads (a stalled client) can take that long; its connection is closed by the listener.
const AFTER_STOP_WAIT: Duration = Duration::from_millis(250);

/// The service's shutdown state.
#[derive(Debug)]
pub(crate) struct Shutdown {
    /// Set by the first `shutdown`: a plain flag, since every request reads it.
    draining: AtomicBool,
    /// Cancelled when the grace is over.
    stopped: CancellationToken,
    /// Streamed calls still running in the background: their answers and stream ends are not logged yet.
    streamed: tokio::sync::watch::Sender<usize>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            draining: AtomicBool::new(false),
            stopped: CancellationToken::new(),
            streamed: tokio::sync::watch::channel(0).0,
        }
    }
}

/// A streamed call running in the background, counted until it has logged its end.
#[derive(Debug)]
pub(crate) struct StreamedCall(tokio::sync::watch::Sender<usize>);

impl Drop for StreamedCall {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Shutdown {
    /// Whether new requests are refused.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Fires when running calls must end and open streams close.
    pub(crate) fn stopped(&self) -> &CancellationToken {
        &self.stopped
    }

    /// Counts a streamed call until the guard drops.
    pub(crate) fn streamed_call(&self) -> StreamedCall {
        self.streamed.send_modify(|n| *n += 1);
        StreamedCall(self.streamed.clone())
    }

    /// Completes once no streamed call runs.
    async fn streamed_calls_done(&self) {
        let mut count = self.streamed.subscribe();
        while *count.borrow_and_update() > 0 {
            if count.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Why a request is refused, or a call ended, by the shutdown.
pub(crate) const SHUTTING_DOWN: &str = "the server is shutting down; retry on another instance";

/// The answer a call cancelled by the shutdown gets.
pub(crate) fn shutting_down() -> ErrorObject {
    ErrorObject::internal(SHUTTING_DOWN)
}

/// What an open SSE stream needs to end with the shutdown: the signal, and its last event.
#[derive(Clone, Debug)]
pub(crate) struct StreamStop {
    stopped: CancellationToken,
    retry_ms: u64,
}

impl StreamStop {
    pub(crate) fn new(inner: &HttpInner) -> Self {
        StreamStop { stopped: inner.shutdown.stopped.clone(), retry_ms: inner.config.sse_retry_ms }
    }

    /// Completes when the stream must end.
    pub(crate) async fn fired(&self) {
        self.stopped.cancelled().await;
    }

    /// The `retry` hint when the stream ends because of the shutdown.
    pub(crate) fn retry_hint(&self) -> Option<u64> {
        self.stopped.is_cancelled().then_some(self.retry_ms)
    }

    /// The last event of a stream closed by the shutdown: no data, no id (so the client resumes from its
    /// last real event), and the delay before reconnecting.
    pub(crate) fn final_event(&self) -> Bytes {
        sse_event(None, Some(self.retry_ms), b"")
    }
}

/// Runs the shutdown sequence (see [`McpService::shutdown`](super::McpService::shutdown)).
pub(crate) async fn run(inner: &HttpInner) {
    inner.shutdown.draining.store(true, Ordering::Release);
    let grace = inner.config.shutdown_grace;
    let was_idle = tokio::time::timeout(grace, inner.requests.all_free()).await.is_ok();
    inner.shutdown.stopped.cancel();
    if !was_idle {
        let _ = tokio::time::timeout(AFTER_STOP_WAIT, inner.requests.all_free()).await;
    }
    // What the streamed calls logged last (their answers, their ends) must reach a shared event store before
    // the process goes, or clients resuming elsewhere would wait for it in vain.
    let _ = tokio::time::timeout(AFTER_STOP_WAIT, inner.shutdown.streamed_calls_done()).await;
    if let Err(error) = inner.config.event_store.flush().await {
        tracing::warn!(%error, "the last SSE events may not have reached the shared event store");
    }
}

/// Completes when the process is asked to stop: Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `docker stop`,
/// systemd and Kubernetes send). Give it to [`Server::serve_http_on`](crate::server::Server::serve_http_on) as
/// the shutdown future, or, with axum, to `with_graceful_shutdown` followed by
/// [`McpService::shutdown`](super::McpService::shutdown).
///
/// A signal that cannot be watched (no handler could be installed) never completes it, rather than
/// completing it at once and stopping the server as soon as it starts. The handlers are installed when the
/// future is first polled (`serve_http_on` polls it before it accepts a connection); a signal before that
/// has its default effect.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn shutdown_signal_completes_on_sigterm_only() {
        let waiting = tokio::spawn(super::shutdown_signal());
        // Let the task install its handlers before the signal is sent.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "shutdown_signal completed with no signal sent");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .map(|status| status.success());
        assert_eq!(sent.ok(), Some(true), "could not send SIGTERM to the test process");
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .map_err(|_| "shutdown_signal did not complete after SIGTERM")
            .and_then(|joined| joined.map_err(|_| "the waiting task panicked"))
            .unwrap_or_else(|why| panic!("{why}"));
    }
}
