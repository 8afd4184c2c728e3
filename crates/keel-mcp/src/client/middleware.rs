//! Request middleware: tower layers around every request a [`Client`](super::Client) sends after it
//! connected (`tools/call`, lists, reads, ...; not the handshake), for retries, audit, or extra `_meta`.
//!
//! A layer is a tower [`Layer`] over [`Next`], whose service takes an [`Outgoing`] request (method, params
//! with their `_meta`, options) and answers with the raw result. [`from_fn`](crate::middleware::from_fn)
//! writes one as an async function; tower's own layers apply as well. Each attempt a layer makes gets a
//! JSON-RPC id of its own; an input-required exchange (2026-07-28) passes through the layers once per round.
//!
//! ```
//! use keel_mcp::Error;
//! use keel_mcp::client::Client;
//! use keel_mcp::client::middleware::{Next, Outgoing};
//! use keel_mcp::middleware::from_fn;
//! use keel_mcp::protocol::Implementation;
//!
//! // Retries a request the transport lost, up to three times, and tags every request for the server's logs.
//! let retry = from_fn(|mut request: Outgoing, next: Next| async move {
//!     request.meta_mut().insert("example.com/tenant".into(), "acme".into());
//!     let mut attempts = 0;
//!     loop {
//!         attempts += 1;
//!         match next.clone().run(request.clone()).await {
//!             Err(Error::Transport(_)) if attempts < 3 => continue,
//!             other => return other,
//!         }
//!     }
//! });
//! let builder = Client::builder(Implementation::new("app", "1.0.0")).layer(retry);
//! # let _ = builder;
//! ```

use std::fmt;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::engine::{BoxFuture, Peer, RequestOptions};
use crate::error::Error;
use crate::middleware::Shared;
pub use crate::middleware::{BoxError, Layer, Service};
use crate::protocol::lifecycle::EmptyResult;
use crate::protocol::meta::RequestMeta;
use crate::protocol::{JsonObject, Request};

/// One request on its way to the server: what a layer sees, may change, and passes on (as many times as it
/// likes: it is cheap to clone).
#[derive(Clone)]
pub struct Outgoing {
    method: &'static str,
    params: JsonObject,
    /// `params._meta`, apart so that layers reach it directly.
    meta: JsonObject,
    options: RequestOptions,
    peer: Peer,
}

impl Outgoing {
    pub(crate) fn new<R: Request>(params: &R, options: RequestOptions, peer: Peer) -> Result<Self, Error> {
        let mut params = match serde_json::to_value(params)? {
            Value::Object(params) => params,
            other => return Err(Error::Protocol(format!("{} params must be a JSON object, not {other}", R::METHOD))),
        };
        let meta = match params.remove("_meta") {
            Some(Value::Object(meta)) => meta,
            _ => JsonObject::new(),
        };
        Ok(Outgoing { method: R::METHOD, params, meta, options, peer })
    }

    /// The JSON-RPC method.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The params as they will be sent, without their `_meta` ([`meta`](Self::meta)).
    pub fn params(&self) -> &JsonObject {
        &self.params
    }

    /// The params, to change.
    pub fn params_mut(&mut self) -> &mut JsonObject {
        &mut self.params
    }

    /// The params' `_meta` (what the era requires — protocol version, capabilities — is added after the
    /// layers).
    pub fn meta(&self) -> &JsonObject {
        &self.meta
    }

    /// The params' `_meta`, to change: put your own keys here, namespaced (`example.com/tenant`).
    pub fn meta_mut(&mut self) -> &mut JsonObject {
        &mut self.meta
    }

    /// The options: timeout, progress, cancellation.
    pub fn options(&self) -> &RequestOptions {
        &self.options
    }

    /// The options, to change (a layer may shorten the timeout of one attempt, say).
    pub fn options_mut(&mut self) -> &mut RequestOptions {
        &mut self.options
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("params", &self.params)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The rest of the chain: the layers inside this one, then the connection. Cheap to clone.
#[derive(Clone)]
pub struct Next {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// Sends the request on its connection.
    Send,
    /// A layered service.
    Layered(Shared<Outgoing, Box<RawValue>>),
}

impl Next {
    pub(crate) fn wrap(chain: Option<Next>, layer: impl RequestLayer) -> Next {
        layer.wrap_next(chain.unwrap_or(Next { kind: Kind::Send }))
    }

    /// Passes `request` on and waits for the raw result; a layer's error that is not an [`Error`] comes out
    /// as [`Error::Protocol`] with its message.
    pub async fn run(mut self, request: Outgoing) -> Result<Box<RawValue>, Error> {
        Service::call(&mut self, request).await.map_err(client_error)
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Send => "send",
            Kind::Layered(_) => "layered",
        };
        f.debug_tuple("Next").field(&kind).finish()
    }
}

impl Service<Outgoing> for Next {
    type Response = Box<RawValue>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Box<RawValue>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Outgoing) -> Self::Future {
        match &self.kind {
            Kind::Send => Box::pin(async move { send(request).await.map_err(|e| Box::new(e) as BoxError) }),
            Kind::Layered(service) => service.call(request),
        }
    }
}

/// Sends a request whose params a layer may have changed.
async fn send(request: Outgoing) -> Result<Box<RawValue>, Error> {
    let Outgoing { method, params, meta, options, peer } = request;
    // `_meta` typed, so that the engine adds what the era requires to it as to any request's.
    let meta = if meta.is_empty() { None } else { Some(serde_json::from_value(Value::Object(meta))?) };
    let mut params = AnyParams { fields: params, meta };
    peer.request_raw_with(method, &mut params, options).await
}

/// The params of any method, as a layer left them.
#[derive(Serialize, Deserialize)]
struct AnyParams {
    #[serde(flatten)]
    fields: JsonObject,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    meta: Option<RequestMeta>,
}

impl Request for AnyParams {
    // Never read: the method travels beside the params (`Peer::request_raw_with`).
    const METHOD: &'static str = "";
    type Result = EmptyResult;

    fn meta(&self) -> Option<&RequestMeta> {
        self.meta.as_ref()
    }

    fn meta_mut(&mut self) -> &mut Option<RequestMeta> {
        &mut self.meta
    }
}

fn client_error(error: BoxError) -> Error {
    match error.downcast::<Error>() {
        Ok(error) => *error,
        Err(error) => Error::Protocol(format!("a request layer failed: {error}")),
    }
}

/// A layer that fits around requests: a tower [`Layer`] over [`Next`] whose service takes an [`Outgoing`]
/// request and answers with the raw result, with any error type tower layers use. Implemented for every
/// such layer.
pub trait RequestLayer {
    #[doc(hidden)]
    fn wrap_next(self, inner: Next) -> Next;
}

impl<L> RequestLayer for L
where
    L: Layer<Next>,
    L::Service: Service<Outgoing, Response = Box<RawValue>> + Send + 'static,
    <L::Service as Service<Outgoing>>::Error: Into<BoxError>,
    <L::Service as Service<Outgoing>>::Future: Send + 'static,
{
    fn wrap_next(self, inner: Next) -> Next {
        Next { kind: Kind::Layered(Shared::new(self.layer(inner))) }
    }
}

impl<F, Fut> Service<Outgoing> for crate::middleware::FromFn<F, Next>
where
    F: Fn(Outgoing, Next) -> Fut,
    Fut: Future<Output = Result<Box<RawValue>, Error>> + Send + 'static,
{
    type Response = Box<RawValue>;
    type Error = Error;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Outgoing) -> Fut {
        (self.f)(request, self.next.clone())
    }
}
