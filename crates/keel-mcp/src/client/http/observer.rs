//! [`HttpObserver`]: sees each HTTP exchange of an [`HttpTransport`](super::HttpTransport) as it happens, for
//! wire traces and debugging tools (the `keel --trace-http` CLI flag is one).
//!
//! Observers see requests as they leave (after credentials were added) and responses as their head
//! arrives, and every SSE event's id. Credential headers (`Authorization`, `Proxy-Authorization`, `DPoP`,
//! `Cookie`, `Set-Cookie`) reach them with the value replaced by `[redacted]`, so a trace never prints a
//! token. Observers run inline on the transport's tasks: keep them quick and never block.

use reqwest::header::{HeaderMap, HeaderValue};

/// Watches the HTTP exchanges of a transport. Every method has an empty default.
pub trait HttpObserver: Send + Sync + 'static {
    /// A request is about to be sent: `method` (`POST`, `GET`, `DELETE`), the URL, and its headers
    /// (credentials redacted).
    fn request(&self, method: &str, url: &str, headers: &HeaderMap) {
        let _ = (method, url, headers);
    }

    /// The head of the response to a request arrived (credentials redacted).
    fn response(&self, method: &str, url: &str, status: u16, headers: &HeaderMap) {
        let _ = (method, url, status, headers);
    }

    /// An event of an SSE response stream was decoded: its `event:` type (empty means `message`) and the
    /// last event id in force (`id:` persists across events).
    fn sse_event(&self, url: &str, event: &str, id: Option<&str>) {
        let _ = (url, event, id);
    }
}

/// Headers whose values are secrets: observers see them redacted.
const CREDENTIAL_HEADERS: [&str; 5] = ["authorization", "proxy-authorization", "dpop", "cookie", "set-cookie"];

/// A copy of `headers` with the values of credential headers replaced.
pub(super) fn redacted(headers: &HeaderMap) -> HeaderMap {
    let mut copy = headers.clone();
    for name in CREDENTIAL_HEADERS {
        if copy.contains_key(name) {
            copy.insert(name, HeaderValue::from_static("[redacted]"));
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret-token"));
        headers.insert("dpop", HeaderValue::from_static("eyJproof"));
        headers.insert("mcp-session-id", HeaderValue::from_static("s-1"));
        let seen = redacted(&headers);
        assert_eq!(seen["authorization"], "[redacted]");
        assert_eq!(seen["dpop"], "[redacted]");
        assert_eq!(seen["mcp-session-id"], "s-1");
    }
}
