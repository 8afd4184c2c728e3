//! OpenTelemetry per the MCP semantic conventions: a client calls a tool whose handler reports progress and
//! asks the client's model, and the spans both sides emit are printed as one trace — the client's `CLIENT`
//! span, the server's `SERVER` span under it, and the server's own requests and notifications back under
//! that. The server and the client talk in memory, so this runs on its own:
//!
//! ```text
//! cargo run --example telemetry --features otel
//! ```
//!
//! A real application installs an exporter that sends spans somewhere (`opentelemetry-otlp`, say) where this
//! one keeps them in memory to print them.

use keel_mcp::client::Client;
use keel_mcp::engine::RequestOptions;
use keel_mcp::protocol::sampling::{CreateMessageParams, CreateMessageResult};
use keel_mcp::protocol::tools::CallToolParams;
use keel_mcp::protocol::{Implementation, ProtocolVersion};
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server};
use keel_mcp::telemetry::attributes;
use keel_mcp::transport::memory;
use opentelemetry::global;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The application's providers and propagators first, then Keel's instrumentation.
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
    global::set_tracer_provider(provider.clone());
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    keel_mcp::telemetry::enable();

    // 2. A server whose tool reports progress and asks the client's model for a title.
    let server = Server::builder(Implementation::new("titles", "1.0.0"))
        .tool("title", "Titles a text", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(0.5, Some(1.0), Some("asking the model")).await;
            let params: CreateMessageParams = serde_json::from_value(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": "a title, please"}}],
                "maxTokens": 20
            }))?;
            let answer = ctx.create_message("title", params).await?;
            Ok::<_, HandlerError>(format!("titled by {}", answer.model))
        })
        .build();

    // 3. A client that answers sampling requests, connected in memory (legacy era: the server asks back).
    let (server_end, client_end) = memory::pair();
    let _running = server.serve(server_end);
    let client = Client::builder(Implementation::new("editor", "1.0.0"))
        .protocol_versions([ProtocolVersion::V2025_11_25])
        .on_sampling(|_| async {
            let answer = json!({"role": "assistant", "content": {"type": "text", "text": "On Keels"}, "model": "m-1"});
            Ok::<CreateMessageResult, _>(serde_json::from_value(answer).expect("a valid result"))
        })
        .connect(client_end)
        .await?;
    let call = CallToolParams::new("title", None);
    let result = client.request_with(call, RequestOptions::default().on_progress(|_| {})).await?;
    println!("result: {:?}\n", result.content);
    client.close().await;

    // 4. The spans, as a tree.
    let finished = spans.get_finished_spans()?;
    let roots = finished.iter().filter(|s| !finished.iter().any(|p| p.span_context.span_id() == s.parent_span_id));
    for root in roots {
        print_tree(&finished, root, 0);
    }
    provider.shutdown()?;
    Ok(())
}

/// Prints `span` (kind, name, a few attributes) and its children, indented by depth.
fn print_tree(all: &[SpanData], span: &SpanData, depth: usize) {
    let attribute =
        |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| format!(" {key}={}", kv.value));
    let shown = [attributes::NETWORK_TRANSPORT, attributes::JSONRPC_REQUEST_ID, attributes::GEN_AI_TOOL_NAME];
    let details: String = shown.iter().filter_map(|key| attribute(key)).collect();
    println!("{}{:?} {}{details}", "  ".repeat(depth), span.span_kind, span.name);
    let id: SpanId = span.span_context.span_id();
    let mut children: Vec<&SpanData> = all.iter().filter(|s| s.parent_span_id == id).collect();
    children.sort_by_key(|s| s.start_time);
    for child in children {
        print_tree(all, child, depth + 1);
    }
}
