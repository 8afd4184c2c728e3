//! Operation middleware: an audit log around every call, a timeout on one slow tool, a rate limit on an
//! expensive one, tools only admins see — and, on the client, a layer that tags and retries requests. The
//! server and the client talk in memory, so this runs on its own:
//!
//! ```text
//! cargo run --example middleware --features http-server
//! ```

use std::time::{Duration, Instant};

use keel_mcp::Error;
use keel_mcp::client::Client;
use keel_mcp::client::middleware::{self as client_middleware, Outgoing};
use keel_mcp::middleware::from_fn;
use keel_mcp::protocol::Implementation;
use keel_mcp::server::middleware::{Next, Operation};
use keel_mcp::server::visibility::{Target, Viewer};
use keel_mcp::server::{NoArgs, RequestContext, Server, ToolDef};
use keel_mcp::transport::memory;
use serde_json::json;

fn server() -> Server {
    // One line per operation: who called what, how it ended, how long it took.
    let audit = from_fn(|op: Operation, next: Next| async move {
        let who = op.principal().and_then(|p| p.subject.clone()).unwrap_or_else(|| "anonymous".into());
        let tenant = op.meta().and_then(|m| m.other.get("example.com/tenant")).cloned();
        let (method, target, started) = (op.method(), op.target().to_owned(), Instant::now());
        let reply = next.run(op).await;
        let outcome = match &reply {
            Ok(_) => "ok".to_owned(),
            Err(error) => format!("failed ({error})"),
        };
        println!("audit: {who} (tenant {tenant:?}) {method} {target}: {outcome} in {:?}", started.elapsed());
        reply
    });
    // At most 2 s for this tool; its handler sees its cancellation fire and may clean up.
    let report = ToolDef::new("report", |ctx: RequestContext, _: NoArgs| async move {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => "the full report",
            _ = ctx.cancellation().cancelled() => {
                println!("report: cancelled, cleaning up");
                "never sent"
            }
        }
    })
    .description("Builds a report (slowly)")
    .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)));
    // Two calls per second for the whole server, however many clients ask.
    let search = ToolDef::new("search", |_: NoArgs| async { "three results" })
        .description("An expensive search")
        .layer(tower::limit::RateLimitLayer::new(2, Duration::from_secs(1)));
    Server::builder(Implementation::new("middleware-demo", env!("CARGO_PKG_VERSION")))
        .layer(audit)
        .tool_def(report)
        .tool_def(search)
        .tool("admin_reset", "Resets everything", |_: NoArgs| async { "reset" })
        // `admin_*` tools exist only for callers whose token grants `admin` (an authorization layer in
        // front of the HTTP service supplies the principal; this in-memory client has none).
        .visibility(|viewer: &Viewer<'_>, target: Target<'_>| {
            !target.name().starts_with("admin_") || viewer.principal().is_some_and(|p| p.has_scope("admin"))
        })
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (server_side, client_side) = memory::pair();
    let _running = server().serve(server_side);
    // The client tags every request with its tenant and retries what the transport lost.
    let tag_and_retry = from_fn(|mut request: Outgoing, next: client_middleware::Next| async move {
        request.meta_mut().insert("example.com/tenant".into(), "acme".into());
        let mut attempts = 0;
        loop {
            attempts += 1;
            match next.clone().run(request.clone()).await {
                Err(Error::Transport(_)) if attempts < 3 => continue,
                other => return other,
            }
        }
    });
    let client = Client::builder(Implementation::new("middleware-demo-client", env!("CARGO_PKG_VERSION")))
        .layer(tag_and_retry)
        .connect(client_side)
        .await?;

    let tools = client.list_all_tools().await?;
    println!("tools: {:?}", tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>());
    let hidden = client.call_tool("admin_reset", json!({})).await;
    println!("admin_reset: {}", hidden.map_or_else(|e| e.to_string(), |r| format!("{:?}", r.content)));

    let report = client.call_tool("report", json!({})).await?;
    println!("report: {:?} (error: {})", report.content[0].as_text(), report.is_error());

    let started = Instant::now();
    for _ in 0..4 {
        client.call_tool("search", json!({})).await?;
    }
    println!("4 searches took {:?} (two per second)", started.elapsed());
    client.close().await;
    Ok(())
}
