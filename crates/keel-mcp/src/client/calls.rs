//! Typed calls for every client-to-server method, and helpers that follow pagination.

use std::collections::BTreeMap;

use super::Client;
use crate::engine::RequestOptions;
use crate::error::Error;
use crate::protocol::completion::{CompleteParams, CompleteResult};
use crate::protocol::prompts::{GetPromptParams, GetPromptResult, ListPromptsParams, ListPromptsResult, Prompt};
use crate::protocol::resources::{
    ListResourceTemplatesParams, ListResourceTemplatesResult, ListResourcesParams, ListResourcesResult,
    ReadResourceParams, ReadResourceResult, Resource, ResourceTemplate, SubscribeParams, UnsubscribeParams,
};
use crate::protocol::subscriptions::{ListenParams, ListenResult, SubscriptionFilter};
use crate::protocol::tools::{CallToolParams, CallToolResult, ListToolsParams, ListToolsResult, Tool};
use crate::protocol::{Cursor, EmptyResult, JsonObject};

/// Pages followed at most by the `list_all_*` helpers.
const MAX_PAGES: usize = 10_000;

/// Follows `next_cursor` until the last page.
async fn all_pages<T, P, F>(mut fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(Option<Cursor>) -> P,
    P: std::future::Future<Output = Result<(Vec<T>, Option<Cursor>), Error>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let (page, next) = fetch(cursor.take()).await?;
        items.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
    Err(Error::Protocol(format!("the server's list did not end after {MAX_PAGES} pages")))
}

fn arguments_object(arguments: serde_json::Value) -> Result<Option<JsonObject>, Error> {
    match arguments {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Object(map) => Ok(Some(map)),
        _ => Err(Error::Protocol("tool arguments must be a JSON object".into())),
    }
}

impl Client {
    /// One page of tools.
    pub async fn list_tools(&self, cursor: Option<Cursor>) -> Result<ListToolsResult, Error> {
        self.request(ListToolsParams { cursor, meta: None }).await
    }

    /// Every tool, following pagination (bounded to 10,000 pages). Input schemas are kept verbatim;
    /// `$ref`s are never dereferenced.
    pub async fn list_all_tools(&self) -> Result<Vec<Tool>, Error> {
        all_pages(|cursor| async move {
            let page = self.list_tools(cursor).await?;
            Ok((page.tools, page.next_cursor))
        })
        .await
    }

    /// Calls tool `name` with `arguments` (a JSON object, or `null` for none). An input-required result
    /// is answered with the registered handlers and the call retried (see [`Client::call`]).
    pub async fn call_tool(&self, name: &str, arguments: serde_json::Value) -> Result<CallToolResult, Error> {
        self.call_tool_with(name, arguments, RequestOptions::default()).await
    }

    /// [`call_tool`](Client::call_tool) with per-call options: a timeout, a progress callback, a
    /// cancellation token. The timeout applies to each round of an input-required exchange.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use keel_mcp::client::{CancellationToken, Client, RequestOptions};
    ///
    /// # async fn run(client: Client) -> Result<(), keel_mcp::Error> {
    /// let stop = CancellationToken::new();
    /// let options = RequestOptions::default()
    ///     .timeout(Duration::from_secs(30))
    ///     .on_progress(|p| eprintln!("{} / {:?}", p.progress, p.total))
    ///     .cancellation(stop.clone());
    /// // `stop.cancel()` from elsewhere ends the call with `Error::Cancelled`.
    /// let result = client.call_tool_with("export", serde_json::json!({"format": "csv"}), options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: serde_json::Value,
        options: RequestOptions,
    ) -> Result<CallToolResult, Error> {
        self.call(CallToolParams::new(name, arguments_object(arguments)?), options).await
    }

    /// One page of resources.
    pub async fn list_resources(&self, cursor: Option<Cursor>) -> Result<ListResourcesResult, Error> {
        self.request(ListResourcesParams { cursor, meta: None }).await
    }

    /// Every resource, following pagination.
    pub async fn list_all_resources(&self) -> Result<Vec<Resource>, Error> {
        all_pages(|cursor| async move {
            let page = self.list_resources(cursor).await?;
            Ok((page.resources, page.next_cursor))
        })
        .await
    }

    /// One page of resource templates.
    pub async fn list_resource_templates(&self, cursor: Option<Cursor>) -> Result<ListResourceTemplatesResult, Error> {
        self.request(ListResourceTemplatesParams { cursor, meta: None }).await
    }

    /// Every resource template, following pagination.
    pub async fn list_all_resource_templates(&self) -> Result<Vec<ResourceTemplate>, Error> {
        all_pages(|cursor| async move {
            let page = self.list_resource_templates(cursor).await?;
            Ok((page.resource_templates, page.next_cursor))
        })
        .await
    }

    /// Reads the resource at `uri` (answering input requests if the server asks).
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, Error> {
        let params = ReadResourceParams { uri: uri.to_owned(), input_responses: None, request_state: None, meta: None };
        self.call(params, RequestOptions::default()).await
    }

    /// Subscribes to changes of the resource at `uri` (legacy era; the modern era uses [`Client::listen`]).
    pub async fn subscribe(&self, uri: &str) -> Result<(), Error> {
        let _: EmptyResult = self.request(SubscribeParams { uri: uri.to_owned(), meta: None }).await?;
        Ok(())
    }

    /// Ends a subscription made with [`Client::subscribe`].
    pub async fn unsubscribe(&self, uri: &str) -> Result<(), Error> {
        let _: EmptyResult = self.request(UnsubscribeParams { uri: uri.to_owned(), meta: None }).await?;
        Ok(())
    }

    /// One page of prompts.
    pub async fn list_prompts(&self, cursor: Option<Cursor>) -> Result<ListPromptsResult, Error> {
        self.request(ListPromptsParams { cursor, meta: None }).await
    }

    /// Every prompt, following pagination.
    pub async fn list_all_prompts(&self) -> Result<Vec<Prompt>, Error> {
        all_pages(|cursor| async move {
            let page = self.list_prompts(cursor).await?;
            Ok((page.prompts, page.next_cursor))
        })
        .await
    }

    /// Gets prompt `name` filled with `arguments` (answering input requests if the server asks).
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<BTreeMap<String, String>>,
    ) -> Result<GetPromptResult, Error> {
        let params = GetPromptParams {
            name: name.to_owned(),
            arguments,
            input_responses: None,
            request_state: None,
            meta: None,
        };
        self.call(params, RequestOptions::default()).await
    }

    /// Asks for completions of a prompt argument or resource-template variable.
    pub async fn complete(&self, params: CompleteParams) -> Result<CompleteResult, Error> {
        self.request(params).await
    }

    /// Modern era: opens a `subscriptions/listen` stream for the notifications `filter` opts into. They
    /// reach the [`on_notification`](super::ClientBuilder::on_notification) handler; the call returns when
    /// the server ends the stream, or fails when `options` cancels it or its timeout passes.
    pub async fn listen(&self, filter: SubscriptionFilter, options: RequestOptions) -> Result<ListenResult, Error> {
        self.request_with(ListenParams { notifications: filter, meta: None }, options).await
    }
}
