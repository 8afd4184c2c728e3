//! [`SessionStore`]: legacy sessions shared by several server instances, and an in-memory one.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::session::lock;
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::logging::LoggingLevel;
use crate::protocol::{Implementation, ProtocolVersion};
use crate::server::principal::Principal;

/// The future a [`SessionStore`] (or a shared [`EventStore`](super::EventStore)) returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A shared store could not be reached or answered nonsense. Requests that need the store get 503 with
/// `Retry-After`; the store's own client reconnects.
#[derive(Debug)]
pub struct StoreError(String);

impl StoreError {
    /// An error saying what failed.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError(message.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// What a legacy session keeps in a shared store: everything `initialize` and later requests
/// (`logging/setLevel`, `resources/subscribe`) set up, so that any instance can serve the session.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The protocol revision `initialize` negotiated.
    pub version: Option<ProtocolVersion>,
    /// The client's `clientInfo`, trimmed to its identifying text.
    pub client_info: Option<Implementation>,
    /// What the client declared it supports.
    pub client_capabilities: ClientCapabilities,
    /// The level `logging/setLevel` chose.
    pub log_level: Option<LoggingLevel>,
    /// The resources the client subscribed to.
    pub subscriptions: Vec<String>,
    /// The verified caller that created the session, when an authorization layer put one in the
    /// `initialize` request's extensions.
    pub principal: Option<Arc<Principal>>,
}

/// Legacy sessions shared by several server instances. Set it with
/// [`HttpConfig::session_store`](super::HttpConfig::session_store).
///
/// Where legacy sessions are kept when several server instances share them (behind a load
/// balancer, without sticky sessions). Without one (the default), a session lives only in the process that
/// created it, in the bounded table of [`HttpConfig::max_sessions`](super::HttpConfig::max_sessions).
///
/// With a store, each instance still keeps the sessions it serves in its own table (the pending server
/// requests, running calls and open streams are per process); the store holds what another instance needs
/// to take a session over: the negotiated protocol state, and when it expires. A request naming a session
/// this instance does not hold loads it from the store; a request in a session it holds costs one store
/// round trip ([`SessionStore::touch`]), which refreshes the expiry and says whether the record changed.
/// With a [`SessionBus`](super::SessionBus) too, on which instances announce the changes they save, that
/// check happens only when a change is announced, after the bus subscription was down, or once per
/// [`HttpConfig::session_check_interval`](super::HttpConfig::session_check_interval).
///
/// Every method takes the session's time to live: a record not touched for that long is gone for every
/// instance (idle expiry). Implementations must refresh it on [`load`](Self::load) and
/// [`touch`](Self::touch), and count a revision up on each [`save`](Self::save) and
/// [`update`](Self::update), so that instances holding a copy notice the change.
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// A number no other instance sharing this store holds, fixed for the store's life. Stream numbers and
    /// the ids of server-to-client requests start from it (times 2^32), so that they stay unique across
    /// instances. Only its low 20 bits are used, so that those ids stay exact for clients that read JSON
    /// numbers as doubles.
    fn instance(&self) -> u32;

    /// Stores (creates or replaces) the record of session `id`; returns its new revision. Called once, by
    /// `initialize`; later changes go through [`update`](Self::update).
    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64>;

    /// Replaces the record of session `id`, refreshing its expiry, only while it exists at `revision` (the
    /// one the caller's copy reflects), as one atomic step. Never brings back a session deleted or expired
    /// meanwhile, and never overwrites a change another instance saved since `revision` (the caller loads
    /// that, re-applies its own change and tries again).
    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a SessionRecord,
        revision: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate>;

    /// The record of session `id` and its revision, refreshing its expiry; `None` when there is none.
    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>>;

    /// The record of session `id` and its revision **without** refreshing its expiry; `None` when there
    /// is none. An instance reads a session it does not hold this way first, so that a request the
    /// session's owner did not send (another principal's, holding a leaked id) cannot keep it alive; the
    /// owner's request then [`load`](Self::load)s it. The default calls `load` (with `ttl`), which does
    /// refresh it: override it when the store can read without refreshing.
    fn read<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        self.load(id, ttl)
    }

    /// Refreshes the expiry of session `id`, in use; its revision, or `None` when the session is gone
    /// (deleted or expired, by any instance).
    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>>;

    /// Forgets session `id`; whether it existed.
    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;
}

/// What [`SessionStore::update`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionUpdate {
    /// The record was replaced; its new revision.
    Saved(u64),
    /// Another instance saved the record since the given revision: nothing was written.
    Stale,
    /// The session no longer exists (deleted or expired): nothing was written.
    Gone,
}

/// A [`SessionStore`] in this process's memory, for tests and for several services in one process: at
/// most `capacity` records (expired ones are dropped first; past it, [`save`](SessionStore::save) of a new
/// session fails).
#[derive(Debug)]
pub struct MemorySessionStore {
    capacity: usize,
    instances: std::sync::atomic::AtomicU32,
    records: Mutex<HashMap<String, Stored>>,
}

#[derive(Debug)]
struct Stored {
    record: SessionRecord,
    revision: u64,
    expires: Instant,
}

impl MemorySessionStore {
    /// A store holding at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        MemorySessionStore {
            capacity: capacity.max(1),
            instances: std::sync::atomic::AtomicU32::new(0),
            records: Mutex::new(HashMap::new()),
        }
    }

    /// The store as seen by one more instance: a handle with its own [`SessionStore::instance`] number.
    pub fn instance_handle(self: &Arc<Self>) -> Arc<dyn SessionStore> {
        let number = self.instances.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Arc::new(MemoryInstance { store: self.clone(), number })
    }

    fn live<'a>(records: &'a mut HashMap<String, Stored>, id: &str, ttl: Duration) -> Option<&'a mut Stored> {
        let now = Instant::now();
        if records.get(id).is_some_and(|s| s.expires <= now) {
            records.remove(id);
        }
        let stored = records.get_mut(id)?;
        stored.expires = now + ttl;
        Some(stored)
    }
}

/// One instance's handle on a [`MemorySessionStore`].
#[derive(Debug)]
struct MemoryInstance {
    store: Arc<MemorySessionStore>,
    number: u32,
}

impl SessionStore for MemoryInstance {
    fn instance(&self) -> u32 {
        self.number
    }

    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64> {
        self.store.save(id, record, ttl)
    }

    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        self.store.load(id, ttl)
    }

    fn read<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        self.store.read(id, ttl)
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a SessionRecord,
        revision: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate> {
        self.store.update(id, record, revision, ttl)
    }

    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        self.store.touch(id, ttl)
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.store.remove(id)
    }
}

impl SessionStore for MemorySessionStore {
    fn instance(&self) -> u32 {
        0
    }

    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64> {
        let mut records = lock(&self.records);
        let now = Instant::now();
        if !records.contains_key(id) && records.len() >= self.capacity {
            records.retain(|_, s| s.expires > now);
            if records.len() >= self.capacity {
                return Box::pin(std::future::ready(Err(StoreError::new("the in-memory store is full"))));
            }
        }
        let revision = records.get(id).map_or(0, |s| s.revision) + 1;
        records.insert(id.to_owned(), Stored { record: record.clone(), revision, expires: now + ttl });
        Box::pin(std::future::ready(Ok(revision)))
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a SessionRecord,
        revision: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate> {
        let mut records = lock(&self.records);
        let outcome = match Self::live(&mut records, id, ttl) {
            None => SessionUpdate::Gone,
            Some(stored) if stored.revision != revision => SessionUpdate::Stale,
            Some(stored) => {
                stored.record = record.clone();
                stored.revision += 1;
                SessionUpdate::Saved(stored.revision)
            }
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        let mut records = lock(&self.records);
        let found = Self::live(&mut records, id, ttl).map(|s| (s.record.clone(), s.revision));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn read<'a>(&'a self, id: &'a str, _: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        let records = lock(&self.records);
        let found = records.get(id).filter(|s| s.expires > Instant::now()).map(|s| (s.record.clone(), s.revision));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        let mut records = lock(&self.records);
        let found = Self::live(&mut records, id, ttl).map(|s| s.revision);
        Box::pin(std::future::ready(Ok(found)))
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let removed = lock(&self.records).remove(id).is_some();
        Box::pin(std::future::ready(Ok(removed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_expire_unless_touched_and_revisions_count_up() {
        let store = Arc::new(MemorySessionStore::new(2));
        let a = store.instance_handle();
        let b = store.instance_handle();
        assert_ne!(a.instance(), b.instance());
        let ttl = Duration::from_secs(60);
        let mut record = SessionRecord::default();
        assert_eq!(a.save("s", &record, ttl).await.unwrap(), 1);
        record.log_level = Some(LoggingLevel::Debug);
        assert_eq!(b.save("s", &record, ttl).await.unwrap(), 2);
        assert_eq!(a.touch("s", ttl).await.unwrap(), Some(2));
        assert_eq!(a.load("s", ttl).await.unwrap(), Some((record.clone(), 2)));
        // Expired: gone for everyone.
        a.save("t", &record, Duration::ZERO).await.unwrap();
        assert_eq!(b.touch("t", ttl).await.unwrap(), None);
        // Full: an expired record makes room, a live one does not.
        a.save("u", &record, Duration::ZERO).await.unwrap();
        a.save("v", &record, ttl).await.unwrap();
        assert!(a.save("w", &record, ttl).await.is_err());
        // A change over the revision read is saved; over an older one, or of a session gone, it is not.
        record.log_level = Some(LoggingLevel::Error);
        assert_eq!(a.update("s", &record, 1, ttl).await.unwrap(), SessionUpdate::Stale);
        assert_eq!(a.update("s", &record, 2, ttl).await.unwrap(), SessionUpdate::Saved(3));
        assert_eq!(a.update("t", &record, 1, ttl).await.unwrap(), SessionUpdate::Gone);
        assert_eq!(a.touch("t", ttl).await.unwrap(), None);
        assert!(b.remove("s").await.unwrap());
        assert!(!b.remove("s").await.unwrap());
        assert_eq!(a.load("s", ttl).await.unwrap(), None);
    }
}
