//! `keel auth login|status|logout`, and the OAuth client every HTTP command uses.
//!
//! Tokens live in Keel's [`FileTokenStore`] (files 0600 in a 0700 directory, written atomically) under the
//! platform's data directory (`~/.local/share/keel/tokens` on Linux), or `--token-dir` / `KEEL_TOKEN_DIR`.
//! Keel's [`OAuthClient`] refreshes them transparently before they expire and on a 401.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use keel_mcp::auth::client::redirect::open_browser;
use keel_mcp::auth::client::{
    AuthError, AuthorizationResponse, ClientCredentials, FileTokenStore, LoopbackRedirect, OAuthClient, RedirectStep,
    TokenStore,
};
use keel_mcp::engine::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::args::{AuthTarget, LoginArgs, OAuthArgs};
use crate::connect::{self, Target};
use crate::error::{CliError, Kind};
use crate::output::Output;
use crate::timeouts::Timeouts;

/// The token directory: `--token-dir`, else `<data dir>/keel/tokens`.
pub fn token_dir(explicit: Option<&PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(dir) = explicit {
        return Ok(dir.clone());
    }
    directories::ProjectDirs::from("", "", "keel")
        .map(|d| d.data_dir().join("tokens"))
        .ok_or_else(|| CliError::usage("no home directory to keep tokens in; pass --token-dir"))
}

/// Stands in for the browser step when no login may run: fails at once, so the command exits 3.
struct NoLogin;

impl RedirectStep for NoLogin {
    fn redirect_uri(&self) -> String {
        "http://127.0.0.1/callback".into()
    }

    fn authorize(&self, _url: String) -> BoxFuture<Result<AuthorizationResponse, AuthError>> {
        Box::pin(std::future::ready(Err(AuthError::Redirect(
            "the server requires a login and this run is not interactive; run `keel auth login URL` first".into(),
        ))))
    }
}

/// Whether a browser login may run: not with --no-interactive, nor without a terminal to tell the user.
fn interactive(oauth: &OAuthArgs) -> bool {
    !oauth.no_interactive && std::io::stderr().is_terminal()
}

/// The OAuth client for `url`, or `None` when the URL cannot carry OAuth (plain http off loopback).
/// `login` is `Some(port)` for `keel auth login`; `started` fires when a browser login begins.
pub async fn oauth_client(
    url: &str,
    oauth: &OAuthArgs,
    login: Option<u16>,
    started: Arc<Notify>,
) -> Result<Option<OAuthClient>, CliError> {
    let store = FileTokenStore::new(token_dir(oauth.token_dir.as_ref())?);
    let credentials = oauth.client_id.as_ref().map(|id| ClientCredentials {
        client_id: id.clone(),
        client_secret: oauth.client_secret.clone(),
        token_endpoint_auth_method: None,
        grant_types: Vec::new(),
        redirect_uris: Vec::new(),
    });
    let mut builder = if oauth.client_credentials {
        let credentials =
            credentials.clone().ok_or_else(|| CliError::usage("--client-credentials needs --client-id"))?;
        OAuthClient::client_credentials(url, credentials)
    } else if login.is_some() || interactive(oauth) {
        let no_browser = oauth.no_browser;
        let redirect = LoopbackRedirect::bind(login.unwrap_or(0)).await.map_err(auth_error)?.on_authorization_url(
            move |authorization_url| {
                // The user needs more than --connect-timeout: the handshake waits for them from here on.
                started.notify_one();
                // The URL is printed either way: a browser launcher can start and still show nothing.
                if no_browser || open_browser(authorization_url).is_err() {
                    eprintln!("Open this URL in your browser to authorize:\n{authorization_url}");
                } else {
                    eprintln!("Opened your browser to authorize; if nothing appeared, open:\n{authorization_url}");
                }
            },
        );
        OAuthClient::builder(url, redirect)
    } else {
        OAuthClient::builder(url, NoLogin)
    };
    builder = builder.client_name("keel CLI").store(store);
    if let (Some(credentials), false) = (credentials, oauth.client_credentials) {
        builder = builder.pre_registered(credentials);
    }
    if let Some(cimd) = &oauth.client_metadata_url {
        builder = builder.client_metadata_url(cimd.clone());
    }
    match builder.build() {
        Ok(client) => Ok(Some(client)),
        // Plain http to a non-loopback host can carry no OAuth: the server gets no credentials from us.
        Err(AuthError::InsecureUrl(u)) if u == url => Ok(None),
        Err(e) => Err(auth_error(e)),
    }
}

fn auth_error(e: AuthError) -> CliError {
    CliError::new(Kind::AuthRequired, format!("authorization failed: {e}"))
}

/// `keel auth login URL`: connects with an interactive OAuth client, which runs the flow on the 401.
pub async fn login(args: LoginArgs) -> Result<(), CliError> {
    let output = Output::new(args.common.format, args.common.quiet);
    let timeouts = Timeouts::new(&args.common)?;
    let started = Arc::new(Notify::new());
    let oauth = oauth_client(&args.url, &args.oauth, Some(args.port), started.clone())
        .await?
        .ok_or_else(|| CliError::usage(format!("{}: OAuth needs https (or http on loopback)", args.url)))?;
    let target = Target::Url { url: args.url.clone(), headers: Vec::new() };
    let session =
        connect::open_with(target, Some(oauth), &started, &args.common, &output, &timeouts, Default::default()).await?;
    session.client.close().await;
    let result = json!({ "url": args.url, "loggedIn": true });
    output.result(&result, |out| out.push_str(&format!("logged in to {}\n", args.url)));
    Ok(())
}

/// `keel auth status URL`: what is stored, never the token values.
pub async fn status(args: AuthTarget) -> Result<(), CliError> {
    let output = Output::new(args.common.format, args.common.quiet);
    let store = FileTokenStore::new(token_dir(args.token_dir.as_ref())?);
    let stored = store.load(&args.url).await.map_err(auth_error)?;
    let tokens = stored.as_ref().and_then(|s| s.tokens.as_ref());
    let result = match tokens {
        Some(t) => {
            let t = serde_json::to_value(t).unwrap_or(Value::Null);
            json!({
                "url": args.url,
                "loggedIn": true,
                "issuer": t.get("issuer"),
                "scope": t.get("scope"),
                "expiresAt": t.get("expires_at").or(t.get("expiresAt")),
                "refreshable": t.get("refresh_token").or(t.get("refreshToken")).is_some_and(|r| !r.is_null()),
            })
        }
        None => json!({ "url": args.url, "loggedIn": false }),
    };
    output.result(&result, |out| {
        if tokens.is_some() {
            out.push_str(&format!("logged in to {}\n", args.url));
            for key in ["issuer", "scope", "expiresAt", "refreshable"] {
                if let Some(v) = result.get(key).filter(|v| !v.is_null()) {
                    out.push_str(&format!("  {key}: {}\n", crate::render::scalar(v)));
                }
            }
        } else {
            out.push_str(&format!("not logged in to {}\n", args.url));
        }
    });
    Ok(())
}

/// `keel auth logout URL`: forgets tokens and registrations.
pub async fn logout(args: AuthTarget) -> Result<(), CliError> {
    let output = Output::new(args.common.format, args.common.quiet);
    let store: Arc<dyn TokenStore> = Arc::new(FileTokenStore::new(token_dir(args.token_dir.as_ref())?));
    let _lock = store.lock(&args.url).await.map_err(auth_error)?;
    store.save(&args.url, Default::default()).await.map_err(auth_error)?;
    let result = json!({ "url": args.url, "loggedIn": false });
    output.result(&result, |out| out.push_str(&format!("logged out of {}\n", args.url)));
    Ok(())
}
