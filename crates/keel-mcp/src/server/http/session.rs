//! Legacy (≤ 2025-11-25) HTTP sessions: what a session keeps between POSTs, and the bounded store of live
//! sessions with idle expiry.
//!
//! A session holds no task and no socket of its own: it is a small record (protocol state, requests the
//! server sent and waits on, the event logs of its streams), so idle sessions cost little memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::CancellationToken;

use super::event_log::EventLog;
use super::event_store::EventStore;
use crate::engine::PendingRequests;
use crate::protocol::RequestId;
use crate::server::connection::Session;

/// One legacy session.
#[derive(Debug)]
pub(crate) struct HttpSession {
    pub(crate) id: Arc<str>,
    /// The protocol state `initialize` set up.
    pub(crate) state: Mutex<Session>,
    /// Requests the server sent to the client (sampling, elicitation, roots), answered by later POSTs.
    pub(crate) pending: PendingRequests,
    /// Requests the client sent that are still running, by id, for `notifications/cancelled`.
    pub(crate) in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    streams: Mutex<Streams>,
    last_seen: Mutex<Instant>,
    /// Ends every stream of the session (DELETE, expiry).
    pub(crate) closed: CancellationToken,
    store: Arc<dyn EventStore>,
}

#[derive(Debug, Default)]
struct Streams {
    next: u64,
    logs: HashMap<u64, Arc<EventLog>>,
    /// The stream opened by GET, which carries messages unrelated to any request.
    standalone: Option<Arc<EventLog>>,
}

/// Most finished streams a session keeps for resumption.
const RETAINED_STREAMS: usize = 32;

impl HttpSession {
    fn new(id: Arc<str>, max_pending: usize, store: Arc<dyn EventStore>) -> Self {
        HttpSession {
            id,
            state: Mutex::new(Session::default()),
            pending: PendingRequests::new(max_pending),
            in_flight: Mutex::new(HashMap::new()),
            streams: Mutex::new(Streams::default()),
            last_seen: Mutex::new(Instant::now()),
            closed: CancellationToken::new(),
            store,
        }
    }

    pub(crate) fn touch(&self) {
        *self.last_seen.lock().expect("session clock") = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_seen.lock().expect("session clock").elapsed()
    }

    /// Opens a new stream (for a POSTed request).
    pub(crate) fn open_stream(&self) -> Arc<EventLog> {
        let mut streams = self.streams.lock().expect("streams lock");
        streams.next += 1;
        let number = streams.next;
        let log = Arc::new(EventLog::new(self.id.clone(), number, self.store.clone()));
        streams.logs.insert(number, log.clone());
        if streams.logs.len() > RETAINED_STREAMS {
            // Forget the oldest finished streams; running ones stay.
            let mut finished: Vec<u64> =
                streams.logs.iter().filter(|(_, l)| l.is_finished()).map(|(id, _)| *id).collect();
            finished.sort_unstable();
            let excess = streams.logs.len() - RETAINED_STREAMS;
            for id in finished.into_iter().take(excess) {
                if let Some(log) = streams.logs.remove(&id) {
                    log.forget();
                }
            }
        }
        log
    }

    /// Opens the standalone (GET) stream; `None` while one is already open.
    pub(crate) fn open_standalone(&self) -> Option<Arc<EventLog>> {
        let mut streams = self.streams.lock().expect("streams lock");
        if streams.standalone.as_ref().is_some_and(|s| !s.is_finished()) {
            return None;
        }
        streams.next += 1;
        let number = streams.next;
        let log = Arc::new(EventLog::new(self.id.clone(), number, self.store.clone()));
        streams.logs.insert(number, log.clone());
        streams.standalone = Some(log.clone());
        Some(log)
    }

    /// The standalone stream, when a client has one open.
    pub(crate) fn standalone(&self) -> Option<Arc<EventLog>> {
        self.streams.lock().expect("streams lock").standalone.clone().filter(|s| !s.is_finished())
    }

    /// A stream by number, for resumption.
    pub(crate) fn stream(&self, number: u64) -> Option<Arc<EventLog>> {
        self.streams.lock().expect("streams lock").logs.get(&number).cloned()
    }

    /// Ends the session: streams close, waiting requests fail, running requests are cancelled.
    pub(crate) fn terminate(&self) {
        self.closed.cancel();
        for token in self.in_flight.lock().expect("in-flight lock").values() {
            token.cancel();
        }
        self.pending.clear();
        let streams = self.streams.lock().expect("streams lock");
        for log in streams.logs.values() {
            log.finish();
        }
        self.store.remove_session(&self.id);
    }
}

/// The live sessions.
#[derive(Debug)]
pub(crate) struct SessionStore {
    sessions: Mutex<HashMap<Arc<str>, Arc<HttpSession>>>,
    idle_timeout: Duration,
    max_sessions: usize,
    last_sweep: Mutex<Instant>,
    counter: AtomicU64,
}

impl SessionStore {
    pub(crate) fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        SessionStore {
            sessions: Mutex::new(HashMap::new()),
            idle_timeout,
            max_sessions,
            last_sweep: Mutex::new(Instant::now()),
            counter: AtomicU64::new(0),
        }
    }

    /// A new session, or `None` when the store is full.
    pub(crate) fn create(&self, max_pending: usize, store: Arc<dyn EventStore>) -> Option<Arc<HttpSession>> {
        self.sweep_if_due();
        let id: Arc<str> = new_session_id(self.counter.fetch_add(1, Ordering::Relaxed)).into();
        let session = Arc::new(HttpSession::new(id.clone(), max_pending, store));
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.len() >= self.max_sessions {
            drop(sessions);
            self.sweep();
            sessions = self.sessions.lock().expect("sessions lock");
            if sessions.len() >= self.max_sessions {
                return None;
            }
        }
        sessions.insert(id, session.clone());
        Some(session)
    }

    /// The live session `id`, if any; marks it as active.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        let session = self.sessions.lock().expect("sessions lock").get(id).cloned()?;
        if session.idle_for() > self.idle_timeout {
            self.remove(id);
            return None;
        }
        session.touch();
        Some(session)
    }

    /// Ends and forgets session `id`; false when there was none.
    pub(crate) fn remove(&self, id: &str) -> bool {
        let removed = self.sessions.lock().expect("sessions lock").remove(id);
        match removed {
            Some(session) => {
                session.terminate();
                true
            }
            None => false,
        }
    }

    /// How many sessions are live.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    fn sweep_if_due(&self) {
        let due = {
            let mut last = self.last_sweep.lock().expect("sweep clock");
            let due = last.elapsed() >= (self.idle_timeout / 4).min(Duration::from_secs(60));
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            self.sweep();
        }
    }

    /// Ends every session idle for longer than the timeout.
    fn sweep(&self) {
        let expired: Vec<Arc<HttpSession>> = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            let ids: Vec<Arc<str>> =
                sessions.iter().filter(|(_, s)| s.idle_for() > self.idle_timeout).map(|(id, _)| id.clone()).collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in expired {
            session.terminate();
        }
    }
}

/// 128 random bits as 32 hex digits (visible ASCII, as the spec requires), plus a counter so that ids stay
/// unique even if the system's randomness were to repeat.
fn new_session_id(counter: u64) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    let mut id = String::with_capacity(48);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id.push_str(&format!("-{counter:x}"));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_visible_ascii_and_unique() {
        let a = new_session_id(0);
        let b = new_session_id(1);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
    }

    #[test]
    fn store_is_bounded_and_expires_idle_sessions() {
        let store = SessionStore::new(Duration::from_millis(30), 2);
        let events: Arc<dyn EventStore> = Arc::new(super::super::event_store::MemoryEventStore::new(8));
        let a = store.create(8, events.clone()).unwrap();
        store.create(8, events.clone()).unwrap();
        assert!(store.create(8, events.clone()).is_none(), "full");
        assert!(store.get(&a.id).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(store.get(&a.id).is_none(), "expired");
        assert!(a.closed.is_cancelled());
        assert!(store.create(8, events).is_some(), "room after expiry");
        assert!(store.len() <= 2);
    }
}
