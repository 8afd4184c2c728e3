//! Starting `conformance-server` as a child process for a test, killed if the test fails first.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longest wait for anything in these tests.
pub const BOUND: Duration = Duration::from_secs(10);

/// A port that was free a moment ago (the server takes its port from `PORT`).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The child process, killed if a test fails before it exits.
pub struct Server {
    pub child: Option<Child>,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the server with `env` set and waits for its "serving" log line, written once it listens.
pub fn start(env: &[(&str, String)]) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conformance-server"))
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("serving MCP") {
                let _ = ready.send(());
            }
        }
    });
    let server = Server { child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], port)) };
    listening.recv_timeout(BOUND).expect("conformance-server listens");
    server
}
