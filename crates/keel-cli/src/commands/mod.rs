//! One module per command group. Each connects through [`crate::connect`], runs its requests under the
//! [`Timeouts`](crate::timeouts::Timeouts), prints through [`Output`](crate::output::Output), and closes.

pub mod auth;
pub mod complete;
pub mod completions;
pub mod prompts;
pub mod resources;
pub mod server;
pub mod tools;

use std::future::Future;

use serde_json::Value;

use crate::args::Paging;
use crate::connect::Session;
use crate::error::CliError;

/// Pages followed at most with --all-pages (a server that never ends its list cannot hold the CLI).
const MAX_PAGES: usize = 1_000;

/// A list: one page (from --cursor or the start), or every page with --all-pages. Returns the items and
/// the cursor of the next page, if any.
pub async fn list<Fut>(
    session: &Session,
    paging: &Paging,
    key: &str,
    fetch: impl Fn(Option<String>, keel_mcp::client::RequestOptions) -> Fut,
) -> Result<(Vec<Value>, Option<String>), CliError>
where
    Fut: Future<Output = Result<Value, keel_mcp::Error>>,
{
    let mut items = Vec::new();
    let mut cursor = paging.cursor.clone();
    for _ in 0..MAX_PAGES {
        let page = session
            .timeouts
            .request(&session.output, |options| async { fetch(cursor.take(), options).await.map_err(CliError::from) })
            .await?;
        if let Some(Value::Array(page_items)) = page.get(key) {
            items.extend(page_items.iter().cloned());
        }
        let next = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        match next {
            Some(next) if paging.all_pages => cursor = Some(next),
            next => return Ok((items, next)),
        }
    }
    Err(CliError::new(crate::error::Kind::Protocol, format!("the server's list did not end after {MAX_PAGES} pages")))
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
