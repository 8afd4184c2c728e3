//! What a caller of the HTTP client gets when things go wrong, against hand-written loopback servers: an
//! unreachable server is `Error::Transport`, a refusal is `Error::Unauthorized` with the challenge, in both
//! eras and on the HTTP+SSE fallback path; redirects are never followed (no credential, session or proof
//! header reaches another URL); the connect timeout is configurable and a client can be brought along.
#![cfg(feature = "http-client")]

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

mod raw_http;
use raw_http::{HttpRequest, Reply, Scripted, answer};

use keel_mcp::Error;
use keel_mcp::auth::{BearerToken, Challenge};
use keel_mcp::client::Client;
use keel_mcp::client::http::{HttpTransport, reqwest};
use keel_mcp::protocol::{Implementation, ProtocolVersion};
use serde_json::json;

const CHALLENGE_401: &str = r#"Bearer error="invalid_token", error_description="log in", scope="notes:read", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp""#;
const CHALLENGE_403: &str = r#"Bearer error="insufficient_scope", scope="notes:read notes:write""#;

fn builder() -> keel_mcp::client::ClientBuilder {
    Client::builder(Implementation::new("t", "1"))
}

fn legacy_only() -> keel_mcp::client::ClientBuilder {
    builder().protocol_versions([ProtocolVersion::V2025_11_25])
}

/// Bounds every connect and call of these tests.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.expect("bounded in time")
}

/// A modern server: answers `server/discover`, and `tools/call` with `call`.
fn modern(
    call: impl Fn(&HttpRequest) -> Reply + Send + Sync + 'static,
) -> impl Fn(&HttpRequest) -> Reply + Send + Sync {
    move |request| {
        let message = request.json();
        match message["method"].as_str() {
            Some("server/discover") => Reply::json(json!({"jsonrpc": "2.0", "id": message["id"], "result": {
                "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}, "resultType": "complete"}})),
            _ => call(request),
        }
    }
}

/// A legacy (2025-11-25) server with a session and no standalone stream; `tools/call` gets `call`.
fn legacy(
    call: impl Fn(&HttpRequest) -> Reply + Send + Sync + 'static,
) -> impl Fn(&HttpRequest) -> Reply + Send + Sync {
    move |request| {
        let message = request.json();
        if request.method == "GET" {
            return Reply::new("405 Method Not Allowed");
        }
        match message["method"].as_str() {
            Some("initialize") => Reply::json(json!({"jsonrpc": "2.0", "id": message["id"], "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "old", "version": "1"}}}))
            .header("mcp-session-id", "session-1"),
            Some("notifications/initialized") => Reply::new("202 Accepted"),
            Some("server/discover") => Reply::new("400 Bad Request"),
            _ => call(request),
        }
    }
}

fn refuse(status: &'static str, challenge: &'static str) -> impl Fn(&HttpRequest) -> Reply + Send + Sync {
    move |_| {
        Reply::new(status)
            .header("www-authenticate", challenge)
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"no"}}"#.into())
    }
}

fn transport_kind(result: Result<impl std::fmt::Debug, Error>) -> ErrorKind {
    match result {
        Err(Error::Transport(e)) => e.kind(),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

fn challenge(result: Result<impl std::fmt::Debug, Error>) -> Challenge {
    match result {
        Err(Error::Unauthorized(challenge)) => *challenge,
        other => panic!("expected Error::Unauthorized, got {other:?}"),
    }
}

async fn refused_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn a_refused_port_is_a_transport_error_in_both_eras() {
    let url = refused_url().await;
    let modern = bounded(builder().connect(HttpTransport::new(&url).unwrap())).await;
    assert_eq!(transport_kind(modern), ErrorKind::ConnectionRefused);
    let legacy = bounded(legacy_only().connect(HttpTransport::new(&url).unwrap())).await;
    let error = legacy.unwrap_err();
    assert!(error.to_string().contains("could not connect"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    assert!(matches!(&error, Error::Transport(e) if e.kind() == ErrorKind::ConnectionRefused), "{error:?}");
}

#[tokio::test]
async fn a_server_gone_mid_session_is_a_transport_error_in_both_eras() {
    // Modern: one connection for the probe, then the port refuses.
    let server = Scripted::start(1, modern(|_| Reply::new("500 Internal Server Error"))).await;
    let client =
        bounded(builder().connect(HttpTransport::new(&format!("{}/mcp", server.base)).unwrap())).await.unwrap();
    assert_eq!(transport_kind(bounded(client.call_tool("add", json!({}))).await), ErrorKind::ConnectionRefused);
    client.close().await;

    // Legacy: initialize, initialized and the refused GET stream; then the port refuses.
    let server = Scripted::start(3, legacy(|_| Reply::new("500 Internal Server Error"))).await;
    let transport = HttpTransport::new(&format!("{}/mcp", server.base)).unwrap();
    let client = bounded(legacy_only().connect(transport)).await.unwrap();
    assert_eq!(transport_kind(bounded(client.call_tool("add", json!({}))).await), ErrorKind::ConnectionRefused);
    client.close().await;
}

#[tokio::test]
async fn a_refused_http_sse_fallback_is_a_transport_error() {
    // The probe and initialize get 405; the HTTP+SSE GET that follows finds the port closed.
    let server = Scripted::start(2, |_| Reply::new("405 Method Not Allowed")).await;
    let result = bounded(builder().connect(HttpTransport::new(&format!("{}/mcp", server.base)).unwrap())).await;
    assert_eq!(transport_kind(result), ErrorKind::ConnectionRefused);
    assert_eq!(server.log(), ["POST /mcp", "POST /mcp"]);
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_a_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let result = bounded(builder().connect(HttpTransport::new(&url).unwrap())).await;
    assert!(matches!(result, Err(Error::Transport(_))), "{result:?}");
}

#[tokio::test]
async fn a_tls_failure_is_a_transport_error() {
    // An https URL to a server that speaks plain HTTP: the handshake fails.
    let server = Scripted::start(10, |_| Reply::new("200 OK")).await;
    let url = format!("{}/mcp", server.base.replace("http://", "https://"));
    let error = bounded(builder().connect(HttpTransport::new(&url).unwrap())).await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[tokio::test]
async fn a_401_is_unauthorized_with_the_challenge_in_both_eras() {
    let server = Scripted::start(10, refuse("401 Unauthorized", CHALLENGE_401)).await;
    let url = format!("{}/mcp", server.base);
    let c = challenge(bounded(builder().connect(HttpTransport::new(&url).unwrap())).await);
    assert_eq!(c.status, 401);
    assert_eq!(c.scheme.as_deref(), Some("Bearer"));
    assert_eq!(c.error.as_deref(), Some("invalid_token"));
    assert_eq!(c.scope.as_deref(), Some("notes:read"));
    assert_eq!(c.resource_metadata.as_deref(), Some("http://127.0.0.1/.well-known/oauth-protected-resource/mcp"));
    assert!(!c.is_forbidden());
    // "Log in" is known after the probe: no fallback to initialize or HTTP+SSE follows.
    assert_eq!(server.log(), ["POST /mcp"]);

    let c = challenge(bounded(legacy_only().connect(HttpTransport::new(&url).unwrap())).await);
    assert_eq!((c.status, c.error.as_deref()), (401, Some("invalid_token")));
}

#[tokio::test]
async fn a_403_mid_session_is_unauthorized_with_the_challenge_in_both_eras() {
    let server = Scripted::start(10, modern(refuse("403 Forbidden", CHALLENGE_403))).await;
    let client =
        bounded(builder().connect(HttpTransport::new(&format!("{}/mcp", server.base)).unwrap())).await.unwrap();
    let c = challenge(bounded(client.call_tool("write", json!({}))).await);
    assert!(c.is_forbidden() && c.is_insufficient_scope());
    assert_eq!(c.scope.as_deref(), Some("notes:read notes:write"));
    client.close().await;

    let server = Scripted::start(10, legacy(refuse("403 Forbidden", CHALLENGE_403))).await;
    let client =
        bounded(legacy_only().connect(HttpTransport::new(&format!("{}/mcp", server.base)).unwrap())).await.unwrap();
    let c = challenge(bounded(client.call_tool("write", json!({}))).await);
    assert!(c.is_insufficient_scope());
    client.close().await;
}

#[tokio::test]
async fn a_refused_http_sse_fallback_is_unauthorized() {
    let server = Scripted::start(10, |request: &HttpRequest| match request.method.as_str() {
        "GET" => Reply::new("401 Unauthorized").header("www-authenticate", CHALLENGE_401),
        _ => Reply::new("405 Method Not Allowed"),
    })
    .await;
    let c = challenge(bounded(builder().connect(HttpTransport::new(&format!("{}/mcp", server.base)).unwrap())).await);
    assert_eq!(c.resource_metadata.as_deref(), Some("http://127.0.0.1/.well-known/oauth-protected-resource/mcp"));
    assert_eq!(server.log(), ["POST /mcp", "POST /mcp", "GET /mcp"]);
}

#[tokio::test]
async fn credentials_that_stay_refused_are_unauthorized() {
    let server = Scripted::start(10, refuse("401 Unauthorized", CHALLENGE_401)).await;
    let transport =
        HttpTransport::new(&format!("{}/mcp", server.base)).unwrap().auth(Arc::new(BearerToken::new("t0k")));
    let c = challenge(bounded(builder().connect(transport)).await);
    assert_eq!(c.error.as_deref(), Some("invalid_token"));
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen[0].headers.get("authorization").map(String::as_str), Some("Bearer t0k"));
}

/// Every request of a redirecting server is answered with a redirect to `location`; `target` records
/// whatever reaches it.
async fn redirecting(status: &'static str, location: String) -> Scripted {
    Scripted::start(10, move |_| Reply::new(status).header("location", &location)).await
}

#[tokio::test]
async fn redirects_of_posts_are_not_followed_to_another_host() {
    let target = Scripted::start(10, |_| Reply::new("200 OK")).await;
    // `localhost` is another host than 127.0.0.1 for reqwest's header stripping.
    let elsewhere = target.base.replace("127.0.0.1", "localhost");
    for status in ["307 Temporary Redirect", "308 Permanent Redirect"] {
        let server = redirecting(status, format!("{elsewhere}/mcp")).await;
        let transport = HttpTransport::new(&format!("{}/mcp", server.base))
            .unwrap()
            .auth(Arc::new(BearerToken::new("secret")))
            .header("x-api-key", "k")
            .unwrap();
        let error = bounded(builder().connect(transport)).await.unwrap_err();
        assert!(matches!(&error, Error::Protocol(why) if why.contains("redirects to")), "{error:?}");
        assert!(!server.log().is_empty());
    }
    assert!(target.log().is_empty(), "a redirect was followed: {:?}", target.log());
}

#[tokio::test]
async fn redirects_in_a_session_are_not_followed_and_carry_nothing() {
    // A legacy session whose tools/call and GET stream redirect (same host, another path).
    let server = Scripted::start(20, |request: &HttpRequest| {
        let message = request.json();
        match (request.method.as_str(), request.path.as_str(), message["method"].as_str()) {
            (_, "/elsewhere", _) => Reply::new("200 OK"),
            ("GET", _, _) => Reply::new("302 Found").header("location", "/elsewhere"),
            ("POST", _, Some("initialize")) => Reply::json(
                serde_json::from_str::<serde_json::Value>(&answer(
                    &message,
                    json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                       "serverInfo": {"name": "old", "version": "1"}}),
                ))
                .unwrap(),
            )
            .header("mcp-session-id", "session-1"),
            ("POST", _, Some("notifications/initialized")) => Reply::new("202 Accepted"),
            _ => Reply::new("307 Temporary Redirect").header("location", "/elsewhere"),
        }
    })
    .await;
    let transport =
        HttpTransport::new(&format!("{}/mcp", server.base)).unwrap().auth(Arc::new(BearerToken::new("secret")));
    let client = bounded(legacy_only().connect(transport)).await.unwrap();
    let error = bounded(client.call_tool("add", json!({}))).await.unwrap_err();
    assert!(matches!(&error, Error::Protocol(why) if why.contains("/elsewhere")), "{error:?}");
    client.close().await;
    let log = server.log();
    assert!(log.iter().any(|l| l == "GET /mcp"), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("/elsewhere")), "a redirect was followed: {log:?}");
}

#[tokio::test]
async fn a_brought_client_that_follows_redirects_gets_no_answer_through_them() {
    // reqwest's default policy follows the 307 to /other, which answers; Keel refuses that answer.
    let server = Scripted::start(20, modern(|_| Reply::new("500 Internal Server Error"))).await;
    let front = redirecting("307 Temporary Redirect", format!("{}/mcp", server.base)).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build().unwrap();
    let transport = HttpTransport::with_client(&format!("{}/mcp", front.base), http).unwrap();
    let error = bounded(builder().connect(transport)).await.unwrap_err();
    assert!(matches!(&error, Error::Protocol(why) if why.contains("followed a redirect")), "{error:?}");

    // Handing Keel the builder instead: the redirect is not followed at all.
    let front = redirecting("307 Temporary Redirect", format!("{}/other", server.base)).await;
    let transport =
        HttpTransport::with_client_builder(&format!("{}/mcp", front.base), reqwest::Client::builder()).unwrap();
    let error = bounded(builder().connect(transport)).await.unwrap_err();
    assert!(matches!(&error, Error::Protocol(why) if why.contains("redirects to")), "{error:?}");
    assert!(!server.log().iter().any(|l| l.contains("/other")));
}

#[tokio::test]
async fn a_brought_client_is_used() {
    let server = Scripted::start(
        10,
        modern(|request| {
            Reply::json(
                serde_json::from_str(&answer(&request.json(), json!({"content": [], "resultType": "complete"})))
                    .unwrap(),
            )
        }),
    )
    .await;
    let http = reqwest::Client::builder().user_agent("notes-app/1.0");
    let transport = HttpTransport::with_client_builder(&format!("{}/mcp", server.base), http).unwrap();
    let client = bounded(builder().connect(transport)).await.unwrap();
    bounded(client.call_tool("add", json!({}))).await.unwrap();
    client.close().await;
    let seen = server.seen.lock().unwrap();
    assert!(seen.iter().all(|r| r.headers.get("user-agent").map(String::as_str) == Some("notes-app/1.0")));
}

#[tokio::test]
async fn the_connect_timeout_is_configurable() {
    // A listener that never accepts, its backlog filled: further connection attempts hang in SYN.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the backlog never filled");
    }
    let transport =
        HttpTransport::new(&format!("http://{addr}/mcp")).unwrap().connect_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        builder().probe_timeout(Duration::from_secs(20)).connect(transport),
    )
    .await
    .expect("the connect timeout applies, not the default 30 s");
    assert_eq!(transport_kind(result), ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(listener);
}
