//! Legacy sessions, SSE event logs, the session bus and tasks shared through Redis (feature `redis`): see
//! [`RedisStores`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo as _, RedisError};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use crate::engine::{CancellationToken, DropGuard};

use super::HttpConfig;
use super::bus::SessionBus;
use super::event_store::{EventStore, MemoryEventStore, RemoteEvents};
use super::session::lock;
use super::session_store::{SessionRecord, SessionStore, SessionUpdate, StoreError, StoreFuture};
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::logging::LoggingLevel;
use crate::protocol::{Implementation, JsonObject, ProtocolVersion};
use crate::server::principal::Principal;

/// How to reach Redis and what to keep there. Every bound has a default.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server, as a `redis://` (or `rediss://`, `unix://`) URL.
    pub url: String,
    /// Prefix of every key and channel, so that several servers share one Redis. Default `keel:`.
    pub key_prefix: String,
    /// Events kept per SSE stream for resumption on another instance (approximately: Redis trims by
    /// whole nodes). Default 1,024. It is the resumption window: a client resuming from an event older
    /// than the ones kept gets the kept ones, with no sign of the gap, so make it exceed the most events a
    /// stream may send while its client is away.
    pub events_per_stream: usize,
    /// A stream's events expire this long after its last event. Default 1 hour.
    pub event_ttl: Duration,
    /// Event writes waiting to reach Redis; past it they are dropped (and logged). Default 65,536.
    pub write_queue: usize,
    /// Streams this instance relays from Redis at once for clients resuming streams another instance ran
    /// (each holds a connection); past it such a resumption gets 503. Default 256.
    pub max_remote_readers: usize,
    /// Of those, the most one session may hold, so that one session (made-up `Last-Event-ID`s included)
    /// cannot take them all; past it the session's next such resumption gets 503. Default 4.
    pub max_remote_readers_per_session: usize,
    /// Longest wait for Redis to answer (or accept a connection); past it the request fails (503 where a
    /// client waits on it). Default 2 s.
    pub timeout: Duration,
}

impl RedisConfig {
    /// The defaults, for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            key_prefix: "keel:".into(),
            events_per_stream: 1024,
            event_ttl: Duration::from_secs(3600),
            write_queue: 65_536,
            max_remote_readers: 256,
            max_remote_readers_per_session: 4,
            timeout: Duration::from_secs(2),
        }
    }

    /// Sets [`RedisConfig::key_prefix`].
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets [`RedisConfig::events_per_stream`] (at least 1).
    pub fn events_per_stream(mut self, n: usize) -> Self {
        self.events_per_stream = n.max(1);
        self
    }

    /// Sets [`RedisConfig::event_ttl`].
    pub fn event_ttl(mut self, ttl: Duration) -> Self {
        self.event_ttl = ttl;
        self
    }

    /// Sets [`RedisConfig::write_queue`] (at least 1).
    pub fn write_queue(mut self, n: usize) -> Self {
        self.write_queue = n.max(1);
        self
    }

    /// Sets [`RedisConfig::max_remote_readers`].
    pub fn max_remote_readers(mut self, n: usize) -> Self {
        self.max_remote_readers = n;
        self
    }

    /// Sets [`RedisConfig::max_remote_readers_per_session`].
    pub fn max_remote_readers_per_session(mut self, n: usize) -> Self {
        self.max_remote_readers_per_session = n;
        self
    }

    /// Sets [`RedisConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The Redis-backed stores of one instance: a [`RedisSessionStore`], a [`RedisEventStore`] and a
/// [`RedisSessionBus`] sharing a connection (and, with the `tasks` feature, the instance's tasks). Give them
/// to the service with [`HttpConfig::redis`], and several instances of one server serve every legacy
/// session behind a plain load balancer (no sticky sessions).
///
/// One `RedisStores` per service: the instance number it claims names that service's streams, requests
/// and bus messages, so two services given the same stores would take each other's for their own.
///
/// ```no_run
/// # async fn run(server: keel_mcp::server::Server) -> Result<(), Box<dyn std::error::Error>> {
/// use keel_mcp::server::http::{HttpConfig, RedisConfig, RedisStores};
///
/// let stores = RedisStores::connect(RedisConfig::new("redis://127.0.0.1:6379/")).await?;
/// let config = HttpConfig::default().redis(&stores);
/// server.serve_http("0.0.0.0:8080".parse()?, config).await?;
/// # Ok(())
/// # }
/// ```
///
/// # What is stored
///
/// - `<prefix>s:<session id>`: a hash with the session's record (`r`, JSON: protocol version, client
///   info and capabilities, log level, subscriptions, principal) and its revision (`v`). It expires after
///   [`HttpConfig::session_idle_timeout`](super::HttpConfig::session_idle_timeout) without use; an instance
///   holding the session refreshes it when it checks its copy (one round trip: `PEXPIRE` and `HGET`
///   pipelined), at most once per
///   [`HttpConfig::session_check_interval`](super::HttpConfig::session_check_interval) unless another
///   instance announces a change on the bus.
/// - `<prefix>ev:<session id>:<stream>`: a Redis stream with the events of one SSE stream (entry id
///   `0-<seq>`, field `m`), at most [`RedisConfig::events_per_stream`] (approximately: `MAXLEN ~`) and
///   expiring [`RedisConfig::event_ttl`] after its last event; its end is the entry `1-0`.
///   `<prefix>evs:<session id>` lists a session's streams, for DELETE and for resuming a stream closed for
///   polling (SEP-1699) before its first event, which is listed there before its connections drop: a
///   sorted set scored by when each stream's events expire (milliseconds since the Unix epoch, by the
///   clock of the instance that wrote last), from which the streams whose events expired are trimmed as
///   others are written, so it holds no more streams than Redis does. It expires
///   [`RedisConfig::event_ttl`] after the last event of any of them. DELETE removes the streams in chunks
///   of 512 per script call, so Redis serves others in between.
/// - `<prefix>instances`: a counter from which each instance takes its number, from which stream numbers
///   and the ids of server-to-client requests start (so they are unique across instances). The number is
///   the instance's only while it holds `<prefix>alive:<instance>` (below): a number whose claim another
///   instance holds is skipped, and every heartbeat raises the counter to the instance's number, so a
///   counter that started over after Redis lost its data gives a running instance's number again only if
///   that instance cannot renew its claim while a newcomer waits (see `<prefix>live`), or if Redis came
///   back from a snapshot less than 15 s old taken before the instance claimed its number (`<prefix>live`
///   survives that, the claim does not). Then the instance logs an error ("restart this instance") and
///   keeps serving, its stream numbers and request ids colliding with the newcomer's: restart it.
/// - `<prefix>live`: present while instances reach Redis (refreshed by every heartbeat, expiring as a
///   claim does). Found missing, Redis's data has just begun (Redis started, restored a snapshot or failed
///   over, persistence or not) or no instance reached it for a lapse: `<prefix>settling` is then set for a
///   heartbeat, twice [`RedisConfig::timeout`] and a second, while running instances may not have renewed
///   their claims yet (each heartbeat has a connection of its own, made anew after a failed beat).
///   Meanwhile a new instance's claim is tentative (`connect` waits out the rest of that time, and a
///   running instance whose heartbeat finds its number claimed that way takes it back: the newcomer moves
///   on to the next number), and no task is declared failed for its instance's missing heartbeat.
/// - `<prefix>bus`: the pub/sub channel of the [`RedisSessionBus`].
/// - `<prefix>gs:<session id>`: the session's standalone (GET) streams open on some instance, refreshed by
///   its heartbeat (expiring after 15 s). A server-to-client request with no stream of its own is sent on
///   the bus only while one is open; otherwise it fails at once, as on a single instance.
/// - `<prefix>alive:<instance>`: the instance's claim on its number and its heartbeat (a random token of
///   the instance, taken with `SET NX`, renewed every 2 s, expiring after 15 s; taken back when
///   Redis comes back without it, with a warning that others may have taken the instance for dead
///   meanwhile, and an error if another instance took it). A client
///   resuming a stream whose instance has no heartbeat gets what is left of it, then the end (or 404 when
///   nothing is left), instead of waiting for events that will never come.
/// - With the `tasks` feature, `<prefix>task:<id>`: a task's state as its instance last recorded it (JSON,
///   expiring with the task). A task still running on an instance whose heartbeat lapsed (not merely
///   missing while Redis's data settles: see `<prefix>live`) is `failed`, for good: should that instance
///   live on, its later saves of the task are refused, and it stops the task's handler and reports the task
///   `failed` too (at the heartbeat that takes its claim back, when it would save the task, or before it
///   publishes the handler's result, whichever comes first).
///
/// # What Redis it needs
///
/// Redis 5 or later (event logs are Redis streams), standalone (or replicated behind a single address),
/// whose user may run scripts (`EVAL`,
/// ACL category `+@scripting`) and reach every key under the prefix: the heartbeat and the changes of
/// sessions and tasks are Lua scripts, and removing a session's streams deletes keys its script reads
/// from a set. Redis Cluster, and servers that refuse undeclared keys in scripts, are not supported.
/// [`RedisStores::connect`] claims the instance's number with a script, and fails when Redis refuses it.
///
/// Configure `maxmemory-policy noeviction` (Redis's default), or give Keel a Redis of its own: a policy
/// that evicts keys under memory pressure drops the keys closest to expiry first, which are the
/// instances' claims and heartbeats (others then take live instances for dead and give their numbers
/// again), sessions and event logs. With `noeviction`, a full Redis refuses writes instead: new sessions,
/// changes and events fail (logged; see below), and once the heartbeats have been refused for 15 s the
/// instances take each other for dead (relays end, tasks fail), as they do when Redis is unreachable. Size
/// Redis so that it does not fill up.
///
/// # Failures
///
/// Nothing panics and the client reconnects by itself (exponential backoff). While Redis is unreachable,
/// `initialize` gets 503 with `Retry-After`, and so does a request naming a session this instance does not
/// hold; sessions an instance holds keep working from its copy; modern (2026-07-28) requests never touch
/// Redis. Events are written to Redis in the background, in order, through a queue of
/// [`RedisConfig::write_queue`] writes: past it (Redis too slow or away), writes are dropped and logged, so
/// a client resuming on another instance may miss those events (resuming on the instance that ran the
/// stream misses nothing: it keeps its own copy). Such a stream, and one whose events Redis refused or
/// lost with a failed batch, is remembered: closing it for polling logs that it may not resume elsewhere,
/// and the graceful shutdown's wait for the last writes reports the loss. Bus messages published while an
/// instance's subscription is down are lost for it (a lost answer ends as the waiting request's timeout).
/// A task's state reaches Redis before its creation is answered (otherwise the call gets -32603 and the
/// task is not started) and once it ended; in between, its updates are written in the background. An
/// instance that dies loses only what it held: its streams (clients resume elsewhere from Redis) and its
/// running calls and tasks.
#[derive(Clone, Debug)]
pub struct RedisStores {
    sessions: Arc<RedisSessionStore>,
    events: Arc<RedisEventStore>,
    bus: Arc<RedisSessionBus>,
    #[cfg(feature = "tasks")]
    tasks: Arc<RedisTasks>,
}

impl RedisStores {
    /// Connects to Redis and takes this instance's number. Fails when Redis cannot be reached now, or
    /// refuses to run scripts (see [What Redis it needs](RedisStores#what-redis-it-needs)); later outages
    /// are survived (see [`RedisStores`]). Must run inside a Tokio runtime (it starts the
    /// task that writes events). In the first seconds after Redis started or lost its data (or after no
    /// instance reached it for 15 s), it waits up to 3 s plus twice [`RedisConfig::timeout`], for running
    /// instances to renew their claims (see `<prefix>live` in [`RedisStores`]).
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        let bad_url = |e: RedisError| StoreError::new(format!("bad Redis URL: {e}"));
        // The writer sends whole pipelines and requests are small: no waiting for more to send (Nagle).
        let info = config.url.as_str().into_connection_info().map_err(bad_url)?;
        let client = Client::open(info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true)))
            .map_err(bad_url)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(3);
        let mut connection =
            ConnectionManager::new_with_config(client.clone(), manager_config).await.map_err(failed)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::new(format!("no random source: {e}")))?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let instance = claim_number(&mut connection, &config, &nonce).await?;
        let (writes, queue) = mpsc::channel(config.write_queue.max(1));
        let holes = Holes::shared(config.event_ttl);
        tokio::spawn(write_events(connection.clone(), queue, config.key_prefix.clone(), holes.clone()));
        let standalone = StandaloneStreams::default();
        #[cfg(feature = "tasks")]
        let tasks = RedisTasks::start(connection.clone(), &config, instance, writes.clone());
        let beat = Beat {
            prefix: config.key_prefix.clone(),
            instance,
            nonce,
            timeout: config.timeout,
            standalone: standalone.clone(),
            writes: writes.clone(),
            #[cfg(feature = "tasks")]
            tasks: tasks.clone(),
        };
        let heartbeat = start_heartbeat(client.clone(), beat).await;
        let bus = RedisSessionBus::start(&client, &config, writes.clone()).await;
        let sessions = Arc::new(RedisSessionStore {
            connection: connection.clone(),
            prefix: config.key_prefix.clone(),
            instance,
            timeout: config.timeout,
        });
        Ok(RedisStores {
            sessions,
            events: Arc::new(RedisEventStore {
                local: MemoryEventStore::new(config.events_per_stream),
                connection: connection.clone(),
                standalone,
                writes,
                holes,
                client,
                readers: Arc::new(Semaphore::new(config.max_remote_readers)),
                session_readers: Arc::default(),
                instance,
                config,
                _heartbeat: heartbeat,
            }),
            bus,
            #[cfg(feature = "tasks")]
            tasks,
        })
    }

    /// The session store.
    pub fn session_store(&self) -> Arc<RedisSessionStore> {
        self.sessions.clone()
    }

    /// The event store.
    pub fn event_store(&self) -> Arc<RedisEventStore> {
        self.events.clone()
    }

    /// The session bus.
    pub fn session_bus(&self) -> Arc<RedisSessionBus> {
        self.bus.clone()
    }
}

impl HttpConfig {
    /// Shares legacy sessions and SSE event logs through Redis: sets [`HttpConfig::session_store`],
    /// [`HttpConfig::event_store`] and [`HttpConfig::session_bus`] to `stores`.
    pub fn redis(self, stores: &RedisStores) -> Self {
        #[cfg_attr(not(feature = "tasks"), expect(unused_mut, reason = "only tasks add to it"))]
        let mut config = self
            .session_store(stores.session_store())
            .event_store(stores.event_store())
            .session_bus(stores.session_bus());
        #[cfg(feature = "tasks")]
        {
            config.redis_tasks = Some(stores.tasks.clone());
        }
        config
    }
}

fn failed(error: RedisError) -> StoreError {
    StoreError::new(format!("Redis: {error}"))
}

/// `work`, or an error once `timeout` has passed. The connection's own timeouts do not bound everything: a
/// request made while the connection manager reconnects waits for the whole reconnection (several
/// attempts), which against a Redis that accepts connections and never answers takes seconds.
async fn bounded<T>(timeout: Duration, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| Err(StoreError::new("Redis did not answer in time")))
}

/// A session hash's record (`r`) and revision (`v`), as `HMGET` answers them.
type RecordFields = (Option<Vec<u8>>, Option<u64>);

/// The session record and revision in `fields`; `None` when the session is gone.
fn record_of((json, revision): RecordFields) -> Result<Option<(SessionRecord, u64)>, StoreError> {
    let (Some(json), Some(revision)) = (json, revision) else { return Ok(None) };
    let stored: Stored =
        serde_json::from_slice(&json).map_err(|e| StoreError::new(format!("unreadable session record: {e}")))?;
    Ok(Some((stored.into(), revision)))
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A [`SessionStore`] in Redis: one hash per session (see [`RedisStores`]). A request in a session this
/// instance holds costs no round trip between checks of its copy, and one per check
/// ([`SessionStore::touch`]; see [`HttpConfig::session_check_interval`](super::HttpConfig::session_check_interval)).
pub struct RedisSessionStore {
    connection: ConnectionManager,
    prefix: String,
    instance: u32,
    /// [`RedisConfig::timeout`]: the longest any call waits.
    timeout: Duration,
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore").field("prefix", &self.prefix).field("instance", &self.instance).finish()
    }
}

impl RedisSessionStore {
    fn key(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }
}

impl SessionStore for RedisSessionStore {
    fn instance(&self) -> u32 {
        self.instance
    }

    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64> {
        Box::pin(bounded(self.timeout, async move {
            let key = self.key(id);
            let json = serde_json::to_vec(&Stored::from(record)).map_err(|e| StoreError::new(e.to_string()))?;
            let (revision,): (u64,) = redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&key)
                .arg("r")
                .arg(json)
                .ignore()
                .cmd("HINCRBY")
                .arg(&key)
                .arg("v")
                .arg(1)
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(millis(ttl))
                .ignore()
                .query_async(&mut self.connection.clone())
                .await
                .map_err(failed)?;
            Ok(revision)
        }))
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a SessionRecord,
        revision: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate> {
        Box::pin(bounded(self.timeout, async move {
            let json = serde_json::to_vec(&Stored::from(record)).map_err(|e| StoreError::new(e.to_string()))?;
            let saved: i64 = redis::cmd("EVAL")
                .arg(UPDATE_SESSION)
                .arg(1)
                .arg(self.key(id))
                .arg(json)
                .arg(revision)
                .arg(millis(ttl))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(failed)?;
            Ok(match saved {
                GONE => SessionUpdate::Gone,
                STALE => SessionUpdate::Stale,
                revision => SessionUpdate::Saved(u64::try_from(revision).map_err(|_| StoreError::new("bad revision"))?),
            })
        }))
    }

    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        Box::pin(bounded(self.timeout, async move {
            let key = self.key(id);
            let mut pipe = redis::pipe();
            pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
            pipe.cmd("HMGET").arg(&key).arg("r").arg("v");
            let (fields,): (RecordFields,) = pipe.query_async(&mut self.connection.clone()).await.map_err(failed)?;
            record_of(fields)
        }))
    }

    fn read<'a>(&'a self, id: &'a str, _: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        Box::pin(bounded(self.timeout, async move {
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(self.key(id)).arg("r").arg("v");
            record_of(hmget.query_async(&mut self.connection.clone()).await.map_err(failed)?)
        }))
    }

    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        Box::pin(bounded(self.timeout, async move {
            let key = self.key(id);
            let (_, revision): (bool, Option<u64>) = redis::pipe()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(millis(ttl))
                .cmd("HGET")
                .arg(&key)
                .arg("v")
                .query_async(&mut self.connection.clone())
                .await
                .map_err(failed)?;
            Ok(revision)
        }))
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(bounded(self.timeout, async move {
            let removed: u64 =
                redis::cmd("DEL").arg(self.key(id)).query_async(&mut self.connection.clone()).await.map_err(failed)?;
            Ok(removed > 0)
        }))
    }
}

/// [`SessionStore::update`] in one step: replaces the record (`ARGV[1]`) only while the hash exists at
/// revision `ARGV[2]`, counts the revision up and refreshes the expiry (`ARGV[3]` ms); the new revision, or
/// [`GONE`] or [`STALE`].
const UPDATE_SESSION: &str = r"
local revision = redis.call('HGET', KEYS[1], 'v')
if not revision then return -1 end
if revision ~= ARGV[2] then return -2 end
redis.call('HSET', KEYS[1], 'r', ARGV[1])
local next = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return next
";
/// [`UPDATE_SESSION`]: no such session.
const GONE: i64 = -1;
/// [`UPDATE_SESSION`]: the session is at another revision.
const STALE: i64 = -2;

/// A session record as stored (JSON).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<ProtocolVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_info: Option<Implementation>,
    #[serde(default)]
    capabilities: ClientCapabilities,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_level: Option<LoggingLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    subscriptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<StoredPrincipal>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPrincipal {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audience: Vec<String>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    claims: JsonObject,
}

impl From<&SessionRecord> for Stored {
    fn from(record: &SessionRecord) -> Self {
        Stored {
            version: record.version.clone(),
            client_info: record.client_info.clone(),
            capabilities: record.client_capabilities.clone(),
            log_level: record.log_level,
            subscriptions: record.subscriptions.clone(),
            principal: record.principal.as_deref().map(|p| StoredPrincipal {
                issuer: p.issuer.clone(),
                subject: p.subject.clone(),
                client_id: p.client_id.clone(),
                scopes: p.scopes.clone(),
                audience: p.audience.clone(),
                expires_at: p
                    .expires_at
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
                claims: p.claims.clone(),
            }),
        }
    }
}

impl From<Stored> for SessionRecord {
    fn from(stored: Stored) -> Self {
        SessionRecord {
            version: stored.version,
            client_info: stored.client_info,
            client_capabilities: stored.capabilities,
            log_level: stored.log_level,
            subscriptions: stored.subscriptions,
            principal: stored.principal.map(|p| {
                Arc::new(Principal {
                    issuer: p.issuer,
                    subject: p.subject,
                    client_id: p.client_id,
                    scopes: p.scopes,
                    audience: p.audience,
                    expires_at: p.expires_at.map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s)),
                    claims: p.claims,
                })
            }),
        }
    }
}

/// An [`EventStore`] in Redis streams (see [`RedisStores`]). The instance running a stream serves
/// it from its own bounded copy (as [`MemoryEventStore`] does) and writes it to Redis in the background;
/// other instances resume it from Redis, following it live until it ends.
pub struct RedisEventStore {
    local: MemoryEventStore,
    connection: ConnectionManager,
    /// The standalone streams this instance holds open, announced in Redis (see [`start_heartbeat`]).
    standalone: StandaloneStreams,
    writes: mpsc::Sender<Write>,
    /// Streams whose copy in Redis has a hole.
    holes: Arc<std::sync::Mutex<Holes>>,
    client: Client,
    readers: Arc<Semaphore>,
    /// Streams relayed at once per session (see [`RedisConfig::max_remote_readers_per_session`]).
    session_readers: SessionReaders,
    /// This instance's number: the high bits of the streams it runs.
    instance: u32,
    config: RedisConfig,
    /// Says this instance runs (see [`start_heartbeat`]) as long as its stores are in use.
    _heartbeat: DropGuard,
}

impl fmt::Debug for RedisEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEventStore").field("prefix", &self.config.key_prefix).finish()
    }
}

/// One write for the background writer, in order.
enum Write {
    Append {
        key: String,
        /// The session's `evs:` set, which lists the stream and lives as long as it does (see [`List`]).
        set: String,
        seq: u64,
        message: Bytes,
        cap: usize,
        ttl: u64,
    },
    Finish {
        key: String,
        cap: usize,
        ttl: u64,
    },
    Remove {
        key: String,
        set: String,
    },
    /// Lists a stream in its session's set, so that other instances know it before its first event;
    /// `done` says whether Redis took it and holds every event of the stream written so far (none was
    /// dropped, refused or lost with a failed batch: see [`Holes`]).
    KeepResumable {
        key: String,
        set: String,
        ttl: u64,
        done: oneshot::Sender<bool>,
    },
    RemoveSession {
        set: String,
    },
    /// Records (or refreshes) standalone stream `stream` as open in hash `key`; `done` says whether Redis
    /// took it.
    Standalone {
        key: String,
        stream: u64,
        ttl: u64,
        done: Option<oneshot::Sender<bool>>,
    },
    StandaloneClosed {
        key: String,
        stream: u64,
    },
    /// Nothing to write: `done` says whether every event write since the last flush reached Redis.
    Flush {
        done: oneshot::Sender<bool>,
    },
    Publish {
        channel: Arc<str>,
        message: Bytes,
    },
    /// A task's state as the instance running it saw it, refused over a terminal record (see
    /// [`SAVE_TASK`]), which the instance then adopts (`overruled`). `done`, when given, says whether
    /// Redis took or refused it (`false`: it failed).
    #[cfg(feature = "tasks")]
    SaveTask {
        key: String,
        value: Vec<u8>,
        ttl: u64,
        done: Option<oneshot::Sender<bool>>,
        overruled: Overruled,
    },
}

/// The entry id that marks the end of a stream: above every event's `0-<seq>`.
const END_ID: &str = "1-0";

impl RedisEventStore {
    fn key(&self, session: &str, stream: u64) -> String {
        format!("{}ev:{session}:{stream}", self.config.key_prefix)
    }

    fn set_key(&self, session: &str) -> String {
        format!("{}evs:{session}", self.config.key_prefix)
    }

    fn standalone_key(&self, session: &str) -> String {
        standalone_key(&self.config.key_prefix, session)
    }

    fn queue(&self, write: Write) {
        if let Err(dropped) = self.writes.try_send(write) {
            tracing::warn!("Redis event writes are backed up; an event was not shared with other instances");
            if let Write::Append { key, .. } | Write::Finish { key, .. } = dropped.into_inner() {
                lock(&self.holes).add(key, tokio::time::Instant::now());
            }
        }
    }
}

impl EventStore for RedisEventStore {
    fn append(&self, session: &str, stream: u64, message: Bytes) -> u64 {
        let seq = self.local.append(session, stream, message.clone());
        let (cap, ttl) = (self.config.events_per_stream, millis(self.config.event_ttl));
        self.queue(Write::Append {
            key: self.key(session, stream),
            set: self.set_key(session),
            seq,
            message,
            cap,
            ttl,
        });
        seq
    }

    fn events_after(&self, session: &str, stream: u64, after: u64) -> Vec<(u64, Bytes)> {
        self.local.events_after(session, stream, after)
    }

    fn remove_stream(&self, session: &str, stream: u64) {
        self.local.remove_stream(session, stream);
        self.queue(Write::Remove { key: self.key(session, stream), set: self.set_key(session) });
    }

    fn remove_session(&self, session: &str) {
        self.local.remove_session(session);
        self.queue(Write::RemoveSession { set: self.set_key(session) });
    }

    fn standalone_opened<'a>(&'a self, session: &'a str, stream: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            lock(&self.standalone).insert((session.into(), stream));
            let (done, written) = oneshot::channel();
            let key = self.standalone_key(session);
            self.writes
                .try_send(Write::Standalone { key, stream, ttl: millis(ALIVE_LAPSE), done: Some(done) })
                .map_err(|_| StoreError::new("Redis writes are backed up"))?;
            match tokio::time::timeout(self.config.timeout, written).await {
                Ok(Ok(true)) => Ok(()),
                Ok(_) => Err(StoreError::new("Redis did not record the standalone stream")),
                Err(_) => Err(StoreError::new("Redis did not record the standalone stream in time")),
            }
        })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (done, written) = oneshot::channel();
            self.writes.try_send(Write::Flush { done }).map_err(|_| StoreError::new("Redis writes are backed up"))?;
            match tokio::time::timeout(self.config.timeout, written).await {
                Ok(Ok(true)) => Ok(()),
                Ok(_) => Err(StoreError::new("Redis did not take the last writes")),
                Err(_) => Err(StoreError::new("Redis did not take the last writes in time")),
            }
        })
    }

    fn standalone_closed(&self, session: &str, stream: u64) {
        if lock(&self.standalone).remove(&(session.into(), stream)) {
            self.queue(Write::StandaloneClosed { key: self.standalone_key(session), stream });
        }
    }

    fn standalone_open<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<bool>> {
        Box::pin(bounded(self.config.timeout, async move {
            let open: bool = redis::cmd("EXISTS")
                .arg(self.standalone_key(session))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(failed)?;
            Ok(Some(open))
        }))
    }

    /// Other instances resume the stream from Redis; only the local copy goes.
    fn release_stream(&self, session: &str, stream: u64) {
        self.local.remove_stream(session, stream);
    }

    fn finish_stream(&self, session: &str, stream: u64) {
        let (cap, ttl) = (self.config.events_per_stream, millis(self.config.event_ttl));
        self.queue(Write::Finish { key: self.key(session, stream), cap, ttl });
    }

    fn keep_resumable<'a>(&'a self, session: &'a str, stream: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (done, written) = oneshot::channel();
            let (key, set, ttl) = (self.key(session, stream), self.set_key(session), millis(self.config.event_ttl));
            self.writes
                .try_send(Write::KeepResumable { key, set, ttl, done })
                .map_err(|_| StoreError::new("Redis event writes are backed up"))?;
            match tokio::time::timeout(self.config.timeout, written).await {
                Ok(Ok(true)) => Ok(()),
                Ok(_) => Err(StoreError::new("Redis did not take the stream's events")),
                Err(_) => Err(StoreError::new("Redis did not take the stream's events in time")),
            }
        })
    }

    fn replay<'a>(&'a self, session: &'a str, stream: u64, after: u64) -> StoreFuture<'a, Option<RemoteEvents>> {
        Box::pin(async move {
            let key = self.key(session, stream);
            let timeout = self.config.timeout;
            // First, on the shared connection, whether there is anything to relay: a made-up `Last-Event-ID`
            // costs one round trip, not a relay slot and a connection of its own.
            // A stream closed for polling before its first event is known only by its session's set.
            let owner = stream >> 32;
            let probe = redis::pipe()
                .cmd("EXISTS")
                .arg(&key)
                .cmd("ZSCORE")
                .arg(self.set_key(session))
                .arg(&key)
                .cmd("EXISTS")
                .arg(alive_key(&self.config.key_prefix, owner))
                .to_owned();
            let (exists, listed, owner_alive): (bool, Option<redis::Value>, bool) =
                bounded(timeout, async { probe.query_async(&mut self.connection.clone()).await.map_err(failed) })
                    .await?;
            let listed = listed.is_some();
            let runs_elsewhere = owner_alive && owner != 0 && owner != u64::from(self.instance);
            if !exists && !listed && !runs_elsewhere {
                return Ok(None);
            }
            let session_permit = SessionReader::take(&self.session_readers, session, &self.config)
                .ok_or_else(|| StoreError::new("too many streams of one session relayed from Redis at once"))?;
            let permit = self
                .readers
                .clone()
                .try_acquire_owned()
                .map_err(|_| StoreError::new("too many streams relayed from Redis at once"))?;
            // A connection of its own: a blocking XREAD would hold up every request sharing one.
            let block = Duration::from_secs(10);
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(block + timeout));
            let connection = bounded(timeout, async {
                self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(failed)
            })
            .await?;
            // The instance that ran the stream is gone (its heartbeat lapsed), and its stream will never
            // go on: relay what is left, without waiting for more, and call it unknown when nothing is.
            let owner_alive = owner_alive || owner == u64::from(self.instance);
            let mut state = Tail {
                connection,
                key,
                cursor: after,
                block,
                owner_alive,
                queued: Default::default(),
                ended: false,
                _permits: (permit, session_permit),
            };
            if !exists && !listed {
                // A running instance's stream Redis does not know yet: the client dropped the connection
                // right after the first events, and their writes are still on their way. Wait for them
                // briefly: a made-up stream number naming a running instance waits as long.
                state.block = timeout.min(UNKNOWN_STREAM_WAIT);
                let first = state.read().await;
                state.block = block;
                if first.is_none() || (state.queued.is_empty() && !state.ended) {
                    return Ok(None);
                }
            } else if !state.owner_alive {
                state.read().await.ok_or_else(|| StoreError::new("Redis did not answer"))?;
                if state.queued.is_empty() {
                    return Ok(None);
                }
            }
            let events = futures_util::stream::unfold(state, |mut state| async move {
                loop {
                    if let Some(event) = state.queued.pop_front() {
                        return Some((event, state));
                    }
                    if state.ended {
                        return None;
                    }
                    state.read().await?;
                }
            });
            Ok(Some(Box::pin(events) as RemoteEvents))
        })
    }
}

/// A live read of a stream another instance runs.
struct Tail {
    connection: MultiplexedConnection,
    key: String,
    cursor: u64,
    block: Duration,
    /// Whether the instance running the stream had a heartbeat when the relay started; without one,
    /// nothing more will come, so reads do not wait.
    owner_alive: bool,
    queued: std::collections::VecDeque<(u64, Bytes)>,
    ended: bool,
    _permits: (tokio::sync::OwnedSemaphorePermit, SessionReader),
}

/// The longest wait, on another instance, for the first events of a running stream Redis does not know.
const UNKNOWN_STREAM_WAIT: Duration = Duration::from_millis(500);

/// Streams relayed at once, per session.
type SessionReaders = Arc<std::sync::Mutex<std::collections::HashMap<Box<str>, usize>>>;

/// One of a session's relays ([`RedisConfig::max_remote_readers_per_session`]); counted until dropped.
struct SessionReader {
    readers: SessionReaders,
    session: Box<str>,
}

impl SessionReader {
    /// A relay for `session`, unless it holds as many as it may.
    fn take(readers: &SessionReaders, session: &str, config: &RedisConfig) -> Option<Self> {
        let mut counts = lock(readers);
        let count = counts.entry(session.into()).or_default();
        if *count >= config.max_remote_readers_per_session {
            if *count == 0 {
                counts.remove(session);
            }
            return None;
        }
        *count += 1;
        Some(SessionReader { readers: readers.clone(), session: session.into() })
    }
}

impl Drop for SessionReader {
    fn drop(&mut self) {
        let mut counts = lock(&self.readers);
        if let Some(count) = counts.get_mut(&self.session) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.session);
            }
        }
    }
}

/// XREAD's answer: per stream, its entries (id, field-value pairs).
type XRead = Option<Vec<(String, Vec<(String, Vec<Vec<u8>>)>)>>;

impl Tail {
    /// Reads what follows the cursor, waiting for it while the stream's instance runs; `None` when the
    /// stream should end here (Redis went away, or nothing came for a whole block: the stream's instance
    /// may have died since, and the client can resume again, which then ends promptly).
    async fn read(&mut self) -> Option<()> {
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT").arg(256);
        if self.owner_alive {
            read.arg("BLOCK").arg(millis(self.block));
        }
        let reply: XRead = read
            .arg("STREAMS")
            .arg(&self.key)
            .arg(format!("0-{}", self.cursor))
            .query_async(&mut self.connection)
            .await
            .inspect_err(|error| tracing::debug!(%error, "relaying a stream from Redis failed"))
            .ok()?;
        let Some(reply) = reply else {
            // Nothing more: the end, when nobody will write more.
            self.ended = !self.owner_alive;
            return self.ended.then_some(());
        };
        let entries = reply.into_iter().next()?.1;
        for (id, fields) in entries {
            if id == END_ID {
                self.ended = true;
                break;
            }
            let seq = id.strip_prefix("0-").and_then(|s| s.parse::<u64>().ok());
            let message = fields.into_iter().nth(1);
            if let (Some(seq), Some(message)) = (seq, message) {
                self.cursor = seq;
                self.queued.push_back((seq, Bytes::from(message)));
            }
        }
        Some(())
    }
}

/// Records a task as failed (`ARGV[2]`) in `KEYS[1]`, keeping its expiry, only if it still holds the
/// record read (`ARGV[1]`; else 0) and its instance is gone: no claim `KEYS[2]`, and Redis's data settled
/// (live marker `KEYS[3]` present, settling marker `KEYS[4]` absent; see `mark_live!`). 2 when the instance
/// runs, or its absence says nothing yet (its next heartbeat may put its claim back); 1 when recorded. One
/// script, so that a heartbeat taking the claim back lands either before it (the task runs) or after it
/// (the instance then finds the task failed and stops it).
#[cfg(feature = "tasks")]
const FAIL_IF_GONE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
if redis.call('EXISTS', KEYS[3]) == 0 then return 2 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl) end
return 1
";

/// Saves a task's state (`ARGV[1]`, for `ARGV[2]` ms) as its instance saw it, unless the record holds
/// another, terminal state: another instance declared the task failed while this one's heartbeat lapsed,
/// and told clients so for good. Then it returns that record (and 1 when saved).
#[cfg(feature = "tasks")]
const SAVE_TASK: &str = r"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored) == 'table' and type(stored.t) == 'table' then
    local status = stored.t.status
    if status == 'completed' or status == 'failed' or status == 'cancelled' then return current end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Where a task whose save [`SAVE_TASK`] refused lives: its instance adopts the recorded state.
#[cfg(feature = "tasks")]
pub(crate) struct Overruled {
    tasks: std::sync::Weak<crate::server::tasks::TaskStore>,
    id: String,
}

#[cfg(feature = "tasks")]
impl Overruled {
    /// Makes the task what Redis records (`recorded`, a terminal state), stopping its handler.
    fn adopt(self, recorded: &[u8]) {
        let Ok(StoredTask { t: recorded, .. }) = serde_json::from_slice::<StoredTask>(recorded) else { return };
        if let Some(tasks) = self.tasks.upgrade() {
            tasks.overruled(&self.id, recorded);
        }
    }
}

/// What a client reads when the shared task records cannot be reached (-32603: retry).
#[cfg(feature = "tasks")]
const TASKS_UNAVAILABLE: &str = "the shared task store is unavailable; retry shortly";

/// How often an instance says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long an instance's heartbeat lasts without being renewed: longer than a Redis stall the connection
/// rides out (its timeout, plus reconnecting), so that a slow Redis does not make live instances look dead
/// (their tasks `failed`, their streams ended).
const ALIVE_LAPSE: Duration = Duration::from_secs(15);

/// `<prefix>alive:<instance>`: present while the instance runs.
fn alive_key(prefix: &str, instance: u64) -> String {
    format!("{prefix}alive:{instance}")
}

/// `<prefix>live`: present while some instance's heartbeat reaches Redis (see `mark_live!`).
fn live_key(prefix: &str) -> String {
    format!("{prefix}live")
}

/// `<prefix>settling`: present in the first moments after Redis's data began, while running instances may
/// not have renewed their claims yet (see `mark_live!`).
fn settling_key(prefix: &str) -> String {
    format!("{prefix}settling")
}

/// How long after Redis's data began every running instance has renewed its claim: a heartbeat, then a beat
/// over a new connection (after a restart the first fails at once on the dropped one): connecting and the
/// beat, a timeout each, with a second to spare. (The instance's own timeout: others' beats may take
/// longer, but their claims come back all the same.)
fn settling(timeout: Duration) -> Duration {
    // Saturating: a timeout meant as "none" (`Duration::MAX`) must not overflow.
    HEARTBEAT.saturating_add(timeout.saturating_mul(2)).saturating_add(Duration::from_secs(1))
}

/// `<prefix>gs:<session>`: a hash of the session's standalone streams open on some instance.
fn standalone_key(prefix: &str, session: &str) -> String {
    format!("{prefix}gs:{session}")
}

/// The standalone streams an instance holds open: (session, stream).
type StandaloneStreams = Arc<std::sync::Mutex<std::collections::HashSet<(Arc<str>, u64)>>>;

/// Numbers tried, from the `instances` counter on, before an instance gives up taking one.
const NUMBER_PROBES: u64 = 1024;

/// Takes an instance number no running instance holds: from the `<prefix>instances` counter on, the first
/// whose `<prefix>alive:<n>` this instance claims. The counter alone would give a running instance's number
/// again once Redis lost its data, and so would a claim alone in the moments before that instance's next
/// heartbeat puts its claim back: the claim is tentative (`new:<nonce>`, taken with `SET NX`) until a
/// heartbeat and a timeout have passed since Redis's data began (`<prefix>settling`: a wait only in the
/// first seconds after Redis started, lost its data, or heard from no instance for a lapse), and a running
/// instance's heartbeat overwrites it ([`RENEW_CLAIM`]), which sends this instance on to the next number. Each heartbeat also raises the
/// counter to its number, so that after one beat a counter that started over skips running instances'
/// numbers.
async fn claim_number(
    connection: &mut ConnectionManager,
    config: &RedisConfig,
    nonce: &str,
) -> Result<u32, StoreError> {
    let prefix = &config.key_prefix;
    let counter: u64 =
        redis::cmd("INCR").arg(format!("{prefix}instances")).query_async(connection).await.map_err(failed)?;
    let tentative = format!("new:{nonce}");
    for candidate in counter..counter.saturating_add(NUMBER_PROBES) {
        // Numbers stay below 2^20, so that request ids (number << 32) stay exact in JSON numbers read as
        // doubles; 0 is the number of no instance.
        let number = u32::try_from(candidate % (1 << 20)).unwrap_or(0).max(1);
        let alive = alive_key(prefix, u64::from(number));
        let wait: i64 = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(3)
            .arg(&alive)
            .arg(live_key(prefix))
            .arg(settling_key(prefix))
            .arg(&tentative)
            // The tentative claim outlives the wait, with a lapse to spare for the confirmation.
            .arg(millis(settling(config.timeout).saturating_add(ALIVE_LAPSE)))
            .arg(millis(ALIVE_LAPSE))
            .arg(millis(settling(config.timeout)))
            .query_async(connection)
            .await
            .map_err(scripts_refused)?;
        // Held by another instance.
        let Ok(wait) = u64::try_from(wait) else { continue };
        tokio::time::sleep(Duration::from_millis(wait).min(settling(config.timeout))).await;
        let confirmed = redis::cmd("EVAL")
            .arg(CONFIRM_CLAIM)
            .arg(1)
            .arg(&alive)
            .arg(&tentative)
            .arg(nonce)
            .arg(millis(ALIVE_LAPSE))
            .query_async::<bool>(connection)
            .await;
        match confirmed {
            Ok(true) => return Ok(number),
            Ok(false) => {}
            Err(error) => {
                // Not left to block the number for its whole life (best effort: Redis may be away).
                let release = redis::cmd("EVAL").arg(RELEASE_CLAIM).arg(1).arg(&alive).arg(&tentative).to_owned();
                let _ = bounded(config.timeout, async { release.query_async::<i64>(connection).await.map_err(failed) })
                    .await;
                return Err(scripts_refused(error));
            }
        }
    }
    Err(StoreError::new(format!("no free instance number in the {NUMBER_PROBES} after the counter")))
}

/// Keel's scripts run at every heartbeat and session change: a Redis that refuses them (an ACL user without
/// `+@scripting`, Redis Cluster) must stop the instance at start, not make it look dead 15 s later.
fn scripts_refused(error: RedisError) -> StoreError {
    // Not a passing state such as `LOADING` or `BUSY`, which says nothing of what Redis allows.
    match error.code() {
        Some("NOPERM" | "ERR" | "CROSSSLOT" | "MOVED" | "ASK") => StoreError::new(format!(
            "Redis refused the script that claims this instance's number ({error}): Keel needs a standalone \
             Redis (not Cluster) whose user may run scripts (EVAL, ACL category +@scripting)"
        )),
        _ => failed(error),
    }
}

/// The start of [`CLAIM`] and [`RENEW_CLAIM`]: keeps `<prefix>live` (`KEYS[2]`, for `ARGV[3]` ms) and starts
/// `<prefix>settling` (`KEYS[3]`, for `ARGV[4]` ms) when it finds `live` missing: Redis's data just began
/// (it started, restored a snapshot, failed over), or no instance reached it for a lapse. `live` expires as
/// a claim does, so it cannot outlive a gap in heartbeats the way a key kept by persistence would. (`GET`
/// and `SET` only: the scripts read no clock, so they need no `redis.replicate_commands`.)
macro_rules! mark_live {
    () => {
        r"
if not redis.call('GET', KEYS[2]) then redis.call('SET', KEYS[3], 1, 'PX', ARGV[4]) end
redis.call('SET', KEYS[2], 1, 'PX', ARGV[3])
"
    };
}

/// Claims `KEYS[1]` tentatively (`SET NX` of `ARGV[1]`, for `ARGV[2]` ms): -1 when it is held, or else the
/// ms left before every running instance has renewed its claim: what is left of the settling marker
/// `KEYS[3]`, set (for `ARGV[4]` ms) when the live marker `KEYS[2]` is missing (refreshed for `ARGV[3]`
/// ms; see `mark_live!`). No clock is read: nothing goes wrong when Redis's clock steps.
const CLAIM: &str = concat!(
    mark_live!(),
    r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
return math.max(0, redis.call('PTTL', KEYS[3]))
"
);

/// Deletes a tentative claim (`KEYS[1]` holding `ARGV[1]`) its instance abandons.
const RELEASE_CLAIM: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Turns a tentative claim (`KEYS[1]` holding `ARGV[1]`) into this instance's (token `ARGV[2]`, for
/// `ARGV[3]` ms); 0 when a running instance took its number back meanwhile.
const CONFIRM_CLAIM: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// Renews an instance's claim on its number (`KEYS[1]`, token `ARGV[1]`, for `ARGV[2]` ms), taking it back
/// when it lapsed or a newcomer claims it tentatively, and raises the instances counter (`KEYS[4]`) to the
/// number (`ARGV[5]`): 1 when renewed, 2 when taken back, 0 when another instance holds it. It also keeps
/// the live marker `KEYS[2]` (see `mark_live!`; `ARGV[3]`, `ARGV[4]` and `KEYS[3]` are its).
const RENEW_CLAIM: &str = concat!(
    mark_live!(),
    r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and string.sub(holder, 1, 4) ~= 'new:' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if (tonumber(redis.call('GET', KEYS[4])) or 0) < tonumber(ARGV[5]) then redis.call('SET', KEYS[4], ARGV[5]) end
if holder == ARGV[1] then return 1 end
return 2
"
);

/// What [`RENEW_CLAIM`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// Another instance holds the number.
    Lost,
    /// Renewed.
    Held,
    /// Taken back after it lapsed (Redis lost it, or did not hear from this instance for
    /// [`ALIVE_LAPSE`]): others may have taken this instance for dead meanwhile.
    Retaken,
}

/// An instance's claim on its number, as its heartbeat renews it.
struct Claimant {
    /// `<prefix>alive:<number>`.
    alive: String,
    /// `<prefix>live` and `<prefix>settling`.
    live: String,
    settling: String,
    /// How long `settling` lasts: [`settling`] of the instance's timeout.
    settle: Duration,
    /// `<prefix>instances`.
    counter: String,
    number: u32,
    /// The claim's token.
    nonce: String,
}

impl Claimant {
    /// Runs [`RENEW_CLAIM`].
    async fn renew(&self, connection: &mut MultiplexedConnection) -> Result<Claim, RedisError> {
        let found: i64 = redis::cmd("EVAL")
            .arg(RENEW_CLAIM)
            .arg(4)
            .arg(&self.alive)
            .arg(&self.live)
            .arg(&self.settling)
            .arg(&self.counter)
            .arg(&self.nonce)
            .arg(millis(ALIVE_LAPSE))
            .arg(millis(ALIVE_LAPSE))
            .arg(millis(self.settle))
            .arg(self.number)
            .query_async(connection)
            .await?;
        Ok(match found {
            0 => Claim::Lost,
            2 => Claim::Retaken,
            _ => Claim::Held,
        })
    }
}

/// What the heartbeat keeps saying.
struct Beat {
    prefix: String,
    instance: u32,
    /// The token of this instance's claim on its number.
    nonce: String,
    /// [`RedisConfig::timeout`].
    timeout: Duration,
    standalone: StandaloneStreams,
    writes: mpsc::Sender<Write>,
    /// The instance's tasks, checked when its claim lapsed.
    #[cfg(feature = "tasks")]
    tasks: Arc<RedisTasks>,
}

/// Says that this instance runs: renews its claim `<prefix>alive:<instance>` (which `connect` took) every
/// [`HEARTBEAT`], expiring after [`ALIVE_LAPSE`], until the guard drops;
/// the first beat after Redis lost its data takes the claim back. Other instances
/// end the relay of a stream, and fail a task, whose instance has no heartbeat. Each beat also refreshes
/// the `<prefix>gs:<session>` entries of the standalone streams the instance holds, which expire as
/// `alive` does: a message for a session's standalone stream goes on the bus only while one is open.
async fn start_heartbeat(client: Client, beat_of: Beat) -> DropGuard {
    let Beat {
        prefix,
        instance,
        nonce,
        timeout,
        standalone,
        writes,
        #[cfg(feature = "tasks")]
        tasks,
    } = beat_of;
    let claimant = Claimant {
        alive: alive_key(&prefix, u64::from(instance)),
        live: live_key(&prefix),
        settling: settling_key(&prefix),
        settle: settling(timeout),
        counter: format!("{prefix}instances"),
        number: instance,
        nonce,
    };
    let mut connection = BeatConnection { client, timeout, current: None };
    // Connected now rather than at the first beat: a refused second connection shows at once, and the
    // connection's handshake does not come in the middle of the instance's work (a failure is retried at
    // the first beat).
    if let Err(error) = connection.open().await {
        tracing::warn!(%error, "the instance heartbeat cannot connect to Redis yet");
    }
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    // Whether another instance holds this one's number: said once, not at every beat.
    let mut lost = false;
    // When the claim was last renewed: a failure is worth a warning once half its lapse has gone.
    let mut renewed = tokio::time::Instant::now();
    tokio::spawn(async move {
        // The first beat at once: a first instance's wait for Redis to settle may have used up most of the
        // live marker's lapse, which the beat refreshes.
        let mut every = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                // A stopped instance beats no more, even when its beat is due.
                biased;
                _ = stopped.cancelled() => return,
                _ = every.tick() => {}
            }
            let mut renewal = connection.renew(&claimant).await;
            // A connection Redis dropped (a restart): beat again at once on a new one, for the claim to be
            // back before a newcomer confirms its own. (One that timed out is replaced at the next beat.)
            if renewal.as_ref().is_err_and(|failure| failure.dropped) {
                renewal = connection.renew(&claimant).await;
            }
            match renewal {
                Ok(claim) => {
                    renewed = tokio::time::Instant::now();
                    let was_lost = std::mem::replace(&mut lost, claim == Claim::Lost);
                    match claim {
                        Claim::Lost if !was_lost => tracing::error!(
                            instance,
                            "another instance took this instance's number after Redis lost its data: their \
                             stream numbers and request ids collide; restart this instance"
                        ),
                        Claim::Retaken => {
                            tracing::warn!(
                                instance,
                                "this instance's claim had lapsed (Redis lost it, or did not hear from this \
                                 instance in time) and is taken back: meanwhile other instances may have failed \
                                 its tasks (which it then stops) and ended its streams"
                            );
                            #[cfg(feature = "tasks")]
                            tasks.adopt_ended_in_background();
                        }
                        Claim::Held if was_lost => tracing::warn!(instance, "this instance holds its number again"),
                        _ => {}
                    }
                }
                Err(BeatFailure { error, .. }) if renewed.elapsed() >= ALIVE_LAPSE / 2 => tracing::warn!(
                    %error,
                    instance,
                    "the instance heartbeat did not reach Redis; once its claim lapses, other instances take this \
                     one for dead (its tasks fail, its streams end)"
                ),
                Err(BeatFailure { error, .. }) => tracing::debug!(%error, "the instance heartbeat did not reach Redis"),
            }
            let open: Vec<(Arc<str>, u64)> = lock(&standalone).iter().cloned().collect();
            for (session, stream) in open {
                let key = standalone_key(&prefix, &session);
                let refresh = Write::Standalone { key, stream, ttl: millis(ALIVE_LAPSE), done: None };
                if writes.try_send(refresh).is_err() {
                    tracing::warn!("Redis writes are backed up; a standalone stream was not refreshed");
                }
            }
        }
    });
    stop.drop_guard()
}

/// The heartbeat's own connection, replaced after any failure. A connection gone silent (a NAT or firewall
/// forgot it) times out without being dropped, and one shared with other work would be used again until
/// the kernel gives up on it (many minutes): every beat would fail, and others would take this instance
/// for dead.
struct BeatConnection {
    client: Client,
    /// [`RedisConfig::timeout`], for connecting and for each beat.
    timeout: Duration,
    current: Option<MultiplexedConnection>,
}

/// Why a beat failed, and whether the connection was dropped (rather than silent or refused).
struct BeatFailure {
    error: StoreError,
    dropped: bool,
}

impl BeatConnection {
    /// The connection, made anew when the last beat failed on it.
    async fn open(&mut self) -> Result<&mut MultiplexedConnection, StoreError> {
        let timeout = self.timeout;
        let connection = match self.current.take() {
            Some(connection) => connection,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                let connect = self.client.get_multiplexed_async_connection_with_config(&config);
                bounded(timeout, async { connect.await.map_err(failed) }).await?
            }
        };
        Ok(self.current.insert(connection))
    }

    /// Runs [`RENEW_CLAIM`] on the connection. One that timed out or failed is replaced at the next beat; one
    /// on which Redis answered with an error (`OOM`, `LOADING`) is kept: a new one would not help.
    async fn renew(&mut self, claimant: &Claimant) -> Result<Claim, BeatFailure> {
        let timeout = self.timeout;
        let connection = self.open().await.map_err(|error| BeatFailure { error, dropped: false })?;
        let renewal = tokio::time::timeout(timeout, claimant.renew(connection)).await;
        let (failure, replace) = match renewal {
            Ok(Ok(claim)) => return Ok(claim),
            Ok(Err(error)) => {
                let broken = error.is_io_error() || error.is_connection_dropped() || error.is_timeout();
                (BeatFailure { dropped: error.is_connection_dropped(), error: failed(error) }, broken)
            }
            Err(_) => (BeatFailure { error: StoreError::new("Redis did not answer in time"), dropped: false }, true),
        };
        if replace {
            self.current = None;
        }
        Err(failure)
    }
}

/// Writes events to Redis in order, a pipeline per batch. A failed batch is logged and dropped: the
/// instance that runs the streams still has them, and the connection reconnects by itself. A command
/// Redis refuses (a stale entry id, a key of another type, `OOM`) fails only the writes it belongs to: the
/// others in its batch were applied, and their waiters hear so.
async fn write_events(
    mut connection: ConnectionManager,
    mut queue: mpsc::Receiver<Write>,
    prefix: String,
    holes: Arc<std::sync::Mutex<Holes>>,
) {
    const BATCH: usize = 256;
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        // Each waiter, with the commands whose success it reports (by index in the pipeline).
        let mut waiting: Vec<(std::ops::Range<usize>, Waiter)> = Vec::new();
        // The commands of each event write (the first names its stream), and the streams removed.
        let mut events = Vec::new();
        let mut removed = Vec::new();
        // The sessions ended: `<prefix>ev:<session>:`, the start of their streams' keys.
        let mut removed_sessions = Vec::new();
        // The stream of the batch's last append, listed already in this batch.
        let mut listed = String::new();
        let list = List::now();
        // The pipeline indexes of the session removals, which may leave part of their work for later.
        let mut removals = Vec::new();
        // The tasks' saves (by index in the pipeline), whose refusals their instance adopts.
        #[cfg(feature = "tasks")]
        let mut task_saves = Vec::new();
        for write in batch.drain(..) {
            let first = pipe.len();
            match write {
                Write::Append { key, set, seq, message, cap, ttl } => {
                    pipe.cmd("XADD")
                        .arg(&key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(cap)
                        .arg(format!("0-{seq}"))
                        .arg("m")
                        .arg(message.as_ref());
                    pipe.cmd("PEXPIRE").arg(&key).arg(ttl);
                    events.push(first..pipe.len());
                    // The set expires with its last stream, not its first: DELETE finds every stream.
                    // Consecutive events of one stream in a batch refresh it (and its score) once.
                    if listed != key {
                        list.add(&mut pipe, &set, &key, ttl);
                        listed = key;
                    }
                }
                Write::Finish { key, cap, ttl } => {
                    pipe.cmd("XADD").arg(&key).arg("MAXLEN").arg("~").arg(cap).arg(END_ID).arg("end").arg(1);
                    pipe.cmd("PEXPIRE").arg(&key).arg(ttl);
                    events.push(first..pipe.len());
                }
                Write::Remove { key, set } => {
                    pipe.cmd("DEL").arg(&key);
                    pipe.cmd("ZREM").arg(&set).arg(&key);
                    listed.clear();
                    removed.push(key);
                }
                Write::KeepResumable { key, set, ttl, done } => {
                    list.add(&mut pipe, &set, &key, ttl);
                    waiting.push((first..pipe.len(), Waiter::Stream(key, done)));
                }
                Write::RemoveSession { set } => {
                    pipe.cmd("EVAL").arg(REMOVE_SESSION).arg(1).arg(&set).arg(REMOVAL_CHUNK);
                    if let Some(session) = set.strip_prefix(&prefix).and_then(|set| set.strip_prefix("evs:")) {
                        removed_sessions.push(format!("{prefix}ev:{session}:"));
                    }
                    removals.push((first, set));
                    listed.clear();
                }
                Write::Standalone { key, stream, ttl, done } => {
                    pipe.cmd("HSET").arg(&key).arg(stream).arg(1);
                    pipe.cmd("PEXPIRE").arg(&key).arg(ttl);
                    if let Some(done) = done {
                        waiting.push((first..pipe.len(), Waiter::Own(done)));
                    }
                }
                Write::StandaloneClosed { key, stream } => {
                    pipe.cmd("HDEL").arg(&key).arg(stream);
                }
                // Every earlier write of the batch.
                Write::Flush { done } => waiting.push((0..first, Waiter::Flush(done))),
                Write::Publish { channel, message } => {
                    pipe.cmd("PUBLISH").arg(&*channel).arg(message.as_ref());
                }
                #[cfg(feature = "tasks")]
                Write::SaveTask { key, value, ttl, done, overruled } => {
                    pipe.cmd("EVAL").arg(SAVE_TASK).arg(1).arg(&key).arg(value).arg(ttl);
                    task_saves.push((first, overruled));
                    if let Some(done) = done {
                        waiting.push((first..pipe.len(), Waiter::Own(done)));
                    }
                }
            }
        }
        // A batch of flushes alone leaves the pipeline empty, which Redis cannot be sent.
        let replies = if pipe.is_empty() {
            Some(Vec::new())
        } else {
            pipe.ignore_errors()
                .query_async::<Vec<redis::Value>>(&mut connection)
                .await
                .inspect_err(|error| {
                    tracing::warn!(%error, "SSE events not written to Redis; other instances cannot resume them");
                })
                .ok()
        };
        // The commands Redis refused, in order.
        let refused: Vec<usize> = match &replies {
            Some(replies) => replies
                .iter()
                .enumerate()
                .filter_map(|(index, reply)| matches!(reply, redis::Value::ServerError(_)).then_some(index))
                .collect(),
            None => Vec::new(),
        };
        // The pipeline's commands by index, listed only when some failed.
        let commands: Vec<&redis::Cmd> =
            if replies.is_none() || !refused.is_empty() { pipe.cmd_iter().collect() } else { Vec::new() };
        // One warning per batch, not per command: near `maxmemory` a batch may have a thousand refusals.
        if let (Some(replies), Some(&first)) = (&replies, refused.first()) {
            let error = match replies.get(first) {
                Some(redis::Value::ServerError(error)) => error.to_string(),
                _ => String::new(),
            };
            let examples: Vec<String> = refused
                .iter()
                .take(3)
                .filter_map(|&index| commands.get(index))
                .map(|c| described(c, &prefix))
                .collect();
            tracing::warn!(
                refused = refused.len(),
                %error,
                commands = ?examples,
                "Redis refused writes; other instances miss them"
            );
        }
        if let Some(replies) = &replies {
            for (index, set) in removals {
                if let Some(redis::Value::Int(left @ 1..)) = replies.get(index) {
                    remove_rest(&mut connection, &set, *left).await;
                }
            }
        }
        // Before the waiters hear: a refused final save has been adopted once it is answered.
        #[cfg(feature = "tasks")]
        if let Some(replies) = &replies {
            for (index, overruled) in task_saves {
                if let Some(redis::Value::BulkString(recorded)) = replies.get(index) {
                    overruled.adopt(recorded);
                }
            }
        }
        // The streams whose events did not all reach Redis, in this batch or before.
        let mut known = lock(&holes);
        let now = tokio::time::Instant::now();
        for event in events {
            if replies.is_none() || any_in(&refused, &event) {
                known.add(commands.get(event.start).map(|command| key_of(command)).unwrap_or_default(), now);
            }
        }
        for key in removed {
            known.remove(&key);
        }
        for session in removed_sessions {
            known.remove_session(&session);
        }
        for (range, waiter) in waiting {
            let written = replies.is_some() && !any_in(&refused, &range);
            let _ = match waiter {
                Waiter::Own(done) => done.send(written),
                Waiter::Stream(key, done) => done.send(written && !known.contains(&key)),
                Waiter::Flush(done) => {
                    let holed = known.flushed();
                    done.send(written && !holed)
                }
            };
        }
    }
}

/// Who waits for a write of the event writer, and what it is told.
enum Waiter {
    /// Whether Redis took the write.
    Own(oneshot::Sender<bool>),
    /// Whether Redis took the write and holds every event written to stream `key` (see [`Holes`]).
    Stream(String, oneshot::Sender<bool>),
    /// Whether every event write since the last flush reached Redis.
    Flush(oneshot::Sender<bool>),
}

/// Streams at most remembered in [`Holes`]; past it the oldest is forgotten.
const MAX_HOLES: usize = 4096;

/// The streams whose copy in Redis has a hole: one of their event writes was dropped at the full queue,
/// refused by Redis, or lost with its batch. Nothing re-sends it (the instance running the stream still
/// serves it whole), so nothing may claim them resumable elsewhere: [`EventStore::keep_resumable`] fails
/// for them, and [`EventStore::flush`] fails while one found since the last flush is remembered. A stream
/// is forgotten when it or its session is removed, or [`RedisConfig::event_ttl`] after its last hole (when
/// the events around the hole have most likely expired from Redis).
struct Holes {
    /// Each stream's key, and its place in `order`.
    streams: std::collections::HashMap<String, u64>,
    /// The streams, oldest hole first: place, key, and when the hole was found.
    order: std::collections::BTreeMap<u64, (String, tokio::time::Instant)>,
    /// The place of the next hole found.
    next: u64,
    /// Holes found from this place on are news to the next flush.
    flushed: u64,
    /// [`RedisConfig::event_ttl`].
    ttl: Duration,
}

impl Holes {
    fn shared(ttl: Duration) -> Arc<std::sync::Mutex<Holes>> {
        Arc::new(std::sync::Mutex::new(Holes {
            streams: std::collections::HashMap::new(),
            order: std::collections::BTreeMap::new(),
            next: 0,
            flushed: 0,
            ttl,
        }))
    }

    /// Remembers a hole in stream `key`, found `now`.
    fn add(&mut self, key: String, now: tokio::time::Instant) {
        self.expire(now);
        // A stream remembered already moves to the newest place (news to the next flush), evicting none.
        if let Some(place) = self.streams.get(&key) {
            self.order.remove(place);
        } else if self.streams.len() >= MAX_HOLES
            && let Some((_, (oldest, _))) = self.order.pop_first()
        {
            self.streams.remove(&oldest);
        }
        self.streams.insert(key.clone(), self.next);
        self.order.insert(self.next, (key, now));
        self.next += 1;
    }

    /// Forgets the holes whose events Redis no longer holds anyway.
    fn expire(&mut self, now: tokio::time::Instant) {
        while let Some(entry) = self.order.first_entry() {
            if now.duration_since(entry.get().1) < self.ttl {
                break;
            }
            let (_, (key, _)) = entry.remove_entry();
            self.streams.remove(&key);
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.streams.contains_key(key)
    }

    fn remove(&mut self, key: &str) {
        if let Some(place) = self.streams.remove(key) {
            self.order.remove(&place);
        }
    }

    /// Forgets the streams whose keys start with `streams` (those of a session).
    fn remove_session(&mut self, streams: &str) {
        if self.streams.is_empty() {
            return;
        }
        let order = &mut self.order;
        self.streams.retain(|key, place| {
            let keep = !key.starts_with(streams);
            if !keep {
                order.remove(place);
            }
            keep
        });
    }

    /// Whether a hole found since the last flush is still remembered; the next flush starts from here.
    fn flushed(&mut self) -> bool {
        let holed = self.order.range(self.flushed..).next().is_some();
        self.flushed = self.next;
        holed
    }
}

/// Whether one of `refused` (in order) is in `range`.
fn any_in(refused: &[usize], range: &std::ops::Range<usize>) -> bool {
    let first = refused.partition_point(|&index| index < range.start);
    refused.get(first).is_some_and(|&index| index < range.end)
}

/// The key (first argument) of `command`.
fn key_of(command: &redis::Cmd) -> String {
    let key = command.args_iter().nth(1).and_then(|arg| match arg {
        redis::Arg::Simple(key) => Some(String::from_utf8_lossy(key).into_owned()),
        _ => None,
    });
    key.unwrap_or_default()
}

/// `command` and its key, for a log: the session or task id in the key is left out (it may be all a
/// client needs to act in the session).
fn described(command: &redis::Cmd, prefix: &str) -> String {
    let args: Vec<&[u8]> = command
        .args_iter()
        .filter_map(|arg| match arg {
            redis::Arg::Simple(arg) => Some(arg),
            _ => None,
        })
        .collect();
    let name = args.first().map(|name| String::from_utf8_lossy(name)).unwrap_or_default();
    // `EVAL <script> <number of keys> <key>`; every other command here names its key first.
    let key = if name.eq_ignore_ascii_case("EVAL") { args.get(3) } else { args.get(1) };
    let key = key.map(|key| String::from_utf8_lossy(key)).unwrap_or_default();
    let Some(rest) = key.strip_prefix(prefix) else { return format!("{name} …") };
    let mut parts = rest.split(':');
    let kind = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (Some(_), Some(stream)) => format!("{name} {prefix}{kind}:…:{stream}"),
        (Some(_), None) => format!("{name} {prefix}{kind}:…"),
        _ => format!("{name} {prefix}{kind}"),
    }
}

/// Removes up to `ARGV[1]` of an ended session's streams, and their list (`KEYS[1]`) once empty, in the
/// writer's pipeline: no round trip of its own to read the list first. Returns how many streams are left
/// (see [`remove_rest`]), so that one call never holds Redis up for a list of any length.
const REMOVE_SESSION: &str = r"
local streams = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #streams > 0 then
  redis.call('UNLINK', unpack(streams))
  redis.call('ZREM', KEYS[1], unpack(streams))
end
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[1]) end
return left
";

/// Streams [`REMOVE_SESSION`] removes per call (within Lua's limit on `unpack`).
const REMOVAL_CHUNK: usize = 512;

/// Calls of [`REMOVE_SESSION`] at most for one session after the first; what is left then expires with its
/// events ([`RedisConfig::event_ttl`]).
const MAX_REMOVAL_CHUNKS: usize = 1024;

/// Goes on removing the streams of session list `set` (`left` of them), a chunk per round trip.
async fn remove_rest(connection: &mut ConnectionManager, set: &str, mut left: i64) {
    for _ in 0..MAX_REMOVAL_CHUNKS {
        if left <= 0 {
            return;
        }
        let removal = redis::cmd("EVAL").arg(REMOVE_SESSION).arg(1).arg(set).arg(REMOVAL_CHUNK).to_owned();
        match removal.query_async::<i64>(connection).await {
            Ok(now_left) => left = now_left,
            Err(error) => {
                tracing::warn!(%error, "an ended session's streams were not all removed from Redis; they expire");
                return;
            }
        }
    }
    tracing::warn!(left, "an ended session listed too many streams to remove from Redis; the rest expire");
}

/// Lists streams in their session's `evs:` set, scored by when their events expire, trimming those whose
/// events did (their keys are gone: nothing to remove or resume).
struct List {
    /// Now, in milliseconds since the Unix epoch.
    now: u64,
}

impl List {
    fn now() -> Self {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        List { now: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX) }
    }

    /// Lists stream `key` in `set` for `ttl` ms: the set expires with its last stream, not its first.
    fn add(&self, pipe: &mut redis::Pipeline, set: &str, key: &str, ttl: u64) {
        pipe.cmd("ZADD").arg(set).arg(self.now.saturating_add(ttl)).arg(key);
        pipe.cmd("ZREMRANGEBYSCORE").arg(set).arg("-inf").arg(format!("({}", self.now));
        pipe.cmd("PEXPIRE").arg(set).arg(ttl);
    }
}

/// A [`SessionBus`] on Redis pub/sub (channel `<prefix>bus`). Messages are published through the event
/// writer's queue (in order with the events written before them) and received on a connection of their
/// own, which reconnects by itself, also when it stops answering its periodic `PING`; what is published
/// while it is away is lost for this instance.
pub struct RedisSessionBus {
    writes: mpsc::Sender<Write>,
    channel: Arc<str>,
    received: broadcast::Sender<Bytes>,
    /// Which subscription delivers messages now (counting from 1); 0 while there is none.
    subscription: Arc<AtomicU64>,
    /// Stops the listening task when the last handle goes.
    _listening: DropGuard,
}

impl fmt::Debug for RedisSessionBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionBus").field("channel", &self.channel).finish()
    }
}

/// Messages received and not yet taken by a lagging subscriber.
const BUS_BACKLOG: usize = 4096;

impl RedisSessionBus {
    /// Subscribes (waiting up to the configured timeout for the first subscription, so that nothing
    /// published once `connect` returns is missed) and starts listening.
    async fn start(client: &Client, config: &RedisConfig, writes: mpsc::Sender<Write>) -> Arc<Self> {
        let channel: Arc<str> = format!("{}bus", config.key_prefix).into();
        let received = broadcast::channel(BUS_BACKLOG).0;
        let stop = CancellationToken::new();
        let (subscribed, first) = oneshot::channel();
        let subscription = Arc::new(AtomicU64::new(0));
        let listening = Listening {
            client: client.clone(),
            channel: channel.clone(),
            received: received.clone(),
            subscription: subscription.clone(),
            timeout: config.timeout,
            stop: stop.clone(),
        };
        tokio::spawn(listen(listening, subscribed));
        if tokio::time::timeout(config.timeout, first).await.is_err() {
            tracing::warn!(
                timeout = ?config.timeout,
                "the Redis session bus is not subscribed yet; until it is, messages other instances publish \
                 (answers, cancellations, deletions) are lost for this one"
            );
        }
        Arc::new(RedisSessionBus { writes, channel, received, subscription, _listening: stop.drop_guard() })
    }
}

impl SessionBus for RedisSessionBus {
    fn publish(&self, message: Bytes) {
        if self.writes.try_send(Write::Publish { channel: self.channel.clone(), message }).is_err() {
            tracing::warn!("Redis writes are backed up; a session bus message was dropped");
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.received.subscribe()
    }

    fn subscription(&self) -> Option<u64> {
        Some(self.subscription.load(Ordering::Relaxed)).filter(|&n| n != 0)
    }
}

/// What the bus's listening task needs.
struct Listening {
    client: Client,
    channel: Arc<str>,
    received: broadcast::Sender<Bytes>,
    /// See [`RedisSessionBus::subscription`].
    subscription: Arc<AtomicU64>,
    /// [`RedisConfig::timeout`]: for subscribing, and for the answer to each `PING`.
    timeout: Duration,
    stop: CancellationToken,
}

/// Marks the bus subscription as gone when dropped, however the listening loop leaves it.
struct Unsubscribed<'a>(&'a AtomicU64);

impl Drop for Unsubscribed<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Receives the bus's messages until stopped, reconnecting with a growing delay (at most 2 s).
///
/// A subscriber only reads, so a connection that died without a word (a NAT or firewall forgetting it, a
/// partition, a failover to another address) would look quiet forever: the listener sends `PING` every
/// twice the timeout (at least every second) and reconnects when no answer comes within the timeout.
async fn listen(listening: Listening, subscribed: oneshot::Sender<()>) {
    use futures_util::StreamExt as _;
    let Listening { client, channel, received, subscription, timeout, stop } = listening;
    let mut subscriptions = 0;
    let every = (timeout * 2).max(Duration::from_secs(1));
    let mut subscribed = Some(subscribed);
    let mut delay = Duration::from_millis(50);
    loop {
        let connected = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&*channel).await?;
            Ok::<_, RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            pubsub = tokio::time::timeout(timeout, connected) => pubsub,
            _ = stop.cancelled() => return,
        };
        match pubsub {
            Ok(Ok(pubsub)) => {
                subscriptions += 1;
                subscription.store(subscriptions, Ordering::Relaxed);
                let _down = Unsubscribed(&subscription);
                if let Some(subscribed) = subscribed.take() {
                    let _ = subscribed.send(());
                }
                delay = Duration::from_millis(50);
                let (mut sink, mut messages) = pubsub.split();
                let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tokio::select! {
                        message = messages.next() => {
                            let Some(message) = message else {
                                tracing::warn!("the Redis session bus connection dropped; reconnecting");
                                break;
                            };
                            let _ = received.send(Bytes::copy_from_slice(message.get_payload_bytes()));
                        }
                        _ = ping.tick() => {
                            let answered = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                            if !matches!(answered, Ok(Ok(_))) {
                                tracing::warn!("the Redis session bus connection stopped answering; reconnecting");
                                break;
                            }
                        }
                        _ = stop.cancelled() => return,
                    }
                }
            }
            Ok(Err(error)) => tracing::debug!(%error, "the Redis session bus cannot subscribe yet"),
            Err(_) => tracing::debug!("the Redis session bus cannot subscribe yet: no answer in time"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Tasks (tasks extension) shared through Redis: `<prefix>task:<id>` holds the state of a task as its
/// instance last recorded it (JSON, expiring with the task), and `<prefix>alive:<instance>` says an
/// instance still runs (refreshed every [`HEARTBEAT`], expiring after [`ALIVE_LAPSE`]). A task another instance
/// reads as still running on an instance that is gone is `failed` from then on.
#[cfg(feature = "tasks")]
#[derive(Debug)]
pub(crate) struct RedisTasks {
    connection: ConnectionManager,
    prefix: String,
    instance: u32,
    writes: mpsc::Sender<Write>,
    /// [`RedisConfig::timeout`].
    timeout: Duration,
    /// The task stores of the services sharing tasks through these stores (weak: they hold their links).
    stores: std::sync::Mutex<Vec<std::sync::Weak<crate::server::tasks::TaskStore>>>,
    /// A check of [`RedisTasks::adopt_ended`] runs.
    adopting: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "tasks")]
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredTask {
    /// The instance running the task.
    i: u32,
    t: crate::protocol::tasks::extension::DetailedTask,
    /// The principal that created the task (only it may see the task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<crate::server::principal::PrincipalId>,
}

#[cfg(feature = "tasks")]
impl RedisTasks {
    fn start(
        connection: ConnectionManager,
        config: &RedisConfig,
        instance: u32,
        writes: mpsc::Sender<Write>,
    ) -> Arc<Self> {
        let prefix = config.key_prefix.clone();
        let stores = std::sync::Mutex::default();
        let adopting = std::sync::atomic::AtomicBool::new(false);
        Arc::new(RedisTasks { connection, prefix, instance, writes, timeout: config.timeout, stores, adopting })
    }

    /// Makes the tasks this instance runs what another instance recorded for them, where that is a
    /// terminal state: while this instance's claim had lapsed (`Retaken` by its heartbeat), others may have
    /// declared its tasks failed, for good, and the handlers of those tasks must stop even if they never
    /// save their state again (a save would be refused and adopted: see [`SAVE_TASK`]).
    /// Runs [`RedisTasks::adopt_ended`] on its own task, once at a time: with many running tasks it takes a
    /// round trip per 256, which must not hold up the next heartbeat (just after a lapse, when Redis may be
    /// slow, a late beat could let the claim lapse again).
    fn adopt_ended_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.adopting.swap(true, Ordering::AcqRel) {
            return;
        }
        let tasks = self.clone();
        tokio::spawn(async move {
            tasks.adopt_ended().await;
            tasks.adopting.store(false, Ordering::Release);
        });
    }

    async fn adopt_ended(&self) {
        let mut connection = self.connection.clone();
        let stores: Vec<_> = {
            let mut stores = lock(&self.stores);
            stores.retain(|store| store.strong_count() > 0);
            stores.iter().filter_map(std::sync::Weak::upgrade).collect()
        };
        for store in stores {
            for ids in store.running().chunks(256) {
                let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
                let read = redis::cmd("MGET").arg(&keys).to_owned();
                let records = bounded(self.timeout, async {
                    read.query_async::<Vec<Option<Vec<u8>>>>(&mut connection).await.map_err(failed)
                });
                let records = match records.await {
                    Ok(records) => records,
                    Err(error) => {
                        tracing::warn!(%error, "this instance's tasks could not be checked after its claim lapsed");
                        return;
                    }
                };
                for (id, record) in ids.iter().zip(records) {
                    let recorded = record.and_then(|record| serde_json::from_slice::<StoredTask>(&record).ok());
                    if let Some(StoredTask { t: recorded, .. }) =
                        recorded.filter(|stored| stored.t.task.status.is_terminal())
                    {
                        store.overruled(id, recorded);
                    }
                }
            }
        }
    }

    fn key(&self, id: &str) -> String {
        format!("{}task:{id}", self.prefix)
    }
}

/// The [`TaskShare`](crate::server::tasks::TaskShare) of one service: records in Redis, commands on the bus.
#[cfg(feature = "tasks")]
#[derive(Debug)]
pub(crate) struct TaskLink {
    tasks: Arc<RedisTasks>,
    bus: Arc<super::bus::Bus>,
    /// This instance's tasks (weak: they hold this link), which adopt a state another instance recorded.
    here: std::sync::Weak<crate::server::tasks::TaskStore>,
}

#[cfg(feature = "tasks")]
impl TaskLink {
    /// The link of `here`, a service's tasks, to `tasks`, whose instance's heartbeat then checks them when
    /// its claim lapsed (see [`RedisTasks::adopt_ended`]).
    pub(crate) fn new(
        tasks: Arc<RedisTasks>,
        bus: Arc<super::bus::Bus>,
        here: &Arc<crate::server::tasks::TaskStore>,
    ) -> Self {
        let here = Arc::downgrade(here);
        {
            // Services built and dropped one after another leave no trace here.
            let mut stores = lock(&tasks.stores);
            stores.retain(|store| store.strong_count() > 0);
            stores.push(here.clone());
        }
        TaskLink { tasks, bus, here }
    }

    fn overruled(&self, id: &str) -> Overruled {
        Overruled { tasks: self.here.clone(), id: id.to_owned() }
    }
}

#[cfg(feature = "tasks")]
impl crate::server::tasks::TaskShare for TaskLink {
    fn save(
        &self,
        id: &str,
        task: &crate::protocol::tasks::extension::DetailedTask,
        principal: Option<&crate::server::principal::PrincipalId>,
        ttl: Duration,
    ) {
        let stored = StoredTask { i: self.tasks.instance, t: task.clone(), p: principal.cloned() };
        let Ok(value) = serde_json::to_vec(&stored) else { return };
        let (key, overruled) = (self.tasks.key(id), self.overruled(id));
        let write = Write::SaveTask { key, value, ttl: millis(ttl), done: None, overruled };
        if self.tasks.writes.try_send(write).is_err() {
            tracing::warn!("Redis writes are backed up; a task's state was not shared");
        }
    }

    fn save_now<'a>(
        &'a self,
        id: &'a str,
        task: &'a crate::protocol::tasks::extension::DetailedTask,
        principal: Option<&'a crate::server::principal::PrincipalId>,
        ttl: Duration,
    ) -> crate::server::tasks::ShareFuture<'a, Result<(), crate::protocol::ErrorObject>> {
        Box::pin(async move {
            let unshared = |why: &str| {
                tracing::warn!(task = %id, "a task's state did not reach Redis: {why}");
                crate::protocol::ErrorObject::internal(TASKS_UNAVAILABLE)
            };
            let stored = StoredTask { i: self.tasks.instance, t: task.clone(), p: principal.cloned() };
            let value = serde_json::to_vec(&stored).map_err(|e| unshared(&e.to_string()))?;
            let (done, written) = oneshot::channel();
            let (key, overruled) = (self.tasks.key(id), self.overruled(id));
            let write = Write::SaveTask { key, value, ttl: millis(ttl), done: Some(done), overruled };
            self.tasks.writes.try_send(write).map_err(|_| unshared("writes are backed up"))?;
            match tokio::time::timeout(self.tasks.timeout, written).await {
                Ok(Ok(true)) => Ok(()),
                Ok(_) => Err(unshared("the write failed")),
                Err(_) => Err(unshared("no answer in time")),
            }
        })
    }

    fn load<'a>(
        &'a self,
        id: &'a str,
    ) -> crate::server::tasks::ShareFuture<
        'a,
        Result<Option<crate::server::tasks::SharedTask>, crate::protocol::ErrorObject>,
    > {
        Box::pin(async move {
            let read = async move {
                let unavailable = |error: RedisError| {
                    tracing::warn!(%error, "a shared task could not be read");
                    crate::protocol::ErrorObject::internal(TASKS_UNAVAILABLE)
                };
                let mut connection = self.tasks.connection.clone();
                let get = redis::cmd("GET").arg(self.tasks.key(id)).to_owned();
                let Some(json) = get.query_async::<Option<Vec<u8>>>(&mut connection).await.map_err(unavailable)? else {
                    return Ok(None);
                };
                let Ok(StoredTask { i, t: task, p: principal }) = serde_json::from_slice(&json) else {
                    return Ok(None);
                };
                if task.task.status.is_terminal() {
                    return Ok(Some((task, principal)));
                }
                // If its instance is gone, the handler went with it: the task failed, for good.
                let mut failed = task.clone();
                failed.task.status = crate::protocol::tasks::TaskStatus::Failed;
                failed.task.last_updated_at = crate::server::tasks::timestamp();
                failed.input_requests = None;
                failed.error =
                    Some(crate::protocol::ErrorObject::internal("the server instance running this task stopped"));
                let failed_json = serde_json::to_vec(&StoredTask { i, t: failed.clone(), p: principal.clone() })
                    .map_err(|_| crate::protocol::ErrorObject::internal(TASKS_UNAVAILABLE))?;
                let prefix = &self.tasks.prefix;
                let verdict: u8 = redis::cmd("EVAL")
                    .arg(FAIL_IF_GONE)
                    .arg(4)
                    .arg(self.tasks.key(id))
                    .arg(alive_key(prefix, u64::from(i)))
                    .arg(live_key(prefix))
                    .arg(settling_key(prefix))
                    .arg(json)
                    .arg(failed_json)
                    .query_async(&mut connection)
                    .await
                    .map_err(unavailable)?;
                match verdict {
                    1 => Ok(Some((failed, principal))),
                    2 => Ok(Some((task, principal))),
                    // Its instance wrote since the read: it runs after all; what it wrote is the answer.
                    _ => {
                        let json = get.query_async::<Option<Vec<u8>>>(&mut connection).await.map_err(unavailable)?;
                        let stored = json.and_then(|json| serde_json::from_slice::<StoredTask>(&json).ok());
                        Ok(stored.map(|s| (s.t, s.p)))
                    }
                }
            };
            tokio::time::timeout(self.tasks.timeout, read)
                .await
                .unwrap_or_else(|_| Err(crate::protocol::ErrorObject::internal(TASKS_UNAVAILABLE)))
        })
    }

    fn forward(&self, id: &str, command: crate::server::tasks::TaskCommand) {
        if let Ok(message) = serde_json::to_vec(&command) {
            self.bus.publish(super::bus::Kind::Task, id, Some(&message));
        }
    }

    fn ended_elsewhere<'a>(
        &'a self,
        id: &'a str,
    ) -> crate::server::tasks::ShareFuture<'a, Option<crate::protocol::tasks::extension::DetailedTask>> {
        Box::pin(async move {
            let mut connection = self.tasks.connection.clone();
            let get = redis::cmd("GET").arg(self.tasks.key(id)).to_owned();
            let read = get.query_async::<Option<Vec<u8>>>(&mut connection);
            let json = tokio::time::timeout(self.tasks.timeout, read).await.ok()?.ok()??;
            let stored: StoredTask = serde_json::from_slice(&json).ok()?;
            stored.t.task.status.is_terminal().then_some(stored.t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_forget_the_oldest_the_expired_and_the_removed_and_tell_a_flush_what_is_new() {
        let start = tokio::time::Instant::now();
        let shared = Holes::shared(Duration::from_secs(60));
        let mut holes = lock(&shared);
        for n in 0..MAX_HOLES {
            holes.add(format!("k:ev:s{}:{n}", n % 2), start);
        }
        assert!(holes.flushed());
        assert!(!holes.flushed(), "nothing new since the last flush");
        // A stream remembered already evicts none, and is news to the next flush.
        holes.add("k:ev:s0:0".into(), start);
        assert!(holes.contains("k:ev:s0:0") && holes.contains("k:ev:s1:1"));
        assert!(holes.flushed());
        // The oldest goes first: stream 1 (stream 0 was refreshed).
        holes.add("k:ev:new:1".into(), start);
        assert!(!holes.contains("k:ev:s1:1") && holes.contains("k:ev:s0:0") && holes.contains("k:ev:s0:2"));
        // A removed stream or session is forgotten.
        holes.remove("k:ev:s0:2");
        holes.remove_session("k:ev:s1:");
        assert!(!holes.contains("k:ev:s0:2") && !holes.contains("k:ev:s1:3"));
        assert_eq!(holes.streams.len(), MAX_HOLES / 2);
        assert_eq!(holes.order.len(), holes.streams.len());
        // Past the event TTL, holes whose events Redis no longer holds are forgotten.
        holes.add("k:ev:late:1".into(), start + Duration::from_secs(61));
        assert_eq!(holes.streams.len(), 1);
        assert!(holes.contains("k:ev:late:1"));
    }
}
