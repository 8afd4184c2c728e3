//! Soak tests of legacy HTTP sessions (issue 10), against a real server on a loopback port. Not part of the
//! default run; run them in release:
//!
//! ```text
//! cargo test --release -p keel-mcp --all-features --test soak_sessions -- --ignored --nocapture --test-threads 1
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::{HttpConfig, MemoryEventStore};
use keel_mcp::server::{NoArgs, RequestContext, Server};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

mod raw_client;
use raw_client::{Conn, JSON_AND_SSE, events, rss, serve};

const EVENTS: u64 = 100_000;
const BATCH: u64 = 1_000;
/// The client hangs up after this many events on one connection, then resumes with `Last-Event-ID`.
const EVENTS_PER_CONNECTION: u64 = 777;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

/// `ticker` sends `EVENTS` progress notifications, a batch whenever `permits` allows (so that it never runs
/// further ahead of the reader than the event store keeps); `tick` sends one, then answers; `echo` echoes.
fn server(permits: Arc<Semaphore>) -> Server {
    Server::builder(Implementation::new("soak", "1.0.0"))
        .tool("echo", "Echoes", |a: EchoArgs| async move { a.text })
        .tool("tick", "One progress event, then the answer", |ctx: RequestContext, _: NoArgs| async move {
            ctx.progress(1.0, None, None).await;
            "ticked"
        })
        .tool("ticker", "Many progress events", move |ctx: RequestContext, _: NoArgs| {
            let permits = permits.clone();
            async move {
                for i in 1..=EVENTS {
                    if (i - 1) % BATCH == 0 {
                        permits.acquire().await.expect("never closed").forget();
                    }
                    ctx.progress(i as f64, None, None).await;
                }
                "done"
            }
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run in release with --ignored"]
async fn sse_events_survive_forced_disconnects_without_loss_or_duplicates() {
    let permits = Arc::new(Semaphore::new(2));
    let config = HttpConfig::default()
        .event_store(Arc::new(MemoryEventStore::new(8 * BATCH as usize)))
        .stream_resume_grace(Duration::from_secs(30));
    let running = serve(server(permits.clone()), config).await;
    let addr = running.addr;
    let session = raw_client::session(addr, 1).await;
    let started = Instant::now();

    let mut conn = Conn::open(addr, 1).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "ticker", "_meta": {"progressToken": "soak"}}});
    conn.send("POST", &[("accept", JSON_AND_SSE), ("mcp-session-id", &session)], Some(call.to_string().as_bytes()))
        .await;
    let mut head = conn.head().await.unwrap();
    assert_eq!(head.status, 200);

    let (mut next, mut on_connection, mut resumptions) = (1u64, 0u64, 0u64);
    let mut text = String::new();
    'outer: loop {
        let Some(piece) = conn.piece(&head).await else { panic!("the stream ended before the answer (at {next})") };
        text.push_str(std::str::from_utf8(&piece).unwrap());
        for event in events(&mut text) {
            if event.data.is_empty() {
                continue; // priming
            }
            let message: Value = serde_json::from_str(&event.data).unwrap();
            if message["id"] == 1 {
                assert_eq!(message["result"]["content"][0]["text"], "done");
                break 'outer;
            }
            let progress = message["params"]["progress"].as_f64().unwrap() as u64;
            assert_eq!(progress, next, "every event exactly once, in order");
            next += 1;
            if progress.is_multiple_of(BATCH) {
                permits.add_permits(1);
            }
            on_connection += 1;
            if on_connection == EVENTS_PER_CONNECTION {
                // Hang up mid-stream and resume after the last event seen.
                let resume_from = event.id.expect("stream events carry ids");
                std::mem::replace(&mut conn, Conn::open(addr, 1).await).abort();
                let extra =
                    [("accept", "text/event-stream"), ("mcp-session-id", &session), ("last-event-id", &resume_from)];
                conn.send("GET", &extra, None).await;
                head = conn.head().await.unwrap();
                assert_eq!(head.status, 200);
                text.clear();
                on_connection = 0;
                resumptions += 1;
                continue 'outer;
            }
        }
    }
    assert_eq!(next, EVENTS + 1);
    println!(
        "soak/sse: {EVENTS} events, {resumptions} forced disconnects and resumptions, 0 lost, 0 duplicated, {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run in release with --ignored"]
async fn churned_sessions_keep_memory_flat() {
    const SESSIONS: usize = 10_000;
    const WARM_UP: usize = 1_000;
    let running = serve(server(Arc::new(Semaphore::new(0))), HttpConfig::default()).await;
    let addr = running.addr;
    let started = Instant::now();
    let mut baseline = 0;
    for n in 0..SESSIONS {
        if n == WARM_UP {
            baseline = rss();
        }
        // Four peers, each keeping at most its share of live sessions; none is ever deleted.
        let from = 1 + (n % 4) as u8;
        let mut conn = Conn::open(addr, from).await;
        let session = raw_client::initialize(&mut conn, &json!({"roots": {"listChanged": true}})).await.unwrap();
        let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(conn.post(Some(&session), JSON_AND_SSE, initialized).await.unwrap().0.status, 202);
        let echo =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}"#;
        assert_eq!(conn.post(Some(&session), "application/json", echo).await.unwrap().0.status, 200);
        let tick =
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"tick","_meta":{"progressToken":1}}}"#;
        let (head, body) = conn.post(Some(&session), JSON_AND_SSE, tick).await.unwrap();
        assert_eq!(head.status, 200);
        assert!(String::from_utf8(body).unwrap().contains("ticked"));
        conn.abort();
    }
    let grown = rss().saturating_sub(baseline) as f64 / (1 << 20) as f64;
    println!(
        "soak/sessions: {SESSIONS} sessions churned in {:.2} s; RSS after {WARM_UP}: {:.1} MiB, after {SESSIONS}: {:.1} MiB (+{grown:.1} MiB)",
        started.elapsed().as_secs_f64(),
        baseline as f64 / (1 << 20) as f64,
        rss() as f64 / (1 << 20) as f64,
    );
    assert!(grown < 16.0, "memory grew by {grown:.1} MiB over {} sessions", SESSIONS - WARM_UP);
}
