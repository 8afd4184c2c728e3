//! The MCP wire model: pure data, no IO, no async.
//!
//! One module per feature area. Types cover every revision Keel speaks (2024-11-05 … 2026-07-28): fields
//! that only some revisions have are optional and omitted when absent, so one type reads and writes every
//! revision's form. Each request's params type implements [`Request`], which names its method and result
//! type; see [`jsonrpc`] for the envelope and [`version`] for revisions, eras and negotiation.

pub mod caching;
pub mod cancellation;
pub mod capabilities;
pub mod completion;
pub mod content;
pub mod display;
pub mod elicitation;
pub mod jsonrpc;
pub mod lifecycle;
pub mod logging;
pub mod meta;
pub mod method;
pub mod mrtr;
pub mod progress;
pub mod prompts;
pub mod resources;
pub mod roots;
pub mod sampling;
#[cfg(feature = "skills")]
pub mod skills;
pub mod subscriptions;
pub mod tasks;
pub mod tools;
pub mod version;
mod wire_number;

pub use caching::{CacheHint, CacheScope};
pub use cancellation::CancelledParams;
pub use capabilities::{ClientCapabilities, ServerCapabilities};
pub use completion::{CompleteParams, CompleteResult, CompletionReference};
pub use content::{ContentBlock, ResourceContents};
pub use display::Role;
pub use elicitation::{ElicitAction, ElicitParams, ElicitResult, ElicitValue, PrimitiveSchema, RequestedSchema};
pub use jsonrpc::{ErrorObject, Message, RequestId};
pub use lifecycle::{EmptyResult, Implementation};
pub use logging::LoggingLevel;
pub use meta::RequestMeta;
pub use method::{McpResult, Notification, Request, ResultType, decode_params};
pub use mrtr::{InputRequest, InputRequests, InputRequiredResult, InputResponse, InputResponses};
pub use progress::ProgressParams;
pub use prompts::{GetPromptParams, GetPromptResult, Prompt, PromptArgument, PromptMessage};
pub use resources::{ReadResourceParams, ReadResourceResult, Resource, ResourceTemplate};
pub use roots::{ListRootsParams, ListRootsResult, Root};
pub use sampling::{CreateMessageParams, CreateMessageResult, SamplingContent, SamplingContentBlock, SamplingMessage};
pub use subscriptions::{ListenParams, ListenResult, SubscriptionFilter};
pub use tasks::TaskStatus;
pub use tools::{CallToolParams, CallToolResult, Tool};
pub use version::{Era, ProtocolVersion};

/// A JSON object.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// An opaque pagination cursor.
pub type Cursor = String;

/// A progress token: a string or an integer, chosen by the requester.
pub type ProgressToken = RequestId;
