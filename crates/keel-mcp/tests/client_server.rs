//! Client and server over the in-memory transport in both eras: negotiation, typed calls, progress,
//! timeouts and cancellation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_mcp::client::Client;
use keel_mcp::engine::RequestOptions;
use keel_mcp::protocol::{Era, Implementation, ProtocolVersion};
use keel_mcp::server::{Json, NoArgs, RequestContext, Server};
use keel_mcp::transport::{FrameError, FrameReader, FrameWriter, Transport, memory};
use keel_mcp::{Error, Limits};
use serde_json::{Value, json};

mod schema_support;

/// Records every frame crossing the client's end of the connection, to check them against the schema of
/// the revision the test negotiates.
#[derive(Clone, Default)]
struct Tape {
    from_client: Arc<Mutex<Vec<Vec<u8>>>>,
    from_server: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Tape {
    /// Every recorded frame validates against `revision`; the probe and the handshake are skipped, since
    /// they precede the revision's choice.
    fn assert_valid(&self, revision: &ProtocolVersion) {
        let rev = revision.as_str();
        let decode = |f: &Vec<u8>| serde_json::from_slice::<Value>(f).unwrap();
        let client: Vec<Value> = self.from_client.lock().unwrap().iter().map(decode).collect();
        let server: Vec<Value> = self.from_server.lock().unwrap().iter().map(decode).collect();
        let handshake_ids: Vec<Value> = client
            .iter()
            .filter(|m| matches!(m["method"].as_str(), Some("server/discover" | "initialize")))
            .map(|m| m["id"].clone())
            .collect();
        for m in client.iter().filter(|m| !handshake_ids.contains(&m["id"])) {
            schema_support::assert_valid_from_client(rev, m);
        }
        for m in server.iter().filter(|m| m.get("result").is_none() || !handshake_ids.contains(&m["id"])) {
            if m.get("error").is_some() && handshake_ids.contains(&m["id"]) {
                continue;
            }
            schema_support::assert_valid_from_server(rev, m);
        }
        assert!(!client.is_empty() && !server.is_empty());
    }
}

struct TapReader<R> {
    inner: R,
    tape: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl<R: FrameReader> FrameReader for TapReader<R> {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let frame = self.inner.read_frame().await;
        if let Some(Ok(f)) = &frame {
            self.tape.lock().unwrap().push(f.clone());
        }
        frame
    }
}

struct TapWriter<W> {
    inner: W,
    tape: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl<W: FrameWriter> FrameWriter for TapWriter<W> {
    async fn write_frame(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.tape.lock().unwrap().push(frame.to_vec());
        self.inner.write_frame(frame).await
    }
    async fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().await
    }
    async fn close(self) -> std::io::Result<()> {
        self.inner.close().await
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Add {
    a: f64,
    b: f64,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Sum {
    sum: f64,
}

fn server(versions: &[ProtocolVersion]) -> Server {
    Server::builder(Implementation::new("calc", "1.2.3"))
        .protocol_versions(versions.iter().cloned())
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .tool("count", "Reports progress", |ctx: RequestContext, _: NoArgs| async move {
            for i in 1..=3 {
                ctx.progress(i as f64, Some(3.0), Some("counting")).await;
            }
            "counted"
        })
        .tool("hang", "Never answers before it is cancelled", |ctx: RequestContext, _: NoArgs| async move {
            ctx.cancellation().cancelled().await;
            "cancelled"
        })
        .build()
}

async fn connect(server_versions: &[ProtocolVersion], client_versions: &[ProtocolVersion]) -> Client {
    connect_taped(server_versions, client_versions).await.0
}

async fn connect_taped(server_versions: &[ProtocolVersion], client_versions: &[ProtocolVersion]) -> (Client, Tape) {
    let (a, b) = memory::pair();
    let _running = server(server_versions).serve(a);
    let tape = Tape::default();
    let (reader, writer) = b.split();
    let taped = (
        TapReader { inner: reader, tape: tape.from_server.clone() },
        TapWriter { inner: writer, tape: tape.from_client.clone() },
    );
    let client = Client::builder(Implementation::new("test-client", "0.1"))
        .protocol_versions(client_versions.iter().cloned())
        .limits(Limits::default().request_timeout(Duration::from_secs(5)))
        .connect(taped)
        .await
        .expect("connects");
    (client, tape)
}

#[tokio::test]
async fn modern_client_and_server_agree_on_2026_07_28() {
    let all = ProtocolVersion::ALL;
    let (client, tape) = connect_taped(&all, &all).await;
    assert_eq!(client.protocol_version(), ProtocolVersion::V2026_07_28);
    assert_eq!(client.server().info.as_ref().unwrap().name, "calc");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["add", "count", "hang"]);
    assert_eq!(tools[0].input_schema["type"], "object");
    let result = client.call_tool("add", json!({"a": 2, "b": 3})).await.unwrap();
    assert_eq!(result.structured_content, Some(json!({"sum": 5.0})));
    assert_eq!(result.result_type.as_ref().map(|r| r.as_str()), Some("complete"));
    tape.assert_valid(&client.protocol_version());
    client.close().await;
}

#[tokio::test]
async fn legacy_only_server_makes_the_client_fall_back_to_initialize() {
    let legacy = [ProtocolVersion::V2025_06_18, ProtocolVersion::V2025_11_25];
    let (client, tape) = connect_taped(&legacy, &ProtocolVersion::ALL).await;
    assert_eq!(client.protocol_version(), ProtocolVersion::V2025_11_25);
    assert_eq!(client.era(), Era::Legacy);
    client.ping().await.unwrap();
    let result = client.call_tool("add", json!({"a": 1, "b": 1})).await.unwrap();
    assert_eq!(result.structured_content, Some(json!({"sum": 2.0})));
    // Legacy results carry no resultType.
    assert!(result.result_type.is_none());
    tape.assert_valid(&client.protocol_version());
    client.close().await;
}

#[tokio::test]
async fn legacy_only_client_initializes_a_dual_era_server() {
    let (client, tape) = connect_taped(&ProtocolVersion::ALL, &[ProtocolVersion::V2025_03_26]).await;
    assert_eq!(client.protocol_version(), ProtocolVersion::V2025_03_26);
    assert_eq!(client.list_all_tools().await.unwrap().len(), 3);
    tape.assert_valid(&client.protocol_version());
    client.close().await;
}

#[tokio::test]
async fn progress_reaches_the_callback_of_its_request() {
    for versions in [&ProtocolVersion::ALL[..], &[ProtocolVersion::V2025_11_25][..]] {
        let client = connect(&ProtocolVersion::ALL, versions).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let options = RequestOptions {
            on_progress: Some(Arc::new(move |p| sink.lock().unwrap().push(p.progress))),
            ..Default::default()
        };
        let params = keel_mcp::protocol::tools::CallToolParams::new("count", None);
        let result = client.request_with(params, options).await.unwrap();
        assert_eq!(result.content[0].as_text(), Some("counted"));
        assert_eq!(*seen.lock().unwrap(), vec![1.0, 2.0, 3.0]);
        client.close().await;
    }
}

#[tokio::test]
async fn timeouts_cancel_the_request_on_both_sides() {
    let client = connect(&ProtocolVersion::ALL, &ProtocolVersion::ALL).await;
    let options = RequestOptions { timeout: Some(Duration::from_millis(50)), ..Default::default() };
    let params = keel_mcp::protocol::tools::CallToolParams::new("hang", None);
    let err = client.request_with(params, options).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    // The connection is still usable afterwards.
    assert!(client.call_tool("add", json!({"a": 1, "b": 2})).await.is_ok());
    client.close().await;
}

#[tokio::test]
async fn closing_fails_pending_requests() {
    let client = connect(&ProtocolVersion::ALL, &ProtocolVersion::ALL).await;
    let peer = client.peer().clone();
    let pending =
        tokio::spawn(async move { peer.request(keel_mcp::protocol::tools::CallToolParams::new("hang", None)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    client.close().await;
    let outcome = pending.await.unwrap();
    assert!(matches!(outcome, Err(Error::Closed)), "{outcome:?}");
}
