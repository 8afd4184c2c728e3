//! Prompts: a typed argument struct (its schema lists the prompt's arguments) and the function that
//! expands it into messages.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::context::RequestContext;
use super::error::HandlerError;
use super::tool::schema_of;
use crate::engine::BoxFuture;
use crate::protocol::display::Role;
use crate::protocol::prompts::{GetPromptResult, Prompt, PromptArgument, PromptMessage};

/// Converts what a prompt function returns into its result.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a prompt",
    label = "a prompt returns `String` (one user message), `PromptMessage`, `Vec<PromptMessage>`, \
             `GetPromptResult`, or a `Result` of one of these"
)]
pub trait IntoPromptResult {
    /// The result.
    fn into_prompt_result(self) -> Result<GetPromptResult, HandlerError>;
}

impl IntoPromptResult for GetPromptResult {
    fn into_prompt_result(self) -> Result<GetPromptResult, HandlerError> {
        Ok(self)
    }
}

impl IntoPromptResult for Vec<PromptMessage> {
    fn into_prompt_result(self) -> Result<GetPromptResult, HandlerError> {
        Ok(GetPromptResult { messages: self, ..Default::default() })
    }
}

impl IntoPromptResult for PromptMessage {
    fn into_prompt_result(self) -> Result<GetPromptResult, HandlerError> {
        vec![self].into_prompt_result()
    }
}

/// A single user message.
impl IntoPromptResult for String {
    fn into_prompt_result(self) -> Result<GetPromptResult, HandlerError> {
        PromptMessage::text(Role::User, self).into_prompt_result()
    }
}

impl<T: IntoPromptResult, E: Into<HandlerError>> IntoPromptResult for Result<T, E> {
    fn into_prompt_result(self) -> Result<GetPromptResult, HandlerError> {
        self.map_err(Into::into)?.into_prompt_result()
    }
}

/// A function usable as a prompt: `async fn(Args)` or `async fn(RequestContext, Args)`, where `Args`
/// derives `Deserialize` and `JsonSchema` and has only string fields (prompt arguments are strings).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a prompt handler",
    label = "expected `async fn(Args) -> R` or `async fn(RequestContext, Args) -> R` (in that order)",
    note = "`Args` derives `serde::Deserialize` and `keel_mcp::schemars::JsonSchema` (schemars 1.x) and has \
            only string fields; `R` is `String`, `PromptMessage`, `Vec<PromptMessage>`, `GetPromptResult`, or a \
            `Result` of one"
)]
pub trait PromptHandler<Marker>: Send + Sync + 'static {
    /// The argument struct.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    /// Expands the prompt.
    fn call(&self, ctx: RequestContext, args: Self::Args) -> BoxFuture<Result<GetPromptResult, HandlerError>>;
}

impl<F, A, Fut, R> PromptHandler<(A,)> for F
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    A: DeserializeOwned + JsonSchema + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoPromptResult,
{
    type Args = A;
    fn call(&self, _ctx: RequestContext, args: A) -> BoxFuture<Result<GetPromptResult, HandlerError>> {
        let fut = self(args);
        Box::pin(async move { fut.await.into_prompt_result() })
    }
}

impl<F, A, Fut, R> PromptHandler<(RequestContext, A)> for F
where
    F: Fn(RequestContext, A) -> Fut + Send + Sync + 'static,
    A: DeserializeOwned + JsonSchema + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoPromptResult,
{
    type Args = A;
    fn call(&self, ctx: RequestContext, args: A) -> BoxFuture<Result<GetPromptResult, HandlerError>> {
        let fut = self(ctx, args);
        Box::pin(async move { fut.await.into_prompt_result() })
    }
}

pub(crate) type ErasedPrompt = Arc<
    dyn Fn(RequestContext, BTreeMap<String, String>) -> BoxFuture<Result<GetPromptResult, HandlerError>> + Send + Sync,
>;

/// A prompt with its handler, ready to register.
#[derive(Clone)]
pub struct PromptDef {
    pub(crate) prompt: Prompt,
    pub(crate) get: ErasedPrompt,
    /// OAuth scopes a caller needs (all of them).
    pub(crate) scopes: Vec<String>,
}

impl std::fmt::Debug for PromptDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptDef").field("prompt", &self.prompt).finish_non_exhaustive()
    }
}

impl PromptDef {
    /// A prompt named `name` expanded by `handler`; its arguments come from the handler's argument type.
    pub fn new<M, H: PromptHandler<M>>(name: impl Into<String>, handler: H) -> Self {
        let handler = Arc::new(handler);
        let get: ErasedPrompt = Arc::new(move |ctx, arguments| {
            let value = serde_json::Value::Object(arguments.into_iter().map(|(k, v)| (k, v.into())).collect());
            match serde_json::from_value::<H::Args>(value) {
                Ok(args) => handler.call(ctx, args),
                Err(e) => {
                    Box::pin(std::future::ready(Err(HandlerError::invalid_params(format!("invalid arguments: {e}")))))
                }
            }
        });
        let arguments = arguments_of(&schema_of::<H::Args>());
        let prompt =
            Prompt { name: name.into(), arguments: (!arguments.is_empty()).then_some(arguments), ..Default::default() };
        PromptDef { prompt, get, scopes: Vec::new() }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.prompt.description = Some(description.into());
        self
    }

    /// Requires these OAuth scopes of the caller (all of them): over HTTP, a caller whose token lacks one is
    /// refused with 403 `insufficient_scope` naming every scope needed, and lists leave this prompt out
    /// (see [`auth::resource`](crate::auth::resource)). Requests over stdio, a child process or in memory
    /// carry no token and are not checked.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the display title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.prompt.title = Some(title.into());
        self
    }

    /// Sets icons a client may show.
    pub fn icons(mut self, icons: Vec<crate::protocol::display::Icon>) -> Self {
        self.prompt.icons = Some(icons);
        self
    }

    /// The protocol description.
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }
}

/// The prompt arguments an argument struct's schema describes.
fn arguments_of(schema: &crate::protocol::JsonObject) -> Vec<PromptArgument> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else { return Vec::new() };
    properties
        .iter()
        .map(|(name, property)| PromptArgument {
            name: name.clone(),
            title: property.get("title").and_then(|t| t.as_str()).map(str::to_owned),
            description: property.get("description").and_then(|d| d.as_str()).map(str::to_owned),
            required: Some(required.contains(&name.as_str())),
        })
        .collect()
}
