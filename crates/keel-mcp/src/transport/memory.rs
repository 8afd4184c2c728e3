//! Two transports joined in memory, for tests and for embedding a server in the same process as its client.
//! Frames pass as they are, with no line codec in between; like a pipe, the connection holds a bounded number
//! of frames in flight and closes for the reader once the writer is gone.

use std::io;

use tokio::sync::mpsc;

use super::{FrameError, FrameReader, FrameWriter, Transport};

/// Frames in flight per direction before a writer waits.
const CAPACITY: usize = 256;

/// One end of an in-memory connection.
#[derive(Debug)]
pub struct MemoryTransport {
    reader: MemoryReader,
    writer: MemoryWriter,
}

/// Two connected ends; what one writes, the other reads.
pub fn pair() -> (MemoryTransport, MemoryTransport) {
    let (a_tx, a_rx) = mpsc::channel(CAPACITY);
    let (b_tx, b_rx) = mpsc::channel(CAPACITY);
    let max_frame = crate::Limits::default().max_message_bytes;
    (
        MemoryTransport { reader: MemoryReader { rx: b_rx, max_frame }, writer: MemoryWriter { tx: Some(a_tx) } },
        MemoryTransport { reader: MemoryReader { rx: a_rx, max_frame }, writer: MemoryWriter { tx: Some(b_tx) } },
    )
}

impl Transport for MemoryTransport {
    type Reader = MemoryReader;
    type Writer = MemoryWriter;

    fn split(self) -> (MemoryReader, MemoryWriter) {
        (self.reader, self.writer)
    }
}

/// The receiving half of a [`MemoryTransport`].
#[derive(Debug)]
pub struct MemoryReader {
    rx: mpsc::Receiver<Vec<u8>>,
    max_frame: usize,
}

impl FrameReader for MemoryReader {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let frame = self.rx.recv().await?;
        // The same bound a pipe's line reader enforces.
        Some(if frame.len() > self.max_frame { Err(FrameError::TooLarge { limit: self.max_frame }) } else { Ok(frame) })
    }
}

/// The sending half of a [`MemoryTransport`].
#[derive(Debug)]
pub struct MemoryWriter {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

impl FrameWriter for MemoryWriter {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or(io::ErrorKind::BrokenPipe)?;
        tx.send(frame.to_vec()).await.map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn close(mut self) -> io::Result<()> {
        self.tx = None;
        Ok(())
    }
}
