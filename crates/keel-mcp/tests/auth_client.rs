//! The OAuth client's flows against an in-process mock authorization server and resource server on
//! `127.0.0.1:0`: discovery, registration, PKCE, `resource`, refresh (proactive and on 401), `invalid_grant`,
//! and the checks that must stop a flow before anything is sent to the authorization endpoint.
#![cfg(feature = "auth")]

use std::sync::{Arc, Mutex};

use keel_mcp::auth::client::{
    AuthError, ConsentPrompt, FileTokenStore, HeadlessRedirect, LoopbackRedirect, MemoryTokenStore, OAuthClient,
    RedirectStep, TokenStore,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: String,
    authorization: Option<String>,
    dpop: Option<String>,
}

struct Config {
    prm_resource: Option<String>,
    metadata_issuer: Option<String>,
    s256: bool,
    expires_in: u64,
    refresh_fails: bool,
    wrong_state: bool,
    huge_metadata: bool,
    redirect_prm: bool,
    array_metadata: bool,
    dpop: bool,
    /// `token_endpoint_auth_methods_supported`; with it, registration issues a secret.
    auth_methods: Option<Vec<&'static str>>,
    /// How the token endpoint checks client authentication.
    token_auth: TokenAuth,
    /// `/authorize` refuses redirect URIs that were not registered (exact match).
    exact_redirect: bool,
    /// Token responses carry no refresh token.
    no_refresh_token: bool,
    /// Metadata only at `/.well-known/openid-configuration`.
    openid: bool,
    /// `POST /mcp` answers 401 with a challenge.
    mcp_401: bool,
    /// `/authorize` refuses (`invalid_scope`) scopes the client did not register; a registration that
    /// names none gets `mcp:basic`.
    registered_scopes_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenAuth {
    /// Anything goes.
    Lenient,
    /// Basic or post, and `client_id` must be in the body (the Python SDK's server).
    ClientIdInBody,
    /// Only `Authorization: Basic`; a `client_secret` in the body is refused.
    StrictBasic,
    /// Every client is refused (`invalid_client`).
    RefuseAll,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prm_resource: None,
            metadata_issuer: None,
            s256: true,
            expires_in: 3600,
            refresh_fails: false,
            wrong_state: false,
            huge_metadata: false,
            redirect_prm: false,
            array_metadata: false,
            dpop: false,
            auth_methods: None,
            token_auth: TokenAuth::Lenient,
            exact_redirect: false,
            no_refresh_token: false,
            openid: false,
            mcp_401: false,
            registered_scopes_only: false,
        }
    }
}

struct Mock {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn hits(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

fn form(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

async fn mock(config: Config) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config = Arc::new(config);
    let counter = Arc::new(Mutex::new(0u32));
    let registered: Arc<Mutex<Vec<String>>> = Arc::default();
    let registered_scope: Arc<Mutex<String>> = Arc::default();
    let (b, s) = (base.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (base, seen, config, counter) = (b.clone(), s.clone(), config.clone(), counter.clone());
            let (registered, registered_scope) = (registered.clone(), registered_scope.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_owned();
                let target = first.next().unwrap_or("").to_owned();
                let (path, query) = target
                    .split_once('?')
                    .map(|(p, q)| (p.to_owned(), q.to_owned()))
                    .unwrap_or((target, String::new()));
                let authorization = header("authorization");
                seen.lock().unwrap().push(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    body: body.clone(),
                    authorization: authorization.clone(),
                    dpop: header("dpop"),
                });
                let issuer = base.clone();
                let (status, headers, out): (u16, Vec<(String, String)>, String) = match (
                    method.as_str(),
                    path.as_str(),
                ) {
                    ("GET", "/.well-known/oauth-protected-resource/mcp") if config.redirect_prm => {
                        (302, vec![("location".into(), format!("{base}/real-prm"))], String::new())
                    }
                    ("GET", "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration")
                        if config.array_metadata =>
                    {
                        (200, vec![], json!([{"issuer": issuer}]).to_string())
                    }
                    ("GET", "/.well-known/oauth-protected-resource/mcp") => {
                        let resource = config.prm_resource.clone().unwrap_or(format!("{base}/mcp"));
                        (200, vec![], json!({"resource": resource, "authorization_servers": [issuer], "scopes_supported": ["mcp:basic"]}).to_string())
                    }
                    ("GET", "/.well-known/oauth-authorization-server") if config.openid => {
                        (404, vec![], String::new())
                    }
                    ("GET", "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration") => {
                        let mut m = json!({
                            "issuer": config.metadata_issuer.clone().unwrap_or(issuer.clone()),
                            "authorization_endpoint": format!("{base}/authorize"),
                            "token_endpoint": format!("{base}/token"),
                            "registration_endpoint": format!("{base}/register"),
                            "response_types_supported": ["code"],
                            "authorization_response_iss_parameter_supported": true,
                            "dpop_signing_alg_values_supported": if config.dpop { json!(["ES256"]) } else { json!(null) },
                            "scopes_supported": ["mcp:basic", "offline_access"],
                        });
                        if config.s256 {
                            m["code_challenge_methods_supported"] = json!(["S256"]);
                        }
                        if let Some(methods) = &config.auth_methods {
                            m["token_endpoint_auth_methods_supported"] = json!(methods);
                        }
                        if config.huge_metadata {
                            m["padding"] = json!("x".repeat(5 * 1024 * 1024));
                        }
                        (200, vec![], m.to_string())
                    }
                    ("POST", "/register") => {
                        let req: Value = serde_json::from_str(&body).unwrap_or_default();
                        let uris: Vec<String> = req["redirect_uris"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        registered.lock().unwrap().extend(uris.iter().cloned());
                        *registered_scope.lock().unwrap() = req["scope"].as_str().unwrap_or("mcp:basic").to_owned();
                        let mut out = json!({"client_id": "dcr-client", "token_endpoint_auth_method": "none"});
                        if config.auth_methods.is_some() {
                            out["client_secret"] = json!("dcr-secret");
                            out["token_endpoint_auth_method"] = req["token_endpoint_auth_method"].clone();
                            out["redirect_uris"] = json!(uris);
                        }
                        (201, vec![], out.to_string())
                    }
                    ("POST", "/mcp") if config.mcp_401 => (
                        401,
                        vec![(
                            "www-authenticate".into(),
                            format!(r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#),
                        )],
                        String::new(),
                    ),
                    ("GET", "/authorize")
                        if config.exact_redirect
                            && !registered
                                .lock()
                                .unwrap()
                                .iter()
                                .any(|r| Some(r.as_str()) == get(&form(&query), "redirect_uri")) =>
                    {
                        (400, vec![], json!({"error": "invalid_request", "error_description": "Redirect URI not registered for client"}).to_string())
                    }
                    ("GET", "/authorize")
                        if config.registered_scopes_only
                            && !get(&form(&query), "scope").unwrap_or("").split(' ').all(|asked| {
                                registered_scope.lock().unwrap().split(' ').any(|granted| granted == asked)
                            }) =>
                    {
                        (400, vec![], json!({"error": "invalid_scope"}).to_string())
                    }
                    ("GET", "/authorize") => {
                        let q = form(&query);
                        let state = if config.wrong_state {
                            "forged".to_owned()
                        } else {
                            get(&q, "state").unwrap_or("").to_owned()
                        };
                        let loc = url::Url::parse_with_params(
                            get(&q, "redirect_uri").unwrap_or(""),
                            &[("code", "the-code"), ("state", state.as_str()), ("iss", issuer.as_str())],
                        )
                        .unwrap();
                        (302, vec![("location".into(), loc.to_string())], String::new())
                    }
                    ("POST", "/token") => {
                        let f = form(&body);
                        let proof_nonce = header("dpop").and_then(|p| {
                            let claims = p.split('.').nth(1)?.to_owned();
                            let claims: Value = serde_json::from_slice(
                                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                                    .ok()?,
                            )
                            .ok()?;
                            claims["nonce"].as_str().map(str::to_owned)
                        });
                        let basic = authorization.as_deref().is_some_and(|a| a.starts_with("Basic "));
                        let client_refused = match config.token_auth {
                            TokenAuth::Lenient => false,
                            TokenAuth::ClientIdInBody => get(&f, "client_id").is_none(),
                            TokenAuth::StrictBasic => !basic || get(&f, "client_secret").is_some(),
                            TokenAuth::RefuseAll => true,
                        };
                        if client_refused {
                            (401, vec![], json!({"error": "invalid_client", "error_description": "Missing client_id"}).to_string())
                        } else if get(&f, "grant_type") == Some("refresh_token") && config.refresh_fails {
                            (400, vec![], json!({"error": "invalid_grant"}).to_string())
                        } else if config.dpop && proof_nonce.as_deref() != Some("as-nonce") {
                            (
                                400,
                                vec![("dpop-nonce".into(), "as-nonce".into())],
                                json!({"error": "use_dpop_nonce"}).to_string(),
                            )
                        } else {
                            let mut n = counter.lock().unwrap();
                            *n += 1;
                            (
                                200,
                                vec![],
                                {
                                    let mut t = json!({"access_token": format!("tok-{n}"), "token_type": if config.dpop { "DPoP" } else { "Bearer" }, "expires_in": config.expires_in, "refresh_token": format!("ref-{n}")});
                                    if config.no_refresh_token {
                                        t.as_object_mut().unwrap().remove("refresh_token");
                                    }
                                    t.to_string()
                                },
                            )
                        }
                    }
                    _ => (404, vec![], String::new()),
                };
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
                    out.len()
                );
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Mock { base, seen }
}

fn challenge(m: &Mock) -> Vec<String> {
    vec![format!(
        r#"Bearer error="invalid_token", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
        m.base
    )]
}

fn client(m: &Mock) -> OAuthClient {
    OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap()).build().unwrap()
}

fn client_with_store(m: &Mock, store: &MemoryTokenStore) -> OAuthClient {
    OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
        .store(store.clone())
        .build()
        .unwrap()
}

/// Moves the stored tokens `secs` into the past, as if they had been issued that long ago.
async fn age_tokens(store: &MemoryTokenStore, key: &str, secs: u64) {
    let mut stored = store.load(key).await.unwrap().unwrap();
    let t = stored.tokens.as_mut().unwrap();
    t.issued_at = t.issued_at.map(|v| v - secs);
    t.expires_at = t.expires_at.map(|v| v - secs);
    store.save(key, stored).await.unwrap();
}

/// One HTTP/1.1 GET on loopback: the status and the `Location` header.
async fn http_get(url: &str) -> (u16, Option<String>) {
    let u = url::Url::parse(url).unwrap();
    let mut s = tokio::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).await.unwrap();
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    s.write_all(format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let location = out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location").then(|| v.trim().to_owned())
    });
    (status, location)
}

/// What a browser does with the authorization URL here: follows the server's redirect to the callback.
fn browse(url: &str) {
    let url = url.to_owned();
    tokio::spawn(async move {
        if let (302, Some(callback)) = http_get(&url).await {
            http_get(&callback).await;
        }
    });
}

/// A loopback redirect whose "browser" is this test: it follows the authorization server's redirect to the
/// listener. A refused authorization request leaves the listener waiting until its (short) timeout.
async fn test_browser_redirect() -> LoopbackRedirect {
    LoopbackRedirect::bind(0).await.unwrap().timeout(std::time::Duration::from_secs(5)).on_authorization_url(browse)
}

#[tokio::test]
async fn registration_names_the_scopes_the_client_will_ask_for() {
    // This server's default scopes for a registered client lack offline_access, which Keel asks for.
    let m = mock(Config { registered_scopes_only: true, ..Config::default() }).await;
    let c = client(&m);
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-1"));
    let reg: Value = serde_json::from_str(&m.hits("/register")[0].body).unwrap();
    assert_eq!(reg["scope"], "mcp:basic offline_access");
    let q = form(&m.hits("/authorize")[0].query);
    assert_eq!(get(&q, "scope"), Some("mcp:basic offline_access"), "the same scopes as registered");
}

#[tokio::test]
async fn full_flow_sends_pkce_resource_and_registers_natively() {
    let m = mock(Config::default()).await;
    let c = client(&m);
    assert_eq!(c.access_header(&m.mcp()).await.unwrap(), None);
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-1"));

    let reg: Value = serde_json::from_str(&m.hits("/register")[0].body).unwrap();
    assert_eq!(reg["application_type"], "native");
    assert_eq!(reg["grant_types"], json!(["authorization_code", "refresh_token"]));

    let q = form(&m.hits("/authorize")[0].query);
    assert_eq!(get(&q, "resource"), Some(m.mcp().as_str()));
    assert_eq!(get(&q, "code_challenge_method"), Some("S256"));
    assert_eq!(get(&q, "client_id"), Some("dcr-client"));
    assert_eq!(get(&q, "state").map(str::len), Some(43));
    // Scope from PRM scopes_supported, plus offline_access because the AS lists it and we registered the grant.
    assert_eq!(get(&q, "scope"), Some("mcp:basic offline_access"));

    let t = form(&m.hits("/token")[0].body);
    assert_eq!(get(&t, "grant_type"), Some("authorization_code"));
    assert_eq!(get(&t, "resource"), Some(m.mcp().as_str()));
    assert_eq!(get(&t, "code"), Some("the-code"));
    let verifier = get(&t, "code_verifier").unwrap();
    assert_eq!(keel_mcp::auth::client::pkce::s256(verifier), get(&q, "code_challenge").unwrap());
    // The root PRM was never needed.
    assert!(m.hits("/.well-known/oauth-protected-resource").is_empty());
}

#[tokio::test]
async fn bearer_token_only_for_its_resource() {
    let m = mock(Config::default()).await;
    let c = client(&m);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    assert!(c.access_header(&m.mcp()).await.unwrap().is_some());
    assert_eq!(c.access_header(&format!("{}/other", m.base)).await.unwrap(), None);
    assert_eq!(c.access_header("https://elsewhere.example/mcp").await.unwrap(), None);
    assert!(!c.handle_challenge("https://elsewhere.example/mcp", 401, &[]).await.unwrap());
}

#[tokio::test]
async fn resource_mismatch_stops_before_authorization() {
    let m = mock(Config { prm_resource: Some("https://evil.example.com/mcp".into()), ..Default::default() }).await;
    let err = client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(err, AuthError::ResourceMismatch { .. }), "{err}");
    assert!(m.hits("/authorize").is_empty() && m.hits("/register").is_empty() && m.hits("/token").is_empty());
}

#[tokio::test]
async fn issuer_mismatch_stops_before_registration() {
    let m = mock(Config { metadata_issuer: Some("https://attacker.example.com".into()), ..Default::default() }).await;
    let err = client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(err, AuthError::IssuerMismatch { .. }), "{err}");
    assert!(m.hits("/register").is_empty() && m.hits("/authorize").is_empty());
}

#[tokio::test]
async fn no_s256_no_authorization() {
    let m = mock(Config { s256: false, ..Default::default() }).await;
    let err = client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(err, AuthError::PkceUnsupported), "{err}");
    assert!(m.hits("/authorize").is_empty());
}

#[tokio::test]
async fn forged_state_is_rejected_before_token_request() {
    let m = mock(Config { wrong_state: true, ..Default::default() }).await;
    let err = client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(err, AuthError::CallbackRejected(_)), "{err}");
    assert!(m.hits("/token").is_empty());
}

#[tokio::test]
async fn oversized_metadata_is_refused() {
    let m = mock(Config { huge_metadata: true, ..Default::default() }).await;
    let err = client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(err, AuthError::InvalidResponse { .. }), "{err}");
}

#[tokio::test]
async fn proactive_refresh_before_expiry() {
    // An hour-long token with 30 s left is inside the refresh margin: the next request refreshes first.
    let m = mock(Config::default()).await;
    let store = MemoryTokenStore::new();
    let c = client_with_store(&m, &store);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    age_tokens(&store, &m.mcp(), 3570).await;
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-2"));
    let refresh = form(&m.hits("/token")[1].body);
    assert_eq!(get(&refresh, "grant_type"), Some("refresh_token"));
    assert_eq!(get(&refresh, "refresh_token"), Some("ref-1"));
    assert_eq!(get(&refresh, "resource"), Some(m.mcp().as_str()));
    assert_eq!(m.hits("/authorize").len(), 1);
}

#[tokio::test]
async fn refresh_on_401_without_new_authorization() {
    let m = mock(Config::default()).await;
    let c = client(&m);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-2"));
    assert_eq!(m.hits("/authorize").len(), 1);
    assert_eq!(m.hits("/register").len(), 1, "registration is reused for the same issuer");
}

#[tokio::test]
async fn invalid_grant_clears_tokens_and_reauthorizes() {
    let m = mock(Config { refresh_fails: true, ..Default::default() }).await;
    let store = MemoryTokenStore::new();
    let c = client_with_store(&m, &store);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    age_tokens(&store, &m.mcp(), 3570).await;
    // Proactive refresh fails with invalid_grant: the tokens are gone, the request goes out without them.
    assert_eq!(c.access_header(&m.mcp()).await.unwrap(), None);
    // The resulting 401 runs a new authorization.
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    assert_eq!(m.hits("/authorize").len(), 2);
}

#[tokio::test]
async fn step_up_requests_the_union_and_gives_up_when_nothing_changes() {
    let m = mock(Config::default()).await;
    let c = client(&m);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    let demand = vec![format!(
        r#"Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
        m.base
    )];
    assert!(c.handle_challenge(&m.mcp(), 403, &demand).await.unwrap());
    let q = form(&m.hits("/authorize")[1].query);
    assert_eq!(get(&q, "scope"), Some("mcp:basic offline_access mcp:write"));
    // The server still refuses although we hold mcp:write: another authorization cannot help.
    assert!(!c.handle_challenge(&m.mcp(), 403, &demand).await.unwrap());
    assert_eq!(m.hits("/authorize").len(), 2);
    // A 403 that is not about scope is final.
    assert!(!c.handle_challenge(&m.mcp(), 403, &["Bearer error=\"invalid_token\"".to_owned()]).await.unwrap());
}

#[tokio::test]
async fn file_store_survives_the_process() {
    let m = mock(Config::default()).await;
    let dir = std::env::temp_dir().join(format!("keel-auth-it-{}", std::process::id()));
    let build = || {
        OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
            .store(FileTokenStore::new(&dir))
            .build()
            .unwrap()
    };
    build().handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    assert_eq!(build().access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-1"));
    let text: String =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect();
    assert!(text.contains("dcr-client"), "registration stored per issuer");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn secrets_never_in_debug_or_errors() {
    let m = mock(Config::default()).await;
    let c = client(&m);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    assert!(!format!("{c:?}").contains("tok-1"));
    let seen = m.seen();
    assert!(seen.iter().filter(|s| s.path == "/mcp").all(|s| s.authorization.is_none()));
    assert!(seen.iter().all(|s| s.method == "GET" || s.method == "POST"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let m = mock(Config { redirect_prm: true, ..Default::default() }).await;
    // The path-aware PRM answers 302: not followed, so the client moves on (root PRM, then the 2025-03-26 path).
    let _ = client(&m).handle_challenge(&m.mcp(), 401, &[]).await;
    assert!(m.hits("/real-prm").is_empty());
    assert_eq!(m.hits("/.well-known/oauth-protected-resource").len(), 1);
}

#[tokio::test]
async fn metadata_must_be_a_json_object() {
    let m = mock(Config { array_metadata: true, ..Default::default() }).await;
    let err = client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(err, AuthError::NoAuthServerMetadata(_)), "{err}");
    assert!(m.hits("/register").is_empty());
}

#[tokio::test]
async fn resource_metadata_on_another_origin_is_refused() {
    let m = mock(Config::default()).await;
    let other =
        vec![r#"Bearer resource_metadata="http://localhost:9/.well-known/oauth-protected-resource/mcp""#.to_owned()];
    let err = client(&m).handle_challenge(&m.mcp(), 401, &other).await.unwrap_err();
    assert!(matches!(err, AuthError::CrossOriginMetadata(_)), "{err}");
    assert!(m.seen().is_empty(), "nothing fetched");
}

#[tokio::test]
async fn cimd_document_lists_the_refresh_grant() {
    let m = mock(Config::default()).await;
    let c = OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
        .client_metadata_url("https://app.example.com/oauth/client.json")
        .build()
        .unwrap();
    let doc = c.client_metadata_document().unwrap();
    assert_eq!(doc["client_id"], "https://app.example.com/oauth/client.json");
    assert_eq!(doc["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(doc["redirect_uris"], json!(["http://localhost:3000/callback"]));
    assert_eq!(doc["token_endpoint_auth_method"], "none");
    // A CIMD URL must be https with a path.
    let bad = OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
        .client_metadata_url("http://app.example.com/client.json")
        .build();
    assert!(bad.is_err());
}

#[tokio::test]
async fn insecure_urls_are_refused_at_build_time() {
    let redirect = || HeadlessRedirect::new("http://localhost:3000/callback").unwrap();
    assert!(OAuthClient::builder("http://mcp.example.com/mcp", redirect()).build().is_err());
    assert!(OAuthClient::builder("https://mcp.example.com/mcp", redirect()).build().is_ok());
    let open_redirect = HeadlessRedirect::new("http://attacker.example/cb").unwrap();
    assert!(OAuthClient::builder("https://mcp.example.com/mcp", open_redirect).build().is_err());
}

#[tokio::test]
async fn client_credentials_grant_uses_basic_auth_and_no_user() {
    use keel_mcp::auth::client::ClientCredentials;
    let m = mock(Config::default()).await;
    let c = OAuthClient::client_credentials(m.mcp(), ClientCredentials::confidential("svc", "s3cret")).build().unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-1"));
    assert!(m.hits("/authorize").is_empty() && m.hits("/register").is_empty());
    let token = &m.hits("/token")[0];
    let f = form(&token.body);
    assert_eq!(get(&f, "grant_type"), Some("client_credentials"));
    assert_eq!(get(&f, "resource"), Some(m.mcp().as_str()));
    assert_eq!(get(&f, "scope"), Some("mcp:basic"), "no offline_access for client credentials");
    assert_eq!(get(&f, "client_secret"), None);
    assert_eq!(token.authorization.as_deref(), Some("Basic c3ZjOnMzY3JldA=="));
}

#[tokio::test]
async fn client_credentials_with_a_jwt_assertion() {
    use base64::Engine as _;
    use keel_mcp::auth::client::AssertionKey;
    let m = mock(Config::default()).await;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = AssertionKey::from_pkcs8(pkcs8.as_ref()).unwrap();
    let c = OAuthClient::client_credentials_jwt(m.mcp(), "svc", key).build().unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let token = &m.hits("/token")[0];
    let f = form(&token.body);
    assert_eq!(get(&f, "grant_type"), Some("client_credentials"));
    assert_eq!(get(&f, "client_assertion_type"), Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
    assert_eq!(get(&f, "client_id"), None);
    assert!(token.authorization.is_none());
    let jwt = get(&f, "client_assertion").unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("svc"), Some("svc")));
    assert_eq!(claims["aud"].as_str(), Some(m.base.as_str()));
}

#[tokio::test]
async fn workload_identity_presents_its_assertion_once() {
    let m = mock(Config::default()).await;
    let c = OAuthClient::jwt_bearer(m.mcp(), "workload.jwt.value").build().unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let f = form(&m.hits("/token")[0].body);
    assert_eq!(get(&f, "grant_type"), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    assert_eq!(get(&f, "assertion"), Some("workload.jwt.value"));
    assert_eq!(get(&f, "resource"), Some(m.mcp().as_str()));
    assert_eq!(get(&f, "client_id"), None);
    assert!(m.hits("/register").is_empty() && m.hits("/authorize").is_empty());
}

#[tokio::test]
async fn enterprise_managed_exchanges_the_id_token_then_redeems_the_id_jag() {
    use keel_mcp::auth::client::{ClientCredentials, IdentityProviderGrant};
    let m = mock(Config::default()).await;
    let idp = IdentityProviderGrant {
        token_endpoint: format!("{}/token", m.base),
        client_id: "idp-client".into(),
        id_token: "the.id.token".into(),
    };
    let c =
        OAuthClient::enterprise_managed(m.mcp(), ClientCredentials::confidential("app", "pw"), idp).build().unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let calls = m.hits("/token");
    let exchange = form(&calls[0].body);
    assert_eq!(get(&exchange, "grant_type"), Some("urn:ietf:params:oauth:grant-type:token-exchange"));
    assert_eq!(get(&exchange, "requested_token_type"), Some("urn:ietf:params:oauth:token-type:id-jag"));
    assert_eq!(get(&exchange, "audience"), Some(m.base.as_str()));
    assert_eq!(get(&exchange, "subject_token"), Some("the.id.token"));
    assert_eq!(get(&exchange, "client_id"), Some("idp-client"));
    let redeem = form(&calls[1].body);
    assert_eq!(get(&redeem, "grant_type"), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    assert_eq!(get(&redeem, "assertion"), Some("tok-1"), "the ID-JAG from the exchange");
    assert!(calls[1].authorization.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-2"));
}

#[tokio::test]
async fn dpop_binds_tokens_and_honours_nonces() {
    use base64::Engine as _;
    let m = mock(Config { dpop: true, ..Default::default() }).await;
    let c = OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
        .dpop(true)
        .build()
        .unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let tokens = m.hits("/token");
    assert_eq!(tokens.len(), 2, "first proof answered with use_dpop_nonce, then retried with the nonce");
    assert!(tokens.iter().all(|t| t.dpop.is_some()));
    let claims = |jwt: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims(tokens[0].dpop.as_deref().unwrap())["htu"].as_str(), Some(format!("{}/token", m.base).as_str()));

    c.note_dpop_nonce("rs-nonce");
    let headers = c.request_headers("POST", &m.mcp()).await.unwrap();
    assert_eq!(headers[0], ("authorization".to_owned(), "DPoP tok-1".to_owned()));
    let proof = claims(&headers[1].1);
    assert_eq!(proof["htm"], "POST");
    assert_eq!(proof["htu"].as_str(), Some(m.mcp().as_str()));
    assert_eq!(proof["nonce"], "rs-nonce");
    assert_eq!(proof["ath"].as_str(), Some(keel_mcp::auth::client::dpop::ath("tok-1").as_str()));
    let again = c.request_headers("POST", &m.mcp()).await.unwrap();
    assert_ne!(claims(&again[1].1)["jti"], proof["jti"], "a fresh proof per request");
    // The RS asks for a nonce: worth a retry once it is known.
    assert!(c.handle_challenge(&m.mcp(), 401, &["DPoP error=\"use_dpop_nonce\"".to_owned()]).await.unwrap());
}

#[tokio::test]
async fn no_dpop_unless_the_server_supports_it() {
    let m = mock(Config::default()).await;
    let c = OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
        .dpop(true)
        .build()
        .unwrap();
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    assert!(m.hits("/token")[0].dpop.is_none());
    assert_eq!(
        c.request_headers("POST", &m.mcp()).await.unwrap(),
        vec![("authorization".to_owned(), "Bearer tok-1".to_owned())]
    );
}

/// A server that registers confidential clients for `methods` and checks client authentication per `auth`.
async fn confidential_server(methods: Vec<&'static str>, token_auth: TokenAuth) -> Mock {
    mock(Config { auth_methods: Some(methods), token_auth, ..Default::default() }).await
}

#[tokio::test]
async fn a_basic_server_that_wants_client_id_in_the_body() {
    // The Python SDK's authorization server: offers post and basic, and refuses a token request whose body
    // has no client_id ("Missing client_id"). Keel registers for post, which carries it.
    let m = confidential_server(vec!["client_secret_post", "client_secret_basic"], TokenAuth::ClientIdInBody).await;
    assert!(client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let reg: Value = serde_json::from_str(&m.hits("/register")[0].body).unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_post");
    let token = form(&m.hits("/token")[0].body);
    assert_eq!((get(&token, "client_id"), get(&token, "client_secret")), (Some("dcr-client"), Some("dcr-secret")));

    // Credentials registered for basic elsewhere: basic, and client_id in the body as well.
    use keel_mcp::auth::client::ClientCredentials;
    let m = confidential_server(vec!["client_secret_basic"], TokenAuth::ClientIdInBody).await;
    let mut creds = ClientCredentials::confidential("pre", "pw");
    creds.token_endpoint_auth_method = Some("client_secret_basic".into());
    let c = OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap())
        .pre_registered(creds)
        .build()
        .unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let hit = &m.hits("/token")[0];
    assert!(hit.authorization.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(get(&form(&hit.body), "client_id"), Some("pre"));
}

#[tokio::test]
async fn a_strict_basic_server() {
    // Only basic offered, and a secret in the body is refused: basic header, no client_secret in the body.
    let m = confidential_server(vec!["client_secret_basic"], TokenAuth::StrictBasic).await;
    assert!(client(&m).handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let reg: Value = serde_json::from_str(&m.hits("/register")[0].body).unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    let hit = &m.hits("/token")[0];
    assert!(hit.authorization.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(get(&form(&hit.body), "client_secret"), None);
}

#[tokio::test]
async fn reauthorization_reuses_the_registered_port_or_registers_again() {
    // The server matches redirect URIs exactly; tokens expire with no refresh token, so each run authorizes.
    let m = mock(Config { exact_redirect: true, no_refresh_token: true, ..Default::default() }).await;
    let store = MemoryTokenStore::new();
    let build =
        |redirect: LoopbackRedirect| OAuthClient::builder(m.mcp(), redirect).store(store.clone()).build().unwrap();
    let redirect_uri = |i: usize| get(&form(&m.hits("/authorize")[i].query), "redirect_uri").unwrap().to_owned();

    let first = build(test_browser_redirect().await);
    assert!(first.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let registered = redirect_uri(0);

    // A later run listens on another port; the registered one is free, so the listener moves there.
    age_tokens(&store, &m.mcp(), 7200).await;
    let second_redirect = test_browser_redirect().await;
    assert_ne!(second_redirect.redirect_uri(), registered);
    let second = build(second_redirect);
    assert_eq!(second.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-2"));
    assert_eq!(redirect_uri(1), registered);
    assert_eq!(m.hits("/register").len(), 1);

    // The registered port is taken: the client registers again with the port it has.
    let port = url::Url::parse(&registered).unwrap().port().unwrap();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    age_tokens(&store, &m.mcp(), 7200).await;
    let third_redirect = test_browser_redirect().await;
    let third_uri = third_redirect.redirect_uri();
    let third = build(third_redirect);
    assert_eq!(third.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-3"));
    assert_eq!(m.hits("/register").len(), 2);
    assert_eq!(redirect_uri(2), third_uri);
}

#[tokio::test]
async fn short_lived_tokens_are_not_refreshed_right_after_issue() {
    // 60 s tokens: three requests right after the code exchange send the token they have.
    let m = mock(Config { expires_in: 60, ..Default::default() }).await;
    let c = client(&m);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    for _ in 0..3 {
        assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-1"));
    }
    assert_eq!(m.hits("/token").len(), 1);
}

#[tokio::test]
async fn invalid_client_fails_once_without_a_second_browser_round() {
    let m = mock(Config { token_auth: TokenAuth::RefuseAll, mcp_401: true, ..Default::default() }).await;
    let oauth = client(&m);
    let transport = keel_mcp::client::http::HttpTransport::new(&m.mcp()).unwrap().auth(Arc::new(oauth.clone()));
    let connected =
        keel_mcp::client::Client::builder(keel_mcp::protocol::Implementation::new("t", "1")).connect(transport).await;
    let Err(err) = connected else { panic!("the login must fail") };
    let err = err.to_string();
    assert!(err.contains("refused this client"), "{err}");
    assert_eq!(m.hits("/authorize").len(), 1, "the user is sent to the authorization server once");
    // Later challenges fail at once with the same clear error.
    let again = oauth.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap_err();
    assert!(matches!(again, AuthError::ClientRejected { ref error, .. } if error == "invalid_client"), "{again}");
    assert_eq!(m.hits("/authorize").len(), 1);
}

#[tokio::test]
async fn prompt_consent_accompanies_offline_access_at_openid_providers() {
    let prompt = |m: &Mock| get(&form(&m.hits("/authorize")[0].query), "prompt").map(str::to_owned);
    let scope = |m: &Mock| get(&form(&m.hits("/authorize")[0].query), "scope").map(str::to_owned);
    let run = |openid: bool, policy: Option<ConsentPrompt>| async move {
        let m = mock(Config { openid, ..Default::default() }).await;
        let mut b = OAuthClient::builder(m.mcp(), HeadlessRedirect::new("http://localhost:3000/callback").unwrap());
        if let Some(p) = policy {
            b = b.consent_prompt(p);
        }
        assert!(b.build().unwrap().handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
        m
    };
    // Default: an OpenID provider gets prompt=consent with offline_access; a plain OAuth server does not.
    let m = run(true, None).await;
    assert_eq!((prompt(&m).as_deref(), scope(&m).as_deref()), (Some("consent"), Some("mcp:basic offline_access")));
    let m = run(false, None).await;
    assert_eq!((prompt(&m).as_deref(), scope(&m).as_deref()), (None, Some("mcp:basic offline_access")));
    // The builder option overrides it either way.
    assert_eq!(prompt(&run(true, Some(ConsentPrompt::Never)).await), None);
    assert_eq!(prompt(&run(false, Some(ConsentPrompt::Always)).await).as_deref(), Some("consent"));
}

#[tokio::test]
async fn an_expired_token_without_refresh_is_not_sent() {
    let m = mock(Config { no_refresh_token: true, ..Default::default() }).await;
    let store = MemoryTokenStore::new();
    let c = client_with_store(&m, &store);
    c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap();
    age_tokens(&store, &m.mcp(), 3600).await;
    // The known-expired tok-1 would only collect a 401: a new authorization runs first.
    assert_eq!(c.access_header(&m.mcp()).await.unwrap().as_deref(), Some("Bearer tok-2"));
    assert_eq!(m.hits("/authorize").len(), 2);
    assert!(m.hits("/mcp").is_empty());
}

#[tokio::test]
async fn the_url_hook_drives_a_headless_login() {
    let m = mock(Config::default()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let urls = seen.clone();
    let redirect =
        LoopbackRedirect::bind(0).await.unwrap().timeout(std::time::Duration::from_secs(5)).on_authorization_url(
            move |url| {
                urls.lock().unwrap().push(url.to_owned());
                browse(url);
            },
        );
    let c = OAuthClient::builder(m.mcp(), redirect).build().unwrap();
    assert!(c.handle_challenge(&m.mcp(), 401, &challenge(&m)).await.unwrap());
    let urls = seen.lock().unwrap().clone();
    assert_eq!(urls.len(), 1);
    assert!(urls[0].starts_with(&format!("{}/authorize?", m.base)), "{}", urls[0]);
}
