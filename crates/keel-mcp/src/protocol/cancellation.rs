//! Cancellation: `notifications/cancelled`, which asks the peer to stop work on a request (or, on a
//! 2026-07-28 listen stream, tells the client the stream is over).

use serde::{Deserialize, Serialize};

use super::JsonObject;
use super::jsonrpc::RequestId;

/// `notifications/cancelled` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelledParams {
    /// The request to cancel (the 2025-11-25 schema lets it be omitted; the others require it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// Why, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl CancelledParams {
    /// Cancels `request_id`, optionally saying why.
    pub fn new(request_id: RequestId, reason: Option<String>) -> Self {
        CancelledParams { request_id: Some(request_id), reason, meta: None }
    }
}

super::method::notification!(CancelledParams, "notifications/cancelled");
