//! The server feature set through Keel's own client over the in-memory transport, in both eras:
//! resources and templates, prompts, completion, runtime catalog changes, subscriptions, and input from
//! the client (legacy requests vs. modern input-required rounds) with the same handler code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_mcp::client::{Client, ServerNotification};
use keel_mcp::engine::RequestOptions;
use keel_mcp::protocol::completion::{CompleteParams, CompletionArgument, CompletionReference, PromptReference};
use keel_mcp::protocol::elicitation::{ElicitParams, ElicitResult, PrimitiveSchema, RequestedSchema};
#[cfg(feature = "skills")]
use keel_mcp::protocol::skills::{GetSkillParams, ListSkillsParams, ReadDirectoryParams};
use keel_mcp::protocol::subscriptions::SubscriptionFilter;
use keel_mcp::protocol::{Implementation, ProtocolVersion, ResourceContents};
#[cfg(feature = "skills")]
use keel_mcp::server::SkillDef;
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, ResourceDef, Server, TemplateDef, ToolDef};
use keel_mcp::transport::memory;
use serde_json::json;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Greeting {
    /// Who to greet.
    name: String,
    /// How to greet.
    #[serde(default)]
    style: Option<String>,
}

fn server() -> Server {
    let builder = Server::builder(Implementation::new("features", "1.0.0"))
        .tool("ask_name", "Asks the user for a name", |ctx: RequestContext, _: NoArgs| async move {
            let schema = RequestedSchema::new(
                vec![(
                    "name".into(),
                    PrimitiveSchema::from_object(json!({"type": "string"}).as_object().unwrap().clone()),
                )],
                &["name"],
            );
            let answer = ctx.elicit("name", ElicitParams::form("Your name?", schema)).await?;
            let name = answer.content.as_ref().and_then(|c| c.get("name")).map(|v| json!(v)).unwrap_or_default();
            Ok::<_, HandlerError>(format!("hello {}", name.as_str().unwrap_or("?")))
        })
        .resource(ResourceDef::text("mem://readme", "readme", "text/plain", "read me").description("A note"))
        .resource_template(TemplateDef::new("mem://users/{id}", "user", |_, uri, vars| async move {
            ResourceContents::text(uri, Some("application/json"), json!({"id": vars["id"]}).to_string())
        }))
        .prompt("greet", "Writes a greeting", |Greeting { name, style }: Greeting| async move {
            format!("Greet {name} in a {} way.", style.unwrap_or_else(|| "plain".into()))
        })
        .complete_prompt_argument("greet", "name", |request| async move {
            ["ada", "alan", "grace"].into_iter().filter(|n| n.starts_with(&request.value)).map(str::to_owned).collect()
        });
    #[cfg(feature = "skills")]
    let builder = builder.skill(SkillDef::new("demo-skill", "Shows what skills look like.", "# Demo\n").file(
        "docs/usage.md",
        "text/markdown",
        "use it",
    ));
    builder.build()
}

async fn connect(server: &Server, versions: &[ProtocolVersion], notes: Arc<Mutex<Vec<String>>>) -> Client {
    let (a, b) = memory::pair();
    let _running = server.serve(a);
    Client::builder(Implementation::new("t", "1"))
        .protocol_versions(versions.iter().cloned())
        .on_elicitation(|_params: ElicitParams| async move {
            let mut content = BTreeMap::new();
            content.insert("name".to_owned(), keel_mcp::protocol::ElicitValue::String("Ada".into()));
            Ok(ElicitResult::accept(Some(content)))
        })
        .on_notification(move |n| {
            let notes = notes.clone();
            async move {
                let label = match n {
                    ServerNotification::ToolListChanged => "tools".to_owned(),
                    ServerNotification::ResourceUpdated(p) => format!("updated {}", p.uri),
                    other => format!("{other:?}"),
                };
                notes.lock().unwrap().push(label);
            }
        })
        .connect(b)
        .await
        .unwrap()
}

const LEGACY: [ProtocolVersion; 1] = [ProtocolVersion::V2025_11_25];
const MODERN: [ProtocolVersion; 1] = [ProtocolVersion::V2026_07_28];

#[tokio::test]
async fn resources_templates_prompts_and_completion_in_both_eras() {
    for versions in [&LEGACY[..], &MODERN[..]] {
        let client = connect(&server(), versions, Default::default()).await;
        let resources = client.list_all_resources().await.unwrap();
        assert!(resources.iter().any(|r| r.uri == "mem://readme"));
        let read = client.read_resource("mem://readme").await.unwrap();
        assert_eq!(read.contents[0], ResourceContents::text("mem://readme", Some("text/plain"), "read me"));
        let user = client.read_resource("mem://users/42").await.unwrap();
        assert!(matches!(&user.contents[0], ResourceContents::Text(t) if t.text == r#"{"id":"42"}"#));
        let missing = client.read_resource("mem://nothing").await.unwrap_err();
        let code = missing.as_rpc().unwrap().code;
        assert_eq!(code, if versions == MODERN { -32602 } else { -32002 }, "resource-not-found code per era");
        assert_eq!(missing.as_rpc().unwrap().data.as_ref().unwrap()["uri"], "mem://nothing");

        let prompts = client.list_all_prompts().await.unwrap();
        let arguments = prompts[0].arguments.as_ref().unwrap();
        assert_eq!(
            arguments.iter().map(|a| (a.name.as_str(), a.required)).collect::<Vec<_>>(),
            [("name", Some(true)), ("style", Some(false))]
        );
        assert_eq!(arguments[0].description.as_deref(), Some("Who to greet."));
        let mut args = BTreeMap::new();
        args.insert("name".to_owned(), "Ada".to_owned());
        let prompt = client.get_prompt("greet", Some(args)).await.unwrap();
        assert_eq!(prompt.messages[0].content.as_text(), Some("Greet Ada in a plain way."));
        let err = client.get_prompt("greet", None).await.unwrap_err();
        assert_eq!(err.as_rpc().unwrap().code, -32602, "a missing required argument is invalid params");

        let completion = client
            .complete(CompleteParams {
                reference: CompletionReference::Prompt(PromptReference { name: "greet".into(), title: None }),
                argument: CompletionArgument { name: "name".into(), value: "a".into() },
                context: None,
                meta: None,
            })
            .await
            .unwrap();
        assert_eq!(completion.completion.values, ["ada", "alan"]);
        client.close().await;
    }
}

#[tokio::test]
async fn the_same_handler_asks_for_input_in_both_eras() {
    for versions in [&LEGACY[..], &MODERN[..]] {
        let client = connect(&server(), versions, Default::default()).await;
        // Legacy: the server sends elicitation/create. Modern: an input-required round the client answers.
        let result = client.call_tool("ask_name", serde_json::Value::Null).await.unwrap();
        assert_eq!(result.content[0].as_text(), Some("hello Ada"), "era {versions:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn runtime_changes_reach_legacy_clients_and_subscribers() {
    let server = server();
    let notes = Arc::new(Mutex::new(Vec::new()));
    let client = connect(&server, &LEGACY, notes.clone()).await;
    client.subscribe("mem://readme").await.unwrap();
    server.add_tool(ToolDef::new("late", |_: NoArgs| async { "late" }).description("Added while serving"));
    server.resource_updated("mem://readme");
    server.resource_updated("mem://not-subscribed");
    assert!(client.list_all_tools().await.unwrap().iter().any(|t| t.name == "late"));
    assert!(server.set_tool_enabled("late", false));
    assert!(!client.list_all_tools().await.unwrap().iter().any(|t| t.name == "late"));
    assert!(!server.remove_tool("nope"));
    let expected = ["tools".to_owned(), "updated mem://readme".to_owned()];
    eventually(
        || expected.iter().all(|n| notes.lock().unwrap().contains(n)),
        "the list-changed and updated notifications",
    )
    .await;
    let seen = notes.lock().unwrap().clone();
    assert!(!seen.contains(&"updated mem://not-subscribed".to_owned()), "{seen:?}");
    client.close().await;
}

#[tokio::test]
async fn modern_clients_listen_for_changes() {
    let server = server();
    let notes = Arc::new(Mutex::new(Vec::new()));
    let client = Arc::new(connect(&server, &MODERN, notes.clone()).await);
    let cancel = cancellation_token();
    let listener = {
        let client = client.clone();
        let options = RequestOptions {
            cancellation: Some(cancel.clone()),
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        tokio::spawn(async move {
            let filter = SubscriptionFilter { tools_list_changed: Some(true), ..Default::default() };
            client.listen(filter, options).await
        })
    };
    // The listen request may not be acknowledged yet: change the catalog until a notification arrives,
    // instead of guessing how long the subscription takes.
    let mut added = 0;
    eventually(
        || {
            if notes.lock().unwrap().iter().any(|n| n == "tools") {
                return true;
            }
            added += 1;
            server.add_tool(ToolDef::new(format!("late{added}"), |_: NoArgs| async { "late" }));
            false
        },
        "a tools list-changed notification",
    )
    .await;
    cancel.cancel();
    let _ = listener.await;
    let seen = notes.lock().unwrap().clone();
    assert!(seen.iter().any(|n| n == "tools"), "{seen:?}");
}

fn cancellation_token() -> keel_mcp::engine::CancellationToken {
    keel_mcp::engine::CancellationToken::new()
}

#[cfg(feature = "skills")]
#[tokio::test]
async fn skills_are_listed_fetched_and_browsable() {
    let client = connect(&server(), &MODERN, Default::default()).await;
    let listed = client.request(ListSkillsParams::default()).await.unwrap();
    assert_eq!(listed.skills.len(), 1);
    let entry = &listed.skills[0];
    assert_eq!(entry.uri, "skill://demo-skill/SKILL.md");
    let fetched = client.request(GetSkillParams { uri: entry.uri.clone(), meta: None }).await.unwrap();
    assert_eq!(&fetched.skill, entry);
    let unknown = client.request(GetSkillParams { uri: "skill://nope/SKILL.md".into(), meta: None }).await.unwrap_err();
    assert_eq!(unknown.as_rpc().unwrap().code, -32602);
    let dir = client
        .request(ReadDirectoryParams { uri: "skill://demo-skill".into(), cursor: None, meta: None })
        .await
        .unwrap();
    assert!(
        dir.resources
            .iter()
            .any(|r| r.uri == "skill://demo-skill/docs" && r.mime_type.as_deref() == Some("inode/directory"))
    );
    let file =
        client.request(ReadDirectoryParams { uri: entry.uri.clone(), cursor: None, meta: None }).await.unwrap_err();
    assert_eq!(file.as_rpc().unwrap().code, -32602, "a file is not a directory");
    // The SKILL.md resource matches its manifest entry.
    let read = client.read_resource(&entry.uri).await.unwrap();
    let ResourceContents::Text(text) = &read.contents[0] else { panic!("text") };
    let keel_mcp::protocol::skills::SkillResources::Listed(files) = &entry.resources else { panic!("listed") };
    assert_eq!(files[0].size, text.text.len() as u64);
    client.close().await;
}

#[cfg(feature = "schema-validation")]
#[tokio::test]
async fn arguments_and_structured_results_are_validated_against_the_schemas() {
    let input = json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]});
    let output = json!({"type": "object", "properties": {"half": {"type": "number"}}, "required": ["half"]});
    let server = Server::builder(Implementation::new("validating", "1"))
        .tool_def(
            ToolDef::new("halve", |args: serde_json::Value| async move {
                let n = args["n"].as_i64().unwrap_or_default();
                keel_mcp::server::Json(json!({"half": n as f64 / 2.0}))
            })
            .input_schema(input.as_object().unwrap().clone())
            .output_schema(output.as_object().unwrap().clone()),
        )
        .tool_def(
            ToolDef::new("liar", |_: NoArgs| async { keel_mcp::server::Json(json!({"whole": 1})) })
                .output_schema(output.as_object().unwrap().clone()),
        )
        .build();
    let client = connect(&server, &MODERN, Default::default()).await;
    let ok = client.call_tool("halve", json!({"n": 4})).await.unwrap();
    assert_eq!(ok.structured_content, Some(json!({"half": 2.0})));
    let bad = client.call_tool("halve", json!({"n": 0})).await.unwrap();
    assert!(bad.is_error(), "arguments outside the schema are a tool error (SEP-1303)");
    assert!(bad.content[0].as_text().unwrap().contains("/n"));
    let err = client.call_tool("liar", serde_json::Value::Null).await.unwrap_err();
    assert_eq!(err.as_rpc().unwrap().code, -32603, "output that breaks the output schema is the server's fault");
    client.close().await;
}

/// Polls `done` every 20 ms until it holds, failing the test after five seconds.
async fn eventually(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
