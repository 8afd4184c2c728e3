//! A stream connection's side of the server (stdio, child process, in-memory, legacy HTTP sessions): the
//! engine [`Handler`] that feeds requests to dispatch, the legacy session they share, and the forwarding of
//! catalog changes as `list_changed` notifications.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::broadcast;

use super::ServerInner;
use super::catalog::Change;
use super::context::Channel;
use super::dispatch::{Call, dispatch};
use crate::engine::{BoxFuture, Handler, Inbound, Peer};
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::jsonrpc::{RawNotification, RawRequest};
use crate::protocol::lifecycle::InitializeParams;
use crate::protocol::logging::{LoggingLevel, SetLevelParams};
use crate::protocol::prompts::PromptListChangedParams;
use crate::protocol::resources::{
    ResourceListChangedParams, ResourceUpdatedParams, SubscribeParams, UnsubscribeParams,
};
use crate::protocol::tools::ToolListChangedParams;
use crate::protocol::version::Era;
use crate::protocol::{ErrorObject, Implementation, ProtocolVersion, Request as _};

/// One connection's view of the server: the shared registries plus this connection's legacy session.
pub(crate) struct ServerConnection {
    server: Arc<ServerInner>,
    session: Arc<Mutex<Session>>,
}

/// What a legacy (`initialize`d) session remembers. Modern requests never read it, except for `client`.
#[derive(Debug)]
pub(crate) struct Session {
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

impl Default for Session {
    fn default() -> Self {
        static NEXT_CLIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Session {
            client: NEXT_CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            version: None,
            client_capabilities: ClientCapabilities::default(),
            client_info: None,
            log_level: None,
            subscriptions: HashSet::new(),
        }
    }
}

impl ServerConnection {
    pub(crate) fn new(server: Arc<ServerInner>) -> Self {
        ServerConnection { server, session: Arc::new(Mutex::new(Session::default())) }
    }

    pub(crate) fn session(&self) -> Arc<Mutex<Session>> {
        self.session.clone()
    }
}

impl Handler for ServerConnection {
    fn handle_request(&self, request: RawRequest, inbound: Inbound) -> BoxFuture<Result<Box<RawValue>, ErrorObject>> {
        let server = self.server.clone();
        let session = self.session.clone();
        Box::pin(async move {
            let call = Call {
                id: inbound.id,
                cancellation: inbound.cancellation,
                channel: Channel::Peer(inbound.peer),
                #[cfg(feature = "http-server")]
                http_request: None,
            };
            dispatch(&server, Some(&session), request, call, None).await
        })
    }

    fn is_sequential(&self, method: &str) -> bool {
        matches!(
            method,
            InitializeParams::METHOD | SetLevelParams::METHOD | SubscribeParams::METHOD | UnsubscribeParams::METHOD
        )
    }

    fn handle_notification(&self, notification: RawNotification, _peer: Peer) -> BoxFuture<()> {
        match notification.method.as_str() {
            "notifications/initialized" | "notifications/roots/list_changed" => {}
            other => tracing::debug!(method = other, "ignored notification"),
        }
        Box::pin(std::future::ready(()))
    }
}

/// Tells a legacy stream connection about catalog changes (modern clients use `subscriptions/listen`).
pub(crate) async fn forward_changes(server: Arc<ServerInner>, session: Arc<Mutex<Session>>, peer: Peer) {
    let mut changes = server.changes.subscribe();
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = peer.closed() => return,
        };
        let change = match change {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let (legacy, subscribed) = {
            let session = session.lock().expect("session lock");
            let legacy = session.version.as_ref().is_some_and(|v| v.era() == Era::Legacy);
            let subscribed = matches!(&change, Change::ResourceUpdated(uri) if session.subscriptions.contains(uri));
            (legacy, subscribed)
        };
        if !legacy {
            continue;
        }
        let _ = match change {
            Change::Tools => peer.notify(&ToolListChangedParams::default()).await,
            Change::Prompts => peer.notify(&PromptListChangedParams::default()).await,
            Change::Resources => peer.notify(&ResourceListChangedParams::default()).await,
            Change::ResourceUpdated(uri) if subscribed => peer.notify(&ResourceUpdatedParams { uri, meta: None }).await,
            Change::ResourceUpdated(_) => Ok(()),
        };
    }
}
