//! How an HTTP failure becomes an [`Error`] a caller can act on: an unreachable server or a broken
//! connection is [`Error::Transport`] (with the operating system's [`io::ErrorKind`] where it gave one), a
//! redirect is [`Error::Protocol`] naming where it points. Refusals (401 / 403) are read in
//! [`exchange`](super::exchange), where the credentials are.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use crate::error::Error;

/// A reqwest failure as [`Error::Transport`]: the kind from the innermost I/O error that has a specific
/// one, the message naming the step that failed (connect, DNS, TLS, reading the answer).
pub(super) fn transport_error(e: reqwest::Error) -> Error {
    let host = e.url().and_then(|u| u.host_str()).unwrap_or("the server").to_owned();
    // The URL's path and query may carry secrets (an API key parameter); the host is enough to act on.
    let e = e.without_url();
    let mut kind = None;
    let mut tls = false;
    let mut dns = false;
    let mut detail = Vec::new();
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(current) = source {
        let text = current.to_string();
        dns |= text.starts_with("dns error");
        // reqwest's TLS connector reports a handshake the server broke off without a rustls error.
        tls |= text.starts_with("tls handshake");
        detail.push(text);
        if let Some(io) = current.downcast_ref::<io::Error>() {
            // An I/O error hides the error it wraps from `source()`; TLS failures arrive that way.
            tls |= io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
            if kind.is_none() && specific(io.kind()) {
                kind = Some(io.kind());
            }
        }
        tls |= current.is::<rustls::Error>();
        source = current.source();
    }
    let (step, fallback) = if tls {
        (format!("TLS with {host} failed"), io::ErrorKind::InvalidData)
    } else if e.is_timeout() {
        (format!("timed out talking to {host}"), io::ErrorKind::TimedOut)
    } else if dns {
        (format!("could not resolve {host}"), io::ErrorKind::Other)
    } else if e.is_connect() {
        (format!("could not connect to {host}"), io::ErrorKind::Other)
    } else {
        // hyper reports a connection closed mid-answer without an I/O error.
        (format!("the connection to {host} broke"), io::ErrorKind::UnexpectedEof)
    };
    let kind = if e.is_timeout() { io::ErrorKind::TimedOut } else { kind.unwrap_or(fallback) };
    let message = if detail.is_empty() { step } else { format!("{step}: {}", detail.join(": ")) };
    Error::Transport(io::Error::new(kind, TransportFailure { message, source: e }))
}

/// Kinds that say something; `Uncategorized` (unnameable) and `Other` do not.
fn specific(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | AddrNotAvailable
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | InvalidData
            | PermissionDenied
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

/// The message Keel composed, with the reqwest error as its source.
#[derive(Debug)]
struct TransportFailure {
    message: String,
    source: reqwest::Error,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for TransportFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// A 3xx answer: Keel follows no redirect (see the [module docs](super)), so the request fails with where
/// the server pointed, for whoever configures the URL.
pub(super) fn redirect_error(status: reqwest::StatusCode, location: Option<&str>) -> Error {
    match location {
        Some(location) => Error::Protocol(format!(
            "HTTP {status}: the server redirects to {location:?}; Keel follows no redirects, use that URL if it is trusted"
        )),
        None => Error::Protocol(format!("HTTP {status} (a redirect without a Location); Keel follows no redirects")),
    }
}
