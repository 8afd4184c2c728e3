//! Resource limits. Every buffer, queue and wait in Keel is bounded; these are the bounds.

use std::time::Duration;

/// Bounds on what a connection may consume. The defaults are safe for a public server; raise them
/// deliberately.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message (one JSON-RPC frame) accepted, in bytes. Default 4 MiB.
    pub max_message_bytes: usize,
    /// Incoming requests handled at once per connection; further ones wait in a queue. Default 64.
    pub max_concurrent_requests: usize,
    /// Incoming requests that may wait for a free slot per connection, beyond those running; past it a new
    /// request is refused at once (-32603). The connection keeps reading meanwhile, so answers to the
    /// handlers' own requests (sampling, elicitation) always get through. Default 64.
    pub max_queued_requests: usize,
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
    /// Longest resource URI accepted by `resources/read`, `resources/subscribe` and `resources/unsubscribe`,
    /// in bytes; longer ones get -32602. Default 8 KiB.
    pub max_resource_uri_bytes: usize,
    /// Resources one legacy session may be subscribed to at once (`resources/subscribe`); past it the
    /// subscription is refused with -32602. Default 100.
    pub max_subscriptions: usize,
    /// Tasks (tasks extension) a server keeps, running or finished. Past it the oldest finished task is
    /// forgotten; when all are running, `continue_as_task` fails (-32603). Default 10,000.
    pub max_tasks: usize,
    /// Running tasks one client may have at once (a client is its session on stream connections and legacy
    /// HTTP; stateless HTTP requests count by peer address, an IPv6 peer by its /64, and share one allowance
    /// when the peer is unknown). Past it `continue_as_task` fails (-32603). Default 100.
    pub max_tasks_per_client: usize,
    /// How long a task lives from its creation; a task still running then is cancelled (its handler is
    /// dropped) and forgotten with its result. Default 5 min.
    pub task_ttl: Duration,
    /// How long a task waits for the client to answer a question (`tasks/update`); past it the handler's
    /// question fails and the handler decides what to do. Default 2 min.
    pub task_input_timeout: Duration,
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
            max_queued_requests: 64,
            max_resource_uri_bytes: 8 * 1024,
            max_subscriptions: 100,
            max_tasks: 10_000,
            max_tasks_per_client: 100,
            task_ttl: Duration::from_secs(300),
            task_input_timeout: Duration::from_secs(120),
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

    /// Sets [`Limits::max_queued_requests`].
    pub fn max_queued_requests(mut self, n: usize) -> Self {
        self.max_queued_requests = n;
        self
    }

    /// Sets [`Limits::max_resource_uri_bytes`].
    pub fn max_resource_uri_bytes(mut self, n: usize) -> Self {
        self.max_resource_uri_bytes = n;
        self
    }

    /// Sets [`Limits::max_subscriptions`].
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Sets [`Limits::max_tasks`].
    pub fn max_tasks(mut self, n: usize) -> Self {
        self.max_tasks = n;
        self
    }

    /// Sets [`Limits::max_tasks_per_client`].
    pub fn max_tasks_per_client(mut self, n: usize) -> Self {
        self.max_tasks_per_client = n;
        self
    }

    /// Sets [`Limits::task_ttl`].
    pub fn task_ttl(mut self, d: Duration) -> Self {
        self.task_ttl = d;
        self
    }

    /// Sets [`Limits::task_input_timeout`].
    pub fn task_input_timeout(mut self, d: Duration) -> Self {
        self.task_input_timeout = d;
        self
    }
}
