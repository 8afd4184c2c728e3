//! Legacy sessions shared by several instances through a [`SessionStore`] (here the in-memory one): any
//! instance serves any session, changes and DELETE are seen everywhere, and a store that fails refuses
//! new sessions with 503 while stateless requests go on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::server::http::{
    EventStore, HttpConfig, McpService, MemoryEventStore, MemorySessionBus, MemorySessionStore, SessionBus,
    SessionRecord, SessionStore, SessionUpdate, StoreError, StoreFuture,
};
use serde_json::{Value, json};

#[path = "support/instances.rs"]
mod instances;

use instances::*;

/// Two instances of one server sharing `store` (and a session bus).
fn pair(store: &Arc<MemorySessionStore>) -> (McpService, McpService) {
    let bus = Arc::new(MemorySessionBus::new(1024));
    let config = || HttpConfig::default().session_store(store.instance_handle()).session_bus(bus.clone());
    (server().http_service(config()), server().http_service(config()))
}

/// Every test is bounded: a lost message is a failure, not a stuck run.
const BOUND: Duration = Duration::from_secs(20);

#[tokio::test]
async fn any_instance_serves_a_session_another_created() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    let id = session(&a).await;
    let response = call_tool(&b, &id, 1, "echo", json!({"text": "roamed"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["result"]["content"][0]["text"], "roamed");
    // The record carries what `initialize` negotiated.
    let (record, _) = store.load(&id, Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(record.version.as_ref().map(|v| v.as_str().to_owned()).as_deref(), Some(LEGACY));
    assert_eq!(record.client_info.unwrap().name, "shared-test-client");
    // An unknown session is unknown everywhere.
    assert_eq!(call_tool(&b, "nope", 2, "echo", json!({"text": "x"})).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_change_on_one_instance_is_saved_for_the_others() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    let id = session(&a).await;
    let before = store.touch(&id, Duration::from_secs(60)).await.unwrap().unwrap();
    let response = call(&b, &id, 1, "logging/setLevel", json!({"level": "error"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (record, after) = store.load(&id, Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(record.log_level, Some(LoggingLevel::Error));
    assert!(after > before);
    // A, which holds an older copy, takes the new revision and keeps serving.
    assert_eq!(call_tool(&a, &id, 2, "nothing", json!({})).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn delete_on_one_instance_ends_the_session_on_all() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    let id = session(&a).await;
    assert_eq!(call_tool(&b, &id, 1, "nothing", json!({})).await.status(), StatusCode::OK);
    assert_eq!(delete(&b, &id).await.status(), StatusCode::OK);
    assert_eq!(call_tool(&a, &id, 2, "nothing", json!({})).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(call_tool(&b, &id, 3, "nothing", json!({})).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(delete(&a, &id).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_idle_session_expires_for_every_instance() {
    let store = Arc::new(MemorySessionStore::new(100));
    let config = |store: &Arc<MemorySessionStore>| {
        HttpConfig::default().session_store(store.instance_handle()).session_idle_timeout(Duration::from_millis(1))
    };
    let a = server().http_service(config(&store));
    let b = server().http_service(config(&store));
    let response = initialize(&a).await;
    let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    // The record's time to live is the idle timeout: it lapses for B as it does for A.
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(call_tool(&b, &id, 1, "nothing", json!({})).await.status(), StatusCode::NOT_FOUND);
}

/// A store that cannot be reached.
#[derive(Debug)]
struct Down;

impl SessionStore for Down {
    fn instance(&self) -> u32 {
        1
    }
    fn save<'a>(&'a self, _: &'a str, _: &'a SessionRecord, _: Duration) -> StoreFuture<'a, u64> {
        Box::pin(async { Err(StoreError::new("down")) })
    }
    fn update<'a>(&'a self, _: &'a str, _: &'a SessionRecord, _: u64, _: Duration) -> StoreFuture<'a, SessionUpdate> {
        Box::pin(async { Err(StoreError::new("down")) })
    }
    fn load<'a>(&'a self, _: &'a str, _: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        Box::pin(async { Err(StoreError::new("down")) })
    }
    fn touch<'a>(&'a self, _: &'a str, _: Duration) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async { Err(StoreError::new("down")) })
    }
    fn remove<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async { Err(StoreError::new("down")) })
    }
}

#[tokio::test]
async fn a_store_that_is_down_refuses_new_sessions_but_not_stateless_calls() {
    let service = server().http_service(HttpConfig::default().session_store(Arc::new(Down)));
    let response = initialize(&service).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    // A session this instance does not hold cannot be looked up either.
    let response = call_tool(&service, "someone-elses", 1, "nothing", json!({})).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The modern era never needs the store.
    let request = modern_echo("still here");
    let response = send(&service, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["result"]["content"][0]["text"], "still here");
}

/// What lands on the shared record right after an instance checked it, before that instance saves the
/// change its request made: another instance's DELETE (or the record's expiry), or another instance's change.
#[derive(Debug)]
enum Race {
    Delete,
    Subscribe(&'static str),
}

/// One instance's handle on `store` that makes the armed [`Race`] happen right after its next `touch`.
#[derive(Debug)]
struct Racing {
    store: Arc<MemorySessionStore>,
    handle: Arc<dyn SessionStore>,
    race: std::sync::Mutex<Option<Race>>,
}

impl Racing {
    fn new(store: &Arc<MemorySessionStore>) -> Arc<Self> {
        Arc::new(Racing { store: store.clone(), handle: store.instance_handle(), race: Default::default() })
    }

    fn arm(&self, race: Race) {
        *self.race.lock().unwrap() = Some(race);
    }
}

impl SessionStore for Racing {
    fn instance(&self) -> u32 {
        self.handle.instance()
    }
    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64> {
        self.handle.save(id, record, ttl)
    }
    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a SessionRecord,
        revision: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate> {
        self.handle.update(id, record, revision, ttl)
    }
    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        self.handle.load(id, ttl)
    }
    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let revision = self.handle.touch(id, ttl).await?;
            let race = self.race.lock().unwrap().take();
            match race {
                Some(Race::Delete) => {
                    self.store.remove(id).await?;
                }
                Some(Race::Subscribe(uri)) => {
                    let (mut record, _) = self.store.load(id, ttl).await?.expect("the session is stored");
                    record.subscriptions.push(uri.into());
                    self.store.save(id, &record, ttl).await?;
                }
                None => {}
            }
            Ok(revision)
        })
    }
    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.handle.remove(id)
    }
}

/// An instance on a [`Racing`] handle, with a session: the store, the handle, the instance, the session id.
async fn racing_session() -> (Arc<MemorySessionStore>, Arc<Racing>, McpService, String) {
    let store = Arc::new(MemorySessionStore::new(100));
    let racing = Racing::new(&store);
    let a = server().http_service(HttpConfig::default().session_store(racing.clone()));
    let id = session(&a).await;
    (store, racing, a, id)
}

#[tokio::test]
async fn a_change_saved_after_a_delete_elsewhere_does_not_bring_the_session_back() {
    let (store, racing, a, id) = racing_session().await;
    racing.arm(Race::Delete);
    let answer = json_body(call(&a, &id, 1, "logging/setLevel", json!({"level": "error"})).await).await;
    assert!(answer["error"].is_object(), "{answer}");
    assert_eq!(store.load(&id, Duration::from_secs(60)).await.unwrap(), None, "the deleted session came back");
    assert_eq!(call_tool(&a, &id, 2, "nothing", json!({})).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn changes_made_at_once_on_two_instances_are_both_kept() {
    let (store, racing, a, id) = racing_session().await;
    // Another instance subscribes just as A sets the level: A's save must not drop the subscription.
    racing.arm(Race::Subscribe("test://subscribed"));
    let answer = json_body(call(&a, &id, 1, "logging/setLevel", json!({"level": "error"})).await).await;
    assert!(answer["result"].is_object(), "{answer}");
    let (record, _) = store.load(&id, Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(record.log_level, Some(LoggingLevel::Error));
    assert_eq!(record.subscriptions, ["test://subscribed"]);
}

#[tokio::test]
async fn an_answer_posted_to_another_instance_reaches_the_waiting_handler() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    tokio::time::timeout(BOUND, async {
        let id = session(&a).await;
        assert_eq!(ask_answered_elsewhere(&a, &b, &id, "Ada").await, "hello Ada");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_cancellation_posted_to_another_instance_reaches_the_call() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    tokio::time::timeout(BOUND, async {
        let id = session(&a).await;
        let call = {
            let (a, id) = (a.clone(), id.clone());
            tokio::spawn(async move { call_tool(&a, &id, 7, "wait_cancel", json!({})).await.status() })
        };
        WAIT_STARTED.notified().await;
        let cancel = json!({"requestId": 7, "reason": "changed my mind"});
        assert_eq!(notify(&b, &id, "notifications/cancelled", cancel).await.status(), StatusCode::ACCEPTED);
        WAIT_CANCELLED.notified().await;
        // A cancelled call is answered with nothing.
        assert_eq!(call.await.unwrap(), StatusCode::ACCEPTED);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_request_without_a_stream_reaches_the_standalone_stream_another_instance_holds() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    tokio::time::timeout(BOUND, async {
        let id = session(&a).await;
        // The client's GET stream is open on B; a tool on A, called by a client that takes JSON only, asks
        // on it.
        assert_eq!(ask_through_standalone(&a, &b, &id, 2, "Grace").await, "hello Grace");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn delete_closes_the_streams_other_instances_hold() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    tokio::time::timeout(BOUND, async {
        let id = session(&a).await;
        let response = get(&b, &id, None).await;
        let mut standalone = response.into_body();
        assert_eq!(events(&mut standalone, 1).await.len(), 1, "the priming event");
        assert_eq!(delete(&a, &id).await.status(), StatusCode::OK);
        assert!(events(&mut standalone, usize::MAX).await.is_empty(), "the stream ends");
    })
    .await
    .expect("bounded");
}

fn as_principal(
    mut request: http::Request<http_body_util::Full<bytes::Bytes>>,
    subject: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut principal = keel_mcp::server::Principal::default();
    principal.issuer = Some("https://idp.example".into());
    principal.subject = Some(subject.into());
    request.extensions_mut().insert(Arc::new(principal));
    request
}

#[tokio::test]
async fn only_the_principal_that_opened_a_session_uses_it_on_any_instance() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair(&store);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}});
    let response = send(&a, as_principal(request(http::Method::POST, None, Some(&init)), "alice")).await;
    let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    // B has no copy: it takes the session over with its owner, and refuses anyone else.
    let as_bob = send(&b, as_principal(request(http::Method::POST, Some(&id), Some(&list)), "bob")).await;
    assert_eq!(as_bob.status(), StatusCode::NOT_FOUND);
    let anonymous = send(&b, request(http::Method::POST, Some(&id), Some(&list))).await;
    assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
    let as_alice = send(&b, as_principal(request(http::Method::POST, Some(&id), Some(&list)), "alice")).await;
    assert_eq!(as_alice.status(), StatusCode::OK);
    // Nor may anyone else end it.
    let delete_as_bob = send(&a, as_principal(request(http::Method::DELETE, Some(&id), None), "bob")).await;
    assert_eq!(delete_as_bob.status(), StatusCode::NOT_FOUND);
    let delete_as_alice = send(&b, as_principal(request(http::Method::DELETE, Some(&id), None), "alice")).await;
    assert_eq!(delete_as_alice.status(), StatusCode::OK);
}

/// Two instances sharing `store`, B holding at most one session copy at a time.
fn pair_with_one_copy_on_b(store: &Arc<MemorySessionStore>) -> (McpService, McpService) {
    let bus = Arc::new(MemorySessionBus::new(1024));
    let config = || HttpConfig::default().session_store(store.instance_handle()).session_bus(bus.clone());
    (server().http_service(config()), server().http_service(config().max_sessions(1)))
}

/// Calls `ask` in `session` on `service` as request `id` and answers it with `name` there: the stream
/// number, the elicitation's id, and every event the stream carried.
async fn ask_and_answer(service: &McpService, session: &str, id: u64, name: &str) -> (String, Value, Vec<Event>) {
    let response = call_tool(service, session, id, "ask", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut seen = Vec::new();
    let asked = loop {
        let batch = events(&mut body, 1).await;
        assert!(!batch.is_empty(), "the stream ended before its elicitation: {seen:?}");
        seen.extend(batch);
        if let Some(data) = seen.last().and_then(|e| e.data.as_ref()).filter(|d| d["method"] == "elicitation/create") {
            break data["id"].clone();
        }
    };
    let reply = json!({"action": "accept", "content": {"name": name}});
    assert_eq!(answer(service, session, &asked, reply).await.status(), StatusCode::ACCEPTED);
    seen.extend(events(&mut body, usize::MAX).await);
    let stream = seen[0].id.as_deref().and_then(|i| i.split('_').next()).expect("a priming event with an id");
    (stream.to_owned(), asked, seen)
}

#[tokio::test]
async fn a_session_taken_over_again_gets_new_stream_numbers_and_request_ids() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair_with_one_copy_on_b(&store);
    tokio::time::timeout(BOUND, async {
        let first = session(&a).await;
        let second = session(&a).await;
        let (stream_1, asked_1, _) = ask_and_answer(&b, &first, 1, "one").await;
        // Taking `second` over lets B's copy of `first` go; its next request takes `first` over again.
        assert_eq!(call_tool(&b, &second, 1, "nothing", json!({})).await.status(), StatusCode::OK);
        let (stream_2, asked_2, seen) = ask_and_answer(&b, &first, 2, "two").await;
        assert_ne!(stream_1, stream_2, "a new stream number");
        assert_ne!(asked_1, asked_2, "a new server-to-client request id");
        // Only the new stream's events: its elicitation, then its answer; nothing of the first call.
        let data: Vec<&Value> = seen.iter().filter_map(|e| e.data.as_ref()).collect();
        assert_eq!(data.len(), 2, "{seen:?}");
        assert_eq!(data[1]["id"], 2);
        assert_eq!(data[1]["result"]["content"][0]["text"], "hello two");
        assert!(seen.iter().filter_map(|e| e.id.as_deref()).all(|i| i.starts_with(&format!("{stream_2}_"))));
    })
    .await
    .expect("bounded");
}

/// An event store that says which streams it holds, so that a test can see them go.
#[derive(Debug)]
struct Watched {
    events: MemoryEventStore,
    held: tokio::sync::watch::Sender<HashSet<(String, u64)>>,
}

impl Watched {
    fn new() -> Arc<Self> {
        Arc::new(Watched { events: MemoryEventStore::new(64), held: tokio::sync::watch::channel(HashSet::new()).0 })
    }

    /// Waits until the store holds no stream of `session`.
    async fn wait_released(&self, session: &str) {
        let mut held = self.held.subscribe();
        held.wait_for(|streams| streams.iter().all(|(s, _)| s != session)).await.unwrap();
    }
}

impl EventStore for Watched {
    fn append(&self, session: &str, stream: u64, message: bytes::Bytes) -> u64 {
        self.held.send_modify(|held| {
            held.insert((session.to_owned(), stream));
        });
        self.events.append(session, stream, message)
    }

    fn events_after(&self, session: &str, stream: u64, after: u64) -> Vec<(u64, bytes::Bytes)> {
        self.events.events_after(session, stream, after)
    }

    fn remove_stream(&self, session: &str, stream: u64) {
        self.events.remove_stream(session, stream);
        self.held.send_modify(|held| {
            held.remove(&(session.to_owned(), stream));
        });
    }

    fn remove_session(&self, session: &str) {
        self.events.remove_session(session);
        self.held.send_modify(|held| held.retain(|(s, _)| s != session));
    }

    fn release_stream(&self, session: &str, stream: u64) {
        self.remove_stream(session, stream);
    }
}

#[tokio::test]
async fn an_instance_forgets_the_events_of_a_session_copy_it_let_go() {
    let store = Arc::new(MemorySessionStore::new(100));
    let bus = Arc::new(MemorySessionBus::new(1024));
    let watched = Watched::new();
    let config = || HttpConfig::default().session_store(store.instance_handle()).session_bus(bus.clone());
    let a = server().http_service(config());
    let b = server().http_service(config().max_sessions(1).event_store(watched.clone()));
    tokio::time::timeout(BOUND, async {
        let first = session(&a).await;
        let second = session(&a).await;
        ask_and_answer(&b, &first, 1, "one").await;
        assert!(watched.held.borrow().iter().any(|(s, _)| *s == first), "B kept the stream's events");
        // Taking `second` over lets B's copy of `first` go, and the events it kept with it (the session
        // lives on: another instance may serve it).
        assert_eq!(call_tool(&b, &second, 1, "nothing", json!({})).await.status(), StatusCode::OK);
        watched.wait_released(&first).await;
        // DELETE through another instance lets B's copy of `second` go too.
        ask_and_answer(&b, &second, 2, "two").await;
        assert_eq!(delete(&a, &second).await.status(), StatusCode::OK);
        watched.wait_released(&second).await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn an_instance_never_lets_go_of_a_copy_with_a_running_call() {
    let store = Arc::new(MemorySessionStore::new(100));
    let (a, b) = pair_with_one_copy_on_b(&store);
    tokio::time::timeout(BOUND, async {
        let first = session(&a).await;
        let second = session(&a).await;
        // A call runs on B in `first`; the client reads its stream there.
        let linger = json!({"name": "linger", "arguments": {}, "_meta": {"progressToken": "p"}});
        let response = call(&b, &first, 1, "tools/call", linger).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        assert_eq!(events(&mut body, 2).await.len(), 2, "the priming event and the progress notification");
        // B takes `second` over: its copy of `first` has work under way, so it stays, and so does the call.
        assert_eq!(call_tool(&b, &second, 1, "nothing", json!({})).await.status(), StatusCode::OK);
        LINGER_GO_ON.notify_one();
        let rest = events(&mut body, usize::MAX).await;
        let text = rest.iter().filter_map(|e| e.data.as_ref()).find_map(|d| d["result"]["content"][0]["text"].as_str());
        assert_eq!(text, Some("let go"), "{rest:?}");
    })
    .await
    .expect("bounded");
}

/// A shared store that counts how often a request asks it about a session held here (`touch` and `load`).
#[derive(Debug)]
struct Counting {
    store: Arc<dyn SessionStore>,
    asked: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn over(store: &Arc<MemorySessionStore>) -> Arc<Counting> {
        Arc::new(Counting { store: store.instance_handle(), asked: Default::default() })
    }

    fn asked(&self) -> usize {
        self.asked.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl SessionStore for Counting {
    fn instance(&self) -> u32 {
        self.store.instance()
    }
    fn save<'a>(&'a self, id: &'a str, record: &'a SessionRecord, ttl: Duration) -> StoreFuture<'a, u64> {
        self.store.save(id, record, ttl)
    }
    fn update<'a>(
        &'a self,
        id: &'a str,
        r: &'a SessionRecord,
        rev: u64,
        ttl: Duration,
    ) -> StoreFuture<'a, SessionUpdate> {
        self.store.update(id, r, rev, ttl)
    }
    fn load<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<(SessionRecord, u64)>> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.load(id, ttl)
    }
    fn touch<'a>(&'a self, id: &'a str, ttl: Duration) -> StoreFuture<'a, Option<u64>> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.touch(id, ttl)
    }
    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.store.remove(id)
    }
}

/// A bus whose subscription the test takes down and brings back.
#[derive(Debug)]
struct Flaky {
    bus: MemorySessionBus,
    subscription: std::sync::Mutex<Option<u64>>,
}

impl SessionBus for Flaky {
    fn publish(&self, message: bytes::Bytes) {
        self.bus.publish(message);
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<bytes::Bytes> {
        self.bus.subscribe()
    }
    fn subscription(&self) -> Option<u64> {
        *self.subscription.lock().unwrap()
    }
}

/// Whether `warn` sent its warning in `session` on `service` (it does once the session asked for warnings).
async fn warns(service: &McpService, session: &str, id: u64) -> bool {
    let response = call_tool(service, session, id, "warn", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    body_text(response).await.contains("notifications/message")
}

/// Longer than any test: only the bus (or a lost subscription) makes a copy be checked again.
const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_held_copy_costs_no_store_round_trip_until_another_instance_announces_a_change() {
    tokio::time::timeout(BOUND, async {
        let store = Arc::new(MemorySessionStore::new(100));
        let bus = Arc::new(MemorySessionBus::new(1024));
        let counting = Counting::over(&store);
        let a = server().http_service(
            HttpConfig::default()
                .session_store(counting.clone())
                .session_bus(bus.clone())
                .session_check_interval(NEVER),
        );
        let b = server().http_service(HttpConfig::default().session_store(store.instance_handle()).session_bus(bus));
        let id = session(&a).await;
        let before = counting.asked();
        for n in 1..=3 {
            assert_eq!(call_tool(&a, &id, n, "echo", json!({"text": "x"})).await.status(), StatusCode::OK);
        }
        assert!(!warns(&a, &id, 4).await, "no level asked for yet");
        assert_eq!(counting.asked(), before, "a held, current copy was checked against the store");

        // B changes the session and announces it: A checks its copy again at its next request, and serves
        // the new level, long before its check interval.
        assert_eq!(call(&b, &id, 5, "logging/setLevel", json!({"level": "warning"})).await.status(), StatusCode::OK);
        let mut id_n = 6;
        while !warns(&a, &id, id_n).await {
            id_n += 1;
            tokio::task::yield_now().await;
        }
        let checked = counting.asked();
        assert!(checked > before, "A served the change without reading it from the store");
        assert!(warns(&a, &id, id_n + 1).await);
        assert_eq!(counting.asked(), checked, "once current again, the copy costs no round trip");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn without_a_bus_or_with_a_zero_check_interval_every_request_asks_the_store() {
    tokio::time::timeout(BOUND, without_a_bus_or_with_a_zero_check_interval()).await.expect("bounded");
}

async fn without_a_bus_or_with_a_zero_check_interval() {
    let store = Arc::new(MemorySessionStore::new(100));
    let bus = Arc::new(MemorySessionBus::new(1024));
    let no_bus = Counting::over(&store);
    let zero = Counting::over(&store);
    let configs = [
        (HttpConfig::default().session_store(no_bus.clone()).session_check_interval(NEVER), &no_bus),
        (
            HttpConfig::default().session_store(zero.clone()).session_bus(bus).session_check_interval(Duration::ZERO),
            &zero,
        ),
    ];
    for (config, counting) in configs {
        let service = server().http_service(config);
        let id = session(&service).await;
        let before = counting.asked();
        for n in 1..=3 {
            assert_eq!(call_tool(&service, &id, n, "nothing", json!({})).await.status(), StatusCode::OK);
        }
        assert_eq!(counting.asked(), before + 3, "one check per request");
    }
}

#[tokio::test]
async fn a_copy_is_checked_again_after_the_bus_subscription_was_down() {
    tokio::time::timeout(BOUND, checked_again_after_the_subscription_was_down()).await.expect("bounded");
}

async fn checked_again_after_the_subscription_was_down() {
    let store = Arc::new(MemorySessionStore::new(100));
    let bus = Arc::new(Flaky { bus: MemorySessionBus::new(1024), subscription: std::sync::Mutex::new(Some(1)) });
    let counting = Counting::over(&store);
    let a = server().http_service(
        HttpConfig::default().session_store(counting.clone()).session_bus(bus.clone()).session_check_interval(NEVER),
    );
    let id = session(&a).await;
    let mut asked = counting.asked();
    let mut n = 0;
    let mut call_and_count = async || {
        n += 1;
        assert_eq!(call_tool(&a, &id, n, "nothing", json!({})).await.status(), StatusCode::OK);
        let now = counting.asked();
        std::mem::replace(&mut asked, now).abs_diff(now)
    };
    assert_eq!(call_and_count().await, 0);
    // While the subscription is down, announcements may be lost: every request checks.
    *bus.subscription.lock().unwrap() = None;
    assert_eq!(call_and_count().await, 1);
    assert_eq!(call_and_count().await, 1);
    // A new subscription: what was announced in between is lost, so the copy is checked once more.
    *bus.subscription.lock().unwrap() = Some(2);
    assert_eq!(call_and_count().await, 1);
    assert_eq!(call_and_count().await, 0);
}

#[tokio::test]
async fn a_session_in_use_on_one_instance_never_expires_in_the_store_between_checks() {
    tokio::time::timeout(BOUND, async {
        let store = Arc::new(MemorySessionStore::new(100));
        let bus = Arc::new(MemorySessionBus::new(1024));
        // A short idle timeout, under the default check interval (2 s): the check must come often enough
        // to keep the record alive while the session is in use.
        let idle = Duration::from_millis(400);
        let a = server().http_service(
            HttpConfig::default().session_store(store.instance_handle()).session_bus(bus).session_idle_timeout(idle),
        );
        let id = session(&a).await;
        let start = std::time::Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(2_500) {
            n += 1;
            assert_eq!(call_tool(&a, &id, n, "nothing", json!({})).await.status(), StatusCode::OK, "call {n}");
            // The client's pace: a call every 100 ms, well within the idle timeout.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(store.touch(&id, idle).await.unwrap().is_some(), "the record expired while in use");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_bus_nothing_relays_is_not_trusted_and_nothing_waits_for_it() {
    tokio::time::timeout(BOUND, async {
        let store = Arc::new(MemorySessionStore::new(100));
        let counting = Counting::over(&store);
        let config = HttpConfig::default()
            .session_store(counting.clone())
            .session_bus(Arc::new(MemorySessionBus::new(1024)))
            .session_check_interval(NEVER);
        // Built outside any runtime: its relay never starts (and says so).
        let a = std::thread::spawn(move || server().http_service(config)).join().unwrap();
        let id = session(&a).await;
        let before = counting.asked();
        for n in 1..=2 {
            assert_eq!(call_tool(&a, &id, n, "nothing", json!({})).await.status(), StatusCode::OK);
        }
        assert_eq!(counting.asked(), before + 2, "a copy trusted on the word of a bus nobody listens to");
        // A change waits for no echo that cannot come.
        let started = std::time::Instant::now();
        assert_eq!(call(&a, &id, 3, "logging/setLevel", json!({"level": "error"})).await.status(), StatusCode::OK);
        assert!(started.elapsed() < Duration::from_millis(500), "waited {:?}", started.elapsed());
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn another_principal_cannot_keep_a_shared_session_alive() {
    tokio::time::timeout(BOUND, async {
        let store = Arc::new(MemorySessionStore::new(100));
        let idle = Duration::from_secs(1);
        let config = || HttpConfig::default().session_store(store.instance_handle()).session_idle_timeout(idle);
        let (a, b) = (server().http_service(config()), server().http_service(config()));
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}});
        let created = std::time::Instant::now();
        let response = send(&a, as_principal(request(http::Method::POST, None, Some(&init)), "alice")).await;
        let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        // Alice leaves the session idle; bob, holding its id, keeps knocking on an instance without a copy.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        let as_bob = send(&b, as_principal(request(http::Method::POST, Some(&id), Some(&list)), "bob")).await;
        assert_eq!(as_bob.status(), StatusCode::NOT_FOUND);
        // Past alice's idle timeout (counted from her last use), the session is gone everywhere.
        tokio::time::sleep(
            (created + Duration::from_millis(1_200)).saturating_duration_since(std::time::Instant::now()),
        )
        .await;
        assert!(store.touch(&id, idle).await.unwrap().is_none(), "bob's requests kept alice's session alive");
    })
    .await
    .expect("bounded");
}
