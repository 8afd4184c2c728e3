//! One HTTP exchange: building a request with the era's headers and credentials (retrying after 401 / 403
//! through [`HttpAuth`](crate::auth::HttpAuth)), and reading what comes back — a bounded JSON body or an SSE stream.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::MAX_AUTH_ATTEMPTS;
use super::connection::{Inner, Outgoing};
use super::failure::{redirect_error, transport_error};
use super::headers;
use super::sse::SseDecoder;
use crate::auth::Challenge;
use crate::error::Error;
use crate::protocol::ProtocolVersion;
use crate::protocol::jsonrpc::{ErrorObject, RequestId};

impl Inner {
    /// POSTs a frame with the headers its era needs, handling 401 / 403 through [`HttpAuth`].
    pub(super) async fn post(&self, out: &Outgoing) -> Result<reqwest::Response, Error> {
        let target = self.state().sse_endpoint.clone().unwrap_or_else(|| self.url.clone());
        let mut headers = self.base_headers();
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.era_headers(out, &mut headers);
        let request = || self.http().post(target.clone()).headers(headers.clone()).body(out.frame.clone());
        self.send_with_auth("POST", &target, request).await
    }

    /// A GET for the standalone stream or to resume one (`Last-Event-ID`).
    pub(super) async fn get(&self, last_event_id: Option<&str>) -> Result<reqwest::Response, Error> {
        let mut headers = self.base_headers();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(id) = last_event_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert("last-event-id", id);
        }
        self.legacy_headers(&mut headers);
        self.send_with_auth("GET", &self.url, || self.http().get(self.url.clone()).headers(headers.clone())).await
    }

    /// Sends what `build` makes, `method` to `target`, with the credential headers [`HttpAuth`] supplies;
    /// a 401 / 403 goes back to it, and the request is sent again (bounded) when it has new credentials.
    /// A refusal that stays is [`Error::Unauthorized`]; a redirect is refused, never followed.
    pub(super) async fn send_with_auth(
        &self,
        method: &str,
        target: &reqwest::Url,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let url = self.url.as_str();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = build();
            if let Some(auth) = &self.auth {
                request = request.headers(credential_headers(auth.request_headers(method, target.as_str()).await?)?);
            }
            let response = tokio::select! {
                r = self.send_observed(method, request) => r.map_err(transport_error)?,
                _ = self.closed.cancelled() => return Err(Error::Closed),
            };
            if response.url() != target {
                // Only a client brought with `with_client` follows redirects; its answer is not taken.
                return Err(Error::Protocol(format!(
                    "the HTTP client followed a redirect to {:?}; build it with redirect::Policy::none()",
                    response.url().as_str()
                )));
            }
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
                return Err(redirect_error(status, location));
            }
            if let Some(auth) = &self.auth
                && let Some(nonce) = response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok())
            {
                auth.dpop_nonce(url, nonce);
            }
            if !matches!(status.as_u16(), 401 | 403) {
                return Ok(response);
            }
            let www_authenticate = response
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let challenge = Challenge::new(status.as_u16(), www_authenticate);
            if let Some(auth) = &self.auth
                && attempt < MAX_AUTH_ATTEMPTS
                && auth.unauthorized(url, challenge.clone()).await?
            {
                continue;
            }
            return Err(Error::Unauthorized(Box::new(challenge)));
        }
    }

    /// Sends `request`, showing it and its response head to the [`HttpObserver`](super::HttpObserver), if any.
    pub(super) async fn send_observed(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let Some(observer) = &self.observer else { return request.send().await };
        let (client, built) = request.build_split();
        let built = built?;
        let url = built.url().to_string();
        observer.request(method, &url, &super::observer::redacted(built.headers()));
        let response = client.execute(built).await?;
        observer.response(method, &url, response.status().as_u16(), &super::observer::redacted(response.headers()));
        Ok(response)
    }

    /// Shows a decoded SSE event to the observer, if any.
    pub(super) fn observe_event(&self, event: &super::sse::Event) {
        if let Some(observer) = &self.observer {
            observer.sse_event(self.url.as_str(), &event.event, event.id.as_deref());
        }
    }

    pub(super) fn base_headers(&self) -> HeaderMap {
        let mut headers = self.extra_headers.clone();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        headers
    }

    pub(super) fn legacy_headers(&self, headers: &mut HeaderMap) {
        let state = self.state();
        if let Some(session) = state.session.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert("mcp-session-id", session);
        }
        if let Some(version) = state.version.as_ref().filter(|v| v.has_version_header()) {
            headers.insert("mcp-protocol-version", HeaderValue::from_str(version.as_str()).expect("dates are ASCII"));
        }
    }

    /// Modern: version, method, name and mirrored-parameter headers. Legacy: session and version.
    pub(super) fn era_headers(&self, out: &Outgoing, headers: &mut HeaderMap) {
        let modern_version = out.meta_version().filter(ProtocolVersion::is_modern);
        let Some(version) = modern_version else {
            self.legacy_headers(headers);
            return;
        };
        let mut put = |name: &str, value: &str| {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        };
        put("mcp-protocol-version", version.as_str());
        put("mcp-method", out.method());
        let params = out.params.as_ref();
        let name = match out.method() {
            "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")).and_then(Value::as_str),
            "resources/read" => params.and_then(|p| p.get("uri")).and_then(Value::as_str),
            _ => None,
        };
        if let Some(name) = name {
            put("mcp-name", &headers::encode_text(name));
        }
        if out.method() == "tools/call"
            && let Some(tool) = name
        {
            let declared = self.state().tool_headers.get(tool).cloned().unwrap_or_default();
            let arguments = params.and_then(|p| p.get("arguments")).and_then(Value::as_object);
            for (header, value) in headers::param_headers(&declared, arguments) {
                put(&header, &value);
            }
        }
    }

    pub(super) async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Error> {
        let limit = self.limits.max_message_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(Error::Protocol(format!("response body exceeds {limit} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > limit {
                return Err(Error::Protocol(format!("response body exceeds {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads an SSE response, delivering each message, until it ends or the answer to `id` arrived.
    pub(super) async fn read_stream(
        &self,
        mut response: reqwest::Response,
        id: Option<&RequestId>,
        method: &str,
    ) -> StreamEnd {
        let mut decoder = SseDecoder::new(self.limits.max_message_bytes);
        let mut end = StreamEnd::default();
        loop {
            let chunk = tokio::select! {
                c = response.chunk() => c,
                _ = self.closed.cancelled() => break,
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "SSE stream broke");
                    break;
                }
            };
            let events = match decoder.feed(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "SSE stream dropped");
                    break;
                }
            };
            for event in events {
                self.observe_event(&event);
                end.events += 1;
                if event.data.trim().is_empty() || !(event.event.is_empty() || event.event == "message") {
                    continue;
                }
                if let Some(id) = id
                    && answers(event.data.as_bytes(), id)
                {
                    end.answered = true;
                }
                self.deliver(event.data.as_bytes(), method).await;
            }
            if end.answered {
                break;
            }
        }
        end.last_id = decoder.last_event_id().map(str::to_owned);
        end.retry = decoder.retry();
        end
    }
}

#[derive(Default)]
pub(super) struct StreamEnd {
    pub(super) answered: bool,
    pub(super) last_id: Option<String>,
    pub(super) retry: Option<u64>,
    pub(super) events: usize,
}

/// Credential headers as sensitive header values (kept out of logs and debug output).
pub(super) fn credential_headers(pairs: Vec<(String, String)>) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Protocol("invalid credential header".into()))?;
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| Error::Protocol("invalid credential header".into()))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

pub(super) fn session_header(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get("mcp-session-id")?.to_str().ok()?;
    // Visible ASCII only, as the spec requires.
    (!value.is_empty() && value.bytes().all(|b| (0x21..=0x7e).contains(&b))).then(|| value.to_owned())
}

pub(super) fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}

/// Whether `message` is the response to request `id`.
pub(super) fn answers(message: &[u8], id: &RequestId) -> bool {
    #[derive(serde::Deserialize)]
    struct Peek {
        id: Option<RequestId>,
        method: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Peek>(message).is_ok_and(|p| p.method.is_none() && p.id.as_ref() == Some(id))
}

/// The JSON-RPC error in an HTTP error body, if there is one.
pub(super) fn rpc_error(body: &[u8]) -> Option<ErrorObject> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: ErrorObject,
    }
    serde_json::from_slice::<Body>(body).ok().map(|b| b.error)
}

/// The server's `retry` when it gave one (honoured exactly); otherwise exponential backoff from 500 ms,
/// capped at 30 s, with up to 25 % jitter.
pub(super) fn reconnect_delay(retry: Option<u64>, attempt: usize) -> Duration {
    if let Some(ms) = retry {
        return Duration::from_millis(ms);
    }
    let base = 500u64.saturating_mul(1 << attempt.min(6)).min(30_000);
    let mut bytes = [0u8; 2];
    let jitter = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from(u16::from_le_bytes(bytes)) * (base / 4) / u64::from(u16::MAX),
        Err(_) => 0,
    };
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_is_honoured_exactly_and_backoff_is_bounded() {
        assert_eq!(reconnect_delay(Some(500), 3), Duration::from_millis(500));
        let d = reconnect_delay(None, 1);
        assert!(d >= Duration::from_millis(1000) && d <= Duration::from_millis(1250));
        assert!(reconnect_delay(None, 50) <= Duration::from_millis(37_500));
    }

    #[test]
    fn answers_and_errors_are_recognised() {
        let id = RequestId::Number(3);
        assert!(answers(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#, &id));
        assert!(!answers(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#, &id));
        assert!(!answers(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#, &id));
        let e = rpc_error(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32022,"message":"x"}}"#).unwrap();
        assert_eq!(e.code, -32022);
        assert!(rpc_error(b"Not Found").is_none());
    }
}
