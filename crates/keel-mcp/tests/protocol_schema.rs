//! Messages built with Keel's types validate against each revision's official `schema.json`, and every
//! re-encoded 2026-07-28 example validates against its `$defs` type.

mod schema_support;

use std::collections::{BTreeMap, HashMap};

use keel_mcp::protocol::capabilities::{
    ElicitationCapability, ListChangedCapability, ResourcesCapability, RootsCapability, SamplingCapability,
    extension_ids,
};
use keel_mcp::protocol::completion::{
    CompleteParams, CompleteResult, Completion, CompletionArgument, CompletionContext, CompletionReference,
    PromptReference, ResourceTemplateReference,
};
use keel_mcp::protocol::content::EmbeddedResource;
use keel_mcp::protocol::display::{Icon, Role};
use keel_mcp::protocol::elicitation::{
    BooleanSchema, ElicitParams, ElicitResult, ElicitValue, ElicitationCompleteParams, EnumOption,
    LegacyTitledEnumSchema, NumberSchema, PrimitiveSchema, RequestedSchema, SchemaType, StringFormat, StringSchema,
    TitledEnumItems, TitledMultiSelectEnumSchema, TitledSingleSelectEnumSchema, UntitledEnumItems,
    UntitledMultiSelectEnumSchema, UntitledSingleSelectEnumSchema, UrlElicitationRequiredData,
};
use keel_mcp::protocol::jsonrpc::{self, ErrorObject, RequestId, code};
use keel_mcp::protocol::lifecycle::{DiscoverParams, DiscoverResult, InitializeParams, InitializeResult};
use keel_mcp::protocol::mrtr::{InputRequest, InputRequiredResult};
use keel_mcp::protocol::progress::ProgressParams;
use keel_mcp::protocol::prompts::{
    GetPromptParams, GetPromptResult, ListPromptsResult, Prompt, PromptArgument, PromptMessage,
};
use keel_mcp::protocol::resources::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceParams, ReadResourceResult, Resource,
    ResourceListChangedParams, ResourceTemplate, ResourceUpdatedParams, SubscribeParams, UnsubscribeParams,
};
use keel_mcp::protocol::roots::{ListRootsParams, ListRootsResult, Root, RootsListChangedParams};
use keel_mcp::protocol::sampling::{
    CreateMessageParams, CreateMessageResult, IncludeContext, ModelHint, ModelPreferences, SamplingContent,
    SamplingContentBlock, SamplingMessage, StopReason, ToolChoice, ToolChoiceMode, ToolResultContent, ToolUseContent,
};
use keel_mcp::protocol::subscriptions::{
    ListenParams, ListenResult, SubscriptionFilter, SubscriptionsAcknowledgedParams, subscription_meta,
};
use keel_mcp::protocol::tasks::TaskStatus;
use keel_mcp::protocol::tasks::legacy;
use keel_mcp::protocol::tools::{CallToolParams, CallToolResult, ListToolsResult, Tool};
use keel_mcp::protocol::{
    CacheScope, CancelledParams, ClientCapabilities, ContentBlock, Implementation, JsonObject, Notification,
    ProtocolVersion, Request, RequestMeta, ResourceContents, ResultType, ServerCapabilities, meta,
};
use schema_support::{EXAMPLES_REVISION, assert_valid, example_types, read_json, schema_dir, validate};
use serde::Serialize;
use serde_json::{Value, json};

fn value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

fn request<P: Request>(params: &P) -> Value {
    serde_json::from_slice(&jsonrpc::encode_request(&RequestId::Number(1), P::METHOD, params).unwrap()).unwrap()
}

fn notification<P: Notification>(params: &P) -> Value {
    serde_json::from_slice(&jsonrpc::encode_notification(P::METHOD, Some(params)).unwrap()).unwrap()
}

fn response<R: Serialize>(result: &R) -> Value {
    serde_json::from_slice(&jsonrpc::encode_result(&RequestId::from("r-1"), result).unwrap()).unwrap()
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        other => panic!("not an object: {other}"),
    }
}

fn client() -> Implementation {
    Implementation::new("keel-test-client", "0.1.0")
}

/// The `_meta` every 2026-07-28 request carries.
fn modern_meta() -> Option<RequestMeta> {
    Some(RequestMeta {
        protocol_version: Some(ProtocolVersion::V2026_07_28),
        client_capabilities: Some(ClientCapabilities::default()),
        client_info: Some(client()),
        ..Default::default()
    })
}

/// A result `_meta` with the server's identity.
fn server_info_meta() -> Option<JsonObject> {
    Some(object(json!({meta::keys::SERVER_INFO: {"name": "keel-test-server", "version": "0.1.0"}})))
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        title: Some("Weather".into()),
        description: Some("Current weather for a city".into()),
        input_schema: object(
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ),
        output_schema: None,
        annotations: None,
        execution: None,
        icons: None,
        meta: None,
    }
}

#[test]
fn every_reencoded_example_matches_its_definition() {
    let Some(dir) = schema_dir() else { return };
    let examples = dir.join(EXAMPLES_REVISION).join("examples");
    let mut failures = Vec::new();
    for (name, round_trip) in example_types::table() {
        for file in std::fs::read_dir(examples.join(name)).unwrap() {
            let path = file.unwrap().path();
            let encoded = match round_trip(&read_json(&path)) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            if let Err(e) = validate(EXAMPLES_REVISION, name, &encoded) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn validation_rejects_what_the_schema_forbids() {
    if schema_dir().is_none() {
        return;
    }
    // 2026-07-28 list results must carry cache hints and resultType; a legacy-shaped result does not pass.
    let legacy_shaped = ListToolsResult { tools: vec![weather_tool()], ..Default::default() };
    assert!(validate("2026-07-28", "ListToolsResult", &value(&legacy_shaped)).is_err());
    assert!(validate("2025-06-18", "ListToolsResult", &value(&legacy_shaped)).is_ok());
    assert!(validate("2026-07-28", "NoSuchDefinition", &json!({})).is_err());
}

#[test]
fn initialize_in_every_legacy_revision() {
    for revision in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let v = ProtocolVersion::new(revision);
        let mut capabilities = ClientCapabilities {
            roots: Some(RootsCapability { list_changed: Some(true) }),
            sampling: Some(SamplingCapability::default()),
            ..Default::default()
        };
        let mut client_info = client();
        let mut server_caps = ServerCapabilities {
            logging: Some(JsonObject::new()),
            prompts: Some(ListChangedCapability { list_changed: Some(true) }),
            resources: Some(ResourcesCapability { list_changed: Some(true), subscribe: Some(true) }),
            tools: Some(ListChangedCapability { list_changed: Some(false) }),
            ..Default::default()
        };
        if v >= ProtocolVersion::V2025_03_26 {
            server_caps.completions = Some(JsonObject::new());
        }
        if v >= ProtocolVersion::V2025_06_18 {
            capabilities.elicitation = Some(ElicitationCapability::default());
            client_info.title = Some("Keel test client".into());
        }
        if v >= ProtocolVersion::V2025_11_25 {
            capabilities.elicitation =
                Some(ElicitationCapability { form: Some(JsonObject::new()), url: Some(JsonObject::new()) });
            capabilities.sampling =
                Some(SamplingCapability { context: Some(JsonObject::new()), tools: Some(JsonObject::new()) });
            capabilities.tasks =
                Some(object(json!({"list": {}, "cancel": {}, "requests": {"sampling": {"createMessage": {}}}})));
            server_caps.tasks = Some(object(json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})));
            client_info.description = Some("Exercises the schema".into());
            client_info.website_url = Some("https://example.com".into());
            client_info.icons = Some(vec![Icon {
                src: "https://example.com/icon.png".into(),
                mime_type: Some("image/png".into()),
                sizes: Some(vec!["48x48".into()]),
                theme: None,
            }]);
        }
        let params = InitializeParams { protocol_version: v.clone(), capabilities, client_info, meta: None };
        assert_valid(revision, "InitializeRequest", &request(&params));
        let result = InitializeResult {
            protocol_version: v,
            capabilities: server_caps,
            server_info: Implementation::new("keel-test-server", "0.1.0"),
            instructions: Some("Use get_weather for forecasts.".into()),
            result_type: None,
            meta: None,
        };
        assert_valid(revision, "InitializeResult", &value(&result));
    }
}

#[test]
fn discover_with_extensions() {
    let params = DiscoverParams { meta: modern_meta() };
    assert_valid("2026-07-28", "DiscoverRequest", &request(&params));
    let mut extensions = BTreeMap::new();
    extensions.insert(extension_ids::TASKS.to_owned(), JsonObject::new());
    extensions.insert(extension_ids::SKILLS.to_owned(), object(json!({"directoryRead": true})));
    let result = DiscoverResult {
        supported_versions: vec![ProtocolVersion::V2026_07_28, ProtocolVersion::V2025_11_25],
        capabilities: ServerCapabilities {
            tools: Some(ListChangedCapability::default()),
            resources: Some(ResourcesCapability::default()),
            extensions: Some(extensions),
            ..Default::default()
        },
        instructions: None,
        ttl_ms: Some(3_600_000),
        cache_scope: Some(CacheScope::Public),
        result_type: Some(ResultType::Complete),
        meta: server_info_meta(),
    };
    assert_valid("2026-07-28", "DiscoverResultResponse", &response(&result));
}

#[test]
fn tools_at_2026_07_28() {
    let mut call = CallToolParams::new("get_weather", Some(object(json!({"city": "Paris"}))));
    call.meta = modern_meta();
    assert_valid("2026-07-28", "CallToolRequest", &request(&call));

    let list = ListToolsResult {
        tools: vec![weather_tool()],
        next_cursor: Some("page-2".into()),
        ttl_ms: Some(300_000),
        cache_scope: Some(CacheScope::Public),
        result_type: Some(ResultType::Complete),
        meta: server_info_meta(),
    };
    assert_valid("2026-07-28", "ListToolsResult", &value(&list));
    assert_valid("2026-07-28", "ListToolsResultResponse", &response(&list));

    let mut result = CallToolResult::text("18°C, partly cloudy");
    result.structured_content = Some(json!({"temperature": 18}));
    result.result_type = Some(ResultType::Complete);
    assert_valid("2026-07-28", "CallToolResult", &value(&result));
    assert_valid("2026-07-28", "CallToolResultResponse", &response(&result));
    let error = CallToolResult { result_type: Some(ResultType::Complete), ..CallToolResult::error("bad city") };
    assert_valid("2026-07-28", "CallToolResult", &value(&error));
}

#[test]
fn multi_round_trip_at_2026_07_28() {
    let schema =
        RequestedSchema::new(vec![("confirm".into(), PrimitiveSchema::Boolean(BooleanSchema::new()))], &["confirm"]);
    let requests = BTreeMap::from([
        ("confirm".to_owned(), InputRequest::Elicit(ElicitParams::form("Delete it?", schema))),
        ("login".to_owned(), InputRequest::Elicit(ElicitParams::url("Sign in", "https://example.com/login", None))),
        (
            "summary".to_owned(),
            InputRequest::CreateMessage(CreateMessageParams {
                messages: vec![SamplingMessage::user_text("Summarise")],
                max_tokens: 200,
                ..Default::default()
            }),
        ),
        ("roots".to_owned(), InputRequest::ListRoots(None)),
    ]);
    for request in requests.values() {
        let def = match request {
            InputRequest::Elicit(_) => "ElicitRequest",
            InputRequest::CreateMessage(_) => "CreateMessageRequest",
            InputRequest::ListRoots(_) => "ListRootsRequest",
            InputRequest::Other { .. } => unreachable!(),
        };
        assert_valid("2026-07-28", def, &value(request));
    }
    let result = InputRequiredResult::new(Some(requests), Some("opaque-state".into()));
    assert_valid("2026-07-28", "InputRequiredResult", &value(&result));
    assert_valid("2026-07-28", "InputRequiredResult", &value(&InputRequiredResult::new(None, Some("s".into()))));

    let responses = object(json!({
        "confirm": value(&ElicitResult::accept(Some(BTreeMap::from([("confirm".into(), ElicitValue::Boolean(true))])))),
        "roots": value(&ListRootsResult { roots: vec![Root::new("file:///repo", None)], ..Default::default() }),
    }));
    let mut retry = CallToolParams::new("delete", None);
    retry.input_responses = Some(responses.clone());
    retry.request_state = Some("opaque-state".into());
    retry.meta = modern_meta();
    assert_valid("2026-07-28", "CallToolRequest", &request(&retry));
    let get = GetPromptParams {
        input_responses: Some(responses.clone()),
        request_state: Some("s".into()),
        meta: modern_meta(),
        ..GetPromptParams::new("review", Some(BTreeMap::from([("code".into(), "fn main() {}".into())])))
    };
    assert_valid("2026-07-28", "GetPromptRequest", &request(&get));
    let read = ReadResourceParams {
        input_responses: Some(responses),
        request_state: Some("s".into()),
        meta: modern_meta(),
        ..ReadResourceParams::new("file:///repo/README.md")
    };
    assert_valid("2026-07-28", "ReadResourceRequest", &request(&read));
}

fn tool_use(id: &str, city: &str) -> SamplingContentBlock {
    SamplingContentBlock::ToolUse(ToolUseContent {
        id: id.into(),
        name: "get_weather".into(),
        input: object(json!({"city": city})),
        meta: None,
    })
}

#[test]
fn sampling_in_each_generation() {
    let classic = CreateMessageParams {
        messages: vec![SamplingMessage::user_text("What is the capital of France?")],
        model_preferences: Some(ModelPreferences {
            hints: Some(vec![ModelHint { name: Some("claude".into()) }]),
            cost_priority: Some(0.3),
            speed_priority: Some(1.0),
            intelligence_priority: Some(0.5),
        }),
        system_prompt: Some("Be brief.".into()),
        include_context: Some(IncludeContext::ThisServer),
        temperature: Some(0.7),
        max_tokens: 100,
        stop_sequences: Some(vec!["\n\n".into()]),
        metadata: Some(object(json!({"provider": "x"}))),
        ..Default::default()
    };
    let answer = CreateMessageResult {
        role: Role::Assistant,
        content: SamplingContent::text("Paris."),
        model: "claude-3-sonnet".into(),
        stop_reason: Some(StopReason::EndTurn),
        result_type: None,
        meta: None,
    };
    for revision in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        assert_valid(revision, "CreateMessageRequest", &request(&classic));
        assert_valid(revision, "CreateMessageResult", &value(&answer));
    }

    let with_tools = CreateMessageParams {
        messages: vec![
            SamplingMessage::user_text("Weather in Paris and London?"),
            SamplingMessage {
                role: Role::Assistant,
                content: SamplingContent::Multiple(vec![tool_use("c1", "Paris"), tool_use("c2", "London")]),
                meta: None,
            },
            SamplingMessage {
                role: Role::User,
                content: SamplingContent::Multiple(vec![SamplingContentBlock::ToolResult(ToolResultContent {
                    tool_use_id: "c1".into(),
                    content: vec![ContentBlock::text("18°C")],
                    structured_content: Some(json!({"celsius": 18})),
                    is_error: Some(false),
                    meta: None,
                })]),
                meta: None,
            },
        ],
        tools: Some(vec![weather_tool()]),
        tool_choice: Some(ToolChoice { mode: Some(ToolChoiceMode::Auto) }),
        task: Some(legacy::TaskMetadata { ttl: Some(60_000) }),
        max_tokens: 1000,
        ..Default::default()
    };
    assert_valid("2025-11-25", "CreateMessageRequest", &request(&with_tools));
    let wants_tools = CreateMessageResult {
        content: SamplingContent::Multiple(vec![tool_use("c3", "Rome")]),
        stop_reason: Some(StopReason::ToolUse),
        ..answer.clone()
    };
    assert_valid("2025-11-25", "CreateMessageResult", &value(&wants_tools));
    let modern = CreateMessageParams { task: None, ..with_tools };
    assert_valid("2026-07-28", "CreateMessageRequest", &value(&InputRequest::CreateMessage(modern)));
    assert_valid("2026-07-28", "CreateMessageResult", &value(&wants_tools));
}

fn legacy_form() -> RequestedSchema {
    let mut email = StringSchema::new();
    email.format = Some(StringFormat::Email);
    email.title = Some("Email".into());
    let mut age = NumberSchema::new(true);
    age.minimum = Some(18.0);
    let colour = LegacyTitledEnumSchema {
        schema_type: SchemaType::String,
        title: Some("Colour".into()),
        description: None,
        values: vec!["#f00".into(), "#0f0".into()],
        enum_names: Some(vec!["Red".into(), "Green".into()]),
        default: None,
    };
    RequestedSchema::new(
        vec![
            ("email".into(), PrimitiveSchema::String(email)),
            ("age".into(), PrimitiveSchema::Number(age)),
            ("subscribe".into(), PrimitiveSchema::Boolean(BooleanSchema::new())),
            ("colour".into(), PrimitiveSchema::LegacyTitledEnum(colour)),
        ],
        &["email"],
    )
}

fn option(value: &str, title: &str) -> EnumOption {
    EnumOption { value: value.into(), title: title.into() }
}

fn sep_1330_form() -> RequestedSchema {
    let mut name = StringSchema::new();
    name.default = Some("John Doe".into());
    let mut score = NumberSchema::new(false);
    score.default = Some(95.5);
    let mut verified = BooleanSchema::new();
    verified.default = Some(true);
    RequestedSchema::new(
        vec![
            ("name".into(), PrimitiveSchema::String(name)),
            ("score".into(), PrimitiveSchema::Number(score)),
            ("verified".into(), PrimitiveSchema::Boolean(verified)),
            (
                "status".into(),
                PrimitiveSchema::UntitledSingleSelect(UntitledSingleSelectEnumSchema {
                    schema_type: SchemaType::String,
                    title: None,
                    description: None,
                    values: vec!["active".into(), "inactive".into()],
                    default: Some("active".into()),
                }),
            ),
            (
                "colour".into(),
                PrimitiveSchema::TitledSingleSelect(TitledSingleSelectEnumSchema {
                    schema_type: SchemaType::String,
                    title: Some("Colour".into()),
                    description: None,
                    one_of: vec![option("#f00", "Red"), option("#0f0", "Green")],
                    default: Some("#f00".into()),
                }),
            ),
            (
                "tags".into(),
                PrimitiveSchema::UntitledMultiSelect(UntitledMultiSelectEnumSchema {
                    schema_type: SchemaType::Array,
                    title: None,
                    description: None,
                    min_items: Some(1),
                    max_items: None,
                    items: UntitledEnumItems { schema_type: SchemaType::String, values: vec!["a".into(), "b".into()] },
                    default: Some(vec!["a".into()]),
                }),
            ),
            (
                "sizes".into(),
                PrimitiveSchema::TitledMultiSelect(TitledMultiSelectEnumSchema {
                    schema_type: SchemaType::Array,
                    title: None,
                    description: None,
                    min_items: None,
                    max_items: Some(2),
                    items: TitledEnumItems { any_of: vec![option("s", "Small"), option("l", "Large")] },
                    default: None,
                }),
            ),
        ],
        &["name"],
    )
}

#[test]
fn elicitation_in_each_generation() {
    let legacy_params = ElicitParams { mode: None, ..ElicitParams::form("Your details", legacy_form()) };
    assert_valid("2025-06-18", "ElicitRequest", &request(&legacy_params));
    let answer = ElicitResult::accept(Some(BTreeMap::from([
        ("email".into(), ElicitValue::from("a@example.com")),
        ("age".into(), ElicitValue::Integer(30)),
        ("subscribe".into(), ElicitValue::Boolean(false)),
    ])));
    assert_valid("2025-06-18", "ElicitResult", &value(&answer));
    assert_valid("2025-06-18", "ElicitResult", &value(&ElicitResult::decline()));

    let form = ElicitParams::form("Your profile", sep_1330_form());
    let url = ElicitParams::url("Connect your account", "https://example.com/connect", Some("el-1".into()));
    for (revision, params) in [("2025-11-25", &form), ("2025-11-25", &url), ("2025-11-25", &legacy_params)] {
        assert_valid(revision, "ElicitRequest", &request(params));
    }
    let mut content = BTreeMap::new();
    sep_1330_form().apply_defaults(&mut content);
    // The answer schema admits integers but not fractional numbers, although a number field may default to
    // one (95.5 here); Keel keeps whatever the form says, so drop that answer before validating.
    assert_eq!(content.remove("score"), Some(ElicitValue::Number(95.5)));
    assert_valid("2025-11-25", "ElicitResult", &value(&ElicitResult::accept(Some(content))));
    assert_valid("2025-11-25", "ElicitResult", &value(&ElicitResult::accept(None)));
    let done = ElicitationCompleteParams { elicitation_id: "el-1".into(), meta: None };
    assert_valid("2025-11-25", "ElicitationCompleteNotification", &notification(&done));
    let data = UrlElicitationRequiredData { elicitations: vec![url.clone()] };
    let error = ErrorObject::new(code::URL_ELICITATION_REQUIRED, "connect first").with_data(value(&data));
    let error: Value = serde_json::from_slice(&jsonrpc::encode_error(Some(&RequestId::Number(3)), &error)).unwrap();
    assert_valid("2025-11-25", "URLElicitationRequiredError", &error);

    let modern_url = ElicitParams::url("Connect your account", "https://example.com/connect", None);
    for params in [form, modern_url] {
        assert_valid("2026-07-28", "ElicitRequest", &value(&InputRequest::Elicit(params)));
    }
}

#[test]
fn roots_progress_and_cancellation() {
    let roots = ListRootsResult {
        roots: vec![Root::new("file:///home/u/repo", Some("Repo".into())), Root::new("file:///tmp", None)],
        ..Default::default()
    };
    for revision in ["2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28"] {
        assert_valid(revision, "ListRootsResult", &value(&roots));
    }
    for revision in ["2024-11-05", "2025-11-25"] {
        assert_valid(revision, "ListRootsRequest", &request(&ListRootsParams::default()));
        assert_valid(revision, "RootsListChangedNotification", &notification(&RootsListChangedParams::default()));
    }

    let progress = ProgressParams::new(RequestId::from("tok"), 5.0, Some(10.0));
    assert_valid("2024-11-05", "ProgressNotification", &notification(&progress));
    let with_message = ProgressParams { message: Some("halfway".into()), ..progress };
    for revision in ["2025-03-26", "2025-11-25", "2026-07-28"] {
        assert_valid(revision, "ProgressNotification", &notification(&with_message));
    }

    let cancelled = CancelledParams::new(RequestId::Number(7), Some("user pressed stop".into()));
    for revision in ["2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28"] {
        assert_valid(revision, "CancelledNotification", &notification(&cancelled));
    }
}

#[test]
fn completion_in_each_generation() {
    let resource = CompleteParams {
        reference: CompletionReference::Resource(ResourceTemplateReference { uri: "file:///{path}".into() }),
        argument: CompletionArgument { name: "path".into(), value: "src/".into() },
        context: None,
        meta: None,
    };
    assert_valid("2024-11-05", "CompleteRequest", &request(&resource));
    let prompt = CompleteParams {
        reference: CompletionReference::Prompt(PromptReference { name: "review".into(), title: Some("Review".into()) }),
        argument: CompletionArgument { name: "framework".into(), value: "fla".into() },
        context: Some(CompletionContext { arguments: Some(BTreeMap::from([("language".into(), "python".into())])) }),
        meta: None,
    };
    assert_valid("2025-06-18", "CompleteRequest", &request(&prompt));
    assert_valid("2026-07-28", "CompleteRequest", &request(&CompleteParams { meta: modern_meta(), ..prompt }));
    let result = CompleteResult { completion: Completion::from_values(vec!["flask".into()]), ..Default::default() };
    assert_valid("2024-11-05", "CompleteResult", &value(&result));
    let modern = CompleteResult { result_type: Some(ResultType::Complete), ..result };
    assert_valid("2026-07-28", "CompleteResult", &value(&modern));
}

#[test]
fn resources_in_each_generation() {
    let resource = Resource {
        mime_type: Some("text/markdown".into()),
        description: Some("Docs".into()),
        size: Some(1024),
        ..Resource::new("file:///repo/README.md", "README.md")
    };
    let list = ListResourcesResult { resources: vec![resource.clone()], ..Default::default() };
    assert_valid("2024-11-05", "ListResourcesResult", &value(&list));
    let read = ReadResourceResult {
        contents: vec![ResourceContents::blob("file:///logo.png", Some("image/png"), "iVBORw0KGgo=")],
        ..Default::default()
    };
    assert_valid("2024-11-05", "ReadResourceResult", &value(&read));
    assert_valid("2024-11-05", "ReadResourceRequest", &request(&ReadResourceParams::new("file:///logo.png")));

    let template = ResourceTemplate {
        uri_template: "file:///{path}".into(),
        name: "files".into(),
        title: Some("Files".into()),
        icons: Some(vec![Icon { src: "https://example.com/f.svg".into(), mime_type: None, sizes: None, theme: None }]),
        ..Default::default()
    };
    let templates = ListResourceTemplatesResult { resource_templates: vec![template], ..Default::default() };
    assert_valid("2025-11-25", "ListResourceTemplatesResult", &value(&templates));
    let sub = SubscribeParams { uri: "file:///repo/README.md".into(), meta: None };
    assert_valid("2025-11-25", "SubscribeRequest", &request(&sub));
    assert_valid("2024-11-05", "SubscribeRequest", &request(&sub));
    let unsub = UnsubscribeParams { uri: sub.uri.clone(), meta: None };
    assert_valid("2025-11-25", "UnsubscribeRequest", &request(&unsub));
    let updated = ResourceUpdatedParams { uri: sub.uri.clone(), meta: None };
    assert_valid("2024-11-05", "ResourceUpdatedNotification", &notification(&updated));

    let id = RequestId::from("listen-1");
    let modern_list = ListResourcesResult {
        ttl_ms: Some(60_000),
        cache_scope: Some(CacheScope::Private),
        result_type: Some(ResultType::Complete),
        ..list
    };
    assert_valid("2026-07-28", "ListResourcesResult", &value(&modern_list));
    let modern_read = ReadResourceResult {
        ttl_ms: Some(0),
        cache_scope: Some(CacheScope::Private),
        result_type: Some(ResultType::Complete),
        ..read
    };
    assert_valid("2026-07-28", "ReadResourceResultResponse", &response(&modern_read));
    let on_stream = ResourceUpdatedParams { meta: Some(subscription_meta(&id)), ..updated };
    assert_valid("2026-07-28", "ResourceUpdatedNotification", &notification(&on_stream));
    let changed = ResourceListChangedParams { meta: Some(subscription_meta(&id)) };
    assert_valid("2026-07-28", "ResourceListChangedNotification", &notification(&changed));
}

#[test]
fn prompts_in_each_generation() {
    let prompt = Prompt {
        name: "review".into(),
        description: Some("Review code".into()),
        arguments: Some(vec![PromptArgument { name: "code".into(), required: Some(true), ..Default::default() }]),
        ..Default::default()
    };
    let expanded = GetPromptResult {
        description: Some("Code review".into()),
        messages: vec![
            PromptMessage::text(Role::User, "Please review:"),
            PromptMessage {
                role: Role::User,
                content: ContentBlock::Resource(EmbeddedResource {
                    resource: ResourceContents::text("file:///main.rs", Some("text/x-rust"), "fn main() {}"),
                    annotations: None,
                    meta: None,
                }),
            },
        ],
        ..Default::default()
    };
    assert_valid("2024-11-05", "GetPromptResult", &value(&expanded));
    assert_valid(
        "2024-11-05",
        "ListPromptsResult",
        &value(&ListPromptsResult { prompts: vec![prompt.clone()], ..Default::default() }),
    );
    let list = ListPromptsResult {
        prompts: vec![Prompt { title: Some("Review".into()), ..prompt }],
        ttl_ms: Some(600_000),
        cache_scope: Some(CacheScope::Public),
        result_type: Some(ResultType::Complete),
        ..Default::default()
    };
    assert_valid("2026-07-28", "ListPromptsResult", &value(&list));
    let modern = GetPromptResult { result_type: Some(ResultType::Complete), ..expanded };
    assert_valid("2026-07-28", "GetPromptResultResponse", &response(&modern));
}

#[test]
fn subscriptions_at_2026_07_28() {
    let filter = SubscriptionFilter {
        tools_list_changed: Some(true),
        resource_subscriptions: Some(vec!["file:///config.json".into()]),
        ..Default::default()
    };
    let listen = ListenParams { notifications: filter.clone(), meta: modern_meta() };
    assert_valid("2026-07-28", "SubscriptionsListenRequest", &request(&listen));
    let id = RequestId::Number(1);
    let ack = SubscriptionsAcknowledgedParams { notifications: filter, meta: Some(subscription_meta(&id)) };
    assert_valid("2026-07-28", "SubscriptionsAcknowledgedNotification", &notification(&ack));
    let closed = ListenResult { result_type: Some(ResultType::Complete), meta: Some(subscription_meta(&id)) };
    assert_valid("2026-07-28", "SubscriptionsListenResultResponse", &response(&closed));
}

fn legacy_task(status: TaskStatus) -> legacy::Task {
    legacy::Task {
        task_id: "786512e2".into(),
        status,
        status_message: Some("working on it".into()),
        created_at: "2025-11-25T10:30:00Z".into(),
        last_updated_at: "2025-11-25T10:31:00Z".into(),
        ttl: Some(60_000),
        poll_interval: Some(5_000),
    }
}

#[test]
fn experimental_tasks_at_2025_11_25() {
    let mut call = CallToolParams::new("slow_compute", Some(object(json!({"seconds": 3}))));
    call.task = Some(object(value(&legacy::TaskMetadata { ttl: Some(60_000) })));
    assert_valid("2025-11-25", "CallToolRequest", &request(&call));
    let mut tool = weather_tool();
    tool.execution = Some(object(value(&legacy::ToolExecution { task_support: Some(legacy::TaskSupport::Optional) })));
    assert_valid("2025-11-25", "Tool", &value(&tool));

    let created = legacy::CreateTaskResult { task: legacy_task(TaskStatus::Working), result_type: None, meta: None };
    assert_valid("2025-11-25", "CreateTaskResult", &value(&created));
    let get = legacy::GetTaskParams { task_id: "786512e2".into(), meta: None };
    assert_valid("2025-11-25", "GetTaskRequest", &request(&get));
    let state = legacy::GetTaskResult { task: legacy_task(TaskStatus::Completed), result_type: None, meta: None };
    assert_valid("2025-11-25", "GetTaskResult", &value(&state));
    let unlimited = legacy::Task { ttl: None, ..legacy_task(TaskStatus::Cancelled) };
    assert_valid(
        "2025-11-25",
        "CancelTaskResult",
        &value(&legacy::GetTaskResult { task: unlimited, result_type: None, meta: None }),
    );
    let cancel = legacy::CancelTaskParams { task_id: "786512e2".into(), meta: None };
    assert_valid("2025-11-25", "CancelTaskRequest", &request(&cancel));
    let payload = legacy::GetTaskPayloadParams { task_id: "786512e2".into(), meta: None };
    assert_valid("2025-11-25", "GetTaskPayloadRequest", &request(&payload));
    let payload_result = legacy::TaskPayloadResult {
        fields: object(value(&CallToolResult::text("done"))),
        meta: Some(object(
            json!({meta::keys::RELATED_TASK: value(&legacy::RelatedTaskMetadata { task_id: "786512e2".into() })}),
        )),
        ..Default::default()
    };
    assert_valid("2025-11-25", "GetTaskPayloadResult", &value(&payload_result));
    assert_valid("2025-11-25", "CallToolResult", &value(&payload_result));
    let list = legacy::ListTasksResult { tasks: vec![legacy_task(TaskStatus::Failed)], ..Default::default() };
    assert_valid("2025-11-25", "ListTasksResult", &value(&list));
    assert_valid("2025-11-25", "ListTasksRequest", &request(&legacy::ListTasksParams::default()));
    let status = legacy::TaskStatusParams { task: legacy_task(TaskStatus::InputRequired), meta: None };
    assert_valid("2025-11-25", "TaskStatusNotification", &notification(&status));
}

#[test]
fn every_revision_schema_compiles() {
    if schema_dir().is_none() {
        return;
    }
    let expected: HashMap<&str, &str> = HashMap::from([
        ("2024-11-05", "InitializeRequest"),
        ("2025-03-26", "AudioContent"),
        ("2025-06-18", "ElicitRequest"),
        ("2025-11-25", "Task"),
        ("2026-07-28", "DiscoverRequest"),
    ]);
    for revision in schema_support::REVISIONS {
        assert!(schema_support::has_definition(revision, expected[revision]), "{revision}");
    }
}
