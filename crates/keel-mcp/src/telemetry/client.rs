//! The `CLIENT` span and duration of each request or notification a Keel peer sends, with its context
//! injected into the message's `_meta` so that the receiver's span becomes its child.

use std::any::Any;
use std::time::Instant;

use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde_json::value::RawValue;

use super::{Ending, Recording, Side, Target, Wire, attributes, instruments, propagation};
use crate::error::Error;
use crate::protocol::jsonrpc;
use crate::protocol::prompts::GetPromptParams;
use crate::protocol::resources::{ReadResourceParams, ResourceUpdatedParams, SubscribeParams, UnsubscribeParams};
use crate::protocol::tools::CallToolParams;
use crate::protocol::{Notification, ProtocolVersion, Request, RequestId};

/// One outgoing request's or notification's operation; a request dropped before its answer ends as
/// `cancelled`.
pub(crate) struct ClientOperation {
    recording: Recording,
}

impl ClientOperation {
    /// Starts the span of request `id` (a child of the current context) and writes its context into the
    /// params' `_meta`; `None` while telemetry is not enabled. `wire` is asked only when it is.
    pub(crate) fn start<R: Request>(
        method: &str,
        id: &RequestId,
        params: &mut R,
        version: Option<&ProtocolVersion>,
        wire: impl FnOnce() -> Wire,
    ) -> Option<ClientOperation> {
        let instruments = instruments::get()?;
        let started = Instant::now();
        let target = target(method, &*params);
        let (cx, metric) = begin(instruments, method, Some(id), version, &wire(), &target);
        if cx.span().span_context().is_valid() {
            propagation::inject(&cx, params.meta_mut());
        }
        Some(ClientOperation { recording: Recording::new(instruments, cx, started, metric, method, Side::Sender) })
    }

    /// Ends the span with the request's outcome and records its duration.
    pub(crate) fn finish(mut self, outcome: &Result<Box<RawValue>, Error>) {
        let ending = match outcome {
            Ok(result) => self.recording.answered(result),
            Err(Error::Rpc(error)) => Ending::Rpc(error),
            Err(error) => Ending::Failed(error_type(error), error.to_string()),
        };
        self.recording.end(&ending);
    }

    /// Ends a notification's span: it was sent, or could not be.
    pub(crate) fn sent(mut self, outcome: &Result<(), Error>) {
        let ending = match outcome {
            Ok(()) => Ending::Ok,
            Err(error) => Ending::Failed(error_type(error), error.to_string()),
        };
        self.recording.end(&ending);
    }
}

/// A notification on its way out: its frame, with the span's context in `_meta`, and its operation.
pub(crate) struct NotificationSend {
    pub(crate) frame: serde_json::Result<Vec<u8>>,
    pub(crate) operation: ClientOperation,
}

impl NotificationSend {
    /// Starts the notification's span (a child of the current context) and encodes it with the span's context
    /// in its `_meta`; `None` while telemetry is not enabled. `wire` is asked only when it is.
    pub(crate) fn start<N: Notification>(
        params: &N,
        version: Option<&ProtocolVersion>,
        wire: impl FnOnce() -> Wire,
    ) -> Option<NotificationSend> {
        let instruments = instruments::get()?;
        let started = Instant::now();
        let uri = (params as &dyn Any).downcast_ref::<ResourceUpdatedParams>().map(|p| p.uri.as_str());
        let target = Target::new(N::METHOD, None, uri);
        let (cx, metric) = begin(instruments, N::METHOD, None, version, &wire(), &target);
        let frame = encode_with_context(params, &cx);
        let recording = Recording::new(instruments, cx, started, metric, N::METHOD, Side::Sender);
        Some(NotificationSend { frame, operation: ClientOperation { recording } })
    }
}

/// Starts a `CLIENT` span, a child of the current context: the context that holds it, and the attributes
/// of the operation's metric.
fn begin(
    instruments: &'static instruments::Instruments,
    method: &str,
    id: Option<&RequestId>,
    version: Option<&ProtocolVersion>,
    wire: &Wire,
    target: &Target,
) -> (Context, Vec<KeyValue>) {
    let mut metric = Vec::with_capacity(5);
    metric.push(KeyValue::new(attributes::MCP_METHOD_NAME, method.to_owned()));
    if let Some(version) = version {
        metric.push(KeyValue::new(attributes::MCP_PROTOCOL_VERSION, version.as_str().to_owned()));
    }
    target.push(&mut metric);
    let mut span_only = Vec::with_capacity(4);
    let session = wire.session();
    super::push_transport(wire.http, session.as_deref(), &mut metric, &mut span_only);
    if let Some(id) = id {
        span_only.push(KeyValue::new(attributes::JSONRPC_REQUEST_ID, id.to_string()));
    }
    target.push_span_only(&mut span_only);
    let mut span_attributes = metric.clone();
    span_attributes.append(&mut span_only);

    let tracer = &instruments.tracer;
    let parent = Context::current();
    let span = tracer
        .span_builder(target.span_name(method))
        .with_kind(SpanKind::Client)
        .with_attributes(span_attributes)
        .start_with_context(tracer, &parent);
    (parent.with_span(span), metric)
}

/// Encodes a notification with `cx` in its `_meta` (through a JSON value: only when telemetry is on, and
/// notifications are few beside requests).
fn encode_with_context<N: Notification>(params: &N, cx: &Context) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(params)?;
    if cx.span().span_context().is_valid()
        && let serde_json::Value::Object(object) = &mut value
    {
        let meta = object.entry("_meta").or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(meta) = meta {
            propagation::inject_object(cx, meta);
        }
    }
    jsonrpc::encode_notification(N::METHOD, Some(&value))
}

/// The low-cardinality class of a failure that came with no JSON-RPC error.
fn error_type(error: &Error) -> &'static str {
    match error {
        Error::Timeout(_) => "timeout",
        Error::Cancelled => "cancelled",
        Error::Closed => "closed",
        Error::TooManyPending(_) => "too_many_pending",
        Error::Json(_) => "invalid_json",
        Error::Transport(_) => "transport",
        #[cfg(feature = "http-client")]
        Error::Unauthorized(_) => "unauthorized",
        _ => "_OTHER",
    }
}

/// The tool, prompt or resource a request names; the params' types tell which.
fn target<R: Request>(method: &str, params: &R) -> Target {
    let params: &dyn Any = params;
    let (name, uri) = if let Some(p) = params.downcast_ref::<CallToolParams>() {
        (Some(p.name.as_str()), None)
    } else if let Some(p) = params.downcast_ref::<GetPromptParams>() {
        (Some(p.name.as_str()), None)
    } else if let Some(p) = params.downcast_ref::<ReadResourceParams>() {
        (None, Some(p.uri.as_str()))
    } else if let Some(p) = params.downcast_ref::<SubscribeParams>() {
        (None, Some(p.uri.as_str()))
    } else if let Some(p) = params.downcast_ref::<UnsubscribeParams>() {
        (None, Some(p.uri.as_str()))
    } else {
        (None, None)
    };
    Target::new(method, name, uri)
}
