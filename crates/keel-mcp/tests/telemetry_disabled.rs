//! With the `otel` feature but without `telemetry::enable`, Keel records nothing, even with providers set:
//! the instrumentation costs an atomic load until the application turns it on. A test binary of its own,
//! since enabling is once per process.

use keel_mcp::client::Client;
use keel_mcp::protocol::Implementation;
use keel_mcp::server::{NoArgs, Server};
use keel_mcp::transport::memory;
use opentelemetry::global;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::json;

#[tokio::test]
async fn nothing_is_recorded_before_enable() {
    let spans = InMemorySpanExporter::default();
    global::set_tracer_provider(SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build());
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![Box::new(TraceContextPropagator::new())]));
    let server =
        Server::builder(Implementation::new("t", "1")).tool("echo", "Echoes", |_: NoArgs| async { "ok" }).build();
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    let client = Client::builder(Implementation::new("c", "1")).connect(b).await.unwrap();
    client.call_tool("echo", json!({})).await.unwrap();
    client.close().await;
    assert!(spans.get_finished_spans().unwrap().is_empty(), "recorded before enable");
}
