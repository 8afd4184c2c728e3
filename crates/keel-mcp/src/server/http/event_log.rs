//! The events of one SSE stream, kept so that a client that lost the connection can resume with
//! `Last-Event-ID` and miss nothing (2025-11-25 and earlier; SEP-1699 polling builds on it).
//!
//! Each stream of a session has a number; each event a sequence number within its stream. The event id
//! on the wire is `<stream>_<seq>`, so an id alone says which stream to replay. The events themselves live
//! in the configured [`EventStore`]; this log adds what only this process knows: whether the stream has
//! ended, and waking the readers that wait for more.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::event_store::EventStore;
use super::session::lock;

/// One stream of a session.
#[derive(Debug)]
pub(crate) struct EventLog {
    session: Arc<str>,
    stream: u64,
    store: Arc<dyn EventStore>,
    state: Mutex<State>,
    changed: Notify,
    /// Woken when a reader attaches or leaves.
    readers_changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    finished: bool,
    /// Bumped when the server drops the connections reading this stream (SEP-1699 polling); readers that
    /// started earlier end, and the client resumes with `Last-Event-ID`.
    disconnects: u64,
    /// SSE bodies reading the stream now.
    readers: usize,
}

/// An SSE body reading a stream. Dropping it (the client hung up, or the body ended) detaches it; a
/// stream with no reader for a while is abandoned ([`EventLog::abandoned`]).
#[derive(Debug)]
pub(crate) struct Reader {
    log: Arc<EventLog>,
    ends_stream: bool,
}

impl Reader {
    pub(crate) fn log(&self) -> &Arc<EventLog> {
        &self.log
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let ended = {
            let mut state = lock(&self.log.state);
            state.readers = state.readers.saturating_sub(1);
            self.ends_stream && !std::mem::replace(&mut state.finished, true)
        };
        if ended {
            self.log.store.finish_stream(&self.log.session, self.log.stream);
        }
        if self.ends_stream {
            // The standalone stream: other instances stop sending it messages.
            self.log.store.standalone_closed(&self.log.session, self.log.stream);
        }
        if self.ends_stream {
            self.log.changed.notify_waiters();
        }
        self.log.readers_changed.notify_waiters();
    }
}

/// The log goes once neither its session's copy nor a reader nor the running call holds it: the store
/// then frees what this process kept of the stream, however the copy went (ended, idle, evicted, or let go
/// because another instance ended the session).
impl Drop for EventLog {
    fn drop(&mut self) {
        self.store.release_stream(&self.session, self.stream);
    }
}

/// What a reader gets: events after its cursor and whether the stream has ended.
pub(crate) struct Batch {
    pub(crate) events: Vec<(u64, Bytes)>,
    pub(crate) finished: bool,
    /// The server dropped this reader's connection; the stream itself goes on.
    pub(crate) disconnected: bool,
}

impl EventLog {
    pub(crate) fn new(session: Arc<str>, stream: u64, store: Arc<dyn EventStore>) -> Self {
        EventLog {
            session,
            stream,
            store,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            readers_changed: Notify::new(),
        }
    }

    /// Attaches a reader; with `ends_stream`, the stream finishes when that reader goes (the standalone
    /// stream, which lives only as long as the client's GET).
    pub(crate) fn attach(self: &Arc<Self>, ends_stream: bool) -> Reader {
        lock(&self.state).readers += 1;
        self.readers_changed.notify_waiters();
        Reader { log: self.clone(), ends_stream }
    }

    /// A client reads the stream on another instance (from the shared event store): it counts as a reader
    /// for the next `grace`, so the call goes on ([`EventLog::abandoned`] starts over).
    pub(crate) fn read_elsewhere(&self) {
        self.readers_changed.notify_waiters();
    }

    /// Completes once the stream has had no reader, here or elsewhere ([`EventLog::read_elsewhere`]), for
    /// `grace` in a row.
    pub(crate) async fn abandoned(&self, grace: Duration) {
        loop {
            let changed = self.readers_changed.notified();
            if lock(&self.state).readers == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(grace) => return,
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }

    /// Forgets the stream's stored events.
    pub(crate) fn forget(&self) {
        self.store.remove_stream(&self.session, self.stream);
    }

    /// The stream's number.
    pub(crate) fn number(&self) -> u64 {
        self.stream
    }

    /// The wire id of event `seq`.
    pub(crate) fn event_id(&self, seq: u64) -> String {
        format!("{}_{seq}", self.stream)
    }

    /// Appends a message; returns false once the stream has ended.
    pub(crate) fn append(&self, message: Bytes) -> bool {
        {
            // Held while storing, so that `finish` cannot slip between the check and the append.
            let state = lock(&self.state);
            if state.finished {
                return false;
            }
            self.store.append(&self.session, self.stream, message);
        }
        self.changed.notify_waiters();
        true
    }

    /// Marks the end of the stream.
    pub(crate) fn finish(&self) {
        let was_finished = std::mem::replace(&mut lock(&self.state).finished, true);
        if !was_finished {
            self.store.finish_stream(&self.session, self.stream);
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.state).finished
    }

    /// Drops the connections currently reading the stream; the stream goes on for readers that resume, on
    /// any instance: it is in the shared store before the connections drop.
    pub(crate) async fn disconnect(&self) {
        if let Err(error) = self.store.keep_resumable(&self.session, self.stream).await {
            tracing::warn!(%error, "a stream closed for polling may not resume on other instances");
        }
        lock(&self.state).disconnects += 1;
        self.changed.notify_waiters();
    }

    /// The current disconnect count, for a reader that starts now.
    pub(crate) fn epoch(&self) -> u64 {
        lock(&self.state).disconnects
    }

    /// Events after `cursor`, waiting for some when there are none and the stream goes on. `epoch` is the
    /// reader's [`EventLog::epoch`] at its start.
    pub(crate) async fn next_after(&self, cursor: u64, epoch: u64) -> Batch {
        loop {
            let notified = self.changed.notified();
            {
                let state = lock(&self.state);
                let events = self.store.events_after(&self.session, self.stream, cursor);
                let disconnected = state.disconnects != epoch;
                if !events.is_empty() || state.finished || disconnected {
                    return Batch { events, finished: state.finished, disconnected };
                }
            }
            notified.await;
        }
    }
}

/// Splits a wire event id into (stream, sequence).
pub(crate) fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, seq) = id.split_once('_')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::http::event_store::MemoryEventStore;

    fn log(stream: u64, capacity: usize) -> EventLog {
        EventLog::new("session".into(), stream, Arc::new(MemoryEventStore::new(capacity)))
    }

    #[tokio::test]
    async fn readers_resume_after_their_cursor_and_see_the_end() {
        let log = log(7, 3);
        assert!(log.append(Bytes::from_static(b"a")));
        assert!(log.append(Bytes::from_static(b"b")));
        let batch = log.next_after(1, 0).await;
        assert_eq!(batch.events, vec![(2, Bytes::from_static(b"b"))]);
        assert!(!batch.finished);
        log.finish();
        assert!(!log.append(Bytes::from_static(b"late")));
        let batch = log.next_after(2, 0).await;
        assert!(batch.events.is_empty() && batch.finished);
        assert_eq!(log.event_id(2), "7_2");
        assert_eq!(parse_event_id("7_2"), Some((7, 2)));
        assert_eq!(parse_event_id("x"), None);
    }

    #[tokio::test]
    async fn a_disconnect_ends_earlier_readers_only() {
        let log = log(3, 8);
        let epoch = log.epoch();
        log.disconnect().await;
        let batch = log.next_after(0, epoch).await;
        assert!(batch.disconnected && batch.events.is_empty() && !batch.finished);
        log.append(Bytes::from_static(b"later"));
        let batch = log.next_after(0, log.epoch()).await;
        assert!(!batch.disconnected);
        assert_eq!(batch.events.len(), 1);
    }

    #[tokio::test]
    async fn capacity_drops_the_oldest() {
        let log = log(1, 2);
        for m in ["a", "b", "c"] {
            log.append(Bytes::from(m));
        }
        let seqs: Vec<u64> = log.next_after(0, 0).await.events.iter().map(|e| e.0).collect();
        assert_eq!(seqs, vec![2, 3]);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_append() {
        let log = Arc::new(log(1, 8));
        let reader = {
            let log = log.clone();
            tokio::spawn(async move { log.next_after(0, 0).await.events })
        };
        tokio::task::yield_now().await;
        log.append(Bytes::from_static(b"x"));
        assert_eq!(reader.await.unwrap(), vec![(1, Bytes::from_static(b"x"))]);
    }
}
