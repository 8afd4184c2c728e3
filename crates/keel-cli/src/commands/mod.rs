//! One module per command group. Each connects through [`crate::connect`], runs its requests under the
//! [`Timeouts`](crate::timeouts::Timeouts), prints through [`Output`](crate::output::Output), and closes.

pub mod auth;
pub mod complete;
pub mod completions;
pub mod prompts;
pub mod resources;
pub mod server;
pub mod tools;

use keel_mcp::protocol::Request;
use serde_json::{Value, json};

use crate::args::{ListArgs, Paging};
use crate::connect::{self, Session};
use crate::error::CliError;
use crate::render;

/// Pages followed at most with --all-pages (a server that never ends its list cannot hold the CLI).
const MAX_PAGES: usize = 1_000;

/// A value as JSON (results are printed and inspected as JSON).
pub fn to_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A list: one page (from --cursor or the start), or every page with --all-pages. `page` builds the
/// request for a cursor; `key` names the result's array. Returns the items and the next page's cursor.
pub async fn list<P: Request>(
    session: &Session,
    paging: &Paging,
    key: &str,
    page: impl Fn(Option<String>) -> P,
) -> Result<(Vec<Value>, Option<String>), CliError> {
    let mut items = Vec::new();
    let mut cursor = paging.cursor.clone();
    for _ in 0..MAX_PAGES {
        let params = page(cursor.take());
        let result = session.request(|options| session.client.request_with(params, options)).await?;
        let mut result = to_value(result);
        if let Some(Value::Array(page_items)) = result.get_mut(key).map(Value::take) {
            items.extend(page_items);
        }
        let next = result.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        match next {
            Some(next) if paging.all_pages => cursor = Some(next),
            next => return Ok((items, next)),
        }
    }
    Err(CliError::new(crate::error::Kind::Protocol, format!("the server's list did not end after {MAX_PAGES} pages")))
}

/// `keel tools|resources|prompts list` and `keel resources templates`: lists, prints `name_key` and the
/// description of each item in text, `{key: […], nextCursor?}` in JSON.
pub async fn list_command<P: Request>(
    args: ListArgs,
    key: &str,
    name_key: &str,
    page: impl Fn(Option<String>) -> P,
) -> Result<(), CliError> {
    let session = connect::open(&args.connect.with_target(args.target)?).await?;
    let listed = list(&session, &args.paging, key, page).await;
    let (output, (items, next)) = session.finish(listed).await?;
    let mut result = json!({ key: items });
    if let Some(next) = &next {
        result["nextCursor"] = json!(next);
    }
    output.result(&result, |out| render::listing(out, &items, name_key, next.as_deref()));
    Ok(())
}

/// Parses `key=value` pairs.
pub fn key_values(pairs: &[String], what: &str) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::usage(format!("{what} {pair:?}: expected key=value")))
        })
        .collect()
}
