//! `keel tools list` and `keel tools call NAME [k=string] [k:=json] [--args-json JSON|@file|-]`.
//!
//! Arguments follow httpie: `k=v` is always the string `v`, `k:=v` is the JSON value `v`, so `zip=012` stays
//! `"012"`. Before sending, the arguments are checked against the tool's `inputSchema` (JSON Schema); a
//! mismatch is a usage error (exit 1) and nothing is sent. An unknown tool, or a result with
//! `isError: true`, exits 5.

use std::io::Read;

use keel_mcp::protocol::tools::ListToolsParams;
use serde_json::{Map, Value, json};

use crate::args::{CallArgs, ListArgs};
use crate::commands::{list, list_command, to_value};
use crate::connect::{self, Session};
use crate::error::{CliError, Kind, tool_call_error};
use crate::render;

pub async fn list_tools(args: ListArgs) -> Result<(), CliError> {
    list_command(args, "tools", "name", |cursor| ListToolsParams { cursor, meta: None }).await
}

/// Builds the arguments object from `--args-json` and `k=v` / `k:=json` pairs (pairs win).
pub fn parse_arguments(pairs: &[String], args_json: Option<&str>) -> Result<Map<String, Value>, CliError> {
    let mut arguments = match args_json {
        None => Map::new(),
        Some(source) => {
            let text = match source {
                "-" => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|e| CliError::usage(format!("--args-json -: cannot read stdin: {e}")))?;
                    text
                }
                s if s.starts_with('@') => {
                    std::fs::read_to_string(&s[1..]).map_err(|e| CliError::usage(format!("--args-json {s}: {e}")))?
                }
                s => s.to_owned(),
            };
            match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(CliError::usage("--args-json: expected a JSON object")),
                Err(e) => return Err(CliError::usage(format!("--args-json: invalid JSON: {e}"))),
            }
        }
    };
    for pair in pairs {
        let (key, value) = match (pair.split_once(":="), pair.split_once('=')) {
            // `a:=1` also contains `=`; `:=` wins when it comes first.
            (Some((k, json)), Some((k2, _))) if k.len() <= k2.len() => {
                let value = serde_json::from_str(json)
                    .map_err(|e| CliError::usage(format!("argument {pair:?}: the value after := is not JSON: {e}")))?;
                (k, value)
            }
            (_, Some((k, v))) => (k, Value::String(v.to_owned())),
            _ => return Err(CliError::usage(format!("argument {pair:?}: expected key=string or key:=json"))),
        };
        if key.is_empty() {
            return Err(CliError::usage(format!("argument {pair:?}: empty key")));
        }
        arguments.insert(key.to_owned(), value);
    }
    Ok(arguments)
}

/// Finds `name` among the server's tools (every page) and checks `arguments` against its input schema.
async fn validate(session: &Session, name: &str, arguments: &Map<String, Value>) -> Result<(), CliError> {
    let paging = crate::args::Paging { all_pages: true, cursor: None };
    let (tools, _) = list(session, &paging, "tools", |cursor| ListToolsParams { cursor, meta: None }).await?;
    let tool = tools.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name)).ok_or_else(|| {
        CliError::new(Kind::ToolError, format!("the server has no tool named {name:?}")).with_code("tool_not_found")
    })?;
    let Some(schema) = tool.get("inputSchema") else { return Ok(()) };
    // A schema the validator cannot compile (a remote $ref, a dialect it lacks) is the server's business.
    let Ok(validator) = jsonschema::validator_for(schema) else { return Ok(()) };
    let instance = Value::Object(arguments.clone());
    let problems: Vec<String> = validator
        .iter_errors(&instance)
        .take(10)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(format!("the arguments do not match the input schema of {name:?}: {}", problems.join("; ")))
        .with_code("invalid_arguments")
        .with("problems", json!(problems)))
}

pub async fn call(args: CallArgs) -> Result<(), CliError> {
    let (connect, name, pairs) = args.connect.split_positionals(args.positionals)?;
    let arguments = parse_arguments(&pairs, args.args_json.as_deref())?;
    let session = connect::open(&connect).await?;
    let outcome = async {
        if !args.no_validate {
            validate(&session, &name, &arguments).await?;
        }
        session
            .timeouts
            .request(&session.output, |options| async {
                let arguments = Value::Object(arguments.clone());
                session.client.call_tool_with(&name, arguments, options).await.map_err(|e| tool_call_error(e, &name))
            })
            .await
    }
    .await;
    let (output, outcome) = session.finish(outcome).await?;
    let result = to_value(outcome);
    let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
    output.result(&result, |out| {
        let blocks = result.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        render::content(out, &blocks);
        if blocks.is_empty()
            && let Some(structured) = result.get("structuredContent")
        {
            render::pretty(out, structured);
        }
    });
    if is_error {
        let mut message = String::new();
        let blocks = result.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        render::content(&mut message, &blocks);
        let message = format!("tool {:?} reported an error: {}", name, message.trim_end());
        return Err(CliError::new(Kind::ToolError, message).with_code("tool_error"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_stay_strings_and_json_is_json() {
        let pairs = ["zip=012".to_owned(), "n:=12".to_owned(), "tags:=[\"a\"]".to_owned(), "eq=a=b".to_owned()];
        let args = parse_arguments(&pairs, Some(r#"{"zip": 1, "other": true}"#)).unwrap();
        assert_eq!(Value::Object(args), json!({"zip": "012", "n": 12, "tags": ["a"], "eq": "a=b", "other": true}));
    }

    #[test]
    fn bad_pairs_are_usage_errors() {
        for bad in ["novalue", "=x", "n:=nojson"] {
            let err = parse_arguments(&[bad.to_owned()], None).unwrap_err();
            assert_eq!(err.exit_code(), 1, "{bad}");
        }
        assert_eq!(parse_arguments(&[], Some("[1]")).unwrap_err().exit_code(), 1);
    }
}
