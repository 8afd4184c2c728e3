//! [`LegacySession`]: what an `initialize`d (≤ 2025-11-25) session remembers between requests, shared by the
//! stream connection and the legacy HTTP session that hold one. A leaf: it knows nothing of how requests
//! arrive or are handled.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::logging::LoggingLevel;
use crate::protocol::{Implementation, ProtocolVersion};

/// What a legacy (`initialize`d) session remembers. Modern requests never read it, except for `client`.
#[derive(Debug)]
pub(crate) struct LegacySession {
    /// Tells this session's client apart from every other (per-client quotas such as running tasks).
    #[cfg_attr(not(feature = "tasks"), expect(dead_code, reason = "only the tasks extension has a per-client quota"))]
    pub(crate) client: u64,
    pub(crate) version: Option<ProtocolVersion>,
    pub(crate) client_capabilities: ClientCapabilities,
    pub(crate) client_info: Option<Implementation>,
    pub(crate) log_level: Option<LoggingLevel>,
    /// Resources the client subscribed to (`resources/subscribe`), at most
    /// [`Limits::max_subscriptions`](crate::Limits::max_subscriptions).
    pub(crate) subscriptions: HashSet<String>,
}

impl Default for LegacySession {
    fn default() -> Self {
        static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);
        LegacySession {
            client: NEXT_CLIENT.fetch_add(1, Ordering::Relaxed),
            version: None,
            client_capabilities: ClientCapabilities::default(),
            client_info: None,
            log_level: None,
            subscriptions: HashSet::new(),
        }
    }
}
