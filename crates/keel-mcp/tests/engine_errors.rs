//! The engine answers malformed input with the right JSON-RPC error and keeps serving; cancellation and
//! concurrency bounds hold. Driven through raw frames, as a misbehaving client would send them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_mcp::Limits;
use keel_mcp::protocol::Implementation;
use keel_mcp::server::{NoArgs, RequestContext, Server};
use keel_mcp::transport::memory::{self, MemoryTransport};
use keel_mcp::transport::{FrameReader, FrameWriter, LineReader, LineWriter, Transport};
use serde_json::{Value, json};

mod schema_support;

type RawEnd = (<MemoryTransport as Transport>::Reader, <MemoryTransport as Transport>::Writer);

struct RawClient {
    /// The revision the server's messages are checked against.
    revision: &'static str,
    reader: <MemoryTransport as Transport>::Reader,
    writer: <MemoryTransport as Transport>::Writer,
}

impl RawClient {
    async fn send(&mut self, line: &str) {
        self.writer.write_frame(line.as_bytes()).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(5), self.reader.read_frame())
            .await
            .expect("an answer within 5 s")
            .expect("stream open")
            .expect("a frame");
        let message: Value = serde_json::from_slice(&frame).unwrap();
        schema_support::assert_valid_from_server(self.revision, &message);
        message
    }

    async fn call(&mut self, line: &str) -> Value {
        self.send(line).await;
        self.recv().await
    }
}

fn start(server: &Server) -> RawClient {
    let (a, b) = memory::pair();
    let _connection = server.serve(a);
    let (reader, writer): RawEnd = b.split();
    RawClient { revision: "2025-11-25", reader, writer }
}

fn test_server(limits: Limits) -> Server {
    Server::builder(Implementation::new("engine-test", "0.0.1"))
        .limits(limits)
        .tool("echo", "Echoes its text", |args: EchoArgs| async move { args.text })
        .tool("wait", "Waits until cancelled", |ctx: RequestContext, _: NoArgs| async move {
            ctx.cancellation().cancelled().await;
            "cancelled"
        })
        .build()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

#[tokio::test]
async fn malformed_input_gets_the_right_error_and_the_peer_keeps_serving() {
    let mut c = start(&test_server(Limits::default()));
    let init = c.call(INIT).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");

    let e = c.call("{this is not json").await;
    assert_eq!((e.get("id"), e["error"]["code"].clone()), (None, json!(-32700)));

    let e = c.call(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#).await;
    assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!(3), json!(-32600)));

    let e = c.call(r#"{"jsonrpc":"2.0","id":"x","method":"no/such/method"}"#).await;
    assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!("x"), json!(-32601)));

    let e = c.call(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":17}}"#).await;
    assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!(4), json!(-32602)));

    let e = c.call(r#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#).await;
    assert_eq!(e["error"]["code"], -32600);

    // Unknown tool: invalid params. Bad arguments: a tool error result (SEP-1303), not a protocol error.
    let e = c.call(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}"#).await;
    assert_eq!(e["error"]["code"], -32602);
    let r = c
        .call(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":5}}}"#)
        .await;
    assert_eq!(r["result"]["isError"], true);

    // Still serving.
    let r = c
        .call(r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#)
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "hi");
}

#[tokio::test]
async fn oversized_messages_are_rejected_and_skipped() {
    let mut c = start(&test_server(Limits::default().max_message_bytes(256)));
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(1000));
    let e = c.call(&big).await;
    assert_eq!(e["error"]["code"], -32700);
    let r = c.call(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#).await;
    assert_eq!(r["id"], 2);
    assert!(r["result"].is_object());
}

#[tokio::test]
async fn a_cancelled_request_gets_no_answer() {
    let mut c = start(&test_server(Limits::default()));
    c.call(INIT).await;
    c.send(r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"wait"}}"#).await;
    c.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":10,"reason":"test"}}"#).await;
    // The next answer is the ping's: request 10 was dropped.
    let r = c.call(r#"{"jsonrpc":"2.0","id":11,"method":"ping"}"#).await;
    assert_eq!(r["id"], 11);
}

#[tokio::test]
async fn modern_requests_are_checked_and_stamped() {
    let mut c = start(&test_server(Limits::default()));
    c.revision = "2026-07-28";
    let r = c
        .call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#)
        .await;
    assert_eq!(r["result"]["resultType"], "complete");
    assert_eq!(r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "engine-test");
    assert!(r["result"]["ttlMs"].is_u64());

    let e = c
        .call(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"v999.0.0","io.modelcontextprotocol/clientCapabilities":{}}}}"#)
        .await;
    assert_eq!(e["error"]["code"], -32022);
    assert_eq!(e["error"]["data"]["requested"], "v999.0.0");
    assert!(e["error"]["data"]["supported"].as_array().unwrap().contains(&json!("2026-07-28")));

    let e = c
        .call(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#)
        .await;
    assert_eq!(e["error"]["code"], -32602);

    // Without _meta and without a session there is no revision to speak.
    let e = c.call(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#).await;
    assert_eq!(e["error"]["code"], -32602);
}

#[tokio::test]
async fn concurrent_dispatch_is_bounded() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let server = Server::builder(Implementation::new("bounded", "1"))
        .limits(Limits::default().max_concurrent_requests(2))
        .tool("slow", "", move |_: NoArgs| {
            let (running, peak) = (r.clone(), p.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                "done"
            }
        })
        .build();
    let mut c = start(&server);
    c.call(INIT).await;
    for id in 1..=8 {
        c.send(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"slow"}}}}"#)).await;
    }
    let mut ids: Vec<i64> = Vec::new();
    for _ in 1..=8 {
        ids.push(c.recv().await["id"].as_i64().unwrap());
    }
    ids.sort();
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn line_codec_is_shared_by_memory_transport() {
    // Sanity: the memory transport frames with the same codec as stdio.
    let (a, b) = memory::pair();
    let (_ra, mut wa): RawEnd = a.split();
    let (mut rb, _wb): RawEnd = b.split();
    wa.write_frame(b"{\"x\":1}").await.unwrap();
    wa.flush().await.unwrap();
    assert_eq!(rb.read_frame().await.unwrap().unwrap(), b"{\"x\":1}");
    let _ = (LineReader::new(std::io::Cursor::new(Vec::new()), 1), LineWriter::new(Vec::<u8>::new()));
}
