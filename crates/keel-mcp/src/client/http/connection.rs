//! The per-connection state of the HTTP transport and what it does with each outgoing frame: which era it
//! is in, the legacy session, the tool header annotations it learnt, and the requests in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::CancellationToken;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument as _;

use super::exchange::{StreamEnd, answers, is_event_stream, reconnect_delay, rpc_error, session_header};
use super::headers::{self, HeaderParam};
use super::{MAX_RECONNECTS, MAX_RELIST_PAGES, era_cache};
use crate::Limits;
use crate::auth::HttpAuth;
use crate::error::Error;
use crate::protocol::jsonrpc::{self, ErrorObject, RequestId, code};
use crate::protocol::{Era, Notification as _, ProtocolVersion};
use crate::transport::FrameError;

#[derive(Default)]
pub(super) struct State {
    pub(super) era: Option<Era>,
    pub(super) session: Option<String>,
    /// The legacy revision `initialize` agreed on (for the version header).
    pub(super) version: Option<ProtocolVersion>,
    /// The last `initialize` sent, replayed when the server forgets the session.
    pub(super) init_frame: Option<Vec<u8>>,
    /// `x-mcp-header` annotations of the tools listed so far.
    pub(super) tool_headers: HashMap<String, Vec<HeaderParam>>,
    pub(super) in_flight: HashMap<RequestId, AbortHandle>,
    pub(super) get_stream: Option<AbortHandle>,
    /// 2024-11-05 HTTP+SSE: where to POST (the `endpoint` event), once known.
    pub(super) sse_endpoint: Option<reqwest::Url>,
    pub(super) sse_stream: Option<AbortHandle>,
    pub(super) next_internal_id: u64,
}

pub(super) struct Inner {
    pub(super) url: reqwest::Url,
    pub(super) origin: String,
    pub(super) auth: Option<Arc<dyn HttpAuth>>,
    pub(super) limits: Limits,
    pub(super) extra_headers: HeaderMap,
    pub(super) observer: Option<Arc<dyn super::HttpObserver>>,
    pub(super) http: Option<reqwest::Client>,
    pub(super) inbound: mpsc::Sender<Result<Vec<u8>, FrameError>>,
    pub(super) closed: CancellationToken,
    pub(super) state: Mutex<State>,
}

/// What an outgoing frame is, read once.
#[derive(Clone, Debug)]
pub(super) struct Outgoing {
    pub(super) frame: Vec<u8>,
    pub(super) id: Option<RequestId>,
    pub(super) method: Option<String>,
    pub(super) params: Option<Value>,
}

impl Outgoing {
    pub(super) fn parse(frame: Vec<u8>) -> Outgoing {
        let value: Value = serde_json::from_slice(&frame).unwrap_or(Value::Null);
        let id = value.get("id").and_then(|v| serde_json::from_value(v.clone()).ok());
        let method = value.get("method").and_then(Value::as_str).map(str::to_owned);
        let params = value.get("params").cloned();
        Outgoing { frame, id, method, params }
    }

    pub(super) fn is_request(&self) -> bool {
        self.id.is_some() && self.method.is_some()
    }

    pub(super) fn method(&self) -> &str {
        self.method.as_deref().unwrap_or_default()
    }

    /// The revision named in `_meta` (modern requests carry it).
    pub(super) fn meta_version(&self) -> Option<ProtocolVersion> {
        let v = self.params.as_ref()?.get("_meta")?.get(crate::protocol::meta::keys::PROTOCOL_VERSION)?;
        Some(ProtocolVersion::new(v.as_str()?.to_owned()))
    }
}

/// How one POST ended, for the request it carried.
pub(super) enum Exchange {
    /// The answer was delivered (or none is due).
    Done,
    /// The server forgot the session (legacy 404).
    SessionGone,
    /// A JSON-RPC error came back in an HTTP error response; not yet delivered.
    RpcError(ErrorObject),
}

impl Inner {
    pub(super) fn http(&self) -> &reqwest::Client {
        self.http.as_ref().expect("checked at split")
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("http transport state lock")
    }

    pub(super) async fn dispatch(self: Arc<Self>, frame: Vec<u8>) {
        let out = Outgoing::parse(frame);
        let method = out.method().to_owned();
        if method == crate::protocol::CancelledParams::METHOD {
            let target = out
                .params
                .as_ref()
                .and_then(|p| p.get("requestId"))
                .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok());
            if let Some(target) = target
                && let Some(handle) = self.state().in_flight.remove(&target)
            {
                // Closing the response stream is how a modern request is cancelled; for a legacy one the
                // notification below tells the server too.
                handle.abort();
            }
            if self.state().era == Some(Era::Modern) {
                return;
            }
        }
        if out.is_request() {
            if out.meta_version().is_some_and(|v| v.is_modern()) {
                self.state().era = Some(Era::Modern);
            }
            if method == "initialize" {
                let mut state = self.state();
                state.era = Some(Era::Legacy);
                state.session = None;
                state.init_frame = Some(out.frame.clone());
            }
            if method == "server/discover" && era_cache::get(&self.origin) == Some(Era::Legacy) {
                // This origin spoke the legacy era last time: skip the probe. The entry is dropped meanwhile;
                // a successful `initialize` records it again, and anything else (the client's next probe
                // included) asks the server.
                era_cache::forget(&self.origin);
                let (code, message) = crate::client::REMEMBERED_LEGACY;
                let error = ErrorObject::new(code, message);
                self.deliver_error(out.id.as_ref(), error).await;
                return;
            }
            let id = out.id.clone().expect("requests have ids");
            let this = self.clone();
            // Registered under the lock the task needs to deregister, so it cannot finish first and leak.
            let mut state = self.state();
            let request = async move {
                let id = out.id.clone();
                if let Err(e) = this.clone().send_request(&out).await {
                    tracing::debug!(method = %out.method(), error = %e, "HTTP request failed");
                    if out.method() == "initialize" || out.method() == "server/discover" {
                        era_cache::forget(&this.origin);
                    }
                    this.fail(id.clone(), e).await;
                }
                if let Some(id) = &id {
                    this.state().in_flight.remove(id);
                }
            };
            // In the span the frame was written in (the connection's), as the server's tasks are.
            let task = tokio::spawn(request.in_current_span());
            state.in_flight.insert(id, task.abort_handle());
            return;
        }
        // Notifications and responses: modern servers take none (besides what is handled above).
        if self.state().era == Some(Era::Modern) {
            tracing::debug!(method = %method, "no client-to-server notifications over modern HTTP; dropped");
            return;
        }
        // Sent in order, before whatever the engine writes next: `notifications/initialized` must reach the
        // server (and the standalone stream must be open) before the first request of the session.
        match self.send_one_way(&out, true).await {
            Ok(()) if method == "notifications/initialized" => self.open_get_stream().await,
            Ok(()) => {}
            Err(e) => tracing::debug!(method = %method, error = %e, "HTTP message failed"),
        }
    }

    /// Sends a request and delivers its answer (or an error standing for it).
    pub(super) async fn send_request(self: Arc<Self>, out: &Outgoing) -> Result<(), Error> {
        let mut reinitialized = false;
        let mut relisted = false;
        loop {
            match self.exchange(out).await? {
                Exchange::Done => return Ok(()),
                Exchange::SessionGone if !reinitialized && out.method() != "initialize" => {
                    reinitialized = true;
                    self.reinitialize().await?;
                }
                Exchange::SessionGone => {
                    return Err(Error::Protocol("the server does not know the session".into()));
                }
                Exchange::RpcError(e)
                    if e.code == code::HEADER_MISMATCH && out.method() == "tools/call" && !relisted =>
                {
                    relisted = true;
                    tracing::debug!("header mismatch; re-listing tools before one retry");
                    self.relist_tools(out).await;
                }
                Exchange::RpcError(e) => {
                    if out.method() == "initialize" || out.method() == "server/discover" {
                        era_cache::forget(&self.origin);
                    }
                    self.deliver_error(out.id.as_ref(), e).await;
                    return Ok(());
                }
            }
        }
    }

    /// One POST of a request and everything it brings back.
    pub(super) async fn exchange(self: &Arc<Self>, out: &Outgoing) -> Result<Exchange, Error> {
        let response = self.post(out).await?;
        let status = response.status();
        let legacy = self.state().era != Some(Era::Modern);
        if legacy && let Some(session) = session_header(&response) {
            self.state().session = Some(session);
        }
        if status == reqwest::StatusCode::NOT_FOUND && legacy && self.state().session.is_some() {
            return Ok(Exchange::SessionGone);
        }
        if self.state().sse_endpoint.is_some() && status.is_success() {
            // HTTP+SSE: the answer comes on the GET stream.
            return Ok(Exchange::Done);
        }
        if status.is_success() {
            if status == reqwest::StatusCode::ACCEPTED || status == reqwest::StatusCode::NO_CONTENT {
                return Ok(Exchange::Done);
            }
            if is_event_stream(&response) {
                let id = out.id.clone();
                let mut stream = self.read_stream(response, id.as_ref(), out.method()).await;
                // A legacy stream that ends before the answer is resumed, not abandoned.
                let mut attempts = 0;
                while !stream.answered && legacy && attempts < MAX_RECONNECTS {
                    let Some(last_id) = stream.last_id.clone() else { break };
                    attempts += 1;
                    tokio::time::sleep(reconnect_delay(stream.retry, attempts)).await;
                    let resumed = match self.get(Some(&last_id)).await {
                        Ok(r) if r.status().is_success() && is_event_stream(&r) => r,
                        Ok(r) => {
                            tracing::debug!(status = %r.status(), "resuming the stream failed");
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "resuming the stream failed");
                            continue;
                        }
                    };
                    let next = self.read_stream(resumed, id.as_ref(), out.method()).await;
                    if next.events > 0 {
                        attempts = 0;
                    }
                    stream = StreamEnd {
                        answered: next.answered,
                        last_id: next.last_id.or(stream.last_id),
                        retry: next.retry.or(stream.retry),
                        events: next.events,
                    };
                }
                if !stream.answered {
                    return Err(Error::Protocol("the response stream ended without an answer".into()));
                }
                return Ok(Exchange::Done);
            }
            let body = self.read_body(response).await?;
            let answered = out.id.as_ref().is_some_and(|id| answers(&body, id));
            if !body.is_empty() {
                self.deliver(&body, out.method()).await;
            }
            if !answered {
                return Err(Error::Protocol(format!("HTTP {status} without an answer to the request")));
            }
            return Ok(Exchange::Done);
        }
        // An HTTP error. A JSON-RPC error in the body is the server's answer; anything else is not.
        let body = self.read_body(response).await.unwrap_or_default();
        if let Some(error) = rpc_error(&body) {
            return Ok(Exchange::RpcError(error));
        }
        if out.method() == "initialize"
            && matches!(status.as_u16(), 400 | 404 | 405)
            && self.state().sse_endpoint.is_none()
        {
            match self.connect_legacy_sse().await {
                Ok(()) => {
                    let response = self.post(out).await?;
                    if response.status().is_success() {
                        return Ok(Exchange::Done);
                    }
                    return Err(Error::Protocol(format!("HTTP {} from the HTTP+SSE endpoint", response.status())));
                }
                // Unreachable or refused on the last resort too: that, not the first 4xx, is what to act on.
                Err(e @ (Error::Transport(_) | Error::Unauthorized(_))) => return Err(e),
                Err(e) => tracing::debug!(error = %e, "no HTTP+SSE transport either"),
            }
        }
        Err(Error::Protocol(format!("HTTP {status} from the server")))
    }

    /// Sends a notification or a response (legacy era); expects 202.
    pub(super) async fn send_one_way(self: &Arc<Self>, out: &Outgoing, renew: bool) -> Result<(), Error> {
        for _ in 0..2 {
            let response = self.post(out).await?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND && renew && self.state().session.is_some() {
                Box::pin(self.reinitialize()).await?;
                continue;
            }
            if status.is_success() {
                return Ok(());
            }
            return Err(Error::Protocol(format!("HTTP {status}")));
        }
        Err(Error::Protocol("the server does not know the session".into()))
    }

    /// Hands a message to the engine, after the transport's own bookkeeping.
    pub(super) async fn deliver(&self, body: &[u8], method: &str) {
        let body = match self.inspect(body, method) {
            Some(rewritten) => rewritten,
            None => body.to_vec(),
        };
        let _ = self.inbound.send(Ok(body)).await;
    }

    /// Learns from answers (negotiated version, tool header annotations, era) and drops tools with invalid
    /// `x-mcp-header` annotations. Returns a rewritten message when it changed one.
    pub(super) fn inspect(&self, body: &[u8], method: &str) -> Option<Vec<u8>> {
        if !matches!(method, "initialize" | "tools/list" | "server/discover") {
            return None;
        }
        let mut message: Value = serde_json::from_slice(body).ok()?;
        let result = message.get_mut("result")?;
        match method {
            "initialize" => {
                let version = result.get("protocolVersion").and_then(Value::as_str)?.to_owned();
                self.state().version = Some(ProtocolVersion::new(version));
                era_cache::set(&self.origin, Era::Legacy);
                None
            }
            "server/discover" => {
                era_cache::set(&self.origin, Era::Modern);
                None
            }
            _ => {
                let tools = result.get_mut("tools")?.as_array_mut()?;
                let before = tools.len();
                let mut state = self.state();
                tools.retain(|tool| {
                    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                    let Some(schema) = tool.get("inputSchema").and_then(Value::as_object) else { return true };
                    match headers::header_params(schema) {
                        Ok(params) => {
                            state.tool_headers.insert(name.to_owned(), params);
                            true
                        }
                        Err(e) => {
                            tracing::warn!(tool = %name, error = %e, "dropping a tool with an invalid x-mcp-header");
                            state.tool_headers.remove(name);
                            false
                        }
                    }
                });
                (tools.len() != before).then(|| serde_json::to_vec(&message).expect("JSON values encode"))
            }
        }
    }

    pub(super) async fn deliver_error(&self, id: Option<&RequestId>, error: ErrorObject) {
        let _ = self.inbound.send(Ok(jsonrpc::encode_error(id, &error))).await;
    }

    /// Fails request `id` with a typed error of this side (unreachable server, refused credentials, …).
    async fn fail(&self, id: Option<RequestId>, error: Error) {
        if let Some(id) = id {
            let _ = self.inbound.send(Err(FrameError::RequestFailed { id, error })).await;
        }
    }

    /// Re-runs `initialize` (and `notifications/initialized`) after the server forgot the session.
    pub(super) async fn reinitialize(self: &Arc<Self>) -> Result<(), Error> {
        let frame = self.state().init_frame.clone().ok_or_else(|| Error::Protocol("no session to renew".into()))?;
        {
            let mut state = self.state();
            state.session = None;
            if let Some(get) = state.get_stream.take() {
                get.abort();
            }
        }
        let out = Outgoing::parse(frame);
        let response = self.post(&out).await?;
        if !response.status().is_success() {
            return Err(Error::Protocol(format!("re-initialize failed: HTTP {}", response.status())));
        }
        if let Some(session) = session_header(&response) {
            self.state().session = Some(session);
        }
        // The answer is ours, not the engine's (its request finished long ago); just drain it.
        if !is_event_stream(&response) {
            let body = self.read_body(response).await?;
            self.inspect(&body, "initialize");
        }
        let initialized = jsonrpc::encode_notification::<Value>("notifications/initialized", None)?;
        self.send_one_way(&Outgoing::parse(initialized), false).await.ok();
        Box::pin(self.open_get_stream()).await;
        Ok(())
    }

    /// Fetches `tools/list` again (all pages) to refresh header annotations, with the `_meta` of `call`.
    pub(super) async fn relist_tools(&self, call: &Outgoing) {
        let meta = call.params.as_ref().and_then(|p| p.get("_meta")).cloned();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_RELIST_PAGES {
            let id = {
                let mut state = self.state();
                state.next_internal_id += 1;
                RequestId::String(format!("keel-relist-{}", state.next_internal_id).into())
            };
            let mut params = serde_json::Map::new();
            if let Some(meta) = &meta {
                params.insert("_meta".into(), meta.clone());
            }
            if let Some(cursor) = cursor.take() {
                params.insert("cursor".into(), Value::String(cursor));
            }
            let Ok(frame) = jsonrpc::encode_request(&id, "tools/list", &params) else { return };
            let out = Outgoing::parse(frame);
            let Ok(response) = self.post(&out).await else { return };
            if !response.status().is_success() || is_event_stream(&response) {
                return;
            }
            let Ok(body) = self.read_body(response).await else { return };
            self.inspect(&body, "tools/list");
            let next = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("result")?.get("nextCursor")?.as_str().map(str::to_owned));
            match next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    /// Ends everything: aborts streams and requests, and ends a legacy session with DELETE.
    pub(super) async fn shutdown(&self) {
        let (session, tasks) = {
            let mut state = self.state();
            let mut tasks: Vec<AbortHandle> = state.in_flight.drain().map(|(_, h)| h).collect();
            tasks.extend(state.get_stream.take());
            tasks.extend(state.sse_stream.take());
            (state.session.take().filter(|_| state.era == Some(Era::Legacy)), tasks)
        };
        for task in tasks {
            task.abort();
        }
        if let Some(session) = session
            && let Some(http) = &self.http
        {
            let mut headers = self.base_headers();
            if let Ok(value) = HeaderValue::from_str(&session) {
                headers.insert("mcp-session-id", value);
            }
            if let Some(version) = self.state().version.as_ref().filter(|v| v.has_version_header()) {
                headers.insert("mcp-protocol-version", HeaderValue::from_str(version.as_str()).expect("ASCII"));
            }
            let mut request = http.delete(self.url.clone()).headers(headers).timeout(Duration::from_secs(2));
            if let Some(auth) = &self.auth
                && let Ok(pairs) = auth.request_headers("DELETE", self.url.as_str()).await
                && let Ok(credentials) = super::exchange::credential_headers(pairs)
            {
                request = request.headers(credentials);
            }
            // 404 / 405 mean there is nothing (more) to end.
            match self.send_observed("DELETE", request).await {
                Ok(r) => tracing::debug!(status = %r.status(), "session ended"),
                Err(e) => tracing::debug!(error = %e, "DELETE of the session failed"),
            }
        }
        self.closed.cancel();
    }
}
