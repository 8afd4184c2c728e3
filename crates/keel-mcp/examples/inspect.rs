//! Connects to an MCP server started as a child process, prints what it offers, and optionally calls a
//! tool.
//!
//! ```text
//! cargo run --example inspect -- [--call TOOL JSON_ARGS] -- COMMAND [ARGS...]
//! cargo run --example inspect -- --call add '{"a":1,"b":2}' -- target/debug/examples/stdio_server
//! ```
//!
//! Output is one line per item, so scripts can check it.

use keel_mcp::client::Client;
use keel_mcp::protocol::Implementation;
use keel_mcp::transport::ChildProcess;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").ok_or("usage: inspect [--call TOOL JSON] -- COMMAND [ARGS...]")?;
    let (options, command) = (&args[..split], &args[split + 1..]);
    let call = match options {
        [flag, tool, json] if flag == "--call" => Some((tool.clone(), serde_json::from_str(json)?)),
        [] => None,
        _ => return Err("usage: inspect [--call TOOL JSON] -- COMMAND [ARGS...]".into()),
    };
    let (program, program_args) = command.split_first().ok_or("no server command given")?;

    let child = ChildProcess::new(program).args(program_args).spawn()?;
    let client = Client::builder(Implementation::new("keel-inspect", env!("CARGO_PKG_VERSION"))).connect(child).await?;
    let info = client.server().info.clone().unwrap_or_default();
    println!("server {} {}", info.name, info.version);
    println!("protocol {}", client.protocol_version());
    for tool in client.list_all_tools().await? {
        println!("tool {}", tool.name);
    }
    if let Some((tool, arguments)) = call {
        let result = client.call_tool(&tool, arguments).await?;
        println!("result {}", serde_json::to_string(&result)?);
    }
    client.close().await;
    Ok(())
}
