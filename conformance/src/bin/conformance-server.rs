//! The conformance server: Keel's fixture for the official MCP conformance suite.
//!
//! `conformance-server --stdio` serves it on stdin/stdout. Without `--stdio` it is meant to serve
//! streamable HTTP on `PORT` at `/mcp`, which needs the HTTP server transport.

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
    anyhow::bail!("streamable HTTP serving is not built yet; use --stdio")
}
