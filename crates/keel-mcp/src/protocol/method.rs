//! The traits that pair each method name with its params and result types.
//!
//! A request's params type implements [`Request`], which names the method and the result type, so code
//! holding a `P: Request` knows how to encode the call and how to decode its answer. The same holds for
//! notifications ([`Notification`]). Every result implements [`McpResult`], which gives generic code
//! access to the fields all results share (`resultType`, `_meta`).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::JsonObject;
use super::jsonrpc::ErrorObject;
use super::meta::RequestMeta;

/// The params of an MCP request; names its method and result type.
pub trait Request: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The JSON-RPC method name.
    const METHOD: &'static str;
    /// The type of a successful result.
    type Result: McpResult;
    /// The request's `_meta`.
    fn meta(&self) -> Option<&RequestMeta>;
    /// The request's `_meta`, to fill in.
    fn meta_mut(&mut self) -> &mut Option<RequestMeta>;
}

/// The params of an MCP notification; names its method.
pub trait Notification: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The JSON-RPC method name.
    const METHOD: &'static str;
}

/// What every MCP result has.
pub trait McpResult: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// `resultType` (absent means `complete`).
    fn result_type(&self) -> Option<&ResultType>;
    /// Sets `resultType`.
    fn set_result_type(&mut self, result_type: ResultType);
    /// The result's `_meta`, to fill in.
    fn meta_mut(&mut self) -> &mut Option<JsonObject>;
}

/// `resultType`: how to read a result (2026-07-28).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum ResultType {
    /// The request completed; the result holds the final content.
    #[default]
    Complete,
    /// The server needs input from the client first (`InputRequiredResult`).
    InputRequired,
    /// The tasks extension created a task (`CreateTaskResult`).
    Task,
    /// A value defined by an extension Keel does not know.
    Other(String),
}

impl ResultType {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            ResultType::Complete => "complete",
            ResultType::InputRequired => "input_required",
            ResultType::Task => "task",
            ResultType::Other(s) => s,
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(match s.as_ref() {
            "complete" => ResultType::Complete,
            "input_required" => ResultType::InputRequired,
            "task" => ResultType::Task,
            other => ResultType::Other(other.to_owned()),
        })
    }
}

/// Decodes request or notification params, treating absent params as `{}`.
///
/// A failure is an `InvalidParams` (-32602) error naming what was wrong.
pub fn decode_params<P: DeserializeOwned>(params: Option<&RawValue>) -> Result<P, ErrorObject> {
    let text = params.map_or("{}", RawValue::get);
    let text = if text == "null" { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| ErrorObject::invalid_params(format!("invalid params: {e}")))
}

/// Implements [`Request`] for a params type with a `meta: Option<RequestMeta>` field.
macro_rules! request {
    ($params:ty, $method:literal => $result:ty) => {
        impl $crate::protocol::Request for $params {
            const METHOD: &'static str = $method;
            type Result = $result;
            fn meta(&self) -> Option<&$crate::protocol::RequestMeta> {
                self.meta.as_ref()
            }
            fn meta_mut(&mut self) -> &mut Option<$crate::protocol::RequestMeta> {
                &mut self.meta
            }
        }
    };
}

/// Implements [`Notification`] for a params type.
macro_rules! notification {
    ($params:ty, $method:literal) => {
        impl $crate::protocol::Notification for $params {
            const METHOD: &'static str = $method;
        }
    };
}

/// Implements [`McpResult`] for a result type with `result_type` and `meta` fields.
macro_rules! mcp_result {
    ($($ty:ty),+ $(,)?) => {$(
        impl $crate::protocol::McpResult for $ty {
            fn result_type(&self) -> Option<&$crate::protocol::ResultType> {
                self.result_type.as_ref()
            }
            fn set_result_type(&mut self, result_type: $crate::protocol::ResultType) {
                self.result_type = Some(result_type);
            }
            fn meta_mut(&mut self) -> &mut Option<$crate::protocol::JsonObject> {
                &mut self.meta
            }
        }
    )+};
}

pub(crate) use {mcp_result, notification, request};
