//! Server-to-client streams that are not the answer to one POST: the legacy standalone GET stream, and the
//! 2024-11-05 HTTP+SSE transport, whose single GET stream carries every message.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use tracing::Instrument as _;

use super::connection::Inner;
use super::exchange::{is_event_stream, reconnect_delay};
use super::sse::SseDecoder;
use super::{MAX_RECONNECTS, origin};
use crate::error::Error;

impl Inner {
    /// Opens the standalone GET stream for server-initiated messages (legacy), tolerating servers without
    /// one; waits (briefly) for the response headers so the stream exists before the next request.
    pub(super) async fn open_get_stream(self: &Arc<Self>) {
        if self.state().sse_endpoint.is_some() || self.closed.is_cancelled() {
            return;
        }
        let first = match tokio::time::timeout(Duration::from_secs(5), self.get(None)).await {
            Ok(Ok(response)) if response.status().is_success() && is_event_stream(&response) => Some(response),
            Ok(Ok(response)) => {
                // 404 / 405: the server offers no standalone stream.
                tracing::debug!(status = %response.status(), "no standalone SSE stream");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "standalone SSE stream failed");
                return;
            }
            Err(_) => None,
        };
        let this = self.clone();
        let stream = async move {
            let mut response = first;
            let mut last_id: Option<String> = None;
            let mut retry = None;
            let mut failures = 0;
            while failures < MAX_RECONNECTS && !this.closed.is_cancelled() {
                let current = match response.take() {
                    Some(r) => r,
                    None => match this.get(last_id.as_deref()).await {
                        Ok(r) if r.status().is_success() && is_event_stream(&r) => r,
                        Ok(r) => {
                            tracing::debug!(status = %r.status(), "standalone SSE stream refused");
                            return;
                        }
                        Err(_) => {
                            failures += 1;
                            tokio::time::sleep(reconnect_delay(retry, failures)).await;
                            continue;
                        }
                    },
                };
                let end = this.read_stream(current, None, "").await;
                last_id = end.last_id.or(last_id);
                retry = end.retry.or(retry);
                failures = if end.events > 0 { 1 } else { failures + 1 };
                tokio::time::sleep(reconnect_delay(retry, failures)).await;
            }
        };
        let task = tokio::spawn(stream.in_current_span());
        if let Some(old) = self.state().get_stream.replace(task.abort_handle()) {
            old.abort();
        }
    }

    /// The 2024-11-05 HTTP+SSE transport: GET the URL, wait for the `endpoint` event, then keep reading the
    /// stream for every message while requests are POSTed to the endpoint.
    pub(super) async fn connect_legacy_sse(self: &Arc<Self>) -> Result<(), Error> {
        let mut headers = self.base_headers();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        let request = || self.http().get(self.url.clone()).headers(headers.clone());
        let mut response = self.send_with_auth("GET", &self.url, request).await?;
        if !response.status().is_success() || !is_event_stream(&response) {
            return Err(Error::Protocol("no HTTP+SSE endpoint either".into()));
        }
        let mut decoder = SseDecoder::new(self.limits.max_message_bytes);
        let endpoint = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let chunk = response.chunk().await.ok()??;
                for event in decoder.feed(&chunk).ok()? {
                    self.observe_event(&event);
                    if event.event == "endpoint" {
                        let mut endpoint = self.url.join(event.data.trim()).ok()?;
                        endpoint.set_fragment(None);
                        return Some(endpoint);
                    }
                }
            }
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Error::Protocol("the SSE stream sent no endpoint event".into()))?;
        if origin(&endpoint) != self.origin {
            return Err(Error::Protocol("the HTTP+SSE endpoint is on another origin".into()));
        }
        self.state().sse_endpoint = Some(endpoint);
        let this = self.clone();
        let stream = async move {
            loop {
                let chunk = tokio::select! {
                    c = response.chunk() => c,
                    _ = this.closed.cancelled() => break,
                };
                let Ok(Some(chunk)) = chunk else { break };
                let Ok(events) = decoder.feed(&chunk) else { break };
                for event in events {
                    this.observe_event(&event);
                    if (event.event.is_empty() || event.event == "message") && !event.data.trim().is_empty() {
                        this.deliver(event.data.as_bytes(), "").await;
                    }
                }
            }
            // The stream is the connection: when it ends, so does the transport.
            this.closed.cancel();
        };
        let task = tokio::spawn(stream.in_current_span());
        self.state().sse_stream = Some(task.abort_handle());
        Ok(())
    }
}
