//! [`CancellationToken`]: a one-way signal shared by its clones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Cancels a request ([`RequestOptions::cancellation`](super::RequestOptions::cancellation)) or observes a
/// cancellation. Clones share one signal; once cancelled it stays cancelled.
///
/// Keel's own (a flag and a [`Notify`]) rather than tokio-util's: that crate would be compiled into every
/// build for this type alone.
#[derive(Clone, Debug, Default)]
pub struct CancellationToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancellationToken {
    /// A token that is not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: every current and future [`cancelled`](Self::cancelled) wait ends.
    pub fn cancel(&self) {
        if !self.inner.cancelled.swap(true, Ordering::AcqRel) {
            self.inner.notify.notify_waiters();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a `cancel` between the two is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// A guard that cancels the token when dropped.
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: self }
    }
}

/// Cancels its token when dropped ([`CancellationToken::drop_guard`]).
#[derive(Debug)]
#[must_use = "the token is cancelled as soon as the guard is dropped"]
pub struct DropGuard {
    token: CancellationToken,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn cancel_wakes_every_waiter_and_stays_cancelled() {
        let token = CancellationToken::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let t = token.clone();
                tokio::spawn(async move { t.cancelled().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(!token.is_cancelled());
        token.clone().cancel();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(1), w).await.expect("woken").unwrap();
        }
        assert!(token.is_cancelled());
        // A wait that starts after the cancellation ends at once.
        tokio::time::timeout(Duration::from_millis(50), token.cancelled()).await.expect("already cancelled");
    }

    #[tokio::test]
    async fn an_uncancelled_token_keeps_waiting_and_a_drop_guard_cancels() {
        let token = CancellationToken::new();
        assert!(tokio::time::timeout(Duration::from_millis(20), token.cancelled()).await.is_err());
        let guard = token.clone().drop_guard();
        assert!(!token.is_cancelled());
        drop(guard);
        assert!(token.is_cancelled());
    }
}
