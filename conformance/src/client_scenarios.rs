//! The client half of the conformance suite: one function per scenario, each using Keel's public client
//! API the way an application would. The harness runs `conformance-client <url>` with the scenario in
//! `MCP_CONFORMANCE_SCENARIO`, the wire revision in `MCP_CONFORMANCE_PROTOCOL_VERSION` and scenario data in
//! `MCP_CONFORMANCE_CONTEXT`.

use anyhow::{Context as _, bail};
use keel_mcp::client::Client;
use keel_mcp::client::http::HttpTransport;
use keel_mcp::protocol::{CreateMessageResult, ElicitResult, Implementation, ProtocolVersion, Role, SamplingContent};
use serde_json::{Value, json};

/// What the harness told the client.
#[derive(Debug, Clone)]
pub struct Run {
    /// The scenario name.
    pub scenario: String,
    /// The server URL (last argv).
    pub url: String,
    /// The wire revision to speak.
    pub version: ProtocolVersion,
    /// `MCP_CONFORMANCE_CONTEXT`, parsed (`null` when absent).
    pub context: Value,
}

impl Run {
    /// Reads the run from the environment and the arguments.
    pub fn from_env() -> Run {
        let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
        let url = std::env::args().next_back().unwrap_or_default();
        let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
            .map(ProtocolVersion::new)
            .unwrap_or(ProtocolVersion::V2025_11_25);
        let context = std::env::var("MCP_CONFORMANCE_CONTEXT")
            .ok()
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(Value::Null);
        Run { scenario, url, version, context }
    }

    /// The revisions the client may speak: the modern one alone, or the legacy ones up to the wire's.
    fn versions(&self) -> Vec<ProtocolVersion> {
        if self.version.is_modern() {
            vec![self.version.clone()]
        } else {
            ProtocolVersion::ALL.into_iter().filter(|v| !v.is_modern() && *v <= self.version).collect()
        }
    }

    /// Connects the way a typical application would: every client capability has a handler.
    async fn connect(&self) -> anyhow::Result<Client> {
        let transport = HttpTransport::new(&self.url)?;
        let client = Client::builder(Implementation::new("keel-conformance-client", env!("CARGO_PKG_VERSION")))
            .protocol_versions(self.versions())
            // Accept every form with what the user "typed" (nothing): the client fills in schema defaults.
            .on_elicitation(|_| async { Ok(ElicitResult::accept(Some(Default::default()))) })
            .on_sampling(|_| async {
                Ok(CreateMessageResult {
                    role: Role::Assistant,
                    content: SamplingContent::text("ok"),
                    model: "keel-conformance".into(),
                    stop_reason: None,
                    result_type: None,
                    meta: None,
                })
            })
            .roots(Vec::new())
            .connect(transport)
            .await
            .context("connect")?;
        Ok(client)
    }
}

/// Runs one non-auth scenario.
pub async fn run(run: &Run) -> anyhow::Result<()> {
    match run.scenario.as_str() {
        "initialize" | "tools_call" | "tools-call" => basic(run).await,
        "elicitation-sep1034-client-defaults" => call_one(run, "test_client_elicitation_defaults", json!({})).await,
        "sse-retry" => call_one(run, "test_reconnection", json!({})).await,
        "request-metadata" => basic(run).await,
        "sep-2322-client-request-state" => request_state(run).await,
        "http-standard-headers" => standard_headers(run).await,
        "http-custom-headers" => custom_headers(run).await,
        "http-invalid-tool-headers" => invalid_tool_headers(run).await,
        "json-schema-ref-no-deref" => list_only(run).await,
        "json-schema-2020-12-preservation" => schema_echo(run).await,
        "sep-2640-client-no-prefetch" => skills(run, false).await,
        "sep-2640-client-verify-digest" | "sep-2640-client-verify-size" | "sep-2640-client-verify-frontmatter" => {
            skills(run, true).await
        }
        other => bail!("unknown scenario {other:?}"),
    }
}

/// Lists tools and calls `add_numbers` (or the first tool) with two numbers.
async fn basic(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    let tools = client.list_all_tools().await?;
    let tool = tools.iter().find(|t| t.name == "add_numbers").or(tools.first());
    if let Some(tool) = tool {
        let result = client.call_tool(&tool.name, json!({"a": 2, "b": 3})).await?;
        tracing::info!(?result, "called {}", tool.name);
    }
    client.close().await;
    Ok(())
}

async fn call_one(run: &Run, name: &str, arguments: Value) -> anyhow::Result<()> {
    let client = run.connect().await?;
    client.list_all_tools().await?;
    let result = client.call_tool(name, arguments).await;
    client.close().await;
    let result = result?;
    tracing::info!(?result, "called {name}");
    Ok(())
}

async fn list_only(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    let tools = client.list_all_tools().await?;
    tracing::info!(count = tools.len(), "listed tools");
    client.close().await;
    Ok(())
}

/// MRTR: a flow with state, one without, an unrelated call alongside, and a result without `resultType`.
async fn request_state(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    client.list_all_tools().await?;
    let (echo, unrelated) = tokio::join!(
        client.call_tool("test_mrtr_echo_state", json!({})),
        client.call_tool("test_mrtr_unrelated", json!({}))
    );
    echo?;
    unrelated?;
    client.call_tool("test_mrtr_no_state", json!({})).await?;
    client.call_tool("test_mrtr_no_result_type", json!({})).await?;
    client.close().await;
    Ok(())
}

/// Exercises every method that carries standard headers.
async fn standard_headers(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    for tool in client.list_all_tools().await? {
        client.call_tool(&tool.name, json!({})).await.ok();
    }
    for resource in client.list_all_resources().await.unwrap_or_default() {
        client.read_resource(&resource.uri).await.ok();
    }
    for prompt in client.list_all_prompts().await.unwrap_or_default() {
        client.get_prompt(&prompt.name, None).await.ok();
    }
    client.close().await;
    Ok(())
}

/// Makes the calls listed in the context's `toolCalls`.
async fn custom_headers(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    client.list_all_tools().await?;
    let calls = run.context.get("toolCalls").and_then(Value::as_array).cloned().unwrap_or_default();
    for call in calls {
        let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
        let arguments = call.get("arguments").cloned().unwrap_or(Value::Null);
        client.call_tool(name, arguments).await?;
    }
    client.close().await;
    Ok(())
}

/// Lists tools (the client drops those with invalid `x-mcp-header`s) and calls what is left.
async fn invalid_tool_headers(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    for tool in client.list_all_tools().await? {
        let arguments = json!({"region": "us-east"});
        client.call_tool(&tool.name, arguments).await.ok();
    }
    client.close().await;
    Ok(())
}

/// Echoes a rich JSON Schema 2020-12 input schema back verbatim.
async fn schema_echo(run: &Run) -> anyhow::Result<()> {
    let client = run.connect().await?;
    let tools = client.list_all_tools().await?;
    let tool = tools.iter().find(|t| t.name == "json_schema_2020_12_tool").context("json_schema_2020_12_tool")?;
    client.call_tool("json_schema_echo", json!({"schema": tool.input_schema})).await?;
    client.close().await;
    Ok(())
}

/// Skills: list them (fetching nothing); with `load`, load the first one, verifying it first.
async fn skills(run: &Run, load: bool) -> anyhow::Result<()> {
    let client = run.connect().await?;
    let skills = crate::skills_host::list(&client).await?;
    let outcome = match skills.first() {
        Some(skill) if load => crate::skills_host::load(&client, skill).await,
        _ => Ok(()),
    };
    client.close().await;
    outcome
}
