//! The user-facing step of the authorization code flow: send the user agent to the authorization URL and
//! bring back the authorization response. [`LoopbackRedirect`] opens the browser and listens on
//! `127.0.0.1`; [`HeadlessRedirect`] GETs the URL itself and reads the redirect's `Location` (for
//! authorization servers that answer at once, like the conformance suite's).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::error::AuthError;
use super::http::OAuthHttp;
use super::pkce::constant_time_eq;
use crate::engine::BoxFuture;

/// The parameters of an authorization response (RFC 6749 §4.1.2, RFC 9207), form-decoded, not normalised.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` echoed back.
    pub state: Option<String>,
    /// RFC 9207 issuer identifier.
    pub iss: Option<String>,
    /// OAuth error code, when the server refused.
    pub error: Option<String>,
}

impl std::fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("code", &self.code.as_ref().map(|_| "…"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish()
    }
}

impl AuthorizationResponse {
    /// Reads the query string of a redirect URL (or a bare query).
    pub fn from_query(query: &str) -> Self {
        let mut r = AuthorizationResponse::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "code" => &mut r.code,
                "state" => &mut r.state,
                "iss" => &mut r.iss,
                "error" => &mut r.error,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        r
    }
}

/// Sends the user to the authorization server and returns what came back to the redirect URI.
pub trait RedirectStep: Send + Sync + 'static {
    /// The redirect URI to register and send.
    fn redirect_uri(&self) -> String;
    /// Runs the step for `authorization_url` (already checked to be https or loopback).
    fn authorize(&self, authorization_url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>>;
    /// Called before each authorization with the redirect URIs registered for the client (empty when
    /// unknown). A step that can choose its redirect URI switches to a registered one when it can, since many
    /// authorization servers match redirect URIs exactly. Returns the redirect URI the next
    /// [`authorize`](Self::authorize) uses; the default keeps [`redirect_uri`](Self::redirect_uri).
    fn prepare(&self, registered: &[String]) -> BoxFuture<Result<String, AuthError>> {
        let _ = registered;
        Box::pin(std::future::ready(Ok(self.redirect_uri())))
    }
}

/// GETs the authorization URL without following the redirect and reads the response from `Location`.
#[derive(Clone, Debug)]
pub struct HeadlessRedirect {
    redirect_uri: String,
    http: OAuthHttp,
}

impl HeadlessRedirect {
    /// A headless step that registers `redirect_uri` (e.g. `http://localhost:3000/callback`).
    pub fn new(redirect_uri: impl Into<String>) -> Result<Self, AuthError> {
        Ok(HeadlessRedirect { redirect_uri: redirect_uri.into(), http: OAuthHttp::new()? })
    }
}

impl RedirectStep for HeadlessRedirect {
    fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    fn authorize(&self, authorization_url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>> {
        let http = self.http.clone();
        Box::pin(async move {
            let (status, location) = http.get_location(&authorization_url).await?;
            let location = location.filter(|_| (300..400).contains(&status)).ok_or_else(|| {
                AuthError::Redirect(format!("the authorization endpoint answered {status} without a redirect"))
            })?;
            let base = url::Url::parse(&authorization_url).map_err(|e| AuthError::Redirect(e.to_string()))?;
            let target = base.join(&location).map_err(|e| AuthError::Redirect(e.to_string()))?;
            Ok(AuthorizationResponse::from_query(target.query().unwrap_or("")))
        })
    }
}

/// Connections the loopback listener serves at once; more wait in the accept queue.
const MAX_CALLBACK_CONNECTIONS: usize = 16;

/// How long one connection to the loopback listener may take to send its request head.
const CALLBACK_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Receives the callback on a loopback listener (`http://127.0.0.1:<port>/callback`) after sending the user
/// to the authorization URL: in the default browser, or — for CLIs, CI and machines without one — by
/// printing it ([`without_browser`](Self::without_browser)) or handing it to a hook
/// ([`on_authorization_url`](Self::on_authorization_url)).
///
/// The listener serves several connections at once, each with a read timeout (a browser's idle
/// preconnection does not stall it), and ignores callbacks whose `state` is not the one of the login in
/// progress (a forged `/callback?error=access_denied` does not end it). When the client's registration
/// names another loopback port and that port is free, the listener moves there before the authorization.
pub struct LoopbackRedirect {
    bound: std::sync::Mutex<Bound>,
    timeout: Duration,
    show: Show,
}

struct Bound {
    /// `None` once an authorization consumed it; the next one binds the port again.
    listener: Option<std::net::TcpListener>,
    redirect_uri: String,
}

type UrlHook = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// How the user gets to the authorization URL.
#[derive(Clone)]
enum Show {
    Browser,
    Print,
    Hook(UrlHook),
}

impl std::fmt::Debug for LoopbackRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackRedirect").field("redirect_uri", &self.redirect_uri()).finish()
    }
}

fn bind_loopback(port: u16) -> Result<(std::net::TcpListener, String), AuthError> {
    let bind = || -> std::io::Result<_> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        Ok((listener, format!("http://127.0.0.1:{port}/callback")))
    };
    bind().map_err(|e| AuthError::Redirect(format!("cannot listen on 127.0.0.1:{port} for the callback: {e}")))
}

impl LoopbackRedirect {
    /// Listens on `127.0.0.1:port` (0 picks a free port). Waits up to five minutes for the user.
    pub async fn bind(port: u16) -> Result<Self, AuthError> {
        let (listener, redirect_uri) = bind_loopback(port)?;
        Ok(LoopbackRedirect {
            bound: std::sync::Mutex::new(Bound { listener: Some(listener), redirect_uri }),
            timeout: Duration::from_secs(300),
            show: Show::Browser,
        })
    }

    /// Opens no browser: prints `Open this URL in your browser to authorize:` and, on the next line, the URL
    /// alone to stderr, then waits for the callback.
    pub fn without_browser(mut self) -> Self {
        self.show = Show::Print;
        self
    }

    /// Opens no browser and prints nothing: `hook` receives the authorization URL (to show it, send it
    /// elsewhere, or drive a test user agent), then the listener waits for the callback.
    pub fn on_authorization_url(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.show = Show::Hook(std::sync::Arc::new(hook));
        self
    }

    /// How long to wait for the callback.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn bound(&self) -> std::sync::MutexGuard<'_, Bound> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Opens `url` in the default browser without a shell (the URL is one argument, never interpreted).
pub fn open_browser(url: &str) -> std::io::Result<()> {
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.spawn().map(|_| ())
}

const CALLBACK_PAGE: &str =
    "<!doctype html><title>Signed in</title><p>You can close this window and return to the application.</p>";

/// The port of a redirect URI this listener could serve (`http://127.0.0.1:<port>/callback`).
fn loopback_port(uri: &str) -> Option<u16> {
    let u = url::Url::parse(uri).ok()?;
    let ours = u.scheme() == "http"
        && u.host() == Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
        && u.path() == "/callback"
        && u.query().is_none();
    ours.then(|| u.port()).flatten()
}

impl RedirectStep for LoopbackRedirect {
    fn redirect_uri(&self) -> String {
        self.bound().redirect_uri.clone()
    }

    fn prepare(&self, registered: &[String]) -> BoxFuture<Result<String, AuthError>> {
        let mut bound = self.bound();
        if !registered.is_empty() && !registered.contains(&bound.redirect_uri) {
            // The first registered port that is free now; if none is, keep ours (the caller registers again).
            if let Some((listener, uri)) =
                registered.iter().filter_map(|r| loopback_port(r)).find_map(|p| bind_loopback(p).ok())
            {
                tracing::debug!(redirect_uri = %uri, "moving the loopback listener to the registered redirect URI");
                *bound = Bound { listener: Some(listener), redirect_uri: uri };
            }
        }
        Box::pin(std::future::ready(Ok(bound.redirect_uri.clone())))
    }

    fn authorize(&self, authorization_url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>> {
        let (listener, redirect_uri) = {
            let mut bound = self.bound();
            (bound.listener.take(), bound.redirect_uri.clone())
        };
        let (timeout, show) = (self.timeout, self.show.clone());
        Box::pin(async move {
            let listener = match listener {
                Some(l) => l,
                // A previous flow consumed the listener: bind the same port again.
                None => bind_loopback(loopback_port(&redirect_uri).unwrap_or(0))?.0,
            };
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| AuthError::Redirect(format!("loopback listener: {e}")))?;
            let state = url::Url::parse(&authorization_url)
                .ok()
                .and_then(|u| u.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()));
            let print = || eprintln!("Open this URL in your browser to authorize:\n{authorization_url}");
            match &show {
                Show::Browser => {
                    if open_browser(&authorization_url).is_err() {
                        print();
                    }
                }
                Show::Print => print(),
                Show::Hook(hook) => hook(&authorization_url),
            }
            tokio::time::timeout(timeout, accept_callback(listener, state))
                .await
                .map_err(|_| AuthError::Redirect("no authorization callback in time".into()))?
        })
    }
}

/// Serves connections until one brings the callback for `state` (any callback when `state` is `None`).
async fn accept_callback(
    listener: tokio::net::TcpListener,
    state: Option<String>,
) -> Result<AuthorizationResponse, AuthError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    // Dropped on return: the connections still open are aborted with it.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < MAX_CALLBACK_CONNECTIONS => {
                let (sock, _) = accepted?;
                let (tx, state) = (tx.clone(), state.clone());
                connections.spawn(async move {
                    if let Ok(Some(response)) =
                        tokio::time::timeout(CALLBACK_READ_TIMEOUT, serve_callback(sock, state.as_deref())).await
                    {
                        let _ = tx.send(response).await;
                    }
                });
            }
            Some(response) = rx.recv() => return Ok(response),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads one request; answers it; returns the authorization response when it is the awaited callback.
async fn serve_callback(mut sock: tokio::net::TcpStream, state: Option<&str>) -> Option<AuthorizationResponse> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    while len < buf.len() {
        let n = sock.read(buf.get_mut(len..)?).await.ok()?;
        if n == 0 {
            break;
        }
        len += n;
        if buf.get(..len)?.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(buf.get(..len)?);
    let target = head.lines().next().and_then(|l| l.strip_prefix("GET ")).and_then(|l| l.split(' ').next());
    let Some(target) = target.filter(|t| *t == "/callback" || t.starts_with("/callback?")) else {
        let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return None;
    };
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let response = AuthorizationResponse::from_query(query);
    let ours = match (state, response.state.as_deref()) {
        (Some(expected), Some(got)) => constant_time_eq(expected, got),
        (Some(_), None) => false,
        (None, _) => true,
    };
    if !ours {
        // Not the login in progress (forged, or a stale tab): refuse it and keep waiting for the real one.
        let body = "This response does not belong to the sign-in in progress.";
        let refusal = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(refusal.as_bytes()).await;
        return None;
    }
    let page = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{CALLBACK_PAGE}",
        CALLBACK_PAGE.len()
    );
    let _ = sock.write_all(page.as_bytes()).await;
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_is_form_decoded_not_normalised() {
        let r = AuthorizationResponse::from_query("code=abc&state=s%2B1&iss=http%3A%2F%2Flocalhost%3A1%2F&x=y");
        assert_eq!(r.code.as_deref(), Some("abc"));
        assert_eq!(r.state.as_deref(), Some("s+1"));
        assert_eq!(r.iss.as_deref(), Some("http://localhost:1/"));
        assert!(!format!("{r:?}").contains("abc"));
    }

    #[tokio::test]
    async fn loopback_receives_callback() {
        let step = LoopbackRedirect::bind(0).await.unwrap().without_browser();
        let uri = step.redirect_uri();
        let fut = step.authorize("https://as.example/authorize".into());
        let client = tokio::spawn(async move {
            let addr = uri.trim_start_matches("http://").trim_end_matches("/callback").to_owned();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /callback?code=c1&state=st&iss=https%3A%2F%2Fas.example HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        });
        let r = fut.await.unwrap();
        assert_eq!(
            (r.code.as_deref(), r.state.as_deref(), r.iss.as_deref()),
            (Some("c1"), Some("st"), Some("https://as.example"))
        );
        assert!(client.await.unwrap().starts_with("HTTP/1.1 200"));
    }

    async fn send(addr: &str, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn an_idle_connection_does_not_stall_the_listener() {
        let step = LoopbackRedirect::bind(0).await.unwrap().on_authorization_url(|_| {});
        let addr = step.redirect_uri().trim_start_matches("http://").trim_end_matches("/callback").to_owned();
        let login = step.authorize("https://as.example/authorize?state=s1".into());
        // A browser's preconnection that never sends anything, then the real callback.
        let _idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let callback = tokio::spawn(async move { send(&addr, "GET /callback?code=c&state=s1 HTTP/1.1\r\n\r\n").await });
        let r = tokio::time::timeout(Duration::from_secs(5), login).await.expect("not stalled").unwrap();
        assert_eq!(r.code.as_deref(), Some("c"));
        assert!(callback.await.unwrap().starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn callbacks_for_another_state_are_ignored() {
        let step = LoopbackRedirect::bind(0).await.unwrap().on_authorization_url(|_| {});
        let addr = step.redirect_uri().trim_start_matches("http://").trim_end_matches("/callback").to_owned();
        let login = tokio::spawn(step.authorize("https://as.example/authorize?state=s1".into()));
        // A forged denial without state, and one with another state: refused, and the login goes on.
        let forged = send(&addr, "GET /callback?error=access_denied HTTP/1.1\r\n\r\n").await;
        assert!(forged.starts_with("HTTP/1.1 400"), "{forged}");
        let stale = send(&addr, "GET /callback?error=access_denied&state=old HTTP/1.1\r\n\r\n").await;
        assert!(stale.starts_with("HTTP/1.1 400"), "{stale}");
        assert!(!login.is_finished());
        let ok = send(&addr, "GET /callback?code=c&state=s1 HTTP/1.1\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"));
        let r = tokio::time::timeout(Duration::from_secs(5), login).await.unwrap().unwrap().unwrap();
        assert_eq!((r.code.as_deref(), r.error.as_deref()), (Some("c"), None));
    }

    #[tokio::test]
    async fn prepare_moves_to_a_free_registered_port() {
        let step = LoopbackRedirect::bind(0).await.unwrap();
        let other = LoopbackRedirect::bind(0).await.unwrap();
        let registered = other.redirect_uri();
        drop(other);
        assert_eq!(step.prepare(std::slice::from_ref(&registered)).await.unwrap(), registered);
        assert_eq!(step.redirect_uri(), registered);
        // Nothing usable registered (another host, another path): the step keeps its own.
        let kept = step.prepare(&["http://localhost:1/callback".into(), "http://127.0.0.1:1/cb".into()]).await;
        assert_eq!(kept.unwrap(), registered);
    }
}
