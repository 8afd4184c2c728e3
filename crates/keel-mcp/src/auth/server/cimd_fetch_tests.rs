//! The client ID metadata document success path, which needs a real https fetch: documents served on loopback
//! with a certificate made for the test, trusted only by the server under test (a test-build hook, see
//! [`super::AuthorizationServerBuilder::cimd_test_root`]). A whole authorization with the document's URL as
//! the client id succeeds; a document naming another client id, or lacking the requested redirect URI, is
//! refused without any redirect.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{AuthorizationServer, AutoApprove, CimdPolicy, RateLimits};

const ISSUER: &str = "http://127.0.0.1:9000";
const RESOURCE: &str = "http://127.0.0.1:9000/mcp";
const CALLBACK: &str = "http://127.0.0.1:3000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An https server on 127.0.0.1 answering GETs from a fixed table of JSON documents (404 otherwise), one
/// connection at a time; it records the paths asked for and stops when dropped.
struct DocumentServer {
    addr: SocketAddr,
    fetched: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DocumentServer {
    /// Starts the server; `documents` gets its origin (`https://127.0.0.1:PORT`) and names the documents by
    /// path. Returns the server and its certificate (DER), for the client to trust.
    fn start(documents: impl FnOnce(&str) -> Vec<(&'static str, Value)>) -> (Self, Vec<u8>) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert_der = cert.der().to_vec();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
            .unwrap();
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let origin = format!("https://{addr}");
        let table: HashMap<&'static str, String> =
            documents(&origin).into_iter().map(|(path, doc)| (path, doc.to_string())).collect();
        let fetched = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (fetched, stop) = (fetched.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(tcp) = stream {
                        serve(tcp, &config, &table, &fetched);
                    }
                }
            })
        };
        (DocumentServer { addr, fetched, stop, thread: Some(thread) }, cert_der)
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn fetched(&self) -> Vec<String> {
        self.fetched.lock().unwrap().clone()
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request on one TLS connection; every read and write is bounded.
fn serve(
    tcp: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    table: &HashMap<&'static str, String>,
    fetched: &Mutex<Vec<String>>,
) {
    let bound = Some(Duration::from_secs(10));
    if tcp.set_read_timeout(bound).is_err() || tcp.set_write_timeout(bound).is_err() {
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(config.clone()) else { return };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (status, body) = match table.get(path.as_str()) {
        Some(doc) => ("200 OK", doc.as_str()),
        None => ("404 Not Found", "{}"),
    };
    fetched.lock().unwrap().push(path);
    let _ = write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// A client metadata document for `client_id` with `redirect_uris`.
fn document(client_id: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "A CIMD client",
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

fn authorization_server(root: Option<Vec<u8>>) -> AuthorizationServer {
    let builder = AuthorizationServer::builder(ISSUER)
        .resource(RESOURCE)
        .scopes(["notes:read"])
        .consent(AutoApprove::as_user("alice"))
        .rate_limits(RateLimits::off())
        .client_id_metadata_documents(Some(CimdPolicy::allowing_private_addresses()));
    match root {
        Some(root) => builder.cimd_test_root(root),
        None => builder,
    }
    .build()
    .unwrap()
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Value,
}

impl Answer {
    fn query(&self, name: &str) -> Option<String> {
        let location = url::Url::parse(self.location.as_deref()?).ok()?;
        location.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

async fn send(server: &AuthorizationServer, request: Request<String>) -> Answer {
    let response = server.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        location: parts.headers.get("location").and_then(|l| l.to_str().ok()).map(str::to_owned),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn authorize(server: &AuthorizationServer, client_id: &str) -> Answer {
    let query = form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
        ("scope", "notes:read"),
    ]);
    send(server, Request::get(format!("/authorize?{query}")).body(String::new()).unwrap()).await
}

#[tokio::test]
async fn a_client_id_metadata_document_over_https_authorizes_its_client() {
    let (documents, root) = DocumentServer::start(|origin| {
        let good = format!("{origin}/good.json");
        vec![
            ("/good.json", document(&good, &[CALLBACK])),
            // Names another URL as its client id: a document is only its own URL's.
            ("/other-id.json", document(&good, &[CALLBACK])),
            ("/other-redirect.json", document(&format!("{origin}/other-redirect.json"), &["http://127.0.0.1:3000/x"])),
        ]
    });
    let client_id = documents.url("/good.json");
    let server = authorization_server(Some(root));

    let answer = authorize(&server, &client_id).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{:?}", answer.body);
    assert!(answer.location.as_deref().unwrap().starts_with(CALLBACK), "{:?}", answer.location);
    assert_eq!(answer.query("iss").as_deref(), Some(ISSUER));
    assert_eq!(answer.query("state").as_deref(), Some("st4te"));
    let code = answer.query("code").expect("a code");
    let token = send(
        &server,
        Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ]))
            .unwrap(),
    )
    .await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    let payload = token.body["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!((claims["client_id"].as_str(), claims["aud"].as_str()), (Some(client_id.as_str()), Some(RESOURCE)));
    assert_eq!(documents.fetched(), ["/good.json"], "fetched once: the token request used the cached document");

    // A document is only its own URL's client: one naming another client id is refused.
    let answer = authorize(&server, &documents.url("/other-id.json")).await;
    assert_eq!((answer.status, answer.body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert!(answer.body["error_description"].as_str().unwrap().contains("client_id"), "{}", answer.body);
    assert!(answer.location.is_none());
    // A redirect URI the document does not list is not trusted: answered here, never redirected to.
    let answer = authorize(&server, &documents.url("/other-redirect.json")).await;
    assert_eq!((answer.status, answer.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    assert!(answer.location.is_none());

    // The same document, fetched by a server without the test's certificate: the TLS check refuses it.
    let plain = authorization_server(None);
    let answer = authorize(&plain, &client_id).await;
    assert_eq!((answer.status, answer.body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert!(answer.location.is_none());
}
