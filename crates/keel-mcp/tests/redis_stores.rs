//! The Redis stores against a real, private `redis-server` (skipped loudly when it is not installed):
//! sessions roam between instances, a dropped SSE stream resumes on another instance with every event
//! exactly once, the hot path costs no round trip between checks of a held copy, and a Redis outage refuses new sessions with 503 until
//! Redis is back, with no restart of the instances.

use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::server::http::{
    EventStore, HttpConfig, McpService, RedisConfig, RedisStores, SessionBus, SessionRecord, SessionStore,
    SessionUpdate, StoreError, StoreFuture,
};
use serde_json::{Value, json};

#[path = "support/instances.rs"]
mod instances;
#[path = "support/redis.rs"]
mod redis_server;
#[path = "span_capture/mod.rs"]
mod span_capture;

use instances::*;
use redis_server::RedisServer;

/// Every test is bounded: a hang is a failure, not a stuck CI job.
const BOUND: Duration = Duration::from_secs(60);

async fn instance(redis: &RedisServer, prefix: &str) -> (McpService, RedisStores) {
    settled(redis, prefix).await;
    let config = RedisConfig::new(redis.url()).key_prefix(prefix).timeout(Duration::from_millis(500));
    let stores = RedisStores::connect(config).await.expect("Redis is up");
    (server().http_service(HttpConfig::default().redis(&stores)), stores)
}

/// Makes Redis look as if instances had reached it for long, as they have but for the first seconds after
/// it started or lost its data: a new instance then takes its number at once, without waiting for running
/// instances to renew their claims (`an_instance_number_is_never_given_twice_after_redis_loses_its_data`
/// tests that wait).
async fn settled(redis: &RedisServer, prefix: &str) {
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}live"))
        .arg(1)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw(redis).await)
        .await
        .unwrap();
}

/// A raw connection, to look at what the stores wrote.
async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn sessions_roam_change_and_end_across_instances() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, stores_a) = instance(&redis, "roam:").await;
        let (b, _stores_b) = instance(&redis, "roam:").await;
        assert_ne!(stores_a.session_store().instance(), _stores_b.session_store().instance());
        let id = session(&a).await;
        let response = call_tool(&b, &id, 1, "echo", json!({"text": "via b"})).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json_body(response).await["result"]["content"][0]["text"], "via b");

        // The record expires after the idle timeout (30 minutes by default) plus one check interval (2 s: a
        // copy's last use may come that long after its check refreshed the record).
        let mut conn = raw(&redis).await;
        let ttl: i64 = redis::cmd("PTTL").arg(format!("roam:s:{id}")).query_async(&mut conn).await.unwrap();
        assert!(ttl > 29 * 60 * 1000 && ttl <= 30 * 60 * 1000 + 2_000, "ttl {ttl}");

        // A change made through B is what A (and the store) see next.
        assert_eq!(call(&b, &id, 2, "logging/setLevel", json!({"level": "error"})).await.status(), StatusCode::OK);
        let (record, _) = stores_a.session_store().load(&id, Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!(record.log_level, Some(LoggingLevel::Error));
        assert_eq!(call_tool(&a, &id, 3, "nothing", json!({})).await.status(), StatusCode::OK);

        // DELETE on A ends it on B too.
        assert_eq!(delete(&a, &id).await.status(), StatusCode::OK);
        assert_eq!(call_tool(&b, &id, 4, "nothing", json!({})).await.status(), StatusCode::NOT_FOUND);
        let exists: bool = redis::cmd("EXISTS").arg(format!("roam:s:{id}")).query_async(&mut conn).await.unwrap();
        assert!(!exists);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_change_is_saved_only_over_the_revision_read_and_never_brings_a_session_back() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, stores) = instance(&redis, "update:").await;
        let store = stores.session_store();
        let id = session(&a).await;
        let ttl = Duration::from_secs(60);
        // A read does not refresh the record's expiry (a load does).
        let mut conn = raw(&redis).await;
        let key = format!("update:s:{id}");
        let _: () = redis::cmd("PEXPIRE").arg(&key).arg(5_000).query_async(&mut conn).await.unwrap();
        assert!(store.read(&id, ttl).await.unwrap().is_some());
        let left: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
        assert!(left <= 5_000, "a read refreshed the expiry: {left} ms left");
        let (mut record, revision) = store.load(&id, ttl).await.unwrap().unwrap();
        let left: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
        assert!(left > 5_000, "a load did not refresh the expiry: {left} ms left");
        record.log_level = Some(LoggingLevel::Error);
        assert_eq!(store.update(&id, &record, revision + 1, ttl).await.unwrap(), SessionUpdate::Stale);
        assert_eq!(store.update(&id, &record, revision, ttl).await.unwrap(), SessionUpdate::Saved(revision + 1));
        assert_eq!(store.load(&id, ttl).await.unwrap(), Some((record.clone(), revision + 1)));
        assert!(store.remove(&id).await.unwrap());
        assert_eq!(store.update(&id, &record, revision + 1, ttl).await.unwrap(), SessionUpdate::Gone);
        let exists: bool =
            redis::cmd("EXISTS").arg(format!("update:s:{id}")).query_async(&mut raw(&redis).await).await.unwrap();
        assert!(!exists, "the deleted session came back");
    })
    .await
    .expect("bounded");
}

/// Starts A under `prefix` with number 5; restarts Redis, empty but for a counter restored from an older
/// snapshot whose next number is A's (and, with `snapshot`, every key of the prefix that has no expiry,
/// as a restart with persistence brings them back); then starts B at once, most often before A's next
/// heartbeat puts its claim back (should the beat come first, B finds the number held: the same outcome).
/// B must not get A's number.
async fn a_newcomer_right_after_a_restart(redis: &mut RedisServer, prefix: &str, snapshot: bool) -> RedisStores {
    let counter = format!("{prefix}instances");
    let mut conn = raw(redis).await;
    // A number above 1, so that a counter that starts over does not reach it by itself.
    let _: () = redis::cmd("SET").arg(&counter).arg(4).query_async(&mut conn).await.unwrap();
    let (_a, stores_a) = instance(redis, prefix).await;
    let number = stores_a.session_store().instance();
    assert_eq!(number, 5);
    let mut lasting = Vec::new();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    for key in keys.into_iter().filter(|key| snapshot && *key != counter) {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
        if ttl == -1 {
            let value: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(&mut conn).await.unwrap();
            lasting.push((key, value));
        }
    }
    redis.restart();
    let mut conn = raw(redis).await;
    for (key, value) in lasting {
        let _: () = redis::cmd("RESTORE").arg(key).arg(0).arg(value).query_async(&mut conn).await.unwrap();
    }
    let _: () = redis::cmd("SET").arg(&counter).arg(number - 1).query_async(&mut conn).await.unwrap();
    // A timeout well above a heartbeat's round trip: B waits for A's claim a heartbeat, twice that and a
    // second, and A's beat needs no luck to land.
    let config = RedisConfig::new(redis.url()).key_prefix(prefix).timeout(Duration::from_secs(2));
    let stores_b = RedisStores::connect(config).await.expect("Redis is up");
    assert_ne!(stores_b.session_store().instance(), number, "two running instances share a number");
    // A holds its claim (B's tentative one gave way).
    let holder: String = redis::cmd("GET").arg(format!("{prefix}alive:{number}")).query_async(&mut conn).await.unwrap();
    assert!(!holder.starts_with("new:"), "{holder}");
    stores_a
}

#[tokio::test]
async fn an_instance_number_is_never_given_twice_after_redis_loses_its_data() {
    let Some(mut redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let stores_a = a_newcomer_right_after_a_restart(&mut redis, "numbers:", false).await;
        let number = stores_a.session_store().instance();
        // Redis comes back empty again: A's heartbeat (B's is gone) raises the counter to A's number, so that a
        // newcomer's first try skips it.
        redis.restart();
        let mut conn = raw(&redis).await;
        let mut counter = 0;
        for _ in 0..500 {
            counter = redis::cmd("GET")
                .arg("numbers:instances")
                .query_async::<Option<u32>>(&mut conn)
                .await
                .unwrap()
                .unwrap_or(0);
            if counter >= number {
                break;
            }
            // The heartbeat runs every 2 s and tells no one: poll, at a bounded pace.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counter, number, "A's heartbeat did not raise the counter to its number");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn an_instance_number_is_never_given_twice_after_redis_restarts_from_a_snapshot() {
    let Some(mut redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, a_newcomer_right_after_a_restart(&mut redis, "snapshot:", true))
        .await
        .expect("bounded");
}

#[tokio::test]
async fn a_heartbeat_mends_an_instances_counter_that_is_not_a_number() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "mend:").await;
        let number = stores.session_store().instance();
        let mut conn = raw(&redis).await;
        let _: () = redis::cmd("SET").arg("mend:instances").arg("garbage").query_async(&mut conn).await.unwrap();
        let mut counter = String::new();
        for _ in 0..500 {
            counter = redis::cmd("GET").arg("mend:instances").query_async(&mut conn).await.unwrap();
            if counter != "garbage" {
                break;
            }
            // The heartbeat runs every 2 s and tells no one: poll, at a bounded pace.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counter, number.to_string(), "the heartbeat failed on the counter");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_redis_that_refuses_scripts_fails_the_connection_with_the_cause() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        // A hardened Redis: the instance's user may do everything but run scripts. (No channel rule: the
        // connection fails at its first script, before it subscribes.)
        let mut conn = raw(&redis).await;
        let acl: redis::RedisResult<()> = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("noscript")
            .arg("on")
            .arg(">secret")
            .arg("~*")
            .arg("+@all")
            .arg("-@scripting")
            .query_async(&mut conn)
            .await;
        if let Err(error) = acl {
            eprintln!("\n*** SKIPPED: this redis-server has no ACLs (Redis < 6): {error} ***\n");
            return;
        }
        let url = format!("redis://noscript:secret@127.0.0.1:{}/", redis.port());
        let config = RedisConfig::new(url).key_prefix("noscript:").timeout(Duration::from_millis(500));
        let error = RedisStores::connect(config).await.expect_err("an instance that would look dead in 15 s");
        let message = error.to_string();
        assert!(message.contains("+@scripting") && message.contains("'eval'"), "{message}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_session_keeps_its_list_of_streams_as_long_as_a_stream_gets_events() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "listed:").await;
        let events = stores.event_store();
        let mut conn = raw(&redis).await;
        events.append("s", 7, bytes::Bytes::from_static(b"{}"));
        events.flush().await.unwrap();
        // As if most of the event TTL had passed since the stream's first event.
        let _: () = redis::cmd("PEXPIRE").arg("listed:evs:s").arg(1_000).query_async(&mut conn).await.unwrap();
        events.append("s", 7, bytes::Bytes::from_static(b"{}"));
        events.flush().await.unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg("listed:evs:s").query_async(&mut conn).await.unwrap();
        assert!(ttl > 1_000, "the list of the session's streams expires before its stream: {ttl} ms");
        assert_eq!(listed_streams(&mut conn, "listed:evs:s").await, ["listed:ev:s:7"]);
    })
    .await
    .expect("bounded");
}

/// Every command Redis runs, seen through `MONITOR`, so that the test's own and the background ones are
/// told apart by what they touch, not by their names.
struct Watch {
    lines: std::pin::Pin<Box<dyn futures_util::Stream<Item = String> + Send>>,
    conn: redis::aio::MultiplexedConnection,
    marks: u32,
}

impl Watch {
    async fn start(redis: &RedisServer) -> Self {
        let monitor = redis::Client::open(redis.url()).unwrap().get_async_monitor().await.unwrap();
        let mut watch =
            Watch { lines: Box::pin(monitor.into_on_message::<String>()), conn: raw(redis).await, marks: 0 };
        watch.since_mark().await;
        watch
    }

    /// The commands Redis ran since the last mark (or the start) that touch the session store's keys (of
    /// prefix `prefix`) on a request's behalf: not the instance heartbeat (the script on `alive:`), not the
    /// bus subscription's `PING`, not a script's own calls (its `EVAL` counts). Sets a new mark.
    async fn since_mark(&mut self) -> Vec<String> {
        use futures_util::StreamExt as _;
        self.marks += 1;
        let mark = format!("keel-test-mark-{}", self.marks);
        let _: String = redis::cmd("ECHO").arg(&mark).query_async(&mut self.conn).await.unwrap();
        let mut commands = Vec::new();
        loop {
            let line = self.lines.next().await.expect("MONITOR goes on");
            if line.contains(&format!("\"{mark}\"")) {
                return commands;
            }
            // `<time> [<db> <client>] "<COMMAND>" "<arg>" ...`; a script's calls come from `lua`.
            let Some((client, command)) = line.split_once("] ") else { continue };
            let name = command.split('"').nth(1).unwrap_or_default().to_ascii_uppercase();
            let heartbeat = name == "EVAL" && command.contains(" \"hot:alive:");
            // A new connection's handshake (a heartbeat connection made anew) is no request's doing either.
            let handshake = name == "CLIENT" || name == "HELLO";
            if client.ends_with(" lua") || heartbeat || handshake || name == "PING" || name == "ECHO" {
                continue;
            }
            commands.push(command.to_owned());
        }
    }
}

#[tokio::test]
async fn a_call_in_a_held_session_costs_no_round_trip_between_checks_and_one_per_check() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "hot:").await;
        // A generous timeout: a bus `PING` missed on a loaded machine would resubscribe, and rightly check.
        let config = || RedisConfig::new(redis.url()).key_prefix("hot:").timeout(Duration::from_secs(5));
        let (stores, other) =
            (RedisStores::connect(config()).await.unwrap(), RedisStores::connect(config()).await.unwrap());
        let trusting =
            server().http_service(HttpConfig::default().redis(&stores).session_check_interval(Duration::MAX));
        let checking =
            server().http_service(HttpConfig::default().redis(&other).session_check_interval(Duration::ZERO));
        let (held, checked) = (session(&trusting).await, session(&checking).await);
        let mut watch = Watch::start(&redis).await;

        // Within the check interval, with no change announced on the bus: nothing asked of Redis.
        for n in 1..=3 {
            assert_eq!(call_tool(&trusting, &held, n, "echo", json!({"text": "x"})).await.status(), StatusCode::OK);
        }
        assert_eq!(watch.since_mark().await, Vec::<String>::new());

        // A check: one pipeline of the session's record, each command once: PEXPIRE (refresh the expiry) and
        // HGET (the revision).
        assert_eq!(call_tool(&checking, &checked, 1, "echo", json!({"text": "x"})).await.status(), StatusCode::OK);
        let mut commands = watch.since_mark().await;
        commands.sort_unstable();
        assert_eq!(commands.len(), 2, "{commands:?}");
        let record = format!("\"hot:s:{checked}\"");
        assert!(
            commands[0].starts_with(&format!("\"HGET\" {record}"))
                && commands[1].starts_with(&format!("\"PEXPIRE\" {record}")),
            "{commands:?}"
        );
    })
    .await
    .expect("bounded");
}

/// The progress notifications' `progress` values and the final result's text, in the order received.
fn summarize(events: &[Event]) -> (Vec<u64>, Option<String>) {
    let mut progress = Vec::new();
    let mut result = None;
    for data in events.iter().filter_map(|e| e.data.as_ref()) {
        if data["method"] == "notifications/progress" {
            progress.push(data["params"]["progress"].as_f64().unwrap() as u64);
        } else if let Some(text) = data["result"]["content"][0]["text"].as_str() {
            result = Some(text.to_owned());
        }
    }
    (progress, result)
}

#[tokio::test]
async fn a_dropped_stream_resumes_on_another_instance_with_every_event_once() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "resume:").await;
        let (b, _sb) = instance(&redis, "resume:").await;
        let id = session(&a).await;
        let params = json!({"name": "count", "arguments": {"n": 200}, "_meta": {"progressToken": "p"}});
        let response = call(&a, &id, 1, "tools/call", params).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        // The priming event, then the first 50 notifications; then the client loses the connection.
        let mut first = events(&mut body, 51).await;
        first.truncate(51);
        drop(body);
        let last = first.last().and_then(|e| e.id.clone()).expect("events carry ids");
        let response = get(&b, &id, Some(&last)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let rest = events(&mut body, usize::MAX).await;
        let (mut progress, _) = summarize(&first);
        let (more, result) = summarize(&rest);
        progress.extend(more);
        assert_eq!(progress, (1..=200).collect::<Vec<u64>>(), "each notification exactly once, in order");
        assert_eq!(result.as_deref(), Some("counted 200"));
        // Event ids name the stream and go on where the first connection stopped.
        let ids: Vec<&str> = first.iter().chain(&rest).filter_map(|e| e.id.as_deref()).collect();
        let stream = ids[0].split('_').next().unwrap();
        assert!(ids.iter().all(|i| i.starts_with(&format!("{stream}_"))));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_stream_closed_for_polling_resumes_at_once_on_another_instance() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "poll:").await;
        let (b, _sb) = instance(&redis, "poll:").await;
        let id = session(&a).await;
        // `poll` closes its stream before sending anything: the client gets the priming event, then the end.
        let response = call_tool(&a, &id, 1, "poll", json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let first = events(&mut response.into_body(), usize::MAX).await;
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].data.is_none(), "the priming event has no data: {first:?}");
        let last = first[0].id.clone().expect("the priming event has an id");
        // The client reconnects at once, to another instance, while the call still runs on A.
        let response = get(&b, &id, Some(&last)).await;
        assert_eq!(response.status(), StatusCode::OK);
        POLL_GO_ON.notify_one();
        let rest = events(&mut response.into_body(), usize::MAX).await;
        let stream = last.split('_').next().unwrap();
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert_eq!(rest[0].id.as_deref(), Some(format!("{stream}_1").as_str()));
        assert_eq!(rest[0].data.as_ref().unwrap()["result"]["content"][0]["text"], "polled");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn ending_a_session_sends_redis_no_empty_command() {
    let Some(redis) = RedisServer::start() else { return };
    // The writer runs on this (current-thread) runtime, so this thread's subscriber sees its warnings.
    let (logged, _guard) = span_capture::capture(tracing::Level::WARN);
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "empty:").await;
        let events = stores.event_store();
        // A batch holding only a session's removal (a round trip lets the writer take it alone)...
        events.remove_session("ended");
        stores.session_store().touch("ended", Duration::from_secs(1)).await.unwrap();
        // ...and this returns once every earlier write went through.
        events.keep_resumable("ended", 1).await.expect("the writes reached Redis");
    })
    .await
    .expect("bounded");
    assert!(!logged.text().contains("not written to Redis"), "{}", logged.text());
}

#[tokio::test]
async fn a_write_redis_refuses_fails_only_its_own_waiters() {
    let Some(redis) = RedisServer::start() else { return };
    // The writer runs on this (current-thread) runtime, so this thread's subscriber sees its warnings.
    let (logged, _guard) = span_capture::capture(tracing::Level::WARN);
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "refused:").await;
        let events = stores.event_store();
        // A key of the wrong type where session `secret-id` lists its streams: every write to it is refused.
        let mut conn = raw(&redis).await;
        let _: () = redis::cmd("SET").arg("refused:evs:secret-id").arg("x").query_async(&mut conn).await.unwrap();
        // One batch (nothing runs the writer before the first await): the refused writes, then others'.
        events.append("secret-id", 7, bytes::Bytes::from_static(b"{}"));
        let (refused, taken) = tokio::join!(events.keep_resumable("secret-id", 8), events.keep_resumable("good", 1));
        assert!(refused.is_err(), "a write Redis refused is reported taken");
        taken.expect("an unrelated write of the same batch is reported lost");
        assert_eq!(listed_streams(&mut conn, "refused:evs:good").await, ["refused:ev:good:1"]);
        // The unrelated event of the refused session's batch was written too.
        let len: u64 = redis::cmd("XLEN").arg("refused:ev:secret-id:7").query_async(&mut conn).await.unwrap();
        assert_eq!(len, 1);
    })
    .await
    .expect("bounded");
    // Each refusal is logged with its key, the session id left out.
    let text = logged.text();
    assert!(text.contains("ZADD refused:evs:…"), "{text}");
    assert!(!text.contains("secret-id"), "{text}");
}

#[tokio::test]
async fn refused_writes_are_logged_once_per_batch() {
    let Some(redis) = RedisServer::start() else { return };
    // The writer runs on this (current-thread) runtime, so this thread's subscriber sees its warnings.
    let (logged, _guard) = span_capture::capture(tracing::Level::WARN);
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "flood:").await;
        let events = stores.event_store();
        // Session `s` lists its streams in a key of the wrong type: every stream's listing is refused.
        let mut conn = raw(&redis).await;
        let _: () = redis::cmd("SET").arg("flood:evs:s").arg("x").query_async(&mut conn).await.unwrap();
        // One batch (nothing runs the writer before the first await).
        for stream in 1..=20 {
            events.append("s", stream, bytes::Bytes::from_static(b"{}"));
        }
        assert!(events.flush().await.is_err());
    })
    .await
    .expect("bounded");
    let text = logged.text();
    assert_eq!(text.matches("Redis refused").count(), 1, "{text}");
    // At least each stream's listing was refused, and the warning says how many.
    let count = text.split("refused=").nth(1).and_then(|rest| rest.split(' ').next()).and_then(|n| n.parse().ok());
    assert!(count.is_some_and(|n: u32| n >= 20), "{text}");
}

#[tokio::test]
async fn a_lost_write_is_forgotten_when_its_session_ends() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "forgotten:").await;
        let events = stores.event_store();
        let mut conn = raw(&redis).await;
        // Stream 7's event is refused (a key of the wrong type in its place): a hole.
        let _: () = redis::cmd("SET").arg("forgotten:ev:s:7").arg("x").query_async(&mut conn).await.unwrap();
        events.append("s", 7, bytes::Bytes::from_static(b"{}"));
        assert!(events.keep_resumable("s", 7).await.is_err());
        // The session ends: its streams are gone, and so is what this instance remembered of them (else the
        // list of lost streams fills with stale entries).
        events.remove_session("s");
        assert!(events.flush().await.is_ok(), "nothing lost since the last flush is remembered");
        events.keep_resumable("s", 7).await.expect("a hole of an ended session is still remembered");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_stream_with_a_lost_write_is_never_claimed_resumable() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "holes:").await;
        let events = stores.event_store();
        let mut conn = raw(&redis).await;
        // Stream 7's first event is refused (a key of the wrong type in its place), its second is written.
        let _: () = redis::cmd("SET").arg("holes:ev:s:7").arg("x").query_async(&mut conn).await.unwrap();
        events.append("s", 7, bytes::Bytes::from_static(b"{}"));
        events.append("s", 8, bytes::Bytes::from_static(b"{}"));
        assert!(events.flush().await.is_err(), "a flush after a lost event");
        assert!(events.flush().await.is_ok(), "nothing lost since the last flush");
        let _: () = redis::cmd("DEL").arg("holes:ev:s:7").query_async(&mut conn).await.unwrap();
        events.append("s", 7, bytes::Bytes::from_static(b"{}"));
        // A client resuming stream 7 elsewhere would miss its first event, with no sign of it.
        assert!(events.keep_resumable("s", 7).await.is_err(), "a stream with a hole is called resumable");
        events.keep_resumable("s", 8).await.expect("a whole stream is resumable");

        // An event dropped at the full queue makes a hole too.
        let config =
            RedisConfig::new(redis.url()).key_prefix("holes:").timeout(Duration::from_millis(500)).write_queue(1);
        let stores = RedisStores::connect(config).await.expect("Redis is up");
        let events = stores.event_store();
        events.append("t", 1, bytes::Bytes::from_static(b"{}"));
        events.append("t", 1, bytes::Bytes::from_static(b"{}"));
        // A round trip lets the writer empty the queue.
        stores.session_store().touch("t", Duration::from_secs(1)).await.unwrap();
        assert!(events.keep_resumable("t", 1).await.is_err(), "a stream with a dropped event is called resumable");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn ending_a_session_removes_its_streams_in_one_command() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (_a, stores) = instance(&redis, "ending:").await;
        let events = stores.event_store();
        for stream in [1, 2] {
            events.append("s", stream, bytes::Bytes::from_static(b"{}"));
        }
        events.flush().await.unwrap();
        let mut conn = raw(&redis).await;
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
        events.remove_session("s");
        events.flush().await.unwrap();
        for key in ["ending:evs:s", "ending:ev:s:1", "ending:ev:s:2"] {
            let exists: bool = redis::cmd("EXISTS").arg(key).query_async(&mut conn).await.unwrap();
            assert!(!exists, "{key} is left");
        }
        // One script, not a read of the set and then a deletion: the writer waits for one round trip, not two.
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
        // (The heartbeat's `EVAL` may land here too, never a `ZRANGE`: count the removal's by it.)
        let calls = |command: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
                .and_then(|rest| rest.split(',').next()?.parse::<u32>().ok())
                .unwrap_or(0)
        };
        assert!(calls("eval") >= 1 && calls("zrange") == 1 && calls("unlink") == 1, "{info}");
    })
    .await
    .expect("bounded");
}

/// The streams listed in a session's `evs:` key.
async fn listed_streams(conn: &mut redis::aio::MultiplexedConnection, set: &str) -> Vec<String> {
    let kind: String = redis::cmd("TYPE").arg(set).query_async(conn).await.unwrap();
    match kind.as_str() {
        "zset" => redis::cmd("ZRANGE").arg(set).arg(0).arg(-1).query_async(conn).await.unwrap(),
        "set" => redis::cmd("SMEMBERS").arg(set).query_async(conn).await.unwrap(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_session_lists_only_the_streams_redis_holds_and_ends_them_in_bounded_steps() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "list:").await;
        let short = RedisConfig::new(redis.url()).key_prefix("list:").event_ttl(Duration::from_millis(300));
        let (short, stores) = (
            RedisStores::connect(short).await.unwrap(),
            RedisStores::connect(RedisConfig::new(redis.url()).key_prefix("list:")).await.unwrap(),
        );
        let mut conn = raw(&redis).await;
        // A stream whose events expired (time passing is what is tested), in a list that did not...
        short.event_store().append("s", 1, bytes::Bytes::from_static(b"{}"));
        short.event_store().flush().await.unwrap();
        let events = stores.event_store();
        events.append("s", 3, bytes::Bytes::from_static(b"{}"));
        events.flush().await.unwrap();
        loop {
            let exists: bool = redis::cmd("EXISTS").arg("list:ev:s:1").query_async(&mut conn).await.unwrap();
            if !exists {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // ...is no longer listed once another stream of the session is written.
        events.append("s", 2, bytes::Bytes::from_static(b"{}"));
        events.flush().await.unwrap();
        let mut listed = listed_streams(&mut conn, "list:evs:s").await;
        listed.sort_unstable();
        assert_eq!(listed, ["list:ev:s:2", "list:ev:s:3"]);

        // A session with many streams ends in several short script calls, not one long one.
        for stream in 1..=1100 {
            events.append("many", stream, bytes::Bytes::from_static(b"{}"));
        }
        events.flush().await.unwrap();
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
        events.remove_session("many");
        events.flush().await.unwrap();
        let keys: Vec<String> = (1..=1100).map(|stream| format!("list:ev:many:{stream}")).collect();
        let left: u64 = redis::cmd("EXISTS").arg(&keys).arg("list:evs:many").query_async(&mut conn).await.unwrap();
        assert_eq!(left, 0, "streams are left");
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
        // 512 streams per call: three calls (each reads its chunk with one `ZRANGE`).
        assert!(info.contains("cmdstat_zrange:calls=3,"), "{info}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn an_unknown_stream_is_404_on_any_instance() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "gone:").await;
        let (b, _sb) = instance(&redis, "gone:").await;
        let id = session(&a).await;
        assert_eq!(get(&b, &id, Some("99_1")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get(&b, &id, Some("garbage")).await.status(), StatusCode::BAD_REQUEST);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_redis_outage_refuses_new_sessions_until_redis_is_back() {
    let Some(mut redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "outage:").await;
        let held = session(&a).await;
        redis.stop();
        let response = initialize(&a).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        // Stateless calls never touch Redis; a session this instance holds is served from its copy.
        let response = send(&a, modern_echo("stateless")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(call_tool(&a, &held, 1, "nothing", json!({})).await.status(), StatusCode::OK);

        // Redis comes back (empty): the connection recovers by itself, new sessions work again.
        redis.restart();
        let mut attempts = 0;
        let recovered = loop {
            attempts += 1;
            let response = initialize(&a).await;
            if response.status() == StatusCode::OK {
                break response;
            }
            assert!(attempts < 100, "no recovery after {attempts} attempts");
            // The client reconnects in the background and tells no one: poll, at a bounded pace.
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let id = recovered.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let value: Value = json_body(recovered).await;
        assert_eq!(value["result"]["protocolVersion"], LEGACY);
        assert_eq!(call_tool(&a, &id, 2, "nothing", json!({})).await.status(), StatusCode::OK);
        let _ = BodyExt::collect(send(&a, modern_echo("stateless")).await.into_body()).await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn answers_and_cancellations_cross_instances_through_redis() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "bus:").await;
        let (b, _sb) = instance(&redis, "bus:").await;
        let id = session(&a).await;
        // The elicitation of a tool running on A is answered through B.
        assert_eq!(ask_answered_elsewhere(&a, &b, &id, "Ada").await, "hello Ada");

        // A call running on A is cancelled through B.
        let call = {
            let (a, id) = (a.clone(), id.clone());
            tokio::spawn(async move { call_tool(&a, &id, 2, "wait_cancel", json!({})).await.status() })
        };
        WAIT_STARTED.notified().await;
        let cancel = json!({"requestId": 2});
        assert_eq!(notify(&b, &id, "notifications/cancelled", cancel).await.status(), StatusCode::ACCEPTED);
        WAIT_CANCELLED.notified().await;
        assert_eq!(call.await.unwrap(), StatusCode::ACCEPTED);

        // DELETE through B closes the standalone stream A holds.
        let mut standalone = get(&a, &id, None).await.into_body();
        assert_eq!(events(&mut standalone, 1).await.len(), 1, "the priming event");
        assert_eq!(delete(&b, &id).await.status(), StatusCode::OK);
        assert!(events(&mut standalone, usize::MAX).await.is_empty(), "the stream ends");
    })
    .await
    .expect("bounded");
}

/// A session store whose removal runs but whose answer is lost (as when Redis answers after the timeout).
#[derive(Debug)]
struct LostRemoval(std::sync::Arc<keel_mcp::server::http::RedisSessionStore>);

impl SessionStore for LostRemoval {
    fn instance(&self) -> u32 {
        self.0.instance()
    }
    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64> {
        self.0.save(id, record, ttl)
    }
    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a SessionRecord,
        revision: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate> {
        self.0.update(id, record, revision, ttl)
    }
    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        self.0.load(id, ttl)
    }
    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        self.0.touch(id, ttl)
    }
    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.0.remove(id).await?;
            Err(StoreError::new("Redis did not answer in time"))
        })
    }
}

#[tokio::test]
async fn a_delete_whose_answer_is_lost_still_ends_the_copies_elsewhere() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "lost-delete:").await;
        let config = RedisConfig::new(redis.url()).key_prefix("lost-delete:").timeout(Duration::from_millis(500));
        let stores_b = RedisStores::connect(config).await.expect("Redis is up");
        let lossy = HttpConfig::default()
            .redis(&stores_b)
            .session_store(std::sync::Arc::new(LostRemoval(stores_b.session_store())));
        let b = server().http_service(lossy);
        let id = session(&a).await;
        let mut standalone = get(&a, &id, None).await.into_body();
        assert_eq!(events(&mut standalone, 1).await.len(), 1, "the priming event");
        // The client hears 503 (and its retry would hear 404): A's copy must end all the same.
        assert_eq!(delete(&b, &id).await.status(), StatusCode::SERVICE_UNAVAILABLE);
        let ended = tokio::time::timeout(Duration::from_secs(5), events(&mut standalone, usize::MAX)).await;
        assert!(ended.is_ok_and(|rest| rest.is_empty()), "A's standalone stream stays open");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_call_lives_while_its_stream_is_read_on_another_instance_and_no_longer() {
    let Some(redis) = RedisServer::start() else { return };
    // Long enough that a loaded machine's bus latency does not look like an abandoned stream.
    let grace = Duration::from_secs(1);
    let url = redis.url();
    let instance = |prefix| {
        let url = url.clone();
        async move {
            let config = RedisConfig::new(url).key_prefix(prefix).timeout(Duration::from_millis(500));
            let stores = RedisStores::connect(config).await.expect("Redis is up");
            let config = HttpConfig::default().stream_resume_grace(grace).redis(&stores);
            (server().http_service(config), stores)
        }
    };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance("reading:").await;
        let (b, _sb) = instance("reading:").await;
        let id = session(&a).await;
        let linger = json!({"name": "linger", "arguments": {}, "_meta": {"progressToken": "p"}});
        // The client reads the priming event and the progress notification on A, then resumes on B.
        let mut body = call(&a, &id, 1, "tools/call", linger.clone()).await.into_body();
        let first = events(&mut body, 2).await;
        drop(body);
        let last = first.last().and_then(|e| e.id.clone()).expect("events carry ids");
        let response = get(&b, &id, Some(&last)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut resumed = response.into_body();
        // Several graces pass with the client reading on B only (time passing is what is tested): A keeps
        // the call.
        let read = tokio::time::timeout(grace * 4, events(&mut resumed, 1)).await;
        assert!(read.is_err(), "nothing to read until the call answers: {read:?}");
        LINGER_GO_ON.notify_one();
        let rest = events(&mut resumed, usize::MAX).await;
        let (_, result) = summarize(&rest);
        assert_eq!(result.as_deref(), Some("let go"), "the call answered: {rest:?}");
        // Once the client reads nowhere, the grace applies: the call is cancelled.
        let mut body = call(&a, &id, 2, "tools/call", linger).await.into_body();
        let first = events(&mut body, 2).await;
        drop(body);
        let last = first.last().and_then(|e| e.id.clone()).expect("events carry ids");
        let mut resumed = get(&b, &id, Some(&last)).await.into_body();
        let read = tokio::time::timeout(grace, events(&mut resumed, 1)).await;
        assert!(read.is_err(), "nothing to read yet: {read:?}");
        drop(resumed);
        LINGER_CANCELLED.notified().await;
    })
    .await
    .expect("bounded");
}

/// The Redis event store, but for relays that end `cut` after they start, as the Redis one's do after a
/// silent block.
#[derive(Debug)]
struct CutRelays {
    inner: std::sync::Arc<keel_mcp::server::http::RedisEventStore>,
    cut: Duration,
}

impl EventStore for CutRelays {
    fn append(&self, session: &str, stream: u64, message: bytes::Bytes) -> u64 {
        self.inner.append(session, stream, message)
    }
    fn events_after(&self, session: &str, stream: u64, after: u64) -> Vec<(u64, bytes::Bytes)> {
        self.inner.events_after(session, stream, after)
    }
    fn remove_stream(&self, session: &str, stream: u64) {
        self.inner.remove_stream(session, stream)
    }
    fn remove_session(&self, session: &str) {
        self.inner.remove_session(session)
    }
    fn release_stream(&self, session: &str, stream: u64) {
        self.inner.release_stream(session, stream)
    }
    fn finish_stream(&self, session: &str, stream: u64) {
        self.inner.finish_stream(session, stream)
    }
    fn flush(&self) -> StoreFuture<'_, ()> {
        self.inner.flush()
    }
    fn standalone_opened<'a>(&'a self, session: &'a str, stream: u64) -> StoreFuture<'a, ()> {
        self.inner.standalone_opened(session, stream)
    }
    fn standalone_closed(&self, session: &str, stream: u64) {
        self.inner.standalone_closed(session, stream)
    }
    fn standalone_open<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<bool>> {
        self.inner.standalone_open(session)
    }
    fn keep_resumable<'a>(&'a self, session: &'a str, stream: u64) -> StoreFuture<'a, ()> {
        self.inner.keep_resumable(session, stream)
    }
    fn replay<'a>(
        &'a self,
        session: &'a str,
        stream: u64,
        after: u64,
    ) -> StoreFuture<'a, Option<keel_mcp::server::http::RemoteEvents>> {
        Box::pin(async move {
            use futures_util::StreamExt as _;
            let events = self.inner.replay(session, stream, after).await?;
            let cut = tokio::time::sleep(self.cut);
            Ok(events.map(|events| Box::pin(events.take_until(cut)) as keel_mcp::server::http::RemoteEvents))
        })
    }
}

#[tokio::test]
async fn a_client_following_a_call_elsewhere_has_a_whole_grace_after_each_relay_ends() {
    static GO_ON: tokio::sync::Notify = tokio::sync::Notify::const_new();
    let Some(redis) = RedisServer::start() else { return };
    let hold = |ctx: keel_mcp::server::RequestContext, _: keel_mcp::server::NoArgs| async move {
        ctx.progress(1.0, None, None).await;
        tokio::select! {
            _ = GO_ON.notified() => "let go",
            _ = ctx.cancellation().cancelled() => "cancelled",
        }
    };
    let held = || {
        keel_mcp::server::Server::builder(keel_mcp::protocol::Implementation::new("follow", "1.0.0"))
            .tool("hold", "Runs until let go or cancelled", hold)
            .build()
    };
    // Long enough that a loaded machine's latencies stay well inside the margins below.
    let grace = Duration::from_secs(4);
    tokio::time::timeout(BOUND, async {
        settled(&redis, "follow:").await;
        let config = || RedisConfig::new(redis.url()).key_prefix("follow:").timeout(Duration::from_secs(2));
        let (stores_a, stores_b) =
            (RedisStores::connect(config()).await.unwrap(), RedisStores::connect(config()).await.unwrap());
        let a = held().http_service(HttpConfig::default().stream_resume_grace(grace).redis(&stores_a));
        // B's relays end just before their third "reading" (at 0, grace/2, grace): the last one went out
        // grace/2 before.
        let cut = CutRelays { inner: stores_b.event_store(), cut: grace - Duration::from_millis(100) };
        let b = held().http_service(
            HttpConfig::default().stream_resume_grace(grace).redis(&stores_b).event_store(std::sync::Arc::new(cut)),
        );
        let id = session(&a).await;
        let hold = json!({"name": "hold", "arguments": {}, "_meta": {"progressToken": "p"}});
        let mut body = call(&a, &id, 1, "tools/call", hold).await.into_body();
        let first = events(&mut body, 2).await;
        drop(body);
        let last = first.last().and_then(|e| e.id.clone()).expect("events carry ids");
        let response = get(&b, &id, Some(&last)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(events(&mut response.into_body(), usize::MAX).await.is_empty(), "nothing to relay yet");
        // The client comes back after 3/4 of a grace (its retry delay and backoff): past a grace after the
        // last periodic "reading", within one after the relay ended.
        tokio::time::sleep(grace * 3 / 4).await;
        let response = get(&b, &id, Some(&last)).await;
        assert_eq!(response.status(), StatusCode::OK);
        GO_ON.notify_one();
        let rest = events(&mut response.into_body(), usize::MAX).await;
        let (_, result) = summarize(&rest);
        assert_eq!(result.as_deref(), Some("let go"), "the call was cancelled while the client followed it");
    })
    .await
    .expect("bounded");
}

/// Writes event `seq` (a log notification) to the Redis stream `key`, as the instance running it would.
async fn write_event(connection: &mut redis::aio::MultiplexedConnection, key: &str, seq: u64) {
    let message =
        json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": seq}});
    let _: String = redis::cmd("XADD")
        .arg(key)
        .arg(format!("0-{seq}"))
        .arg("m")
        .arg(message.to_string())
        .query_async(connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_stream_of_an_instance_that_is_gone_ends_at_once_elsewhere() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (b, stores_b) = instance(&redis, "gone:").await;
        let id = session(&b).await;
        // Instance 999 ran a stream of the session and died before its end: its events are in Redis, its
        // heartbeat is not.
        let stream = (999u64 << 32) + 1;
        let key = format!("gone:ev:{id}:{stream}");
        let mut redis_connection = raw(&redis).await;
        for seq in 1..=2 {
            write_event(&mut redis_connection, &key, seq).await;
        }
        let _: u64 = redis::cmd("ZADD")
            .arg(format!("gone:evs:{id}"))
            .arg(u64::MAX >> 12)
            .arg(&key)
            .query_async(&mut redis_connection)
            .await
            .unwrap();
        // The client resumes after event 1: it gets event 2, then the end, without waiting for more.
        let response = get(&b, &id, Some(&format!("{stream}_1"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let rest = tokio::time::timeout(Duration::from_secs(5), events(&mut response.into_body(), usize::MAX))
            .await
            .expect("the relay ends at once");
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert_eq!(rest[0].id.as_deref(), Some(format!("{stream}_2").as_str()));
        // Resuming after the last event: nothing is left, nothing will come.
        let response = get(&b, &id, Some(&format!("{stream}_2"))).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        // A live instance's stream is still followed: B's own heartbeat is there.
        let alive: bool = redis::cmd("EXISTS")
            .arg(format!("gone:alive:{}", stores_b.session_store().instance()))
            .query_async(&mut redis_connection)
            .await
            .unwrap();
        assert!(alive, "an instance says it runs from the start, without the tasks feature too");
        // Its heartbeat outlasts a Redis stall the connection rides out (timeout and reconnection).
        let lapse: u64 = redis::cmd("PTTL")
            .arg(format!("gone:alive:{}", stores_b.session_store().instance()))
            .query_async(&mut redis_connection)
            .await
            .unwrap();
        assert!(lapse > 10_000, "the heartbeat lapses after {lapse} ms");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_redis_that_does_not_answer_delays_a_held_session_by_the_timeout_at_most() {
    let Some(mut redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (a, _sa) = instance(&redis, "silent:").await;
        let held = session(&a).await;
        // Redis goes, and something takes its port that accepts connections and never answers (what a
        // blackholed or stalled Redis looks like): reconnecting hangs.
        redis.stop();
        let _silent = std::net::TcpListener::bind(("127.0.0.1", redis.port())).expect("Redis's port is free");
        // The instance's configured timeout is 500 ms: each request of the session it holds waits that long
        // at most, then is served from the copy.
        for id in 1..=3 {
            let started = std::time::Instant::now();
            assert_eq!(call_tool(&a, &held, id, "nothing", json!({})).await.status(), StatusCode::OK);
            let waited = started.elapsed();
            assert!(waited < Duration::from_millis(1500), "request {id} waited {waited:?}");
        }
    })
    .await
    .expect("bounded");
}

/// A TCP relay to Redis whose connections can go silent: once frozen, the connections it holds stay open
/// and carry nothing more (a half-open connection, as a NAT or firewall that forgot it leaves); the
/// connections it accepts afterwards work. It may also hold what clients send for `delay` (a slow link).
struct Relay {
    port: u16,
    frozen: tokio::sync::watch::Sender<u64>,
}

/// Copies `from` to `to`, holding each chunk for `delay`, until either side closes.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(read @ 1..) = from.read(&mut buffer).await {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Completes once the relay is frozen past `epoch`.
async fn frozen_after(freeze: &mut tokio::sync::watch::Receiver<u64>, epoch: u64) {
    while *freeze.borrow_and_update() <= epoch {
        if freeze.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Relay {
    async fn start(to: u16, delay: Duration) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = tokio::sync::watch::channel(0u64).0;
        let freezes = frozen.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut freeze = freezes.subscribe();
                let epoch = *freeze.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else { return };
                    let relayed = async {
                        let ((client_in, client_out), (server_in, server_out)) = (client.split(), server.split());
                        tokio::join!(pump(client_in, server_out, delay), pump(server_in, client_out, Duration::ZERO));
                    };
                    tokio::select! {
                        () = relayed => {}
                        () = frozen_after(&mut freeze, epoch) => {
                            // Silent, but open on both sides.
                            let _open = (client, server);
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Relay { port, frozen }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Silences every connection open now.
    fn freeze(&self) {
        self.frozen.send_modify(|f| *f += 1);
    }
}

#[tokio::test]
async fn a_heartbeat_whose_connection_went_silent_goes_on_over_a_new_one() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "silent-beat:").await;
        let relay = Relay::start(redis.port(), Duration::ZERO).await;
        let config = RedisConfig::new(relay.url()).key_prefix("silent-beat:").timeout(Duration::from_millis(500));
        let stores = RedisStores::connect(config).await.expect("Redis is up");
        let claim = format!("silent-beat:alive:{}", stores.session_store().instance());
        // Every connection the instance holds goes silent (a NAT forgot them), and its claim lapses.
        relay.freeze();
        let mut conn = raw(&redis).await;
        let _: () = redis::cmd("DEL").arg(&claim).query_async(&mut conn).await.unwrap();
        // The heartbeat times out on its silent connection, and beats again over a new one.
        for _ in 0..750 {
            if redis::cmd("EXISTS").arg(&claim).query_async::<bool>(&mut conn).await.unwrap() {
                return;
            }
            // The heartbeat runs every 2 s and tells no one: poll, at a bounded pace.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the heartbeat never renewed the claim over a new connection");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_slow_first_bus_subscription_is_logged() {
    let Some(redis) = RedisServer::start() else { return };
    // `connect` runs on this (current-thread) runtime, so this thread's subscriber sees its warning.
    let (logged, _guard) = span_capture::capture(tracing::Level::WARN);
    tokio::time::timeout(BOUND, async {
        // The first connection (the stores' own) reaches Redis; later ones (the bus's) are accepted and never
        // answered.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let to = redis.port();
        tokio::spawn(async move {
            let Ok((mut client, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else { return };
                let ((client_in, client_out), (server_in, server_out)) = (client.split(), server.split());
                tokio::join!(pump(client_in, server_out, Duration::ZERO), pump(server_in, client_out, Duration::ZERO));
            });
            let mut silent = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                silent.push(client);
            }
        });
        let config = RedisConfig::new(format!("redis://127.0.0.1:{port}/"))
            .key_prefix("slow-bus:")
            .timeout(Duration::from_millis(300));
        let _stores = RedisStores::connect(config).await.expect("Redis is up");
    })
    .await
    .expect("bounded");
    assert!(logged.text().contains("session bus is not subscribed"), "{}", logged.text());
}

#[tokio::test]
async fn a_bus_connection_gone_silent_is_replaced() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "silent-bus:").await;
        let relay = Relay::start(redis.port(), Duration::ZERO).await;
        let connect = |url: String| async move {
            let config = RedisConfig::new(url).key_prefix("silent-bus:").timeout(Duration::from_millis(500));
            let stores = RedisStores::connect(config).await.expect("Redis is up");
            (server().http_service(HttpConfig::default().redis(&stores)), stores)
        };
        // A reaches Redis through the relay, B directly.
        let (a, stores_a) = connect(relay.url()).await;
        let (b, _sb) = connect(redis.url()).await;
        let id = session(&a).await;
        let mut direct = raw(&redis).await;
        let subscribers = |direct: &mut redis::aio::MultiplexedConnection| {
            let mut direct = direct.clone();
            async move {
                let (_, n): (String, u64) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg("silent-bus:bus")
                    .query_async::<Vec<(String, u64)>>(&mut direct)
                    .await
                    .unwrap()
                    .remove(0);
                n
            }
        };
        assert_eq!(subscribers(&mut direct).await, 2);
        assert_eq!(stores_a.session_bus().subscription(), Some(1));
        // A's connections go silent; Redis still counts its subscription. A notices and subscribes anew.
        relay.freeze();
        let mut polls = 0;
        while subscribers(&mut direct).await < 3 {
            polls += 1;
            assert!(polls < 150, "A never subscribed again");
            // A reconnects by itself and tells no one: poll, at a bounded pace.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The bus works for A again: an answer posted to B reaches A's handler.
        assert_eq!(ask_answered_elsewhere(&a, &b, &id, "Ada").await, "hello Ada");
        // A new subscription, so A checks its session copies against Redis again (what was announced
        // while its connection was silent is lost).
        assert_eq!(stores_a.session_bus().subscription(), Some(2));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_resumption_elsewhere_waits_for_a_running_stream_redis_does_not_know_yet() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        let (b, _sb) = instance(&redis, "early:").await;
        let id = session(&b).await;
        // Instance 998 runs (its heartbeat is there) a stream whose first event has not reached Redis yet
        // when the client, which saw it, resumes on B.
        let stream = (998u64 << 32) + 1;
        let mut direct = raw(&redis).await;
        let _: () = redis::cmd("SET").arg("early:alive:998").arg(1).query_async(&mut direct).await.unwrap();
        let resumed = {
            let b = b.clone();
            let (id, last) = (id.clone(), format!("{stream}_0"));
            tokio::spawn(async move { get(&b, &id, Some(&last)).await })
        };
        // The write lands a little later (here 200 ms, within B's 500 ms timeout).
        tokio::time::sleep(Duration::from_millis(200)).await;
        write_event(&mut direct, &format!("early:ev:{id}:{stream}"), 1).await;
        let response = resumed.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let first = events(&mut response.into_body(), 1).await;
        assert_eq!(first[0].id.as_deref(), Some(format!("{stream}_1").as_str()));
        // A stream nobody runs is still unknown at once.
        let started = std::time::Instant::now();
        let unknown = get(&b, &id, Some(&format!("{}_0", (997u64 << 32) + 1))).await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert!(started.elapsed() < Duration::from_millis(400));
    })
    .await
    .expect("bounded");
}

/// The number `field` of `INFO <section>`.
async fn info_number(conn: &mut redis::aio::MultiplexedConnection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query_async(conn).await.unwrap();
    let number = info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).and_then(|n| n.trim().parse().ok());
    number.unwrap_or_else(|| panic!("no {field} in {info}"))
}

#[tokio::test]
async fn made_up_resumptions_of_one_session_leave_the_relays_to_others() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "madeup:").await;
        // Six relays in all, four per session (the default); a stream Redis does not know is waited for.
        let config = || {
            RedisConfig::new(redis.url()).key_prefix("madeup:").timeout(Duration::from_secs(2)).max_remote_readers(6)
        };
        let (stores_a, stores_b) =
            (RedisStores::connect(config()).await.unwrap(), RedisStores::connect(config()).await.unwrap());
        let a = server().http_service(HttpConfig::default().redis(&stores_a));
        let b = server().http_service(HttpConfig::default().redis(&stores_b));
        let (attacker, victim) = (session(&a).await, session(&a).await);
        let mut conn = raw(&redis).await;

        // Made-up streams of an instance that does not run: one round trip each on B's shared connection,
        // no connection of their own.
        let connections = info_number(&mut conn, "stats", "total_connections_received").await;
        for n in 0..8u64 {
            let made_up = format!("{}_0", (977u64 << 32) + n);
            assert_eq!(get(&b, &attacker, Some(&made_up)).await.status(), StatusCode::NOT_FOUND);
        }
        assert_eq!(info_number(&mut conn, "stats", "total_connections_received").await, connections);

        // Made-up streams of the running instance A: Redis does not know them, and B waits for their first
        // events. Six at once from one session.
        let owner = u64::from(stores_a.session_store().instance());
        let blocked = info_number(&mut conn, "clients", "blocked_clients").await;
        let mut fakes = tokio::task::JoinSet::new();
        for n in 0..6u64 {
            let (b, attacker) = (b.clone(), attacker.clone());
            let made_up = format!("{}_0", (owner << 32) + 1_000 + n);
            fakes.spawn(async move { get(&b, &attacker, Some(&made_up)).await.status() });
        }
        // Until they all hold a relay (a blocked read each), or those past the session's share are refused.
        let mut refused = 0;
        loop {
            let waiting = info_number(&mut conn, "clients", "blocked_clients").await.saturating_sub(blocked);
            if waiting >= 6 || refused >= 2 || fakes.is_empty() {
                break;
            }
            tokio::select! {
                Some(status) = fakes.join_next() => match status.unwrap() {
                    StatusCode::SERVICE_UNAVAILABLE => refused += 1,
                    status => assert_eq!(status, StatusCode::NOT_FOUND),
                },
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }

        // Meanwhile another session's real stream, run on A, resumes on B.
        let params = json!({"name": "count", "arguments": {"n": 20}, "_meta": {"progressToken": "p"}});
        let mut body = call(&a, &victim, 1, "tools/call", params).await.into_body();
        let first = events(&mut body, 2).await;
        drop(body);
        let last = first.last().and_then(|e| e.id.clone()).expect("events carry ids");
        let response = get(&b, &victim, Some(&last)).await;
        assert_eq!(response.status(), StatusCode::OK, "another session's made-up streams took every relay");
        let (_, result) = summarize(&events(&mut response.into_body(), usize::MAX).await);
        assert_eq!(result.as_deref(), Some("counted 20"));
        while let Some(status) = fakes.join_next().await {
            assert!(matches!(status.unwrap(), StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE));
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_request_for_a_standalone_stream_nobody_holds_fails_at_once() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "standalone:").await;
        // A generous timeout: a store that cannot tell in time makes the instance send the request anyway.
        let instance = || async {
            let config = RedisConfig::new(redis.url()).key_prefix("standalone:").timeout(Duration::from_secs(2));
            let stores = RedisStores::connect(config).await.expect("Redis is up");
            (server().http_service(HttpConfig::default().redis(&stores)), stores)
        };
        let (a, _sa) = instance().await;
        let (b, _sb) = instance().await;
        let id = session(&a).await;
        // No instance holds a GET stream of the session: the handler's question has nowhere to go, and its
        // call ends at once instead of waiting for the request timeout.
        let alone = tokio::time::timeout(Duration::from_secs(5), async {
            json_body(call_tool_json_only(&a, &id, 1, "ask").await).await
        })
        .await
        .expect("the call ends at once");
        assert!(alone["result"]["isError"] == true || alone["error"].is_object(), "{alone}");
        // B holds one: the question reaches the client there.
        assert_eq!(ask_through_standalone(&a, &b, &id, 2, "Grace").await, "hello Grace");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_graceful_shutdown_waits_for_the_last_events_to_reach_redis() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        settled(&redis, "drain:").await;
        // A reaches Redis over a slow link: what it writes lands 300 ms later.
        let relay = Relay::start(redis.port(), Duration::from_millis(300)).await;
        let config = RedisConfig::new(relay.url()).key_prefix("drain:").timeout(Duration::from_secs(5));
        let stores = RedisStores::connect(config).await.expect("Redis is up");
        let a = server().http_service(HttpConfig::default().shutdown_grace(Duration::ZERO).redis(&stores));
        let id = session(&a).await;
        let linger = json!({"name": "linger", "arguments": {}, "_meta": {"progressToken": "p"}});
        let mut body = call(&a, &id, 1, "tools/call", linger).await.into_body();
        let first = events(&mut body, 2).await;
        let stream = first[0].id.as_deref().and_then(|i| i.split('_').next()).expect("ids").to_owned();
        let reading = tokio::spawn(async move { events(&mut body, usize::MAX).await });
        // The shutdown cancels the call (its answer says so) and ends the stream; once it returns, Redis has
        // both, for a client resuming elsewhere.
        a.shutdown().await;
        let mut direct = raw(&redis).await;
        let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(format!("drain:ev:{id}:{stream}"))
            .arg("-")
            .arg("+")
            .query_async(&mut direct)
            .await
            .unwrap();
        let ids: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.last(), Some(&"1-0"), "the stream's end is in Redis: {ids:?}");
        assert!(ids.len() >= 3, "the progress notification, the answer and the end: {ids:?}");
        let rest = reading.await.unwrap();
        assert!(!rest.is_empty(), "the client saw the stream end: {rest:?}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_first_instance_with_a_long_timeout_keeps_redis_marked_live_after_its_wait() {
    let Some(redis) = RedisServer::start() else { return };
    tokio::time::timeout(BOUND, async {
        // The first instance on an empty Redis waits for others' claims (2 s + twice the timeout + 1 s: 15 s
        // here), which uses up the live marker it set when it began (15 s): its heartbeat must renew it at
        // once, or newcomers would take Redis for fresh and wait again, and tasks would go unjudged.
        let config = RedisConfig::new(redis.url()).key_prefix("long:").timeout(Duration::from_secs(6));
        let _stores = RedisStores::connect(config).await.expect("Redis is up");
        let mut conn = raw(&redis).await;
        // Well before the first regular beat (2 s after connect), and after the marker set at the start lapsed.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let left: i64 = redis::cmd("PTTL").arg("long:live").query_async(&mut conn).await.unwrap();
        assert!(left > 10_000, "the live marker was not renewed after the wait: PTTL {left}");
    })
    .await
    .expect("bounded");
}
