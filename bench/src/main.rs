//! keel-bench: Keel against rmcp and against the hardware floor (issue 5).
//!
//! ```text
//! cargo run -p keel-bench --release -- [--quick] [--json out.json] [--build-cost] [--only section,...]
//! ```
//!
//! The harness spawns each server as a subprocess of itself (`keel-bench serve <kind> --port N`), pinned to core 0
//! with `taskset` when it is available, while the load generator runs here pinned to core 1. `--quick` runs every
//! benchmark briefly and asserts every answer is right (a smoke test for CI); it says nothing about speed.

mod build_cost;
mod client_load;
mod codec;
mod http_load;
mod protected;
mod scale_out;
mod servers;
mod stdio_load;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_load::Era;
use serde_json::{Value, json};

/// Counts heap allocations (for the codec benchmark); otherwise the system allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every operation to `System`; only adds a relaxed counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

pub fn alloc_count() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

struct Options {
    quick: bool,
    json: Option<String>,
    build_cost: bool,
    /// Runs only these sections (`--only stdio,codec`); all when empty.
    only: Vec<String>,
}

impl Options {
    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

/// How long things run: `--quick` is a correctness smoke test, the full run is for people.
struct Plan {
    warmup: Duration,
    measure: Duration,
    rounds: usize,
    conns: &'static [usize],
    sessions: usize,
    codec_iters: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                warmup: Duration::from_millis(100),
                measure: Duration::from_millis(300),
                rounds: 1,
                conns: &[1, 32, 256],
                sessions: 300,
                codec_iters: 2_000,
            }
        } else {
            Plan {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(3),
                rounds: 3,
                conns: &[1, 32, 256],
                sessions: 10_000,
                codec_iters: 200_000,
            }
        }
    }
}

/// Whether `taskset` exists and there are two cores to split between servers and load (checked before pinning).
fn has_taskset() -> bool {
    std::process::Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success())
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Set in the re-executed, pinned harness: servers then go to core 0.
fn pinned() -> bool {
    std::env::var_os("KEEL_BENCH_PINNED").is_some()
}

/// Cores online (the harness's own affinity mask may show fewer).
fn cores() -> usize {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines().filter(|l| l.starts_with("processor")).count().max(1)
}

/// A server subprocess, killed on drop.
struct ServerProc {
    child: std::process::Child,
    port: u16,
}

impl ServerProc {
    fn spawn(kind: &str) -> anyhow::Result<ServerProc> {
        ServerProc::spawn_with_env(kind, &[])
    }

    /// Spawns with extra environment variables (`REDIS_URL` for `keel-redis`).
    fn spawn_with_env(kind: &str, env: &[(&str, &str)]) -> anyhow::Result<ServerProc> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let mut cmd = server_command(kind, Some(port), true);
        cmd.envs(env.iter().copied());
        // What a server says before it listens is kept, to say why one did not start.
        let log = std::env::temp_dir().join(format!("keel-bench-{}-{port}.stderr", std::process::id()));
        let mut child = cmd.stderr(std::fs::File::create(&log)?).spawn()?;
        // 30 s: an instance that is the first on an empty Redis waits (7 s by default) for running instances
        // to renew their claims before it takes a number and listens.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let started = loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break Ok(());
            }
            if let Some(status) = child.try_wait()? {
                break Err(format!("exited ({status})"));
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break Err("did not listen within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        if let Err(why) = started {
            anyhow::bail!("server {kind} {why}: {}", said.trim());
        }
        Ok(ServerProc { child, port })
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmRSS"))
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keel-bench serve <kind>`: on core 0 under `taskset` when pinning is possible and `on_core_0`, else with the
/// harness's own affinity (core 1 when pinned).
fn server_command(kind: &str, port: Option<u16>, on_core_0: bool) -> std::process::Command {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = if on_core_0 && pinned() {
        let mut c = std::process::Command::new("taskset");
        c.arg("-c").arg("0").arg(exe);
        c
    } else {
        std::process::Command::new(exe)
    };
    cmd.arg("serve").arg(kind);
    if let Some(p) = port {
        cmd.arg("--port").arg(p.to_string());
    }
    cmd
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Report {
    md: String,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn section(&mut self, title: &str, header: &[&str]) {
        self.md.push_str(&format!("\n### {title}\n\n| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len())));
    }
    fn row(&mut self, cells: &[String]) {
        self.md.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
}

fn pct(a: f64, b: f64) -> String {
    format!("{:.0} %", 100.0 * a / b)
}

async fn http_bench(report: &mut Report, plan: &Plan, era: Era, quick: bool) -> anyhow::Result<()> {
    let (title, kinds): (&str, &[(&str, &str)]) = match era {
        Era::Modern => (
            "HTTP, modern era (2026-07-28 stateless `tools/call`)",
            &[("Keel", "keel"), ("rmcp", "rmcp"), ("floor (bare hyper)", "floor")],
        ),
        Era::Legacy => (
            "HTTP, legacy era (`Mcp-Session-Id` session)",
            &[("Keel", "keel"), ("rmcp", "rmcp-legacy"), ("floor (bare hyper)", "floor")],
        ),
    };
    report.section(title, &["server", "connections", "req/s", "p50 µs", "p99 µs", "% of floor"]);
    // Every server stays up (idle ones cost nothing) and the rounds rotate through them, so a slow stretch of
    // this shared machine hits all of them alike instead of skewing one server's numbers.
    let servers =
        kinds.iter().map(|&(name, kind)| Ok((name, ServerProc::spawn(kind)?))).collect::<anyhow::Result<Vec<_>>>()?;
    let mut results: Vec<(&str, usize, f64, f64, f64)> = Vec::new();
    for &conns in plan.conns {
        let mut rounds: Vec<Vec<http_load::Stats>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..plan.rounds {
            for ((_, server), rounds) in servers.iter().zip(&mut rounds) {
                rounds.push(http_load::round(server.port, era, conns, plan.warmup, plan.measure, quick, None).await?);
            }
        }
        for ((name, _), rounds) in servers.iter().zip(rounds) {
            let rps = median(rounds.iter().map(|s| s.rps).collect());
            let p50 = median(rounds.iter().map(|s| s.p50_us).collect());
            let p99 = median(rounds.iter().map(|s| s.p99_us).collect());
            anyhow::ensure!(rps > 0.0, "{name} answered nothing at {conns} connections");
            results.push((name, conns, rps, p50, p99));
        }
    }
    // The table lists each server's rows together.
    results.sort_by_key(|r| kinds.iter().position(|k| k.0 == r.0));
    let key = if era == Era::Modern { "http_modern" } else { "http_legacy" };
    let mut rows = Vec::new();
    for &(name, conns, rps, p50, p99) in &results {
        let floor = results.iter().find(|r| r.0.starts_with("floor") && r.1 == conns).map_or(f64::NAN, |r| r.2);
        report.row(&[
            name.into(),
            conns.to_string(),
            format!("{rps:.0}"),
            format!("{p50:.0}"),
            format!("{p99:.0}"),
            pct(rps, floor),
        ]);
        rows.push(json!({"server": name, "connections": conns, "rps": rps, "p50_us": p50, "p99_us": p99}));
    }
    report.json.insert(key.into(), rows.into());
    Ok(())
}

/// Protected `tools/call` as a share of the same server unprotected, in both eras. Every request carries the same
/// token, as a client's do: `JwtVerifier` checks its signature once (after fetching the JWKS once) and then finds
/// it in its verified-token cache, so the row measures what protection costs a steady client. Both servers run
/// side by side and the rounds alternate between them, as in [`http_bench`].
async fn protected_bench(report: &mut Report, plan: &Plan, quick: bool) -> anyhow::Result<()> {
    report.section(
        "HTTP, protected `tools/call` (one ES256 JWT checked by `JwtVerifier`: JWKS and verified token cached; \
         goal ≥ 90 %)",
        &["era", "connections", "unprotected req/s", "protected req/s", "protected p50 µs", "% of unprotected"],
    );
    let credentials = protected::credentials()?;
    let plain = ServerProc::spawn("keel")?;
    let guarded = ServerProc::spawn_with_env("keel-protected", &[(protected::JWK_ENV, &credentials.jwk)])?;
    let refused = http_load::call_status(guarded.port, None).await?;
    anyhow::ensure!(refused == 401, "the protected server answered {refused} to a call without a token, not 401");
    let mut rows = Vec::new();
    for (era, era_name) in [(Era::Modern, "modern"), (Era::Legacy, "legacy")] {
        for &conns in plan.conns {
            let (mut open, mut shut) = (Vec::new(), Vec::new());
            for _ in 0..plan.rounds {
                open.push(http_load::round(plain.port, era, conns, plan.warmup, plan.measure, quick, None).await?);
                let token = Some(credentials.token.clone());
                shut.push(http_load::round(guarded.port, era, conns, plan.warmup, plan.measure, quick, token).await?);
            }
            let rps = |s: &[http_load::Stats]| median(s.iter().map(|s| s.rps).collect());
            let (open_rps, shut_rps) = (rps(&open), rps(&shut));
            let p50 = median(shut.iter().map(|s| s.p50_us).collect());
            anyhow::ensure!(shut_rps > 0.0, "the protected server answered nothing at {conns} connections");
            report.row(&[
                era_name.into(),
                conns.to_string(),
                format!("{open_rps:.0}"),
                format!("{shut_rps:.0}"),
                format!("{p50:.0}"),
                pct(shut_rps, open_rps),
            ]);
            rows.push(json!({"era": era_name, "connections": conns, "unprotected_rps": open_rps,
                "protected_rps": shut_rps, "protected_p50_us": p50}));
        }
    }
    report.json.insert("http_protected".into(), rows.into());
    Ok(())
}

/// What an operation layer and telemetry cost on stateless `tools/call` (modern era), as a share of the same server
/// without them: `keel-layered` has one `from_fn` layer that only passes operations on (goal ≥ 95 %), `keel-otel`
/// (built with `--features otel` only) has telemetry on with SDK exporters that discard everything. All run side
/// by side and the rounds rotate through them, as in [`http_bench`].
async fn layers_bench(report: &mut Report, plan: &Plan, quick: bool) -> anyhow::Result<()> {
    report.section(
        "HTTP, stateless `tools/call` with middleware and telemetry (goal for the no-op layer ≥ 95 %)",
        &["server", "connections", "req/s", "p50 µs", "% of Keel"],
    );
    let mut kinds = vec![("Keel", "keel"), ("Keel + no-op layer", "keel-layered")];
    if cfg!(feature = "otel") {
        kinds.push(("Keel + telemetry (exporting nowhere)", "keel-otel"));
    }
    let servers =
        kinds.iter().map(|&(name, kind)| Ok((name, ServerProc::spawn(kind)?))).collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    for &conns in plan.conns {
        let mut rounds: Vec<Vec<http_load::Stats>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..plan.rounds {
            for ((_, server), rounds) in servers.iter().zip(&mut rounds) {
                rounds.push(
                    http_load::round(server.port, Era::Modern, conns, plan.warmup, plan.measure, quick, None).await?,
                );
            }
        }
        let rps = |s: &[http_load::Stats]| median(s.iter().map(|s| s.rps).collect());
        let plain = rps(&rounds[0]);
        for ((name, _), rounds) in servers.iter().zip(&rounds) {
            let (rps, p50) = (rps(rounds), median(rounds.iter().map(|s| s.p50_us).collect()));
            anyhow::ensure!(rps > 0.0, "{name} answered nothing at {conns} connections");
            report.row(&[(*name).into(), conns.to_string(), format!("{rps:.0}"), format!("{p50:.0}"), pct(rps, plain)]);
            rows.push(json!({"server": name, "connections": conns, "rps": rps, "p50_us": p50}));
        }
    }
    if !cfg!(feature = "otel") {
        report.md.push_str("\n(The telemetry row needs keel-bench built with `--features otel`.)\n");
    }
    report.json.insert("http_layers".into(), rows.into());
    Ok(())
}

/// stdio is measured two ways. With the child on the harness's own core, a round trip costs two context switches
/// and the rest is each side's CPU work, so the ratio shows what the SDK spends per message. With the child on the
/// other core, every round trip waits for two cross-core wake-ups, which dominate and hide most of that work.
async fn stdio_bench(report: &mut Report, plan: &Plan, quick: bool) -> anyhow::Result<()> {
    report.section(
        "stdio (sequential `tools/call` round trips through a child process)",
        &["child process on", "server", "round trips/s", "% of echo"],
    );
    let mut rows = Vec::new();
    for (placement, separate) in [("the harness's core", false), ("the other core", true)] {
        let kinds = [("Keel", "keel-stdio"), ("rmcp", "rmcp-stdio"), ("raw line echo", "echo-stdio")];
        // Rounds rotate through the servers, as for HTTP.
        let mut rounds: Vec<Vec<f64>> = kinds.iter().map(|_| Vec::new()).collect();
        for _ in 0..plan.rounds {
            for ((_, kind), rounds) in kinds.iter().zip(&mut rounds) {
                let cmd = tokio::process::Command::from(server_command(kind, None, separate));
                rounds.push(stdio_load::run(cmd, plan.warmup, plan.measure, quick).await?);
            }
        }
        let results: Vec<(&str, f64)> = kinds.iter().zip(rounds).map(|((name, _), r)| (*name, median(r))).collect();
        let echo = results[2].1;
        for (name, rate) in results {
            report.row(&[placement.into(), name.into(), format!("{rate:.0}"), pct(rate, echo)]);
            rows.push(json!({"server": name, "separate_cores": separate, "round_trips_per_s": rate}));
        }
        if !pinned() {
            break; // Without taskset there is only one placement.
        }
    }
    report.json.insert("stdio".into(), rows.into());
    Ok(())
}

async fn memory_bench(report: &mut Report, plan: &Plan) -> anyhow::Result<()> {
    let title = format!("Memory: resident set with {} idle legacy sessions", plan.sessions);
    report.section(&title, &["server", "RSS before (MiB)", "RSS after (MiB)", "KiB per session"]);
    let mut rows = Vec::new();
    for (name, kind) in [("Keel", "keel"), ("rmcp", "rmcp-legacy")] {
        let server = ServerProc::spawn(kind)?;
        let before = server.rss_kib()?;
        http_load::open_sessions(server.port, plan.sessions).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = server.rss_kib()?;
        let per = (after.saturating_sub(before)) as f64 / plan.sessions as f64;
        report.row(&[
            name.into(),
            format!("{:.1}", before as f64 / 1024.0),
            format!("{:.1}", after as f64 / 1024.0),
            format!("{per:.2}"),
        ]);
        rows.push(json!({"server": name, "sessions": plan.sessions, "rss_before_kib": before, "rss_after_kib": after}));
    }
    report.json.insert("memory".into(), rows.into());
    Ok(())
}

fn codec_bench(report: &mut Report, plan: &Plan) -> anyhow::Result<()> {
    report.section("Codec: decode a `tools/call` request and encode its result", &["codec", "ns", "allocations"]);
    let mut rows = Vec::new();
    for c in codec::run(plan.codec_iters)? {
        report.row(&[c.name.into(), format!("{:.0}", c.ns), format!("{:.1}", c.allocs)]);
        rows.push(json!({"codec": c.name, "ns": c.ns, "allocs": c.allocs}));
    }
    report.json.insert("codec".into(), rows.into());
    Ok(())
}

async fn client_bench(report: &mut Report, plan: &Plan) -> anyhow::Result<()> {
    report.section("Client side: sequential `tools/call` against the floor server", &["client", "calls/s"]);
    let server = ServerProc::spawn("floor")?;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let mut rows = Vec::new();
    let keel = client_load::keel(&url, plan.warmup, plan.measure).await?;
    let rmcp = client_load::rmcp(&url, plan.warmup, plan.measure).await?;
    for (name, rate) in [("Keel", keel), ("rmcp", rmcp)] {
        report.row(&[name.into(), format!("{rate:.0}")]);
        rows.push(json!({"client": name, "calls_per_s": rate}));
    }
    report.json.insert("client".into(), rows.into());
    Ok(())
}

const SECTIONS: &[&str] =
    &["http-modern", "http-legacy", "stdio", "memory", "client", "codec", "protected", "scale-out", "layers"];
const USAGE: &str = "keel-bench [--quick] [--json out.json] [--build-cost] [--only section,...]";

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut opts = Options { quick: false, json: None, build_cost: false, only: Vec::new() };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--build-cost" => opts.build_cost = true,
            "--json" => opts.json = Some(args.next().ok_or_else(|| anyhow::anyhow!("--json needs a path"))?),
            "--only" => {
                let list = args.next().ok_or_else(|| anyhow::anyhow!("--only needs a list of sections"))?;
                opts.only = list.split(',').map(str::to_owned).collect();
                if let Some(bad) = opts.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    anyhow::bail!("unknown section {bad}; sections: {}", SECTIONS.join(", "));
                }
            }
            other => {
                anyhow::bail!("unknown argument {other}; usage: {USAGE}")
            }
        }
    }
    Ok(opts)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let kind = args.get(2).ok_or_else(|| anyhow::anyhow!("serve needs a kind"))?;
        let port = match args.get(3).map(String::as_str) {
            Some("--port") => args.get(4).ok_or_else(|| anyhow::anyhow!("--port needs a value"))?.parse()?,
            _ => 0,
        };
        return servers::serve(kind, port);
    }
    // `keel-bench credentials`: a fresh JWK and a matching token, as shell assignments, for driving
    // `serve keel-protected` by hand (bench/callgrind/run --kind keel-protected).
    if args.get(1).map(String::as_str) == Some("credentials") {
        let credentials = protected::credentials()?;
        println!("{}='{}'", protected::JWK_ENV, credentials.jwk);
        println!("KEEL_BENCH_TOKEN='{}'", credentials.token);
        return Ok(());
    }
    let opts = parse_args()?;
    // Pin the load generator to core 1 (servers go to core 0) by re-running ourselves under taskset.
    if !pinned() && has_taskset() {
        let status = std::process::Command::new("taskset")
            .arg("-c")
            .arg("1")
            .args(&args)
            .env("KEEL_BENCH_PINNED", "1")
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let plan = Plan::new(opts.quick);
    let started = std::time::Instant::now();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut report = Report { md: String::new(), json: serde_json::Map::new() };
    report.md.push_str(&format!(
        "## keel-bench{} — {} cores, servers on core 0 and load on core 1: {}, load average at start: {}\n",
        if opts.quick { " --quick (correctness smoke test, numbers mean nothing)" } else { "" },
        cores(),
        pinned(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    ));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        if opts.runs("http-modern") {
            http_bench(&mut report, &plan, Era::Modern, opts.quick).await?;
        }
        if opts.runs("http-legacy") {
            http_bench(&mut report, &plan, Era::Legacy, opts.quick).await?;
        }
        if opts.runs("protected") {
            protected_bench(&mut report, &plan, opts.quick).await?;
        }
        if opts.runs("layers") {
            layers_bench(&mut report, &plan, opts.quick).await?;
        }
        if opts.runs("stdio") {
            stdio_bench(&mut report, &plan, opts.quick).await?;
        }
        if opts.runs("memory") {
            memory_bench(&mut report, &plan).await?;
        }
        if opts.runs("client") {
            client_bench(&mut report, &plan).await?;
        }
        if opts.runs("scale-out") {
            scale_out::bench(&mut report, &plan, opts.quick).await?;
        }
        anyhow::Ok(())
    })?;
    if opts.runs("codec") {
        codec_bench(&mut report, &plan)?;
    }
    if opts.build_cost {
        report.section(
            "Build cost: clean `cargo build --release` of a minimal stdio server (median of alternating builds)",
            &["SDK", "seconds", "% of rmcp"],
        );
        let (keel, rmcp) = build_cost::run(plan.rounds)?;
        report.row(&["Keel".into(), format!("{keel:.1}"), pct(keel, rmcp)]);
        report.row(&["rmcp".into(), format!("{rmcp:.1}"), pct(rmcp, rmcp)]);
        report.json.insert("build_cost_s".into(), json!({"keel": keel, "rmcp": rmcp}));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report.md.push_str(&format!(
        "\nTook {:.0} s; load average at end: {}\n",
        started.elapsed().as_secs_f64(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    ));
    println!("{}", report.md);
    if let Some(path) = opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&Value::Object(report.json))?)?;
    }
    Ok(())
}
