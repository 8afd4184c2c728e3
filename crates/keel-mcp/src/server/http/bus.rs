//! [`SessionBus`]: how instances sharing legacy sessions reach the one that holds what a request needs.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, watch};

use super::HttpInner;
use super::session::lock;
use crate::engine::CancellationToken;
use crate::protocol::cancellation::CancelledParams;
use crate::protocol::decode_params;
use crate::protocol::jsonrpc::{Message, RequestId};
use crate::server::catalog::Change;

/// Messages between the instances of one server (publish/subscribe). Set it with
/// [`HttpConfig::session_bus`](super::HttpConfig::session_bus), with a shared
/// [`SessionStore`](super::SessionStore).
///
/// A session's state is shared through the [`SessionStore`](super::SessionStore), but some of it cannot
/// move: the handler waiting for the answer to its elicitation, the running call a client cancels, the GET
/// stream a client reads. So the instance that receives such a message and does not hold its target
/// publishes it on the bus, and the instance that holds it acts on it:
///
/// - a client's answer to a server-to-client request (elicitation, sampling, roots) reaches the waiting
///   handler;
/// - `notifications/cancelled` reaches the running call;
/// - a message for the session's standalone stream (a notification or request with no stream of its own)
///   reaches the instance whose GET stream is open;
/// - a client reading, on another instance, a stream whose call runs here keeps that call alive (a call
///   nobody reads anywhere for [`HttpConfig::stream_resume_grace`](super::HttpConfig::stream_resume_grace)
///   is cancelled);
/// - DELETE ends every instance's copy at once (streams close, calls are cancelled);
/// - [`Server::resource_updated`](crate::server::Server::resource_updated) reaches every instance's
///   listeners (`subscriptions/listen`);
/// - `tasks/update` and `tasks/cancel` reach the instance running the task (tasks extension, with the
///   Redis stores).
///
/// - a change to a session's record (log level, subscriptions) reaches the instances holding a copy, which
///   then serve it without asking the [`SessionStore`](super::SessionStore) on every request (see
///   [`HttpConfig::session_check_interval`](super::HttpConfig::session_check_interval)).
///
/// The bus is best effort, like the pub/sub it models: a message published while an instance is
/// disconnected is lost for it (a lost answer ends as the request's timeout; a lost change is seen at the
/// copy's next check against the store).
pub trait SessionBus: Send + Sync + Debug + 'static {
    /// Sends `message` to every instance subscribed, this one included (it ignores its own). Must not wait:
    /// queue it, or drop it when the queue is full.
    fn publish(&self, message: Bytes);

    /// Every message published from now on, by any instance. A receiver that falls behind loses the
    /// oldest (and is told so).
    fn subscribe(&self) -> broadcast::Receiver<Bytes>;

    /// Which subscription of this instance delivers messages now (a number that changes each time it is
    /// established again), or `None` while it is down. Messages published in between are lost for this
    /// instance, so the session copies it holds are checked against the store again.
    ///
    /// The default, `None`, is safe for any bus: every request in a shared session then checks the store
    /// (one round trip), and nothing waits to hear its own messages back. A bus that never loses its
    /// subscription ([`MemorySessionBus`]) answers `Some(0)`.
    fn subscription(&self) -> Option<u64> {
        None
    }
}

/// The state of an instance's bus subscription: copies found current under one epoch are checked again
/// under the next (messages may have been lost in between).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BusEpoch {
    subscription: u64,
    /// How many times this instance's relay fell behind and lost messages.
    lagged: u64,
}

impl BusEpoch {
    #[cfg(test)]
    pub(crate) fn new(subscription: u64, lagged: u64) -> Self {
        BusEpoch { subscription, lagged }
    }
}

/// A [`SessionBus`] within this process, for tests and for several services in one process. It keeps the
/// last `capacity` messages for subscribers that fall behind.
#[derive(Debug)]
pub struct MemorySessionBus {
    sender: broadcast::Sender<Bytes>,
}

impl MemorySessionBus {
    /// A bus keeping up to `capacity` messages per lagging subscriber.
    pub fn new(capacity: usize) -> Self {
        MemorySessionBus { sender: broadcast::channel(capacity.max(1)).0 }
    }
}

impl SessionBus for MemorySessionBus {
    fn publish(&self, message: Bytes) {
        let _ = self.sender.send(message);
    }

    fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.sender.subscribe()
    }

    fn subscription(&self) -> Option<u64> {
        Some(0)
    }
}

/// What a bus message asks of the instance that holds its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// `m` answers a server-to-client request of session `s`.
    Answer,
    /// `m` is a `notifications/cancelled` for a call of session `s`.
    Cancel,
    /// `m` goes on session `s`'s standalone stream.
    Frame,
    /// Session `s` ended.
    Delete,
    /// Resource `s` changed.
    Updated,
    /// `m` is a command for task `s` (tasks extension).
    Task,
    /// A client reads stream `m` of session `s` on the publishing instance, from the shared event store;
    /// sent again every half [`HttpConfig::stream_resume_grace`](super::HttpConfig::stream_resume_grace)
    /// while it does.
    Reading,
    /// Session `s`'s record was saved at revision `m`.
    Changed,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<'a> {
    /// The instance that published it.
    from: u32,
    k: Kind,
    /// The session id (the resource URI for [`Kind::Updated`]).
    #[serde(borrow)]
    s: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    m: Option<&'a RawValue>,
    /// Numbers a message its publisher waits to hear back (see [`Bus::publish_heard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<u64>,
}

/// An instance's end of the bus.
#[derive(Debug)]
pub(crate) struct Bus {
    bus: Arc<dyn SessionBus>,
    instance: u32,
    /// Resource changes that came from other instances, in the order they were announced here, so that
    /// the relay does not send them back out (see [`forward_changes`]).
    injected: Mutex<VecDeque<String>>,
    /// Stops the relay tasks when the service goes.
    stop: CancellationToken,
    /// See [`BusEpoch::lagged`].
    lagged: AtomicU64,
    /// Whether the relay runs: without it nothing published by others is heard here.
    relaying: AtomicBool,
    /// The last message this instance published to hear it back (locked while it is sent, so that the
    /// numbers go out in order), and the last it heard back.
    announced: Mutex<u64>,
    echoed: watch::Sender<u64>,
}

/// How long a request waits to hear its message back from the bus (see [`Bus::publish_heard`]) before it is
/// answered anyway.
const ECHO_WAIT: Duration = Duration::from_secs(1);

/// Most remote resource changes awaiting their echo on the local change channel; past it the oldest are
/// forgotten (one may then be published twice, never lost).
const MAX_INJECTED: usize = 1024;

impl Bus {
    pub(crate) fn new(bus: Arc<dyn SessionBus>, instance: u32) -> Self {
        Bus {
            bus,
            instance,
            injected: Mutex::new(VecDeque::new()),
            stop: CancellationToken::new(),
            lagged: AtomicU64::new(0),
            relaying: AtomicBool::new(false),
            announced: Mutex::new(0),
            echoed: watch::channel(0).0,
        }
    }

    /// The state of this instance's subscription; `None` while it is down or nothing relays it.
    pub(crate) fn epoch(&self) -> Option<BusEpoch> {
        if !self.relaying.load(Ordering::Relaxed) {
            return None;
        }
        let subscription = self.bus.subscription()?;
        Some(BusEpoch { subscription, lagged: self.lagged.load(Ordering::Relaxed) })
    }

    /// Publishes `kind` about session `id`, then waits (a bounded time) until the message comes back from
    /// the bus: by then the bus has handed it to every other instance too, so a client told that its
    /// change or DELETE is done finds it so on whichever instance its next request reaches.
    pub(crate) async fn publish_heard(&self, kind: Kind, id: &str, message: Option<&[u8]>) {
        let mut echoed = self.echoed.subscribe();
        let sequence = {
            let mut announced = lock(&self.announced);
            *announced += 1;
            self.send(kind, id, message, Some(*announced));
            *announced
        };
        if self.epoch().is_none() {
            return; // Nothing comes back while the subscription is down or not relayed.
        }
        if tokio::time::timeout(ECHO_WAIT, echoed.wait_for(|&heard| heard >= sequence)).await.is_err() {
            tracing::debug!(?kind, "a session bus message was not heard back in time; answering anyway");
        }
    }

    /// Whether request `id` is one another instance sent: a number whose high bits name another instance
    /// (see [`SessionStore::instance`](super::SessionStore::instance)). Only such answers travel, so that a
    /// client cannot make every instance read what it makes up.
    pub(crate) fn issued_elsewhere(&self, id: &RequestId) -> bool {
        let RequestId::Number(n) = id else { return false };
        let issuer = n >> 32;
        issuer != 0 && issuer != i64::from(self.instance)
    }

    /// Publishes `kind` about `target` (a session id, or a URI), with `message` when there is one.
    pub(crate) fn publish(&self, kind: Kind, target: &str, message: Option<&[u8]>) {
        self.send(kind, target, message, None);
    }

    fn send(&self, kind: Kind, target: &str, message: Option<&[u8]>, q: Option<u64>) {
        let m = match message.map(serde_json::from_slice::<&RawValue>) {
            Some(Ok(raw)) => Some(raw),
            Some(Err(_)) => return,
            None => None,
        };
        let envelope = Envelope { from: self.instance, k: kind, s: Cow::Borrowed(target), m, q };
        if let Ok(bytes) = serde_json::to_vec(&envelope) {
            self.bus.publish(Bytes::from(bytes));
        }
    }

    /// Starts relaying what other instances publish to `inner`'s sessions, and this instance's resource
    /// changes to the others, until the service is dropped. Needs a Tokio runtime; without one the bus stays
    /// silent (and says so).
    pub(crate) fn start(inner: &Arc<HttpInner>) {
        let Some(bus) = &inner.bus else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("HttpConfig::session_bus needs a Tokio runtime when the service is built; not relaying");
            return;
        };
        bus.relaying.store(true, Ordering::Relaxed);
        runtime.spawn(relay(Arc::downgrade(inner), bus.bus.subscribe(), bus.stop.clone()));
        runtime.spawn(forward_changes(Arc::downgrade(inner), inner.server.changes.subscribe(), bus.stop.clone()));
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Acts on messages other instances publish, for the sessions this one holds.
async fn relay(inner: Weak<HttpInner>, mut messages: broadcast::Receiver<Bytes>, stop: CancellationToken) {
    // However the relay ends (its runtime shut down too), copies are no longer trusted on its word.
    let _stopped = NotRelaying(inner.clone());
    loop {
        let message = tokio::select! {
            message = messages.recv() => message,
            _ = stop.cancelled() => return,
        };
        let bytes = match message {
            Ok(bytes) => bytes,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "session bus messages lost: this instance fell behind");
                if let Some(inner) = inner.upgrade()
                    && let Some(bus) = &inner.bus
                {
                    bus.lagged.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        deliver(&inner, &bytes);
    }
}

fn deliver(inner: &HttpInner, bytes: &[u8]) {
    let Some(bus) = &inner.bus else { return };
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(bytes) else {
        tracing::debug!("unreadable session bus message ignored");
        return;
    };
    if envelope.from == bus.instance {
        if let Some(sequence) = envelope.q {
            bus.echoed.send_if_modified(|heard| {
                let later = sequence > *heard;
                if later {
                    *heard = sequence;
                }
                later
            });
        }
        return;
    }
    if envelope.k == Kind::Updated {
        let uri = envelope.s.into_owned();
        {
            let mut injected = lock(&bus.injected);
            if injected.len() == MAX_INJECTED {
                injected.pop_front();
            }
            injected.push_back(uri.clone());
        }
        let _ = inner.server.changes.send(Change::ResourceUpdated(uri));
        return;
    }
    if envelope.k == Kind::Task {
        #[cfg(feature = "tasks")]
        if let Some(command) = envelope.m.and_then(|m| serde_json::from_str(m.get()).ok()) {
            inner.server.tasks.command(&envelope.s, command);
        }
        return;
    }
    if envelope.k == Kind::Delete {
        inner.sessions.release(&envelope.s);
        return;
    }
    let Some(session) = inner.sessions.peek(&envelope.s) else { return };
    let Some(raw) = envelope.m else { return };
    if envelope.k == Kind::Changed {
        if let Ok(revision) = raw.get().parse::<u64>() {
            session.announce(revision);
        }
        return;
    }
    if envelope.k == Kind::Reading {
        if let Ok(stream) = raw.get().parse::<u64>()
            && let Some(log) = session.stream(stream)
        {
            log.read_elsewhere();
        }
        return;
    }
    match (envelope.k, Message::decode(raw.get().as_bytes())) {
        (Kind::Answer, Ok(Message::Response(response))) => {
            session.pending.resolve(&response.id, response.outcome);
        }
        (Kind::Cancel, Ok(Message::Notification(notification))) => {
            if let Ok(CancelledParams { request_id: Some(id), .. }) =
                decode_params::<CancelledParams>(notification.params.as_deref())
            {
                session.cancel(&id);
            }
        }
        (Kind::Frame, Ok(_)) => {
            if let Some(log) = session.standalone() {
                log.append(Bytes::copy_from_slice(raw.get().as_bytes()));
            }
        }
        _ => tracing::debug!("session bus message of the wrong shape ignored"),
    }
}

/// Marks the bus as not relayed when dropped.
struct NotRelaying(Weak<HttpInner>);

impl Drop for NotRelaying {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade()
            && let Some(bus) = &inner.bus
        {
            bus.relaying.store(false, Ordering::Relaxed);
        }
    }
}

/// Publishes this instance's resource changes (not those it relayed from others) to the other instances.
async fn forward_changes(inner: Weak<HttpInner>, mut changes: broadcast::Receiver<Change>, stop: CancellationToken) {
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = stop.cancelled() => return,
        };
        let uri = match change {
            Ok(Change::ResourceUpdated(uri)) => uri,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // What was relayed in the gap may never be seen here: start the bookkeeping afresh.
                if let Some(inner) = inner.upgrade()
                    && let Some(bus) = &inner.bus
                {
                    lock(&bus.injected).clear();
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        let Some(bus) = &inner.bus else { return };
        {
            let mut injected = lock(&bus.injected);
            if injected.front() == Some(&uri) {
                // Relayed from another instance: it was published there already.
                injected.pop_front();
                continue;
            }
        }
        bus.publish(Kind::Updated, &uri, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Implementation;
    use crate::server::Server;
    use crate::server::http::{HttpConfig, MemorySessionStore};

    #[tokio::test]
    async fn resource_changes_reach_every_instance_once() {
        let store = Arc::new(MemorySessionStore::new(8));
        let bus: Arc<dyn SessionBus> = Arc::new(MemorySessionBus::new(64));
        let config = || HttpConfig::default().session_store(store.instance_handle()).session_bus(bus.clone());
        let server_a = Server::builder(Implementation::new("a", "1")).build();
        let server_b = Server::builder(Implementation::new("b", "1")).build();
        let _a = server_a.http_service(config());
        let _b = server_b.http_service(config());
        let mut heard_a = server_a.inner.changes.subscribe();
        let mut heard_b = server_b.inner.changes.subscribe();
        server_a.resource_updated("file:///x");
        assert_eq!(heard_b.recv().await.unwrap(), Change::ResourceUpdated("file:///x".into()));
        // B relays it to its listeners without publishing it back: A hears its own change once, then B's.
        server_b.resource_updated("file:///y");
        assert_eq!(heard_a.recv().await.unwrap(), Change::ResourceUpdated("file:///x".into()));
        assert_eq!(heard_a.recv().await.unwrap(), Change::ResourceUpdated("file:///y".into()));
        assert_eq!(heard_b.recv().await.unwrap(), Change::ResourceUpdated("file:///y".into()));
        assert!(heard_a.try_recv().is_err() && heard_b.try_recv().is_err());
    }
}
