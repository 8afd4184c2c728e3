//! The conformance server: Keel's fixture for the official MCP conformance suite.
//!
//! Serves streamable HTTP on `PORT` (default 3000) at `/mcp`; `conformance-server --stdio` serves the
//! same fixture on stdin/stdout. On SIGTERM or SIGINT it shuts down gracefully and exits 0 within 2 s, open
//! streams included.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, it exports its spans (per the MCP semantic conventions) over
//! OTLP http/protobuf to that endpoint; without it, it records nothing.
//! With `REDIS_URL` set (e.g. `redis://127.0.0.1:6379/`), legacy sessions and their SSE event logs are
//! shared through that Redis, so that several instances behind a load balancer serve every session.
//! `REQUEST_STATE_KEYS` (comma-separated 64-hex-digit keys, the current one first) gives the instances a
//! shared `requestState` key ring; a malformed one stops the server before it serves.

use keel_conformance::fixture;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    // Flushes the spans on the way out.
    let _exporting = keel_conformance::telemetry::from_env("keel-conformance-server")?;
    let server = fixture::server_with_keys(fixture::request_state_keys()?);
    if std::env::args().any(|a| a == "--stdio") {
        server.serve_stdio().await?;
        return Ok(());
    }
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // A one-second grace keeps the whole shutdown within two seconds.
    let mut config = keel_mcp::server::http::HttpConfig::default().shutdown_grace(std::time::Duration::from_secs(1));
    // Redis first (connecting may wait for running instances' claims): the port opens only once the server
    // can answer, so whoever waits for it to listen does not send requests into a backlog nobody serves.
    if let Ok(url) = std::env::var("REDIS_URL") {
        let stores = keel_mcp::server::http::RedisStores::connect(keel_mcp::server::http::RedisConfig::new(url))
            .await
            .map_err(|e| anyhow::anyhow!("REDIS_URL is set but Redis cannot be used: {e}"))?;
        tracing::info!("sharing legacy sessions through Redis");
        config = config.redis(&stores);
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("serving MCP on http://localhost:{port}/mcp");
    server.serve_http_on(listener, config, keel_mcp::server::http::shutdown_signal()).await?;
    Ok(())
}
