//! The client's answers to what a server asks: input-required rounds (modern) and server-initiated
//! requests (legacy), against a scripted server on the in-memory transport.

use std::sync::{Arc, Mutex};

use keel_mcp::client::Client;
use keel_mcp::engine::{BoxFuture, Handler, Inbound, Peer};
use keel_mcp::protocol::jsonrpc::{RawNotification, RawRequest};
use keel_mcp::protocol::{ElicitParams, ElicitResult, ElicitValue, ErrorObject, Implementation, Root};
use keel_mcp::{Limits, transport::memory};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A modern server whose `tools/call` asks for input twice before it answers, recording every call.
#[derive(Default)]
struct Scripted {
    calls: Mutex<Vec<(Value, Value)>>,
}

fn raw(v: Value) -> Result<Box<RawValue>, ErrorObject> {
    Ok(serde_json::value::to_raw_value(&v).unwrap())
}

impl Handler for Scripted {
    fn handle_request(&self, request: RawRequest, _ctx: Inbound) -> BoxFuture<Result<Box<RawValue>, ErrorObject>> {
        let params: Value =
            request.params.as_deref().map(|p| serde_json::from_str(p.get()).unwrap()).unwrap_or_default();
        let outcome = match request.method.as_str() {
            "server/discover" => raw(json!({
                "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}, "resultType": "complete"
            })),
            "tools/call" => {
                let mut calls = self.calls.lock().unwrap();
                calls.push((serde_json::to_value(&request.id).unwrap(), params.clone()));
                match params.get("requestState").and_then(Value::as_str) {
                    None => raw(json!({
                        "resultType": "input_required",
                        "inputRequests": {
                            "who": {"method": "elicitation/create", "params": {"message": "Name?", "requestedSchema": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "default": 7}}
                            }}}
                        },
                        "requestState": "s1 \"opaque\" é"
                    })),
                    Some("s1 \"opaque\" é") => raw(json!({
                        "resultType": "input_required",
                        "inputRequests": {"where": {"method": "roots/list"}},
                        "requestState": "s2"
                    })),
                    Some(_) => raw(json!({"content": [{"type": "text", "text": "done"}]})),
                }
            }
            other => Err(ErrorObject::method_not_found(other)),
        };
        Box::pin(std::future::ready(outcome))
    }

    fn handle_notification(&self, _n: RawNotification, _peer: Peer) -> BoxFuture<()> {
        Box::pin(std::future::ready(()))
    }
}

fn builder() -> keel_mcp::client::ClientBuilder {
    Client::builder(Implementation::new("t", "1"))
        .on_elicitation(|params: ElicitParams| async move {
            assert_eq!(params.message, "Name?");
            let mut content = std::collections::BTreeMap::new();
            content.insert("name".to_owned(), ElicitValue::String("Ada".into()));
            Ok(ElicitResult::accept(Some(content)))
        })
        .roots(vec![Root { uri: "file:///work".into(), name: None, meta: None }])
}

#[tokio::test]
async fn input_required_rounds_are_answered_and_retried_with_new_ids() {
    let (a, b) = memory::pair();
    let server = Arc::new(Scripted::default());
    let _running = keel_mcp::engine::serve(a, server.clone(), Limits::default());
    let client = builder().connect(b).await.unwrap();
    let result = client.call_tool("t", json!({"x": 1})).await.unwrap();
    assert_eq!(serde_json::to_value(&result.content).unwrap(), json!([{"type": "text", "text": "done"}]));

    let calls = server.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let ids: std::collections::HashSet<String> = calls.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(ids.len(), 3, "every round has a new JSON-RPC id");
    assert!(calls[0].1.get("inputResponses").is_none() && calls[0].1.get("requestState").is_none());
    // Round two: the elicitation answer, with the schema default filled in, and the state echoed exactly.
    assert_eq!(calls[1].1["requestState"], json!("s1 \"opaque\" é"));
    assert_eq!(calls[1].1["inputResponses"]["who"], json!({"action": "accept", "content": {"name": "Ada", "age": 7}}));
    assert_eq!(calls[1].1["arguments"], json!({"x": 1}));
    // Round three: the roots, and only this round's answers.
    assert_eq!(calls[2].1["requestState"], json!("s2"));
    assert_eq!(calls[2].1["inputResponses"], json!({"where": {"roots": [{"uri": "file:///work"}]}}));
    client.close().await;
}

#[tokio::test]
async fn the_round_limit_stops_a_server_that_never_completes() {
    let (a, b) = memory::pair();
    let _running = keel_mcp::engine::serve(a, Arc::new(Scripted::default()), Limits::default());
    let client = builder().max_input_rounds(2).connect(b).await.unwrap();
    assert!(client.call_tool("t", json!({})).await.is_err());
    client.close().await;
}
