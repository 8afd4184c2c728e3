//! The stdio line codec (also the child-process transport's): newline-delimited frames read through
//! fuzz-chosen read sizes. Frames are bounded, carry no newline, and never change with the read sizes.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use keel_mcp::transport::{FrameReader, LineReader};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

const MAX_LINE: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else { return };
    // One runtime for the whole run: building one per input cost more than the codec (2k inputs/s, not 20k+).
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime"));
    let whole = runtime.block_on(frames(stream, usize::MAX));
    let pieces = runtime.block_on(frames(stream, usize::from(step % 8) + 1));
    assert_eq!(whole, pieces, "read sizes changed the frames");
});

async fn frames(stream: &[u8], read_size: usize) -> Vec<Result<Vec<u8>, String>> {
    let mut reader = LineReader::new(Chunked { data: stream.to_vec(), at: 0, read_size }, MAX_LINE);
    let mut out = Vec::new();
    while let Some(frame) = reader.read_frame().await {
        if let Ok(line) = &frame {
            assert!(line.len() <= MAX_LINE, "a frame beyond the bound");
            assert!(!line.contains(&b'\n'), "a frame with a newline");
            assert!(!line.iter().all(u8::is_ascii_whitespace), "a blank frame");
        }
        out.push(frame.map_err(|e| e.to_string()));
    }
    out
}

/// A reader that hands out at most `read_size` bytes per read.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    read_size: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let rest = &self.data[self.at..];
        let n = rest.len().min(self.read_size).min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}
