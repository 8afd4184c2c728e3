//! Captures what the server tells the client besides answers: notifications and progress updates.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::client::{ClientBuilder, Progress, ServerNotification};
use crate::protocol::logging::LoggingMessageParams;

/// How long a wait of [`Notifications`] lasts before it fails the test (on tokio's clock: with paused time,
/// an idle runtime reaches it at once).
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Every notification the client received and every progress update recorded with
/// [`record_progress`](Self::record_progress), in order, with waits that fail the test (panic, with
/// what did arrive) when nothing matching comes within the wait bound. Cheap to clone.
///
/// ```
/// # use keel_mcp::protocol::Implementation;
/// # use keel_mcp::server::{NoArgs, RequestContext, Server};
/// # use keel_mcp::testing::TestPair;
/// # use keel_mcp::client::{RequestOptions, ServerNotification};
/// # use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel_mcp::Error> {
/// let server = Server::builder(Implementation::new("demo", "1"))
///     .tool("work", "Reports progress", |ctx: RequestContext, _: NoArgs| async move {
///         ctx.progress(1.0, Some(2.0), None).await;
///         "done"
///     })
///     .build();
/// let pair = TestPair::builder().connect(&server).await?;
/// let options = RequestOptions::default().on_progress(pair.notifications().record_progress());
/// pair.client().call_tool_with("work", json!({}), options).await?;
/// let update = pair.notifications().wait_progress(|p| p.progress >= 1.0).await;
/// assert_eq!(update.total, Some(2.0));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Notifications {
    shared: Arc<Shared>,
    wait: Duration,
}

#[derive(Debug)]
struct Shared {
    seen: Mutex<Seen>,
    /// Bumped on every arrival, so a waiter wakes to look again.
    arrivals: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Seen {
    notifications: Vec<ServerNotification>,
    progress: Vec<Progress>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            shared: Arc::new(Shared { seen: Mutex::default(), arrivals: watch::channel(0).0 }),
            wait: DEFAULT_WAIT,
        }
    }
}

impl Notifications {
    /// An empty capture.
    pub fn new() -> Notifications {
        Notifications::default()
    }

    /// How long each wait lasts before it fails (default 5 s).
    pub fn wait_bound(mut self, wait: Duration) -> Notifications {
        self.wait = wait;
        self
    }

    /// Every notification received so far.
    pub fn all(&self) -> Vec<ServerNotification> {
        self.seen().notifications.clone()
    }

    /// Every progress update recorded so far.
    pub fn progress(&self) -> Vec<Progress> {
        self.seen().progress.clone()
    }

    /// The log messages (`notifications/message`) received so far.
    pub fn logs(&self) -> Vec<LoggingMessageParams> {
        let seen = self.seen();
        seen.notifications
            .iter()
            .filter_map(|n| match n {
                ServerNotification::Log(log) => Some(log.clone()),
                _ => None,
            })
            .collect()
    }

    /// A callback for [`RequestOptions::on_progress`](crate::client::RequestOptions::on_progress) that
    /// records the request's progress here.
    pub fn record_progress(&self) -> impl Fn(Progress) + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |progress| {
            lock(&shared.seen).progress.push(progress);
            shared.arrivals.send_modify(|n| *n += 1);
        }
    }

    /// Waits for the first notification (received before or after the call) that `matches`, and returns it.
    ///
    /// # Panics
    ///
    /// When none arrives within the wait bound: the message lists what did arrive.
    pub async fn wait_for(&self, matches: impl Fn(&ServerNotification) -> bool) -> ServerNotification {
        self.wait_until("a matching notification", |seen| seen.notifications.iter().find(|n| matches(n)).cloned()).await
    }

    /// Waits for a log message that `matches`.
    pub async fn wait_log(&self, matches: impl Fn(&LoggingMessageParams) -> bool) -> LoggingMessageParams {
        self.wait_until("a matching log message", |seen| {
            seen.notifications.iter().find_map(|n| match n {
                ServerNotification::Log(log) if matches(log) => Some(log.clone()),
                _ => None,
            })
        })
        .await
    }

    /// Waits for a progress update that `matches`.
    pub async fn wait_progress(&self, matches: impl Fn(&Progress) -> bool) -> Progress {
        self.wait_until("a matching progress update", |seen| seen.progress.iter().find(|p| matches(p)).cloned()).await
    }

    /// Waits for `notifications/tools/list_changed`.
    pub async fn wait_tools_changed(&self) {
        self.wait_for(|n| matches!(n, ServerNotification::ToolListChanged)).await;
    }

    /// Waits for `notifications/prompts/list_changed`.
    pub async fn wait_prompts_changed(&self) {
        self.wait_for(|n| matches!(n, ServerNotification::PromptListChanged)).await;
    }

    /// Waits for `notifications/resources/list_changed`.
    pub async fn wait_resources_changed(&self) {
        self.wait_for(|n| matches!(n, ServerNotification::ResourceListChanged)).await;
    }

    async fn wait_until<T>(&self, what: &str, find: impl Fn(&Seen) -> Option<T>) -> T {
        // Subscribed before looking, so an arrival between the look and the wait still wakes us.
        let mut arrivals = self.shared.arrivals.subscribe();
        let looking = async {
            loop {
                if let Some(found) = find(&self.seen()) {
                    return found;
                }
                if arrivals.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        match tokio::time::timeout(self.wait, looking).await {
            Ok(found) => found,
            Err(_) => {
                let seen = self.seen();
                panic!(
                    "waited {:?} for {what}; received notifications {:#?} and progress {:#?}",
                    self.wait, seen.notifications, seen.progress
                )
            }
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.shared.seen)
    }

    /// Makes the client record every notification here.
    pub(crate) fn install(&self, builder: ClientBuilder) -> ClientBuilder {
        let shared = self.shared.clone();
        builder.on_notification(move |notification| {
            lock(&shared.seen).notifications.push(notification);
            shared.arrivals.send_modify(|n| *n += 1);
            std::future::ready(())
        })
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}
