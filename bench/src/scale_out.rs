//! Scale-out rows: legacy `tools/call` with sessions in Redis (keel-mcp feature `redis`) against sessions in
//! memory, one instance against two (each session's calls alternating between them, as behind a round-robin load
//! balancer), and what each call costs Redis: commands (`INFO stats` before and after a counted run) and round
//! trips (counted by a relay between the instances and Redis: a burst of bytes toward Redis after its last answer
//! starts one, so pipelined commands count once).
//!
//! Redis is a private `redis-server` (free loopback port, no persistence, killed when done); without one
//! installed the section says so in the report and is skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use serde_json::json;

use crate::http_load::{self, SpreadSession};
use crate::{Plan, Report, ServerProc, median, pct};

/// Calls in the counted run that measures Redis commands per call.
const COUNTED_CALLS: u64 = 200;

/// A private `redis-server`, killed on drop.
struct RedisProc {
    child: Child,
    port: u16,
}

impl RedisProc {
    /// `None` when `redis-server` is not installed.
    fn start() -> anyhow::Result<Option<RedisProc>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let redis = RedisProc { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.command(&["PING"]).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not answer PING within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(redis))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// One command; the reply's text (a status line, or a bulk string's bytes).
    fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        match line.split_at_checked(1) {
            Some(("+", status)) => Ok(status.to_owned()),
            Some(("$", len)) => {
                let mut body = vec![0; len.parse::<usize>()? + 2];
                reader.read_exact(&mut body)?;
                body.truncate(body.len() - 2);
                Ok(String::from_utf8(body)?)
            }
            _ => anyhow::bail!("unexpected Redis reply {line:?}"),
        }
    }

    /// Commands Redis has executed before this query (which is counted once it is done: two readings differ by
    /// the first one too).
    fn commands_processed(&self) -> anyhow::Result<u64> {
        let info = self.command(&["INFO", "stats"])?;
        let total = info
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .ok_or_else(|| anyhow::anyhow!("no total_commands_processed in INFO stats"))?;
        Ok(total.trim().parse::<u64>()?)
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay to Redis counting round trips (see the module docs). It runs on a thread of its own, so that it
/// keeps relaying while the harness blocks (waiting for a server to start); the thread ends with the process.
struct CountingRelay {
    port: u16,
    trips: Arc<AtomicU64>,
}

impl CountingRelay {
    fn start(redis_port: u16) -> anyhow::Result<CountingRelay> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let trips = Arc::new(AtomicU64::new(0));
        let counter = trips.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::spawn(move || runtime.block_on(Self::relay(listener, redis_port, counter)));
        Ok(CountingRelay { port, trips })
    }

    async fn relay(listener: std::net::TcpListener, redis_port: u16, counter: Arc<AtomicU64>) {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        {
            while let Ok((client, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let awaiting = Arc::new(AtomicBool::new(false));
                    let awaiting_reply = awaiting.clone();
                    let toward_redis = async move {
                        let mut buf = vec![0; 16 * 1024];
                        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                            if !awaiting.swap(true, Ordering::Relaxed) {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let from_redis = async move {
                        let mut buf = vec![0; 16 * 1024];
                        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                            awaiting_reply.store(false, Ordering::Relaxed);
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::join!(toward_redis, from_redis);
                });
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}

/// Redis commands and round trips per `tools/call` in an existing session, its calls going round-robin over
/// `ports` (instances that reach Redis through `relay`): the session is opened and every instance called once
/// first (taking a session over costs a load, once), then `COUNTED_CALLS` calls are counted.
async fn cost_per_call(redis: &RedisProc, relay: &CountingRelay, ports: &[u16]) -> anyhow::Result<(f64, f64)> {
    let mut session = SpreadSession::open(ports).await?;
    for _ in 0..ports.len() {
        session.call(true).await?;
    }
    let (commands, trips) = (redis.commands_processed()?, relay.trips());
    for _ in 0..COUNTED_CALLS {
        session.call(true).await?;
    }
    // Anything an instance writes in the background after answering (event logs) belongs to the calls too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Less the first INFO itself.
    let commands = redis.commands_processed()?.saturating_sub(commands + 1) as f64 / COUNTED_CALLS as f64;
    let trips = relay.trips().saturating_sub(trips) as f64 / COUNTED_CALLS as f64;
    Ok((commands, trips))
}

pub async fn bench(report: &mut Report, plan: &Plan, quick: bool) -> anyhow::Result<()> {
    let title =
        "Scale-out: legacy `tools/call`, sessions in memory or in Redis (one instance or two, calls alternating)";
    let header = [
        "sessions",
        "instances",
        "connections",
        "req/s",
        "p50 µs",
        "p99 µs",
        "% of in memory",
        "Redis commands per call",
        "Redis round trips per call",
    ];
    report.section(title, &header);
    let Some(redis) = RedisProc::start()? else {
        let mut row = vec![String::new(); header.len()];
        row[0] = "skipped: redis-server is not installed".into();
        report.row(&row);
        return Ok(());
    };
    let url = redis.url();
    let memory = ServerProc::spawn("keel")?;
    let shared = [
        ServerProc::spawn_with_env("keel-redis", &[("REDIS_URL", &url)])?,
        ServerProc::spawn_with_env("keel-redis", &[("REDIS_URL", &url)])?,
    ];
    let setups: [(&str, Vec<u16>); 3] = [
        ("in memory", vec![memory.port]),
        ("Redis", vec![shared[0].port]),
        ("Redis", vec![shared[0].port, shared[1].port]),
    ];
    let conns: &[usize] = if quick { &[1, 32] } else { &[1, 32, 256] };
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for &c in conns {
        // Rounds rotate through the setups, so a slow stretch of the machine hits all alike.
        let mut rounds: Vec<Vec<http_load::Stats>> = setups.iter().map(|_| Vec::new()).collect();
        for _ in 0..plan.rounds {
            for ((_, ports), rounds) in setups.iter().zip(&mut rounds) {
                rounds.push(http_load::spread_round(ports, c, plan.warmup, plan.measure, quick).await?);
            }
        }
        for ((name, ports), rounds) in setups.iter().zip(rounds) {
            let rps = median(rounds.iter().map(|s| s.rps).collect());
            let p50 = median(rounds.iter().map(|s| s.p50_us).collect());
            let p99 = median(rounds.iter().map(|s| s.p99_us).collect());
            anyhow::ensure!(rps > 0.0, "{name} x{} answered nothing at {c} connections", ports.len());
            results.push((*name, ports.len(), c, rps, p50, p99));
        }
    }
    // Counted on instances of their own that reach Redis through the relay (the timed ones do not pay its hop).
    let relay = CountingRelay::start(redis.port)?;
    let counted = [
        ServerProc::spawn_with_env("keel-redis", &[("REDIS_URL", &relay.url())])?,
        ServerProc::spawn_with_env("keel-redis", &[("REDIS_URL", &relay.url())])?,
    ];
    let per_call = [
        cost_per_call(&redis, &relay, &[counted[0].port]).await?,
        cost_per_call(&redis, &relay, &[counted[0].port, counted[1].port]).await?,
    ];
    for &(name, instances, c, rps, p50, p99) in &results {
        let base = results.iter().find(|r| r.0 == "in memory" && r.2 == c).map_or(f64::NAN, |r| r.3);
        let cost = match (name, instances) {
            ("in memory", _) => None,
            (_, 1) => Some(per_call[0]),
            _ => Some(per_call[1]),
        };
        report.row(&[
            name.into(),
            instances.to_string(),
            c.to_string(),
            format!("{rps:.0}"),
            format!("{p50:.0}"),
            format!("{p99:.0}"),
            pct(rps, base),
            cost.map_or("—".into(), |(commands, _)| format!("{commands:.2}")),
            cost.map_or("—".into(), |(_, trips)| format!("{trips:.2}")),
        ]);
        rows.push(json!({"sessions": name, "instances": instances, "connections": c, "rps": rps, "p50_us": p50,
            "p99_us": p99, "redis_commands_per_call": cost.map(|c| c.0), "redis_round_trips_per_call": cost.map(|c| c.1)}));
    }
    report.json.insert("scale_out".into(), rows.into());
    Ok(())
}
