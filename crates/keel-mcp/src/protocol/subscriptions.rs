//! Subscriptions (2026-07-28): `subscriptions/listen` opens a long-lived stream of list-changed and
//! resource-updated notifications, replacing both the legacy HTTP GET stream and
//! `resources/subscribe` / `unsubscribe`.
//!
//! The server first sends `notifications/subscriptions/acknowledged` with the subset of the filter it
//! honours; every notification on the stream carries `_meta["io.modelcontextprotocol/subscriptionId"]`
//! (the JSON-RPC id of the listen request, see [`super::meta::subscription_id`]).

use serde::{Deserialize, Serialize};

use super::jsonrpc::RequestId;
use super::meta::{self, RequestMeta};
use super::method::{mcp_result, notification, request};
use super::{JsonObject, ResultType};

/// Which notifications a listen stream carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    /// `notifications/tools/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_list_changed: Option<bool>,
    /// `notifications/prompts/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts_list_changed: Option<bool>,
    /// `notifications/resources/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_list_changed: Option<bool>,
    /// `notifications/resources/updated` for these URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_subscriptions: Option<Vec<String>>,
    /// Tasks extension: `notifications/tasks/status` for these task ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_status: Option<Vec<String>>,
}

impl SubscriptionFilter {
    /// Whether the filter asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.tools_list_changed != Some(true)
            && self.prompts_list_changed != Some(true)
            && self.resources_list_changed != Some(true)
            && self.resource_subscriptions.as_ref().is_none_or(Vec::is_empty)
            && self.tasks_status.as_ref().is_none_or(Vec::is_empty)
    }

    /// The part of `self` that `offered` can serve: flags both set, URIs and task ids in both.
    pub fn intersect(&self, offered: &SubscriptionFilter) -> SubscriptionFilter {
        fn flag(a: Option<bool>, b: Option<bool>) -> Option<bool> {
            (a == Some(true) && b == Some(true)).then_some(true)
        }
        fn list(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> Option<Vec<String>> {
            let (a, b) = (a.as_ref()?, b.as_ref()?);
            let both: Vec<String> = a.iter().filter(|x| b.contains(x)).cloned().collect();
            (!both.is_empty()).then_some(both)
        }
        SubscriptionFilter {
            tools_list_changed: flag(self.tools_list_changed, offered.tools_list_changed),
            prompts_list_changed: flag(self.prompts_list_changed, offered.prompts_list_changed),
            resources_list_changed: flag(self.resources_list_changed, offered.resources_list_changed),
            resource_subscriptions: list(&self.resource_subscriptions, &offered.resource_subscriptions),
            tasks_status: list(&self.tasks_status, &offered.tasks_status),
        }
    }
}

/// `subscriptions/listen` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenParams {
    /// What to listen for.
    pub notifications: SubscriptionFilter,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `subscriptions/listen` result, sent when the server ends the stream gracefully.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenResult {
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta` (carries the subscription id).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl ListenResult {
    /// The subscription id in `_meta`.
    pub fn subscription_id(&self) -> Option<RequestId> {
        meta::subscription_id(self.meta.as_ref())
    }
}

/// `notifications/subscriptions/acknowledged` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionsAcknowledgedParams {
    /// The part of the requested filter the server honours.
    pub notifications: SubscriptionFilter,
    /// `_meta` (carries the subscription id).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// A `_meta` object carrying `io.modelcontextprotocol/subscriptionId`, for notifications on a listen stream.
pub fn subscription_meta(id: &RequestId) -> JsonObject {
    let mut m = JsonObject::new();
    m.insert(meta::keys::SUBSCRIPTION_ID.to_owned(), serde_json::to_value(id).expect("ids encode"));
    m
}

request!(ListenParams, "subscriptions/listen" => ListenResult);
notification!(SubscriptionsAcknowledgedParams, "notifications/subscriptions/acknowledged");
mcp_result!(ListenResult);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_keeps_what_both_sides_have() {
        let asked = SubscriptionFilter {
            tools_list_changed: Some(true),
            prompts_list_changed: Some(true),
            resource_subscriptions: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        };
        let offered = SubscriptionFilter {
            tools_list_changed: Some(true),
            resource_subscriptions: Some(vec!["b".into()]),
            ..Default::default()
        };
        let got = asked.intersect(&offered);
        assert_eq!(got.tools_list_changed, Some(true));
        assert_eq!(got.prompts_list_changed, None);
        assert_eq!(got.resource_subscriptions, Some(vec!["b".to_owned()]));
        assert!(!got.is_empty());
        assert!(SubscriptionFilter::default().is_empty());
    }

    #[test]
    fn subscription_id_round_trips_through_meta() {
        let id = RequestId::from("listen-1");
        let r = ListenResult { result_type: Some(ResultType::Complete), meta: Some(subscription_meta(&id)) };
        assert_eq!(r.subscription_id(), Some(id));
    }
}
