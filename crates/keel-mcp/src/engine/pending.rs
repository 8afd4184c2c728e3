//! Outgoing requests awaiting their answers: id allocation, one waiter per id, per-request progress
//! callbacks, and a bound on how many may wait at once. Shared by stream connections ([`Peer`]) and by
//! HTTP sessions, which receive answers in separate POSTs.
//!
//! [`Peer`]: super::Peer

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::peer::ProgressCallback;
use crate::error::Error;
use crate::protocol::jsonrpc::{ErrorObject, RequestId};
use crate::protocol::progress::ProgressParams;

/// A raw answer: the result or the error the other side sent.
pub type Answer = Result<Box<RawValue>, ErrorObject>;

/// How a request of ours ended: the other side's answer, or a failure the transport reported for it.
pub(crate) type Outcome = Result<Box<RawValue>, Error>;

/// Where an answer goes: HTTP sessions take the peer's answer as sent; a [`Peer`](super::Peer) also takes
/// typed transport failures (unreachable server, refused credentials).
enum Sink {
    Answer(oneshot::Sender<Answer>),
    Outcome(oneshot::Sender<Outcome>),
}

struct Waiter {
    answer: Sink,
    progress: Option<ProgressCallback>,
}

/// The table of requests this side sent and still waits for.
pub struct PendingRequests {
    waiters: Mutex<HashMap<RequestId, Waiter>>,
    /// The last id handed out; shared by every copy of a session an instance holds over time, so that an
    /// id is never handed out twice by one process.
    next_id: Arc<AtomicI64>,
    max: usize,
}

impl std::fmt::Debug for PendingRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequests").field("waiting", &self.len()).field("max", &self.max).finish()
    }
}

impl PendingRequests {
    /// A table holding at most `max` waiting requests.
    pub fn new(max: usize) -> Self {
        PendingRequests { waiters: Mutex::new(HashMap::new()), next_id: Arc::new(AtomicI64::new(0)), max }
    }

    /// A table that takes its ids from `ids` (the last id handed out), which other tables may share: HTTP
    /// sessions draw from one counter per process, starting at the instance's own range when several
    /// instances share sessions, so that an answer names one request of one instance, and a session that
    /// leaves this process and comes back never reuses an id.
    #[cfg(feature = "http-server")]
    pub(crate) fn with_shared_ids(max: usize, ids: Arc<AtomicI64>) -> Self {
        PendingRequests { waiters: Mutex::new(HashMap::new()), next_id: ids, max }
    }

    /// Whether a request `id` waits for its answer here.
    #[cfg(feature = "http-server")]
    pub(crate) fn has(&self, id: &RequestId) -> bool {
        self.waiters.lock().expect("pending lock").contains_key(id)
    }

    /// A fresh id, unique within this table.
    pub fn next_id(&self) -> RequestId {
        RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Registers a waiter for `id`; fails when the table is full.
    pub fn insert(
        &self,
        id: RequestId,
        progress: Option<ProgressCallback>,
    ) -> Result<oneshot::Receiver<Answer>, Error> {
        self.register(id, progress, Sink::Answer)
    }

    /// Registers a waiter for `id` that also receives transport failures ([`PendingRequests::fail`]).
    pub(crate) fn insert_outcome(
        &self,
        id: RequestId,
        progress: Option<ProgressCallback>,
    ) -> Result<oneshot::Receiver<Outcome>, Error> {
        self.register(id, progress, Sink::Outcome)
    }

    fn register<T>(
        &self,
        id: RequestId,
        progress: Option<ProgressCallback>,
        sink: impl FnOnce(oneshot::Sender<T>) -> Sink,
    ) -> Result<oneshot::Receiver<T>, Error> {
        let mut waiters = self.waiters.lock().expect("pending lock");
        if waiters.len() >= self.max {
            return Err(Error::TooManyPending(self.max));
        }
        let (tx, rx) = oneshot::channel();
        waiters.insert(id, Waiter { answer: sink(tx), progress });
        Ok(rx)
    }

    /// Hands an answer to whoever waits for `id`; false when nobody does.
    pub fn resolve(&self, id: &RequestId, answer: Answer) -> bool {
        let waiter = self.waiters.lock().expect("pending lock").remove(id);
        match waiter.map(|w| w.answer) {
            Some(Sink::Answer(tx)) => {
                let _ = tx.send(answer);
                true
            }
            Some(Sink::Outcome(tx)) => {
                let _ = tx.send(answer.map_err(Error::Rpc));
                true
            }
            None => false,
        }
    }

    /// Fails the request `id` with an error of this side (the transport could not carry it); false when
    /// nobody waits for it.
    pub fn fail(&self, id: &RequestId, error: Error) -> bool {
        let waiter = self.waiters.lock().expect("pending lock").remove(id);
        match waiter.map(|w| w.answer) {
            Some(Sink::Outcome(tx)) => {
                let _ = tx.send(Err(error));
                true
            }
            Some(Sink::Answer(tx)) => {
                let _ = tx.send(Err(ErrorObject::internal(error.to_string())));
                true
            }
            None => false,
        }
    }

    /// Routes a progress notification to the request whose progress token it names (Keel uses the
    /// request id as the token); false when no request of ours asked for it.
    pub fn progress(&self, params: ProgressParams) -> bool {
        let callback =
            self.waiters.lock().expect("pending lock").get(&params.progress_token).and_then(|w| w.progress.clone());
        match callback {
            Some(callback) => {
                callback(super::Progress { progress: params.progress, total: params.total, message: params.message });
                true
            }
            None => false,
        }
    }

    /// Drops the waiter for `id` (timeout, cancellation).
    pub fn forget(&self, id: &RequestId) {
        self.waiters.lock().expect("pending lock").remove(id);
    }

    /// Drops every waiter: they all see the connection closed.
    pub fn clear(&self) {
        self.waiters.lock().expect("pending lock").clear();
    }

    /// How many requests wait.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.waiters.lock().expect("pending lock").len()
    }
}
