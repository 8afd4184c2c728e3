//! The OAuth client's HTTP edge: its own `reqwest` client that follows no redirects (so the URL checks cover
//! every hop), caps every body at 4 MiB, and accepts only JSON objects as documents.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{AuthError, redact_url};
use super::url_policy::{UrlPolicy, ip_is_private};

/// Largest response body read from any OAuth endpoint.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A status and, when the body was a JSON object, the object.
#[derive(Debug)]
pub struct JsonResponse {
    /// HTTP status.
    pub status: u16,
    /// The body, when it parsed as a JSON object.
    pub body: Option<Map<String, Value>>,
    /// A `DPoP-Nonce` header (RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

/// A boxed future borrowing its arguments.
pub(crate) type CallFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsonResponse, AuthError>> + Send + 'a>>;

/// The HTTP calls the OAuth flow makes, behind a trait so the flow steps run against an in-memory
/// authorization server in tests. [`OAuthHttp`] is the real one.
pub(crate) trait OAuthTransport: Send + Sync {
    /// GET a JSON document (`MCP-Protocol-Version` is sent when given).
    fn get_json<'a>(&'a self, url: &'a str, protocol_version: Option<&'a str>) -> CallFuture<'a>;
    /// POST a form; `basic` is an `Authorization: Basic` header value, `dpop` a DPoP proof.
    fn post_form<'a>(
        &'a self,
        url: &'a str,
        form: &'a [(&'a str, &'a str)],
        basic: Option<String>,
        dpop: Option<String>,
    ) -> CallFuture<'a>;
    /// POST a JSON body.
    fn post_json<'a>(&'a self, url: &'a str, body: &'a Value) -> CallFuture<'a>;
}

impl OAuthTransport for OAuthHttp {
    fn get_json<'a>(&'a self, url: &'a str, protocol_version: Option<&'a str>) -> CallFuture<'a> {
        Box::pin(OAuthHttp::get_json(self, url, protocol_version))
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        form: &'a [(&'a str, &'a str)],
        basic: Option<String>,
        dpop: Option<String>,
    ) -> CallFuture<'a> {
        Box::pin(OAuthHttp::post_form(self, url, form, basic, dpop))
    }

    fn post_json<'a>(&'a self, url: &'a str, body: &'a Value) -> CallFuture<'a> {
        Box::pin(OAuthHttp::post_json(self, url, body))
    }
}

/// HTTP for discovery, registration and token requests.
#[derive(Clone, Debug)]
pub struct OAuthHttp {
    client: reqwest::Client,
}

pub(crate) fn build_client() -> Result<reqwest::Client, AuthError> {
    client_builder().build().map_err(|e| AuthError::Http { url: String::new(), reason: e.to_string() })
}

fn client_builder() -> reqwest::ClientBuilder {
    // reqwest is built without a bundled crypto provider; ring is the one the crate ships with.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30))
}

/// Resolves host names with the system resolver and refuses a name when any of its addresses is
/// special-purpose ([`ip_is_private`]): the literal-host check in [`UrlPolicy`] cannot see where a name
/// points, and a name with one public and one private address is as dangerous as a private one.
#[derive(Clone, Copy, Debug)]
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = public_addresses(&host, addrs)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses `host` resolved to, or an error when one of them is special-purpose or there are none.
fn public_addresses(host: &str, addrs: Vec<std::net::SocketAddr>) -> std::io::Result<Vec<std::net::SocketAddr>> {
    if addrs.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} has no address")));
    }
    if let Some(bad) = addrs.iter().find(|a| ip_is_private(a.ip())) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{host} resolves to the special-purpose address {} (SSRF guard)", bad.ip()),
        ));
    }
    Ok(addrs)
}

impl OAuthHttp {
    /// A client with no redirect following and a 30 s timeout. It resolves names without checking where they
    /// point; [`OAuthHttp::for_policy`] does.
    pub fn new() -> Result<Self, AuthError> {
        Ok(OAuthHttp { client: build_client()? })
    }

    /// A client for `policy`: when private hosts are not allowed, every host name is resolved before
    /// connecting and refused if any of its addresses is special-purpose.
    ///
    /// Behind an HTTP proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) the proxy resolves the names, so
    /// there is nothing to check here (and the proxy itself may well have a private address): only literal
    /// hosts are judged, and egress rules belong to the proxy.
    pub fn for_policy(policy: UrlPolicy) -> Result<Self, AuthError> {
        let proxied = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        if policy.allow_private || proxied { Self::new() } else { Self::public_only() }
    }

    /// A client that trusts only the certificate `root_der` and resolves names unchecked. Test builds only:
    /// the authorization server's tests serve client metadata documents over https on loopback with a
    /// certificate made for the test.
    #[cfg(all(test, feature = "authorization-server"))]
    pub(crate) fn trusting_only_for_tests(root_der: &[u8]) -> Result<Self, AuthError> {
        let http = |e: reqwest::Error| AuthError::Http { url: String::new(), reason: e.to_string() };
        let root = reqwest::Certificate::from_der(root_der).map_err(http)?;
        Ok(OAuthHttp { client: client_builder().tls_certs_only([root]).build().map_err(http)? })
    }

    /// A client whose resolver refuses names of special-purpose addresses.
    fn public_only() -> Result<Self, AuthError> {
        let client = client_builder()
            .dns_resolver(std::sync::Arc::new(PublicOnlyResolver))
            .build()
            .map_err(|e| AuthError::Http { url: String::new(), reason: e.to_string() })?;
        Ok(OAuthHttp { client })
    }

    /// GET a JSON document (`MCP-Protocol-Version` is sent when given).
    pub async fn get_json(&self, url: &str, protocol_version: Option<&str>) -> Result<JsonResponse, AuthError> {
        let mut req = self.client.get(url).header("accept", "application/json");
        if let Some(v) = protocol_version {
            req = req.header("mcp-protocol-version", v);
        }
        self.send(url, req).await
    }

    /// POST a form; `basic` is an `Authorization: Basic` header value, `dpop` a DPoP proof.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<String>,
        dpop: Option<String>,
    ) -> Result<JsonResponse, AuthError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        if let Some(b) = basic {
            req = req.header("authorization", b);
        }
        if let Some(proof) = dpop {
            req = req.header("dpop", proof);
        }
        self.send(url, req).await
    }

    /// POST a JSON body.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<JsonResponse, AuthError> {
        let req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string());
        self.send(url, req).await
    }

    /// GET a JSON document of at most `max_bytes` (the authorization server's client metadata documents).
    #[cfg(feature = "authorization-server")]
    pub(crate) async fn get_json_capped(&self, url: &str, max_bytes: usize) -> Result<JsonResponse, AuthError> {
        let req = self.client.get(url).header("accept", "application/json");
        self.send_capped(url, req, max_bytes).await
    }

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Result<JsonResponse, AuthError> {
        self.send_capped(url, req, MAX_BODY).await
    }

    async fn send_capped(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
        max_bytes: usize,
    ) -> Result<JsonResponse, AuthError> {
        let fail = |e: &dyn std::fmt::Display| AuthError::Http { url: redact_url(url), reason: e.to_string() };
        let mut resp = req.send().await.map_err(|e| fail(&e.without_url()))?;
        let status = resp.status().as_u16();
        let dpop_nonce = resp.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(&e.without_url()))? {
            if bytes.len() + chunk.len() > max_bytes {
                return Err(AuthError::InvalidResponse {
                    url: redact_url(url),
                    reason: format!("body larger than {max_bytes} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        };
        Ok(JsonResponse { status, body, dpop_nonce })
    }

    /// GET without following redirects; returns the status and the `Location` header.
    pub async fn get_location(&self, url: &str) -> Result<(u16, Option<String>), AuthError> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| AuthError::Http { url: redact_url(url), reason: e.without_url().to_string() })?;
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok((resp.status().as_u16(), location))
    }
}

impl JsonResponse {
    /// The body of a 2xx response, or an error naming what was wrong.
    pub fn into_document(self, url: &str) -> Result<Map<String, Value>, AuthError> {
        if !(200..300).contains(&self.status) {
            return Err(AuthError::InvalidResponse { url: redact_url(url), reason: format!("HTTP {}", self.status) });
        }
        self.body.ok_or_else(|| AuthError::InvalidResponse { url: redact_url(url), reason: "not a JSON object".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    #[test]
    fn every_resolved_address_is_checked() {
        let sa = |s: &str| -> std::net::SocketAddr { s.parse().unwrap() };
        assert!(public_addresses("h", vec![sa("93.184.216.34:0")]).is_ok());
        assert!(public_addresses("h", vec![sa("[2606:4700::1111]:0")]).is_ok());
        // One special-purpose address among public ones refuses the name (DNS rebinding, split answers).
        assert!(public_addresses("h", vec![sa("93.184.216.34:0"), sa("10.0.0.1:0")]).is_err());
        assert!(public_addresses("h", vec![sa("[64:ff9b::a00:1]:0")]).is_err());
        assert!(public_addresses("h", vec![]).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_loopback_addresses() {
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = PublicOnlyResolver.resolve(name).await.err().expect("localhost is refused");
        assert!(err.to_string().contains("SSRF guard"), "{err}");
    }

    #[tokio::test]
    async fn a_strict_client_does_not_connect_to_a_name_for_loopback() {
        // A listener that would answer: the request must fail before reaching it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = OAuthHttp::public_only().unwrap();
        let err = strict.get_json(&format!("http://localhost:{port}/x"), None).await.unwrap_err();
        assert!(matches!(err, AuthError::Http { .. }), "{err}");
        // Had a connection been made, the request would be waiting for an answer, not failed: the backlog is
        // empty now.
        let listener = listener.into_std().unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "no connection was made");
    }
}
