//! The `tower::Service`: routes a request to its endpoint by path (the issuer's path plus the endpoint's
//! name, and the well-known metadata locations), after the per-IP rate limit.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use super::error::OAuthError;
use super::{AuthorizationServer, Inner, authorize, metadata, registration, response, revocation, token};
use crate::server::http::{PeerAddr, ResponseBody};

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<B> tower_service::Service<Request<B>> for AuthorizationServer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(route(inner, request).await) })
    }
}

/// The endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Metadata,
    Jwks,
    Authorize,
    Token,
    Register,
    Revoke,
}

fn endpoint(inner: &Inner, path: &str) -> Option<Endpoint> {
    let p = inner.path.as_str();
    for well_known in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        if path.strip_prefix(well_known) == Some(p) {
            return Some(Endpoint::Metadata);
        }
    }
    let rest = path.strip_prefix(p)?;
    Some(match rest {
        "/.well-known/openid-configuration" => Endpoint::Metadata,
        "/jwks" => Endpoint::Jwks,
        "/authorize" => Endpoint::Authorize,
        "/token" => Endpoint::Token,
        "/register" if inner.registration => Endpoint::Register,
        "/revoke" => Endpoint::Revoke,
        _ => return None,
    })
}

async fn route<B>(inner: Arc<Inner>, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(endpoint) = endpoint(&inner, request.uri().path()) else {
        return response::error(&OAuthError::not_found());
    };
    let ip = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    if !inner.limiter.allow_ip(ip) {
        return response::error(&OAuthError::rate_limited());
    }
    let method = request.method().clone();
    let result = match (endpoint, &method) {
        (Endpoint::Metadata, &Method::GET) => Ok(response::public_json(&metadata::document(&inner))),
        (Endpoint::Jwks, &Method::GET) => Ok(response::public_json(&inner.keys.jwks())),
        (Endpoint::Metadata | Endpoint::Jwks, &Method::OPTIONS) => Ok(preflight()),
        (Endpoint::Authorize, &Method::GET | &Method::POST) => authorize::handle(&inner, request).await,
        (Endpoint::Token, &Method::POST) => token::handle(&inner, request).await,
        (Endpoint::Register, &Method::POST) => registration::handle(&inner, request, ip).await,
        (Endpoint::Revoke, &Method::POST) => revocation::handle(&inner, request).await,
        _ => Err(OAuthError::method_not_allowed()),
    };
    result.unwrap_or_else(|e| response::error(&e))
}

/// CORS preflight for the public documents.
fn preflight() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", http::HeaderValue::from_static("*"));
    headers.insert("access-control-allow-methods", http::HeaderValue::from_static("GET, OPTIONS"));
    response
}
