//! `subscriptions/listen` (2026-07-28): a long-lived request whose stream carries the list-changed and
//! resource-updated notifications the client opted into, each tagged with the listen request's id.

use tokio::sync::broadcast;

use crate::protocol::prompts::PromptListChangedParams;
use crate::protocol::resources::{ResourceListChangedParams, ResourceUpdatedParams};
use crate::protocol::subscriptions::{
    ListenParams, ListenResult, SubscriptionFilter, SubscriptionsAcknowledgedParams, subscription_meta,
};
use crate::protocol::tools::ToolListChangedParams;
use crate::protocol::{ErrorObject, Request as _, decode_params};
use crate::server::catalog::Change;
use crate::server::inner::ServerInner;
use crate::server::request::{Caller, Incoming, Outcome, finish, scope};
use crate::server::visibility::Viewer;

/// `subscriptions/listen` (modern era only).
pub(super) async fn listen(req: Incoming<'_>, call: Caller) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    let params: ListenParams = decode_params(params)?;
    let scope = scope(server, session, params.meta(), false, headers)?;
    if !scope.modern() {
        return Err(ErrorObject::method_not_found(method));
    }
    // Nobody follows the changes of what they may not read (as for `resources/subscribe`).
    let mut asked = params.notifications;
    if let Some(uris) = asked.resource_subscriptions.as_mut() {
        let viewer = Viewer::new(call.channel.client(), &scope.version);
        uris.retain(|uri| super::resources::may_follow(server, &viewer, &call, uri));
    }
    let result = relay(server, asked, call).await;
    finish(server, &scope, result)
}

/// Acknowledges the honoured filter, then relays matching changes, each tagged with the listen request's id,
/// until the client cancels (closes the stream).
async fn relay(server: &ServerInner, asked: SubscriptionFilter, call: Caller) -> ListenResult {
    let caps = &server.capabilities;
    let resources = caps.resources.as_ref();
    let offered = SubscriptionFilter {
        tools_list_changed: caps.tools.as_ref().and_then(|t| t.list_changed),
        prompts_list_changed: caps.prompts.as_ref().and_then(|p| p.list_changed),
        resources_list_changed: resources.and_then(|r| r.list_changed),
        resource_subscriptions: resources
            .filter(|r| r.subscribe == Some(true))
            .and(asked.resource_subscriptions.clone()),
        tasks_status: None,
    };
    let honoured = asked.intersect(&offered);
    let tag = Some(subscription_meta(&call.id));
    let mut changes = server.changes.subscribe();
    let ack = SubscriptionsAcknowledgedParams { notifications: honoured.clone(), meta: tag.clone() };
    call.channel.send_notification(&call.id, &ack).await;
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = call.cancellation.cancelled() => break,
        };
        let change = match change {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        };
        match change {
            Change::Tools if honoured.tools_list_changed == Some(true) => {
                call.channel.send_notification(&call.id, &ToolListChangedParams { meta: tag.clone() }).await
            }
            Change::Prompts if honoured.prompts_list_changed == Some(true) => {
                call.channel.send_notification(&call.id, &PromptListChangedParams { meta: tag.clone() }).await
            }
            Change::Resources if honoured.resources_list_changed == Some(true) => {
                call.channel.send_notification(&call.id, &ResourceListChangedParams { meta: tag.clone() }).await
            }
            Change::ResourceUpdated(uri)
                if honoured.resource_subscriptions.as_ref().is_some_and(|subs| subs.contains(&uri)) =>
            {
                call.channel.send_notification(&call.id, &ResourceUpdatedParams { uri, meta: tag.clone() }).await
            }
            _ => {}
        }
    }
    ListenResult { result_type: None, meta: tag }
}
