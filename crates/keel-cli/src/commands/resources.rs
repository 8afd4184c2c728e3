//! `keel resources list|templates|read URI`.

use keel_mcp::protocol::resources::{ListResourceTemplatesParams, ListResourcesParams};
use serde_json::{Value, json};

use crate::args::{ListArgs, ReadArgs};
use crate::commands::list;
use crate::connect;
use crate::error::CliError;
use crate::render;

pub async fn list_resources(args: ListArgs) -> Result<(), CliError> {
    listing(args, "resources", "uri").await
}

pub async fn templates(args: ListArgs) -> Result<(), CliError> {
    listing(args, "resourceTemplates", "uriTemplate").await
}

async fn listing(args: ListArgs, key: &str, name_key: &str) -> Result<(), CliError> {
    let session = connect::open(&args.connect.with_target(args.target)?).await?;
    let listed = list(&session, &args.paging, key, |cursor, options| {
        let client = &session.client;
        let templates = key == "resourceTemplates";
        async move {
            if templates {
                client.request_with(ListResourceTemplatesParams { cursor, meta: None }, options).await.map(to_value)
            } else {
                client.request_with(ListResourcesParams { cursor, meta: None }, options).await.map(to_value)
            }
        }
    })
    .await;
    session.client.close().await;
    let (items, next) = listed?;
    let mut result = json!({ key: items });
    if let Some(next) = &next {
        result["nextCursor"] = json!(next);
    }
    session.output.result(&result, |out| render::listing(out, &items, name_key, next.as_deref()));
    Ok(())
}

fn to_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

pub async fn read(args: ReadArgs) -> Result<(), CliError> {
    let mut positionals = args.positionals;
    let uri = positionals.pop().ok_or_else(|| CliError::usage("missing URI"))?;
    let session = connect::open(&args.connect.with_target(positionals.pop())?).await?;
    let read = session
        .timeouts
        .request(&session.output, |options| async {
            let params = keel_mcp::protocol::ReadResourceParams {
                uri: uri.clone(),
                input_responses: None,
                request_state: None,
                meta: None,
            };
            session.client.call(params, options).await.map_err(CliError::from)
        })
        .await;
    session.client.close().await;
    let result = to_value(read?);
    session.output.result(&result, |out| {
        for contents in result.get("contents").and_then(Value::as_array).into_iter().flatten() {
            render::resource_contents(out, contents);
        }
    });
    Ok(())
}
