//! Maps every folder of the 2026-07-28 examples to the Keel type that reads it, and re-encodes through
//! that type the way production code does: full JSON-RPC messages through [`Message::decode`] and the
//! `jsonrpc::encode_*` functions, bare types through serde.

use std::collections::BTreeMap;

use keel_mcp::protocol::cancellation::CancelledParams;
use keel_mcp::protocol::completion::{CompleteParams, CompleteResult};
use keel_mcp::protocol::content::{ContentBlock, ResourceContents};
use keel_mcp::protocol::elicitation::{
    BooleanSchema, ElicitParams, ElicitResult, NumberSchema, PrimitiveSchema, StringSchema,
    TitledMultiSelectEnumSchema, TitledSingleSelectEnumSchema, UntitledMultiSelectEnumSchema,
    UntitledSingleSelectEnumSchema,
};
use keel_mcp::protocol::jsonrpc::{self, ErrorObject, Message, RequestId};
use keel_mcp::protocol::lifecycle::{DiscoverParams, DiscoverResult};
use keel_mcp::protocol::logging::LoggingMessageParams;
use keel_mcp::protocol::mrtr::{self, InputRequest, InputRequests, InputRequiredResult};
use keel_mcp::protocol::progress::ProgressParams;
use keel_mcp::protocol::prompts::{
    GetPromptParams, GetPromptResult, ListPromptsParams, ListPromptsResult, PromptListChangedParams,
};
use keel_mcp::protocol::resources::{
    ListResourceTemplatesParams, ListResourceTemplatesResult, ListResourcesParams, ListResourcesResult,
    ReadResourceParams, ReadResourceResult, Resource, ResourceListChangedParams, ResourceUpdatedParams,
};
use keel_mcp::protocol::roots::{ListRootsResult, Root};
use keel_mcp::protocol::sampling::{
    CreateMessageParams, CreateMessageResult, ModelPreferences, SamplingContentBlock, SamplingMessage,
};
use keel_mcp::protocol::subscriptions::{ListenParams, ListenResult, SubscriptionsAcknowledgedParams};
use keel_mcp::protocol::tools::{
    CallToolParams, CallToolResult, ListToolsParams, ListToolsResult, Tool, ToolListChangedParams,
};
use keel_mcp::protocol::{ClientCapabilities, Notification, Request, ServerCapabilities, decode_params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{EXAMPLES_REVISION, read_json, schema_dir};

/// Decodes an example and encodes it back.
pub type RoundTrip = fn(&Value) -> Result<Value, String>;

/// Folder name (= `$defs` name) to round trip.
pub fn table() -> BTreeMap<&'static str, RoundTrip> {
    let entries: &[(&'static str, RoundTrip)] = &[
        ("AudioContent", bare::<ContentBlock>),
        ("BlobResourceContents", bare::<ResourceContents>),
        ("BooleanSchema", field::<BooleanSchema>),
        ("CallToolRequest", request::<CallToolParams>),
        ("CallToolRequestParams", bare::<CallToolParams>),
        ("CallToolResult", bare::<CallToolResult>),
        ("CallToolResultResponse", response::<CallToolResult>),
        ("CancelledNotification", notification::<CancelledParams>),
        ("CancelledNotificationParams", bare::<CancelledParams>),
        ("ClientCapabilities", bare::<ClientCapabilities>),
        ("CompleteRequest", request::<CompleteParams>),
        ("CompleteRequestParams", bare::<CompleteParams>),
        ("CompleteResult", bare::<CompleteResult>),
        ("CompleteResultResponse", response::<CompleteResult>),
        ("CreateMessageRequest", input_request),
        ("CreateMessageRequestParams", bare::<CreateMessageParams>),
        ("CreateMessageResult", bare::<CreateMessageResult>),
        ("DiscoverRequest", request::<DiscoverParams>),
        ("DiscoverResult", bare::<DiscoverResult>),
        ("DiscoverResultResponse", response::<DiscoverResult>),
        ("ElicitRequest", input_request),
        ("ElicitRequestFormParams", bare::<ElicitParams>),
        ("ElicitRequestURLParams", bare::<ElicitParams>),
        ("ElicitResult", bare::<ElicitResult>),
        ("EmbeddedResource", bare::<ContentBlock>),
        ("GetPromptRequest", request::<GetPromptParams>),
        ("GetPromptRequestParams", bare::<GetPromptParams>),
        ("GetPromptResult", bare::<GetPromptResult>),
        ("GetPromptResultResponse", response::<GetPromptResult>),
        ("HeaderMismatchError", error_response),
        ("ImageContent", bare::<ContentBlock>),
        ("InputRequests", bare::<InputRequests>),
        ("InputRequiredResult", bare::<InputRequiredResult>),
        ("InputResponses", input_responses),
        ("InternalError", error_object),
        ("InvalidParamsError", error_object),
        ("ListPromptsRequest", request::<ListPromptsParams>),
        ("ListPromptsResult", bare::<ListPromptsResult>),
        ("ListPromptsResultResponse", response::<ListPromptsResult>),
        ("ListResourceTemplatesRequest", request::<ListResourceTemplatesParams>),
        ("ListResourceTemplatesResult", bare::<ListResourceTemplatesResult>),
        ("ListResourceTemplatesResultResponse", response::<ListResourceTemplatesResult>),
        ("ListResourcesRequest", request::<ListResourcesParams>),
        ("ListResourcesResult", bare::<ListResourcesResult>),
        ("ListResourcesResultResponse", response::<ListResourcesResult>),
        ("ListRootsRequest", input_request),
        ("ListRootsResult", bare::<ListRootsResult>),
        ("ListToolsRequest", request::<ListToolsParams>),
        ("ListToolsResult", bare::<ListToolsResult>),
        ("ListToolsResultResponse", response::<ListToolsResult>),
        ("LoggingMessageNotification", notification::<LoggingMessageParams>),
        ("LoggingMessageNotificationParams", bare::<LoggingMessageParams>),
        ("MethodNotFoundError", error_object),
        ("MissingRequiredClientCapabilityError", error_response),
        ("ModelPreferences", bare::<ModelPreferences>),
        ("NumberSchema", field::<NumberSchema>),
        ("PaginatedRequestParams", bare::<ListResourcesParams>),
        ("ParseError", error_object),
        ("ProgressNotification", notification::<ProgressParams>),
        ("ProgressNotificationParams", bare::<ProgressParams>),
        ("PromptListChangedNotification", notification::<PromptListChangedParams>),
        ("ReadResourceRequest", request::<ReadResourceParams>),
        ("ReadResourceResult", bare::<ReadResourceResult>),
        ("ReadResourceResultResponse", response::<ReadResourceResult>),
        ("Resource", bare::<Resource>),
        ("ResourceLink", bare::<ContentBlock>),
        ("ResourceListChangedNotification", notification::<ResourceListChangedParams>),
        ("ResourceUpdatedNotification", notification::<ResourceUpdatedParams>),
        ("ResourceUpdatedNotificationParams", bare::<ResourceUpdatedParams>),
        ("Root", bare::<Root>),
        ("SamplingMessage", bare::<SamplingMessage>),
        ("ServerCapabilities", bare::<ServerCapabilities>),
        ("StringSchema", field::<StringSchema>),
        ("SubscriptionsAcknowledgedNotification", notification::<SubscriptionsAcknowledgedParams>),
        ("SubscriptionsListenRequest", request::<ListenParams>),
        ("SubscriptionsListenResult", bare::<ListenResult>),
        ("SubscriptionsListenResultResponse", response::<ListenResult>),
        ("TextContent", bare::<ContentBlock>),
        ("TextResourceContents", bare::<ResourceContents>),
        ("TitledMultiSelectEnumSchema", field::<TitledMultiSelectEnumSchema>),
        ("TitledSingleSelectEnumSchema", field::<TitledSingleSelectEnumSchema>),
        ("Tool", bare::<Tool>),
        ("ToolListChangedNotification", notification::<ToolListChangedParams>),
        ("ToolResultContent", bare::<SamplingContentBlock>),
        ("ToolUseContent", bare::<SamplingContentBlock>),
        ("UnsupportedProtocolVersionError", error_response),
        ("UntitledMultiSelectEnumSchema", field::<UntitledMultiSelectEnumSchema>),
        ("UntitledSingleSelectEnumSchema", field::<UntitledSingleSelectEnumSchema>),
    ];
    let table: BTreeMap<_, _> = entries.iter().copied().collect();
    assert_eq!(table.len(), entries.len(), "duplicate folder in the example table");
    table
}

fn to_value<T: Serialize>(t: &T) -> Result<Value, String> {
    serde_json::to_value(t).map_err(|e| format!("encode: {e}"))
}

fn from_bytes(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("re-read: {e}"))
}

fn decode_message(v: &Value) -> Result<Message, String> {
    Message::decode(&serde_json::to_vec(v).unwrap()).map_err(|e| format!("envelope: {:?}", e.error))
}

/// A bare type, through serde.
fn bare<T: Serialize + DeserializeOwned>(v: &Value) -> Result<Value, String> {
    let t: T = serde_json::from_value(v.clone()).map_err(|e| format!("decode: {e}"))?;
    to_value(&t)
}

/// A form field: through its own type, and through [`PrimitiveSchema`], which must pick a typed variant.
fn field<T: Serialize + DeserializeOwned>(v: &Value) -> Result<Value, String> {
    let own = bare::<T>(v)?;
    let field: PrimitiveSchema = serde_json::from_value(v.clone()).map_err(|e| format!("decode field: {e}"))?;
    if matches!(field, PrimitiveSchema::Other(_)) {
        return Err("PrimitiveSchema fell back to JSON for a standard field".into());
    }
    let via_field = to_value(&field)?;
    if via_field != own {
        return Err(format!("PrimitiveSchema wrote {via_field}, the field type wrote {own}"));
    }
    Ok(own)
}

/// A full JSON-RPC request: envelope, then params by method.
fn request<P: Request>(v: &Value) -> Result<Value, String> {
    let Message::Request(raw) = decode_message(v)? else { return Err("not a request".into()) };
    if raw.method != P::METHOD {
        return Err(format!("method {} is not {}", raw.method, P::METHOD));
    }
    let params: P = decode_params(raw.params.as_deref()).map_err(|e| e.to_string())?;
    from_bytes(&jsonrpc::encode_request(&raw.id, P::METHOD, &params).map_err(|e| e.to_string())?)
}

/// A full JSON-RPC notification.
fn notification<P: Notification>(v: &Value) -> Result<Value, String> {
    let Message::Notification(raw) = decode_message(v)? else { return Err("not a notification".into()) };
    if raw.method != P::METHOD {
        return Err(format!("method {} is not {}", raw.method, P::METHOD));
    }
    let had_params = raw.params.is_some();
    let params: P = decode_params(raw.params.as_deref()).map_err(|e| e.to_string())?;
    let bytes = jsonrpc::encode_notification(P::METHOD, had_params.then_some(&params)).map_err(|e| e.to_string())?;
    from_bytes(&bytes)
}

/// A full JSON-RPC success response, decoded as the result type of the request it answers.
fn response<R: Serialize + DeserializeOwned>(v: &Value) -> Result<Value, String> {
    let Message::Response(raw) = decode_message(v)? else { return Err("not a response".into()) };
    let result = raw.outcome.map_err(|e| format!("error response: {e}"))?;
    let r: R = serde_json::from_str(result.get()).map_err(|e| format!("decode result: {e}"))?;
    from_bytes(&jsonrpc::encode_result(&raw.id, &r).map_err(|e| e.to_string())?)
}

/// A full JSON-RPC error response.
fn error_response(v: &Value) -> Result<Value, String> {
    let Message::Response(raw) = decode_message(v)? else { return Err("not a response".into()) };
    let Err(error) = raw.outcome else { return Err("not an error response".into()) };
    from_bytes(&jsonrpc::encode_error(Some(&raw.id), &error))
}

/// A bare error object: decoded, sent in an error response, read back from it.
fn error_object(v: &Value) -> Result<Value, String> {
    let error: ErrorObject = serde_json::from_value(v.clone()).map_err(|e| format!("decode: {e}"))?;
    let bytes = jsonrpc::encode_error(Some(&RequestId::Number(1)), &error);
    let Ok(Message::Response(raw)) = Message::decode(&bytes) else { return Err("not a response".into()) };
    let Err(back) = raw.outcome else { return Err("not an error response".into()) };
    to_value(&back)
}

/// An embedded input request (`{method, params}`). The `roots/list` example also carries an `id`, as a
/// standalone request would; it is read as a [`RequestId`] and written back.
fn input_request(v: &Value) -> Result<Value, String> {
    let mut object = v.as_object().ok_or("not an object")?.clone();
    let id = object.remove("id").map(serde_json::from_value::<RequestId>).transpose().map_err(|e| e.to_string())?;
    let request: InputRequest = serde_json::from_value(Value::Object(object)).map_err(|e| format!("decode: {e}"))?;
    if matches!(request, InputRequest::Other { .. }) {
        return Err(format!("{} read as an unknown method", request.method()));
    }
    let mut out = to_value(&request)?;
    if let Some(id) = id {
        out.as_object_mut().unwrap().insert("id".into(), to_value(&id)?);
    }
    Ok(out)
}

/// Input responses: each decoded by the input request it answers (from the `InputRequests` example).
fn input_responses(v: &Value) -> Result<Value, String> {
    let dir = schema_dir().ok_or("no schema folder")?.join(EXAMPLES_REVISION).join("examples/InputRequests");
    let file = std::fs::read_dir(&dir).map_err(|e| e.to_string())?.next().ok_or("no InputRequests example")?;
    let requests: InputRequests =
        serde_json::from_value(read_json(&file.map_err(|e| e.to_string())?.path())).map_err(|e| e.to_string())?;
    let responses = v.as_object().ok_or("not an object")?;
    let decoded = mrtr::decode_responses(&requests, responses).map_err(|e| e.to_string())?;
    if decoded.len() != responses.len() {
        return Err("some responses match no request".into());
    }
    Ok(Value::Object(decoded.iter().map(|(k, r)| (k.clone(), r.to_value())).collect()))
}
