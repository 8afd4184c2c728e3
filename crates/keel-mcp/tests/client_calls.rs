//! Per-call options through the client's own API, in both eras over the in-memory transport:
//! `call_tool_with` takes progress, a timeout and cancellation, with everything needed importable from
//! `keel_mcp::client` (and `LoggingLevel` from the protocol root).
#![cfg(all(feature = "client", feature = "server"))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_mcp::Error;
use keel_mcp::client::{CancellationToken, Client, Progress, RequestOptions};
use keel_mcp::protocol::{Implementation, LoggingLevel, ProtocolVersion};
use keel_mcp::server::{NoArgs, RequestContext, Server};
use keel_mcp::transport::memory;
use serde_json::json;
use tokio::sync::Notify;

async fn connect(versions: &[ProtocolVersion], started: Arc<Notify>) -> Client {
    let server = Server::builder(Implementation::new("notes", "1"))
        .protocol_versions(versions.iter().cloned())
        .tool("count", "Reports progress", |ctx: RequestContext, _: NoArgs| async move {
            for i in 1..=3 {
                ctx.progress(i as f64, Some(3.0), Some("counting")).await;
            }
            "counted"
        })
        .tool("hang", "Waits until cancelled", move |ctx: RequestContext, _: NoArgs| {
            let started = started.clone();
            async move {
                started.notify_one();
                ctx.cancellation().cancelled().await;
                "cancelled"
            }
        })
        .build();
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    Client::builder(Implementation::new("t", "1")).protocol_versions(versions.iter().cloned()).connect(b).await.unwrap()
}

#[tokio::test]
async fn call_tool_with_reports_progress_in_both_eras() {
    for versions in [[ProtocolVersion::V2026_07_28], [ProtocolVersion::V2025_11_25]] {
        let client = connect(&versions, Arc::default()).await;
        client.set_logging_level(LoggingLevel::Debug).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
        let sink = seen.clone();
        let options = RequestOptions::default().on_progress(move |p| sink.lock().unwrap().push(p));
        let result = client.call_tool_with("count", json!({}), options).await.unwrap();
        assert_eq!(result.is_error, None);
        let progress: Vec<f64> = seen.lock().unwrap().iter().map(|p| p.progress).collect();
        assert_eq!(progress, [1.0, 2.0, 3.0], "{versions:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn call_tool_with_times_out_in_both_eras() {
    for versions in [[ProtocolVersion::V2026_07_28], [ProtocolVersion::V2025_11_25]] {
        let client = connect(&versions, Arc::default()).await;
        let options = RequestOptions::default().timeout(Duration::from_millis(200));
        let error = client.call_tool_with("hang", json!({}), options).await.unwrap_err();
        assert!(matches!(error, Error::Timeout(d) if d == Duration::from_millis(200)), "{error:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn call_tool_with_is_cancelled_in_both_eras() {
    for versions in [[ProtocolVersion::V2026_07_28], [ProtocolVersion::V2025_11_25]] {
        let started = Arc::new(Notify::new());
        let client = connect(&versions, started.clone()).await;
        let stop = CancellationToken::new();
        let call = client.call_tool_with("hang", json!({}), RequestOptions::default().cancellation(stop.clone()));
        let cancel = async {
            started.notified().await;
            stop.cancel();
        };
        let (result, ()) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(call, cancel) }).await.expect("bounded");
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
        client.close().await;
    }
}
