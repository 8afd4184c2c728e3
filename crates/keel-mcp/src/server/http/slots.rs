//! The request slots: at most [`HttpConfig::max_concurrent_requests`](super::HttpConfig) calls in progress,
//! each holding a [`RequestSlot`] until its handler ends (a cancelled one: after its grace period; a legacy
//! stream: until its client hangs up), and a way for the shutdown to wait until every slot is free without
//! taking any (answers to the server's own requests must still get in).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, Semaphore};

/// The pool of slots.
#[derive(Debug)]
pub(crate) struct Slots {
    semaphore: Semaphore,
    max: usize,
    /// Set while someone waits for the pool to empty, so that releases only wake anyone then.
    watched: AtomicBool,
    released: Notify,
}

/// One call in progress; frees its slot when dropped.
#[derive(Debug)]
pub(crate) struct RequestSlot {
    slots: Arc<Slots>,
}

impl Slots {
    pub(crate) fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Slots { semaphore: Semaphore::new(max), max, watched: AtomicBool::new(false), released: Notify::new() }
    }

    /// A slot, or `None` when every slot is taken.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<RequestSlot> {
        // The permit is given back by `RequestSlot`'s drop.
        self.semaphore.try_acquire().ok()?.forget();
        Some(RequestSlot { slots: self.clone() })
    }

    /// Completes once no slot is taken.
    pub(crate) async fn all_free(&self) {
        self.watched.store(true, Ordering::Release);
        loop {
            let released = self.released.notified();
            let mut released = std::pin::pin!(released);
            // Registered before the count is read, so a release between the two is not missed.
            released.as_mut().enable();
            if self.semaphore.available_permits() >= self.max {
                return;
            }
            released.await;
        }
    }
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        self.slots.semaphore.add_permits(1);
        if self.slots.watched.load(Ordering::Acquire) {
            self.slots.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn bounded_and_waits_for_every_slot_without_taking_any() {
        let slots = Arc::new(Slots::new(2));
        let a = slots.try_acquire().unwrap();
        let b = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none(), "full");
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.all_free().await }
        });
        drop(a);
        // The waiter takes nothing: the freed slot is available to a new call.
        let c = slots.try_acquire().expect("a freed slot is free for others while the shutdown waits");
        drop(b);
        assert!(!waiter.is_finished());
        drop(c);
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("every slot free").unwrap();
    }
}
