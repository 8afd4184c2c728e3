//! Tools: listing, calling, and the list-changed notification.

use serde::{Deserialize, Serialize};

use super::caching::CacheScope;
use super::content::ContentBlock;
use super::display::Icon;
use super::meta::RequestMeta;
use super::method::{mcp_result, notification, request};
use super::mrtr::InputResponses;
use super::{Cursor, JsonObject, ResultType};

/// A tool the server offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Programmatic name (1–128 of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments, kept verbatim.
    pub input_schema: JsonObject,
    /// JSON Schema of `structuredContent`, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<JsonObject>,
    /// Behaviour hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    /// 2025-11-25: task support (`{"taskSupport": …}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<JsonObject>,
    /// Icons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icons: Option<Vec<Icon>>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// Hints about a tool's behaviour (untrusted unless the server is).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool does not modify its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may perform destructive updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Repeated calls with the same arguments have no additional effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool interacts with an open world of external entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// `tools/list` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListToolsParams {
    /// Where to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `tools/list` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListToolsResult {
    /// The tools on this page.
    pub tools: Vec<Tool>,
    /// The cursor of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Cursor>,
    /// Cache lifetime in milliseconds (2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Cache scope (2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `tools/call` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToolParams {
    /// The tool to call.
    pub name: String,
    /// The arguments (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<JsonObject>,
    /// 2026-07-28: answers to the server's `inputRequests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_responses: Option<InputResponses>,
    /// 2026-07-28: the opaque state of the previous round, echoed byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
    /// 2025-11-25 experimental tasks: run as a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<JsonObject>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

impl CallToolParams {
    /// A call of `name` with `arguments`.
    pub fn new(name: impl Into<String>, arguments: Option<JsonObject>) -> Self {
        CallToolParams { name: name.into(), arguments, ..Default::default() }
    }
}

/// `tools/call` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    /// Unstructured content.
    pub content: Vec<ContentBlock>,
    /// Structured content, matching the tool's `outputSchema` when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<serde_json::Value>,
    /// Whether the tool failed (a tool-level error, not a protocol error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl CallToolResult {
    /// A successful result with `content`.
    pub fn success(content: Vec<ContentBlock>) -> Self {
        CallToolResult { content, ..Default::default() }
    }

    /// A tool-level error carrying a message.
    pub fn error(message: impl Into<String>) -> Self {
        CallToolResult { content: vec![ContentBlock::text(message)], is_error: Some(true), ..Default::default() }
    }

    /// A successful result with one text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::success(vec![ContentBlock::text(text)])
    }

    /// Whether the tool reported an error.
    pub fn is_error(&self) -> bool {
        self.is_error == Some(true)
    }

    /// Decodes `structuredContent` as `T` — typically the `T` a Keel tool returned as `Json<T>`.
    ///
    /// ```
    /// use keel_mcp::protocol::tools::CallToolResult;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Sum { sum: f64 }
    ///
    /// let result = CallToolResult { structured_content: Some(serde_json::json!({"sum": 3.0})), ..Default::default() };
    /// assert_eq!(result.into_typed::<Sum>().unwrap().sum, 3.0);
    /// ```
    pub fn into_typed<T: serde::de::DeserializeOwned>(self) -> Result<T, TypedResultError> {
        if self.is_error() {
            let text: Vec<&str> = self.content.iter().filter_map(ContentBlock::as_text).collect();
            return Err(TypedResultError::ToolError(text.join("\n")));
        }
        let structured = self.structured_content.ok_or(TypedResultError::Missing)?;
        serde_json::from_value(structured).map_err(TypedResultError::Decode)
    }
}

/// Why [`CallToolResult::into_typed`] produced no value.
#[derive(Debug)]
#[non_exhaustive]
pub enum TypedResultError {
    /// The tool reported an error (`isError: true`); its text content.
    ToolError(String),
    /// The result has no `structuredContent`.
    Missing,
    /// `structuredContent` does not decode as the requested type.
    Decode(serde_json::Error),
}

impl std::fmt::Display for TypedResultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypedResultError::ToolError(message) => write!(f, "the tool reported an error: {message}"),
            TypedResultError::Missing => f.write_str("the tool result has no structuredContent"),
            TypedResultError::Decode(e) => write!(f, "structuredContent does not decode: {e}"),
        }
    }
}

impl std::error::Error for TypedResultError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TypedResultError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

/// `notifications/tools/list_changed` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolListChangedParams {
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

request!(ListToolsParams, "tools/list" => ListToolsResult);
request!(CallToolParams, "tools/call" => CallToolResult);
notification!(ToolListChangedParams, "notifications/tools/list_changed");
mcp_result!(ListToolsResult, CallToolResult);
