//! The HTTP load generator: N keep-alive HTTP/1.1 connections (hyper's connection-level client), each sending
//! `tools/call` back to back for a fixed time, recording every latency. Runs on a single-threaded runtime so it
//! stays on its own core.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

pub const MODERN: &str = "2026-07-28";
pub const LEGACY: &str = "2025-11-25";

#[derive(Clone, Copy, PartialEq)]
pub enum Era {
    Modern,
    Legacy,
}

pub struct Stats {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub async fn connect(port: u16) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

fn post(port: u16, body: Vec<u8>, version: &str, method: &str, session: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::post("/mcp")
        .header("host", format!("127.0.0.1:{port}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", version)
        .header("mcp-method", method);
    if method == "tools/call" {
        b = b.header("mcp-name", "add");
    }
    if let Some(s) = session {
        b = b.header("mcp-session-id", s);
    }
    b.body(Full::new(Bytes::from(body))).expect("valid request")
}

/// The `tools/call` body for an era.
pub fn call_body(era: Era, id: u64) -> Vec<u8> {
    let mut params = json!({"name": "add", "arguments": {"a": 1, "b": 2}});
    if era == Era::Modern {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        });
    }
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})).expect("json")
}

/// The JSON-RPC message in a body, whether sent as JSON or as SSE (the last `data:` line that parses).
pub fn message_of(body: &[u8]) -> anyhow::Result<Value> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)?;
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON-RPC message in body: {text:.200}"))
}

/// Asserts a `tools/call` answer is `sum = 3` (structured content), for request `id`.
pub fn check_sum(msg: &Value, id: u64) -> anyhow::Result<()> {
    let sum = msg["result"]["structuredContent"]["sum"].as_f64();
    anyhow::ensure!(msg["id"] == json!(id) && sum == Some(3.0), "wrong tools/call answer: {msg}");
    Ok(())
}

/// Opens a legacy session on this connection: `initialize`, then `notifications/initialized`.
pub async fn open_session(sender: &mut Sender, port: u16) -> anyhow::Result<String> {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "keel-bench", "version": "0"}}});
    sender.ready().await?;
    let resp = sender.send_request(post(port, serde_json::to_vec(&init)?, LEGACY, "initialize", None)).await?;
    anyhow::ensure!(resp.status() == 200, "initialize answered {}", resp.status());
    let session = resp
        .headers()
        .get("mcp-session-id")
        .ok_or_else(|| anyhow::anyhow!("initialize gave no Mcp-Session-Id"))?
        .to_str()?
        .to_owned();
    let body = resp.into_body().collect().await?.to_bytes();
    let msg = message_of(&body)?;
    anyhow::ensure!(msg["result"]["protocolVersion"].is_string(), "bad initialize result: {msg}");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    sender.ready().await?;
    let resp = sender
        .send_request(post(port, serde_json::to_vec(&note)?, LEGACY, "notifications/initialized", Some(&session)))
        .await?;
    anyhow::ensure!(resp.status() == 202, "notifications/initialized answered {}", resp.status());
    resp.into_body().collect().await?;
    Ok(session)
}

/// One connection's loop: send calls until `until`, recording latencies (after `count_from`).
async fn worker(port: u16, era: Era, count_from: Instant, until: Instant, check_all: bool) -> anyhow::Result<Vec<u32>> {
    let mut sender = connect(port).await?;
    let session = if era == Era::Legacy { Some(open_session(&mut sender, port).await?) } else { None };
    let version = if era == Era::Modern { MODERN } else { LEGACY };
    let mut lat = Vec::with_capacity(65536);
    let mut id = 1u64;
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        sender.ready().await?;
        let resp =
            sender.send_request(post(port, call_body(era, id), version, "tools/call", session.as_deref())).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status == 200, "tools/call answered {status}: {:?}", String::from_utf8_lossy(&body));
        if check_all || id == 1 {
            check_sum(&message_of(&body)?, id)?;
        }
        if start >= count_from {
            lat.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        id += 1;
    }
    Ok(lat)
}

/// One round: `conns` connections for `warmup + measure`, counting only the measured part.
pub async fn round(
    port: u16,
    era: Era,
    conns: usize,
    warmup: Duration,
    measure: Duration,
    check_all: bool,
) -> anyhow::Result<Stats> {
    let start = Instant::now() + Duration::from_millis(50);
    let count_from = start + warmup;
    let until = count_from + measure;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conns {
        set.spawn(worker(port, era, count_from, until, check_all));
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    Ok(stats(all, measure))
}

pub fn stats(mut lat: Vec<u32>, measure: Duration) -> Stats {
    lat.sort_unstable();
    let pct = |p: f64| if lat.is_empty() { f64::NAN } else { lat[((lat.len() - 1) as f64 * p) as usize] as f64 };
    Stats { rps: lat.len() as f64 / measure.as_secs_f64(), p50_us: pct(0.5), p99_us: pct(0.99) }
}

/// Opens `n` idle legacy sessions over a few keep-alive connections.
pub async fn open_sessions(port: u16, n: usize) -> anyhow::Result<()> {
    let conns = 8;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..conns {
        let share = n / conns + usize::from(c < n % conns);
        set.spawn(async move {
            let mut sender = connect(port).await?;
            for _ in 0..share {
                open_session(&mut sender, port).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}
