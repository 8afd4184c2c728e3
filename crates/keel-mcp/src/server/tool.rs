//! Typed tools: an async function of a `Deserialize + JsonSchema` argument struct, its input schema
//! generated once by schemars, and the conversions from what the function returns to a `CallToolResult`.

use std::future::Future;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::context::RequestContext;
use super::error::HandlerError;
use crate::engine::BoxFuture;
use crate::protocol::content::ContentBlock;
use crate::protocol::tools::{CallToolResult, Tool, ToolAnnotations};
use crate::protocol::{ErrorObject, JsonObject};

/// Arguments of a tool that takes none. (Its input schema is `{"type": "object"}`: the root description
/// of an argument type, this sentence included, is not published.)
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, JsonSchema)]
pub struct NoArgs {}

/// Structured tool output: serialized into `structuredContent` and, for older clients, as JSON text.
///
/// A tool that returns `Json<T>` (or `Result<Json<T>, E>`) publishes `T`'s JSON Schema as its
/// `outputSchema`, so `T` derives `Serialize` and `JsonSchema`, and must be a JSON object (a struct or a
/// map; `structuredContent` is an object): registering a tool whose `T` is a list or a number panics. A
/// client decodes it back with
/// [`CallToolResult::into_typed`](crate::protocol::tools::CallToolResult::into_typed).
#[derive(Clone, Debug)]
pub struct Json<T>(pub T);

/// Converts what a tool function returns into its result.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a tool",
    label = "a tool returns `String`, `&'static str`, `Json<T>` (T: Serialize + JsonSchema), `ContentBlock`, \
             `Vec<ContentBlock>`, `CallToolResult`, or a `Result` of one of these",
    note = "wrap structured output in `keel_mcp::server::Json(..)`, and anything else in `.to_string()`"
)]
pub trait IntoToolResult {
    /// The result, or why there is none.
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError>;

    /// The output schema a tool returning this type publishes (`Json<T>`: `T`'s; others: none).
    fn output_schema() -> Option<JsonObject>
    where
        Self: Sized,
    {
        None
    }
}

impl IntoToolResult for CallToolResult {
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        Ok(self)
    }
}

impl IntoToolResult for String {
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        Ok(CallToolResult::text(self))
    }
}

impl IntoToolResult for &'static str {
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        Ok(CallToolResult::text(self))
    }
}

impl IntoToolResult for ContentBlock {
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        Ok(CallToolResult::success(vec![self]))
    }
}

impl IntoToolResult for Vec<ContentBlock> {
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        Ok(CallToolResult::success(self))
    }
}

impl<T: Serialize + JsonSchema> IntoToolResult for Json<T> {
    fn output_schema() -> Option<JsonObject> {
        let schema = schema_of::<T>();
        // MCP wants `"type": "object"` at the root of an output schema; one without a root type (an enum's
        // `oneOf`) is not published rather than published wrong.
        schema.contains_key("type").then_some(schema)
    }

    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        let value = serde_json::to_value(&self.0)
            .map_err(|e| HandlerError::failed(format!("the tool's output could not be encoded: {e}")))?;
        Ok(CallToolResult {
            content: vec![ContentBlock::text(value.to_string())],
            structured_content: Some(value),
            ..Default::default()
        })
    }
}

/// `Err` from a tool reaches the model as a tool error (`isError: true`) unless it is a protocol error or a
/// request for input.
impl<T: IntoToolResult, E: Into<HandlerError>> IntoToolResult for Result<T, E> {
    fn into_tool_result(self) -> Result<CallToolResult, HandlerError> {
        self.map_err(Into::into)?.into_tool_result()
    }

    fn output_schema() -> Option<JsonObject> {
        T::output_schema()
    }
}

/// A function usable as a tool handler. Implemented for `async fn(Args)` and
/// `async fn(RequestContext, Args)`; `Marker` only tells the two apart. See
/// [`ServerBuilder::tool`](super::ServerBuilder::tool) for the accepted argument and return types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tool handler",
    label = "expected `async fn(Args) -> R` or `async fn(RequestContext, Args) -> R` (in that order)",
    note = "`Args` derives `serde::Deserialize` and `keel_mcp::schemars::JsonSchema` (schemars 1.x; use \
            `keel_mcp::schemars` if your crate depends on another major) and is a struct; use `NoArgs` for none",
    note = "`R` is `String`, `&'static str`, `Json<T>`, `ContentBlock`, `Vec<ContentBlock>`, `CallToolResult`, \
            or a `Result<_, E>` of one where `E` converts into `HandlerError` (any `std::error::Error + Send + \
            Sync`, `anyhow::Error`, `Box<dyn Error + Send + Sync>`)",
    note = "the closure and its future must be `Send + 'static`: move what it captures (`move |..| async move`)"
)]
pub trait ToolHandler<Marker>: Send + Sync + 'static {
    /// The argument struct.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    /// Runs the tool.
    fn call(&self, ctx: RequestContext, args: Self::Args) -> BoxFuture<Result<CallToolResult, HandlerError>>;
    /// The output schema the handler's return type publishes ([`Json<T>`]).
    fn output_schema() -> Option<JsonObject>
    where
        Self: Sized,
    {
        None
    }
}

impl<F, A, Fut, R> ToolHandler<(A,)> for F
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    A: DeserializeOwned + JsonSchema + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoToolResult,
{
    type Args = A;
    fn call(&self, _ctx: RequestContext, args: A) -> BoxFuture<Result<CallToolResult, HandlerError>> {
        let fut = self(args);
        Box::pin(async move { fut.await.into_tool_result() })
    }
    fn output_schema() -> Option<JsonObject> {
        R::output_schema()
    }
}

impl<F, A, Fut, R> ToolHandler<(RequestContext, A)> for F
where
    F: Fn(RequestContext, A) -> Fut + Send + Sync + 'static,
    A: DeserializeOwned + JsonSchema + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoToolResult,
{
    type Args = A;
    fn call(&self, ctx: RequestContext, args: A) -> BoxFuture<Result<CallToolResult, HandlerError>> {
        let fut = self(ctx, args);
        Box::pin(async move { fut.await.into_tool_result() })
    }
    fn output_schema() -> Option<JsonObject> {
        R::output_schema()
    }
}

/// A type-erased tool: decodes raw arguments and runs the handler.
pub(crate) type ErasedTool =
    Arc<dyn Fn(RequestContext, Option<&RawValue>) -> BoxFuture<Result<CallToolResult, HandlerError>> + Send + Sync>;

/// A tool definition with its handler, ready to register.
#[derive(Clone)]
pub struct ToolDef {
    pub(crate) tool: Tool,
    pub(crate) run: ErasedTool,
    /// Arguments mirrored into `Mcp-Param-*` headers, read once from the input schema.
    pub(crate) header_params: Vec<super::header_params::HeaderParam>,
    /// OAuth scopes a caller needs (all of them).
    pub(crate) scopes: Vec<String>,
    #[cfg(feature = "tasks")]
    pub(crate) task_support: super::tasks::TaskSupport,
    #[cfg(feature = "schema-validation")]
    pub(crate) validators: Option<super::validation::ToolValidators>,
}

impl ToolDef {
    /// Why `arguments` do not fit the input schema (SEP-1303: a tool error the model can act on).
    #[cfg(feature = "schema-validation")]
    pub(crate) fn invalid_arguments(&self, arguments: Option<&RawValue>) -> Option<String> {
        let validators = self.validators.as_ref()?;
        let arguments = match arguments {
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
            None => serde_json::Value::Object(JsonObject::new()),
        };
        validators.check_arguments(&arguments)
    }

    /// Without `schema-validation`, arguments are the handler's to check.
    #[cfg(not(feature = "schema-validation"))]
    pub(crate) fn invalid_arguments(&self, _arguments: Option<&RawValue>) -> Option<String> {
        None
    }

    /// Refuses a successful result whose structured content does not fit the output schema.
    #[cfg(feature = "schema-validation")]
    pub(crate) fn check_output(&self, result: &CallToolResult) -> Result<(), ErrorObject> {
        match &self.validators {
            Some(validators) if !result.is_error() => validators.check_output(result.structured_content.as_ref()),
            _ => Ok(()),
        }
    }

    /// Without `schema-validation`, results go out as the handler made them.
    #[cfg(not(feature = "schema-validation"))]
    pub(crate) fn check_output(&self, _result: &CallToolResult) -> Result<(), ErrorObject> {
        Ok(())
    }
}

impl std::fmt::Debug for ToolDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolDef").field("tool", &self.tool).finish_non_exhaustive()
    }
}

impl ToolDef {
    /// A tool named `name` run by `handler`; its input schema comes from the handler's argument type, and
    /// its output schema from a [`Json<T>`] return type.
    ///
    /// # Panics
    /// When the argument type's schema is not a JSON object (MCP requires `"type": "object"`: the
    /// arguments are a struct, a map or [`NoArgs`], never a bare number, string or list), or when a
    /// `Json<T>` output is not an object. Both are mistakes in the source, caught at startup rather than
    /// on every call.
    pub fn new<M, H: ToolHandler<M>>(name: impl Into<String>, handler: H) -> Self {
        let name = name.into();
        let input_schema = schema_of::<H::Args>();
        if let Some(found) = not_an_object(&input_schema) {
            panic!(
                "tool `{name}`: its argument type `{}` has a JSON Schema of type {found}, but MCP tool arguments \
                 must be a JSON object; take a struct deriving `Deserialize` and `JsonSchema` (or `NoArgs`)",
                std::any::type_name::<H::Args>()
            );
        }
        let output_schema = H::output_schema();
        if let Some(found) = output_schema.as_ref().and_then(not_an_object) {
            panic!(
                "tool `{name}`: it returns `Json<T>` where T's JSON Schema has type {found}, but \
                 `structuredContent` must be a JSON object; wrap the value in a struct"
            );
        }
        let handler = Arc::new(handler);
        let run: ErasedTool = Arc::new(move |ctx, raw| {
            let text = raw.map_or("{}", RawValue::get);
            let text = if text == "null" { "{}" } else { text };
            match serde_json::from_str::<H::Args>(text) {
                Ok(args) => handler.call(ctx, args),
                // SEP-1303: invalid arguments are the model's to fix, so they come back as a tool error.
                Err(e) => Box::pin(std::future::ready(Ok(CallToolResult::error(format!("invalid arguments: {e}"))))),
            }
        });
        ToolDef {
            #[cfg(feature = "schema-validation")]
            validators: None,
            #[cfg(feature = "tasks")]
            task_support: super::tasks::TaskSupport::Forbidden,
            header_params: super::header_params::declared(&input_schema),
            scopes: Vec::new(),
            tool: Tool {
                name,
                title: None,
                description: None,
                input_schema,
                output_schema,
                annotations: None,
                execution: None,
                icons: None,
                meta: None,
            },
            run,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.tool.description = Some(description.into());
        self
    }

    /// Sets the display title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.tool.title = Some(title.into());
        self
    }

    /// Sets icons a client may show.
    pub fn icons(mut self, icons: Vec<crate::protocol::display::Icon>) -> Self {
        self.tool.icons = Some(icons);
        self
    }

    /// Sets behaviour hints.
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.tool.annotations = Some(annotations);
        self
    }

    /// Requires these OAuth scopes of the caller (all of them): over HTTP, a caller whose token lacks one is
    /// refused with 403 `insufficient_scope` naming every scope needed, and lists leave this tool out
    /// (see [`auth::resource`](crate::auth::resource)). Requests over stdio, a child process or in memory
    /// carry no token and are not checked.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Lets the tool run as a task (tasks extension); the handler decides when with
    /// [`RequestContext::continue_as_task`].
    #[cfg(feature = "tasks")]
    pub fn task_support(mut self, support: super::tasks::TaskSupport) -> Self {
        self.task_support = support;
        self
    }

    /// Declares the output schema from the type of the structured output.
    pub fn output<T: JsonSchema>(mut self) -> Self {
        self.tool.output_schema = Some(schema_of::<T>());
        self
    }

    /// Sets the output schema (kept verbatim); structured results must match it.
    pub fn output_schema(mut self, schema: JsonObject) -> Self {
        self.tool.output_schema = Some(schema);
        self
    }

    /// Replaces the generated input schema (kept verbatim).
    pub fn input_schema(mut self, schema: JsonObject) -> Self {
        self.header_params = super::header_params::declared(&schema);
        self.tool.input_schema = schema;
        self
    }

    /// Compiles the validators of the final schemas (when the registry takes the tool).
    pub(crate) fn seal(self) -> Self {
        #[cfg(feature = "schema-validation")]
        {
            let mut this = self;
            this.validators =
                Some(super::validation::ToolValidators::new(&this.tool.input_schema, this.tool.output_schema.as_ref()));
            this
        }
        #[cfg(not(feature = "schema-validation"))]
        self
    }

    /// The protocol description of this tool.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }
}

/// The JSON Schema (2020-12) of `T` as an object. MCP requires input schemas to be objects with
/// `"type": "object"`; schemars emits exactly that for structs.
pub(crate) fn schema_of<T: JsonSchema>() -> JsonObject {
    let schema = schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    match schema.to_value() {
        serde_json::Value::Object(mut map) => {
            // The title is the Rust type name and the description the type's doc comment: noise for a
            // model, which reads the tool's own description.
            map.remove("title");
            map.remove("description");
            map
        }
        _ => {
            let mut map = JsonObject::new();
            map.insert("type".into(), "object".into());
            map
        }
    }
}

/// The root type of a schema that declares one other than `object`. A schema without a root `type` (an
/// enum's `oneOf`) may describe objects and is let through.
fn not_an_object(schema: &JsonObject) -> Option<String> {
    let declared = schema.get("type")?;
    let is_object = match declared {
        serde_json::Value::String(t) => t == "object",
        // `Option<Args>` is `["object", "null"]`: an object when present.
        serde_json::Value::Array(types) => types.iter().any(|t| t == "object"),
        _ => false,
    };
    (!is_object).then(|| declared.to_string())
}

/// Why a tool call failed before the tool ran.
pub(crate) fn unknown_tool(name: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("unknown tool: {name}"))
}
