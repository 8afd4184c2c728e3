//! A private Redis for a test: `redis-server` on a free loopback port, no persistence, killed when dropped.
//!
//! Include it with `#[path = "support/redis.rs"] mod redis_server;`. When `redis-server` is not installed,
//! [`RedisServer::start`] says so loudly on stderr and returns `None`: the test should return early (skip),
//! unless `KEEL_REQUIRE_REDIS=1` (set in CI), where it fails instead. Install it with
//! `apt-get install -y redis-server`.

#![allow(dead_code, reason = "each test file uses part of the helper")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a fresh `redis-server` gets to say it accepts connections.
const STARTUP: Duration = Duration::from_secs(10);

/// A running private `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free loopback port; `None` (after a loud message) when `redis-server` is missing,
    /// or a panic then with `KEEL_REQUIRE_REDIS=1`.
    pub fn start() -> Option<RedisServer> {
        if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
            assert!(
                std::env::var("KEEL_REQUIRE_REDIS").is_err(),
                "KEEL_REQUIRE_REDIS is set but `redis-server` is not installed (apt-get install -y redis-server)"
            );
            eprintln!(
                "\n*** SKIPPED: `redis-server` is not installed, so this Redis test did not run. \
                 Install it (apt-get install -y redis-server) to run it. ***\n"
            );
            return None;
        }
        let port = free_port();
        let mut server = RedisServer { child: None, port };
        server.spawn();
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (`SIGKILL`: everything it held is gone, as no persistence is configured).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes", "--loglevel", "notice"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            // Keep reading until it exits, so that its writes never block on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(());
                }
            }
        });
        self.child = Some(child);
        if ready_rx.recv_timeout(STARTUP).is_err() {
            self.stop();
            panic!("redis-server on port {} did not become ready within {STARTUP:?}", self.port);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("bound").port()
}
