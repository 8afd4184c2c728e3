//! `keel info`, `keel ping`, `keel log-level`: the connection itself.

use std::fmt::Write;

use keel_mcp::protocol::lifecycle::{DiscoverParams, PingParams};
use keel_mcp::protocol::logging::LoggingLevel;
use serde_json::{Value, json};

use crate::args::{LogLevelArgs, TargetArgs};
use crate::connect::{self, Session};
use crate::error::CliError;
use crate::render;

/// What `info` reports: who the server is and what was negotiated.
fn describe(session: &Session) -> Value {
    let server = session.client.server();
    json!({
        "serverInfo": server.info,
        "protocolVersion": session.client.protocol_version().as_str(),
        "era": session.era_name(),
        "capabilities": server.capabilities,
        "instructions": server.instructions,
    })
}

pub async fn info(args: TargetArgs) -> Result<(), CliError> {
    let session = connect::open(&args.connect.with_target(args.target)?).await?;
    let result = describe(&session);
    let (output, ()) = session.finish(Ok(())).await?;
    output.result(&result, |out| {
        let info = &result["serverInfo"];
        let _ = writeln!(out, "server: {} {}", render::scalar(&info["name"]), render::scalar(&info["version"]));
        let _ = writeln!(
            out,
            "protocol: {} ({})",
            render::scalar(&result["protocolVersion"]),
            render::scalar(&result["era"])
        );
        let capabilities: Vec<&str> = result["capabilities"]
            .as_object()
            .map(|c| c.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        let _ = writeln!(out, "capabilities: {}", capabilities.join(", "));
        if let Some(instructions) = result["instructions"].as_str() {
            let _ = writeln!(out, "instructions: {instructions}");
        }
    });
    Ok(())
}

pub async fn ping(args: TargetArgs) -> Result<(), CliError> {
    let session = connect::open(&args.connect.with_target(args.target)?).await?;
    let started = std::time::Instant::now();
    // The modern era has no `ping`: a `server/discover` round trip shows the server answers.
    let pinged = if session.era_name() == "legacy" {
        session.request(|options| session.client.request_with(PingParams::default(), options)).await.map(drop)
    } else {
        session.request(|options| session.client.request_with(DiscoverParams::default(), options)).await.map(drop)
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (output, ()) = session.finish(pinged).await?;
    let result = json!({ "ok": true, "ms": elapsed_ms });
    output.result(&result, |out| {
        let _ = writeln!(out, "pong in {elapsed_ms:.1} ms");
    });
    Ok(())
}

/// Parses a log level name.
pub fn parse_level(level: &str) -> Result<LoggingLevel, CliError> {
    serde_json::from_value(json!(level.to_lowercase())).map_err(|_| {
        CliError::usage(format!(
            "log level {level:?}: one of debug, info, notice, warning, error, critical, alert, emergency"
        ))
    })
}

pub async fn log_level(args: LogLevelArgs) -> Result<(), CliError> {
    let mut positionals = args.positionals;
    let level = parse_level(&positionals.pop().unwrap_or_default())?;
    let session = connect::open(&args.connect.with_target(positionals.pop())?).await?;
    // `logging/setLevel` in the legacy era; the modern era has no request for it (the level rides in `_meta`).
    let set = session.request(|_| session.client.set_logging_level(level)).await;
    let (output, ()) = session.finish(set).await?;
    let result = json!({ "level": level });
    output.result(&result, |out| {
        let _ = writeln!(out, "log level set to {}", render::scalar(&result["level"]));
    });
    Ok(())
}
