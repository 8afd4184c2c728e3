//! The conformance server: Keel's fixture for the official MCP conformance suite.
//!
//! Serves streamable HTTP on `PORT` (default 3000) at `/mcp`; `conformance-server --stdio` serves the
//! same fixture on stdin/stdout.

use keel_conformance::fixture;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let server = fixture::server();
    if std::env::args().any(|a| a == "--stdio") {
        server.serve_stdio().await?;
        return Ok(());
    }
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    tracing::info!("serving MCP on http://localhost:{port}/mcp");
    server.serve_http(addr, keel_mcp::server::http::HttpConfig::default()).await?;
    Ok(())
}
