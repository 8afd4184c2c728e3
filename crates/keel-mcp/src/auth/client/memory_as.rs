//! An in-memory authorization server and user for tests: an [`OAuthTransport`] that answers from a function
//! and records every call, and a [`RedirectStep`] that approves at once. The flow steps and the whole
//! [`super::OAuthClient`] run against them without a socket.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::error::AuthError;
use super::http::{CallFuture, JsonResponse, OAuthTransport};
use super::redirect::{AuthorizationResponse, RedirectStep};
use crate::engine::BoxFuture;

/// The issuer and origin of the in-memory servers.
pub(crate) const BASE: &str = "https://as.example";
/// The MCP server they protect.
pub(crate) const MCP: &str = "https://as.example/mcp";

/// One request the client made.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub method: &'static str,
    pub url: String,
    /// Form fields, or the JSON body's top-level string fields.
    pub params: Vec<(String, String)>,
    pub basic: Option<String>,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.url.strip_prefix(BASE).unwrap_or(&self.url)
    }
}

type Handler = dyn Fn(&Call, usize) -> (u16, Value) + Send + Sync;

/// The authorization server: `handler` gets each call and how many calls came before it.
pub(crate) struct MemoryAs {
    calls: Mutex<Vec<Call>>,
    handler: Box<Handler>,
}

impl MemoryAs {
    pub fn new(handler: impl Fn(&Call, usize) -> (u16, Value) + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(MemoryAs { calls: Mutex::default(), handler: Box::new(handler) })
    }

    /// A well-behaved server: PRM, metadata, DCR, and numbered tokens living an hour.
    pub fn standard() -> Arc<Self> {
        Self::new(standard)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn hits(&self, path: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.path() == path).collect()
    }

    fn answer(&self, call: Call) -> CallFuture<'_> {
        let (status, body) = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let answer = (self.handler)(&call, calls.len());
            calls.push(call);
            answer
        };
        Box::pin(std::future::ready(Ok(JsonResponse { status, body: body.as_object().cloned(), dpop_nonce: None })))
    }
}

/// The answers of a well-behaved server.
pub(crate) fn standard(call: &Call, n: usize) -> (u16, Value) {
    match (call.method, call.path()) {
        ("GET", "/.well-known/oauth-protected-resource/mcp") => {
            (200, json!({"resource": MCP, "authorization_servers": [BASE], "scopes_supported": ["mcp"]}))
        }
        ("GET", "/.well-known/oauth-authorization-server") => (
            200,
            json!({
                "issuer": BASE,
                "authorization_endpoint": format!("{BASE}/authorize"),
                "token_endpoint": format!("{BASE}/token"),
                "registration_endpoint": format!("{BASE}/register"),
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["mcp", "offline_access"],
            }),
        ),
        ("POST", "/register") => {
            (201, json!({"client_id": format!("client-{n}"), "token_endpoint_auth_method": "none"}))
        }
        ("POST", "/token") => {
            (200, json!({"access_token": format!("tok-{n}"), "refresh_token": format!("ref-{n}"), "expires_in": 3600}))
        }
        _ => (404, Value::Null),
    }
}

impl OAuthTransport for MemoryAs {
    fn get_json<'a>(&'a self, url: &'a str, _protocol_version: Option<&'a str>) -> CallFuture<'a> {
        self.answer(Call { method: "GET", url: url.to_owned(), params: Vec::new(), basic: None })
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        form: &'a [(&'a str, &'a str)],
        basic: Option<String>,
        _dpop: Option<String>,
    ) -> CallFuture<'a> {
        let params = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.answer(Call { method: "POST", url: url.to_owned(), params, basic })
    }

    fn post_json<'a>(&'a self, url: &'a str, body: &'a Value) -> CallFuture<'a> {
        let params = body
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        self.answer(Call { method: "POST", url: url.to_owned(), params, basic: None })
    }
}

/// A user who approves every authorization request at once; records the authorization URLs.
#[derive(Clone, Default)]
pub(crate) struct Approve {
    pub urls: Arc<Mutex<Vec<String>>>,
}

impl RedirectStep for Approve {
    fn redirect_uri(&self) -> String {
        "http://127.0.0.1:9/callback".into()
    }

    fn authorize(&self, authorization_url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>> {
        let state = url::Url::parse(&authorization_url)
            .ok()
            .and_then(|u| u.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()));
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).push(authorization_url);
        let response =
            AuthorizationResponse { code: Some("the-code".into()), state, iss: Some(BASE.into()), error: None };
        Box::pin(std::future::ready(Ok(response)))
    }
}
