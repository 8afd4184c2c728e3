//! Build cost (opt-in, `--build-cost`): clean `cargo build --release` of a minimal stdio server on Keel and on rmcp.
//! The two throwaway crates are generated here in a temporary directory, each with its own target directory.

use std::path::Path;
use std::time::Instant;

const KEEL_MAIN: &str = r#"#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Add { a: f64, b: f64 }
#[tokio::main]
async fn main() -> Result<(), keel_mcp::Error> {
    keel_mcp::server::Server::builder(keel_mcp::protocol::Implementation::new("min", "0"))
        .tool("add", "Adds", |Add { a, b }: Add| async move { (a + b).to_string() })
        .build()
        .serve_stdio()
        .await
}
"#;

const RMCP_MAIN: &str = r#"use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServiceExt, tool, tool_router};
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Add { a: f64, b: f64 }
#[derive(Clone)]
struct Min;
#[tool_router(server_handler)]
impl Min {
    #[tool(description = "Adds")]
    fn add(&self, Parameters(Add { a, b }): Parameters<Add>) -> String { (a + b).to_string() }
}
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Min.serve(rmcp::transport::stdio()).await?.waiting().await?;
    Ok(())
}
"#;

fn write_crate(dir: &Path, name: &str, deps: &str, main: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n\
         [dependencies]\n{deps}serde = {{ version = \"1\", features = [\"derive\"] }}\n\
         schemars = \"1\"\ntokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(dir.join("src/main.rs"), main)?;
    Ok(())
}

/// Seconds for a clean release build (dependencies fetched first, so only compiling is timed).
fn build(dir: &Path) -> anyhow::Result<f64> {
    let ok = std::process::Command::new("cargo").arg("fetch").current_dir(dir).status()?.success();
    anyhow::ensure!(ok, "cargo fetch failed in {}", dir.display());
    // The harness itself is pinned to one core; a build gets them all back (`taskset -c 0-N` widens the mask).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).max(crate::cores());
    let mut cmd = if crate::pinned() {
        let mut c = std::process::Command::new("taskset");
        c.arg("-c").arg(format!("0-{}", cores - 1)).arg("cargo");
        c
    } else {
        std::process::Command::new("cargo")
    };
    let t0 = Instant::now();
    let ok = cmd
        .args(["build", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .current_dir(dir)
        .status()?
        .success();
    anyhow::ensure!(ok, "cargo build failed in {}", dir.display());
    Ok(t0.elapsed().as_secs_f64())
}

/// (Keel seconds, rmcp seconds): the median of `rounds` clean builds each, taken alternately.
pub fn run(rounds: usize) -> anyhow::Result<(f64, f64)> {
    let root = std::env::temp_dir().join(format!("keel-bench-build-{}", std::process::id()));
    let keel_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/keel-mcp").canonicalize()?;
    let keel_dep = format!(
        "keel-mcp = {{ path = {:?}, default-features = false, features = [\"server\", \"stdio\"] }}\n",
        keel_path.display().to_string()
    );
    write_crate(&root.join("keel-min"), "keel-min", &keel_dep, KEEL_MAIN)?;
    let rmcp_dep =
        "rmcp = { version = \"3\", features = [\"server\", \"macros\", \"transport-io\"] }\nanyhow = \"1\"\n";
    write_crate(&root.join("rmcp-min"), "rmcp-min", rmcp_dep, RMCP_MAIN)?;
    let (mut keel, mut rmcp) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        for (dir, times) in [("keel-min", &mut keel), ("rmcp-min", &mut rmcp)] {
            let _ = std::fs::remove_dir_all(root.join(dir).join("target"));
            times.push(build(&root.join(dir))?);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok((crate::median(keel), crate::median(rmcp)))
}
