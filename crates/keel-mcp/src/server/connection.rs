//! A stream connection's side of the server (stdio, child process, in-memory, legacy HTTP sessions): the
//! engine [`Handler`] that feeds requests to dispatch with the connection's legacy session, and the forwarding of
//! catalog changes as `list_changed` notifications.

use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::broadcast;

use super::catalog::Change;
use super::context::Channel;
use super::dispatch::dispatch;
use super::inner::ServerInner;
use super::request::Caller;
use super::session::LegacySession;
use crate::engine::{BoxFuture, Handler, Inbound, Peer};
use crate::protocol::jsonrpc::{RawNotification, RawRequest};
use crate::protocol::lifecycle::InitializeParams;
use crate::protocol::logging::SetLevelParams;
use crate::protocol::prompts::PromptListChangedParams;
use crate::protocol::resources::{
    ResourceListChangedParams, ResourceUpdatedParams, SubscribeParams, UnsubscribeParams,
};
use crate::protocol::tools::ToolListChangedParams;
use crate::protocol::version::Era;
use crate::protocol::{ErrorObject, Request as _};

/// One connection's view of the server: the shared registries plus this connection's legacy session.
pub(crate) struct ServerConnection {
    server: Arc<ServerInner>,
    session: Arc<Mutex<LegacySession>>,
}

impl ServerConnection {
    pub(crate) fn new(server: Arc<ServerInner>) -> Self {
        ServerConnection { server, session: Arc::new(Mutex::new(LegacySession::default())) }
    }

    pub(crate) fn session(&self) -> Arc<Mutex<LegacySession>> {
        self.session.clone()
    }
}

impl Handler for ServerConnection {
    fn handle_request(&self, request: RawRequest, inbound: Inbound) -> BoxFuture<Result<Box<RawValue>, ErrorObject>> {
        let server = self.server.clone();
        let session = self.session.clone();
        Box::pin(async move {
            let call =
                Caller { id: inbound.id, cancellation: inbound.cancellation, channel: Channel::Peer(inbound.peer) };
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
pub(crate) async fn forward_changes(server: Arc<ServerInner>, session: Arc<Mutex<LegacySession>>, peer: Peer) {
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
