//! The consent page in a real browser: headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`) reads the page, approves, and denies. A screenshot of the page is kept in
//! `$CARGO_TARGET_TMPDIR/consent-page.png`.
//!
//! Without `chromedriver` on the machine the test says so and passes, unless `KEEL_REQUIRE_BROWSER=1`.

use std::convert::Infallible;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keel_mcp::auth::server::{AuthorizationServer, Client, ConsentPage};
use keel_mcp::server::http::ResponseBody;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const BOUND: Duration = Duration::from_secs(30);
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(names: &[&str]) -> Option<String> {
    names.iter().map(|n| format!("/usr/bin/{n}")).find(|p| std::path::Path::new(p).exists())
}

/// The authorization server and a `/callback` page on one loopback port.
async fn serve() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = AuthorizationServer::builder(&origin)
        .resource(format!("{origin}/mcp"))
        .scopes(["notes:read", "notes:write"])
        .consent(ConsentPage::single_user("owner").unwrap())
        .build()
        .unwrap();
    server
        .register_client(Client::public("browser-test", vec![format!("{origin}/callback")]).name("Notes CLI"))
        .unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let server = server.clone();
                    async move {
                        if request.uri().path() == "/callback" {
                            let html = "<!doctype html><html lang=\"en\"><title>Done</title><p id=\"done\">Back in the app.</p>";
                            return Ok::<_, Infallible>(Response::new(ResponseBody::full(html)));
                        }
                        let Ok(response) = server.oneshot(request).await;
                        Ok(response)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (origin, task)
}

/// A tiny W3C WebDriver client.
struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value["value"].get("error").is_none(), "WebDriver {path}: {text}");
        value["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn text_of(&self, session: &str, css: &str) -> String {
        let element =
            self.post(&format!("/session/{session}/element"), json!({"using": "css selector", "value": css})).await;
        let id = element.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_owned();
        self.get(&format!("/session/{session}/element/{id}/text")).await.as_str().unwrap_or("").to_owned()
    }

    async fn click(&self, session: &str, css: &str) {
        let element =
            self.post(&format!("/session/{session}/element"), json!({"using": "css selector", "value": css})).await;
        let id = element.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_owned();
        self.post(&format!("/session/{session}/element/{id}/click"), json!({})).await;
    }

    /// Waits (bounded) until the page's URL starts with `prefix`.
    async fn url_starting_with(&self, session: &str, prefix: &str) -> url::Url {
        let started = Instant::now();
        loop {
            let current = self.get(&format!("/session/{session}/url")).await.as_str().unwrap_or("").to_owned();
            if current.starts_with(prefix) {
                return url::Url::parse(&current).unwrap();
            }
            assert!(started.elapsed() < BOUND, "the browser never reached {prefix} (at {current})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn authorize_url(origin: &str, state: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", "browser-test"),
            ("redirect_uri", &format!("{origin}/callback")),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("scope", "notes:read offline_access"),
            ("state", state),
        ])
        .finish();
    format!("{origin}/authorize?{query}")
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn consent_page_in_headless_chromium_approves_and_denies() {
    let (Some(driver_bin), Some(chromium)) = (find(&["chromedriver"]), find(&["chromium", "chromium-browser"])) else {
        assert!(
            std::env::var("KEEL_REQUIRE_BROWSER").is_err(),
            "KEEL_REQUIRE_BROWSER is set but chromium-driver is missing"
        );
        eprintln!("skipped: install Debian's chromium and chromium-driver to run the consent page in a browser");
        return;
    };
    let (origin, server) = serve().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _driver_process = Running(
        Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver = Driver { http: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}") };
    let started = Instant::now();
    while driver.http.get(format!("{}/status", driver.base)).send().await.is_err() {
        assert!(started.elapsed() < BOUND, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = std::env::temp_dir().join(format!("keel-consent-chromium-{}", std::process::id()));
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=900,700",
    ];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
    }}});
    let session = driver.post("/session", capabilities).await["sessionId"].as_str().unwrap().to_owned();

    // The page: who asks, where the answer goes, what for.
    driver.post(&format!("/session/{session}/url"), json!({"url": authorize_url(&origin, "s1")})).await;
    let title = driver.get(&format!("/session/{session}/title")).await;
    assert_eq!(title, "Allow Notes CLI?");
    assert_eq!(driver.text_of(&session, "#client").await, "Notes CLI");
    let redirect_host = origin.trim_start_matches("http://");
    assert_eq!(driver.text_of(&session, "#redirect-host").await, redirect_host);
    let scopes = driver.text_of(&session, "#scopes").await;
    assert!(scopes.contains("notes:read") && scopes.contains("offline_access"), "{scopes}");
    let shot = driver.get(&format!("/session/{session}/screenshot")).await;
    let png = STANDARD.decode(shot.as_str().unwrap()).unwrap();
    let artefact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("consent-page.png");
    std::fs::write(&artefact, &png).unwrap();
    eprintln!("screenshot: {}", artefact.display());

    // Approve: back at the client with a code, the state and the issuer.
    driver.click(&session, "#approve").await;
    let back = driver.url_starting_with(&session, &format!("{origin}/callback")).await;
    assert!(param(&back, "code").is_some(), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("s1"));
    assert_eq!(param(&back, "iss").as_deref(), Some(origin.as_str()));

    // Deny: access_denied, no code.
    driver.post(&format!("/session/{session}/url"), json!({"url": authorize_url(&origin, "s2")})).await;
    driver.click(&session, "#deny").await;
    let back = driver.url_starting_with(&session, &format!("{origin}/callback")).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some("s2"));
    assert!(param(&back, "code").is_none());

    driver.call(reqwest::Method::DELETE, &format!("/session/{session}"), None).await;
    server.abort();
    let _ = std::fs::remove_dir_all(profile);
}
