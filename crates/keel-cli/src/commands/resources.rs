//! `keel resources list|templates|read URI`.

use keel_mcp::protocol::ReadResourceParams;
use keel_mcp::protocol::resources::{ListResourceTemplatesParams, ListResourcesParams};
use serde_json::Value;

use crate::args::{ListArgs, ReadArgs};
use crate::commands::{list_command, to_value};
use crate::connect;
use crate::error::CliError;
use crate::render;

pub async fn list_resources(args: ListArgs) -> Result<(), CliError> {
    list_command(args, "resources", "uri", |cursor| ListResourcesParams { cursor, meta: None }).await
}

pub async fn templates(args: ListArgs) -> Result<(), CliError> {
    list_command(args, "resourceTemplates", "uriTemplate", |cursor| ListResourceTemplatesParams { cursor, meta: None })
        .await
}

pub async fn read(args: ReadArgs) -> Result<(), CliError> {
    let mut positionals = args.positionals;
    let uri = positionals.pop().ok_or_else(|| CliError::usage("missing URI"))?;
    let session = connect::open(&args.connect.with_target(positionals.pop())?).await?;
    let params = ReadResourceParams { uri, input_responses: None, request_state: None, meta: None };
    // `call`: the server may ask for input (elicitation, sampling, roots) before it answers.
    let read = session.request(|options| session.client.call(params, options)).await;
    let (output, read) = session.finish(read).await?;
    let result = to_value(read);
    output.result(&result, |out| {
        for contents in result.get("contents").and_then(Value::as_array).into_iter().flatten() {
            render::resource_contents(out, contents);
        }
    });
    Ok(())
}
