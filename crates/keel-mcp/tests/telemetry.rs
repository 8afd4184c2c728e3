//! OpenTelemetry per the MCP semantic conventions (feature `otel`): one trace across a Keel client and a
//! Keel server over the in-memory transport and over HTTP, spans named `{method} {target}` with the
//! conventions' attributes, `error.type` on failures, the transport's span linked (not parent), and the
//! operation-duration histograms. One global provider per test binary (Keel reads the providers once, at
//! `telemetry::enable`);
//! each test reads only its own trace.

use std::sync::OnceLock;
use std::time::Duration;

use keel_mcp::client::http::HttpTransport;
use keel_mcp::client::{Client, ClientBuilder};
use keel_mcp::engine::{Connection, RequestOptions};
use keel_mcp::protocol::{Implementation, ProtocolVersion};
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, ResourceDef, Server};
use keel_mcp::transport::memory;
use keel_mcp::{Error, telemetry::attributes as attr};
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt as _, TraceId, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, Value, global};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;

struct Telemetry {
    spans: InMemorySpanExporter,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    metrics: InMemoryMetricExporter,
    meters: SdkMeterProvider,
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
        let tracer = provider.tracer("test");
        global::set_tracer_provider(provider);
        global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
        let metrics = InMemoryMetricExporter::default();
        let meters = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(metrics.clone()).build()).build();
        global::set_meter_provider(meters.clone());
        keel_mcp::telemetry::enable();
        Telemetry { spans, tracer, metrics, meters }
    })
}

/// Every finished span of `trace`.
fn spans_of(trace: TraceId) -> Vec<SpanData> {
    let all = telemetry().spans.get_finished_spans().unwrap();
    all.into_iter().filter(|s| s.span_context.trace_id() == trace).collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> Option<String> {
    attribute(span, key).map(|v| v.as_str().into_owned())
}

fn one<'a>(spans: &'a [SpanData], name: &str, kind: SpanKind) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name && s.span_kind == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "{name} {kind:?} in {:#?}",
        spans.iter().map(|s| (&s.name, &s.span_kind)).collect::<Vec<_>>()
    );
    found[0]
}

fn server() -> Server {
    Server::builder(Implementation::new("t", "1"))
        .tool("echo", "Echoes", |_: NoArgs| async { "echoed" })
        .tool("fails", "Fails", |_: NoArgs| async { Err::<String, _>(HandlerError::failed("no luck")) })
        .tool("slow", "Takes its time", |ctx: RequestContext, _: NoArgs| async move {
            ctx.cancellation().cancelled().await;
            "late"
        })
        .tool("poem", "Asks the client's model", |ctx: RequestContext, _: NoArgs| async move {
            let params = serde_json::from_value(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": "a poem"}}],
                "maxTokens": 5
            }))?;
            Ok::<_, HandlerError>(ctx.create_message("poem", params).await?.model)
        })
        .tool("count", "Reports progress once", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(1.0, Some(1.0), None).await;
            "counted"
        })
        .prompt("greet", "Greets", |_: NoArgs| async { "hi".to_owned() })
        .resource(ResourceDef::text("mem://note", "note", "text/plain", "a note"))
        .build()
}

/// Connects `client` to the test server over the in-memory transport.
async fn connect(client: ClientBuilder) -> (Client, Connection) {
    let (server_end, client_end) = memory::pair();
    let running = server().serve(server_end);
    (client.connect(client_end).await.unwrap(), running)
}

/// Connects `client`, speaking `version` only, to the server at `url` over HTTP.
async fn connect_http(url: &str, version: &ProtocolVersion, client: ClientBuilder) -> Client {
    client.protocol_versions([version.clone()]).connect(HttpTransport::new(url).unwrap()).await.unwrap()
}

/// Calls `echo` in a trace of its own: the trace and its spans.
async fn echo_spans(client: &Client) -> (TraceId, Vec<SpanData>) {
    let (trace, _) = traced(async {
        client.call_tool("echo", json!({})).await.unwrap();
    })
    .await;
    (trace, spans_of(trace))
}

/// Runs `work` under a root span of the test's own, and returns the root's trace.
async fn traced<F: std::future::Future<Output = ()>>(work: F) -> (TraceId, SpanId) {
    let root = telemetry().tracer.start("test root");
    let cx = Context::current_with_span(root);
    let ids = (cx.span().span_context().trace_id(), cx.span().span_context().span_id());
    work.with_context(cx.clone()).await;
    cx.span().end();
    ids
}

#[tokio::test]
async fn one_trace_spans_client_and_server_in_memory_in_both_eras() {
    for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28] {
        telemetry();
        let (client, _running) =
            connect(Client::builder(Implementation::new("c", "1")).protocol_versions([version.clone()])).await;
        let (trace, root) = traced(async {
            client.call_tool("echo", json!({})).await.unwrap();
        })
        .await;
        let spans = spans_of(trace);
        let sent = one(&spans, "tools/call echo", SpanKind::Client);
        let served = one(&spans, "tools/call echo", SpanKind::Server);
        assert_eq!(sent.parent_span_id, root, "{version}: the client span is a child of the caller's");
        assert_eq!(
            served.parent_span_id,
            sent.span_context.span_id(),
            "{version}: the server span is the client's child"
        );
        assert!(served.parent_span_is_remote, "{version}");
        for span in [sent, served] {
            assert_eq!(text(span, attr::MCP_METHOD_NAME).as_deref(), Some("tools/call"));
            assert_eq!(text(span, attr::GEN_AI_TOOL_NAME).as_deref(), Some("echo"));
            assert_eq!(text(span, attr::GEN_AI_OPERATION_NAME).as_deref(), Some("execute_tool"));
            assert_eq!(text(span, attr::MCP_PROTOCOL_VERSION).as_deref(), Some(version.as_str()));
            assert!(text(span, attr::JSONRPC_REQUEST_ID).is_some());
            assert_eq!(span.status, Status::Unset);
        }
        assert_eq!(text(served, attr::NETWORK_TRANSPORT).as_deref(), Some("pipe"));
        assert_eq!(text(sent, attr::JSONRPC_REQUEST_ID), text(served, attr::JSONRPC_REQUEST_ID));
        client.close().await;
    }
}

#[tokio::test]
async fn a_request_the_server_sends_back_nests_under_the_tool_call() {
    telemetry();
    let (client, _running) = connect(
        answers_sampling(Client::builder(Implementation::new("c", "1")))
            .protocol_versions([ProtocolVersion::V2025_11_25]),
    )
    .await;
    let (_, answered) = sampling_spans(&client).await;
    assert_eq!(text(&answered, attr::MCP_METHOD_NAME).as_deref(), Some("sampling/createMessage"));
    client.close().await;
}

#[tokio::test]
async fn every_method_is_named_per_the_conventions() {
    telemetry();
    let (client, _running) =
        connect(Client::builder(Implementation::new("c", "1")).protocol_versions([ProtocolVersion::V2025_11_25])).await;
    let (trace, _) = traced(async {
        client.ping().await.unwrap();
        client.list_tools(None).await.unwrap();
        client.list_prompts(None).await.unwrap();
        client.get_prompt("greet", None).await.unwrap();
        client.list_resources(None).await.unwrap();
        client.list_resource_templates(None).await.unwrap();
        client.read_resource("mem://note").await.unwrap();
    })
    .await;
    let spans = spans_of(trace);
    for name in ["ping", "tools/list", "prompts/list", "resources/list", "resources/templates/list"] {
        for kind in [SpanKind::Client, SpanKind::Server] {
            let span = one(&spans, name, kind);
            assert_eq!(text(span, attr::MCP_METHOD_NAME).as_deref(), Some(name));
        }
    }
    let prompt = one(&spans, "prompts/get greet", SpanKind::Server);
    assert_eq!(text(prompt, attr::GEN_AI_PROMPT_NAME).as_deref(), Some("greet"));
    one(&spans, "prompts/get greet", SpanKind::Client);
    // The URI is an attribute, never part of the name (high cardinality).
    for kind in [SpanKind::Client, SpanKind::Server] {
        let read = one(&spans, "resources/read", kind);
        assert_eq!(text(read, attr::MCP_RESOURCE_URI).as_deref(), Some("mem://note"));
    }
    client.close().await;
}

#[tokio::test]
async fn failures_carry_error_type_and_an_error_status() {
    telemetry();
    let (client, _running) =
        connect(Client::builder(Implementation::new("c", "1")).protocol_versions([ProtocolVersion::V2025_11_25])).await;
    let (trace, _) = traced(async {
        let result = client.call_tool("fails", json!({})).await.unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(matches!(client.get_prompt("missing", None).await, Err(Error::Rpc(_))));
        let quick = RequestOptions::default().timeout(Duration::from_millis(50));
        let slow = keel_mcp::protocol::tools::CallToolParams::new("slow", None);
        assert!(matches!(client.request_with(slow, quick).await, Err(Error::Timeout(_))));
    })
    .await;
    let spans = spans_of(trace);
    for kind in [SpanKind::Client, SpanKind::Server] {
        let failed = one(&spans, "tools/call fails", kind.clone());
        assert_eq!(text(failed, attr::ERROR_TYPE).as_deref(), Some("tool_error"), "{kind:?}");
        assert!(matches!(failed.status, Status::Error { .. }), "{kind:?}");
        let missing = one(&spans, "prompts/get missing", kind.clone());
        assert_eq!(text(missing, attr::ERROR_TYPE).as_deref(), Some("-32602"), "{kind:?}");
        assert_eq!(text(missing, attr::RPC_RESPONSE_STATUS_CODE).as_deref(), Some("-32602"), "{kind:?}");
        assert!(matches!(&missing.status, Status::Error { description } if !description.is_empty()), "{kind:?}");
    }
    let timed_out = one(&spans, "tools/call slow", SpanKind::Client);
    assert_eq!(text(timed_out, attr::ERROR_TYPE).as_deref(), Some("timeout"));
    client.close().await;
    // The server's handler, cancelled by the client's timeout, ends its span as cancelled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let spans = spans_of(trace);
        if let Some(span) = spans.iter().find(|s| s.name == "tools/call slow" && s.span_kind == SpanKind::Server) {
            assert_eq!(text(span, attr::ERROR_TYPE).as_deref(), Some("cancelled"), "{span:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cancelled handler's span never ended");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn over_http_the_server_span_is_the_client_spans_child_and_links_the_http_span() {
    telemetry();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let service = server().http_service(HttpConfig::default());
    // What the application's HTTP tracing does: a span per HTTP request, its context in the extensions.
    let http_spans = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let service = service.clone();
            tokio::spawn(async move {
                let handle = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                    let span = telemetry()
                        .tracer
                        .span_builder("POST /mcp")
                        .with_kind(SpanKind::Server)
                        .start(&telemetry().tracer);
                    let cx = Context::new().with_span(span);
                    request.extensions_mut().insert(cx.clone());
                    let call = tower::ServiceExt::oneshot(service.clone(), request);
                    async move {
                        let response = call.await;
                        cx.span().end();
                        response
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, handle)
                    .await;
            });
        }
    });
    for version in [ProtocolVersion::V2026_07_28, ProtocolVersion::V2025_11_25] {
        let client = connect_http(&url, &version, Client::builder(Implementation::new("c", "1"))).await;
        let (trace, spans) = echo_spans(&client).await;
        let sent = one(&spans, "tools/call echo", SpanKind::Client);
        let served = one(&spans, "tools/call echo", SpanKind::Server);
        assert_eq!(served.parent_span_id, sent.span_context.span_id(), "{version}");
        assert_eq!(text(served, attr::NETWORK_TRANSPORT).as_deref(), Some("tcp"), "{version}");
        assert_eq!(text(served, attr::NETWORK_PROTOCOL_NAME).as_deref(), Some("http"), "{version}");
        if version == ProtocolVersion::V2025_11_25 {
            assert!(text(served, attr::MCP_SESSION_ID).is_some(), "a legacy HTTP request names its session");
        }
        // The HTTP span is in a trace of its own (no propagation on the HTTP request here): linked only.
        assert_eq!(served.links.links.len(), 1, "{version}");
        let http_span = served.links.links[0].span_context.clone();
        assert_ne!(http_span.trace_id(), trace, "{version}");
        let all = telemetry().spans.get_finished_spans().unwrap();
        assert!(all.iter().any(|s| s.span_context == http_span && s.name == "POST /mcp"), "{version}");
        client.close().await;
    }
    http_spans.abort();
}

#[tokio::test]
async fn operation_durations_are_recorded_for_client_and_server() {
    telemetry();
    let (client, _running) = connect(Client::builder(Implementation::new("c", "1"))).await;
    client.call_tool("echo", json!({})).await.unwrap();
    client.close().await;
    telemetry().meters.force_flush().unwrap();
    let exported = telemetry().metrics.get_finished_metrics().unwrap();
    for name in [
        keel_mcp::telemetry::metrics::SERVER_OPERATION_DURATION,
        keel_mcp::telemetry::metrics::CLIENT_OPERATION_DURATION,
    ] {
        let metric = exported
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .filter(|sm| sm.scope().name() == keel_mcp::telemetry::SCOPE)
            .flat_map(|sm| sm.metrics())
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{name} not exported"));
        assert_eq!(metric.unit(), "s");
        let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else {
            panic!("{name}: not a histogram")
        };
        let tool_calls = histogram.data_points().find(|p| {
            p.attributes().any(|kv| kv.key.as_str() == attr::GEN_AI_TOOL_NAME && kv.value.as_str() == "echo")
        });
        let point = tool_calls.unwrap_or_else(|| panic!("{name}: no tools/call echo point"));
        assert!(point.count() >= 1);
        assert_eq!(point.bounds().next(), Some(0.01), "{name}: the conventions' buckets");
    }
}

/// Serves the test server over HTTP on loopback; its URL.
async fn serve_http() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { server().serve_http_on(listener, HttpConfig::default(), std::future::pending()).await });
    url
}

fn answers_sampling(client: ClientBuilder) -> ClientBuilder {
    client.on_sampling(|_| async {
        Ok(serde_json::from_value(
            json!({"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}),
        )
        .unwrap())
    })
}

/// Calls `poem`, whose handler asks the client's model: a `CLIENT` span on the server (a child of the tool
/// call's) and a `SERVER` span on the client (its child).
async fn sampling_spans(client: &Client) -> (SpanData, SpanData) {
    let (trace, _) = traced(async {
        client.call_tool("poem", json!({})).await.unwrap();
    })
    .await;
    let spans = spans_of(trace);
    let tool = one(&spans, "tools/call poem", SpanKind::Server);
    let asked = one(&spans, "sampling/createMessage", SpanKind::Client);
    let answered = one(&spans, "sampling/createMessage", SpanKind::Server);
    assert_eq!(asked.parent_span_id, tool.span_context.span_id(), "the server's request nests under the tool call");
    assert_eq!(answered.parent_span_id, asked.span_context.span_id(), "the client's span is its child");
    (asked.clone(), answered.clone())
}

/// Calls `count` asking for its progress, so that the server sends a notification back.
async fn call_count(client: &Client) {
    let params = keel_mcp::protocol::tools::CallToolParams::new("count", None);
    client.request_with(params, RequestOptions::default().on_progress(|_| {})).await.unwrap();
}

#[tokio::test]
async fn client_spans_name_the_transport_and_the_session() {
    telemetry();
    let (client, _running) =
        connect(Client::builder(Implementation::new("c", "1")).protocol_versions([ProtocolVersion::V2025_11_25])).await;
    let (_, spans) = echo_spans(&client).await;
    let sent = one(&spans, "tools/call echo", SpanKind::Client);
    assert_eq!(text(sent, attr::NETWORK_TRANSPORT).as_deref(), Some("pipe"));
    assert_eq!(text(sent, attr::MCP_SESSION_ID), None, "a stream has no session");
    client.close().await;

    let url = serve_http().await;
    for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28] {
        let client = connect_http(&url, &version, Client::builder(Implementation::new("c", "1"))).await;
        let (_, spans) = echo_spans(&client).await;
        let sent = one(&spans, "tools/call echo", SpanKind::Client);
        let served = one(&spans, "tools/call echo", SpanKind::Server);
        assert_eq!(text(sent, attr::NETWORK_TRANSPORT).as_deref(), Some("tcp"), "{version}");
        assert_eq!(text(sent, attr::NETWORK_PROTOCOL_NAME).as_deref(), Some("http"), "{version}");
        if version == ProtocolVersion::V2025_11_25 {
            let session = text(sent, attr::MCP_SESSION_ID);
            assert!(session.is_some(), "a legacy HTTP client names its session");
            assert_eq!(session, text(served, attr::MCP_SESSION_ID), "both sides name the same session");
        } else {
            assert_eq!(text(sent, attr::MCP_SESSION_ID), None, "{version} has no session");
        }
        client.close().await;
    }
}

/// The notification spans of one exchange: `CLIENT` where it was sent, `SERVER` where it arrived, the
/// receiver's a child of the sender's (through `_meta`), named by method alone and without a request id.
fn assert_notification_pair(spans: &[SpanData], method: &str, transport: &str) -> (SpanData, SpanData) {
    let sent = one(spans, method, SpanKind::Client);
    let received = one(spans, method, SpanKind::Server);
    assert_eq!(received.parent_span_id, sent.span_context.span_id(), "{method}: the receiver's span is the child");
    assert!(received.parent_span_is_remote, "{method}");
    for span in [sent, received] {
        assert_eq!(text(span, attr::MCP_METHOD_NAME).as_deref(), Some(method));
        assert_eq!(text(span, attr::NETWORK_TRANSPORT).as_deref(), Some(transport), "{method}");
        assert_eq!(text(span, attr::JSONRPC_REQUEST_ID), None, "{method}: a notification has no id");
        assert_eq!(span.status, Status::Unset, "{method}");
    }
    (sent.clone(), received.clone())
}

#[tokio::test]
async fn notifications_get_a_span_where_sent_and_where_received() {
    telemetry();
    // In memory: the client's `notifications/initialized`, and the progress a tool reports back.
    let (trace, _) = traced(async {
        let (client, _running) =
            connect(Client::builder(Implementation::new("c", "1")).protocol_versions([ProtocolVersion::V2025_11_25]))
                .await;
        call_count(&client).await;
        client.close().await;
    })
    .await;
    let spans = spans_of(trace);
    assert_notification_pair(&spans, "notifications/initialized", "pipe");
    let (progress, _) = assert_notification_pair(&spans, "notifications/progress", "pipe");
    let tool = one(&spans, "tools/call count", SpanKind::Server);
    assert_eq!(progress.parent_span_id, tool.span_context.span_id(), "the handler's notification nests under it");

    // Over legacy HTTP: the same, with the session named on both sides.
    let url = serve_http().await;
    let (trace, _) = traced(async {
        let client =
            connect_http(&url, &ProtocolVersion::V2025_11_25, Client::builder(Implementation::new("c", "1"))).await;
        call_count(&client).await;
        client.close().await;
    })
    .await;
    let spans = spans_of(trace);
    let (_, initialized) = assert_notification_pair(&spans, "notifications/initialized", "tcp");
    assert!(text(&initialized, attr::MCP_SESSION_ID).is_some(), "the server names the session");
    let (progress, _) = assert_notification_pair(&spans, "notifications/progress", "tcp");
    assert!(text(&progress, attr::MCP_SESSION_ID).is_some(), "the server names the session");
}

#[tokio::test]
async fn over_http_a_request_the_server_sends_back_has_a_client_span() {
    telemetry();
    let url = serve_http().await;
    let client = connect_http(
        &url,
        &ProtocolVersion::V2025_11_25,
        answers_sampling(Client::builder(Implementation::new("c", "1"))),
    )
    .await;
    let (asked, answered) = sampling_spans(&client).await;
    for span in [&asked, &answered] {
        assert_eq!(text(span, attr::NETWORK_TRANSPORT).as_deref(), Some("tcp"));
        assert_eq!(text(span, attr::MCP_PROTOCOL_VERSION).as_deref(), Some("2025-11-25"));
        assert!(text(span, attr::MCP_SESSION_ID).is_some());
    }
    assert_eq!(text(&asked, attr::JSONRPC_REQUEST_ID), text(&answered, attr::JSONRPC_REQUEST_ID));
    client.close().await;
}
