//! The user-facing step of the authorization code flow: send the user agent to the authorization URL and
//! bring back the authorization response. [`LoopbackRedirect`] opens the browser and listens on
//! `127.0.0.1`; [`HeadlessRedirect`] GETs the URL itself and reads the redirect's `Location` (for
//! authorization servers that answer at once, like the conformance suite's).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::error::AuthError;
use super::http::OAuthHttp;
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
    /// The redirect URI to register and send (fixed for the life of the value).
    fn redirect_uri(&self) -> String;
    /// Runs the step for `authorization_url` (already checked to be https or loopback).
    fn authorize(&self, authorization_url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>>;
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

/// Opens the user's browser and receives the callback on a loopback listener (`http://127.0.0.1:<port>/callback`).
pub struct LoopbackRedirect {
    listener: std::sync::Mutex<Option<tokio::net::TcpListener>>,
    redirect_uri: String,
    timeout: Duration,
    open_browser: bool,
}

impl std::fmt::Debug for LoopbackRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackRedirect").field("redirect_uri", &self.redirect_uri).finish()
    }
}

impl LoopbackRedirect {
    /// Listens on `127.0.0.1:port` (0 picks a free port). Waits up to five minutes for the user.
    pub async fn bind(port: u16) -> Result<Self, AuthError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok(LoopbackRedirect {
            listener: std::sync::Mutex::new(Some(listener)),
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            timeout: Duration::from_secs(300),
            open_browser: true,
        })
    }

    /// Prints the URL instead of opening a browser (the user opens it).
    pub fn without_browser(mut self) -> Self {
        self.open_browser = false;
        self
    }

    /// How long to wait for the callback.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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

impl RedirectStep for LoopbackRedirect {
    fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    fn authorize(&self, authorization_url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>> {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (timeout, open) = (self.timeout, self.open_browser);
        let redirect_uri = self.redirect_uri.clone();
        Box::pin(async move {
            let listener = match listener {
                Some(l) => l,
                None => {
                    // A previous flow consumed the listener: bind the same port again.
                    let port = url::Url::parse(&redirect_uri).ok().and_then(|u| u.port()).unwrap_or(0);
                    tokio::net::TcpListener::bind(("127.0.0.1", port)).await?
                }
            };
            if !open || open_browser(&authorization_url).is_err() {
                eprintln!("Open this URL in your browser to authorize:\n{authorization_url}");
            }
            tokio::time::timeout(timeout, accept_callback(&listener))
                .await
                .map_err(|_| AuthError::Redirect("no authorization callback in time".into()))?
        })
    }
}

async fn accept_callback(listener: &tokio::net::TcpListener) -> Result<AuthorizationResponse, AuthError> {
    loop {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let mut len = 0;
        while len < buf.len() {
            let n = sock.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head.lines().next().and_then(|l| l.strip_prefix("GET ")).and_then(|l| l.split(' ').next());
        let Some(target) = target.filter(|t| t.starts_with("/callback")) else {
            let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            continue;
        };
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let response = AuthorizationResponse::from_query(query);
        let page = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{CALLBACK_PAGE}",
            CALLBACK_PAGE.len()
        );
        let _ = sock.write_all(page.as_bytes()).await;
        return Ok(response);
    }
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
}
