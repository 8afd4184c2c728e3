//! `conformance-server` exits with code 0 within 2 s of SIGTERM or SIGINT, even while a legacy client holds
//! its GET stream open (the stream is ended with a `retry` hint, the process does not wait for the client).

#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

mod server_process;
use server_process::{BOUND, start};

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
}

fn post(addr: SocketAddr, body: &str, session: Option<&str>) -> String {
    let mut stream = connect(addr);
    let session = session.map(|s| format!("mcp-session-id: {s}\r\n")).unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nconnection: close\r\n{session}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Initializes a legacy session and opens its GET stream (read up to the priming event).
fn open_legacy_stream(addr: SocketAddr) -> TcpStream {
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let response = post(addr, init, None);
    let session = response
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap_or_else(|| panic!("no session id in {response}"))
        .trim()
        .to_owned();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert!(post(addr, initialized, Some(&session)).starts_with("HTTP/1.1 202"));
    let mut stream = connect(addr);
    let get = format!(
        "GET /mcp HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\nmcp-session-id: {session}\r\n\r\n"
    );
    stream.write_all(get.as_bytes()).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains("data:") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the GET stream closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    stream
}

fn exits_cleanly_on(signal: &str) {
    let mut server = start(&[]);
    let mut stream = open_legacy_stream(server.addr);
    let sent = Instant::now();
    let mut child = server.child.take().expect("started above");
    let pid = child.id();
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success());
    // Wait for the exit on another thread, so that the wait is bounded here.
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let exit = exit
        .recv_timeout(Duration::from_secs(2).saturating_sub(sent.elapsed()))
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("still running 2 s after {signal}")
        })
        .unwrap();
    assert_eq!(exit.code(), Some(0), "exit status after {signal}: {exit:?}");
    // The stream was ended by the server with a reconnection hint.
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
    assert!(rest.contains("retry: "), "{rest}");
}

#[test]
fn sigterm_with_a_legacy_get_stream_open_exits_0_within_2_s() {
    exits_cleanly_on("-TERM");
}

#[test]
fn sigint_with_a_legacy_get_stream_open_exits_0_within_2_s() {
    exits_cleanly_on("-INT");
}
