//! The conformance server: Keel's fixture for the official MCP conformance suite.
//!
//! Serves streamable HTTP on `PORT` (default 3000) at `/mcp`; `conformance-server --stdio` serves the
//! same fixture on stdin/stdout. On SIGTERM or SIGINT it shuts down gracefully and exits 0 within 2 s, open
//! streams included.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, it exports its spans (per the MCP semantic conventions) over
//! OTLP http/protobuf to that endpoint; without it, it records nothing.

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
    let server = fixture::server();
    if std::env::args().any(|a| a == "--stdio") {
        server.serve_stdio().await?;
        return Ok(());
    }
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("serving MCP on http://localhost:{port}/mcp");
    // A one-second grace keeps the whole shutdown within two seconds.
    let config = keel_mcp::server::http::HttpConfig::default().shutdown_grace(std::time::Duration::from_secs(1));
    server.serve_http_on(listener, config, termination()).await?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn termination() {
    #[cfg(unix)]
    if let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
