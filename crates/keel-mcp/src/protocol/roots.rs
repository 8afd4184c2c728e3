//! Roots: the directories or other URIs a client exposes to servers, `roots/list`, and (legacy era)
//! `notifications/roots/list_changed`.
//!
//! A legacy-era server sends `roots/list` as a request; a modern-era server embeds it in an input-required
//! result (see [`super::mrtr`]). Roots are deprecated as of 2026-07-28.

use serde::{Deserialize, Serialize};

use super::meta::RequestMeta;
use super::method::{mcp_result, notification, request};
use super::{JsonObject, ResultType};

/// A root the client exposes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// The root's URI (`file://` in current revisions).
    pub uri: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `_meta` (2025-06-18+).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl Root {
    /// A root with a URI and an optional name.
    pub fn new(uri: impl Into<String>, name: Option<String>) -> Self {
        Root { uri: uri.into(), name, meta: None }
    }
}

/// `roots/list` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListRootsParams {
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `roots/list` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRootsResult {
    /// The roots.
    pub roots: Vec<Root>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `notifications/roots/list_changed` params (legacy era).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootsListChangedParams {
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

request!(ListRootsParams, "roots/list" => ListRootsResult);
notification!(RootsListChangedParams, "notifications/roots/list_changed");
mcp_result!(ListRootsResult);
