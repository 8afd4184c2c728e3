//! Newline-delimited JSON over byte streams: the stdio transport and the line codec it shares with the
//! child-process transport.
//!
//! Lines are bounded: a line longer than the limit is skipped to its end and reported as
//! [`FrameError::TooLarge`], so one oversized message never takes the connection down or grows a buffer
//! without bound.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(feature = "stdio")]
use super::Transport;
use super::{FrameError, FrameReader, FrameWriter};

/// Bytes read or written per system call at most (and the write buffer's flush threshold).
const CHUNK: usize = 64 * 1024;

/// Reads newline-delimited frames of at most `max_line` bytes.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Box<[u8]>,
    /// `buf[start..end]` is read but not yet consumed.
    start: usize,
    end: usize,
    max_line: usize,
}

impl<R: AsyncRead + Unpin + Send + 'static> LineReader<R> {
    /// Wraps `inner`; lines longer than `max_line` bytes are skipped.
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader { inner, buf: vec![0; CHUNK].into_boxed_slice(), start: 0, end: 0, max_line }
    }

    /// The unconsumed bytes, reading more when there are none; empty at the end of the stream.
    async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            let mut read = ReadBuf::new(&mut self.buf);
            poll_fn(|cx| Pin::new(&mut self.inner).poll_read(cx, &mut read)).await?;
            let filled = read.filled().len();
            (self.start, self.end) = (0, filled);
        }
        Ok(&self.buf[self.start..self.end])
    }

    async fn next_line(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let mut line = Vec::new();
        let mut oversized = false;
        loop {
            let max_line = self.max_line;
            let available = match self.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => return Some(Err(e.into())),
            };
            if available.is_empty() {
                // End of stream: a last line without a newline still counts.
                return match (oversized, line.is_empty()) {
                    (true, _) => Some(Err(FrameError::TooLarge { limit: max_line })),
                    (false, true) => None,
                    (false, false) => Some(Ok(line)),
                };
            }
            let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !oversized {
                if line.len() + chunk.len() > max_line {
                    oversized = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            self.start += used;
            if done {
                return Some(if oversized { Err(FrameError::TooLarge { limit: max_line }) } else { Ok(line) });
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

/// Writes each frame followed by a newline; frames queue in a buffer until [`FrameWriter::flush`] (or until
/// the buffer holds a chunk's worth), so a burst goes out in one system call.
#[derive(Debug)]
pub struct LineWriter<W: AsyncWrite> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin + Send + 'static> LineWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        LineWriter { inner, buf: Vec::with_capacity(CHUNK) }
    }

    /// Writes out everything buffered.
    async fn drain(&mut self) -> io::Result<()> {
        let mut written = 0;
        while written < self.buf.len() {
            let rest = &self.buf[written..];
            let n = poll_fn(|cx| Pin::new(&mut self.inner).poll_write(cx, rest)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        self.buf.clear();
        // One large message must not pin a large buffer for the life of the connection.
        if self.buf.capacity() > 4 * CHUNK {
            self.buf.shrink_to(CHUNK);
        }
        Ok(())
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> FrameWriter for LineWriter<W> {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        debug_assert!(!frame.contains(&b'\n'), "compact JSON never holds a raw newline");
        self.buf.extend_from_slice(frame);
        self.buf.push(b'\n');
        if self.buf.len() >= CHUNK { self.drain().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.drain().await?;
        poll_fn(|cx| Pin::new(&mut self.inner).poll_flush(cx)).await
    }

    async fn close(mut self) -> io::Result<()> {
        self.flush().await?;
        poll_fn(|cx| Pin::new(&mut self.inner).poll_shutdown(cx)).await
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
    type Reader = LineReader<StdinStream>;
    type Writer = LineWriter<StdoutStream>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        (LineReader::new(StdinStream::open(), self.max_line), LineWriter::new(StdoutStream::open()))
    }
}

#[cfg(feature = "stdio")]
pub use std_streams::{StdinStream, StdoutStream};

/// The process's stdin and stdout as async streams.
///
/// tokio's own `Stdin`/`Stdout` run every read and write on its blocking thread pool: two thread hand-offs per
/// operation, which dominate a stdio round trip. When the stream is a pipe (how an MCP client launches a server)
/// it is switched to non-blocking mode and driven by the reactor instead, with no extra thread; the original mode
/// is restored on drop, since the pipe may outlive us. Anything else (a terminal, a file) keeps tokio's streams.
#[cfg(feature = "stdio")]
mod std_streams {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// stdin: a reactor-driven pipe when it is one, tokio's `Stdin` otherwise.
    #[derive(Debug)]
    pub struct StdinStream(Inner<PipeIn, tokio::io::Stdin>);

    /// stdout: a reactor-driven pipe when it is one, tokio's `Stdout` otherwise.
    #[derive(Debug)]
    pub struct StdoutStream(Inner<PipeOut, tokio::io::Stdout>);

    #[derive(Debug)]
    enum Inner<P, F> {
        Pipe(P),
        Fallback(F),
    }

    #[cfg(unix)]
    type PipeIn = pipe::Pipe<tokio::net::unix::pipe::Receiver>;
    #[cfg(unix)]
    type PipeOut = pipe::Pipe<tokio::net::unix::pipe::Sender>;
    #[cfg(not(unix))]
    type PipeIn = std::convert::Infallible;
    #[cfg(not(unix))]
    type PipeOut = std::convert::Infallible;

    impl StdinStream {
        /// Opens stdin (inside a tokio runtime with IO enabled).
        pub fn open() -> Self {
            #[cfg(unix)]
            if let Some(pipe) = pipe::Pipe::open(0, tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked) {
                return StdinStream(Inner::Pipe(pipe));
            }
            StdinStream(Inner::Fallback(tokio::io::stdin()))
        }
    }

    impl StdoutStream {
        /// Opens stdout (inside a tokio runtime with IO enabled).
        pub fn open() -> Self {
            #[cfg(unix)]
            if let Some(pipe) = pipe::Pipe::open(1, tokio::net::unix::pipe::Sender::from_owned_fd_unchecked) {
                return StdoutStream(Inner::Pipe(pipe));
            }
            StdoutStream(Inner::Fallback(tokio::io::stdout()))
        }
    }

    impl AsyncRead for StdinStream {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            match &mut self.0 {
                #[cfg(unix)]
                Inner::Pipe(p) => Pin::new(&mut p.stream).poll_read(cx, buf),
                #[cfg(not(unix))]
                Inner::Pipe(never) => match *never {},
                Inner::Fallback(f) => Pin::new(f).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for StdoutStream {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            match &mut self.0 {
                #[cfg(unix)]
                Inner::Pipe(p) => Pin::new(&mut p.stream).poll_write(cx, data),
                #[cfg(not(unix))]
                Inner::Pipe(never) => match *never {},
                Inner::Fallback(f) => Pin::new(f).poll_write(cx, data),
            }
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match &mut self.0 {
                #[cfg(unix)]
                Inner::Pipe(p) => Pin::new(&mut p.stream).poll_flush(cx),
                #[cfg(not(unix))]
                Inner::Pipe(never) => match *never {},
                Inner::Fallback(f) => Pin::new(f).poll_flush(cx),
            }
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match &mut self.0 {
                #[cfg(unix)]
                Inner::Pipe(p) => Pin::new(&mut p.stream).poll_shutdown(cx),
                #[cfg(not(unix))]
                Inner::Pipe(never) => match *never {},
                Inner::Fallback(f) => Pin::new(f).poll_shutdown(cx),
            }
        }
    }

    #[cfg(unix)]
    mod pipe {
        use std::io;
        use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

        /// A duplicate of a standard descriptor in non-blocking mode; puts the original flags back on drop.
        #[derive(Debug)]
        pub(super) struct Pipe<S: AsRawFd> {
            pub(super) stream: S,
            original_flags: libc::c_int,
        }

        impl<S: AsRawFd> Pipe<S> {
            /// `None` when `fd` is not a pipe (or can't be set up), so the caller falls back.
            pub(super) fn open(fd: RawFd, wrap: impl FnOnce(OwnedFd) -> io::Result<S>) -> Option<Self> {
                // SAFETY: a zeroed `stat` is a valid out-parameter for fstat.
                let mut stat: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: fstat only writes to `stat`; a closed `fd` is an error, not UB.
                if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
                    return None;
                }
                // SAFETY: fstat just showed `fd` is open; we only borrow it to duplicate it.
                let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().ok()?;
                // SAFETY: F_GETFL on a valid descriptor.
                let original_flags = unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFL) };
                // SAFETY: F_SETFL on a valid descriptor (the flag is on the shared open file description).
                if original_flags < 0
                    || unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFL, original_flags | libc::O_NONBLOCK) } < 0
                {
                    return None;
                }
                let Ok(stream) = wrap(owned) else {
                    // SAFETY: `fd` itself is still open; the duplicate has been closed by `wrap`.
                    unsafe { libc::fcntl(fd, libc::F_SETFL, original_flags) };
                    return None;
                };
                Some(Pipe { stream, original_flags })
            }
        }

        impl<S: AsRawFd> Drop for Pipe<S> {
            fn drop(&mut self) {
                // SAFETY: the descriptor is still open (the stream drops after this).
                unsafe { libc::fcntl(self.stream.as_raw_fd(), libc::F_SETFL, self.original_flags) };
            }
        }
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
    async fn writer_frames_lines_and_gives_back_a_large_buffer() {
        let mut writer = LineWriter::new(Vec::new());
        writer.write_frame(b"{\"a\":1}").await.unwrap();
        writer.write_frame(b"{\"b\":2}").await.unwrap();
        assert!(writer.inner.is_empty(), "small frames wait for a flush");
        writer.flush().await.unwrap();
        assert_eq!(writer.inner, b"{\"a\":1}\n{\"b\":2}\n");
        let big = vec![b'x'; 10 * CHUNK];
        writer.write_frame(&big).await.unwrap();
        assert_eq!(writer.inner.len(), 16 + big.len() + 1, "a frame over the chunk size goes out at once");
        assert!(writer.buf.capacity() <= 4 * CHUNK, "the buffer shrinks back after a large frame");
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
