//! Codec cost: decode a `tools/call` request and encode its result, timed and with heap allocations counted by the
//! binary's global allocator. Keel's protocol types vs rmcp's vs plain `serde_json::Value`.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value, json};

use crate::alloc_count;

pub const REQUEST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2},"_meta":{"progressToken":"t1"}}}"#;

pub struct Cost {
    pub name: &'static str,
    pub ns: f64,
    pub allocs: f64,
}

fn measure(name: &'static str, iters: u64, mut f: impl FnMut() -> Vec<u8>) -> Cost {
    for _ in 0..iters / 10 + 1 {
        black_box(f());
    }
    let a0 = alloc_count();
    let t0 = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    let ns = t0.elapsed().as_nanos() as f64 / iters as f64;
    Cost { name, ns, allocs: (alloc_count() - a0) as f64 / iters as f64 }
}

fn keel_round_trip() -> Vec<u8> {
    use keel_mcp::protocol::jsonrpc::{Message, encode_result};
    use keel_mcp::protocol::tools::{CallToolParams, CallToolResult};
    let Ok(Message::Request(req)) = Message::decode(REQUEST.as_bytes()) else { panic!("keel: not a request") };
    assert_eq!(req.method, "tools/call");
    let params: CallToolParams =
        keel_mcp::protocol::method::decode_params(req.params.as_deref()).expect("keel: tools/call params");
    let args = params.arguments.expect("arguments");
    let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
    let structured = json!({"sum": sum});
    let mut result = CallToolResult::text(structured.to_string());
    result.structured_content = Some(structured);
    encode_result(&req.id, &result).expect("keel: encode")
}

fn rmcp_round_trip() -> Vec<u8> {
    use rmcp::model::{
        CallToolResult, ClientJsonRpcMessage, ClientRequest, ContentBlock, ServerJsonRpcMessage, ServerResult,
    };
    let msg: ClientJsonRpcMessage = serde_json::from_str(REQUEST).expect("rmcp: decode");
    let rmcp::model::JsonRpcMessage::Request(req) = msg else { panic!("rmcp: not a request") };
    let ClientRequest::CallToolRequest(call) = req.request else { panic!("rmcp: not tools/call") };
    let args = call.params.arguments.expect("arguments");
    let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
    let structured = json!({"sum": sum});
    let mut result = CallToolResult::success(vec![ContentBlock::text(structured.to_string())]);
    result.structured_content = Some(structured);
    let out = ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), req.id);
    serde_json::to_vec(&out).expect("rmcp: encode")
}

fn value_round_trip() -> Vec<u8> {
    let v: Value = serde_json::from_str(REQUEST).expect("value: decode");
    assert_eq!(v["method"], "tools/call");
    let args = &v["params"]["arguments"];
    let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
    let structured = json!({"sum": sum});
    let out = json!({"jsonrpc": "2.0", "id": v["id"], "result": {
        "content": [{"type": "text", "text": structured.to_string()}], "structuredContent": structured}});
    serde_json::to_vec(&out).expect("value: encode")
}

/// Checks every codec produces the same answer, then measures each.
pub fn run(iters: u64) -> anyhow::Result<Vec<Cost>> {
    type RoundTrip = fn() -> Vec<u8>;
    let fns: [(&'static str, RoundTrip); 3] =
        [("Keel", keel_round_trip), ("rmcp", rmcp_round_trip), ("serde_json::Value", value_round_trip)];
    let mut out = Vec::new();
    for (name, f) in fns {
        let v: Value = serde_json::from_slice(&f())?;
        anyhow::ensure!(
            v["id"] == 7 && v["result"]["structuredContent"]["sum"].as_f64() == Some(3.0),
            "{name} codec answered {v}"
        );
        out.push(measure(name, iters, f));
    }
    Ok(out)
}
