//! One of this crate's example binaries run as a child process, as a user would run it. `cargo test
//! --all-features` builds the examples into `target/<profile>/examples/` beside the test binaries.

#![allow(dead_code, reason = "each test file uses part of the helper")]

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

/// A running example that printed `… listening on http://127.0.0.1:PORT/…`. Killed when dropped.
pub struct ExampleProcess {
    pub child: tokio::process::Child,
    pub port: u16,
}

/// `target/<profile>/examples/NAME`; fails with the command that builds it when it is missing.
pub fn example_binary(name: &str, features: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test --all-features` (it builds the examples) or `cargo build --example {name} \
         --features {features}` first",
        binary.display()
    );
    binary
}

impl ExampleProcess {
    /// Starts the example with `args` and waits (at most 30 s) for its "listening" line.
    pub async fn start(name: &str, features: &str, args: &[&str]) -> ExampleProcess {
        let mut child = tokio::process::Command::new(example_binary(name, features))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        assert!(line.contains("listening"), "{name} printed {line:?} instead of its listening line");
        let port = line.split("127.0.0.1:").nth(1).and_then(|rest| rest.split('/').next()).unwrap().parse().unwrap();
        ExampleProcess { child, port }
    }

    /// Sends SIGTERM and asserts the example exits cleanly within 10 s.
    pub async fn stop_with_sigterm(mut self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        assert!(exit.success(), "exits cleanly on SIGTERM: {exit:?}");
    }
}
