//! `keel complete (--prompt NAME | --resource URI_TEMPLATE) --argument NAME=PARTIAL [--context k=v]`.

use serde_json::{Map, Value, json};

use crate::args::CompleteArgs;
use crate::commands::{key_values, to_value};
use crate::connect;
use crate::error::CliError;

pub async fn complete(args: CompleteArgs) -> Result<(), CliError> {
    let (name, value) = args
        .argument
        .split_once('=')
        .ok_or_else(|| CliError::usage(format!("--argument {:?}: expected name=partial", args.argument)))?;
    let reference = match (&args.prompt, &args.resource) {
        (Some(prompt), _) => json!({ "type": "ref/prompt", "name": prompt }),
        (None, Some(uri)) => json!({ "type": "ref/resource", "uri": uri }),
        (None, None) => return Err(CliError::usage("give --prompt NAME or --resource URI_TEMPLATE")),
    };
    let mut params = json!({ "ref": reference, "argument": { "name": name, "value": value } });
    if !args.context.is_empty() {
        let context: Map<String, Value> =
            key_values(&args.context, "--context")?.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        params["context"] = json!({ "arguments": context });
    }
    let params: keel_mcp::protocol::CompleteParams =
        serde_json::from_value(params).map_err(|e| CliError::usage(format!("completion request: {e}")))?;
    let session = connect::open(&args.connect.with_target(args.target)?).await?;
    let completed = session.request(|options| session.client.request_with(params, options)).await;
    let (output, completed) = session.finish(completed).await?;
    let result = to_value(completed);
    output.result(&result, |out| {
        for value in result.pointer("/completion/values").and_then(Value::as_array).into_iter().flatten() {
            out.push_str(value.as_str().unwrap_or_default());
            out.push('\n');
        }
        if result.pointer("/completion/hasMore").and_then(Value::as_bool) == Some(true) {
            out.push_str("(more)\n");
        }
    });
    Ok(())
}
