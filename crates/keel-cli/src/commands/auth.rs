//! `keel auth login|status|logout`, and the OAuth client every HTTP command uses.
//!
//! Tokens live in Keel's [`FileTokenStore`] (files 0600 in a 0700 directory, written atomically) under the
//! platform's data directory (`~/.local/share/keel/tokens` on Linux), or `--token-dir` / `KEEL_TOKEN_DIR`.
//! Keel's [`OAuthClient`] refreshes them transparently before they expire and on a 401.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use keel_mcp::auth::client::redirect::open_browser;
use keel_mcp::auth::client::url_policy::check_secure;
use keel_mcp::auth::client::{
    AuthError, AuthorizationResponse, ClientCredentials, FileTokenStore, LoopbackRedirect, OAuthClient, RedirectStep,
    TokenStore,
};
use keel_mcp::auth::{Challenge, HttpAuth};
use keel_mcp::engine::BoxFuture;
use serde_json::json;
use tokio::sync::{Notify, OnceCell};

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

/// How to make the OAuth client for one MCP server. Checked up front (usage errors show at once), built only
/// when needed: making an OAuth client loads the platform's root certificates, which a server that asks for
/// no authorization should not pay for at start-up.
#[derive(Clone)]
pub struct OAuthPlan {
    url: String,
    oauth: OAuthArgs,
    store: FileTokenStore,
    /// `Some(port)` for `keel auth login`.
    login: Option<u16>,
    /// Fires when a browser login begins.
    started: Arc<Notify>,
}

impl OAuthPlan {
    /// The plan for `url`, or `None` when the URL cannot carry OAuth (plain http off loopback).
    pub fn new(
        url: &str,
        oauth: &OAuthArgs,
        login: Option<u16>,
        started: Arc<Notify>,
    ) -> Result<Option<Self>, CliError> {
        if check_secure(url).is_err() {
            return Ok(None);
        }
        if oauth.client_credentials && oauth.client_id.is_none() {
            return Err(CliError::usage("--client-credentials needs --client-id"));
        }
        let store = FileTokenStore::new(token_dir(oauth.token_dir.as_ref())?);
        Ok(Some(OAuthPlan { url: url.to_owned(), oauth: oauth.clone(), store, login, started }))
    }

    /// Makes the OAuth client.
    pub async fn build(&self) -> Result<OAuthClient, AuthError> {
        let (url, oauth) = (self.url.as_str(), &self.oauth);
        let credentials = oauth.client_id.as_ref().map(|id| ClientCredentials {
            client_id: id.clone(),
            client_secret: oauth.client_secret.clone(),
            token_endpoint_auth_method: None,
            grant_types: Vec::new(),
            redirect_uris: Vec::new(),
        });
        let mut builder = match credentials.clone() {
            Some(credentials) if oauth.client_credentials => OAuthClient::client_credentials(url, credentials),
            _ if self.login.is_some() || interactive(oauth) => {
                let no_browser = oauth.no_browser;
                let started = self.started.clone();
                let redirect = LoopbackRedirect::bind(self.login.unwrap_or(0)).await?.on_authorization_url(
                    move |authorization_url| {
                        // The user needs more than --connect-timeout: the handshake waits for them from here on.
                        started.notify_one();
                        // The URL is printed either way: a browser launcher can start and still show nothing.
                        if no_browser || open_browser(authorization_url).is_err() {
                            eprintln!("Open this URL in your browser to authorize:\n{authorization_url}");
                        } else {
                            eprintln!(
                                "Opened your browser to authorize; if nothing appeared, open:\n{authorization_url}"
                            );
                        }
                    },
                );
                OAuthClient::builder(url, redirect)
            }
            _ => OAuthClient::builder(url, NoLogin),
        };
        builder = builder.client_name("keel CLI").store(self.store.clone());
        if let (Some(credentials), false) = (credentials, oauth.client_credentials) {
            builder = builder.pre_registered(credentials);
        }
        if let Some(cimd) = &oauth.client_metadata_url {
            builder = builder.client_metadata_url(cimd.clone());
        }
        builder.build()
    }
}

/// Keel's OAuth client as the transport's [`HttpAuth`], made on first need: when tokens are stored for the
/// server (they go out with the first request), or on the first 401 / 403.
pub struct LazyOAuth(Arc<Lazy>);

struct Lazy {
    plan: OAuthPlan,
    /// Whether tokens were stored for the server when the run began.
    stored: OnceCell<bool>,
    client: OnceCell<OAuthClient>,
}

impl LazyOAuth {
    pub fn new(plan: OAuthPlan) -> Self {
        LazyOAuth(Arc::new(Lazy { plan, stored: OnceCell::new(), client: OnceCell::new() }))
    }
}

impl Lazy {
    async fn client(&self) -> Result<&OAuthClient, keel_mcp::Error> {
        Ok(self.client.get_or_try_init(|| self.plan.build()).await?)
    }

    /// The client, if one is needed yet.
    async fn client_if_needed(&self) -> Result<Option<&OAuthClient>, keel_mcp::Error> {
        let stored = *self
            .stored
            .get_or_init(|| async {
                let stored = self.plan.store.load(&self.plan.url).await;
                stored.ok().flatten().is_some_and(|s| s.tokens.is_some())
            })
            .await;
        if stored || self.client.initialized() { Ok(Some(self.client().await?)) } else { Ok(None) }
    }
}

impl HttpAuth for LazyOAuth {
    fn authorization(&self, url: &str) -> BoxFuture<Result<Option<String>, keel_mcp::Error>> {
        let _ = url;
        // The transport asks `request_headers`; nothing calls this.
        Box::pin(std::future::ready(Ok(None)))
    }

    fn request_headers(&self, method: &str, url: &str) -> BoxFuture<Result<Vec<(String, String)>, keel_mcp::Error>> {
        let this = self.0.clone();
        let (method, url) = (method.to_owned(), url.to_owned());
        Box::pin(async move {
            match this.client_if_needed().await? {
                Some(client) => HttpAuth::request_headers(client, &method, &url).await,
                None => Ok(Vec::new()),
            }
        })
    }

    fn unauthorized(&self, url: &str, challenge: Challenge) -> BoxFuture<Result<bool, keel_mcp::Error>> {
        let this = self.0.clone();
        let url = url.to_owned();
        Box::pin(async move { HttpAuth::unauthorized(this.client().await?, &url, challenge).await })
    }

    fn dpop_nonce(&self, url: &str, nonce: &str) {
        if let Some(client) = self.0.client.get() {
            HttpAuth::dpop_nonce(client, url, nonce);
        }
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
    let plan = OAuthPlan::new(&args.url, &args.oauth, Some(args.port), started.clone())?
        .ok_or_else(|| CliError::usage(format!("{}: OAuth needs https (or http on loopback)", args.url)))?;
    let oauth = plan.build().await.map_err(auth_error)?;
    let target = Target::Url { url: args.url.clone(), headers: Vec::new() };
    let session = connect::open_with(
        target,
        Some(Arc::new(oauth)),
        &started,
        &args.common,
        &output,
        &timeouts,
        Default::default(),
    )
    .await?;
    session.client.close().await;
    // A server that never asked for authorization ran no flow: say so rather than claim a login.
    let stored = plan.store.load(&args.url).await.map_err(auth_error)?;
    let logged_in = stored.is_some_and(|s| s.tokens.is_some());
    let result = json!({ "url": args.url, "loggedIn": logged_in });
    output.result(&result, |out| {
        if logged_in {
            out.push_str(&format!("logged in to {}\n", args.url));
        } else {
            out.push_str(&format!("{} asked for no authorization; nothing stored\n", args.url));
        }
    });
    Ok(())
}

/// `keel auth status URL`: what is stored, never the token values.
pub async fn status(args: AuthTarget) -> Result<(), CliError> {
    let output = Output::new(args.common.format, args.common.quiet);
    let store = FileTokenStore::new(token_dir(args.token_dir.as_ref())?);
    let stored = store.load(&args.url).await.map_err(auth_error)?;
    let tokens = stored.as_ref().and_then(|s| s.tokens.as_ref());
    let result = match tokens {
        Some(t) => json!({
            "url": args.url,
            "loggedIn": true,
            "issuer": t.issuer,
            "scope": t.scope,
            "expiresAt": t.expires_at,
            "refreshable": t.refresh_token.is_some(),
        }),
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
