//! Client registration: the client's own metadata (the DCR body and the CIMD document are built from the
//! same value), the credentials an authorization server issued, and the choice of token endpoint
//! authentication. Credentials carry the issuer they belong to (SEP-2352).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The client's metadata (RFC 7591 §2): sent as the DCR body, or published as a CIMD document.
#[derive(Clone, Debug)]
pub struct ClientMetadata {
    /// Human-readable name.
    pub client_name: String,
    /// `native` for desktop, CLI and localhost redirects; `web` for remote browser apps.
    pub application_type: String,
    /// Whether to ask for refresh tokens (lists `refresh_token` in `grant_types`).
    pub want_refresh_tokens: bool,
}

impl ClientMetadata {
    /// `grant_types` for this client.
    pub fn grant_types(&self) -> Vec<&'static str> {
        if self.want_refresh_tokens { vec!["authorization_code", "refresh_token"] } else { vec!["authorization_code"] }
    }

    /// The RFC 7591 registration request body.
    pub fn registration_body(&self, redirect_uri: &str, auth_method: &str) -> Value {
        json!({
            "client_name": self.client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": self.grant_types(),
            "response_types": ["code"],
            "token_endpoint_auth_method": auth_method,
            "application_type": self.application_type,
        })
    }

    /// The client ID metadata document to publish at `client_id` (its own URL).
    pub fn cimd_document(&self, client_id: &str, redirect_uris: &[String]) -> Value {
        json!({
            "client_id": client_id,
            "client_name": self.client_name,
            "redirect_uris": redirect_uris,
            "grant_types": self.grant_types(),
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": self.application_type,
        })
    }
}

/// Credentials for one authorization server.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The `client_id`.
    pub client_id: String,
    /// The secret, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The registered token endpoint authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// The registered grant types, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    /// The redirect URIs registered for a dynamically registered client (empty when unknown). Many
    /// authorization servers match redirect URIs exactly, so a new loopback port needs a new registration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("token_endpoint_auth_method", &self.token_endpoint_auth_method)
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

impl ClientCredentials {
    /// Public-client credentials (no secret).
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            client_secret: None,
            token_endpoint_auth_method: Some("none".into()),
            grant_types: Vec::new(),
            redirect_uris: Vec::new(),
        }
    }

    /// Confidential-client credentials; the method is chosen from the server's metadata.
    pub fn confidential(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            client_secret: Some(secret.into()).filter(|s: &String| !s.is_empty()),
            token_endpoint_auth_method: None,
            grant_types: Vec::new(),
            redirect_uris: Vec::new(),
        }
    }

    /// Reads an RFC 7591 registration response.
    pub fn from_registration_response(doc: &serde_json::Map<String, Value>) -> Option<Self> {
        let s = |k: &str| doc.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
        let list = |k: &str| -> Vec<String> {
            doc.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Some(ClientCredentials {
            client_id: s("client_id")?,
            client_secret: s("client_secret"),
            token_endpoint_auth_method: s("token_endpoint_auth_method"),
            grant_types: list("grant_types"),
            redirect_uris: list("redirect_uris"),
        })
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    /// `none`: `client_id` in the body, no secret.
    None,
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    ClientSecretBasic,
    /// `client_secret_post`: id and secret in the body.
    ClientSecretPost,
    /// `private_key_jwt`: a signed JWT assertion, no `client_id`.
    PrivateKeyJwt,
}

/// The method: what registration said; else none without a secret; else what the server supports (post
/// before basic, as for registration); else basic, the OAuth default (RFC 8414 §2).
pub fn choose_token_auth(credentials: &ClientCredentials, supported: Option<&[String]>) -> TokenEndpointAuth {
    match credentials.token_endpoint_auth_method.as_deref() {
        Some("none") => return TokenEndpointAuth::None,
        Some("private_key_jwt") => return TokenEndpointAuth::PrivateKeyJwt,
        Some("client_secret_basic") if credentials.client_secret.is_some() => {
            return TokenEndpointAuth::ClientSecretBasic;
        }
        Some("client_secret_post") if credentials.client_secret.is_some() => {
            return TokenEndpointAuth::ClientSecretPost;
        }
        _ => {}
    }
    if credentials.client_secret.is_none() {
        return TokenEndpointAuth::None;
    }
    let has = |m: &str| supported.is_some_and(|s| s.iter().any(|x| x == m));
    if has("client_secret_post") { TokenEndpointAuth::ClientSecretPost } else { TokenEndpointAuth::ClientSecretBasic }
}

/// The method to ask for in a DCR request: `none` (a public native client) when the server supports it,
/// else `client_secret_post`, else `client_secret_basic`, else `none`.
///
/// Post before basic, deliberately: with post the `client_id` travels in the body, where every server
/// looks for it. Some servers that offer both (the Python SDK's, among others) also want `client_id` in the
/// body of a basic request, which RFC 6749 §2.3.1 does not require; the post form is understood by all of
/// them. (When basic is the only choice, the token request carries `client_id` in the body as well —
/// RFC 6749 §3.2.1 allows it, and it is not a second authentication method.)
pub fn registration_auth_method(supported: Option<&[String]>) -> &'static str {
    let has = |m: &str| supported.is_some_and(|s| s.iter().any(|x| x == m));
    if supported.is_none() || has("none") {
        "none"
    } else if has("client_secret_post") {
        "client_secret_post"
    } else if has("client_secret_basic") {
        "client_secret_basic"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn token_auth_table() {
        use TokenEndpointAuth as T;
        let with = |m: Option<&str>, secret: bool| ClientCredentials {
            client_id: "c".into(),
            client_secret: secret.then(|| "s".into()),
            token_endpoint_auth_method: m.map(Into::into),
            grant_types: vec![],
            redirect_uris: vec![],
        };
        let basic = v(&["client_secret_basic"]);
        let post = v(&["client_secret_post"]);
        let none = v(&["none"]);
        let both = v(&["client_secret_basic", "client_secret_post"]);
        let cases: Vec<(ClientCredentials, Option<&[String]>, TokenEndpointAuth)> = vec![
            (with(Some("none"), false), Some(&none), T::None),
            (with(Some("client_secret_basic"), true), Some(&basic), T::ClientSecretBasic),
            (with(Some("client_secret_post"), true), Some(&post), T::ClientSecretPost),
            (with(Some("client_secret_post"), false), Some(&post), T::None),
            (with(None, false), Some(&basic), T::None),
            (with(None, true), Some(&basic), T::ClientSecretBasic),
            (with(None, true), Some(&post), T::ClientSecretPost),
            (with(None, true), None, T::ClientSecretBasic),
            (with(None, true), Some(&both), T::ClientSecretPost),
            (with(Some("client_secret_basic"), true), Some(&both), T::ClientSecretBasic),
        ];
        for (c, s, expected) in cases {
            assert_eq!(choose_token_auth(&c, s), expected, "{c:?} {s:?}");
        }
        assert_eq!(registration_auth_method(Some(&post)), "client_secret_post");
        assert_eq!(registration_auth_method(Some(&basic)), "client_secret_basic");
        assert_eq!(registration_auth_method(Some(&both)), "client_secret_post", "post is understood everywhere");
        assert_eq!(registration_auth_method(Some(&v(&["client_secret_basic", "none"]))), "none");
        assert_eq!(registration_auth_method(None), "none");
    }

    #[test]
    fn metadata_documents_list_refresh_grant() {
        let m =
            ClientMetadata { client_name: "Keel".into(), application_type: "native".into(), want_refresh_tokens: true };
        let cimd = m.cimd_document("https://app.example/cimd.json", &v(&["http://127.0.0.1:1/callback"]));
        assert_eq!(cimd["client_id"], "https://app.example/cimd.json");
        assert_eq!(cimd["grant_types"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(cimd["client_name"], "Keel");
        let dcr = m.registration_body("http://127.0.0.1:1/callback", "none");
        assert_eq!(dcr["application_type"], "native");
        assert_eq!(dcr["grant_types"], json!(["authorization_code", "refresh_token"]));
        let no_refresh = ClientMetadata { want_refresh_tokens: false, ..m };
        assert_eq!(no_refresh.registration_body("x", "none")["grant_types"], json!(["authorization_code"]));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = ClientCredentials::confidential("id", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
