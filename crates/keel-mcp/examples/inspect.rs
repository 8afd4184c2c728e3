//! Connects to an MCP server — a child process, or a streamable HTTP endpoint — prints what it offers, and
//! optionally calls a tool.
//!
//! ```text
//! cargo run --example inspect -- [--call TOOL JSON_ARGS] -- COMMAND [ARGS...]
//! cargo run --example inspect -- --call add '{"a":1,"b":2}' -- target/debug/examples/stdio_server
//! cargo run --example inspect --features http-client -- [--call TOOL JSON_ARGS] http://localhost:3000/mcp
//! ```
//!
//! Output is one line per item, so scripts can check it.

use keel_mcp::client::Client;
use keel_mcp::protocol::Implementation;
use keel_mcp::transport::ChildProcess;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    const USAGE: &str = "usage: inspect [--call TOOL JSON] (-- COMMAND [ARGS...] | URL)";
    let (options, target) = match args.iter().position(|a| a == "--") {
        Some(split) => (&args[..split], &args[split + 1..]),
        // No `--`: the last argument is a URL.
        None if args.last().is_some_and(|a| a.starts_with("http://") || a.starts_with("https://")) => {
            (&args[..args.len() - 1], &args[args.len() - 1..])
        }
        None => return Err(USAGE.into()),
    };
    let call = match options {
        [flag, tool, json] if flag == "--call" => Some((tool.clone(), serde_json::from_str(json)?)),
        [] => None,
        _ => return Err(USAGE.into()),
    };
    let builder = Client::builder(Implementation::new("keel-inspect", env!("CARGO_PKG_VERSION")));
    let client = match target {
        [url] if url.starts_with("http://") || url.starts_with("https://") => connect_http(builder, url).await?,
        [program, program_args @ ..] => {
            let child = ChildProcess::new(program).args(program_args).spawn()?;
            builder.connect(child).await?
        }
        [] => return Err("no server command given".into()),
    };
    let info = client.server().info.clone().unwrap_or_default();
    println!("server {} {}", info.name, info.version);
    println!("protocol {}", client.protocol_version());
    for tool in client.list_all_tools().await? {
        println!("tool {}", tool.name);
    }
    let capabilities = client.server().capabilities.clone();
    if capabilities.resources.is_some() {
        for resource in client.list_all_resources().await? {
            println!("resource {}", resource.uri);
        }
    }
    if capabilities.prompts.is_some() {
        for prompt in client.list_all_prompts().await? {
            println!("prompt {}", prompt.name);
        }
    }
    if let Some((tool, arguments)) = call {
        let result = client.call_tool(&tool, arguments).await?;
        println!("result {}", serde_json::to_string(&result)?);
    }
    client.close().await;
    Ok(())
}

#[cfg(feature = "http-client")]
async fn connect_http(
    builder: keel_mcp::client::ClientBuilder,
    url: &str,
) -> Result<Client, Box<dyn std::error::Error>> {
    Ok(builder.connect_http(url).await?)
}

#[cfg(not(feature = "http-client"))]
async fn connect_http(
    _builder: keel_mcp::client::ClientBuilder,
    url: &str,
) -> Result<Client, Box<dyn std::error::Error>> {
    Err(format!("{url}: this build has no HTTP client; rebuild with --features http-client").into())
}
