//! Keel's HTTP server as an OAuth 2.1 resource server, against the configuration of the `protected_server`
//! example (included from `examples/protected_app/notes.rs`): the JWT token matrix of issue 13, JWKS
//! rotation and outage, scopes and step-up challenges, list filtering, session binding and the principal in
//! both eras. The service is driven in-process with `oneshot`; the test identity provider is a loopback
//! HTTP server serving a JWKS, and tokens are minted here with test keys. The last tests run the example
//! binary itself (built by `cargo test` with the examples) over TCP.

#[path = "support/example_process.rs"]
mod example_process;
#[path = "../examples/protected_app/notes.rs"]
mod notes;
use example_process::{ExampleProcess, example_binary};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use keel_mcp::auth::resource::JwtConfig;
use keel_mcp::server::http::{McpService, ResponseBody};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tower::ServiceExt;

const ISSUER: &str = "https://idp.example";
const RESOURCE: &str = "http://localhost:3000/mcp";
const PRM_URL: &str = "http://localhost:3000/.well-known/oauth-protected-resource/mcp";
const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

// ---------------------------------------------------------------------------------------------------------
// The test identity provider: a JWKS on loopback that can rotate keys and go down.

struct Idp {
    url: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Idp {
    async fn start(keys: &[&Signer]) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()));
        let (hits, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (served, count, off) = (jwks.clone(), hits.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (served, count, off) = (served.clone(), count.clone(), off.clone());
                let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let response = if off.load(Ordering::SeqCst) {
                        Response::builder().status(503).body(Full::new(Bytes::new())).unwrap()
                    } else {
                        let body = json!({ "keys": *served.lock().unwrap() }).to_string();
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap()
                    };
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Idp { url, jwks, hits, down }
    }

    fn publish(&self, keys: &[&Signer]) {
        *self.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }
}

/// An ES256 test key and its public JWK.
struct Signer {
    kid: String,
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        Signer { kid: kid.to_owned(), pair, jwk }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(&json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}), claims)
    }

    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Valid claims for alice through client `app`, with `scope`.
fn claims(scope: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "app", "scope": scope,
        "iat": now, "nbf": now - 5, "exp": now + 300,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

// ---------------------------------------------------------------------------------------------------------
// Requests.

/// The example's configuration with a JWKS at `idp`; rotation tests may refetch at once.
fn service(idp: &Idp, jwt: impl FnOnce(JwtConfig) -> JwtConfig) -> McpService {
    notes::server().http_service(notes::http_config(ISSUER, &idp.url, RESOURCE, jwt).unwrap())
}

fn rpc(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}})
}

/// A modern `tools/call` of `tool` with `arguments`.
fn call(tool: &str, arguments: Value) -> Request<Full<Bytes>> {
    let body = rpc("tools/call", json!({"name": tool, "arguments": arguments, "_meta": meta()}));
    modern_post("tools/call", Some(tool), &body)
}

fn modern_post(method: &str, name: Option<&str>, body: &Value) -> Request<Full<Bytes>> {
    let mut builder = base(Method::POST, "/mcp").header("mcp-protocol-version", MODERN).header("mcp-method", method);
    if let Some(name) = name {
        builder = builder.header("mcp-name", name);
    }
    builder.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

fn base(method: Method, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

fn bearer(mut request: Request<Full<Bytes>>, token: &str) -> Request<Full<Bytes>> {
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn send(service: &McpService, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
    service.clone().oneshot(request).await.unwrap()
}

async fn json_body(response: Response<ResponseBody>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn challenge(response: &Response<ResponseBody>) -> String {
    response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The status and challenge of `whoami` with `token`.
async fn whoami_status(service: &McpService, token: &str) -> (StatusCode, String) {
    let response = send(service, bearer(call("whoami", json!({})), token)).await;
    (response.status(), challenge(&response))
}

fn invalid_token() -> String {
    format!(
        "Bearer error=\"invalid_token\", error_description=\"the access token is invalid or expired\", \
         resource_metadata=\"{PRM_URL}\""
    )
}

// ---------------------------------------------------------------------------------------------------------
// Metadata and challenges.

#[tokio::test]
async fn metadata_is_served_at_the_path_inserted_url() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let get = base(Method::GET, "/.well-known/oauth-protected-resource/mcp")
        .header("origin", "https://elsewhere.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = send(&svc, get).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        json_body(response).await,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [ISSUER],
            "scopes_supported": ["notes:read", "notes:write"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Protected notes (Keel example)",
        })
    );
    for (method, status) in [
        (Method::HEAD, StatusCode::OK),
        (Method::OPTIONS, StatusCode::NO_CONTENT),
        (Method::POST, StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let request =
            base(method.clone(), "/.well-known/oauth-protected-resource/mcp").body(Full::new(Bytes::new())).unwrap();
        let response = send(&svc, request).await;
        assert_eq!(response.status(), status, "{method}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*", "{method}");
    }
    assert_eq!(idp.hits.load(Ordering::SeqCst), 0, "metadata needs no keys");
}

#[tokio::test]
async fn token_matrix() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j.refetch_interval(Duration::ZERO));

    // No credentials: a challenge without an error code, naming the metadata.
    let response = send(&svc, call("whoami", json!({}))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), format!("Bearer resource_metadata=\"{PRM_URL}\""));

    // Valid.
    let response = send(&svc, bearer(call("whoami", json!({})), &key.sign(&claims("notes:read")))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(
        body["result"]["structuredContent"],
        json!({"sub": "alice", "client_id": "app", "scopes": ["notes:read"]})
    );

    let now = now();
    let refused: Vec<(&str, String)> = vec![
        ("expired", key.sign(&with(claims(""), "exp", json!(now - 120)))),
        ("not yet valid", key.sign(&with(claims(""), "nbf", json!(now + 120)))),
        ("issued in the future", key.sign(&with(claims(""), "iat", json!(now + 600)))),
        (
            "no exp",
            key.sign(&{
                let mut c = claims("");
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        ("wrong aud", key.sign(&with(claims(""), "aud", json!("http://localhost:3000/other")))),
        ("aud with a slash added", key.sign(&with(claims(""), "aud", json!(format!("{RESOURCE}/"))))),
        ("wrong iss", key.sign(&with(claims(""), "iss", json!("https://evil.example")))),
        ("iss with a slash added", key.sign(&with(claims(""), "iss", json!(format!("{ISSUER}/"))))),
        ("tampered", {
            let token = key.sign(&claims(""));
            let mut parts: Vec<&str> = token.split('.').collect();
            let forged = B64.encode(with(claims("notes:write"), "sub", json!("mallory")).to_string());
            parts[1] = &forged;
            parts.join(".")
        }),
        ("alg none", format!("{}.", signing_input(&json!({"alg": "none", "typ": "at+jwt"}), &claims("")))),
        ("HS256 with the public key", {
            let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"});
            let input = signing_input(&header, &claims(""));
            let mac = hmac_sha256::HMAC::mac(input.as_bytes(), key.jwk.to_string().as_bytes());
            format!("{input}.{}", B64.encode(mac))
        }),
        ("unknown kid", Signer::new("k2").sign(&claims(""))),
        ("not a JWT", "abc.def".to_owned()),
    ];
    for (case, token) in refused {
        assert_eq!(
            whoami_status(&svc, &token).await,
            (StatusCode::UNAUTHORIZED, invalid_token()),
            "{case} must be refused as invalid_token"
        );
    }
}

#[tokio::test]
async fn eddsa_keys_and_the_at_jwt_type() {
    use ring::signature::Ed25519KeyPair;
    let rng = SystemRandom::new();
    let pair = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig",
        "x": B64.encode(pair.public_key().as_ref())});
    let sign = |header: Value| {
        let input = signing_input(&header, &claims(""));
        format!("{input}.{}", B64.encode(pair.sign(input.as_bytes()).as_ref()))
    };
    let idp = Idp::start(&[]).await;
    *idp.jwks.lock().unwrap() = vec![jwk];
    let svc = service(&idp, |j| j.require_at_jwt(true));
    let typed = sign(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed"}));
    assert_eq!(whoami_status(&svc, &typed).await.0, StatusCode::OK);
    let plain = sign(json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed"}));
    assert_eq!(whoami_status(&svc, &plain).await, (StatusCode::UNAUTHORIZED, invalid_token()), "typ must be at+jwt");
    // An ES256 header on an EdDSA key is refused whatever the signature.
    let confused = sign(json!({"alg": "ES256", "typ": "at+jwt", "kid": "ed"}));
    assert_eq!(whoami_status(&svc, &confused).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn odd_tokens_are_refused_without_a_panic() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let garbage = B64.encode([0xffu8, 0, 7, 42]);
    let header = B64.encode(json!({"alg": "ES256", "kid": "k1"}).to_string());
    let unsigned: Vec<String> = vec![
        ".".into(),
        "..".into(),
        "a.b.c".into(),
        format!("{garbage}.{garbage}.{garbage}"),
        format!("{header}.{garbage}.{garbage}"),
        format!("{header}.{header}.{header}.{header}.{header}"),
        format!("{}.e30.", B64.encode(json!({"alg": "ES256", "kid": ["k1"]}).to_string())),
        format!("{}.e30.", B64.encode(json!({"alg": "ES256", "kid": "k".repeat(4000)}).to_string())),
        format!("{}.e30.", B64.encode(json!({"alg": "RS256", "kid": "k1"}).to_string())),
        format!("{}.e30.", B64.encode(json!({"alg": "HS512", "kid": "k1"}).to_string())),
    ];
    for token in unsigned {
        let (status, _) = whoami_status(&svc, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:.60}");
    }
    // Properly signed, with claims of the wrong shape: refused, or (when only informative claims are odd)
    // accepted with what could be read — never a failure of the server.
    let odd = [
        ("exp", json!("tomorrow"), false),
        ("exp", json!(1e300), true),
        ("nbf", json!({"at": 1}), false),
        ("iat", json!("now"), false),
        ("aud", json!({"aud": RESOURCE}), false),
        ("aud", json!([RESOURCE, 5, null]), true),
        ("iss", json!(5), false),
        ("sub", json!(["alice"]), true),
        ("scope", json!(5), true),
        ("cnf", json!("jkt"), true),
    ];
    for (claim, value, acceptable) in odd {
        let (status, _) = whoami_status(&svc, &key.sign(&with(claims(""), claim, value.clone()))).await;
        let allowed =
            if acceptable { [StatusCode::OK, StatusCode::UNAUTHORIZED] } else { [StatusCode::UNAUTHORIZED; 2] };
        assert!(allowed.contains(&status), "{claim} = {value}: {status}");
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_without_restart() {
    let (old, new) = (Signer::new("old"), Signer::new("new"));
    let idp = Idp::start(&[&old]).await;
    let svc = service(&idp, |j| j.refetch_interval(Duration::ZERO));
    assert_eq!(whoami_status(&svc, &old.sign(&claims(""))).await.0, StatusCode::OK);
    assert_eq!(whoami_status(&svc, &new.sign(&claims(""))).await.0, StatusCode::UNAUTHORIZED, "before the rotation");
    idp.publish(&[&new]);
    assert_eq!(whoami_status(&svc, &new.sign(&claims(""))).await.0, StatusCode::OK, "after the rotation");
}

#[tokio::test]
async fn unknown_key_ids_refetch_at_most_once_per_interval_and_one_at_a_time() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j.refetch_interval(Duration::from_secs(60)));
    assert_eq!(whoami_status(&svc, &key.sign(&claims(""))).await.0, StatusCode::OK);
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1);
    // A flood of forged key ids, some at once: no fetch within the interval.
    let forged: Vec<String> = (0..8).map(|i| Signer::new(&format!("forged{i}")).sign(&claims(""))).collect();
    let answers = futures_util::future::join_all(forged.iter().map(|t| whoami_status(&svc, t))).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::UNAUTHORIZED));
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1, "rate-limited");

    // Concurrent first requests share one fetch.
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let token = key.sign(&claims(""));
    let answers = futures_util::future::join_all((0..8).map(|_| whoami_status(&svc, &token))).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1, "single flight");
}

#[tokio::test]
async fn a_jwks_outage_fails_closed_and_the_server_keeps_serving() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    idp.down.store(true, Ordering::SeqCst);
    let svc = service(&idp, |j| j.refetch_interval(Duration::ZERO));
    let token = key.sign(&claims(""));
    let response = send(&svc, bearer(call("whoami", json!({})), &token)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "never 200 on keys it does not have");
    assert!(response.headers().contains_key("retry-after"));
    // The server answers everything else meanwhile, and recovers when the keys are back.
    let prm = base(Method::GET, "/.well-known/oauth-protected-resource/mcp").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(send(&svc, prm).await.status(), StatusCode::OK);
    assert_eq!(send(&svc, call("whoami", json!({}))).await.status(), StatusCode::UNAUTHORIZED);
    idp.down.store(false, Ordering::SeqCst);
    assert_eq!(whoami_status(&svc, &token).await.0, StatusCode::OK);
    // Keys in hand keep working through a later outage; a key it has never seen cannot be judged.
    idp.down.store(true, Ordering::SeqCst);
    assert_eq!(whoami_status(&svc, &token).await.0, StatusCode::OK);
    let unknown = Signer::new("k2").sign(&claims(""));
    assert_eq!(whoami_status(&svc, &unknown).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn credentials_only_in_a_bounded_header() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let token = key.sign(&claims("notes:read"));
    // In the query string: refused, even with a valid header beside it.
    let mut request = call("whoami", json!({}));
    *request.uri_mut() = format!("/mcp?access_token={token}").parse().unwrap();
    let response = send(&svc, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(challenge(&response).contains("error=\"invalid_request\""));
    let mut request = bearer(call("whoami", json!({})), &token);
    *request.uri_mut() = format!("/mcp?access_token={token}").parse().unwrap();
    assert_eq!(send(&svc, request).await.status(), StatusCode::BAD_REQUEST);
    // Oversized.
    let huge = "a".repeat(keel_mcp::auth::resource::DEFAULT_MAX_AUTHORIZATION_BYTES);
    let response = send(&svc, bearer(call("whoami", json!({})), &huge)).await;
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(idp.hits.load(Ordering::SeqCst), 0, "refused before any verification");
    // The refusals never echo the token.
    let mut request = call("whoami", json!({}));
    *request.uri_mut() = format!("/mcp?access_token={token}").parse().unwrap();
    let text = json_body(send(&svc, request).await).await.to_string();
    assert!(!text.contains(&token[..20]));
}

// ---------------------------------------------------------------------------------------------------------
// Scopes.

#[tokio::test]
async fn a_missing_scope_is_a_step_up_challenge_naming_every_needed_scope() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let reader = key.sign(&claims("notes:read"));
    let response = send(&svc, bearer(call("add_note", json!({"text": "hi"})), &reader)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"the access token lacks a scope this request \
             needs\", scope=\"notes:write\", resource_metadata=\"{PRM_URL}\""
        )
    );
    assert_eq!(json_body(response).await["error"]["data"]["scopes"], json!(["notes:write"]));
    // Stepped up, the same call succeeds and the note is there.
    let writer = key.sign(&claims("notes:read notes:write"));
    assert_eq!(send(&svc, bearer(call("add_note", json!({"text": "hi"})), &writer)).await.status(), StatusCode::OK);
    let response = send(&svc, bearer(call("list_notes", json!({})), &reader)).await;
    assert_eq!(json_body(response).await["result"]["structuredContent"], json!({"notes": ["hi"]}));
}

async fn tool_names(svc: &McpService, token: &str) -> Vec<String> {
    let body = rpc("tools/list", json!({"_meta": meta()}));
    let response = send(svc, bearer(modern_post("tools/list", None, &body), token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tools = json_body(response).await["result"]["tools"].as_array().unwrap().clone();
    tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn lists_show_only_what_the_caller_may_call() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    assert_eq!(tool_names(&svc, &key.sign(&claims(""))).await, ["whoami"]);
    assert_eq!(tool_names(&svc, &key.sign(&claims("notes:read"))).await, ["whoami", "list_notes"]);
    assert_eq!(
        tool_names(&svc, &key.sign(&claims("notes:write notes:read"))).await,
        ["whoami", "list_notes", "add_note"]
    );
}

/// A verifier of the user's own: the token is the base64url of its space-separated scopes.
struct StaticVerifier;

impl keel_mcp::auth::resource::TokenVerifier for StaticVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> keel_mcp::auth::resource::VerifyFuture<'a> {
        use keel_mcp::auth::resource::{VerifiedToken, VerifyError};
        let result = match B64.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok()) {
            Some(scopes) => {
                let mut principal = keel_mcp::server::Principal::default();
                principal.subject = Some("dave".into());
                principal.scopes = scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                Ok(VerifiedToken::new(principal))
            }
            None => Err(VerifyError::Invalid("unknown token".into())),
        };
        Box::pin(std::future::ready(result))
    }
}

/// A token of [`StaticVerifier`] granting `scopes`.
fn scoped(scopes: &str) -> String {
    B64.encode(format!(" {scopes}"))
}

fn scoped_server() -> keel_mcp::server::Server {
    use keel_mcp::server::{NoArgs, PromptDef, ResourceDef, TemplateDef};
    keel_mcp::server::Server::builder(keel_mcp::protocol::Implementation::new("scoped", "1"))
        .resource(ResourceDef::text("file:///open", "open", "text/plain", "open"))
        .resource(ResourceDef::text("file:///secret", "secret", "text/plain", "secret").scopes(["files:secret"]))
        .resource_template(
            TemplateDef::new("file:///vault/{name}", "vault", |_, uri, _| async move {
                keel_mcp::protocol::ResourceContents::text(uri, Some("text/plain"), "vaulted")
            })
            .scopes(["files:vault"]),
        )
        .prompt_def(PromptDef::new("plan", |_: NoArgs| async { String::from("plan") }).scopes(["prompts:plan"]))
        .build()
}

#[tokio::test]
async fn resources_templates_and_prompts_need_their_scopes_too() {
    use keel_mcp::auth::resource::ResourceServerConfig;
    let protection = ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(StaticVerifier))
        .default_scopes(["files:read"])
        .method_scopes("resources/read", ["files:read"])
        .serve_root_metadata(true);
    let config = keel_mcp::server::http::HttpConfig::default().resource_server(protection).unwrap();
    let svc = scoped_server().http_service(config);
    let ask = |method: &str, params: Value, name: Option<&str>, token: &str| {
        let mut params = params;
        params["_meta"] = meta();
        bearer(modern_post(method, name, &rpc(method, params)), token)
    };
    let read = |uri: &str, token: &str| ask("resources/read", json!({"uri": uri}), Some(uri), token);

    // The 401 names the default scopes; the root metadata URL is served when configured.
    let response =
        send(&svc, modern_post("resources/list", None, &rpc("resources/list", json!({"_meta": meta()})))).await;
    assert_eq!(challenge(&response), format!("Bearer scope=\"files:read\", resource_metadata=\"{PRM_URL}\""));
    let root = base(Method::GET, "/.well-known/oauth-protected-resource").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(send(&svc, root).await.status(), StatusCode::OK);

    // Per-method scopes come first, then the target's; the challenge names both.
    let response = send(&svc, read("file:///open", &scoped(""))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).contains("scope=\"files:read\""));
    assert_eq!(send(&svc, read("file:///open", &scoped("files:read"))).await.status(), StatusCode::OK);
    let response = send(&svc, read("file:///secret", &scoped("files:read"))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).contains("scope=\"files:read files:secret\""), "{}", challenge(&response));
    assert_eq!(send(&svc, read("file:///secret", &scoped("files:read files:secret"))).await.status(), StatusCode::OK);
    let response = send(&svc, read("file:///vault/x", &scoped("files:read"))).await;
    assert!(challenge(&response).contains("scope=\"files:read files:vault\""));
    assert_eq!(send(&svc, read("file:///vault/x", &scoped("files:read files:vault"))).await.status(), StatusCode::OK);

    // Prompts, and the suggestions for their arguments.
    let get = |token: &str| ask("prompts/get", json!({"name": "plan"}), Some("plan"), token);
    assert_eq!(send(&svc, get(&scoped(""))).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(send(&svc, get(&scoped("prompts:plan"))).await.status(), StatusCode::OK);

    // Lists leave out what the caller may not use.
    let list = |method: &'static str, key: &'static str, token: &str| {
        let (svc, token) = (svc.clone(), token.to_owned());
        async move {
            let response = send(&svc, ask(method, json!({}), None, &token)).await;
            let body = json_body(response).await;
            body["result"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("resources/list", "resources", &scoped("")).await, ["open"]);
    assert_eq!(list("resources/list", "resources", &scoped("files:secret")).await, ["open", "secret"]);
    assert!(list("resources/templates/list", "resourceTemplates", &scoped("")).await.is_empty());
    assert_eq!(list("resources/templates/list", "resourceTemplates", &scoped("files:vault")).await, ["vault"]);
    assert!(list("prompts/list", "prompts", &scoped("")).await.is_empty());
    assert_eq!(list("prompts/list", "prompts", &scoped("prompts:plan")).await, ["plan"]);

    // Filtering off: everything is listed, calls are still checked.
    let protection = ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(StaticVerifier)).filter_lists(false);
    let svc = scoped_server()
        .http_service(keel_mcp::server::http::HttpConfig::default().resource_server(protection).unwrap());
    let response = send(&svc, ask("resources/list", json!({}), None, &scoped(""))).await;
    assert_eq!(json_body(response).await["result"]["resources"].as_array().unwrap().len(), 2);
    assert_eq!(send(&svc, read("file:///secret", &scoped(""))).await.status(), StatusCode::FORBIDDEN);
}

/// The first SSE event of a streamed answer whose text contains `marker`, within a bound.
async fn first_event_with(response: Response<ResponseBody>, marker: &str) -> String {
    let mut body = response.into_body();
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
                if let Some(event) = seen.split("\n\n").find(|event| event.contains(marker)) {
                    return event.to_owned();
                }
            }
        }
        panic!("the stream ended without {marker}: {seen}")
    })
    .await
    .unwrap_or_else(|_| panic!("no {marker} within 10 s: {seen}"))
}

#[tokio::test]
async fn suggestions_and_followed_changes_need_the_scopes_too() {
    use keel_mcp::auth::resource::ResourceServerConfig;
    use keel_mcp::server::{ResourceDef, TemplateDef};
    let server = keel_mcp::server::Server::builder(keel_mcp::protocol::Implementation::new("scoped", "1"))
        .resource(ResourceDef::text("file:///open", "open", "text/plain", "open"))
        .resource(ResourceDef::text("file:///secret", "secret", "text/plain", "secret").scopes(["files:secret"]))
        .resource_template(
            TemplateDef::new("file:///vault/{name}", "vault", |_, uri, _| async move {
                keel_mcp::protocol::ResourceContents::text(uri, Some("text/plain"), "vaulted")
            })
            .scopes(["files:vault"]),
        )
        .complete_template_variable("file:///vault/{name}", "name", |_| async { vec!["diary".to_owned()] })
        .build();
    let protection = ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(StaticVerifier));
    let svc = server.http_service(keel_mcp::server::http::HttpConfig::default().resource_server(protection).unwrap());
    let ask = |method: &str, params: Value, token: &str| {
        let mut params = params;
        params["_meta"] = meta();
        bearer(modern_post(method, None, &rpc(method, params)), token)
    };

    // Suggestions for a template's variables: only for a caller holding the template's scopes.
    let complete = |token: &str| {
        let params = json!({"ref": {"type": "ref/resource", "uri": "file:///vault/{name}"},
            "argument": {"name": "name", "value": ""}});
        ask("completion/complete", params, token)
    };
    let response = send(&svc, complete(&scoped(""))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).contains("scope=\"files:vault\""), "{}", challenge(&response));
    let body = json_body(send(&svc, complete(&scoped("files:vault"))).await).await;
    assert_eq!(body["result"]["completion"]["values"], json!(["diary"]), "{body}");

    // subscriptions/listen honours only the resources the caller may read.
    let listen = |token: &str| {
        let params = json!({"notifications": {"resourceSubscriptions": ["file:///open", "file:///secret"]}});
        ask("subscriptions/listen", params, token)
    };
    let ack = first_event_with(send(&svc, listen(&scoped(""))).await, "acknowledged").await;
    assert!(ack.contains("file:///open") && !ack.contains("file:///secret"), "{ack}");
    let ack = first_event_with(send(&svc, listen(&scoped("files:secret"))).await, "acknowledged").await;
    assert!(ack.contains("file:///open") && ack.contains("file:///secret"), "{ack}");
}

#[tokio::test]
async fn without_a_principal_scoped_definitions_are_refused_over_http() {
    // No authorization layer at all: a scoped tool cannot be called over HTTP, and is not listed.
    let svc = notes::server().http_service(keel_mcp::server::http::HttpConfig::default());
    let response = send(&svc, call("list_notes", json!({}))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(response).await["error"]["code"], -32003);
    let body = rpc("tools/list", json!({"_meta": meta()}));
    let response = send(&svc, modern_post("tools/list", None, &body)).await;
    let tools = json_body(response).await["result"]["tools"].as_array().unwrap().len();
    assert_eq!(tools, 1, "only whoami");
}

// ---------------------------------------------------------------------------------------------------------
// Legacy sessions and the principal in both eras.

/// Opens a legacy session with `token`; returns its id.
async fn initialize(svc: &McpService, token: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let request = bearer(base(Method::POST, "/mcp").body(Full::new(Bytes::from(body.to_string()))).unwrap(), token);
    let response = send(svc, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(send(svc, legacy(&id, &done, token)).await.status(), StatusCode::ACCEPTED);
    id
}

fn legacy(session: &str, body: &Value, token: &str) -> Request<Full<Bytes>> {
    let request = base(Method::POST, "/mcp")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", LEGACY)
        .header("accept", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    bearer(request, token)
}

#[tokio::test]
async fn a_legacy_session_belongs_to_the_principal_that_opened_it() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let alice = key.sign(&claims("notes:read"));
    let bob = key.sign(&with(claims("notes:read"), "sub", json!("bob")));
    let other_client = key.sign(&with(claims("notes:read"), "client_id", json!("other-app")));
    let session = initialize(&svc, &alice).await;
    let whoami = rpc("tools/call", json!({"name": "whoami", "arguments": {}}));
    for intruder in [&bob, &other_client] {
        assert_eq!(send(&svc, legacy(&session, &whoami, intruder)).await.status(), StatusCode::NOT_FOUND);
        let get = bearer(
            base(Method::GET, "/mcp")
                .header("mcp-session-id", &session)
                .header("accept", "text/event-stream")
                .body(Full::new(Bytes::new()))
                .unwrap(),
            intruder,
        );
        assert_eq!(send(&svc, get).await.status(), StatusCode::NOT_FOUND);
        let delete = bearer(
            base(Method::DELETE, "/mcp").header("mcp-session-id", &session).body(Full::new(Bytes::new())).unwrap(),
            intruder,
        );
        assert_eq!(send(&svc, delete).await.status(), StatusCode::NOT_FOUND);
    }
    // The owner's session is untouched, and its handler sees the principal (legacy era).
    let response = send(&svc, legacy(&session, &whoami, &alice)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["result"]["structuredContent"]["sub"], "alice");
    // A missing scope in a legacy session is the same 403 step-up challenge.
    let add = rpc("tools/call", json!({"name": "add_note", "arguments": {"text": "x"}}));
    let response = send(&svc, legacy(&session, &add, &alice)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).contains("scope=\"notes:write\""));
    // A fresh token of the same principal (a refresh) keeps the session.
    let refreshed = key.sign(&with(claims("notes:read notes:write"), "jti", json!("another")));
    assert_eq!(send(&svc, legacy(&session, &whoami, &refreshed)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_principal_reaches_handlers_in_both_eras() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let svc = service(&idp, |j| j);
    let token = key.sign(&with(claims("notes:read"), "sub", json!("carol")));
    let modern = json_body(send(&svc, bearer(call("whoami", json!({})), &token)).await).await;
    assert_eq!(modern["result"]["structuredContent"]["sub"], "carol");
    let session = initialize(&svc, &token).await;
    let whoami = rpc("tools/call", json!({"name": "whoami", "arguments": {}}));
    let legacy = json_body(send(&svc, legacy(&session, &whoami, &token)).await).await;
    assert_eq!(legacy["result"]["structuredContent"], modern["result"]["structuredContent"]);
}

// ---------------------------------------------------------------------------------------------------------
// The example binary itself, over TCP.

async fn over_tcp(addr: SocketAddr, request: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_example_binary_enforces_its_configuration_and_stops_on_sigterm() {
    let key = Signer::new("k1");
    let idp = Idp::start(&[&key]).await;
    let args = ["--port", "0", "--issuer", ISSUER, "--jwks-url", &idp.url, "--resource", RESOURCE];
    let example = ExampleProcess::start("protected_server", "resource-server", &args).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], example.port));

    let (status, headers, _) = over_tcp(addr, call("whoami", json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], format!("Bearer resource_metadata=\"{PRM_URL}\"").as_str());
    let prm = base(Method::GET, "/.well-known/oauth-protected-resource/mcp").body(Full::new(Bytes::new())).unwrap();
    let (status, _, document) = over_tcp(addr, prm).await;
    assert_eq!((status, document["resource"].as_str()), (StatusCode::OK, Some(RESOURCE)));
    let reader = key.sign(&claims("notes:read"));
    let (status, _, body) = over_tcp(addr, bearer(call("whoami", json!({})), &reader)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["structuredContent"]["sub"], "alice");
    let (status, headers, _) = over_tcp(addr, bearer(call("add_note", json!({"text": "x"})), &reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers["www-authenticate"].to_str().unwrap().contains("scope=\"notes:write\""));

    example.stop_with_sigterm().await;
}

#[tokio::test]
async fn the_example_refuses_incomplete_introspection_options() {
    for extra in [&["--introspection-url", "https://idp.example/introspect"][..], &["--client-secret", "s"][..]] {
        let output = tokio::process::Command::new(example_binary("protected_server", "resource-server"))
            .args(["--port", "0", "--issuer", ISSUER, "--jwks-url", "https://idp.example/jwks", "--resource", RESOURCE])
            .args(extra)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("go together"), "{extra:?}");
    }
}
