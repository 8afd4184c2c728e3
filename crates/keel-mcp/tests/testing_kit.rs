//! The test kit (feature `testing`) as a user meets it: copy this file to start testing your own server.
//! Every test runs client and server in this process with no sockets, on tokio's paused clock where time
//! matters (`start_paused`: timeouts and delays take no real time and behave the same every run).

use std::time::Duration;

use keel_mcp::client::{CancellationToken, RequestOptions, ServerNotification};
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::protocol::tools::CallToolParams;
use keel_mcp::protocol::{ElicitAction, ElicitResult, Implementation, ProtocolVersion, Root, SubscriptionFilter};
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{HandlerError, NoArgs, RequestContext, Server, ToolDef};
use keel_mcp::testing::{Direction, Fault, Faults, Script, TestPair};
use keel_mcp::{Error, Limits};
use serde_json::{Value, json};

/// The server under test.
fn server() -> Server {
    Server::builder(Implementation::new("under-test", "1"))
        .tool("hello", "Says hello", |_: NoArgs| async { "hello" })
        .tool("poem", "Asks the client's model", |ctx: RequestContext, _: NoArgs| async move {
            let params = serde_json::from_value(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": "a poem"}}],
                "maxTokens": 50
            }))?;
            Ok::<_, HandlerError>(ctx.create_message("poem", params).await?.model)
        })
        .tool("confirm", "Asks the user", |ctx: RequestContext, _: NoArgs| async move {
            let form = serde_json::from_value(json!({
                "message": "Go ahead?",
                "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
            }))?;
            let answer = ctx.elicit("confirm", form).await?;
            Ok::<_, HandlerError>(format!("{:?}", answer.action))
        })
        .tool("roots", "Counts the client's roots", |ctx: RequestContext, _: NoArgs| async move {
            Ok::<_, HandlerError>(ctx.list_roots("roots").await?.roots.len().to_string())
        })
        .tool("work", "Reports progress and logs", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(1.0, Some(2.0), Some("half")).await;
            ctx.log(LoggingLevel::Info, Some("work"), "working").await;
            ctx.progress(2.0, Some(2.0), None).await;
            "worked"
        })
        .build()
}

fn text(result: &keel_mcp::protocol::CallToolResult) -> &str {
    result.content[0].as_text().unwrap_or_default()
}

#[tokio::test]
async fn a_tool_answers_in_both_eras() {
    let server = server();
    for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28] {
        let pair = TestPair::builder().protocol_version(version.clone()).connect(&server).await.unwrap();
        assert_eq!(pair.client().protocol_version(), version);
        let result = pair.client().call_tool("hello", json!({})).await.unwrap();
        assert_eq!(text(&result), "hello", "{version}");
        pair.close().await;
    }
}

#[tokio::test]
async fn the_http_service_runs_in_memory_in_both_eras() {
    let server = server();
    for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28] {
        let pair = TestPair::builder()
            .protocol_version(version.clone())
            .over_http(HttpConfig::default())
            .script(Script::new().sampling_text("roses are red", "scripted-model"))
            .connect(&server)
            .await
            .unwrap();
        let client = pair.client();
        assert_eq!(client.protocol_version(), version);
        assert_eq!(text(&client.call_tool("hello", json!({})).await.unwrap()), "hello", "{version}");
        // The server's request to the client crosses HTTP too (an SSE stream, or an input-required round).
        assert_eq!(text(&client.call_tool("poem", json!({})).await.unwrap()), "scripted-model", "{version}");
        let options = RequestOptions::default().on_progress(pair.notifications().record_progress());
        assert_eq!(text(&client.call_tool_with("work", json!({}), options).await.unwrap()), "worked");
        assert_eq!(pair.notifications().wait_progress(|p| p.progress == 2.0).await.total, Some(2.0), "{version}");
        pair.close().await;
    }
}

#[tokio::test]
async fn sampling_elicitation_and_roots_get_the_scripted_answers_in_both_eras() {
    let server = server();
    for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28] {
        let script = Script::new()
            .sampling_text("roses are red", "scripted-model")
            .elicitation(ElicitResult::decline())
            .roots(vec![Root::new("file:///a", None), Root::new("file:///b", None)]);
        let pair = TestPair::builder().protocol_version(version.clone()).script(script).connect(&server).await.unwrap();
        let client = pair.client();
        assert_eq!(text(&client.call_tool("poem", json!({})).await.unwrap()), "scripted-model", "{version}");
        assert_eq!(
            text(&client.call_tool("confirm", json!({})).await.unwrap()),
            format!("{:?}", ElicitAction::Decline)
        );
        assert_eq!(text(&client.call_tool("roots", json!({})).await.unwrap()), "2", "{version}");
        // What the server asked, for assertions on the requests themselves.
        assert_eq!(pair.script().sampling_requests()[0].max_tokens, 50);
        assert_eq!(pair.script().elicitation_requests().len(), 1);
        assert_eq!(pair.script().roots_requests(), 1);
        // The script ran out: the server's next request fails, visibly.
        // (Legacy: the server's request fails, then the tool call; modern: the client cannot answer the
        // server's input request.)
        let error = client.call_tool("poem", json!({})).await.unwrap_err();
        assert!(error.to_string().contains("no more answers"), "{version}: {error:?}");
        pair.close().await;
    }
}

#[tokio::test]
async fn progress_logs_and_list_changes_are_captured_and_awaited() {
    let server = server();
    let pair = TestPair::builder().protocol_version(ProtocolVersion::V2025_11_25).connect(&server).await.unwrap();
    let client = pair.client();
    client.set_logging_level(LoggingLevel::Debug).await.unwrap();
    let options = RequestOptions::default().on_progress(pair.notifications().record_progress());
    client.call_tool_with("work", json!({}), options).await.unwrap();
    let done = pair.notifications().wait_progress(|p| p.progress == 2.0).await;
    assert_eq!(done.total, Some(2.0));
    let messages: Vec<Option<String>> = pair.notifications().progress().into_iter().map(|p| p.message).collect();
    assert_eq!(messages, [Some("half".to_owned()), None]);
    let log = pair.notifications().wait_log(|log| log.logger.as_deref() == Some("work")).await;
    assert_eq!(log.data, Value::from("working"));
    // The server's tool list changes while the client is connected.
    assert!(server.remove_tool("hello"));
    pair.notifications().wait_tools_changed().await;
    assert!(pair.notifications().all().iter().any(|n| matches!(n, ServerNotification::ToolListChanged)));
    pair.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_request_times_out_and_the_retry_succeeds() {
    let server = server();
    // The first tools/call never reaches the server.
    let faults = Faults::new().inject_times(1, Direction::Outgoing, Faults::method("tools/call"), Fault::Drop);
    let pair = TestPair::builder().faults(faults).connect(&server).await.unwrap();
    let quick = || RequestOptions::default().timeout(Duration::from_secs(30));
    let first = pair.client().call_tool_with("hello", json!({}), quick()).await;
    assert!(matches!(first, Err(Error::Timeout(_))), "{first:?}");
    let retry = pair.client().call_tool_with("hello", json!({}), quick()).await.unwrap();
    assert_eq!(text(&retry), "hello");
    pair.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_runs_into_the_timeout_on_the_virtual_clock() {
    let server = server();
    let faults = Faults::new();
    let limits = Limits::default().request_timeout(Duration::from_secs(10));
    let pair = TestPair::builder().faults(faults.clone()).limits(limits).connect(&server).await.unwrap();
    // From now on, every answer takes a minute.
    let _ = faults.inject(Direction::Incoming, |frame| frame.is_response(), Fault::Delay(Duration::from_secs(60)));
    let started = tokio::time::Instant::now();
    let call = pair.client().call_tool("hello", json!({})).await;
    assert!(matches!(call, Err(Error::Timeout(_))), "{call:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(10), "virtual time, exactly the timeout");
    pair.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_truncated_request_is_never_answered_and_reordered_answers_still_match() {
    let server = server();
    // Rules can be added while the pair runs (clones share them): here, after the handshake.
    let faults = Faults::new();
    let pair = TestPair::builder().faults(faults.clone()).connect(&server).await.unwrap();
    let faults = faults.inject_times(1, Direction::Outgoing, Faults::method("tools/call"), Fault::Truncate(20));
    let options = RequestOptions::default().timeout(Duration::from_secs(5));
    let truncated = pair.client().request_with(CallToolParams::new("hello", None), options).await;
    assert!(matches!(truncated, Err(Error::Timeout(_))), "{truncated:?}");
    // Two calls at once, the first answer held back until the second has arrived: each gets its own.
    let _ = faults.inject_times(1, Direction::Incoming, |frame| frame.is_response(), Fault::Reorder);
    let (a, b) = tokio::join!(pair.client().call_tool("hello", json!({})), pair.client().call_tool("work", json!({})));
    assert_eq!(text(&a.unwrap()), "hello");
    assert_eq!(text(&b.unwrap()), "worked");
    pair.close().await;
}

#[tokio::test]
async fn a_modern_listen_stream_over_http_delivers_changes_and_ends_on_cancellation() {
    let server = server();
    let pair = TestPair::builder()
        .protocol_version(ProtocolVersion::V2026_07_28)
        .over_http(HttpConfig::default())
        .connect(&server)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let filter = SubscriptionFilter { tools_list_changed: Some(true), ..Default::default() };
    let options = RequestOptions { cancellation: Some(token.clone()), ..Default::default() };
    let listening = pair.client().listen(filter, options);
    let watching = async {
        // The subscription starts concurrently: change the list until a change is seen.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            server.add_tool(ToolDef::new("extra", |_: NoArgs| async { "extra" }));
            let seen = tokio::time::timeout(Duration::from_millis(20), pair.notifications().wait_tools_changed());
            if seen.await.is_ok() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no list change arrived");
        }
        // Cancelling closes the stream (the modern revision's cancellation).
        token.cancel();
    };
    let (listened, ()) = tokio::join!(listening, watching);
    assert!(matches!(listened, Err(Error::Cancelled)), "{listened:?}");
    pair.close().await;
}
