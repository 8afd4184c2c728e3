//! Legacy (≤ 2025-11-25) HTTP sessions: what a session keeps between POSTs, and the bounded store of live
//! sessions with idle expiry and eviction.
//!
//! A session holds no task and no socket of its own: it is a small record (protocol state, requests the
//! server sent and waits on, the event logs of its streams), so idle sessions cost little memory. What a
//! client can make a session retain is bounded: its requests in flight, their ids, and what `initialize`
//! leaves behind (see [`legacy`](super::legacy)).
//!
//! When the store is full, `initialize` evicts a session instead of refusing everyone: first one that never
//! completed the handshake (`notifications/initialized`) within [`HttpConfig::session_init_grace`], else the
//! one idle longest. Each peer (IP address; an IPv6 /64) holds at most
//! [`HttpConfig::max_sessions_per_peer`]; past it, its own sessions are evicted the same way.
//!
//! With a shared [`SessionStore`](super::SessionStore), the table holds this process's copies of sessions
//! that live on in the store: letting one go (evicted, idle here) ends nothing for the client, so a copy
//! with work under way (running calls, requests waiting for the client's answer, open streams) is never let
//! go, and a copy taken over from another instance does not count toward the peer that sent the request
//! (behind a proxy every request comes from the proxy's address).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::CancellationToken;

use super::HttpConfig;
use super::bus::{Bus, BusEpoch};
use super::event_log::EventLog;
use super::event_store::EventStore;
use super::session_owner::SessionOwner;
use super::session_store::SessionRecord;
use crate::engine::PendingRequests;
use crate::protocol::RequestId;
use crate::server::peer_addr::PeerKey;
use crate::server::principal::Principal;
use crate::server::session::LegacySession;

/// Locks a mutex, going on with the data even if a panicking thread poisoned it: every critical section
/// here leaves its data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a session refused a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    /// The session already runs as many requests as it may.
    Full,
    /// A request with this id is still running.
    DuplicateId,
}

/// One legacy session.
#[derive(Debug)]
pub(crate) struct HttpSession {
    pub(crate) id: Arc<str>,
    /// The protocol state `initialize` set up.
    pub(crate) state: Mutex<LegacySession>,
    /// Requests the server sent to the client (sampling, elicitation, roots), answered by later POSTs.
    pub(crate) pending: PendingRequests,
    /// Requests the client sent that are still running, by id, for `notifications/cancelled`.
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    max_in_flight: usize,
    streams: Mutex<Streams>,
    created: Instant,
    last_seen: Mutex<Instant>,
    /// Set by `notifications/initialized`: the client completed the handshake.
    initialized: AtomicBool,
    peer: Option<PeerKey>,
    /// Ends every stream of the session (DELETE, expiry).
    pub(crate) closed: CancellationToken,
    store: Arc<dyn EventStore>,
    /// The revision of the shared record this copy reflects (see [`SessionStore`](super::SessionStore)); 0 without a store.
    pub(crate) revision: AtomicU64,
    /// The newest revision other instances announced on the session bus: a copy behind it is stale.
    announced: AtomicU64,
    /// When the copy was last found current in the shared store, and under which bus subscription.
    checked: Mutex<Option<Checked>>,
    /// Who created the session, kept in its shared record.
    pub(crate) principal: Option<Arc<Principal>>,
    /// Reaches the other instances sharing the session.
    pub(crate) bus: Option<Arc<Bus>>,
    /// The principal that opened the session, when an authorization layer verified one: only it may use
    /// the session.
    pub(crate) owner: Option<SessionOwner>,
    /// Where stream numbers come from: this process's, shared by all its sessions.
    numbers: Arc<Numbers>,
}

/// The numbers a process gives its sessions' streams and server-to-client requests. One counter per
/// process, never one per session: a session this instance let go of (idle, evicted) and takes over again
/// later gets a fresh copy, which must not reuse the old copy's numbers (its events would be replayed
/// as the new stream's, and a late answer would reach the wrong request). With a shared
/// [`SessionStore`](super::SessionStore), numbers start at the instance's base (its number << 32), so that
/// an event id or request id names one stream or request across the cluster.
#[derive(Debug)]
pub(crate) struct Numbers {
    base: u64,
    streams: AtomicU64,
    /// The last server-to-client request id handed out (see [`PendingRequests::with_shared_ids`]).
    requests: Arc<AtomicI64>,
}

impl Numbers {
    fn new(config: &HttpConfig) -> Self {
        let base = config.session_store.as_ref().map_or(0, |store| u64::from(store.instance() & 0xF_FFFF) << 32);
        Numbers {
            base,
            streams: AtomicU64::new(0),
            requests: Arc::new(AtomicI64::new(i64::try_from(base).unwrap_or(0))),
        }
    }

    /// A stream number within the instance's range: repeats only after 2^32 - 1 streams of this process,
    /// long after any client could still resume the earlier stream.
    fn next_stream(&self) -> u64 {
        self.base + 1 + self.streams.fetch_add(1, Ordering::Relaxed) % u64::from(u32::MAX)
    }
}

/// A copy found current in the shared store (see [`HttpSession::current`]).
#[derive(Clone, Copy, Debug)]
struct Checked {
    at: Instant,
    epoch: BusEpoch,
}

#[derive(Debug, Default)]
struct Streams {
    logs: HashMap<u64, Arc<EventLog>>,
    /// The stream opened by GET, which carries messages unrelated to any request.
    standalone: Option<Arc<EventLog>>,
}

/// Most finished streams a session keeps for resumption.
const RETAINED_STREAMS: usize = 32;

/// A client request running in a session, registered for `notifications/cancelled`; unregistered when
/// dropped, however the request ends (answered, cancelled, or abandoned by a client that hung up).
#[derive(Debug)]
pub(crate) struct InFlight {
    session: Arc<HttpSession>,
    id: RequestId,
    pub(crate) cancellation: CancellationToken,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.session.in_flight).remove(&self.id);
    }
}

impl HttpSession {
    fn new(
        id: Arc<str>,
        peer: Option<PeerKey>,
        max_pending: usize,
        config: &HttpConfig,
        bus: Option<Arc<Bus>>,
        numbers: Arc<Numbers>,
    ) -> Self {
        let now = Instant::now();
        HttpSession {
            id,
            state: Mutex::new(LegacySession::default()),
            pending: PendingRequests::with_shared_ids(max_pending, numbers.requests.clone()),
            in_flight: Mutex::new(HashMap::new()),
            max_in_flight: config.max_requests_per_session.max(1),
            streams: Mutex::new(Streams::default()),
            created: now,
            last_seen: Mutex::new(now),
            initialized: AtomicBool::new(false),
            peer,
            closed: CancellationToken::new(),
            store: config.event_store.clone(),
            revision: AtomicU64::new(0),
            announced: AtomicU64::new(0),
            checked: Mutex::new(None),
            principal: None,
            bus,
            owner: None,
            numbers,
        }
    }

    /// What the shared store keeps of this session.
    pub(crate) fn record(&self) -> SessionRecord {
        let state = lock(&self.state);
        SessionRecord {
            version: state.version.clone(),
            client_info: state.client_info.clone(),
            client_capabilities: state.client_capabilities.clone(),
            log_level: state.log_level,
            subscriptions: state.subscriptions.iter().cloned().collect(),
            principal: self.principal.clone(),
        }
    }

    /// Takes over what another instance stored.
    pub(crate) fn restore(&self, record: SessionRecord, revision: u64) {
        let mut state = lock(&self.state);
        Self::apply(&mut state, record);
        self.revision.store(revision, Ordering::Relaxed);
    }

    /// Takes `record` at `revision`, read from the store, only if the copy still reflects revision `seen`
    /// (the one it held when the read began): a record read before a concurrent save here must not undo
    /// it. Whether it was taken.
    ///
    /// A revision older than `seen` is taken too: the store went back in time (a Redis restored from a
    /// snapshot, a failover to a replica that was behind), and the store is the truth. Announcements of
    /// revisions it no longer has are then forgotten, or the copy would never be current again.
    pub(crate) fn refresh(&self, record: SessionRecord, revision: u64, seen: u64) -> bool {
        let mut state = lock(&self.state);
        // Compared under the state lock, so that a concurrent refresh or save cannot interleave.
        if self.revision.load(Ordering::Relaxed) != seen {
            return false;
        }
        Self::apply(&mut state, record);
        self.revision.store(revision, Ordering::Relaxed);
        if revision < seen {
            self.announced.fetch_min(revision, Ordering::Relaxed);
        }
        true
    }

    /// The copy now reflects revision `saved`, which this instance saved over revision `over` from what
    /// the copy holds (nothing to take: changes made here meanwhile stay).
    pub(crate) fn saved(&self, over: u64, saved: u64) {
        let _ = self.revision.compare_exchange(over, saved, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn apply(state: &mut LegacySession, record: SessionRecord) {
        state.version = record.version;
        state.client_info = record.client_info;
        state.client_capabilities = record.client_capabilities;
        state.log_level = record.log_level;
        state.subscriptions = record.subscriptions.into_iter().collect();
    }

    /// Another instance saved revision `revision` of the session (heard on the session bus).
    pub(crate) fn announce(&self, revision: u64) {
        self.announced.fetch_max(revision, Ordering::Relaxed);
    }

    /// The copy was found current in the shared store by a read that began `at`, under bus subscription
    /// `epoch`.
    pub(crate) fn checked(&self, at: Instant, epoch: Option<BusEpoch>) {
        *lock(&self.checked) = epoch.map(|epoch| Checked { at, epoch });
    }

    /// Whether the copy may be served without asking the shared store: it was found current less than
    /// `every` ago, under the bus subscription still running (`epoch`; none while the bus is down or not
    /// relayed), and no newer revision was announced since. Other instances announce every change they
    /// save, so a copy trusted this way is behind while an announcement is on its way, or for `every` at
    /// most when one was lost.
    pub(crate) fn current(&self, epoch: Option<BusEpoch>, every: Duration) -> bool {
        let Some(epoch) = epoch else { return false };
        let fresh = lock(&self.checked).is_some_and(|c| c.epoch == epoch && c.at.elapsed() < every);
        fresh && self.revision.load(Ordering::Relaxed) >= self.announced.load(Ordering::Relaxed)
    }

    pub(crate) fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_seen).elapsed()
    }

    /// The client sent `notifications/initialized`.
    pub(crate) fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Relaxed);
    }

    /// Registers a client request as running, within the session's bound.
    pub(crate) fn begin(self: &Arc<Self>, id: &RequestId) -> Result<InFlight, Busy> {
        let cancellation = CancellationToken::new();
        let mut in_flight = lock(&self.in_flight);
        if in_flight.len() >= self.max_in_flight {
            return Err(Busy::Full);
        }
        match in_flight.entry(id.clone()) {
            Entry::Occupied(_) => return Err(Busy::DuplicateId),
            Entry::Vacant(slot) => slot.insert(cancellation.clone()),
        };
        Ok(InFlight { session: self.clone(), id: id.clone(), cancellation })
    }

    /// Cancels the running request `id` (`notifications/cancelled`); false when it does not run here.
    pub(crate) fn cancel(&self, id: &RequestId) -> bool {
        match lock(&self.in_flight).get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// How many client requests are running.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// Opens a new stream (for a POSTed request).
    pub(crate) fn open_stream(&self) -> Arc<EventLog> {
        self.new_log(&mut lock(&self.streams))
    }

    /// A new stream's log, forgetting the oldest finished streams past [`RETAINED_STREAMS`].
    fn new_log(&self, streams: &mut Streams) -> Arc<EventLog> {
        let number = self.numbers.next_stream();
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
        let mut streams = lock(&self.streams);
        if streams.standalone.as_ref().is_some_and(|s| !s.is_finished()) {
            return None;
        }
        // Reopening after a hang-up is allowed, so GETs must not pile up logs either.
        let log = self.new_log(&mut streams);
        streams.standalone = Some(log.clone());
        Some(log)
    }

    /// Whether an instance holds this session's standalone stream open, as far as the event store can
    /// tell (`None`: it cannot).
    pub(crate) async fn standalone_open(&self) -> Option<bool> {
        self.store.standalone_open(&self.id).await.unwrap_or(None)
    }

    /// The standalone stream, when a client has one open.
    pub(crate) fn standalone(&self) -> Option<Arc<EventLog>> {
        lock(&self.streams).standalone.clone().filter(|s| !s.is_finished())
    }

    /// A stream by number, for resumption.
    pub(crate) fn stream(&self, number: u64) -> Option<Arc<EventLog>> {
        lock(&self.streams).logs.get(&number).cloned()
    }

    /// Ends the session: streams close, waiting requests fail, running requests are cancelled, and its
    /// events are forgotten.
    pub(crate) fn terminate(&self) {
        self.release();
        self.store.remove_session(&self.id);
    }

    /// Ends this process's copy of the session (what [`HttpSession::terminate`] does, except that the
    /// events stay in the store): the session may go on on other instances.
    pub(crate) fn release(&self) {
        self.closed.cancel();
        for token in lock(&self.in_flight).values() {
            token.cancel();
        }
        self.pending.clear();
        let streams = lock(&self.streams);
        for log in streams.logs.values() {
            log.finish();
        }
    }

    /// Whether this copy has work under way: running client requests, server requests waiting for their
    /// answer, or streams that go on (a running call's, an open GET's).
    fn busy(&self) -> bool {
        !lock(&self.in_flight).is_empty()
            || self.pending.len() > 0
            || lock(&self.streams).logs.values().any(|log| !log.is_finished())
    }

    /// Whether the session may be evicted ahead of others: it never completed the handshake within the grace.
    fn stalled(&self, grace: Duration) -> bool {
        !self.initialized.load(Ordering::Relaxed) && self.created.elapsed() >= grace
    }
}

/// The live sessions.
#[derive(Debug)]
pub(crate) struct SessionTable {
    table: Mutex<Table>,
    idle_timeout: Duration,
    max_sessions: usize,
    max_per_peer: usize,
    init_grace: Duration,
    last_sweep: Mutex<Instant>,
    counter: AtomicU64,
    /// Sessions are also kept in a shared [`SessionStore`](super::SessionStore).
    shared: bool,
    bus: Option<Arc<Bus>>,
    numbers: Arc<Numbers>,
}

#[derive(Debug, Default)]
struct Table {
    sessions: HashMap<Arc<str>, Arc<HttpSession>>,
    per_peer: HashMap<PeerKey, usize>,
}

impl Table {
    fn remove(&mut self, id: &str) -> Option<Arc<HttpSession>> {
        let session = self.sessions.remove(id)?;
        if let Some(peer) = session.peer
            && let Entry::Occupied(mut count) = self.per_peer.entry(peer)
        {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
        Some(session)
    }

    /// Removes (without ending them) the sessions idle for longer than `timeout`; with `shared`, not the
    /// copies with work under way.
    fn remove_idle(&mut self, timeout: Duration, shared: bool) -> Vec<Arc<HttpSession>> {
        let ids: Vec<Arc<str>> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.idle_for() > timeout && !(shared && s.busy()))
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// The session to evict among those `of` admits: one that stalled in its handshake (oldest first), else
    /// the one idle longest. With `shared`, never a copy with work under way: the session lives on in the
    /// shared store, and letting the copy go would only cancel that work.
    fn victim(&self, grace: Duration, shared: bool, of: impl Fn(&HttpSession) -> bool) -> Option<Arc<str>> {
        let candidates = self.sessions.values().filter(|s| of(s) && !(shared && s.busy()));
        let stalled = candidates.clone().filter(|s| s.stalled(grace)).min_by_key(|s| s.created);
        stalled.or_else(|| candidates.max_by_key(|s| s.idle_for())).map(|s| s.id.clone())
    }
}

/// What [`SessionTable::get`] found.
pub(crate) enum Found {
    /// The session, which the request may use (now marked as active).
    Here(Arc<HttpSession>),
    /// A live session here that the request may not use (another principal's): left untouched.
    NotYours,
    /// No live session by that id here.
    Absent,
}

impl SessionTable {
    pub(crate) fn new(config: &HttpConfig, bus: Option<Arc<Bus>>) -> Self {
        SessionTable {
            table: Mutex::new(Table::default()),
            idle_timeout: config.session_idle_timeout,
            max_sessions: config.max_sessions.max(1),
            max_per_peer: config.max_sessions_per_peer.max(1),
            init_grace: config.session_init_grace,
            last_sweep: Mutex::new(Instant::now()),
            counter: AtomicU64::new(0),
            shared: config.session_store.is_some(),
            bus,
            numbers: Arc::new(Numbers::new(config)),
        }
    }

    /// A new session for `peer`, evicting another when the table (or the peer's share) is full.
    pub(crate) fn create(
        &self,
        peer: Option<IpAddr>,
        principal: Option<Arc<Principal>>,
        max_pending: usize,
        config: &HttpConfig,
    ) -> Arc<HttpSession> {
        let id: Arc<str> = new_session_id(self.counter.fetch_add(1, Ordering::Relaxed)).into();
        let numbers = self.numbers.clone();
        let mut session = HttpSession::new(id, peer.map(PeerKey::of), max_pending, config, self.bus.clone(), numbers);
        session.owner = principal.as_deref().map(SessionOwner::of_principal);
        session.principal = principal;
        self.insert(session)
    }

    /// This process's copy of session `id`, which another instance created (see [`SessionStore`](super::SessionStore)), within
    /// the same bounds as [`SessionTable::create`], except that it counts toward no peer's share:
    /// behind a load balancer every instance takes over every session, and the share would only let one
    /// client's traffic evict another's copies. When another request adopted it first, that copy.
    pub(crate) fn adopt(
        &self,
        id: &str,
        (record, revision): (SessionRecord, u64),
        max_pending: usize,
        config: &HttpConfig,
    ) -> Arc<HttpSession> {
        let numbers = self.numbers.clone();
        let mut session = HttpSession::new(id.into(), None, max_pending, config, self.bus.clone(), numbers);
        session.owner = record.principal.as_deref().map(SessionOwner::of_principal);
        session.principal = record.principal.clone();
        session.restore(record, revision);
        session.mark_initialized();
        self.insert(session)
    }

    /// Puts a new session in the table, evicting others to make room.
    fn insert(&self, session: HttpSession) -> Arc<HttpSession> {
        self.sweep_if_due();
        let peer = session.peer;
        let id = session.id.clone();
        let session = Arc::new(session);
        let mut evicted = Vec::new();
        {
            let mut table = lock(&self.table);
            if let Some(existing) = table.sessions.get(&id) {
                // Two requests adopted the same session at once: the first one's copy is the one.
                return existing.clone();
            }
            if let Some(key) = peer
                && table.per_peer.get(&key).is_some_and(|n| *n >= self.max_per_peer)
                && let Some(victim) = table.victim(self.init_grace, self.shared, |s| s.peer == Some(key))
            {
                evicted.extend(table.remove(&victim));
            }
            if table.sessions.len() >= self.max_sessions {
                evicted.extend(table.remove_idle(self.idle_timeout, self.shared));
            }
            // With a shared store, when every copy has work under way, the table holds one more for now: such
            // copies are bounded by the requests and streams that keep them busy.
            if table.sessions.len() >= self.max_sessions
                && let Some(victim) = table.victim(self.init_grace, self.shared, |_| true)
            {
                evicted.extend(table.remove(&victim));
            }
            if let Some(key) = peer {
                *table.per_peer.entry(key).or_default() += 1;
            }
            table.sessions.insert(id, session.clone());
        }
        for session in evicted {
            tracing::debug!(session = %session.id, "legacy session evicted to make room");
            self.end(&session);
        }
        session
    }

    /// The live session `id`, if any, when `allowed` lets this request use it: only then is it marked as
    /// active (a request that may not use a session must not keep it alive).
    pub(crate) fn get(&self, id: &str, allowed: impl FnOnce(&HttpSession) -> bool) -> Found {
        let Some(session) = lock(&self.table).sessions.get(id).cloned() else { return Found::Absent };
        if session.idle_for() > self.idle_timeout && !(self.shared && session.busy()) {
            if let Some(session) = lock(&self.table).remove(id) {
                self.end(&session);
            }
            return Found::Absent;
        }
        if !allowed(&session) {
            return Found::NotYours;
        }
        session.touch();
        Found::Here(session)
    }

    /// Ends and forgets session `id`; false when there was none.
    pub(crate) fn remove(&self, id: &str) -> bool {
        let removed = lock(&self.table).remove(id);
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
        lock(&self.table).sessions.len()
    }

    fn sweep_if_due(&self) {
        let due = {
            let mut last = lock(&self.last_sweep);
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
        let expired = lock(&self.table).remove_idle(self.idle_timeout, self.shared);
        for session in expired {
            self.end(&session);
        }
    }

    /// Ends a session this table let go of (evicted, idle): for good without a shared store; only this
    /// process's copy with one (the shared record has its own expiry, and other instances may serve it).
    fn end(&self, session: &HttpSession) {
        if self.shared { session.release() } else { session.terminate() }
    }

    /// The live session `id` as it is, without marking it active (for messages from other instances).
    pub(crate) fn peek(&self, id: &str) -> Option<Arc<HttpSession>> {
        lock(&self.table).sessions.get(id).cloned()
    }

    /// Forgets this process's copy of session `id` (another instance ended it).
    pub(crate) fn release(&self, id: &str) {
        if let Some(session) = lock(&self.table).remove(id) {
            session.release();
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
    use crate::protocol::logging::LoggingLevel;

    #[test]
    fn ids_are_visible_ascii_and_unique() {
        let a = new_session_id(0);
        let b = new_session_id(1);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
    }

    fn config(max: usize, per_peer: usize) -> HttpConfig {
        HttpConfig::default()
            .max_sessions(max)
            .max_sessions_per_peer(per_peer)
            .session_init_grace(Duration::ZERO)
            .session_idle_timeout(Duration::from_secs(60))
    }

    fn peer(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    /// Whether session `id` is live in `store` (marking it active, as a request of its owner does).
    fn here(store: &SessionTable, id: &str) -> bool {
        matches!(store.get(id, |_| true), Found::Here(_))
    }

    #[test]
    fn a_request_that_may_not_use_a_session_does_not_keep_it_alive() {
        let config = config(10, 10);
        let store = SessionTable::new(&config, None);
        let a = store.create(None, None, 8, &config);
        let long_ago = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
        *lock(&a.last_seen) = long_ago;
        assert!(matches!(store.get(&a.id, |_| false), Found::NotYours));
        assert_eq!(*lock(&a.last_seen), long_ago, "not marked active");
        assert!(here(&store, &a.id));
        assert!(*lock(&a.last_seen) > long_ago);
    }

    #[test]
    fn a_full_store_evicts_stalled_handshakes_first_then_the_longest_idle() {
        let config = config(3, 10);
        let store = SessionTable::new(&config, None);
        let a = store.create(peer(1), None, 8, &config);
        let b = store.create(peer(2), None, 8, &config);
        let c = store.create(peer(3), None, 8, &config);
        a.mark_initialized();
        c.mark_initialized();
        // b never said `notifications/initialized`: it goes first, whatever the idle times.
        let d = store.create(peer(4), None, 8, &config);
        assert!(b.closed.is_cancelled() && !here(&store, &b.id));
        d.mark_initialized();
        std::thread::sleep(Duration::from_millis(2));
        here(&store, &c.id);
        here(&store, &d.id);
        // Everyone completed the handshake: the one idle longest (a) goes.
        store.create(peer(5), None, 8, &config);
        assert!(a.closed.is_cancelled());
        assert!(here(&store, &c.id) && here(&store, &d.id));
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_peer_past_its_share_evicts_its_own_sessions_only() {
        let config = config(100, 2);
        let store = SessionTable::new(&config, None);
        let other = store.create(peer(9), None, 8, &config);
        let first = store.create(peer(1), None, 8, &config);
        let second = store.create(peer(1), None, 8, &config);
        let third = store.create(peer(1), None, 8, &config);
        assert!(first.closed.is_cancelled());
        assert!(!second.closed.is_cancelled() && !third.closed.is_cancelled() && !other.closed.is_cancelled());
        assert_eq!(store.len(), 3);
        // IPv6 peers count by /64.
        let v6 = |tail: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, tail]));
        let x = store.create(v6(1), None, 8, &config);
        store.create(v6(2), None, 8, &config);
        store.create(v6(3), None, 8, &config);
        assert!(x.closed.is_cancelled());
    }

    #[test]
    fn idle_sessions_expire() {
        let config = config(2, 2).session_idle_timeout(Duration::from_millis(30));
        let store = SessionTable::new(&config, None);
        let a = store.create(None, None, 8, &config);
        assert!(here(&store, &a.id));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!here(&store, &a.id), "expired");
        assert!(a.closed.is_cancelled());
    }

    #[test]
    fn a_session_adopted_twice_is_one_copy() {
        let config = config(10, 1);
        let store = SessionTable::new(&config, None);
        let record = || (SessionRecord::default(), 1);
        let first = store.adopt("shared", record(), 8, &config);
        let second = store.adopt("shared", record(), 8, &config);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(store.len(), 1);
        // A copy taken over counts toward no peer's share (behind a proxy, every request comes from one
        // address): the peer's own session does not evict it.
        store.create(peer(1), None, 8, &config);
        assert!(!first.closed.is_cancelled());
        assert_eq!(store.len(), 2);
        assert_eq!(lock(&store.table).per_peer.values().sum::<usize>(), 1);
    }

    #[test]
    fn a_copy_takes_a_record_read_only_while_it_still_holds_the_revision_it_had_when_the_read_began() {
        let config = config(10, 1);
        let table = SessionTable::new(&config, None);
        let at = |level| SessionRecord { log_level: Some(level), ..SessionRecord::default() };
        let copy = table.adopt("s", (at(LoggingLevel::Info), 3), 8, &config);
        assert!(copy.refresh(at(LoggingLevel::Error), 5, 3));
        // Read before a save here moved the copy to 5: that older record must not undo it.
        assert!(!copy.refresh(at(LoggingLevel::Debug), 4, 3));
        assert_eq!((copy.record().log_level, copy.revision.load(Ordering::Relaxed)), (Some(LoggingLevel::Error), 5));
        // A save here over revision 5: the copy keeps what it holds (a change another request made
        // meanwhile included) and notes the new revision; over a revision it no longer holds, nothing.
        copy.saved(5, 6);
        copy.saved(5, 7);
        assert_eq!((copy.record().log_level, copy.revision.load(Ordering::Relaxed)), (Some(LoggingLevel::Error), 6));
    }

    #[test]
    fn a_store_that_went_back_in_time_is_followed_and_its_lost_announcements_forgotten() {
        let config = config(10, 1);
        let table = SessionTable::new(&config, None);
        let copy = table.adopt("s", (SessionRecord::default(), 7), 8, &config);
        let epoch = Some(BusEpoch::new(1, 0));
        let every = Duration::from_secs(60);
        copy.announce(7);
        // Redis restored from a snapshot holds revision 5: the copy takes it, and is current at it.
        let restored = SessionRecord { log_level: Some(LoggingLevel::Warning), ..SessionRecord::default() };
        assert!(copy.refresh(restored, 5, 7));
        assert_eq!(copy.record().log_level, Some(LoggingLevel::Warning));
        copy.checked(Instant::now(), epoch);
        assert!(copy.current(epoch, every), "stuck behind an announcement the store no longer has");
        // Revisions saved after the restore are announced again, and noticed.
        copy.announce(6);
        assert!(!copy.current(epoch, every));
    }

    #[test]
    fn a_copy_is_current_only_when_checked_recently_under_the_same_subscription_and_nothing_newer_announced() {
        let config = config(10, 1);
        let table = SessionTable::new(&config, None);
        let copy = table.adopt("s", (SessionRecord::default(), 3), 8, &config);
        let (one, two) = (Some(BusEpoch::new(1, 0)), Some(BusEpoch::new(2, 0)));
        let lagged = Some(BusEpoch::new(1, 1));
        let every = Duration::from_secs(60);
        assert!(!copy.current(one, every), "never checked");
        copy.checked(Instant::now(), one);
        assert!(copy.current(one, every));
        assert!(!copy.current(two, every) && !copy.current(lagged, every), "another subscription, or messages lost");
        assert!(!copy.current(None, every), "no subscription");
        assert!(!copy.current(one, Duration::ZERO), "checked too long ago");
        copy.checked(Instant::now() - Duration::from_secs(61), one);
        assert!(!copy.current(one, every), "the check's age counts from when its read began");
        copy.checked(Instant::now(), one);
        copy.announce(3);
        assert!(copy.current(one, every), "the revision it holds");
        copy.announce(4);
        assert!(!copy.current(one, every), "a newer revision was saved elsewhere");
        assert!(copy.refresh(SessionRecord::default(), 4, 3));
        assert!(copy.current(one, every));
    }

    #[test]
    fn a_shared_copy_with_work_under_way_is_neither_expired_nor_evicted() {
        let store = Arc::new(crate::server::http::MemorySessionStore::new(8));
        let config =
            config(1, 1).session_idle_timeout(Duration::from_millis(30)).session_store(store.instance_handle());
        let table = SessionTable::new(&config, None);
        let record = || (SessionRecord::default(), 1);
        let busy = table.adopt("busy", record(), 8, &config);
        let call = busy.begin(&RequestId::Number(1)).unwrap();
        // Room is needed and the copy is idle past the timeout, but a call runs in it.
        table.adopt("other", record(), 8, &config);
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(table.get("busy", |_| true), Found::Here(_)) && !busy.closed.is_cancelled());
        drop(call);
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(table.get("busy", |_| true), Found::Absent), "idle with nothing under way: let go");
        assert!(busy.closed.is_cancelled());
    }

    #[test]
    fn reopened_standalone_streams_do_not_pile_up() {
        let config = config(2, 2);
        let store = SessionTable::new(&config, None);
        let session = store.create(None, None, 8, &config);
        for _ in 0..200 {
            let log = session.open_standalone().expect("the previous one ended");
            drop(log.attach(true));
        }
        assert!(lock(&session.streams).logs.len() <= RETAINED_STREAMS + 1);
    }

    #[test]
    fn in_flight_requests_are_bounded_unique_and_released_on_drop() {
        let config = config(2, 2).max_requests_per_session(2);
        let store = SessionTable::new(&config, None);
        let session = store.create(None, None, 8, &config);
        let one = session.begin(&RequestId::Number(1)).unwrap();
        assert_eq!(session.begin(&RequestId::Number(1)).unwrap_err(), Busy::DuplicateId);
        let _two = session.begin(&RequestId::Number(2)).unwrap();
        assert_eq!(session.begin(&RequestId::Number(3)).unwrap_err(), Busy::Full);
        drop(one);
        assert_eq!(session.in_flight(), 1);
        assert!(session.begin(&RequestId::Number(3)).is_ok());
    }
}
