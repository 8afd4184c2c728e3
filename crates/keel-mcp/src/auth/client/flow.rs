//! The network steps of the authorization flow, each a function of explicit inputs: discovery (PRM, then
//! authorization server metadata, else the 2025-03-26 fallbacks), dynamic registration, the authorization
//! code exchange and refresh. Decisions are delegated to the pure modules; [`super::OAuthClient`] sequences
//! these steps and owns the state.

use base64::Engine as _;
use serde_json::Value;

use super::assertion::{AssertionKey, JWT_BEARER_ASSERTION_TYPE};
use super::discovery::{
    auth_server_metadata_urls, legacy_default_endpoints, legacy_metadata_url, origin, resource_metadata_urls,
};
use super::dpop::Dpop;
use super::error::{AuthError, redact_url};
use super::http::OAuthTransport;
use super::iss::check_iss;
use super::metadata::{AuthServerMetadata, ProtectedResourceMetadata, check_issuer, check_resource};
use super::pkce::{Pkce, constant_time_eq, random_token};
use super::redirect::RedirectStep;
use super::registration::{
    ClientCredentials, ClientMetadata, TokenEndpointAuth, choose_token_auth, registration_auth_method,
};
use super::token::{TokenSet, now_secs};
use super::url_policy::{UrlPolicy, check_secure};

/// What discovery found for the MCP server.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// The RFC 8707 `resource`: PRM `resource` verbatim (the server URL on the 2025-03-26 path).
    pub resource: String,
    /// The authorization server issuer (the key for registrations and tokens).
    pub issuer: String,
    /// Whether `issuer` is a real issuer identifier (false for the default-endpoint fallback).
    pub issuer_known: bool,
    /// Its metadata.
    pub metadata: AuthServerMetadata,
    /// PRM `scopes_supported`.
    pub prm_scopes: Option<Vec<String>>,
    /// The DPoP key to bind tokens with, when the client uses DPoP and this server supports ES256 proofs.
    pub dpop: Option<std::sync::Arc<Dpop>>,
    /// The authorization server is an OpenID provider (its metadata came from
    /// `/.well-known/openid-configuration` or describes ID tokens): it may apply OpenID Connect Core §11 to
    /// `offline_access`.
    pub openid_provider: bool,
}

fn parse_doc<T: serde::de::DeserializeOwned>(url: &str, body: serde_json::Map<String, Value>) -> Result<T, AuthError> {
    serde_json::from_value(Value::Object(body))
        .map_err(|e| AuthError::InvalidResponse { url: redact_url(url), reason: e.to_string() })
}

/// Finds the protected resource metadata and the authorization server metadata for `server_url`.
pub async fn discover(
    http: &dyn OAuthTransport,
    server_url: &str,
    policy: UrlPolicy,
    resource_metadata: Option<&str>,
) -> Result<Discovered, AuthError> {
    let server = check_secure(server_url)?;
    let mut candidates = Vec::new();
    if let Some(rm) = resource_metadata {
        let u = policy.check(rm)?;
        if origin(&u) != origin(&server) {
            return Err(AuthError::CrossOriginMetadata(redact_url(rm)));
        }
        candidates.push(rm.to_owned());
    }
    candidates.extend(resource_metadata_urls(&server, None));
    let mut prm: Option<ProtectedResourceMetadata> = None;
    for candidate in candidates {
        policy.check(&candidate)?;
        let resp = http.get_json(&candidate, None).await?;
        if let (200, Some(body)) = (resp.status, resp.body) {
            tracing::debug!(url = %redact_url(&candidate), "protected resource metadata found");
            prm = Some(parse_doc(&candidate, body)?);
            break;
        }
    }
    let Some(prm) = prm else {
        tracing::debug!("no protected resource metadata; trying the 2025-03-26 fallbacks");
        return legacy_discover(http, &server, server_url, policy).await;
    };
    // A resource that is not this server stops everything before any authorization request.
    check_resource(server_url, &prm.resource)?;
    let issuer = prm.authorization_servers.first().cloned().ok_or(AuthError::NoAuthorizationServer)?;
    let issuer_url = policy.check(&issuer)?;
    let mut found = None;
    for candidate in auth_server_metadata_urls(&issuer_url) {
        policy.check(&candidate)?;
        let resp = http.get_json(&candidate, None).await?;
        if let (200, Some(body)) = (resp.status, resp.body) {
            let metadata: AuthServerMetadata = parse_doc(&candidate, body)?;
            check_issuer(&issuer, &metadata)?;
            tracing::debug!(url = %redact_url(&candidate), issuer = %metadata.issuer, "authorization server metadata found");
            let openid = candidate.contains("/.well-known/openid-configuration") || metadata.describes_id_tokens();
            found = Some((metadata, openid));
            break;
        }
    }
    let (metadata, openid_provider) = found.ok_or_else(|| AuthError::NoAuthServerMetadata(redact_url(&issuer)))?;
    check_endpoints(&metadata, policy)?;
    Ok(Discovered {
        resource: prm.resource,
        issuer,
        issuer_known: true,
        metadata,
        prm_scopes: prm.scopes_supported,
        dpop: None,
        openid_provider,
    })
}

/// 2025-03-26: no PRM; metadata at the MCP origin, else the default endpoints there.
async fn legacy_discover(
    http: &dyn OAuthTransport,
    server: &url::Url,
    server_url: &str,
    policy: UrlPolicy,
) -> Result<Discovered, AuthError> {
    let url = legacy_metadata_url(server);
    policy.check(&url)?;
    let resp = http.get_json(&url, Some("2025-03-26")).await?;
    let (metadata, issuer_known) = match (resp.status, resp.body) {
        (200, Some(body)) => (parse_doc::<AuthServerMetadata>(&url, body)?, true),
        _ => {
            let (authorize, token, register) = legacy_default_endpoints(server);
            let metadata = AuthServerMetadata {
                issuer: origin(server),
                authorization_endpoint: Some(authorize),
                token_endpoint: Some(token),
                registration_endpoint: Some(register),
                // 2025-03-26 made PKCE mandatory; without metadata there is nothing to check.
                code_challenge_methods_supported: Some(vec!["S256".into()]),
                ..Default::default()
            };
            (metadata, false)
        }
    };
    check_endpoints(&metadata, policy)?;
    Ok(Discovered {
        resource: server_url.to_owned(),
        issuer: metadata.issuer.clone(),
        issuer_known,
        openid_provider: metadata.describes_id_tokens(),
        metadata,
        prm_scopes: None,
        dpop: None,
    })
}

fn check_endpoints(m: &AuthServerMetadata, policy: UrlPolicy) -> Result<(), AuthError> {
    for e in [&m.authorization_endpoint, &m.token_endpoint, &m.registration_endpoint].into_iter().flatten() {
        policy.check(e)?;
    }
    Ok(())
}

/// RFC 7591 dynamic client registration, for the `scope` the client will ask for (the Python and TypeScript
/// SDKs send it too: without it a server registers its default scopes, which may lack `offline_access`).
pub async fn register(
    http: &dyn OAuthTransport,
    endpoint: &str,
    metadata: &ClientMetadata,
    redirect_uri: &str,
    scope: Option<&str>,
    as_metadata: &AuthServerMetadata,
) -> Result<ClientCredentials, AuthError> {
    let method = registration_auth_method(as_metadata.token_endpoint_auth_methods_supported.as_deref());
    let mut body = metadata.registration_body(redirect_uri, method);
    if let (Some(scope), Some(fields)) = (scope, body.as_object_mut()) {
        fields.insert("scope".into(), scope.into());
    }
    let resp = http.post_json(endpoint, &body).await?;
    if !(200..300).contains(&resp.status) {
        let error = resp.body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str).unwrap_or("no error code");
        return Err(AuthError::RegistrationRefused(format!("HTTP {}: {error}", resp.status)));
    }
    let doc = resp.into_document(endpoint)?;
    let mut creds = ClientCredentials::from_registration_response(&doc)
        .ok_or_else(|| AuthError::RegistrationRefused("the response has no client_id".into()))?;
    if creds.grant_types.is_empty() {
        creds.grant_types = metadata.grant_types().into_iter().map(str::to_owned).collect();
    }
    if creds.redirect_uris.is_empty() {
        creds.redirect_uris = vec![redirect_uri.to_owned()];
    }
    Ok(creds)
}

/// What the client asks for in one authorization request.
pub struct AuthorizationInputs<'a> {
    /// Discovery result.
    pub discovered: &'a Discovered,
    /// Client credentials for this issuer.
    pub credentials: &'a ClientCredentials,
    /// Scope to request, if any.
    pub scope: Option<String>,
    /// Send `prompt=consent` (OpenID Connect Core §11, for `offline_access`).
    pub prompt_consent: bool,
    /// The URL rules.
    pub policy: UrlPolicy,
}

/// Authorization code + PKCE S256: builds the request, runs the redirect step, checks `state` and `iss`,
/// and redeems the code.
pub async fn authorization_code(
    http: &dyn OAuthTransport,
    redirect: &dyn RedirectStep,
    inputs: AuthorizationInputs<'_>,
) -> Result<TokenSet, AuthError> {
    let d = inputs.discovered;
    if !d.metadata.supports_s256() {
        return Err(AuthError::PkceUnsupported);
    }
    let authorize =
        d.metadata.authorization_endpoint.as_deref().ok_or(AuthError::MissingEndpoint("authorization_endpoint"))?;
    let token = d.metadata.token_endpoint.as_deref().ok_or(AuthError::MissingEndpoint("token_endpoint"))?;
    let pkce = Pkce::new()?;
    let state = random_token()?;
    let redirect_uri = redirect.redirect_uri();
    let mut url = inputs.policy.check(authorize)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &inputs.credentials.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &d.resource);
        if let Some(scope) = &inputs.scope {
            q.append_pair("scope", scope);
        }
        if inputs.prompt_consent {
            q.append_pair("prompt", "consent");
        }
    }
    tracing::debug!(issuer = %d.issuer, scope = ?inputs.scope, "starting authorization");
    let response = redirect.authorize(url.to_string()).await?;
    if !response.state.as_deref().is_some_and(|s| constant_time_eq(s, &state)) {
        return Err(AuthError::CallbackRejected("state is missing or does not match"));
    }
    if d.issuer_known {
        let advertised = d.metadata.authorization_response_iss_parameter_supported == Some(true);
        check_iss(advertised, response.iss.as_deref(), &d.metadata.issuer)?;
    }
    if let Some(error) = response.error {
        return Err(AuthError::AuthorizationDenied(error));
    }
    let code = response.code.ok_or(AuthError::CallbackRejected("no authorization code"))?;
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pkce.verifier.clone()),
        ("resource", d.resource.clone()),
    ];
    token_request(http, token, form, Some(inputs.credentials), None, d, inputs.scope.as_deref(), None).await
}

/// `grant_type=client_credentials` (machine-to-machine, SEP-1046) with `resource` and `scope`; the client
/// authenticates with its secret or, given `key`, a JWT assertion.
pub async fn client_credentials(
    http: &dyn OAuthTransport,
    d: &Discovered,
    credentials: &ClientCredentials,
    key: Option<&AssertionKey>,
    scope: Option<String>,
) -> Result<TokenSet, AuthError> {
    let token = d.metadata.token_endpoint.as_deref().ok_or(AuthError::MissingEndpoint("token_endpoint"))?;
    let mut form = vec![("grant_type", "client_credentials".to_owned()), ("resource", d.resource.clone())];
    if let Some(scope) = &scope {
        form.push(("scope", scope.clone()));
    }
    token_request(http, token, form, Some(credentials), key, d, scope.as_deref(), None).await
}

/// The RFC 7523 JWT-bearer grant (`assertion` from a workload identity or an identity assertion grant) with
/// `resource` and `scope`. Errors are returned as they come: no retry, no other grant.
pub async fn jwt_bearer(
    http: &dyn OAuthTransport,
    d: &Discovered,
    assertion: &str,
    credentials: Option<&ClientCredentials>,
    scope: Option<String>,
) -> Result<TokenSet, AuthError> {
    let token = d.metadata.token_endpoint.as_deref().ok_or(AuthError::MissingEndpoint("token_endpoint"))?;
    let mut form = vec![
        ("grant_type", JWT_BEARER_GRANT.to_owned()),
        ("assertion", assertion.to_owned()),
        ("resource", d.resource.clone()),
    ];
    if let Some(scope) = &scope {
        form.push(("scope", scope.clone()));
    }
    token_request(http, token, form, credentials, None, d, scope.as_deref(), None).await
}

/// RFC 8693 token exchange at the enterprise identity provider: trades the user's ID token for an identity
/// assertion authorization grant (ID-JAG, SEP-990) addressed to the MCP authorization server. Returns the ID-JAG.
pub async fn exchange_for_id_jag(
    http: &dyn OAuthTransport,
    idp: &IdentityProviderGrant,
    d: &Discovered,
    scope: Option<&str>,
) -> Result<String, AuthError> {
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:id-jag"),
        ("audience", d.issuer.as_str()),
        ("resource", d.resource.as_str()),
        ("subject_token", idp.id_token.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        ("client_id", idp.client_id.as_str()),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let resp = http.post_form(&idp.token_endpoint, &form, None, None).await?;
    if !(200..300).contains(&resp.status) {
        let error = resp.body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str).unwrap_or("server_error");
        return Err(AuthError::TokenEndpoint { error: error.to_owned() });
    }
    let doc = resp.into_document(&idp.token_endpoint)?;
    doc.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned).ok_or_else(|| {
        AuthError::InvalidResponse {
            url: redact_url(&idp.token_endpoint),
            reason: "no ID-JAG in the exchange response".into(),
        }
    })
}

/// The enterprise identity provider side of SEP-990: where to exchange which ID token.
#[derive(Clone)]
pub struct IdentityProviderGrant {
    /// The IdP's token endpoint.
    pub token_endpoint: String,
    /// This client's id at the IdP.
    pub client_id: String,
    /// The user's OpenID Connect ID token from single sign-on.
    pub id_token: String,
}

impl std::fmt::Debug for IdentityProviderGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProviderGrant")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("id_token", &"…")
            .finish()
    }
}

/// The RFC 7523 JWT-bearer grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `grant_type=refresh_token`, with `resource`.
pub async fn refresh(
    http: &dyn OAuthTransport,
    d: &Discovered,
    credentials: &ClientCredentials,
    tokens: &TokenSet,
) -> Result<TokenSet, AuthError> {
    let token = d.metadata.token_endpoint.as_deref().ok_or(AuthError::MissingEndpoint("token_endpoint"))?;
    let refresh_token =
        tokens.refresh_token.clone().ok_or(AuthError::TokenEndpoint { error: "invalid_grant".into() })?;
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token),
        ("resource", d.resource.clone()),
    ];
    token_request(http, token, form, Some(credentials), None, d, None, Some(tokens)).await
}

#[allow(clippy::too_many_arguments)]
async fn token_request(
    http: &dyn OAuthTransport,
    endpoint: &str,
    mut form: Vec<(&'static str, String)>,
    credentials: Option<&ClientCredentials>,
    key: Option<&AssertionKey>,
    d: &Discovered,
    requested_scope: Option<&str>,
    previous: Option<&TokenSet>,
) -> Result<TokenSet, AuthError> {
    let mut basic = None;
    if let Some(credentials) = credentials {
        basic = client_authentication(&mut form, credentials, key, d)?;
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut resp = None;
    // One retry: the first proof may be answered with `use_dpop_nonce` and the nonce to use (RFC 9449 §8).
    for _ in 0..2 {
        let proof = match d.dpop.as_deref() {
            Some(dpop) => Some(dpop.proof("POST", endpoint, None, dpop.as_nonce().as_deref())?),
            None => None,
        };
        let r = http.post_form(endpoint, &pairs, basic.clone(), proof).await?;
        let retry = match (d.dpop.as_deref(), r.dpop_nonce.as_deref()) {
            (Some(dpop), Some(nonce)) => {
                let asked =
                    r.body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str) == Some("use_dpop_nonce");
                let fresh = dpop.as_nonce().as_deref() != Some(nonce);
                dpop.set_as_nonce(nonce);
                asked && fresh
            }
            _ => false,
        };
        resp = Some(r);
        if !retry {
            break;
        }
    }
    let resp = resp.expect("at least one attempt");
    if !(200..300).contains(&resp.status) {
        let error = resp.body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str).unwrap_or("server_error");
        return Err(AuthError::TokenEndpoint { error: error.to_owned() });
    }
    let doc = resp.into_document(endpoint)?;
    tracing::debug!(grant = %form[0].1, "token endpoint answered");
    TokenSet::from_response(&doc, now_secs(), requested_scope, previous, &d.issuer, &d.resource)
        .ok_or_else(|| AuthError::InvalidResponse { url: redact_url(endpoint), reason: "no access_token".into() })
}

/// Adds the client's authentication to a token request; returns the `Authorization: Basic` value if that is
/// the method.
fn client_authentication(
    form: &mut Vec<(&'static str, String)>,
    credentials: &ClientCredentials,
    key: Option<&AssertionKey>,
    d: &Discovered,
) -> Result<Option<String>, AuthError> {
    let method = match key {
        Some(_) => TokenEndpointAuth::PrivateKeyJwt,
        None => choose_token_auth(credentials, d.metadata.token_endpoint_auth_methods_supported.as_deref()),
    };
    let secret = credentials.client_secret.clone().unwrap_or_default();
    let mut basic = None;
    match method {
        TokenEndpointAuth::PrivateKeyJwt => {
            let key = key.ok_or(AuthError::InvalidKey)?;
            form.push(("client_assertion_type", JWT_BEARER_ASSERTION_TYPE.to_owned()));
            form.push(("client_assertion", key.client_assertion(&credentials.client_id, &d.issuer)?));
        }
        TokenEndpointAuth::None => form.push(("client_id", credentials.client_id.clone())),
        TokenEndpointAuth::ClientSecretPost => {
            form.push(("client_id", credentials.client_id.clone()));
            form.push(("client_secret", secret));
        }
        TokenEndpointAuth::ClientSecretBasic => {
            // `client_id` in the body as well: RFC 6749 §3.2.1 allows it, strict basic servers accept it (it
            // is not a second authentication method, unlike a `client_secret` there), and some servers that
            // offer basic (the Python SDK's) refuse a token request without it.
            form.push(("client_id", credentials.client_id.clone()));
            // RFC 6749 §2.3.1: both halves are form-encoded before base64.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&credentials.client_id), enc(&secret));
            basic = Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)));
        }
    }
    Ok(basic)
}

#[cfg(test)]
mod tests {
    use super::super::memory_as::{Approve, BASE, Call, MCP, MemoryAs, standard};
    use super::*;
    use serde_json::json;

    async fn discovered(server: &MemoryAs, methods: &[&str]) -> Discovered {
        let mut d = discover(server, MCP, UrlPolicy { allow_private: true }, None).await.unwrap();
        d.metadata.token_endpoint_auth_methods_supported = Some(methods.iter().map(|m| m.to_string()).collect());
        d
    }

    #[tokio::test]
    async fn discovery_registration_and_code_exchange_in_memory() {
        let server = MemoryAs::standard();
        let d = discovered(&server, &["none"]).await;
        assert_eq!((d.issuer.as_str(), d.resource.as_str(), d.openid_provider), (BASE, MCP, false));
        let meta =
            ClientMetadata { client_name: "t".into(), application_type: "native".into(), want_refresh_tokens: true };
        let redirect = "http://127.0.0.1:9/callback";
        let scope = Some("mcp offline_access");
        let creds =
            register(server.as_ref(), &format!("{BASE}/register"), &meta, redirect, scope, &d.metadata).await.unwrap();
        assert_eq!(creds.redirect_uris, ["http://127.0.0.1:9/callback"], "the redirect URI sent is remembered");
        let user = Approve::default();
        let inputs = AuthorizationInputs {
            discovered: &d,
            credentials: &creds,
            scope: Some("mcp offline_access".into()),
            prompt_consent: true,
            policy: UrlPolicy { allow_private: true },
        };
        let tokens = authorization_code(server.as_ref(), &user, inputs).await.unwrap();
        assert!(tokens.access_token.starts_with("tok-") && tokens.issued_at.is_some());
        let url = user.urls.lock().unwrap()[0].clone();
        assert!(url.contains("prompt=consent") && url.contains("code_challenge_method=S256"), "{url}");
        let exchange = server.hits("/token").pop().unwrap();
        assert_eq!(exchange.param("code"), Some("the-code"));
        assert!(exchange.param("code_verifier").is_some_and(|v| v.len() >= 43));
    }

    #[tokio::test]
    async fn client_authentication_per_method_in_memory() {
        let server = MemoryAs::standard();
        let creds = ClientCredentials::confidential("id", "pw");
        // (server methods, basic header, client_id in body, client_secret in body)
        let cases = [
            (&["client_secret_basic", "client_secret_post"][..], false, true, true),
            (&["client_secret_basic"][..], true, true, false),
            (&["client_secret_post"][..], false, true, true),
        ];
        for (methods, basic, id_in_body, secret_in_body) in cases {
            let d = discovered(&server, methods).await;
            client_credentials(server.as_ref(), &d, &creds, None, None).await.unwrap();
            let call = server.hits("/token").pop().unwrap();
            assert_eq!(call.basic.is_some(), basic, "{methods:?}");
            assert_eq!(call.param("client_id") == Some("id"), id_in_body, "{methods:?}");
            assert_eq!(call.param("client_secret") == Some("pw"), secret_in_body, "{methods:?}");
        }
    }

    #[tokio::test]
    async fn metadata_from_openid_configuration_marks_an_openid_provider() {
        let server = MemoryAs::new(|call, n| match call.path() {
            "/.well-known/oauth-authorization-server" => (404, json!(null)),
            "/.well-known/openid-configuration" => {
                standard(&Call { url: format!("{BASE}/.well-known/oauth-authorization-server"), ..call.clone() }, n)
            }
            _ => standard(call, n),
        });
        let d = discover(server.as_ref(), MCP, UrlPolicy { allow_private: true }, None).await.unwrap();
        assert!(d.openid_provider);
    }
}
