//! Span export for the conformance server: over OTLP (http/protobuf) when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, nothing otherwise. Keel's `otel` feature emits the spans; this only
//! installs the global provider and the W3C propagators they go through.

use opentelemetry::global;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The variable that turns export on (the OTLP exporter reads it, and the `_TRACES_` one, itself).
pub const ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Exports what was recorded when dropped (at the end of `main`).
#[derive(Debug)]
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!("span export did not finish: {error}");
        }
    }
}

/// Installs the OTLP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and not empty; `None` (and no
/// telemetry at all) otherwise.
pub fn from_env(service_name: &'static str) -> anyhow::Result<Option<Exporting>> {
    if std::env::var_os(ENDPOINT_VARIABLE).is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    global::set_tracer_provider(provider.clone());
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    keel_mcp::telemetry::enable();
    Ok(Some(Exporting { provider }))
}
