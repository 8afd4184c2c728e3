//! The OAuth client's HTTP edge: its own `reqwest` client that follows no redirects (so the URL checks cover
//! every hop), caps every body at 4 MiB, and accepts only JSON objects as documents.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{AuthError, redact_url};

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

/// HTTP for discovery, registration and token requests.
#[derive(Clone, Debug)]
pub struct OAuthHttp {
    client: reqwest::Client,
}

pub(crate) fn build_client() -> Result<reqwest::Client, AuthError> {
    // reqwest is built without a bundled crypto provider; ring is the one the crate ships with.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AuthError::Http { url: String::new(), reason: e.to_string() })
}

impl OAuthHttp {
    /// A client with no redirect following and a 30 s timeout.
    pub fn new() -> Result<Self, AuthError> {
        Ok(OAuthHttp { client: build_client()? })
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

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Result<JsonResponse, AuthError> {
        let fail = |e: &dyn std::fmt::Display| AuthError::Http { url: redact_url(url), reason: e.to_string() };
        let mut resp = req.send().await.map_err(|e| fail(&e.without_url()))?;
        let status = resp.status().as_u16();
        let dpop_nonce = resp.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(&e.without_url()))? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(AuthError::InvalidResponse {
                    url: redact_url(url),
                    reason: "body larger than 4 MiB".into(),
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
