//! The server fixture the conformance suite expects (names and behaviour from the suite's scenarios),
//! written with Keel's public API as a user would write it.

use std::time::Duration;

use keel_mcp::protocol::content::{ContentBlock, ResourceContents};
use keel_mcp::protocol::display::Role;
use keel_mcp::protocol::elicitation::{ElicitParams, ElicitResult, PrimitiveSchema, RequestedSchema};
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::protocol::prompts::PromptMessage;
use keel_mcp::protocol::sampling::{CreateMessageParams, CreateMessageResult};
use keel_mcp::protocol::tools::CallToolResult;
use keel_mcp::protocol::{Implementation, JsonObject};
use keel_mcp::server::{
    HandlerError, NoArgs, PromptDef, RequestContext, ResourceDef, Server, SkillDef, TaskSupport, TemplateDef, ToolDef,
};
use serde_json::{Value, json};

/// A 1×1 PNG.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A few samples of silence as a WAV file.
pub const WAV_BASE64: &str = "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// A form asking for the given `(name, schema)` fields, all listed in `required`.
fn form(message: &str, fields: &[(&str, Value)], required: &[&str]) -> ElicitParams {
    let properties =
        fields.iter().map(|(n, s)| (n.to_string(), PrimitiveSchema::from_object(object(s.clone())))).collect();
    ElicitParams::form(message, RequestedSchema::new(properties, required))
}

fn sampling(text: &str, max_tokens: u64) -> CreateMessageParams {
    serde_json::from_value(json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        "maxTokens": max_tokens
    }))
    .expect("a valid sampling request")
}

fn describe(result: &ElicitResult) -> String {
    format!("action={}, content={}", serde_json::to_value(result.action).unwrap_or_default(), json!(result.content))
}

/// The first text block of a sampling answer, or "".
fn sampled_text(answer: &CreateMessageResult) -> String {
    answer.content.blocks().iter().find_map(|b| b.as_text()).unwrap_or_default().to_owned()
}

/// The text of `field` in an accepted elicitation, or "".
fn field(result: &ElicitResult, name: &str) -> String {
    result.content.as_ref().and_then(|c| c.get(name)).map(|v| json!(v)).map_or(String::new(), |v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct PromptArg {
    /// The prompt to send to the LLM.
    prompt: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct MessageArg {
    /// The message to show the user.
    message: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NameArg {
    /// Who to greet.
    name: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SecondsArg {
    /// How long to work, in seconds (0 answers at once).
    #[serde(default)]
    seconds: f64,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct StreamArgs {
    /// How many progress notifications to send (at most 10,000).
    count: u32,
    /// Ask the user one question right after this many notifications (0: never).
    #[serde(default)]
    ask_after: u32,
}

/// Most progress notifications `test_progress_stream` sends: more than one SSE stream replays (1,024 in memory) is
/// pointless, and a caller must not make the fixture spin forever.
const MAX_STREAMED: u32 = 10_000;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct RegionArgs {
    region: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct TwoArgs {
    /// First test argument.
    arg1: String,
    /// Second test argument.
    arg2: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ResourceArg {
    /// URI of the resource to embed.
    resource_uri: String,
}

/// The schema of `json_schema_2020_12_tool`: 2020-12 keywords that must be published verbatim.
fn rich_schema() -> JsonObject {
    object(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    }))
}

/// The current `requestState` key and the previous ones, still accepted.
pub type KeyRing = ([u8; 32], Vec<[u8; 32]>);

/// The `requestState` key ring from `REQUEST_STATE_KEYS`: comma-separated keys of 64 hex digits, the
/// current one first; `None` when unset (each instance then draws its own key). A malformed ring is an
/// error, never a key of this instance's own: the other instances would refuse every state it seals.
pub fn request_state_keys() -> anyhow::Result<Option<KeyRing>> {
    let Some(text) = std::env::var_os("REQUEST_STATE_KEYS") else { return Ok(None) };
    let malformed = || anyhow::anyhow!("REQUEST_STATE_KEYS must be comma-separated keys of 64 hex digits");
    let text = text.into_string().map_err(|_| malformed())?;
    let parse = |hex: &str| -> Option<[u8; 32]> {
        let hex = hex.trim().as_bytes();
        let mut key = [0u8; 32];
        if hex.len() != 64 {
            return None;
        }
        for (byte, pair) in key.iter_mut().zip(hex.chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(key)
    };
    let keys: Vec<[u8; 32]> = text.split(',').map(parse).collect::<Option<_>>().ok_or_else(malformed)?;
    let (current, previous) = keys.split_first().ok_or_else(malformed)?;
    Ok(Some((*current, previous.to_vec())))
}

/// Builds the conformance server, with each instance's own `requestState` key.
pub fn server() -> Server {
    server_with_keys(None)
}

/// Builds the conformance server; several instances behind a load balancer must share `keys` to open each
/// other's `requestState`.
pub fn server_with_keys(keys: Option<KeyRing>) -> Server {
    let builder = Server::builder(Implementation::new("keel-conformance-server", env!("CARGO_PKG_VERSION")))
        .tool("test_simple_text", "Returns simple text", |_: NoArgs| async {
            "This is a simple text response for testing."
        })
        .tool("test_image_content", "Returns an image", |_: NoArgs| async { ContentBlock::image(PNG_BASE64, "image/png") })
        .tool("test_audio_content", "Returns audio", |_: NoArgs| async { ContentBlock::audio(WAV_BASE64, "audio/wav") })
        .tool("test_embedded_resource", "Returns an embedded resource", |_: NoArgs| async {
            ContentBlock::resource(ResourceContents::text(
                "test://embedded-resource",
                Some("text/plain"),
                "This is an embedded resource content.",
            ))
        })
        .tool("test_multiple_content_types", "Returns text, an image and a resource", |_: NoArgs| async {
            vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_BASE64, "image/png"),
                ContentBlock::resource(ResourceContents::text(
                    "test://mixed-content-resource",
                    Some("application/json"),
                    r#"{"test":"data","value":123}"#,
                )),
            ]
        })
        .tool("test_tool_with_logging", "Logs three messages while it runs", |ctx: RequestContext, _: NoArgs| async move {
            for message in ["Tool execution started", "Tool processing data", "Tool execution completed"] {
                ctx.log(LoggingLevel::Info, Some("conformance"), message).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            "Logging test completed"
        })
        .tool("test_tool_with_progress", "Reports progress", |ctx: RequestContext, _: NoArgs| async move {
            for step in [0.0, 50.0, 100.0] {
                ctx.progress(step, Some(100.0), Some("working")).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            "Progress test completed"
        })
        .tool("test_error_handling", "Always fails", |_: NoArgs| async {
            CallToolResult::error("This tool intentionally returns an error for testing")
        })
        .tool("test_sampling", "Asks the client's model", |ctx: RequestContext, PromptArg { prompt }: PromptArg| async move {
            let answer = ctx.create_message("sample", sampling(&prompt, 100)).await?;
            let text = sampled_text(&answer);
            Ok::<_, HandlerError>(format!("LLM response: {text}"))
        })
        .tool("test_elicitation", "Asks the user", |ctx: RequestContext, MessageArg { message }: MessageArg| async move {
            let fields = [
                ("username", json!({"type": "string", "description": "User's response"})),
                ("email", json!({"type": "string", "description": "User's email address"})),
            ];
            let answer = ctx.elicit("user", form(&message, &fields, &["username", "email"])).await?;
            Ok::<_, HandlerError>(format!("User response: {}", describe(&answer)))
        })
        .tool("test_elicitation_sep1034_defaults", "Asks with defaults for every type", |ctx: RequestContext, _: NoArgs| async move {
            let fields = [
                ("name", json!({"type": "string", "default": "John Doe"})),
                ("age", json!({"type": "integer", "default": 30})),
                ("score", json!({"type": "number", "default": 95.5})),
                ("status", json!({"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"})),
                ("verified", json!({"type": "boolean", "default": true})),
            ];
            let answer = ctx.elicit("defaults", form("Please review your profile", &fields, &[])).await?;
            Ok::<_, HandlerError>(format!("Elicitation completed: {}", describe(&answer)))
        })
        .tool("test_elicitation_sep1330_enums", "Asks with every enum form", |ctx: RequestContext, _: NoArgs| async move {
            let fields = [
                ("untitledSingle", json!({"type": "string", "enum": ["option1", "option2", "option3"]})),
                ("titledSingle", json!({"type": "string", "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"}]})),
                ("legacyEnum", json!({"type": "string", "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]})),
                ("untitledMulti", json!({"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}})),
                ("titledMulti", json!({"type": "array", "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"}]}})),
            ];
            let answer = ctx.elicit("enums", form("Choose your options", &fields, &[])).await?;
            Ok::<_, HandlerError>(format!("Elicitation completed: {}", describe(&answer)))
        })
        .tool_def(
            ToolDef::new("json_schema_2020_12_tool", |_: NoArgs| async { "ok" })
                .description("A tool whose input schema uses JSON Schema 2020-12 keywords")
                .input_schema(rich_schema()),
        )
        .tool("test_reconnection", "Drops its SSE connection mid-call; the result arrives on resumption", |ctx: RequestContext, _: NoArgs| async move {
            ctx.close_sse_stream().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            "Reconnection test completed"
        })
        .tool(
            "test_progress_stream",
            "Sends `count` progress notifications (progress 1..count) and, after `askAfter` of them, asks one question; \
             scale-out/run drops and resumes its stream on other instances",
            |ctx: RequestContext, StreamArgs { count, ask_after }: StreamArgs| async move {
                let count = count.min(MAX_STREAMED);
                let mut answer = String::from("none");
                for step in 1..=count {
                    ctx.progress(f64::from(step), Some(f64::from(count)), None).await;
                    if step == ask_after {
                        let fields = [("answer", json!({"type": "string"}))];
                        let reply = ctx.elicit("question", form("Your answer?", &fields, &["answer"])).await?;
                        answer = field(&reply, "answer");
                    }
                }
                Ok::<_, HandlerError>(format!("sent {count} progress notifications; answer={answer}"))
            },
        )
        .tool_def(
            ToolDef::new("test_custom_header", |args: RegionArgs| async move { format!("region={}", args.region) })
                .description("A tool whose region argument is mirrored into the Mcp-Param-Region header")
                .input_schema(object(json!({
                    "type": "object",
                    "properties": {"region": {"type": "string", "x-mcp-header": "Region", "description": "Where to run"}},
                    "required": ["region"]
                }))),
        )
        .tool("greet", "Greets someone (never a task)", |NameArg { name }: NameArg| async move { format!("Hello, {name}!") })
        .tool_def(
            ToolDef::new("slow_compute", |ctx: RequestContext, SecondsArg { seconds }: SecondsArg| async move {
                if seconds > 0.0 {
                    ctx.continue_as_task().await?;
                    tokio::time::sleep(Duration::from_secs_f64(seconds.min(60.0))).await;
                }
                Ok::<_, HandlerError>(format!("computed for {seconds} seconds"))
            })
            .description("Sleeps, then answers; runs as a task when the client supports tasks")
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            ToolDef::new("failing_job", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                Err::<String, _>(HandlerError::failed("the job failed"))
            })
            .description("Fails after a second, as a tool error")
            .task_support(TaskSupport::Required),
        )
        .tool_def(
            ToolDef::new("protocol_error_job", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err::<String, _>(HandlerError::Protocol(keel_mcp::protocol::ErrorObject::internal("internal failure")))
            })
            .description("Fails with a protocol error")
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            ToolDef::new("confirm_delete", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                let answer = ctx.elicit("confirm", form("Delete everything?", &[("confirm", json!({"type": "boolean"}))], &["confirm"])).await?;
                Ok::<_, HandlerError>(format!("delete confirmed: {}", field(&answer, "confirm")))
            })
            .description("Asks for confirmation inside a task")
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            ToolDef::new("multi_input", |ctx: RequestContext, _: NoArgs| async move {
                ctx.continue_as_task().await?;
                let first = form("First value?", &[("value", json!({"type": "string"}))], &["value"]);
                let second = form("Second value?", &[("value", json!({"type": "string"}))], &["value"]);
                let (a, b) = tokio::join!(ctx.elicit("first", first), ctx.elicit("second", second));
                let (a, b) = (a?, b?);
                Ok::<_, HandlerError>(format!("{} and {}", field(&a, "value"), field(&b, "value")))
            })
            .description("Asks two questions at once inside a task")
            .task_support(TaskSupport::Optional),
        )
        .tool_def(
            ToolDef::new("test_tool_with_task", |ctx: RequestContext, _: NoArgs| async move {
                let answer = ctx.elicit("user_name", form("What is your name?", &[("name", json!({"type": "string"}))], &["name"])).await?;
                ctx.continue_as_task().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, HandlerError>(format!("Hello, {}! Your task is done.", field(&answer, "name")))
            })
            .description("Gathers input, then continues as a task")
            .task_support(TaskSupport::Required),
        )
        .tool("test_missing_capability", "Needs the sampling capability", |ctx: RequestContext, _: NoArgs| async move {
            let answer = ctx.create_message("needs_sampling", sampling("Say hello", 10)).await?;
            let text = sampled_text(&answer);
            Ok::<_, HandlerError>(format!("sampled: {text}"))
        })
        .tool("test_streaming_elicitation", "Streams notifications, then answers", |ctx: RequestContext, _: NoArgs| async move {
            for step in [1.0, 2.0] {
                ctx.progress(step, Some(2.0), Some("streaming")).await;
            }
            ctx.log(LoggingLevel::Info, Some("conformance"), "streaming done").await;
            "streamed"
        })
        .tool("test_logging_tool", "Logs only when asked to", |ctx: RequestContext, _: NoArgs| async move {
            ctx.log(LoggingLevel::Info, Some("conformance"), "a log message").await;
            "logged"
        })
        .tool("test_input_required_result_elicitation", "Asks for a name", |ctx: RequestContext, _: NoArgs| async move {
            let answer = ctx.elicit("user_name", form("What is your name?", &[("name", json!({"type": "string"}))], &["name"])).await?;
            Ok::<_, HandlerError>(format!("Hello, {}!", field(&answer, "name")))
        })
        .tool("test_input_required_result_sampling", "Asks the model a question", |ctx: RequestContext, _: NoArgs| async move {
            let answer = ctx.create_message("capital_question", sampling("What is the capital of France?", 100)).await?;
            let text = sampled_text(&answer);
            Ok::<_, HandlerError>(format!("The model said: {text}"))
        })
        .tool("test_input_required_result_list_roots", "Asks for the roots", |ctx: RequestContext, _: NoArgs| async move {
            let roots = ctx.list_roots("client_roots").await?;
            let uris: Vec<&str> = roots.roots.iter().map(|r| r.uri.as_str()).collect();
            Ok::<_, HandlerError>(format!("Client roots: {}", uris.join(", ")))
        })
        .tool("test_input_required_result_request_state", "Round-trips its state", |ctx: RequestContext, _: NoArgs| async move {
            let state_ok = ctx.input_state() == Some("confirm-pending");
            ctx.set_input_state("confirm-pending");
            let answer = ctx.elicit("confirm", form("Please confirm", &[("ok", json!({"type": "boolean"}))], &["ok"])).await?;
            let verdict = if state_ok { "state-ok" } else { "state-missing" };
            Ok::<_, HandlerError>(format!("{verdict}: confirmed={}", field(&answer, "ok")))
        })
        .tool("test_input_required_result_multiple_inputs", "Asks three things at once", |ctx: RequestContext, _: NoArgs| async move {
            ctx.set_input_state("multiple");
            let name = ctx.elicit("user_name", form("What is your name?", &[("name", json!({"type": "string"}))], &["name"])).await;
            let greeting = ctx.create_message("greeting", sampling("Generate a greeting", 50)).await;
            let roots = ctx.list_roots("client_roots").await;
            let (name, greeting, roots) = (name?, greeting?, roots?);
            let greeting = sampled_text(&greeting);
            Ok::<_, HandlerError>(format!("{greeting} {} ({} roots)", field(&name, "name"), roots.roots.len()))
        })
        .tool("test_input_required_result_multi_round", "Asks in two rounds", |ctx: RequestContext, _: NoArgs| async move {
            let name = match ctx.input_state() {
                Some(state) if state.starts_with("name:") => state["name:".len()..].to_owned(),
                _ => {
                    ctx.set_input_state("round-1");
                    let fields = [("name", json!({"type": "string"}))];
                    let answer = ctx.elicit("step1", form("Step 1: What is your name?", &fields, &["name"])).await?;
                    field(&answer, "name")
                }
            };
            ctx.set_input_state(format!("name:{name}"));
            let fields = [("color", json!({"type": "string"}))];
            let answer = ctx.elicit("step2", form("Step 2: What is your favorite color?", &fields, &["color"])).await?;
            Ok::<_, HandlerError>(format!("{name} likes {}", field(&answer, "color")))
        })
        .tool("test_input_required_result_tampered_state", "Rejects tampered state", |ctx: RequestContext, _: NoArgs| async move {
            ctx.set_input_state("integrity-protected");
            let answer = ctx.elicit("confirm", form("Please confirm", &[("ok", json!({"type": "boolean"}))], &["ok"])).await?;
            Ok::<_, HandlerError>(format!("confirmed={}", field(&answer, "ok")))
        })
        .tool("test_input_required_result_capabilities", "Asks only what the client supports", |ctx: RequestContext, _: NoArgs| async move {
            let caps = ctx.client_capabilities().clone();
            let name = if caps.elicitation.is_some() {
                Some(ctx.elicit("user_name", form("What is your name?", &[("name", json!({"type": "string"}))], &["name"])).await)
            } else {
                None
            };
            let sampled = if caps.sampling.is_some() {
                Some(ctx.create_message("greeting", sampling("Generate a greeting", 50)).await)
            } else {
                None
            };
            let name = name.transpose()?;
            let sampled = sampled.transpose()?;
            Ok::<_, HandlerError>(format!("asked for name: {}, sampled: {}", name.is_some(), sampled.is_some()))
        })
        .resource(
            ResourceDef::text("test://static-text", "static-text", "text/plain", "This is the content of the static text resource.")
                .description("A static text resource"),
        )
        .resource(ResourceDef::blob("test://static-binary", "static-binary", "image/png", PNG_BASE64).description("A static PNG"))
        .resource(
            ResourceDef::text("test://watched-resource", "watched-resource", "text/plain", "A resource clients can watch.")
                .description("A resource that supports subscriptions"),
        )
        .resource_template(
            TemplateDef::new("test://template/{id}/data", "template-data", |_, uri, vars| async move {
                let id = vars.get("id").cloned().unwrap_or_default();
                let body = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                ResourceContents::text(uri, Some("application/json"), body.to_string())
            })
            .description("Data by id")
            .mime_type("application/json"),
        )
        .prompt("test_simple_prompt", "A prompt without arguments", |_: NoArgs| async {
            "This is a simple prompt for testing.".to_owned()
        })
        .prompt("test_prompt_with_arguments", "A prompt with two arguments", |TwoArgs { arg1, arg2 }: TwoArgs| async move {
            format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")
        })
        .prompt("test_prompt_with_embedded_resource", "A prompt embedding a resource", |ResourceArg { resource_uri }: ResourceArg| async move {
            vec![
                PromptMessage {
                    role: Role::User,
                    content: ContentBlock::resource(ResourceContents::text(
                        resource_uri,
                        Some("text/plain"),
                        "Embedded resource content for testing.",
                    )),
                },
                PromptMessage::text(Role::User, "Please process the embedded resource above."),
            ]
        })
        .prompt("test_prompt_with_image", "A prompt with an image", |_: NoArgs| async {
            vec![
                PromptMessage { role: Role::User, content: ContentBlock::image(PNG_BASE64, "image/png") },
                PromptMessage::text(Role::User, "Please analyze the image above."),
            ]
        })
        .prompt_def(
            PromptDef::new("test_input_required_result_prompt", |ctx: RequestContext, _: NoArgs| async move {
                let fields = [("context", json!({"type": "string"}))];
                let answer = ctx.elicit("user_context", form("What context should the prompt use?", &fields, &["context"])).await?;
                Ok::<_, HandlerError>(format!("Use this context: {}", field(&answer, "context")))
            })
            .description("A prompt that asks for context first"),
        )
        .skill(
            SkillDef::new(
                "pdf-processing",
                "Extract text and tables from PDF files and fill in PDF forms.",
                "# PDF processing\n\nRead the form first; see references/FORMS.md for field types.\n",
            )
            .file("references/FORMS.md", "text/markdown", "# Forms\n\nText fields, checkboxes and signatures.\n"),
        )
        .complete_prompt_argument("test_prompt_with_arguments", "arg1", |request| async move {
            ["paris", "park", "party"].into_iter().filter(|v| v.starts_with(&request.value)).map(str::to_owned).collect()
        });
    let builder = match keys {
        Some((current, previous)) => builder.request_state_keys(current, previous),
        None => builder,
    };
    let server_for_triggers = std::sync::Arc::new(std::sync::OnceLock::<Server>::new());
    let (tools_trigger, prompts_trigger) = (server_for_triggers.clone(), server_for_triggers.clone());
    let server = builder
        .tool("test_trigger_tool_change", "Announces a tool list change", move |_: NoArgs| {
            let server = tools_trigger.clone();
            async move {
                if let Some(server) = server.get() {
                    server.set_tool_enabled("test_simple_text", true);
                }
                "tool list change announced"
            }
        })
        .tool("test_trigger_prompt_change", "Announces a prompt list change", move |_: NoArgs| {
            let server = prompts_trigger.clone();
            async move {
                if let Some(server) = server.get() {
                    server.add_prompt(
                        PromptDef::new("test_simple_prompt", |_: NoArgs| async {
                            "This is a simple prompt for testing.".to_owned()
                        })
                        .description("A prompt without arguments"),
                    );
                }
                "prompt list change announced"
            }
        })
        .build();
    let _ = server_for_triggers.set(server.clone());
    server
}
