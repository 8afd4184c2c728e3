//! The servers under test, each run as its own process (`keel-bench serve <kind> --port N`) so it can be pinned to a
//! core and its resident memory read on its own: Keel, rmcp and the floors (a bare hyper JSON server, a line echo).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

/// The one tool every server offers: `add {a, b}` → structured `{"sum": a + b}`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct AddArgs {
    /// The first addend.
    pub a: f64,
    /// The second addend.
    pub b: f64,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Sum {
    pub sum: f64,
}

fn keel_builder() -> keel_mcp::server::ServerBuilder {
    use keel_mcp::server::{Json, Server};
    Server::builder(keel_mcp::protocol::Implementation::new("keel-bench", "0.1.0")).tool(
        "add",
        "Adds two numbers",
        |AddArgs { a, b }: AddArgs| async move { Json(Sum { sum: a + b }) },
    )
}

fn keel_server() -> keel_mcp::server::Server {
    keel_builder().build()
}

/// The same server with one operation layer that only passes every operation on: what the middleware
/// machinery itself costs (issue 15's goal: < 5 % on stateless `tools/call`).
fn keel_layered_server() -> keel_mcp::server::Server {
    use keel_mcp::server::middleware::{Next, Operation};
    keel_builder().layer(keel_mcp::middleware::from_fn(|op: Operation, next: Next| next.run(op))).build()
}

/// Telemetry on (feature `otel`) with SDK providers whose exporters discard everything: what a server pays
/// for its spans and duration histograms when the collector is down, without the cost of a real export.
#[cfg(feature = "otel")]
mod otel {
    use std::time::Duration;

    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::data::ResourceMetrics;
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

    #[derive(Debug)]
    struct Discard;

    impl SpanExporter for Discard {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            Ok(())
        }
    }

    impl PushMetricExporter for Discard {
        async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    /// Installs the discarding providers (batch span export, periodic metric export, as a production setup
    /// has them) and the W3C propagator, then turns Keel's instrumentation on.
    pub fn enable() {
        let tracer = SdkTracerProvider::builder().with_batch_exporter(Discard).build();
        let meter = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(Discard).build()).build();
        opentelemetry::global::set_tracer_provider(tracer);
        opentelemetry::global::set_meter_provider(meter);
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        keel_mcp::telemetry::enable();
    }
}

mod rmcp_server {
    use rmcp::handler::server::router::tool::ToolRouter;
    use rmcp::handler::server::wrapper::{Json, Parameters};
    use rmcp::{ServerHandler, tool, tool_handler, tool_router};

    use super::{AddArgs, Sum};

    /// rmcp's fastest macro configuration: the router is built once and kept in a field (the default
    /// `Self::tool_router()` rebuilds it on every call).
    #[derive(Clone)]
    pub struct Adder {
        tool_router: ToolRouter<Self>,
    }

    #[tool_router]
    impl Adder {
        pub fn new() -> Self {
            Adder { tool_router: Self::tool_router() }
        }

        #[tool(description = "Adds two numbers")]
        fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> Json<Sum> {
            Json(Sum { sum: a + b })
        }
    }

    #[tool_handler(router = self.tool_router)]
    impl ServerHandler for Adder {}
}

pub use rmcp_server::Adder as RmcpAdder;

/// The floor's fixed answer to `tools/call`, as Keel and rmcp shape it (text plus structured content).
pub const FLOOR_RESULT: &str =
    r#"{"content":[{"type":"text","text":"{\"sum\":3.0}"}],"structuredContent":{"sum":3.0}}"#;

/// Answers one JSON-RPC body the way a minimal server would: parse it, echo the id, a fixed result per method.
/// Enough of `initialize` that MCP clients accept it, so the client benchmark can use this server too.
fn floor_answer(body: &[u8]) -> (StatusCode, Option<String>, Bytes) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (StatusCode::BAD_REQUEST, None, Bytes::new());
    };
    let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let method = v.get("method").and_then(|m| m.as_str()).unwrap_or("");
    if id.is_null() {
        return (StatusCode::ACCEPTED, None, Bytes::new());
    }
    let (result, session) = match method {
        "initialize" => (
            r#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"floor","version":"0"}}"#,
            Some("floor-session".to_owned()),
        ),
        "server/discover" => {
            let body =
                format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"Method not found"}}}}"#);
            return (StatusCode::OK, None, Bytes::from(body));
        }
        "tools/call" => (FLOOR_RESULT, None),
        _ => ("{}", None),
    };
    (StatusCode::OK, session, Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)))
}

async fn floor_service(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let (status, session, body) = floor_answer(&body);
    let mut resp = Response::builder().status(status).header("content-type", "application/json");
    if let Some(s) = session {
        resp = resp.header("mcp-session-id", s);
    }
    Ok(resp.body(Full::new(body)).expect("valid response"))
}

async fn serve_floor(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, hyper::service::service_fn(floor_service))
                .await;
        });
    }
}

async fn serve_rmcp_http(listener: tokio::net::TcpListener, legacy: bool) -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(legacy)
        .with_json_response(true)
        .with_sse_keep_alive(None);
    let service = StreamableHttpService::new(|| Ok(RmcpAdder::new()), Arc::new(LocalSessionManager::default()), config);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper_util::service::TowerToHyperService::new(service);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
        });
    }
}

/// Raw line echo over stdio: parse each line as JSON, answer its id with the fixed result. Plain blocking std IO:
/// the cheapest a stdio server can be (tokio's stdin/stdout go through the blocking pool).
fn serve_echo_stdio() -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    for line in stdin.lines() {
        let (status, _, body) = floor_answer(line?.as_bytes());
        if status == StatusCode::OK {
            out.write_all(&body)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Keel's HTTP configuration in every row. The load generator opens up to 256 connections from one address per
/// round, while the previous round's may still be closing, and the idle-session row opens 10,000 sessions from
/// 127.0.0.1: no per-peer caps here.
fn keel_http_config() -> keel_mcp::server::http::HttpConfig {
    keel_mcp::server::http::HttpConfig::default()
        .max_sessions(1_000_000)
        .max_connections_per_peer(usize::MAX)
        .max_sessions_per_peer(1_000_000)
}

/// `keel-bench serve <kind> [--port N]`: runs one server until killed. Servers use a single-threaded runtime:
/// they are pinned to one core, so more workers would only contend.
pub fn serve(kind: &str, port: u16) -> anyhow::Result<()> {
    if kind == "echo-stdio" {
        return serve_echo_stdio();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match kind {
            "floor" => serve_floor(tokio::net::TcpListener::bind(addr).await?).await,
            "keel" | "keel-protected" => {
                let mut config = keel_http_config();
                if kind == "keel-protected" {
                    config = config.resource_server(crate::protected::protection().await?)?;
                }
                let listener = tokio::net::TcpListener::bind(addr).await?;
                keel_server().serve_http_on(listener, config, std::future::pending()).await?;
                Ok(())
            }
            "keel-layered" => {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                keel_layered_server().serve_http_on(listener, keel_http_config(), std::future::pending()).await?;
                Ok(())
            }
            #[cfg(feature = "otel")]
            "keel-otel" => {
                otel::enable();
                let listener = tokio::net::TcpListener::bind(addr).await?;
                keel_server().serve_http_on(listener, keel_http_config(), std::future::pending()).await?;
                Ok(())
            }
            #[cfg(not(feature = "otel"))]
            "keel-otel" => anyhow::bail!("keel-otel needs keel-bench built with `--features otel`"),
            "keel-redis" => {
                // Sessions and event logs in the Redis at REDIS_URL (the scale-out rows).
                use keel_mcp::server::http::{RedisConfig, RedisStores};
                let url = std::env::var("REDIS_URL").map_err(|_| anyhow::anyhow!("keel-redis needs REDIS_URL"))?;
                let stores = RedisStores::connect(RedisConfig::new(url)).await?;
                let listener = tokio::net::TcpListener::bind(addr).await?;
                keel_server()
                    .serve_http_on(listener, keel_http_config().redis(&stores), std::future::pending())
                    .await?;
                Ok(())
            }
            "rmcp" => serve_rmcp_http(tokio::net::TcpListener::bind(addr).await?, false).await,
            "rmcp-legacy" => serve_rmcp_http(tokio::net::TcpListener::bind(addr).await?, true).await,
            "keel-stdio" => Ok(keel_server().serve_stdio().await?),
            "rmcp-stdio" => {
                use rmcp::ServiceExt;
                let running = RmcpAdder::new().serve(rmcp::transport::stdio()).await?;
                running.waiting().await?;
                Ok(())
            }
            other => anyhow::bail!("unknown server kind {other}"),
        }
    })
}
