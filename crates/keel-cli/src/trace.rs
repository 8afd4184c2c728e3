//! `--trace`: a transport wrapper that prints every JSON-RPC message in and out, as it crosses the wire.
//!
//! Keel's [`Transport`] is public, so the wrapper sits between the engine and any transport (stdio child,
//! streamable HTTP) and sees the exact frames: no hook inside Keel is needed.
//!
//! Text lines: `[trace +0.012345s] -> {json}` (`->` sent, `<-` received, `!!` a request the transport could
//! not carry). JSON mode: `{"trace":{"t":0.012345,"dir":"out","message":{…}}}`.

use std::io;

use keel_mcp::transport::{FrameError, FrameReader, FrameWriter, Transport};
use serde_json::{Value, json};

use crate::output::Output;

/// A transport whose frames are printed.
pub struct Traced<T> {
    inner: T,
    output: Output,
}

impl<T> Traced<T> {
    pub fn new(inner: T, output: Output) -> Self {
        Traced { inner, output }
    }
}

impl<T: Transport> Transport for Traced<T> {
    type Reader = TracedReader<T::Reader>;
    type Writer = TracedWriter<T::Writer>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        let (reader, writer) = self.inner.split();
        (
            TracedReader { inner: reader, output: self.output.clone() },
            TracedWriter { inner: writer, output: self.output },
        )
    }
}

pub struct TracedReader<R> {
    inner: R,
    output: Output,
}

pub struct TracedWriter<W> {
    inner: W,
    output: Output,
}

impl<R: FrameReader> FrameReader for TracedReader<R> {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let frame = self.inner.read_frame().await;
        match &frame {
            Some(Ok(bytes)) => print(&self.output, "in", bytes),
            Some(Err(FrameError::RequestFailed { id, error })) => {
                let t = self.output.elapsed();
                let value = json!({ "t": t, "dir": "failed", "id": id, "error": error.to_string() });
                self.output.event("trace", value, || format!("[trace +{t:.6}s] !! request {id} failed: {error}"));
            }
            Some(Err(other)) => {
                let t = self.output.elapsed();
                let value = json!({ "t": t, "dir": "error", "error": other.to_string() });
                self.output.event("trace", value, || format!("[trace +{t:.6}s] !! {other}"));
            }
            None => {}
        }
        frame
    }
}

impl<W: FrameWriter> FrameWriter for TracedWriter<W> {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        print(&self.output, "out", frame);
        self.inner.write_frame(frame).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    async fn close(self) -> io::Result<()> {
        self.inner.close().await
    }
}

fn print(output: &Output, dir: &str, frame: &[u8]) {
    let t = output.elapsed();
    let text = String::from_utf8_lossy(frame);
    let message = serde_json::from_slice::<Value>(frame).unwrap_or_else(|_| Value::String(text.clone().into_owned()));
    let arrow = if dir == "out" { "->" } else { "<-" };
    output.event("trace", json!({ "t": t, "dir": dir, "message": message }), || {
        format!("[trace +{t:.6}s] {arrow} {text}")
    });
}
