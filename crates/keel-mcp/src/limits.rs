//! Resource limits. Every buffer, queue and wait in Keel is bounded; these are the bounds.

use std::time::Duration;

/// Bounds on what a connection may consume. The defaults are safe for a public server; raise them
/// deliberately.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message (one JSON-RPC frame) accepted, in bytes. Default 4 MiB.
    pub max_message_bytes: usize,
    /// Incoming requests handled at once per connection; further ones wait. Default 64.
    pub max_concurrent_requests: usize,
    /// Outgoing requests awaiting an answer at once. Default 1024.
    pub max_pending_requests: usize,
    /// Frames queued for the transport writer before senders wait. Default 256.
    pub outbound_queue: usize,
    /// How long an outgoing request waits for its answer. Default 60 s.
    pub request_timeout: Duration,
    /// How long a server's handler keeps running after its request is cancelled, to see its
    /// `RequestContext::cancellation` fire and clean up, before its future is dropped. Default 1 s.
    pub cancel_grace: Duration,
    /// How long a child process gets to exit after its stdin closes, and again after SIGTERM. Default 2 s.
    pub shutdown_grace: Duration,
    /// Lines of a child's stderr forwarded to `tracing` are cut to this many bytes. Default 8 KiB.
    pub max_stderr_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 64,
            max_pending_requests: 1024,
            outbound_queue: 256,
            request_timeout: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(2),
            max_stderr_line: 8 * 1024,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_message_bytes`].
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Sets [`Limits::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n.max(1);
        self
    }

    /// Sets [`Limits::max_pending_requests`].
    pub fn max_pending_requests(mut self, n: usize) -> Self {
        self.max_pending_requests = n.max(1);
        self
    }

    /// Sets [`Limits::outbound_queue`].
    pub fn outbound_queue(mut self, n: usize) -> Self {
        self.outbound_queue = n.max(1);
        self
    }

    /// Sets [`Limits::request_timeout`].
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Sets [`Limits::cancel_grace`].
    pub fn cancel_grace(mut self, d: Duration) -> Self {
        self.cancel_grace = d;
        self
    }

    /// Sets [`Limits::shutdown_grace`].
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }
}
