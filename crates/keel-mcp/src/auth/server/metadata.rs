//! The authorization server metadata document (RFC 8414), built from the configuration.

use serde_json::{Value, json};

use super::{ClientAuthMethod, Inner};

/// The metadata document. `issuer` is the configured string, unchanged.
pub(crate) fn document(inner: &Inner) -> Value {
    let methods: Vec<&str> = inner.auth_methods.iter().map(|m| m.as_str()).collect();
    let mut doc = json!({
        "issuer": inner.issuer,
        "authorization_endpoint": inner.endpoint("authorize"),
        "token_endpoint": inner.endpoint("token"),
        "revocation_endpoint": inner.endpoint("revoke"),
        "jwks_uri": inner.endpoint("jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "scopes_supported": inner.scopes,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": inner.cimd.is_some(),
    });
    if inner.auth_methods.contains(&ClientAuthMethod::PrivateKeyJwt) {
        let algs = json!(super::client_auth::ASSERTION_ALGORITHMS);
        doc["token_endpoint_auth_signing_alg_values_supported"] = algs.clone();
        doc["revocation_endpoint_auth_signing_alg_values_supported"] = algs;
    }
    if inner.registration {
        doc["registration_endpoint"] = json!(inner.endpoint("register"));
    }
    doc
}
