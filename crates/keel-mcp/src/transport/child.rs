//! A server run as a child process, spoken to over its stdin and stdout.
//!
//! The child's stderr is captured and forwarded to `tracing` (target `keel_mcp::child`) line by line
//! rather than inherited, so a chatty server cannot scribble over the parent's terminal. Shutdown follows
//! the stdio transport rules: close the child's stdin, wait, then SIGTERM, wait, then kill.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::Stdio as ProcessStdio;
use std::time::Duration;

use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{FrameError, FrameReader, FrameWriter, LineReader, LineWriter, Transport};
use crate::Limits;

/// How to start a server process.
#[derive(Debug)]
pub struct ChildProcess {
    command: Command,
    inherit_stderr: bool,
    limits: Limits,
}

impl ChildProcess {
    /// A child running `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        ChildProcess { command: Command::new(program), inherit_stderr: false, limits: Limits::default() }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Lets the child write straight to this process's stderr instead of forwarding it to `tracing`.
    pub fn inherit_stderr(mut self, inherit: bool) -> Self {
        self.inherit_stderr = inherit;
        self
    }

    /// Sets the limits (line length, shutdown grace).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Starts the child.
    pub fn spawn(mut self) -> io::Result<ChildTransport> {
        self.command
            .stdin(ProcessStdio::piped())
            .stdout(ProcessStdio::piped())
            .stderr(if self.inherit_stderr { ProcessStdio::inherit() } else { ProcessStdio::piped() })
            .kill_on_drop(true);
        let mut child = self.command.spawn()?;
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(tracing::Instrument::in_current_span(forward_stderr(
                LineReader::new(stderr, self.limits.max_stderr_line),
                pid,
            )));
        }
        Ok(ChildTransport {
            reader: ChildReader { lines: LineReader::new(stdout, self.limits.max_message_bytes) },
            writer: ChildWriter { lines: LineWriter::new(stdin), child, grace: self.limits.shutdown_grace },
        })
    }
}

async fn forward_stderr<R: tokio::io::AsyncRead + Unpin + Send + 'static>(mut lines: LineReader<R>, pid: Option<u32>) {
    let pid = pid.unwrap_or_default();
    while let Some(line) = lines.read_frame().await {
        match line {
            Ok(line) => tracing::info!(target: "keel_mcp::child", pid, "{}", String::from_utf8_lossy(&line)),
            Err(FrameError::TooLarge { limit }) => {
                tracing::info!(target: "keel_mcp::child", pid, "(a stderr line over {limit} bytes was dropped)")
            }
            Err(_) => break,
        }
    }
}

/// A running child process as a transport.
#[derive(Debug)]
pub struct ChildTransport {
    reader: ChildReader,
    writer: ChildWriter,
}

impl ChildTransport {
    /// The child's process id.
    pub fn id(&self) -> Option<u32> {
        self.writer.child.id()
    }
}

impl Transport for ChildTransport {
    type Reader = ChildReader;
    type Writer = ChildWriter;

    fn split(self) -> (ChildReader, ChildWriter) {
        (self.reader, self.writer)
    }
}

/// Reads the child's stdout.
#[derive(Debug)]
pub struct ChildReader {
    lines: LineReader<ChildStdout>,
}

impl FrameReader for ChildReader {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        self.lines.read_frame().await
    }
}

/// Writes the child's stdin and owns the process; closing it ends the child.
#[derive(Debug)]
pub struct ChildWriter {
    lines: LineWriter<ChildStdin>,
    child: Child,
    grace: Duration,
}

impl FrameWriter for ChildWriter {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.lines.write_frame(frame).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.lines.flush().await
    }

    async fn close(self) -> io::Result<()> {
        let ChildWriter { lines, mut child, grace } = self;
        // Closing stdin asks the server to exit; a broken pipe means it already has.
        let _ = lines.close().await;
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return Ok(());
        }
        #[cfg(unix)]
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            if tokio::time::timeout(grace, child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        tracing::warn!(target: "keel_mcp::child", "child did not exit after stdin closed; killing it");
        child.kill().await
    }
}
