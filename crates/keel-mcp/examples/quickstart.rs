//! Keel in one minute: starts an MCP server as a child process (this same program, with `--serve`), talks
//! to it over stdio, lists its tools, calls them, and prints what happened.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use keel_mcp::client::Client;
use keel_mcp::protocol::Implementation;
use keel_mcp::server::{Json, Server};
use keel_mcp::transport::ChildProcess;
use serde_json::json;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Add {
    /// The first addend.
    a: f64,
    /// The second addend.
    b: f64,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Sum {
    sum: f64,
}

/// The server side: two tools, served on stdin/stdout.
async fn serve() -> Result<(), keel_mcp::Error> {
    Server::builder(Implementation::new("quickstart-server", env!("CARGO_PKG_VERSION")))
        .instructions("A tiny calculator and greeter.")
        .tool("add", "Adds two numbers", |Add { a, b }: Add| async move { Json(Sum { sum: a + b }) })
        .tool("greet", "Greets someone by name", |Greet { name }: Greet| async move { format!("Hello, {name}!") })
        .build()
        .serve_stdio()
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--serve") {
        return Ok(serve().await?);
    }

    let me = std::env::current_exe()?;
    println!("starting the server: {} --serve", me.display());
    let child = ChildProcess::new(me).arg("--serve").spawn()?;
    let client =
        Client::builder(Implementation::new("quickstart-client", env!("CARGO_PKG_VERSION"))).connect(child).await?;

    let server = client.server().info.as_ref().map_or("?", |i| i.name.as_str()).to_owned();
    println!("connected to {server}, protocol {} ({:?} era)", client.protocol_version(), client.era());

    for tool in client.list_all_tools().await? {
        println!("tool {:<6} {}", tool.name, tool.description.as_deref().unwrap_or(""));
    }

    let sum = client.call_tool("add", json!({"a": 2, "b": 3})).await?;
    println!("add(2, 3)       -> {}", sum.structured_content.unwrap_or_default());
    let hello = client.call_tool("greet", json!({"name": "Keel"})).await?;
    println!("greet(\"Keel\")   -> {}", hello.content[0].as_text().unwrap_or_default());
    let bad = client.call_tool("add", json!({"a": "two"})).await?;
    println!("add(\"two\")      -> tool error: {}", bad.content[0].as_text().unwrap_or_default());

    client.close().await;
    println!("server stopped; done");
    Ok(())
}
