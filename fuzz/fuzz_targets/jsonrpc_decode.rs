//! JSON-RPC frames as either era receives them: the envelope, 2025-03-26 batches element by element, and the
//! params and results of the core methods decoded into Keel's dual-era types. An error that could read an id
//! must be answerable: its encoded reply decodes back to a response with that id.
#![no_main]

use keel_mcp::protocol::jsonrpc::{self, Message};
use keel_mcp::protocol::{
    CallToolParams, CallToolResult, CancelledParams, CompleteParams, CreateMessageParams, ElicitParams,
    GetPromptParams, ListRootsParams, ListenParams, ProgressParams, ReadResourceParams, decode_params,
    lifecycle::{InitializeParams, InitializeResult},
};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    if jsonrpc::is_batch(data) {
        if let Ok(items) = serde_json::from_slice::<Vec<Box<RawValue>>>(data) {
            for item in &items {
                decode(item.get().as_bytes());
            }
        }
    }
    decode(data);
});

fn decode(bytes: &[u8]) {
    match Message::decode(bytes) {
        Ok(Message::Request(request)) => {
            params(&request.method, request.params.as_deref());
            let reply =
                jsonrpc::encode_error(Some(&request.id), &jsonrpc::ErrorObject::method_not_found(&request.method));
            assert_answers(&reply, &request.id);
        }
        Ok(Message::Notification(notification)) => params(&notification.method, notification.params.as_deref()),
        Ok(Message::Response(response)) => {
            if let Ok(result) = &response.outcome {
                let _ = serde_json::from_str::<InitializeResult>(result.get());
                let _ = serde_json::from_str::<CallToolResult>(result.get());
            }
        }
        Err(error) => {
            if let Some(id) = &error.id {
                assert_answers(&jsonrpc::encode_error(Some(id), &error.error), id);
            }
        }
    }
}

fn assert_answers(reply: &[u8], id: &jsonrpc::RequestId) {
    match Message::decode(reply) {
        Ok(Message::Response(response)) => assert_eq!(&response.id, id, "the reply answers another id"),
        other => panic!("our own error reply does not decode as a response: {other:?}"),
    }
}

fn params(method: &str, params: Option<&RawValue>) {
    match method {
        "initialize" => drop(decode_params::<InitializeParams>(params)),
        "tools/call" => drop(decode_params::<CallToolParams>(params)),
        "resources/read" => drop(decode_params::<ReadResourceParams>(params)),
        "prompts/get" => drop(decode_params::<GetPromptParams>(params)),
        "completion/complete" => drop(decode_params::<CompleteParams>(params)),
        "sampling/createMessage" => drop(decode_params::<CreateMessageParams>(params)),
        "elicitation/create" => drop(decode_params::<ElicitParams>(params)),
        "roots/list" => drop(decode_params::<ListRootsParams>(params)),
        "subscriptions/listen" => drop(decode_params::<ListenParams>(params)),
        "notifications/cancelled" => drop(decode_params::<CancelledParams>(params)),
        "notifications/progress" => drop(decode_params::<ProgressParams>(params)),
        _ => {}
    }
}
