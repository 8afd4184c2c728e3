//! The `CLIENT` span and duration of each request a Keel peer sends, with its context injected into the
//! request's `_meta` so that the receiving server's span becomes its child.

use std::any::Any;
use std::time::Instant;

use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde_json::value::RawValue;

use super::{Ending, Recording, Side, Target, attributes, instruments, propagation};
use crate::error::Error;
use crate::protocol::prompts::GetPromptParams;
use crate::protocol::resources::{ReadResourceParams, SubscribeParams, UnsubscribeParams};
use crate::protocol::tools::CallToolParams;
use crate::protocol::{ProtocolVersion, Request, RequestId};

/// One outgoing request's operation; a request dropped before its answer ends as `cancelled`.
pub(crate) struct ClientOperation {
    recording: Recording,
}

impl ClientOperation {
    /// Starts the span of request `id` (a child of the current context) and writes its context into the
    /// params' `_meta`; `None` while telemetry is not enabled.
    pub(crate) fn start<R: Request>(
        method: &str,
        id: &RequestId,
        params: &mut R,
        version: Option<&ProtocolVersion>,
    ) -> Option<ClientOperation> {
        let instruments = instruments::get()?;
        let started = Instant::now();
        let target = target(method, params);
        let mut metric = Vec::with_capacity(4);
        metric.push(KeyValue::new(attributes::MCP_METHOD_NAME, method.to_owned()));
        if let Some(version) = version {
            metric.push(KeyValue::new(attributes::MCP_PROTOCOL_VERSION, version.as_str().to_owned()));
        }
        target.push(&mut metric);
        let mut span_attributes = metric.clone();
        span_attributes.push(KeyValue::new(attributes::JSONRPC_REQUEST_ID, id.to_string()));
        target.push_span_only(&mut span_attributes);

        let tracer = &instruments.tracer;
        let parent = Context::current();
        let span = tracer
            .span_builder(target.span_name(method))
            .with_kind(SpanKind::Client)
            .with_attributes(span_attributes)
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);
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
