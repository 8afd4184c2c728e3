//! Two transports joined in memory, for tests and for embedding a server in the same process as its client.
//! They use the same line codec as stdio, so what works here works over a pipe.

use tokio::io::{DuplexStream, ReadHalf, WriteHalf};

use super::{LineReader, LineWriter, Transport};

/// One end of an in-memory connection.
#[derive(Debug)]
pub struct MemoryTransport {
    stream: DuplexStream,
    max_line: usize,
}

/// Two connected ends; what one writes, the other reads.
pub fn pair() -> (MemoryTransport, MemoryTransport) {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let max_line = crate::Limits::default().max_message_bytes;
    (MemoryTransport { stream: a, max_line }, MemoryTransport { stream: b, max_line })
}

impl Transport for MemoryTransport {
    type Reader = LineReader<ReadHalf<DuplexStream>>;
    type Writer = LineWriter<WriteHalf<DuplexStream>>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        let (r, w) = tokio::io::split(self.stream);
        (LineReader::new(r, self.max_line), LineWriter::new(w))
    }
}
