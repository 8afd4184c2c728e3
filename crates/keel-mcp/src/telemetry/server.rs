//! The `SERVER` span and duration of each request or notification a Keel peer handles: every request a
//! server dispatches, the requests a client answers for its server (sampling, elicitation, roots), and the
//! notifications either receives.

use std::borrow::Cow;
use std::future::Future;
#[cfg(feature = "server")]
use std::sync::Mutex;
use std::time::Instant;

use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde::Deserialize;

use super::propagation;
use super::{Ending, Recording, Side, Target, attributes, instruments};
use crate::engine::CancellationToken;
use crate::engine::Peer;
use crate::protocol::jsonrpc::{RawNotification, RawRequest};
use crate::protocol::{ErrorObject, RequestId};
#[cfg(feature = "server")]
use crate::server::{context::Channel, request::Caller, session::LegacySession};
use serde_json::value::RawValue;

/// What handling a request comes to: the encoded result, or the JSON-RPC error to answer with.
type Outcome = Result<Box<serde_json::value::RawValue>, ErrorObject>;

/// What the span needs from a request's params, read in one pass that skips everything else.
#[derive(Default, Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<ProbeMeta<'a>>,
}

#[derive(Default, Deserialize)]
struct ProbeMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow, default)]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    traceparent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tracestate: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    baggage: Option<Cow<'a, str>>,
}

impl Extractor for ProbeMeta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent.as_deref(),
            "tracestate" => self.tracestate.as_deref(),
            "baggage" => self.baggage.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let keys = [("traceparent", &self.traceparent), ("tracestate", &self.tracestate), ("baggage", &self.baggage)];
        keys.into_iter().filter(|(_, value)| value.is_some()).map(|(key, _)| key).collect()
    }
}

/// One request's operation: its span (current while the handler runs) and what its metric records.
pub(crate) struct ServerOperation {
    recording: Recording,
    cancellation: CancellationToken,
}

/// How a request reached the side that handles it, as far as its span cares.
pub(crate) struct Arrival<'a> {
    /// Over HTTP (`tcp`), or over a stream (`pipe`).
    pub(crate) http: bool,
    /// The transport's own context (the HTTP request's span): linked, not parent.
    pub(crate) ambient: Option<Context>,
    pub(crate) session_id: Option<&'a str>,
    /// The revision of the session the request belongs to, for a request whose `_meta` names none.
    pub(crate) session_version: Option<String>,
    /// Fired when the sender gives up: the handler may still answer, but nobody gets it.
    pub(crate) cancellation: CancellationToken,
}

#[cfg(feature = "server")]
impl ServerOperation {
    /// The operation of a request a server dispatches.
    pub(crate) fn dispatched(
        request: &RawRequest,
        call: &Caller,
        session: Option<&Mutex<LegacySession>>,
    ) -> Option<ServerOperation> {
        instruments::get()?;
        let via = Via::of(&call.channel);
        let arrival = Arrival {
            http: via.http,
            ambient: via.ambient,
            session_id: call.channel.client().session_id(),
            session_version: session.and_then(|s| s.lock().ok()?.version.as_ref().map(|v| v.as_str().to_owned())),
            cancellation: call.cancellation.clone(),
        };
        ServerOperation::start(request, arrival)
    }
}

#[cfg(feature = "client")]
impl ServerOperation {
    /// The operation of a request a client answers for its server.
    pub(crate) fn answered_by_client(
        request: &RawRequest,
        inbound: &crate::engine::Inbound,
    ) -> Option<ServerOperation> {
        instruments::get()?;
        let wire = inbound.peer.wire();
        let session = wire.session();
        let arrival = Arrival {
            http: wire.http,
            ambient: None,
            session_id: session.as_deref(),
            session_version: inbound.peer.protocol_version().map(|v| v.as_str().to_owned()),
            cancellation: inbound.cancellation.clone(),
        };
        ServerOperation::start(request, arrival)
    }
}

impl ServerOperation {
    /// Starts the span of `request`: child of the context its `_meta` carries, linked to the transport's.
    /// `None` while telemetry is not enabled.
    pub(crate) fn start(request: &RawRequest, arrival: Arrival<'_>) -> Option<ServerOperation> {
        ServerOperation::begin(&request.method, Some(&request.id), request.params.as_deref(), arrival)
    }

    /// Starts the span of a request (`id`) or notification (no id).
    fn begin(
        method: &str,
        id: Option<&RequestId>,
        params: Option<&RawValue>,
        arrival: Arrival<'_>,
    ) -> Option<ServerOperation> {
        let instruments = instruments::get()?;
        let started = Instant::now();
        // The method comes from the peer: bounded like every other text it sends.
        let method = super::bounded(method);
        let method = method.as_str();
        // A params object that does not fit (a non-string `name`, say) only loses the target.
        let probe: Probe<'_> = params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or_default();
        let meta = probe.meta.as_ref();
        let parent = meta.map_or_else(Context::new, |meta| propagation::extract(meta));
        let target = Target::new(method, probe.name.as_deref(), probe.uri.as_deref());

        let mut metric = Vec::with_capacity(6);
        metric.push(KeyValue::new(attributes::MCP_METHOD_NAME, method.to_owned()));
        let version =
            meta.and_then(|m| m.protocol_version.as_deref()).and_then(super::known_version).or(arrival.session_version);
        if let Some(version) = version {
            metric.push(KeyValue::new(attributes::MCP_PROTOCOL_VERSION, version));
        }
        target.push(&mut metric);
        let mut span_only = Vec::with_capacity(4);
        super::push_transport(arrival.http, arrival.session_id, &mut metric, &mut span_only);
        if let Some(id) = id {
            span_only.push(KeyValue::new(attributes::JSONRPC_REQUEST_ID, super::bounded(&id.to_string())));
        }
        target.push_span_only(&mut span_only);
        let mut span_attributes = metric.clone();
        span_attributes.append(&mut span_only);

        let ambient = arrival.ambient.unwrap_or_else(Context::current).span().span_context().clone();
        let links = if ambient.is_valid() { vec![Link::with_context(ambient)] } else { Vec::new() };

        let tracer = &instruments.tracer;
        let span = tracer
            .span_builder(target.span_name(method))
            .with_kind(SpanKind::Server)
            .with_attributes(span_attributes)
            .with_links(links)
            .start_with_context(tracer, &parent);
        let recording = Recording::new(instruments, parent.with_span(span), started, metric, method, Side::Receiver);
        Some(ServerOperation { recording, cancellation: arrival.cancellation })
    }

    /// Starts the span of a notification that came on an engine connection (stdio, a child process, in
    /// memory, the HTTP client's streams).
    pub(crate) fn received(notification: &RawNotification, peer: &Peer) -> Option<ServerOperation> {
        instruments::get()?;
        let wire = peer.wire();
        let session = wire.session();
        let arrival = Arrival {
            http: wire.http,
            ambient: None,
            session_id: session.as_deref(),
            session_version: peer.protocol_version().map(|v| v.as_str().to_owned()),
            cancellation: CancellationToken::default(),
        };
        ServerOperation::begin(&notification.method, None, notification.params.as_deref(), arrival)
    }

    /// Starts the span of a notification a legacy HTTP session received.
    #[cfg(feature = "http-server")]
    pub(crate) fn received_over_http(
        notification: &RawNotification,
        parts: &http::request::Parts,
        session_id: &str,
        session: &Mutex<LegacySession>,
    ) -> Option<ServerOperation> {
        instruments::get()?;
        let arrival = Arrival {
            http: true,
            ambient: parts.extensions.get::<Context>().cloned(),
            session_id: Some(session_id),
            session_version: session.lock().ok().and_then(|s| s.version.as_ref().map(|v| v.as_str().to_owned())),
            cancellation: CancellationToken::default(),
        };
        ServerOperation::begin(&notification.method, None, notification.params.as_deref(), arrival)
    }

    /// Runs a notification's handling with the span current, then ends the span and records the duration.
    pub(crate) async fn handled(mut self, work: impl Future<Output = ()>) {
        work.with_context(self.recording.context().clone()).await;
        self.recording.end(&Ending::Ok);
    }

    /// Ends a notification's span whose handling is already done.
    #[cfg(feature = "http-server")]
    pub(crate) fn done(mut self) {
        self.recording.end(&Ending::Ok);
    }

    /// Runs the request's handling with the span current, then ends the span and records the duration.
    pub(crate) async fn run(mut self, work: impl Future<Output = Outcome>) -> Outcome {
        let outcome = work.with_context(self.recording.context().clone()).await;
        let ending = match &outcome {
            _ if self.cancellation.is_cancelled() => {
                Ending::Failed("cancelled", "the client cancelled the request".to_owned())
            }
            Ok(result) => self.recording.answered(result),
            Err(error) => Ending::Rpc(error),
        };
        self.recording.end(&ending);
        outcome
    }
}

#[cfg(feature = "server")]
/// How the request reached the server: over HTTP or a stream, and the transport's trace context when the
/// application put one (an [`opentelemetry::Context`]) in the HTTP request's extensions.
struct Via {
    http: bool,
    ambient: Option<Context>,
}

#[cfg(feature = "server")]
impl Via {
    #[cfg(feature = "http-server")]
    fn of(channel: &Channel) -> Via {
        match channel.client().http_request() {
            Some(parts) => Via { http: true, ambient: parts.extensions.get::<Context>().cloned() },
            None => Via { http: false, ambient: None },
        }
    }

    #[cfg(not(feature = "http-server"))]
    fn of(_: &Channel) -> Via {
        Via { http: false, ambient: None }
    }
}
