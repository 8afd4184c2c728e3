//! stdio round trips: a child server process driven line by line (initialize, then sequential `tools/call`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::http_load::{Era, call_body, check_sum};

/// Round trips per second over `measure` (after `warmup`) with the child started by `cmd`.
pub async fn run(
    mut cmd: tokio::process::Command,
    warmup: Duration,
    measure: Duration,
    check_all: bool,
) -> anyhow::Result<f64> {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": crate::http_load::LEGACY, "capabilities": {}, "clientInfo": {"name": "keel-bench", "version": "0"}}});
    stdin.write_all(format!("{init}\n").as_bytes()).await?;
    let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("child closed stdout"))?;
    let msg: Value = serde_json::from_str(&line)?;
    anyhow::ensure!(msg["id"] == 0 && msg["result"].is_object(), "bad initialize answer: {line}");
    stdin.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n").await?;
    let count_from = Instant::now() + warmup;
    let until = count_from + measure;
    let (mut id, mut counted) = (1u64, 0u64);
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let mut body = call_body(Era::Legacy, id);
        body.push(b'\n');
        stdin.write_all(&body).await?;
        stdin.flush().await?;
        let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("child closed stdout"))?;
        if check_all || id == 1 {
            check_sum(&serde_json::from_str(&line)?, id)?;
        }
        if now >= count_from {
            counted += 1;
        }
        id += 1;
    }
    drop(stdin);
    let _ = child.kill().await;
    Ok(counted as f64 / measure.as_secs_f64())
}
