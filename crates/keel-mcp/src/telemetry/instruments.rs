//! The tracer and histograms, taken from the global providers once, when the application enables telemetry.

use std::sync::OnceLock;

use opentelemetry::InstrumentationScope;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::Histogram;

use super::{SCOPE, metrics};

/// What every instrumented operation reports to.
pub(crate) struct Instruments {
    pub(crate) tracer: BoxedTracer,
    pub(crate) server_duration: Histogram<f64>,
    pub(crate) client_duration: Histogram<f64>,
}

/// The bucket boundaries (seconds) the conventions advise for the operation durations.
const DURATION_BUCKETS: [f64; 14] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// The instruments, once [`enable`](super::enable) made them; `None` (record nothing) until then.
pub(crate) fn get() -> Option<&'static Instruments> {
    INSTRUMENTS.get()
}

/// Makes the instruments from the global providers as they are now; later calls change nothing.
pub(crate) fn init() -> &'static Instruments {
    INSTRUMENTS.get_or_init(|| {
        let scope = InstrumentationScope::builder(SCOPE).with_version(env!("CARGO_PKG_VERSION")).build();
        let meter = global::meter_with_scope(scope.clone());
        let histogram = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        Instruments {
            tracer: global::tracer_with_scope(scope),
            server_duration: histogram(
                metrics::SERVER_OPERATION_DURATION,
                "MCP request duration as observed on the receiver, from receipt until the answer is sent",
            ),
            client_duration: histogram(
                metrics::CLIENT_OPERATION_DURATION,
                "MCP request duration as observed on the sender, from sending until the answer is received",
            ),
        }
    })
}
