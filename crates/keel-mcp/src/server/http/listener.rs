//! The accept loop behind [`Server::serve_http_on`](crate::server::Server::serve_http_on): hyper
//! connections (HTTP/1 and HTTP/2) with a header deadline, a per-peer connection cap, and a bounded
//! graceful shutdown.
//!
//! What a peer can hold here is a connection. It gets at most
//! [`HttpConfig::header_read_timeout`](super::HttpConfig::header_read_timeout) to deliver complete headers
//! (hyper's own timer covers later requests on a kept-alive HTTP/1 connection; this module covers the first
//! one, including the bytes hyper reads to tell HTTP/1 from HTTP/2), and one peer address holds at most
//! [`HttpConfig::max_connections_per_peer`](super::HttpConfig::max_connections_per_peer) connections at once
//! (an IPv6 peer counts by its /64 network).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::mpsc;

use super::{McpService, ResponseBody, ResponseFuture, body, handle};
use crate::engine::CancellationToken;
use crate::server::peer_addr::{PeerAddr, PeerKey};

/// After the service's shutdown, how long connections get to write their last bytes before the listener
/// returns anyway (a client that stopped reading must not hold the process).
const CLOSE_WAIT: Duration = Duration::from_millis(250);

/// Serves `service` at `/mcp` on `listener` until `shutdown` completes, then shuts down gracefully.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    service: McpService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), crate::Error> {
    let config = &service.inner.config;
    let header_timeout = config.header_read_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let peers = Arc::new(PeerTable { max: config.max_connections_per_peer, counts: Mutex::default() });
    let closing = CancellationToken::new();
    // Every connection task holds a sender; the channel closes when the last one ends.
    let (live, mut all_closed) = mpsc::channel::<Infallible>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            // Shutdown first, on every turn: a signal future (`shutdown_signal`) installs its handler when first
            // polled, and with random order a burst of connections could leave it unpolled, so that an early
            // SIGINT killed the process instead of shutting it down. A requested shutdown also wins over new
            // connections.
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = PeerTable::admit(&peers, PeerKey::of(peer.ip())) else {
            tracing::debug!(%peer, "connection refused: too many from this peer");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer: PeerAddr(peer),
            service: service.clone(),
            builder: builder.clone(),
            closing: closing.clone(),
            header_timeout,
            _held: (admitted, live.clone()),
        };
        // Each connection stays in the span `serve_http_on` runs in.
        tokio::spawn(tracing::Instrument::in_current_span(connection.run(stream)));
    }
    drop(listener);
    // Open connections stay during the grace: a client may still have to POST the answer a finishing call
    // waits for (new requests get 503). Then idle connections close, busy ones after their response.
    service.shutdown().await;
    closing.cancel();
    drop(live);
    let _ = tokio::time::timeout(CLOSE_WAIT, all_closed.recv()).await;
    Ok(())
}

/// One accepted connection and what it holds until it ends.
struct Connection {
    peer: PeerAddr,
    service: McpService,
    builder: auto::Builder<TokioExecutor>,
    closing: CancellationToken,
    header_timeout: Duration,
    /// Its peer's connection count, and the listener's count of live connections.
    _held: (PeerGuard, mpsc::Sender<Infallible>),
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream) {
        let first_request = Arc::new(AtomicBool::new(false));
        let service =
            PathFilter { path: "/mcp", peer: self.peer, inner: self.service, first_request: first_request.clone() };
        let io = TokioIo::new(stream);
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        // Polled by hand rather than with `select!`, which would poll every branch on every wake of the
        // connection (once per request): the first-request deadline is dropped as soon as a request has
        // arrived, and the closing signal is waited on once, then only read, since the wait registered the
        // task's waker.
        let mut header_deadline = Some(Box::pin(tokio::time::sleep(self.header_timeout)));
        let closing = self.closing.cancelled();
        tokio::pin!(closing);
        let (mut closing_waited, mut closing_seen) = (false, false);
        let ended = std::future::poll_fn(|cx| {
            if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
                return Poll::Ready(Some(ended));
            }
            if let Some(deadline) = &mut header_deadline {
                if first_request.load(Ordering::Acquire) {
                    header_deadline = None;
                } else if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            if !closing_seen && (!closing_waited || self.closing.is_cancelled()) {
                closing_waited = true;
                if closing.as_mut().poll(cx).is_ready() {
                    closing_seen = true;
                    connection.as_mut().graceful_shutdown();
                    // Hyper may have a response to finish or nothing left at all: ask it again now.
                    if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
                        return Poll::Ready(Some(ended));
                    }
                }
            }
            Poll::Pending
        })
        .await;
        match ended {
            None => tracing::debug!("HTTP connection closed: no complete request headers in time"),
            Some(Err(e)) => tracing::debug!(error = %e, "HTTP connection ended with an error"),
            Some(Ok(())) => {}
        }
    }
}

/// Live connections per peer address.
#[derive(Debug)]
struct PeerTable {
    max: usize,
    counts: Mutex<HashMap<PeerKey, usize>>,
}

impl PeerTable {
    /// Counts a new connection from `ip`, or `None` when that peer is at its limit.
    fn admit(table: &Arc<PeerTable>, ip: PeerKey) -> Option<PeerGuard> {
        let mut counts = table.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= table.max {
            return None;
        }
        *count += 1;
        Some(PeerGuard { table: table.clone(), ip })
    }
}

/// One counted connection; uncounts it when dropped.
#[derive(Debug)]
struct PeerGuard {
    table: Arc<PeerTable>,
    ip: PeerKey,
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Routes one path to the MCP service and answers 404 elsewhere; notes that a request arrived.
#[derive(Clone, Debug)]
struct PathFilter {
    path: &'static str,
    peer: PeerAddr,
    inner: McpService,
    first_request: Arc<AtomicBool>,
}

impl PathFilter {
    /// Whether `path` is where a protected endpoint's resource metadata is served.
    fn is_metadata_path(&self, path: &str) -> bool {
        #[cfg(feature = "resource-server")]
        if let Some(protection) = &self.inner.inner.config.protection {
            return protection.is_metadata_path(path);
        }
        let _ = path;
        false
    }
}

// A hyper service rather than a tower one: hyper calls it by reference, with no clone per request.
impl hyper::service::Service<Request<Incoming>> for PathFilter {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        self.first_request.store(true, Ordering::Release);
        if request.uri().path() != self.path && !self.is_metadata_path(request.uri().path()) {
            return Box::pin(std::future::ready(Ok(body::empty(StatusCode::NOT_FOUND))));
        }
        request.extensions_mut().insert(self.peer);
        let inner = self.inner.inner.clone();
        Box::pin(async move { Ok(handle(inner, request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_capped_and_released_on_drop() {
        let table = Arc::new(PeerTable { max: 2, counts: Mutex::default() });
        let a = PeerKey::of([10, 0, 0, 1].into());
        let b = PeerKey::of([10, 0, 0, 2].into());
        let first = PeerTable::admit(&table, a).unwrap();
        let _second = PeerTable::admit(&table, a).unwrap();
        assert!(PeerTable::admit(&table, a).is_none(), "third from the same peer");
        let _other = PeerTable::admit(&table, b).expect("another peer is not affected");
        drop(first);
        assert!(PeerTable::admit(&table, a).is_some(), "room again after a connection ends");
        drop(_other);
        assert!(!table.counts.lock().unwrap().contains_key(&b), "no entry left for a peer with no connections");
    }
}
