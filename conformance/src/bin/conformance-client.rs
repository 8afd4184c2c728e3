//! The conformance client: runs the scenario named in `MCP_CONFORMANCE_SCENARIO` against the server URL
//! given as the last argument, with Keel's public client API.

use std::time::Duration;

use keel_conformance::client_scenarios::{self, Run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,keel_mcp=debug")),
        )
        .init();
    let run = Run::from_env();
    // The harness kills the shell on timeout, which can orphan us; stop on our own first.
    match tokio::time::timeout(Duration::from_secs(25), dispatch(&run)).await {
        Ok(outcome) => outcome,
        Err(_) => anyhow::bail!("scenario {} did not finish within 25 s", run.scenario),
    }
}

async fn dispatch(run: &Run) -> anyhow::Result<()> {
    if run.scenario.starts_with("auth/") {
        let context = (!run.context.is_null()).then(|| run.context.clone());
        return keel_conformance::auth_scenarios::run(&run.scenario, &run.url, context).await;
    }
    client_scenarios::run(run).await
}
