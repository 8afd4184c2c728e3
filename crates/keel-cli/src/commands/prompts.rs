//! `keel prompts list` and `keel prompts get [URL] NAME [k=v]`.

use std::collections::BTreeMap;
use std::fmt::Write;

use keel_mcp::protocol::GetPromptParams;
use keel_mcp::protocol::prompts::ListPromptsParams;
use serde_json::Value;

use crate::args::{GetPromptArgs, ListArgs};
use crate::commands::{key_values, list_command, to_value};
use crate::connect;
use crate::error::CliError;
use crate::render;

pub async fn list_prompts(args: ListArgs) -> Result<(), CliError> {
    list_command(args, "prompts", "name", |cursor| ListPromptsParams { cursor, meta: None }).await
}

pub async fn get(args: GetPromptArgs) -> Result<(), CliError> {
    let (connect, name, pairs) = args.connect.split_positionals(args.positionals)?;
    let arguments: BTreeMap<String, String> = key_values(&pairs, "prompt argument")?.into_iter().collect();
    let session = connect::open(&connect).await?;
    let params = GetPromptParams {
        name,
        arguments: (!arguments.is_empty()).then_some(arguments),
        input_responses: None,
        request_state: None,
        meta: None,
    };
    let got = session.request(|options| session.client.call(params, options)).await;
    let (output, got) = session.finish(got).await?;
    let result = to_value(got);
    output.result(&result, |out| {
        if let Some(description) = result.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "# {description}");
        }
        for message in result.get("messages").and_then(Value::as_array).into_iter().flatten() {
            let role = message.get("role").and_then(Value::as_str).unwrap_or("?");
            let _ = writeln!(out, "[{role}]");
            let blocks = match message.get("content").cloned().unwrap_or(Value::Null) {
                Value::Array(blocks) => blocks,
                block => vec![block],
            };
            render::content(out, &blocks);
        }
    });
    Ok(())
}
