//! The HTTP edges every endpoint shares: reading a bounded body, parsing form parameters (a repeated
//! parameter is an error, RFC 6749 §3.1), and building JSON, error and redirect responses — all with
//! `Cache-Control: no-store`.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use super::error::OAuthError;
use crate::server::http::ResponseBody;

/// Largest form or JSON body any endpoint reads.
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// Largest query string of an authorization request.
pub(crate) const MAX_QUERY: usize = 8 * 1024;
/// Longest wait for a whole request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most parameters in one request.
const MAX_PARAMS: usize = 64;

/// Reads at most [`MAX_BODY`] bytes within [`BODY_TIMEOUT`].
pub(crate) async fn read_body<B>(body: B) -> Result<Bytes, OAuthError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(OAuthError::payload_too_large())
        }
        Ok(Err(_)) => Err(OAuthError::invalid_request("could not read the request body")),
        Err(_) => Err(OAuthError::invalid_request("the request body took too long")),
    }
}

/// The parameters of a form POST (`application/x-www-form-urlencoded`, at most [`MAX_BODY`] bytes).
pub(crate) async fn read_form<B>(headers: &http::HeaderMap, body: B) -> Result<Params, OAuthError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !content_type_is(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("POST a form (application/x-www-form-urlencoded)"));
    }
    Params::parse(&read_body(body).await?)
}

/// Form parameters, in order. Its `Debug` shows the names only: values include secrets, codes and tokens.
#[derive(Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Params, OAuthError> {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(bytes)
            .take(MAX_PARAMS + 1)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if params.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request("too many parameters"));
        }
        Ok(Params(params))
    }

    /// The value of `name`: `None` when absent or empty (RFC 6749 §3.1), an error when repeated.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(format!("parameter {name} is repeated"))),
            (Some(""), None) | (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v)),
        }
    }

    /// The value of `name`, which must be there.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is missing")))
    }
}

/// Whether the request's `Content-Type` is `media` (parameters such as `charset` allowed).
pub(crate) fn content_type_is(headers: &http::HeaderMap, media: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

fn no_store(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON document with `status`, not cached.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(response)
}

/// A public JSON document (metadata, keys) that browsers on any origin may read.
pub(crate) fn public_json(body: &Value) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body.to_string()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response
}

/// The RFC 6749 §5.2 error document.
pub(crate) fn error(e: &OAuthError) -> Response<ResponseBody> {
    let mut response = json(e.status, &json!({"error": e.code, "error_description": e.description}));
    let headers = response.headers_mut();
    if e.status == StatusCode::UNAUTHORIZED && e.basic_challenge {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"token\""));
    }
    if e.status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("60"));
    }
    if e.status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(http::header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    response
}

/// A 302 to `location`, not cached.
pub(crate) fn redirect(location: &str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
            no_store(response)
        }
        Err(_) => error(&OAuthError::invalid_request("the redirect URI cannot be sent in a header")),
    }
}

/// `uri` with `params` appended to its query.
pub(crate) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let separator = match uri.find('?') {
        None => "?",
        Some(i) if i + 1 == uri.len() || uri.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let p = Params::parse(b"a=1&b=&c=x%20y&a=2").unwrap();
        assert!(p.get("a").is_err());
        assert_eq!(p.get("b").unwrap(), None);
        assert_eq!(p.get("c").unwrap(), Some("x y"));
        assert!(p.require("d").is_err());
        let many = "x=1&".repeat(MAX_PARAMS + 1);
        assert!(Params::parse(many.as_bytes()).is_err());
    }

    #[test]
    fn query_appending() {
        assert_eq!(with_query("http://a/cb", &[("code", "x y")]), "http://a/cb?code=x+y");
        assert_eq!(with_query("http://a/cb?k=v", &[("code", "c")]), "http://a/cb?k=v&code=c");
        assert_eq!(with_query("http://a/cb?", &[("code", "c")]), "http://a/cb?code=c");
    }
}
