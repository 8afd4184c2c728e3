//! `keel prompts list` and `keel prompts get NAME [k=v]`.

use std::collections::BTreeMap;
use std::fmt::Write;

use keel_mcp::protocol::GetPromptParams;
use keel_mcp::protocol::prompts::ListPromptsParams;
use serde_json::{Value, json};

use crate::args::{GetPromptArgs, ListArgs};
use crate::commands::{key_values, list};
use crate::connect;
use crate::error::CliError;
use crate::render;

fn to_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

pub async fn list_prompts(args: ListArgs) -> Result<(), CliError> {
    let session = connect::open(&args.connect.with_target(args.target)?).await?;
    let listed = list(&session, &args.paging, "prompts", |cursor, options| {
        let client = &session.client;
        async move { client.request_with(ListPromptsParams { cursor, meta: None }, options).await.map(to_value) }
    })
    .await;
    session.client.close().await;
    let (prompts, next) = listed?;
    let mut result = json!({ "prompts": prompts });
    if let Some(next) = &next {
        result["nextCursor"] = json!(next);
    }
    session.output.result(&result, |out| render::listing(out, &prompts, "name", next.as_deref()));
    Ok(())
}

pub async fn get(args: GetPromptArgs) -> Result<(), CliError> {
    let (connect, name, pairs) = args.connect.split_positionals(args.positionals)?;
    let arguments: BTreeMap<String, String> = key_values(&pairs, "prompt argument")?.into_iter().collect();
    let session = connect::open(&connect).await?;
    let got = session
        .timeouts
        .request(&session.output, |options| async {
            let params = GetPromptParams {
                name: name.clone(),
                arguments: (!arguments.is_empty()).then(|| arguments.clone()),
                input_responses: None,
                request_state: None,
                meta: None,
            };
            session.client.call(params, options).await.map_err(CliError::from)
        })
        .await;
    session.client.close().await;
    let result = to_value(got?);
    session.output.result(&result, |out| {
        if let Some(description) = result.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "# {description}");
        }
        for message in result.get("messages").and_then(Value::as_array).into_iter().flatten() {
            let role = message.get("role").and_then(Value::as_str).unwrap_or("?");
            let _ = writeln!(out, "[{role}]");
            let content = message.get("content").cloned().unwrap_or(Value::Null);
            let blocks = match content {
                Value::Array(blocks) => blocks,
                block => vec![block],
            };
            render::content(out, &blocks);
        }
    });
    Ok(())
}
