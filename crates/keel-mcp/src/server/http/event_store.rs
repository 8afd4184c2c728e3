//! [`EventStore`]: where the events of legacy SSE streams are kept so that clients can resume them with
//! `Last-Event-ID`. The in-memory default keeps a bounded window per stream; a store shared by several
//! server instances (behind a load balancer) can implement the trait over a database.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::session::lock;
use super::session_store::StoreFuture;

/// The events of a stream another instance holds, oldest first, read from a shared [`EventStore`]; it ends
/// when that stream ends (or the store stops answering).
pub type RemoteEvents = Pin<Box<dyn futures_util::Stream<Item = (u64, Bytes)> + Send>>;

/// Keeps the events of SSE streams, per session and stream, for replay.
///
/// Sequence numbers start at 1 in each stream and grow by one per event. Implementations may drop old
/// events (a resuming client then gets what is left) but must never reorder or alter them.
///
/// The instance running a stream appends to it and reads it back ([`events_after`](Self::events_after)) on
/// the request path, so both must be quick and must not wait on the network: a store shared by several
/// instances keeps a local copy of its own streams and writes them to the shared backend in the
/// background. Another instance resumes a stream it does not hold with [`replay`](Self::replay).
pub trait EventStore: Send + Sync + Debug + 'static {
    /// Stores one event (a JSON-RPC message) of `stream` in `session`; returns its sequence number.
    fn append(&self, session: &str, stream: u64, message: Bytes) -> u64;

    /// The stored events of `stream` after sequence number `after`, oldest first.
    fn events_after(&self, session: &str, stream: u64, after: u64) -> Vec<(u64, Bytes)>;

    /// Forgets one stream.
    fn remove_stream(&self, session: &str, stream: u64);

    /// Forgets every stream of a session (it ended or expired).
    fn remove_session(&self, session: &str);

    /// This process no longer serves `stream`: the session's copy here let go of it (the session ended,
    /// went idle or was evicted here, or the stream was one too many to retain). Drop what the process keeps
    /// of it, and keep what other instances resume from. Called once per stream, when its log goes.
    ///
    /// The default does nothing, which suits a store that keeps nothing in the process; a store that keeps a
    /// local copy must free it here, or it grows with every session the instance ever served.
    fn release_stream(&self, session: &str, stream: u64) {
        let _ = (session, stream);
    }

    /// Marks `stream` as ended: readers on other instances stop after its last event. Called once per
    /// stream. The default does nothing (a store of one process has no remote readers).
    fn finish_stream(&self, session: &str, stream: u64) {
        let _ = (session, stream);
    }

    /// Resolves once every event appended so far is in the shared backend (bounded by the store's own
    /// timeout), before the process goes: graceful shutdown waits for it. The default resolves at once (a
    /// store of one process).
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// The client opened the session's standalone (GET) stream `stream` on this instance: let the other
    /// instances know (see [`standalone_open`](Self::standalone_open)) before the client can be told it is
    /// open. Bounded by the store's own timeout. The default has nothing to tell (a store of one process).
    fn standalone_opened<'a>(&'a self, session: &'a str, stream: u64) -> StoreFuture<'a, ()> {
        let _ = (session, stream);
        Box::pin(std::future::ready(Ok(())))
    }

    /// The standalone stream `stream`, which [`standalone_opened`](Self::standalone_opened) announced, ended.
    fn standalone_closed(&self, session: &str, stream: u64) {
        let _ = (session, stream);
    }

    /// Whether any instance holds the session's standalone stream open, so that a message for it sent on
    /// the [`SessionBus`](super::SessionBus) reaches a client; `None` when the store cannot tell (the
    /// default), and such messages are sent anyway.
    fn standalone_open<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<bool>> {
        let _ = session;
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Makes `stream` resumable on every instance before the server drops the connections reading it
    /// (SEP-1699 polling), since the client may reconnect to another instance at once: resolves once the
    /// shared backend holds the events appended so far and knows the stream, even one with no event yet.
    /// Bounded by the store's own timeout; an error leaves the stream resumable on this instance only. The
    /// default resolves at once (a store of one process).
    fn keep_resumable<'a>(&'a self, session: &'a str, stream: u64) -> StoreFuture<'a, ()> {
        let _ = (session, stream);
        Box::pin(std::future::ready(Ok(())))
    }

    /// The events after `after` of a stream this instance does not hold, as they come, until the stream
    /// ends; `None` when the store knows no such stream. The default knows none (a store of one process).
    fn replay<'a>(&'a self, session: &'a str, stream: u64, after: u64) -> StoreFuture<'a, Option<RemoteEvents>> {
        let _ = (session, stream, after);
        Box::pin(std::future::ready(Ok(None)))
    }
}

/// The default [`EventStore`]: in memory, at most `capacity` events per stream.
#[derive(Debug)]
pub struct MemoryEventStore {
    capacity: usize,
    streams: Mutex<HashMap<(Arc<str>, u64), Stream>>,
}

#[derive(Debug, Default)]
struct Stream {
    events: VecDeque<(u64, Bytes)>,
    last_seq: u64,
}

impl MemoryEventStore {
    /// A store keeping the last `capacity` events of each stream: the resumption window. A client resuming
    /// from an event older than those gets the kept ones, with no sign of the gap.
    pub fn new(capacity: usize) -> Self {
        MemoryEventStore { capacity: capacity.max(1), streams: Mutex::new(HashMap::new()) }
    }
}

impl EventStore for MemoryEventStore {
    fn append(&self, session: &str, stream: u64, message: Bytes) -> u64 {
        let mut streams = lock(&self.streams);
        let entry = streams.entry((session.into(), stream)).or_default();
        entry.last_seq += 1;
        if entry.events.len() == self.capacity {
            entry.events.pop_front();
        }
        entry.events.push_back((entry.last_seq, message));
        entry.last_seq
    }

    fn events_after(&self, session: &str, stream: u64, after: u64) -> Vec<(u64, Bytes)> {
        let streams = lock(&self.streams);
        streams
            .get(&(Arc::<str>::from(session), stream))
            .map(|s| s.events.iter().filter(|(seq, _)| *seq > after).cloned().collect())
            .unwrap_or_default()
    }

    fn remove_stream(&self, session: &str, stream: u64) {
        lock(&self.streams).remove(&(Arc::<str>::from(session), stream));
    }

    fn remove_session(&self, session: &str) {
        lock(&self.streams).retain(|(s, _), _| s.as_ref() != session);
    }

    /// Only this process reads these events: once its log goes, nobody can.
    fn release_stream(&self, session: &str, stream: u64) {
        self.remove_stream(session, stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_window_per_stream_and_removal() {
        let store = MemoryEventStore::new(2);
        for m in ["a", "b", "c"] {
            store.append("s", 1, Bytes::from(m));
        }
        assert_eq!(store.append("s", 2, Bytes::from("x")), 1);
        let seqs: Vec<u64> = store.events_after("s", 1, 0).iter().map(|e| e.0).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(store.events_after("s", 1, 2).len(), 1);
        store.remove_stream("s", 1);
        assert!(store.events_after("s", 1, 0).is_empty());
        store.remove_session("s");
        assert!(store.events_after("s", 2, 0).is_empty());
    }
}
