//! A small MCP server on stdin/stdout. Point any MCP client at it:
//!
//! ```text
//! cargo build --example stdio_server
//! # then configure your client to run target/debug/examples/stdio_server
//! ```
//!
//! It answers both legacy clients (`initialize`) and modern 2026-07-28 clients (`server/discover`).

use keel_mcp::protocol::Implementation;
use keel_mcp::server::{Json, RequestContext, Server};

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
struct Echo {
    /// The text to send back.
    text: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Countdown {
    /// Where to start counting down from (at most 10).
    from: u32,
}

#[tokio::main]
async fn main() -> Result<(), keel_mcp::Error> {
    // Logs go to stderr: stdout belongs to the protocol.
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).init();
    Server::builder(Implementation::new("keel-stdio-example", env!("CARGO_PKG_VERSION")))
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .tool("echo", "Echoes the text back", |Echo { text }: Echo| async move { text })
        .tool(
            "countdown",
            "Counts down, reporting progress",
            |ctx: RequestContext, Countdown { from }: Countdown| async move {
                let from = from.min(10);
                for i in (0..from).rev() {
                    ctx.progress(f64::from(from - i), Some(f64::from(from)), None).await;
                }
                format!("liftoff after {from}")
            },
        )
        .build()
        .serve_stdio()
        .await
}
