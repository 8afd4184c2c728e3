//! Logs into a protected MCP server with the browser flow and calls a tool.
//!
//! ```text
//! cargo run --example oauth_client --features auth -- https://mcp.example.com/mcp [TOOL [JSON_ARGS]]
//! ```
//!
//! The first request gets a 401; Keel discovers the authorization server, registers (CIMD when
//! `KEEL_CLIENT_METADATA_URL` names this client's published metadata document, else dynamic registration),
//! opens the browser at the authorization page and listens on `127.0.0.1` for the redirect. Tokens and
//! registrations are kept in `$KEEL_TOKEN_DIR` (default `./.keel-tokens`, mode 0600 files), so the next run
//! reuses or refreshes them without a browser.
//!
//! With `KEEL_OAUTH_NO_BROWSER=1` no browser is opened: stderr gets the line
//! `Open this URL in your browser to authorize:` followed by the URL alone on the next line, and the
//! loopback listener waits for the callback (a script or another device can open it).

use std::sync::Arc;

use keel_mcp::auth::client::{FileTokenStore, LoopbackRedirect, OAuthClient};
use keel_mcp::client::Client;
use keel_mcp::client::http::HttpTransport;
use keel_mcp::protocol::Implementation;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: oauth_client URL [TOOL [JSON_ARGS]]")?;
    let tool = args.next();
    let arguments: serde_json::Value = match args.next() {
        Some(json) => serde_json::from_str(&json)?,
        None => serde_json::json!({}),
    };

    let store_dir = std::env::var("KEEL_TOKEN_DIR").unwrap_or_else(|_| ".keel-tokens".into());
    let mut redirect = LoopbackRedirect::bind(0).await?;
    if std::env::var("KEEL_OAUTH_NO_BROWSER").is_ok_and(|v| v == "1") {
        // Headless (CI, SSH): stderr gets the prompt line, then the URL alone on the next line.
        redirect = redirect.without_browser();
    }
    let mut oauth = OAuthClient::builder(&url, redirect)
        .client_name("Keel oauth_client example")
        .store(FileTokenStore::new(store_dir));
    if let Ok(cimd) = std::env::var("KEEL_CLIENT_METADATA_URL") {
        oauth = oauth.client_metadata_url(cimd);
    }
    let oauth = oauth.build()?;

    let transport = HttpTransport::new(&url)?.auth(Arc::new(oauth));
    let client = Client::builder(Implementation::new("keel-oauth-example", env!("CARGO_PKG_VERSION")))
        .connect(transport)
        .await?;
    println!("protocol {}", client.protocol_version());
    let tools = client.list_all_tools().await?;
    for t in &tools {
        println!("tool {}", t.name);
    }
    let name = tool.or_else(|| tools.first().map(|t| t.name.clone()));
    if let Some(name) = name {
        let result = client.call_tool(&name, arguments).await?;
        println!("result {}", serde_json::to_string(&result)?);
    }
    client.close().await;
    Ok(())
}
