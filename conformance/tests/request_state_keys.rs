//! `conformance-server` takes its `requestState` key ring from `REQUEST_STATE_KEYS`, and refuses to start
//! with a malformed one: falling back to a key of its own would make every other instance refuse the
//! states it seals, which shows only later, as failed input rounds.

use std::io::Read;
use std::process::{Command, Stdio};

mod server_process;
use server_process::{BOUND, start};

#[test]
fn a_malformed_key_ring_stops_the_server_at_once() {
    for ring in ["not-hex", "00ff", &format!("{},", "ab".repeat(32))] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conformance-server"))
            .env("PORT", "0")
            .env("REQUEST_STATE_KEYS", ring)
            .env_remove("REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its stderr ends when it exits.
        let mut stderr = child.stderr.take().unwrap();
        let (exited, exit) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = exited.send(text);
        });
        let Ok(stderr) = exit.recv_timeout(BOUND) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("conformance-server started with REQUEST_STATE_KEYS={ring:?}");
        };
        let status = child.wait().unwrap();
        assert!(!status.success(), "{ring:?}: {stderr}");
        assert!(stderr.contains("REQUEST_STATE_KEYS"), "{ring:?}: {stderr}");
    }
}

#[test]
fn a_well_formed_key_ring_is_served() {
    let ring = format!("{},{}", "ab".repeat(32), "CD".repeat(32));
    let server = start(&[("REQUEST_STATE_KEYS", ring)]);
    std::net::TcpStream::connect(server.addr).expect("it listens");
}
