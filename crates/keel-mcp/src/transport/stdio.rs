//! Newline-delimited JSON over byte streams: the stdio transport and the line codec the child-process and
//! in-memory transports share.
//!
//! Lines are bounded: a line longer than the limit is skipped to its end and reported as
//! [`FrameError::TooLarge`], so one oversized message never takes the connection down or grows a buffer
//! without bound.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

#[cfg(feature = "stdio")]
use super::Transport;
use super::{FrameError, FrameReader, FrameWriter};

/// Reads newline-delimited frames of at most `max_line` bytes.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    max_line: usize,
}

impl<R: AsyncRead + Unpin + Send + 'static> LineReader<R> {
    /// Wraps `inner`; lines longer than `max_line` bytes are skipped.
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader { inner: BufReader::with_capacity(64 * 1024, inner), max_line }
    }

    async fn next_line(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let mut line = Vec::new();
        let mut oversized = false;
        loop {
            let available = match self.inner.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => return Some(Err(e.into())),
            };
            if available.is_empty() {
                // End of stream: a last line without a newline still counts.
                return match (oversized, line.is_empty()) {
                    (true, _) => Some(Err(FrameError::TooLarge { limit: self.max_line })),
                    (false, true) => None,
                    (false, false) => Some(Ok(line)),
                };
            }
            let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !oversized {
                if line.len() + chunk.len() > self.max_line {
                    oversized = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            self.inner.consume(used);
            if done {
                return Some(if oversized { Err(FrameError::TooLarge { limit: self.max_line }) } else { Ok(line) });
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> FrameReader for LineReader<R> {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        loop {
            let mut line = match self.next_line().await? {
                Ok(line) => line,
                Err(e) => return Some(Err(e)),
            };
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            // Blank lines carry no message.
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(line));
        }
    }
}

/// Writes each frame followed by a newline.
#[derive(Debug)]
pub struct LineWriter<W: AsyncWrite> {
    inner: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin + Send + 'static> LineWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        LineWriter { inner: BufWriter::with_capacity(64 * 1024, inner) }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> FrameWriter for LineWriter<W> {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        debug_assert!(!frame.contains(&b'\n'), "compact JSON never holds a raw newline");
        self.inner.write_all(frame).await?;
        self.inner.write_all(b"\n").await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    async fn close(mut self) -> io::Result<()> {
        self.inner.flush().await?;
        self.inner.shutdown().await
    }
}

/// The process's own stdin and stdout (a server launched by a client).
#[cfg(feature = "stdio")]
#[derive(Debug)]
pub struct Stdio {
    max_line: usize,
}

#[cfg(feature = "stdio")]
impl Stdio {
    /// stdin/stdout with the default 4 MiB line limit.
    pub fn new() -> Self {
        Stdio { max_line: crate::Limits::default().max_message_bytes }
    }

    /// Sets the largest accepted line in bytes.
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }
}

#[cfg(feature = "stdio")]
impl Default for Stdio {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "stdio")]
impl Transport for Stdio {
    type Reader = LineReader<tokio::io::Stdin>;
    type Writer = LineWriter<tokio::io::Stdout>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        (LineReader::new(tokio::io::stdin(), self.max_line), LineWriter::new(tokio::io::stdout()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Result<String, String>> {
        let mut reader = LineReader::new(std::io::Cursor::new(input.to_vec()), max);
        let mut out = Vec::new();
        while let Some(frame) = reader.read_frame().await {
            out.push(frame.map(|f| String::from_utf8(f).unwrap()).map_err(|e| e.to_string()));
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_skips_blanks_and_strips_cr() {
        let got = frames(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 100).await;
        assert_eq!(got, vec![Ok("{\"a\":1}".into()), Ok("{\"b\":2}".into()), Ok("{\"c\":3}".into())]);
    }

    #[tokio::test]
    async fn oversized_line_is_reported_and_skipped() {
        let long = "x".repeat(50);
        let input = format!("{long}\n{{\"ok\":true}}\n{long}");
        let got = frames(input.as_bytes(), 20).await;
        assert_eq!(
            got,
            vec![
                Err("message exceeds 20 bytes".into()),
                Ok("{\"ok\":true}".into()),
                Err("message exceeds 20 bytes".into())
            ]
        );
    }

    #[tokio::test]
    async fn oversized_line_across_buffer_refills() {
        // Larger than the reader's 64 KiB buffer, so the line spans several refills.
        let long = "y".repeat(200_000);
        let input = format!("{long}\nshort\n");
        let got = frames(input.as_bytes(), 100_000).await;
        assert_eq!(got, vec![Err("message exceeds 100000 bytes".into()), Ok("short".into())]);
    }
}
