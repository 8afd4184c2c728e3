//! The child-process transport: frames cross the pipe, and shutdown closes stdin, then escalates to
//! SIGTERM and SIGKILL when the child will not go.
#![cfg(unix)]

use std::time::{Duration, Instant};

use keel_mcp::Limits;
use keel_mcp::transport::{ChildProcess, FrameReader, FrameWriter, Transport};

fn quick() -> Limits {
    Limits::default().shutdown_grace(Duration::from_millis(200))
}

#[tokio::test]
async fn frames_round_trip_through_a_child() {
    let child = ChildProcess::new("cat").limits(quick()).spawn().unwrap();
    let (mut reader, mut writer) = child.split();
    writer.write_frame(br#"{"jsonrpc":"2.0","method":"x"}"#).await.unwrap();
    writer.flush().await.unwrap();
    let echoed = reader.read_frame().await.unwrap().unwrap();
    assert_eq!(echoed, br#"{"jsonrpc":"2.0","method":"x"}"#);
    let started = Instant::now();
    writer.close().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(200), "cat exits as soon as stdin closes");
    assert!(reader.read_frame().await.is_none(), "stdout ends with the child");
}

#[tokio::test]
async fn a_child_that_ignores_stdin_is_terminated() {
    // Ignores stdin and SIGTERM: only SIGKILL ends it.
    let child = ChildProcess::new("sh").args(["-c", "trap '' TERM; sleep 30"]).limits(quick()).spawn().unwrap();
    let (_reader, writer) = child.split();
    let started = Instant::now();
    writer.close().await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "waited a grace period after stdin and after SIGTERM: {took:?}");
    assert!(took < Duration::from_secs(5), "then killed it: {took:?}");
}

#[tokio::test]
async fn a_child_that_honours_sigterm_stops_there() {
    let child = ChildProcess::new("sh").args(["-c", "sleep 30"]).limits(quick()).spawn().unwrap();
    let (_reader, writer) = child.split();
    let started = Instant::now();
    writer.close().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stderr_is_captured_not_inherited_and_oversized_lines_are_skipped() {
    let script = "head -c 100 /dev/zero | tr '\\0' x; echo; echo '{\"ok\":true}'; echo noise >&2";
    let limits = quick().max_message_bytes(50);
    let child = ChildProcess::new("sh").args(["-c", script]).limits(limits).spawn().unwrap();
    let (mut reader, _writer) = child.split();
    assert!(matches!(reader.read_frame().await, Some(Err(keel_mcp::transport::FrameError::TooLarge { limit: 50 }))));
    assert_eq!(reader.read_frame().await.unwrap().unwrap(), br#"{"ok":true}"#);
}
