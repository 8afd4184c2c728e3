//! The resource server with RFC 7662 introspection and RFC 9449 DPoP, through the HTTP service's
//! enforcement layer (in-process with `oneshot`). The introspection endpoint is a loopback HTTP server that
//! knows a few tokens and can go down; DPoP proofs are minted by Keel's own OAuth client
//! (`auth::client::dpop`), so these tests also prove that the client and the server halves agree.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use keel_mcp::auth::client::dpop::Dpop;
use keel_mcp::auth::resource::ResourceServerConfig;
use keel_mcp::auth::resource::dpop::DpopVerifier;
use keel_mcp::auth::resource::introspection::IntrospectionVerifier;
use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::{HttpConfig, McpService, ResponseBody};
use keel_mcp::server::{NoArgs, RequestContext, Server};
use serde_json::{Value, json};
use tower::ServiceExt;

#[path = "support/example_process.rs"]
mod example_process;
use example_process::ExampleProcess;

const RESOURCE: &str = "http://localhost:3000/mcp";
const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
const ISSUER: &str = "https://idp.example";
const MODERN: &str = "2026-07-28";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// RFC 7638 thumbprint of the client's P-256 key.
fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

// ---------------------------------------------------------------------------------------------------------
// The test introspection endpoint.

struct Introspection {
    url: String,
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Introspection {
    /// Knows `alice-token` (active), `bound-token` (active, bound to `jkt`), `bound-to-<thumbprint>` (active,
    /// bound to that key), `expired-token` (active per the
    /// server but past `exp`); every other token is inactive. Checks the client's Basic credentials.
    async fn start(jkt: Option<String>) -> Introspection {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let (calls, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, off, jkt) = (calls.clone(), down.clone(), Arc::new(jkt));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (count, off, jkt) = (count.clone(), off.clone(), jkt.clone());
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (count, off, jkt) = (count.clone(), off.clone(), jkt.clone());
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        let basic = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
                        let form = req.into_body().collect().await.unwrap().to_bytes();
                        let token = url_token(&form);
                        let (status, body) = if off.load(Ordering::SeqCst) {
                            (500, json!({"error": "server_error"}))
                        } else if basic.as_deref() != Some("Basic cnM6cnMtc2VjcmV0") {
                            (401, json!({"error": "invalid_client"}))
                        } else {
                            (200, answer(&token, jkt.as_deref()))
                        };
                        let response = Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body.to_string())))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Introspection { url, calls, down }
    }

    fn verifier(&self) -> IntrospectionVerifier {
        IntrospectionVerifier::builder(&self.url, RESOURCE)
            .client_secret_basic("rs", "rs-secret")
            .issuer(ISSUER)
            .retry_after(Duration::from_secs(3))
            .build()
            .unwrap()
    }
}

fn url_token(form: &[u8]) -> String {
    let form = String::from_utf8_lossy(form);
    form.split('&').find_map(|p| p.strip_prefix("token=")).unwrap_or_default().to_owned()
}

fn answer(token: &str, jkt: Option<&str>) -> Value {
    let active = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "notes-app",
                        "scope": "notes:read", "exp": now() + 300});
    match token {
        "alice-token" => active,
        "bound-token" => {
            let mut bound = active;
            bound["cnf"] = json!({"jkt": jkt});
            bound
        }
        // A token bound to the key whose thumbprint follows the prefix.
        t if t.starts_with("bound-to-") => {
            let mut bound = active;
            bound["cnf"] = json!({"jkt": &t["bound-to-".len()..]});
            bound
        }
        "expired-token" => {
            let mut expired = active;
            expired["exp"] = json!(now() - 1);
            expired
        }
        _ => json!({"active": false}),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The protected service.

fn service(config: ResourceServerConfig) -> McpService {
    Server::builder(Implementation::new("notes", "1.0.0"))
        .tool("whoami", "Who is calling", |ctx: RequestContext, _: NoArgs| async move {
            ctx.principal().and_then(|p| p.subject.clone()).unwrap_or_default()
        })
        .build()
        .http_service(HttpConfig::default().resource_server(config).unwrap())
}

fn config(verifier: IntrospectionVerifier) -> ResourceServerConfig {
    ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(verifier))
}

fn whoami() -> http::request::Builder {
    Request::post("/mcp")
        .header("host", "localhost:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
}

fn body() -> Full<Bytes> {
    let meta =
        json!({"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}});
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"_meta": meta, "name": "whoami", "arguments": {}}});
    Full::new(Bytes::from(call.to_string()))
}

fn bearer(token: &str) -> Request<Full<Bytes>> {
    whoami().header("authorization", format!("Bearer {token}")).body(body()).unwrap()
}

fn dpop(token: &str, proof: &str) -> Request<Full<Bytes>> {
    whoami().header("authorization", format!("DPoP {token}")).header("dpop", proof).body(body()).unwrap()
}

async fn send(service: &McpService, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
    tokio::time::timeout(Duration::from_secs(20), service.clone().oneshot(request)).await.unwrap().unwrap()
}

async fn text(response: Response<ResponseBody>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn challenges(response: &Response<ResponseBody>) -> Vec<String> {
    response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// Asserts a 401 whose DPoP challenge names `error`.
fn assert_dpop_error(response: &Response<ResponseBody>, error: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let all = challenges(response);
    assert!(
        all.iter().any(|c| c.starts_with("DPoP ") && c.contains(&format!("error=\"{error}\""))),
        "want DPoP error {error}, got {all:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Introspection.

#[tokio::test]
async fn introspection_active_inactive_and_expired() {
    let idp = Introspection::start(None).await;
    let svc = service(config(idp.verifier()));
    let ok = send(&svc, bearer("alice-token")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(text(ok).await.contains("alice"), "the principal reached the handler");
    for token in ["unknown-token", "expired-token"] {
        let refused = send(&svc, bearer(token)).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert!(challenges(&refused)[0].contains("error=\"invalid_token\""));
    }
    // The answer is cached: a second call does not reach the endpoint.
    let calls = idp.calls.load(Ordering::SeqCst);
    assert_eq!(send(&svc, bearer("alice-token")).await.status(), StatusCode::OK);
    assert_eq!(idp.calls.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn introspection_down_fails_closed_and_the_server_keeps_serving() {
    let idp = Introspection::start(None).await;
    let svc = service(config(idp.verifier()));
    assert_eq!(send(&svc, bearer("alice-token")).await.status(), StatusCode::OK);
    idp.down.store(true, Ordering::SeqCst);
    let refused = send(&svc, bearer("other-token")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "never 200 when the endpoint is down");
    assert_eq!(refused.headers()["retry-after"], "3");
    // Everyone else is still served: a cached token, the metadata.
    assert_eq!(send(&svc, bearer("alice-token")).await.status(), StatusCode::OK);
    let prm = Request::get(PRM_PATH).header("host", "localhost:3000").body(Full::default()).unwrap();
    assert_eq!(send(&svc, prm).await.status(), StatusCode::OK);
    // Nobody listening at all, and bad client credentials, fail closed too.
    let nowhere = IntrospectionVerifier::builder("http://127.0.0.1:1/introspect", RESOURCE)
        .client_secret_basic("rs", "rs-secret")
        .build()
        .unwrap();
    assert_eq!(send(&service(config(nowhere)), bearer("alice-token")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    idp.down.store(false, Ordering::SeqCst);
    let wrong_secret =
        IntrospectionVerifier::builder(&idp.url, RESOURCE).client_secret_basic("rs", "nope").build().unwrap();
    assert_eq!(
        send(&service(config(wrong_secret)), bearer("alice-token")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

// ---------------------------------------------------------------------------------------------------------
// DPoP.

struct DpopSetup {
    svc: McpService,
    key: Dpop,
    _idp: Introspection,
}

async fn dpop_setup(verifier: DpopVerifier, required: bool) -> DpopSetup {
    let key = Dpop::generate().unwrap();
    let idp = Introspection::start(Some(thumbprint(key.jwk()))).await;
    let svc = service(config(idp.verifier()).dpop(verifier, required));
    DpopSetup { svc, key, _idp: idp }
}

#[tokio::test]
async fn dpop_valid_proof_from_keels_client_is_admitted_once() {
    let s = dpop_setup(DpopVerifier::new(), false).await;
    let proof = s.key.proof("POST", RESOURCE, Some("bound-token"), None).unwrap();
    let ok = send(&s.svc, dpop("bound-token", &proof)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(text(ok).await.contains("alice"));
    // The same proof again is a replay.
    assert_dpop_error(&send(&s.svc, dpop("bound-token", &proof)).await, "invalid_dpop_proof");
    // Unbound bearer tokens still work when DPoP is optional.
    assert_eq!(send(&s.svc, bearer("alice-token")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn dpop_one_key_cannot_fill_the_replay_cache_for_the_others() {
    let s = dpop_setup(DpopVerifier::new().replay_quota_per_key(2), false).await;
    let proof = || s.key.proof("POST", RESOURCE, Some("bound-token"), None).unwrap();
    for _ in 0..2 {
        assert_eq!(send(&s.svc, dpop("bound-token", &proof())).await.status(), StatusCode::OK);
    }
    // The flooding key is told to slow down, with a time to wait; nobody else is.
    let refused = send(&s.svc, dpop("bound-token", &proof())).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(text(refused).await.contains("too many DPoP proofs from this key"));
    let other = Dpop::generate().unwrap();
    let token = format!("bound-to-{}", thumbprint(other.jwk()));
    let theirs = other.proof("POST", RESOURCE, Some(&token), None).unwrap();
    assert_eq!(send(&s.svc, dpop(&token, &theirs)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn dpop_proofs_that_do_not_fit_the_request_are_refused() {
    let s = dpop_setup(DpopVerifier::new(), false).await;
    let other_url = s.key.proof("POST", "http://localhost:3000/other", Some("bound-token"), None).unwrap();
    assert_dpop_error(&send(&s.svc, dpop("bound-token", &other_url)).await, "invalid_dpop_proof");
    let other_method = s.key.proof("GET", RESOURCE, Some("bound-token"), None).unwrap();
    assert_dpop_error(&send(&s.svc, dpop("bound-token", &other_method)).await, "invalid_dpop_proof");
    let wrong_ath = s.key.proof("POST", RESOURCE, Some("alice-token"), None).unwrap();
    assert_dpop_error(&send(&s.svc, dpop("bound-token", &wrong_ath)).await, "invalid_dpop_proof");
    // A proof signed by another key: the token is not bound to it.
    let thief = Dpop::generate().unwrap();
    let stolen = thief.proof("POST", RESOURCE, Some("bound-token"), None).unwrap();
    assert_dpop_error(&send(&s.svc, dpop("bound-token", &stolen)).await, "invalid_token");
    // No proof, two proofs, an oversized proof.
    let no_proof = whoami().header("authorization", "DPoP bound-token").body(body()).unwrap();
    assert_dpop_error(&send(&s.svc, no_proof).await, "invalid_dpop_proof");
    let good = s.key.proof("POST", RESOURCE, Some("bound-token"), None).unwrap();
    let two = whoami()
        .header("authorization", "DPoP bound-token")
        .header("dpop", &good)
        .header("dpop", &good)
        .body(body())
        .unwrap();
    assert_dpop_error(&send(&s.svc, two).await, "invalid_dpop_proof");
    let huge = "a".repeat(9 * 1024);
    assert_eq!(send(&s.svc, dpop("bound-token", &huge)).await.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // An unbound token presented with the DPoP scheme.
    let unbound = s.key.proof("POST", RESOURCE, Some("alice-token"), None).unwrap();
    assert_dpop_error(&send(&s.svc, dpop("alice-token", &unbound)).await, "invalid_token");
    // None of these spent the good proof's jti.
    assert_eq!(send(&s.svc, dpop("bound-token", &good)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn dpop_stale_iat_is_refused() {
    // Keel's client always stamps the current time, so this proof is minted by hand, two minutes old.
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])});
    let idp = Introspection::start(Some(thumbprint(&jwk))).await;
    let svc = service(config(idp.verifier()).dpop(DpopVerifier::new(), false));
    let mint = |iat: u64, jti: &str| {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let ath = B64.encode(ring::digest::digest(&ring::digest::SHA256, b"bound-token"));
        let claims = json!({"jti": jti, "htm": "POST", "htu": RESOURCE, "iat": iat, "ath": ath});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let signature = pair.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(signature.as_ref()))
    };
    assert_dpop_error(&send(&svc, dpop("bound-token", &mint(now() - 120, "old"))).await, "invalid_dpop_proof");
    assert_dpop_error(&send(&svc, dpop("bound-token", &mint(now() + 120, "future"))).await, "invalid_dpop_proof");
    // The same key with a fresh iat passes: only the time was wrong.
    assert_eq!(send(&svc, dpop("bound-token", &mint(now(), "fresh"))).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn dpop_bound_token_as_bearer_is_refused() {
    let s = dpop_setup(DpopVerifier::new(), false).await;
    let refused = send(&s.svc, bearer("bound-token")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let all = challenges(&refused);
    assert!(all[0].starts_with("Bearer ") && all[0].contains("invalid_token"), "{all:?}");
    assert!(all.iter().any(|c| c.starts_with("DPoP algs=\"ES256 RS256 PS256 EdDSA\"")), "{all:?}");
}

#[tokio::test]
async fn dpop_required_refuses_bearer_and_advertises_dpop() {
    let s = dpop_setup(DpopVerifier::new(), true).await;
    assert_dpop_error(&send(&s.svc, bearer("alice-token")).await, "invalid_token");
    let missing = send(&s.svc, whoami().body(body()).unwrap()).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let all = challenges(&missing);
    assert_eq!(all.len(), 1, "only the DPoP challenge when DPoP is required: {all:?}");
    assert!(all[0].starts_with("DPoP algs=") && all[0].contains("resource_metadata=") && !all[0].contains("error="));
    let prm = Request::get(PRM_PATH).header("host", "localhost:3000").body(Full::default()).unwrap();
    let doc: Value = serde_json::from_str(&text(send(&s.svc, prm).await).await).unwrap();
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256", "RS256", "PS256", "EdDSA"]));
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
}

#[tokio::test]
async fn dpop_nonce_round_trip() {
    let s = dpop_setup(DpopVerifier::new().require_nonce(Duration::from_secs(300)), false).await;
    let first = s.key.proof("POST", RESOURCE, Some("bound-token"), None).unwrap();
    let refused = send(&s.svc, dpop("bound-token", &first)).await;
    assert_dpop_error(&refused, "use_dpop_nonce");
    let nonce = refused.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // The client records the nonce as its transport would, and its next proof carries it.
    s.key.set_rs_nonce(&nonce);
    let retry = s.key.proof("POST", RESOURCE, Some("bound-token"), s.key.rs_nonce().as_deref()).unwrap();
    assert_eq!(send(&s.svc, dpop("bound-token", &retry)).await.status(), StatusCode::OK);
    let made_up = s.key.proof("POST", RESOURCE, Some("bound-token"), Some("made-up")).unwrap();
    assert_dpop_error(&send(&s.svc, dpop("bound-token", &made_up)).await, "use_dpop_nonce");
}

// ---------------------------------------------------------------------------------------------------------
// The `protected_server` example with `--introspection-url … --dpop`, over TCP.

async fn over_tcp(port: u16, request: Request<Full<Bytes>>) -> Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

#[tokio::test]
async fn the_example_with_introspection_and_dpop() {
    let key = Dpop::generate().unwrap();
    let idp = Introspection::start(Some(thumbprint(key.jwk()))).await;
    let args = ["--port", "0", "--issuer", ISSUER, "--jwks-url", "https://idp.example/jwks", "--resource", RESOURCE];
    let introspection =
        ["--introspection-url", &idp.url, "--client-id", "rs", "--client-secret", "rs-secret", "--dpop"];
    let example =
        ExampleProcess::start("protected_server", "resource-server", &[&args[..], &introspection[..]].concat()).await;
    let port = example.port;

    // Bearer is refused outright; the challenge is DPoP's.
    let refused = over_tcp(port, bearer("alice-token")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP algs="));
    // The bound token with a proof from Keel's client, checked by introspection.
    let proof = key.proof("POST", RESOURCE, Some("bound-token"), None).unwrap();
    let ok = over_tcp(port, dpop("bound-token", &proof)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&ok.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["result"]["structuredContent"]["sub"], "alice");
    assert_eq!(body["result"]["structuredContent"]["scopes"], json!(["notes:read"]));
    assert!(idp.calls.load(Ordering::SeqCst) >= 1, "the token was introspected");

    example.stop_with_sigterm().await;
}
