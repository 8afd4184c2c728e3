//! A Keel server mounted in an existing axum app: `/mcp` beside `/health`, a tool that reads a request
//! header and shared state, and a graceful shutdown on Ctrl-C (SIGINT) or SIGTERM that ends open SSE
//! streams (a legacy client's GET stream included) instead of waiting for them.
//!
//! ```text
//! cargo run -p keel-mcp --example axum_app --features http-server
//! curl -s localhost:3000/health
//! curl -s localhost:3000/mcp -H 'content-type: application/json' -H 'accept: application/json' \
//!   -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: whoami' -H 'x-user: ada' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","_meta":{
//!        "io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{HandlerError, Json, NoArgs, RequestContext, Server};

/// What every handler shares: registered once with `ServerBuilder::state`, no clone per closure.
#[derive(Default)]
struct Visits {
    total: AtomicU64,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Greeting {
    /// Who asked (the `x-user` header; "anonymous" without one, or off HTTP).
    user: String,
    /// How many calls this server has answered.
    visit: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder(Implementation::new("axum-app", "1.0.0"))
        .state(Visits::default())
        .tool("whoami", "Greets the caller by the x-user header", |ctx: RequestContext, _: NoArgs| async move {
            let visits = ctx.state::<Visits>()?;
            let user = ctx
                .http_request()
                .and_then(|request| request.headers.get("x-user"))
                .and_then(|value| value.to_str().ok())
                .unwrap_or("anonymous")
                .to_owned();
            let visit = visits.total.fetch_add(1, Ordering::Relaxed) + 1;
            Ok::<_, HandlerError>(Json(Greeting { user, visit }))
        })
        .build();

    // Only loopback Host/Origin values by default (DNS-rebinding protection); list your public names with
    // `HttpConfig::hosts` when the app is reachable under them.
    let mcp = server.http_service(HttpConfig::default());
    let app = Router::new().route("/health", get(|| async { "ok" })).route_service("/mcp", mcp.clone());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("MCP at http://{}/mcp, health at /health", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            keel_mcp::server::http::shutdown_signal().await;
            // Ends open SSE streams (clients are told to reconnect elsewhere), refuses new requests, and
            // resolves once in-flight calls are done (after a grace period, they are cancelled), so axum's
            // graceful shutdown does not wait on a legacy client's GET stream.
            mcp.shutdown().await; // needs `McpService::shutdown` (graceful-shutdown handle)
        })
        .await?;
    Ok(())
}
