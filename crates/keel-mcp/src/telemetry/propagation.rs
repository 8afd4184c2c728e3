//! Trace context in `params._meta`: `traceparent`, `tracestate` and `baggage`, unprefixed (SEP-414), written
//! and read with the application's global propagator.

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector};

use crate::protocol::JsonObject;
use crate::protocol::meta::RequestMeta;

/// The context a request's `_meta` carries (an empty context when it carries none).
pub(crate) fn extract(meta: &dyn Extractor) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract_with_context(&Context::new(), meta))
}

/// Writes `cx` into a notification's encoded `_meta` object.
pub(crate) fn inject_object(cx: &Context, meta: &mut JsonObject) {
    struct ObjectInjector<'a>(&'a mut JsonObject);
    impl Injector for ObjectInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value.into());
        }
    }
    global::get_text_map_propagator(|propagator| propagator.inject_context(cx, &mut ObjectInjector(meta)));
}

/// Writes `cx` into a request's `_meta`, creating the `_meta` only when the propagator writes something.
pub(crate) fn inject(cx: &Context, meta: &mut Option<RequestMeta>) {
    struct MetaInjector<'a>(&'a mut Option<RequestMeta>);
    impl Injector for MetaInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            let other: &mut JsonObject = &mut self.0.get_or_insert_with(Default::default).other;
            other.insert(key.to_owned(), value.into());
        }
    }
    global::get_text_map_propagator(|propagator| propagator.inject_context(cx, &mut MetaInjector(meta)));
}
