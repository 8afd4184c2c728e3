//! `--trace-http`: prints each HTTP exchange through Keel's [`HttpObserver`] hook — method, URL, status, the
//! MCP headers and SSE event ids. Only the headers below are printed, and query values are masked, so no
//! credential ever is.
//!
//! Text: `[http +0.001234s] > POST http://…/mcp mcp-protocol-version=2025-11-25`, `< 200 POST …`,
//! `[http …] sse id=3 event=message`. JSON mode: `{"http":{"t":…,"kind":"request"|"response"|"sse",…}}`.

use keel_mcp::client::http::HttpObserver;
use keel_mcp::client::http::reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::output::Output;

/// The headers worth seeing: MCP's own, resumption, content type, and where a challenge or redirect points.
const SHOWN: [&str; 10] = [
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "content-type",
    "accept",
    "www-authenticate",
    "location",
    "retry-after",
];

pub struct HttpTrace {
    output: Output,
}

impl HttpTrace {
    pub fn new(output: Output) -> Self {
        HttpTrace { output }
    }
}

fn shown(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if SHOWN.contains(&name) || name.starts_with("mcp-param-") {
            out.insert(name.to_owned(), json!(String::from_utf8_lossy(value.as_bytes())));
        }
    }
    out
}

/// `url` with every query value replaced: some servers take an API key in the query string.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=…"),
            None => pair.to_owned(),
        })
        .collect();
    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
    format!("{base}?{}{fragment}", redacted.join("&"))
}

fn pairs(headers: &Map<String, Value>) -> String {
    headers.iter().map(|(k, v)| format!(" {k}={}", v.as_str().unwrap_or_default())).collect()
}

impl HttpObserver for HttpTrace {
    fn request(&self, method: &str, url: &str, headers: &HeaderMap) {
        let t = self.output.elapsed();
        let url = redact_query(url);
        let url = url.as_str();
        let headers = shown(headers);
        let text = format!("[http +{t:.6}s] > {method} {url}{}", pairs(&headers));
        let value = json!({ "t": t, "kind": "request", "method": method, "url": url, "headers": headers });
        self.output.event("http", value, || text);
    }

    fn response(&self, method: &str, url: &str, status: u16, headers: &HeaderMap) {
        let t = self.output.elapsed();
        let url = redact_query(url);
        let url = url.as_str();
        let headers = shown(headers);
        let text = format!("[http +{t:.6}s] < {status} {method} {url}{}", pairs(&headers));
        let value =
            json!({ "t": t, "kind": "response", "method": method, "url": url, "status": status, "headers": headers });
        self.output.event("http", value, || text);
    }

    fn sse_event(&self, url: &str, event: &str, id: Option<&str>) {
        let t = self.output.elapsed();
        let url = redact_query(url);
        let url = url.as_str();
        let event = if event.is_empty() { "message" } else { event };
        let text = format!("[http +{t:.6}s] sse id={} event={event} {url}", id.unwrap_or("-"));
        let value = json!({ "t": t, "kind": "sse", "url": url, "event": event, "id": id });
        self.output.event("http", value, || text);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_redacted() {
        assert_eq!(super::redact_query("https://a.example/mcp"), "https://a.example/mcp");
        assert_eq!(
            super::redact_query("https://a.example/mcp?apiKey=s3cret&flag&x=1#top"),
            "https://a.example/mcp?apiKey=…&flag&x=…#top"
        );
    }
}
