//! A small MCP server on streamable HTTP, answering legacy (session) and 2026-07-28 (stateless) clients on
//! one endpoint.
//!
//! ```text
//! cargo run --example http_server            # http://127.0.0.1:3000/mcp
//! PORT=8080 cargo run --example http_server
//! ```
//!
//! Ctrl-C (or SIGTERM) shuts it down gracefully: new requests are refused, calls in flight get a second to
//! finish, open SSE streams end with a reconnection hint, and the process exits within two seconds.

use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::content::ResourceContents;
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{Json, NoArgs, ResourceDef, Server, TemplateDef};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Add {
    /// The first addend.
    a: f64,
    /// The second addend.
    b: f64,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Sum {
    sum: f64,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Topic {
    /// What to write about.
    topic: String,
}

#[tokio::main]
async fn main() -> Result<(), keel_mcp::Error> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let server = Server::builder(Implementation::new("keel-http-example", env!("CARGO_PKG_VERSION")))
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .tool("now", "The server's clock, in seconds since the epoch", |_: NoArgs| async {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            secs.to_string()
        })
        .resource(
            ResourceDef::text("docs://readme", "readme", "text/markdown", "# Hello\nServed by Keel.")
                .description("A greeting"),
        )
        .resource_template(
            TemplateDef::new("notes://{name}", "note", |_, uri, vars| async move {
                let name = vars.get("name").cloned().unwrap_or_default();
                ResourceContents::text(uri, Some("text/plain"), format!("This is the note called {name}."))
            })
            .description("Notes by name"),
        )
        .prompt("essay", "Asks for a short essay", |Topic { topic }: Topic| async move {
            format!("Write a three-sentence essay about {topic}.")
        })
        .build();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("serving MCP on http://{addr}/mcp");
    let config = HttpConfig::default().shutdown_grace(std::time::Duration::from_secs(1));
    server.serve_http_on(listener, config, keel_mcp::server::http::shutdown_signal()).await
}
