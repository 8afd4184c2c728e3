//! Transports move framed JSON-RPC messages and know nothing of MCP methods.
//!
//! A transport splits into a [`FrameReader`] and a [`FrameWriter`]; the engine drives both. stdio and
//! child processes frame messages as newline-delimited JSON ([`stdio`], `child` with the `child-process` feature); [`memory`] connects two
//! peers in one process (tests, embedding).

use std::future::Future;
use std::io;

#[cfg(feature = "child-process")]
pub mod child;
pub mod memory;
pub mod stdio;

#[cfg(feature = "child-process")]
pub use child::{ChildProcess, ChildTransport};
#[cfg(feature = "stdio")]
pub use stdio::Stdio;
pub use stdio::{LineReader, LineWriter};

/// Why a frame could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame exceeded the size limit and was skipped; the stream goes on.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The stream failed; no more frames will come.
    Io(io::Error),
    /// The transport could not carry request `id` of this side (the server was unreachable, refused the
    /// credentials, …): the request fails with `error` instead of an answer; the stream goes on.
    RequestFailed {
        /// The request that failed.
        id: crate::protocol::RequestId,
        /// Why; what the caller of the request gets.
        error: crate::Error,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { limit } => write!(f, "message exceeds {limit} bytes"),
            FrameError::Io(e) => e.fmt(f),
            FrameError::RequestFailed { id, error } => write!(f, "request {id} failed: {error}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::TooLarge { .. } => None,
            FrameError::Io(e) => e.source(),
            FrameError::RequestFailed { error, .. } => Some(error),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// The receiving half of a transport.
pub trait FrameReader: Send + 'static {
    /// The next frame, `None` at the end of the stream.
    fn read_frame(&mut self) -> impl Future<Output = Option<Result<Vec<u8>, FrameError>>> + Send;
}

/// The sending half of a transport.
pub trait FrameWriter: Send + 'static {
    /// Queues one frame (a complete JSON-RPC message without a trailing newline).
    fn write_frame(&mut self, frame: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Pushes queued frames out.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Flushes and closes the stream (for a child process: ends it cleanly).
    fn close(self) -> impl Future<Output = io::Result<()>> + Send;
}

/// Something that splits into a frame reader and writer.
pub trait Transport: Send + 'static {
    /// The receiving half.
    type Reader: FrameReader;
    /// The sending half.
    type Writer: FrameWriter;
    /// Splits the transport.
    fn split(self) -> (Self::Reader, Self::Writer);
}

impl<R: FrameReader, W: FrameWriter> Transport for (R, W) {
    type Reader = R;
    type Writer = W;
    fn split(self) -> (R, W) {
        self
    }
}
