//! OpenTelemetry for MCP operations (feature `otel`), following the OpenTelemetry semantic conventions for
//! MCP (`gen-ai/mcp.md`).
//!
//! Every request or notification a Keel peer receives becomes a `SERVER` span, and every request or
//! notification it sends a `CLIENT` span — on both sides: a server's requests to its client (sampling,
//! elicitation, roots) and its notifications are `CLIENT` spans too, over stdio and HTTP alike. A span is
//! named `{mcp.method.name} {target}` (the tool or prompt name, when the method has one) and carries
//! `mcp.method.name`, `jsonrpc.request.id` (requests), `mcp.protocol.version`, `mcp.session.id` (legacy
//! HTTP), `network.transport` (`tcp` for HTTP, `pipe` for stdio and other streams), `gen_ai.tool.name`,
//! `gen_ai.prompt.name`, `mcp.resource.uri` and, when the operation fails, `error.type` (the JSON-RPC
//! code, `tool_error` for a tool result with `isError`, or `timeout`, `cancelled`, ...) with an `ERROR`
//! status. Each operation's duration goes to the histograms `mcp.server.operation.duration` and
//! `mcp.client.operation.duration` (seconds, with the buckets the conventions advise); a notification's
//! covers its sending (there is no answer) or its handling.
//!
//! **Context propagation.** A sending peer injects the context of its `CLIENT` span into the request's or
//! notification's `params._meta` (`traceparent`, `tracestate`, `baggage`, unprefixed as SEP-414 says) with the global
//! propagator; the receiving server extracts it and makes it the parent of its `SERVER` span, over stdio and
//! HTTP alike. The transport's own context — the span of the HTTP request the message came in, as an
//! [`opentelemetry::Context`] in the HTTP request's extensions or the context current when the server is
//! called — is recorded as a *link*, never as the parent: one MCP request may take several HTTP requests and
//! one HTTP stream may carry many MCP requests. While a handler runs, its server span is the current
//! context, so the handler's own spans and the requests it sends back to the client nest under it.
//!
//! **Bounds.** What a peer writes is recorded bounded: tool and prompt names, URIs and request ids are cut
//! at 1 KiB; a protocol version goes to the metric only when Keel knows it. Method and tool names still
//! come from the peer, so the metric's attribute sets are bounded by the SDK's cardinality limit (2,000
//! per instrument by default in `opentelemetry_sdk`, then one overflow set).
//!
//! **Setup.** Keel reports to the application's global providers, read once, when the application calls
//! [`enable`]: install them first. Before `enable`, each operation costs one atomic load and nothing is
//! recorded; after it, a scan of the request's params for its target and `_meta`, a span and a histogram
//! record (no-ops without an SDK).
//!
//! ```no_run
//! use opentelemetry::global;
//! use opentelemetry::propagation::TextMapCompositePropagator;
//! use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//!
//! // Any exporter will do: OTLP (`opentelemetry-otlp`), stdout, in memory for tests.
//! let provider = SdkTracerProvider::builder().with_simple_exporter(InMemorySpanExporter::default()).build();
//! global::set_tracer_provider(provider);
//! global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
//!     Box::new(TraceContextPropagator::new()),
//!     Box::new(BaggagePropagator::new()),
//! ]));
//! keel_mcp::telemetry::enable();
//! // ... then build and serve the Keel server, or connect the Keel client.
//! ```
//!
//! Emitted directly with the OpenTelemetry API rather than bridged from the `tracing` spans: span kinds,
//! links, remote parents from `_meta` and the duration histograms are first-class here, and the application
//! needs no `tracing-opentelemetry` layer in its subscriber. The `mcp.request` / `mcp.send` `tracing` spans
//! stay for logs.
#![cfg_attr(
    not(any(feature = "client", feature = "server")),
    allow(dead_code, reason = "the client and the server record operations; with neither, nothing does")
)]

pub(crate) mod client;
mod instruments;
mod propagation;
pub(crate) mod server;
mod wire;

pub(crate) use wire::Wire;

/// Turns Keel's instrumentation on, reporting to the global tracer and meter providers as they are now:
/// install them (and the propagators) first. Until this is called Keel records nothing, and each MCP
/// operation costs one atomic load. Later calls change nothing.
pub fn enable() {
    instruments::init();
}

/// Whether [`enable`] was called: the sending paths that must gather what a span needs before they know
/// whether there is one ask first.
#[cfg(feature = "server")]
pub(crate) fn enabled() -> bool {
    instruments::get().is_some()
}

/// The instrumentation scope Keel's spans and metrics are reported under.
pub const SCOPE: &str = "keel-mcp";

/// The attribute names Keel records, as the semantic conventions spell them.
pub mod attributes {
    /// The request's method.
    pub const MCP_METHOD_NAME: &str = "mcp.method.name";
    /// The revision the request speaks.
    pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
    /// The session the request or notification belongs to (legacy HTTP).
    pub const MCP_SESSION_ID: &str = "mcp.session.id";
    /// The resource a `resources/*` request names.
    pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
    /// The JSON-RPC id of the request.
    pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
    /// The tool a `tools/call` calls.
    pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
    /// The prompt a `prompts/get` gets.
    pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
    /// `execute_tool` on `tools/call`.
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `pipe` (stdio, in memory) or `tcp` (HTTP).
    pub const NETWORK_TRANSPORT: &str = "network.transport";
    /// `http` on HTTP.
    pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
    /// Why the operation failed.
    pub const ERROR_TYPE: &str = "error.type";
    /// The JSON-RPC error code of a failed request.
    pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
}

/// The metric names Keel records.
pub mod metrics {
    /// Histogram (seconds): a request as the server saw it, from receipt to the answer.
    pub const SERVER_OPERATION_DURATION: &str = "mcp.server.operation.duration";
    /// Histogram (seconds): a request as the sender saw it, from sending to the answer.
    pub const CLIENT_OPERATION_DURATION: &str = "mcp.client.operation.duration";
}

use std::borrow::Cow;
use std::time::Instant;

use opentelemetry::trace::{SpanRef, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use serde_json::value::RawValue;

use crate::protocol::ErrorObject;

/// Which side of a request an operation records.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    /// The sender (`CLIENT` span, `mcp.client.operation.duration`).
    Sender,
    /// The receiver (`SERVER` span, `mcp.server.operation.duration`).
    Receiver,
}

/// One operation being recorded: its span (in `cx`), when it began and its metric's attributes. Ends once:
/// with the outcome, or as `cancelled` when dropped before (the request's future was dropped).
pub(crate) struct Recording {
    instruments: &'static instruments::Instruments,
    cx: Context,
    started: Instant,
    metric: Vec<KeyValue>,
    tool_call: bool,
    side: Side,
    done: bool,
}

impl Recording {
    pub(crate) fn new(
        instruments: &'static instruments::Instruments,
        cx: Context,
        started: Instant,
        metric: Vec<KeyValue>,
        method: &str,
        side: Side,
    ) -> Recording {
        Recording { instruments, cx, started, metric, tool_call: method == "tools/call", side, done: false }
    }

    /// The context with the operation's span, to make current while it runs.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// How a request answered with `result` ended: a tool result with `isError` is a failure.
    pub(crate) fn answered(&self, result: &RawValue) -> Ending<'static> {
        if self.tool_call && is_tool_error(result.get()) { Ending::ToolError } else { Ending::Ok }
    }

    /// Ends the span with `ending` and records the duration.
    pub(crate) fn end(&mut self, ending: &Ending<'_>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let span = self.cx.span();
        ending.record(&span, &mut self.metric);
        span.end();
        let histogram = match self.side {
            Side::Sender => &self.instruments.client_duration,
            Side::Receiver => &self.instruments.server_duration,
        };
        histogram.record(self.started.elapsed().as_secs_f64(), &self.metric);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.end(&Ending::Failed("cancelled", "the request ended before its answer".to_owned()));
    }
}

/// Where an operation's target comes from: the tool or prompt named, or the resource read.
#[derive(Debug, Default)]
pub(crate) struct Target {
    tool: Option<String>,
    prompt: Option<String>,
    uri: Option<String>,
}

impl Target {
    /// Reads the target the way the conventions name it for `method`.
    pub(crate) fn new(method: &str, name: Option<&str>, uri: Option<&str>) -> Target {
        match method {
            "tools/call" => Target { tool: name.map(bounded), ..Target::default() },
            "prompts/get" => Target { prompt: name.map(bounded), ..Target::default() },
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" | "notifications/resources/updated" => {
                Target { uri: uri.map(bounded), ..Target::default() }
            }
            _ => Target::default(),
        }
    }

    /// `{mcp.method.name} {target}`; the resource URI stays out of the name (high cardinality).
    pub(crate) fn span_name(&self, method: &str) -> Cow<'static, str> {
        match self.tool.as_deref().or(self.prompt.as_deref()) {
            Some(target) => format!("{method} {target}").into(),
            None => method.to_owned().into(),
        }
    }

    /// The attributes shared by the span and the duration metric.
    pub(crate) fn push(&self, attributes: &mut Vec<KeyValue>) {
        if let Some(tool) = &self.tool {
            attributes.push(KeyValue::new(attributes::GEN_AI_TOOL_NAME, tool.clone()));
            attributes.push(KeyValue::new(attributes::GEN_AI_OPERATION_NAME, "execute_tool"));
        }
        if let Some(prompt) = &self.prompt {
            attributes.push(KeyValue::new(attributes::GEN_AI_PROMPT_NAME, prompt.clone()));
        }
    }

    /// The span-only attributes (the URI is opt-in on metrics).
    pub(crate) fn push_span_only(&self, attributes: &mut Vec<KeyValue>) {
        if let Some(uri) = &self.uri {
            attributes.push(KeyValue::new(attributes::MCP_RESOURCE_URI, uri.clone()));
        }
    }
}

/// `network.transport` (span and metric: `tcp` over HTTP, `pipe` over a stream) and, on the span only,
/// `network.protocol.name` over HTTP and the session.
pub(crate) fn push_transport(
    http: bool,
    session: Option<&str>,
    metric: &mut Vec<KeyValue>,
    span_only: &mut Vec<KeyValue>,
) {
    metric.push(KeyValue::new(attributes::NETWORK_TRANSPORT, if http { "tcp" } else { "pipe" }));
    if http {
        span_only.push(KeyValue::new(attributes::NETWORK_PROTOCOL_NAME, "http"));
    }
    if let Some(session) = session {
        span_only.push(KeyValue::new(attributes::MCP_SESSION_ID, bounded(session)));
    }
}

/// The longest peer-given text (a tool name, a URI, a request id) that goes into a span as it is.
const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// `text`, cut to [`MAX_ATTRIBUTE_BYTES`] at a character boundary: what a peer sends must not make a span
/// as large as its message.
pub(crate) fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_ATTRIBUTE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The revision a request names, when it is one Keel knows: the metric's attributes stay few whatever a
/// peer writes there.
pub(crate) fn known_version(version: &str) -> Option<String> {
    let known = crate::protocol::ProtocolVersion::ALL.iter().any(|v| v.as_str() == version);
    known.then(|| version.to_owned())
}

/// How an operation ended, as the conventions classify it.
pub(crate) enum Ending<'a> {
    Ok,
    /// A result with `isError: true`.
    ToolError,
    /// A JSON-RPC error answer.
    Rpc(&'a ErrorObject),
    /// A failure with no answer (`timeout`, `cancelled`, `closed`, ...).
    Failed(&'static str, String),
}

impl Ending<'_> {
    /// Records the ending on the span (status, `error.type`) and adds its metric attributes.
    pub(crate) fn record(&self, span: &SpanRef<'_>, metric: &mut Vec<KeyValue>) {
        let (error_type, description): (Cow<'static, str>, String) = match self {
            Ending::Ok => return,
            Ending::ToolError => ("tool_error".into(), "the tool reported an error".to_owned()),
            Ending::Rpc(error) => {
                let code = error.code.to_string();
                metric.push(KeyValue::new(attributes::RPC_RESPONSE_STATUS_CODE, code.clone()));
                span.set_attribute(KeyValue::new(attributes::RPC_RESPONSE_STATUS_CODE, code.clone()));
                (code.into(), error.message.to_string())
            }
            Ending::Failed(kind, message) => ((*kind).into(), message.clone()),
        };
        metric.push(KeyValue::new(attributes::ERROR_TYPE, error_type.clone()));
        span.set_attribute(KeyValue::new(attributes::ERROR_TYPE, error_type));
        span.set_status(Status::error(description));
    }
}

/// Whether an encoded `tools/call` result reports a tool error (`isError: true`).
fn is_tool_error(result: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct IsError {
        #[serde(rename = "isError", default)]
        is_error: bool,
    }
    serde_json::from_str::<IsError>(result).is_ok_and(|r| r.is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("get_weather"), "get_weather");
        let long = "é".repeat(MAX_ATTRIBUTE_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_ATTRIBUTE_BYTES && cut.len() >= MAX_ATTRIBUTE_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn only_known_versions_are_recorded() {
        assert_eq!(known_version("2025-11-25").as_deref(), Some("2025-11-25"));
        assert_eq!(known_version("9999-01-01"), None);
    }

    #[test]
    fn the_target_names_the_span_for_tools_and_prompts_only() {
        let tool = Target::new("tools/call", Some("echo"), None);
        assert_eq!(tool.span_name("tools/call"), "tools/call echo");
        let read = Target::new("resources/read", None, Some("file:///a"));
        assert_eq!(read.span_name("resources/read"), "resources/read");
        assert_eq!(Target::new("tools/list", Some("x"), None).span_name("tools/list"), "tools/list");
    }
}
