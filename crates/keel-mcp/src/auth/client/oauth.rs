//! [`OAuthClient`]: the OAuth 2.1 client as an [`HttpAuth`]. It supplies the bearer token for the one MCP
//! server it was built for, refreshes it before it expires, and on a 401 or 403 runs discovery, registration,
//! and the authorization code flow (or a refresh, or a scope step-up).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::assertion::AssertionKey;
use super::challenge::AuthChallenge;
use super::dpop::Dpop;
use super::error::AuthError;
use super::flow::{self, AuthorizationInputs, Discovered, IdentityProviderGrant};
use super::http::{OAuthHttp, OAuthTransport};
use super::plan::{
    BeforeRequest, Facts, RefreshFailure, Step, after_refresh_error, before_request, needs_new_registration, plan,
};
use super::redirect::RedirectStep;
use super::registration::{ClientCredentials, ClientMetadata};
use super::scope::{ConsentPrompt, apply_offline_access, wants_consent_prompt};
use super::token::{TokenSet, now_secs};
use super::token_store::{MemoryTokenStore, StoredAuth, TokenStore};
use super::url_policy::{UrlPolicy, check_secure};
use crate::auth::{Challenge, HttpAuth};
use crate::engine::BoxFuture;
use crate::error::Error;

/// Authorizations allowed for the same demand before the client gives up.
pub const MAX_AUTHORIZATIONS: u32 = 3;

/// Authorizations for the same demand further apart than this count as unrelated.
const ATTEMPT_WINDOW: Duration = Duration::from_secs(120);

/// Builds an [`OAuthClient`].
pub struct OAuthClientBuilder {
    server_url: String,
    redirect: Arc<dyn RedirectStep>,
    metadata: ClientMetadata,
    cimd_url: Option<String>,
    pre_registered: Option<(Option<String>, ClientCredentials)>,
    store: Arc<dyn TokenStore>,
    allow_loopback: bool,
    grant: Grant,
    dpop: bool,
    consent_prompt: ConsentPrompt,
    /// Replaces the HTTP client (in-memory authorization servers in tests).
    transport: Option<Arc<dyn OAuthTransport>>,
}

/// How the client obtains tokens.
#[derive(Clone)]
enum Grant {
    /// A user authorizes through the redirect step.
    AuthorizationCode,
    /// Machine to machine with pre-registered credentials; a key means `private_key_jwt`.
    ClientCredentials(Option<Arc<AssertionKey>>),
    /// RFC 7523 with an assertion from elsewhere (workload identity).
    JwtBearer(Arc<str>),
    /// SEP-990: exchange an ID token at the IdP for an ID-JAG, then RFC 7523 at the authorization server.
    IdJag(Arc<IdentityProviderGrant>),
}

impl OAuthClientBuilder {
    /// The client name sent in registration.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.client_name = name.into();
        self
    }

    /// `native` (the default: desktop, CLI, loopback redirects) or `web`.
    pub fn application_type(mut self, application_type: impl Into<String>) -> Self {
        self.metadata.application_type = application_type.into();
        self
    }

    /// Whether to ask for refresh tokens (default true): lists the refresh grant and requests `offline_access`
    /// where the authorization server offers it.
    pub fn refresh_tokens(mut self, want: bool) -> Self {
        self.metadata.want_refresh_tokens = want;
        self
    }

    /// The HTTPS URL of this client's metadata document, used as `client_id` where CIMD is supported.
    pub fn client_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.cimd_url = Some(url.into());
        self
    }

    /// Pre-registered credentials. Bound to the first authorization server they are used with; a later
    /// change of authorization server is an error rather than a silent reuse.
    pub fn pre_registered(mut self, credentials: ClientCredentials) -> Self {
        self.pre_registered = Some((None, credentials));
        self
    }

    /// Pre-registered credentials for the authorization server `issuer` only.
    pub fn pre_registered_for(mut self, issuer: impl Into<String>, credentials: ClientCredentials) -> Self {
        self.pre_registered = Some((Some(issuer.into()), credentials));
        self
    }

    /// Where tokens and registrations are kept (default: in memory).
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Allow private and loopback metadata hosts even for a public MCP server (tests and development).
    pub fn allow_loopback(mut self, allow: bool) -> Self {
        self.allow_loopback = allow;
        self
    }

    /// Bind tokens to a DPoP key (RFC 9449) where the authorization server supports ES256 proofs. The HTTP
    /// client transport sends a fresh proof with each request through [`HttpAuth::request_headers`] and reports
    /// `DPoP-Nonce` headers through [`HttpAuth::dpop_nonce`]. The key lives in memory only.
    pub fn dpop(mut self, enabled: bool) -> Self {
        self.dpop = enabled;
        self
    }

    /// When the authorization request carries `prompt=consent` along with `offline_access` (default:
    /// [`ConsentPrompt::OpenIdProviders`], see there why).
    pub fn consent_prompt(mut self, prompt: ConsentPrompt) -> Self {
        self.consent_prompt = prompt;
        self
    }

    /// Sends the OAuth requests through `transport` instead of HTTP.
    #[cfg(test)]
    pub(crate) fn transport(mut self, transport: Arc<dyn OAuthTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Checks the URLs and builds the client.
    pub fn build(self) -> Result<OAuthClient, AuthError> {
        check_secure(&self.server_url)?;
        if let Some(cimd) = &self.cimd_url {
            let u = url::Url::parse(cimd).map_err(|_| AuthError::InsecureUrl(cimd.clone()))?;
            if u.scheme() != "https" || u.path() == "/" {
                return Err(AuthError::InsecureUrl(cimd.clone()));
            }
        }
        check_secure(&self.redirect.redirect_uri())?;
        let policy = UrlPolicy::for_server(&self.server_url, self.allow_loopback);
        let dpop = if self.dpop { Some(Arc::new(Dpop::generate()?)) } else { None };
        Ok(OAuthClient {
            inner: Arc::new(Inner {
                server_url: self.server_url,
                redirect: self.redirect,
                metadata: self.metadata,
                cimd_url: self.cimd_url,
                pre_registered: self.pre_registered,
                store: self.store,
                grant: self.grant,
                dpop,
                consent_prompt: self.consent_prompt,
                policy,
                http: match self.transport {
                    Some(t) => t,
                    None => Arc::new(OAuthHttp::for_policy(policy)?),
                },
                session: tokio::sync::Mutex::new(Session::default()),
            }),
        })
    }
}

/// The OAuth 2.1 client for one MCP server. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct OAuthClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient").field("server_url", &self.inner.server_url).finish_non_exhaustive()
    }
}

struct Inner {
    server_url: String,
    redirect: Arc<dyn RedirectStep>,
    metadata: ClientMetadata,
    cimd_url: Option<String>,
    pre_registered: Option<(Option<String>, ClientCredentials)>,
    store: Arc<dyn TokenStore>,
    grant: Grant,
    dpop: Option<Arc<Dpop>>,
    consent_prompt: ConsentPrompt,
    policy: UrlPolicy,
    http: Arc<dyn OAuthTransport>,
    session: tokio::sync::Mutex<Session>,
}

#[derive(Default)]
struct Session {
    discovered: Option<Discovered>,
    /// Authorizations per demand (status, issuer, scope) and when the last one ran; the count restarts when
    /// the demand changes or after [`ATTEMPT_WINDOW`], so a long-lived client is not locked out by old attempts.
    attempts: HashMap<String, (u32, Instant)>,
    /// The issuer unbound pre-registered credentials were first used with.
    pre_registered_issuer: Option<String>,
    /// The issuer whose token endpoint refused this client, and its error code: later challenges fail at
    /// once instead of sending the user through the browser again.
    rejected: Option<(String, String)>,
}

impl OAuthClient {
    /// A client for the MCP server at `server_url`, sending the user through `redirect`.
    pub fn builder(server_url: impl Into<String>, redirect: impl RedirectStep) -> OAuthClientBuilder {
        OAuthClientBuilder {
            server_url: server_url.into(),
            redirect: Arc::new(redirect),
            metadata: ClientMetadata {
                client_name: "Keel MCP client".into(),
                application_type: "native".into(),
                want_refresh_tokens: true,
            },
            cimd_url: None,
            pre_registered: None,
            store: Arc::new(MemoryTokenStore::new()),
            allow_loopback: false,
            grant: Grant::AuthorizationCode,
            dpop: false,
            consent_prompt: ConsentPrompt::default(),
            transport: None,
        }
    }

    /// A machine-to-machine client for the MCP server at `server_url`: the `client_credentials` grant with
    /// pre-registered credentials (OAuth client credentials extension, SEP-1046), no user and no redirect.
    pub fn client_credentials(server_url: impl Into<String>, credentials: ClientCredentials) -> OAuthClientBuilder {
        let mut b = Self::builder(server_url, NoRedirect).pre_registered(credentials);
        b.grant = Grant::ClientCredentials(None);
        b
    }

    /// Like [`client_credentials`](Self::client_credentials), authenticating with a JWT assertion signed by
    /// `key` (`private_key_jwt`, RFC 7523 §2.2) instead of a secret.
    pub fn client_credentials_jwt(
        server_url: impl Into<String>,
        client_id: impl Into<String>,
        key: AssertionKey,
    ) -> OAuthClientBuilder {
        let mut creds = ClientCredentials::public(client_id);
        creds.token_endpoint_auth_method = Some("private_key_jwt".into());
        let mut b = Self::builder(server_url, NoRedirect).pre_registered(creds);
        b.grant = Grant::ClientCredentials(Some(Arc::new(key)));
        b
    }

    /// Enterprise-managed authorization (SEP-990): the user's ID token from single sign-on is exchanged at the
    /// identity provider for an identity assertion grant (ID-JAG), which the client redeems at the MCP
    /// authorization server with the JWT-bearer grant, authenticating with `credentials`. No browser redirect.
    pub fn enterprise_managed(
        server_url: impl Into<String>,
        credentials: ClientCredentials,
        idp: IdentityProviderGrant,
    ) -> OAuthClientBuilder {
        let mut b = Self::builder(server_url, NoRedirect).pre_registered(credentials);
        b.grant = Grant::IdJag(Arc::new(idp));
        b
    }

    /// A workload that presents `assertion` (a JWT from its platform, e.g. Kubernetes or SPIFFE) with the
    /// RFC 7523 JWT-bearer grant: no registration, no client secret, no user. Token endpoint errors are returned
    /// as they are, without retrying.
    pub fn jwt_bearer(server_url: impl Into<String>, assertion: impl Into<String>) -> OAuthClientBuilder {
        let mut b = Self::builder(server_url, NoRedirect);
        b.grant = Grant::JwtBearer(Arc::from(assertion.into()));
        b
    }

    /// The MCP server URL these credentials are for.
    pub fn server_url(&self) -> &str {
        &self.inner.server_url
    }

    /// The client's metadata document for publishing at its CIMD URL (lists `refresh_token` when wanted).
    pub fn client_metadata_document(&self) -> Option<serde_json::Value> {
        let url = self.inner.cimd_url.as_deref()?;
        Some(self.inner.metadata.cimd_document(url, &[self.inner.redirect.redirect_uri()]))
    }

    /// The `Authorization` header for a request to `url`: refreshed first when the token is near its expiry,
    /// and obtained anew first when it has expired with no way to refresh it (a request with it is doomed).
    pub async fn access_header(&self, url: &str) -> Result<Option<String>, AuthError> {
        let inner = &self.inner;
        if !same_resource(url, &inner.server_url) {
            return Ok(None);
        }
        let key = inner.server_url.as_str();
        let tokens = inner.store.load(key).await?.and_then(|s| s.tokens);
        match before_request(tokens.as_ref(), now_secs()) {
            BeforeRequest::Bare => return Ok(None),
            BeforeRequest::Send => return Ok(tokens.map(|t| t.header())),
            BeforeRequest::Refresh | BeforeRequest::Authorize => {}
        }
        let mut session = inner.session.lock().await;
        let _lock = inner.store.lock(key).await?;
        // Another process may have refreshed while we waited for the lock.
        let mut stored = inner.store.load(key).await?.unwrap_or_default();
        let Some(tokens) = stored.tokens.clone() else { return Ok(None) };
        match before_request(Some(&tokens), now_secs()) {
            BeforeRequest::Bare => return Ok(None),
            BeforeRequest::Send => return Ok(Some(tokens.header())),
            BeforeRequest::Authorize => {
                tracing::debug!("access token expired and no refresh token: authorizing before the request");
                if !self.answer(&mut session, 401, &AuthChallenge::default()).await? {
                    return Ok(None);
                }
                return Ok(inner.store.load(key).await?.and_then(|s| s.tokens).map(|t| t.header()));
            }
            BeforeRequest::Refresh => {}
        }
        let d = match session.discovered.clone() {
            Some(d) if d.issuer == tokens.issuer => d,
            _ => self.discover(None).await?,
        };
        let Some(creds) = self.existing_credentials(&mut session, &d, &stored)? else {
            return Ok(Some(tokens.header()));
        };
        match flow::refresh(inner.http.as_ref(), &d, &creds, &tokens).await {
            Ok(fresh) => {
                let header = fresh.header();
                stored.tokens = Some(fresh);
                inner.store.save(key, stored).await?;
                session.discovered = Some(d);
                Ok(Some(header))
            }
            Err(e) => match after_refresh_error(&e, self.is_dynamic(&d, &stored)) {
                RefreshFailure::DropTokens | RefreshFailure::DropRegistration => {
                    self.forget(&mut stored, &d, &e);
                    inner.store.save(key, stored).await?;
                    Ok(None)
                }
                RefreshFailure::Fail => Err(self.rejected(&mut session, &d, &e)),
                // Let the server decide; a 401 brings us back through `handle_challenge`.
                RefreshFailure::Keep => Ok(Some(tokens.header())),
            },
        }
    }

    /// Reacts to a 401 or 403 from the MCP server. `Ok(true)`: new credentials, retry the request.
    pub async fn handle_challenge(
        &self,
        url: &str,
        status: u16,
        www_authenticate: &[String],
    ) -> Result<bool, AuthError> {
        let inner = &self.inner;
        if !same_resource(url, &inner.server_url) {
            return Ok(false);
        }
        let challenge = AuthChallenge::from_headers(www_authenticate);
        if challenge.error.as_deref() == Some("use_dpop_nonce") {
            // Retrying helps once the transport has passed the nonce to `note_dpop_nonce`.
            return Ok(self.inner.dpop.as_ref().is_some_and(|d| d.rs_nonce().is_some()));
        }
        let mut session = inner.session.lock().await;
        let _lock = inner.store.lock(inner.server_url.as_str()).await?;
        self.answer(&mut session, status, &challenge).await
    }

    /// Plans and carries out the answer to a challenge; the caller holds the session and the store lock.
    async fn answer(&self, session: &mut Session, status: u16, challenge: &AuthChallenge) -> Result<bool, AuthError> {
        let inner = &self.inner;
        let key = inner.server_url.as_str();
        let mut stored = inner.store.load(key).await?.unwrap_or_default();
        // A 403 that no authorization can fix is decided before any discovery request.
        let tokens = stored.tokens.as_ref();
        if status == 403
            && plan(&Facts { status, challenge, tokens, prm_scopes: None, refresh_tried: false }) == Step::GiveUp
        {
            return Ok(false);
        }
        let d = self.discover(challenge.resource_metadata.as_deref()).await?;
        session.discovered = Some(d.clone());
        if let Some((issuer, error)) = &session.rejected
            && *issuer == d.issuer
        {
            // The client was refused already: the user is not asked again for nothing.
            return Err(AuthError::ClientRejected { issuer: issuer.clone(), error: error.clone() });
        }

        // Tokens from another authorization server are dropped, never sent to the new one.
        if stored.tokens.as_ref().is_some_and(|t| t.issuer != d.issuer || t.resource != d.resource) {
            stored.tokens = None;
        }

        let mut refresh_tried = false;
        let scope = loop {
            let (tokens, prm_scopes) = (stored.tokens.as_ref(), d.prm_scopes.as_deref());
            match plan(&Facts { status, challenge, tokens, prm_scopes, refresh_tried }) {
                Step::GiveUp => return Ok(false),
                Step::Obtain { scope } => break scope,
                Step::Refresh => refresh_tried = true,
            }
            let Some(creds) = self.existing_credentials(session, &d, &stored)? else { continue };
            let Some(tokens) = stored.tokens.clone() else { continue };
            match flow::refresh(inner.http.as_ref(), &d, &creds, &tokens).await {
                Ok(fresh) if fresh.access_token != tokens.access_token => {
                    stored.tokens = Some(fresh);
                    inner.store.save(key, stored).await?;
                    return Ok(true);
                }
                Ok(_) => {}
                Err(e) => match after_refresh_error(&e, self.is_dynamic(&d, &stored)) {
                    RefreshFailure::DropTokens | RefreshFailure::DropRegistration => self.forget(&mut stored, &d, &e),
                    RefreshFailure::Fail => return Err(self.rejected(session, &d, &e)),
                    RefreshFailure::Keep => {}
                },
            }
        };

        let demand = format!("{status} {} {}", d.issuer, scope.as_deref().unwrap_or(""));
        if !session.attempts.contains_key(&demand) {
            session.attempts.clear();
        }
        let now = Instant::now();
        let (n, last) = session.attempts.entry(demand).or_insert((0, now));
        if now.duration_since(*last) > ATTEMPT_WINDOW {
            *n = 0;
        }
        *n += 1;
        *last = now;
        if *n > MAX_AUTHORIZATIONS {
            tracing::debug!(attempts = *n - 1, "authorization retry limit reached");
            return Err(AuthError::RetryLimit(MAX_AUTHORIZATIONS));
        }

        let dynamic = self.is_dynamic(&d, &stored);
        let obtained = self.obtain(session, &d, &mut stored, scope).await;
        let result = match obtained {
            Ok(tokens) => {
                stored.tokens = Some(tokens);
                Ok(true)
            }
            Err(e) if e.is_client_rejected() => {
                // A client-authentication failure is not fixed by asking the user again: one clear error,
                // and a dynamic registration the server no longer accepts is forgotten for the next run.
                if dynamic || self.is_dynamic(&d, &stored) {
                    stored.clients.remove(&d.issuer);
                }
                stored.tokens = None;
                Err(self.rejected(session, &d, &e))
            }
            Err(e) => Err(e),
        };
        inner.store.save(key, stored).await?;
        result
    }

    /// Obtains tokens for `scope` with the client's grant (registering first where needed).
    async fn obtain(
        &self,
        session: &mut Session,
        d: &Discovered,
        stored: &mut StoredAuth,
        scope: Option<String>,
    ) -> Result<TokenSet, AuthError> {
        let inner = &self.inner;
        match &inner.grant {
            Grant::AuthorizationCode => {}
            Grant::JwtBearer(assertion) => {
                return flow::jwt_bearer(inner.http.as_ref(), d, assertion, None, scope).await;
            }
            Grant::IdJag(idp) => {
                inner.policy.check(&idp.token_endpoint)?;
                let creds = self.credentials(session, d, stored, scope.as_deref()).await?;
                let id_jag = flow::exchange_for_id_jag(inner.http.as_ref(), idp, d, scope.as_deref()).await?;
                return flow::jwt_bearer(inner.http.as_ref(), d, &id_jag, Some(&creds), scope).await;
            }
            Grant::ClientCredentials(assertion_key) => {
                let creds = self.credentials(session, d, stored, scope.as_deref()).await?;
                return flow::client_credentials(inner.http.as_ref(), d, &creds, assertion_key.as_deref(), scope).await;
            }
        }
        let advertises_offline = d.metadata.advertises_scope("offline_access");
        // What a registration asks for: the scopes the authorization will, `offline_access` included, since a
        // server may otherwise give the client default scopes without it and refuse it later (`invalid_scope`).
        let registered_scope =
            apply_offline_access(scope.clone(), advertises_offline, inner.metadata.want_refresh_tokens);
        let mut creds = self.credentials(session, d, stored, registered_scope.as_deref()).await?;
        // Many servers match redirect URIs exactly: use a registered one where the step can, else register
        // again with the one it has.
        let redirect_uri = inner.redirect.prepare(&creds.redirect_uris).await?;
        if self.is_dynamic(d, stored) && needs_new_registration(&creds.redirect_uris, &redirect_uri) {
            tracing::debug!(issuer = %d.issuer, "redirect URI not in the stored registration: registering again");
            stored.clients.remove(&d.issuer);
            creds = self.credentials(session, d, stored, registered_scope.as_deref()).await?;
        }
        let refresh_registered = creds.grant_types.iter().any(|g| g == "refresh_token")
            || (creds.grant_types.is_empty() && inner.metadata.want_refresh_tokens);
        let scope =
            apply_offline_access(scope, advertises_offline, inner.metadata.want_refresh_tokens && refresh_registered);
        let prompt_consent = wants_consent_prompt(inner.consent_prompt, scope.as_deref(), d.openid_provider);
        flow::authorization_code(
            inner.http.as_ref(),
            inner.redirect.as_ref(),
            AuthorizationInputs { discovered: d, credentials: &creds, scope, prompt_consent, policy: inner.policy },
        )
        .await
    }

    /// The credentials for `d` came from dynamic registration (stored, not given to the builder).
    fn is_dynamic(&self, d: &Discovered, stored: &StoredAuth) -> bool {
        self.inner.pre_registered.is_none() && stored.clients.contains_key(&d.issuer)
    }

    /// Drops what a failed refresh made useless: the tokens, and the registration when the client was refused.
    fn forget(&self, stored: &mut StoredAuth, d: &Discovered, error: &AuthError) {
        stored.tokens = None;
        if error.is_client_rejected() {
            stored.clients.remove(&d.issuer);
        }
    }

    /// Remembers that the authorization server refused this client, and the error to give.
    fn rejected(&self, session: &mut Session, d: &Discovered, error: &AuthError) -> AuthError {
        let code = match error {
            AuthError::TokenEndpoint { error } | AuthError::ClientRejected { error, .. } => error.clone(),
            _ => "invalid_client".to_owned(),
        };
        session.rejected = Some((d.issuer.clone(), code.clone()));
        AuthError::ClientRejected { issuer: d.issuer.clone(), error: code }
    }
    /// Discovery, plus the DPoP key when this authorization server takes ES256 proofs.
    async fn discover(&self, resource_metadata: Option<&str>) -> Result<Discovered, AuthError> {
        let inner = &self.inner;
        let mut d = flow::discover(inner.http.as_ref(), &inner.server_url, inner.policy, resource_metadata).await?;
        d.dpop = inner.dpop.clone().filter(|_| d.metadata.supports_dpop_es256());
        Ok(d)
    }

    /// Every header a request to `url` needs: `Authorization`, and for a DPoP-bound token a fresh `DPoP` proof
    /// for `method` and `url` (with the resource server's latest nonce).
    pub async fn request_headers(&self, method: &str, url: &str) -> Result<Vec<(String, String)>, AuthError> {
        let Some(authorization) = self.access_header(url).await? else { return Ok(Vec::new()) };
        let mut out = vec![("authorization".to_owned(), authorization.clone())];
        if let (Some(token), Some(dpop)) = (authorization.strip_prefix("DPoP "), &self.inner.dpop) {
            out.push(("dpop".to_owned(), dpop.proof(method, url, Some(token), dpop.rs_nonce().as_deref())?));
        }
        Ok(out)
    }

    /// Records a `DPoP-Nonce` the MCP server sent (RFC 9449 §9); the next proof carries it.
    pub fn note_dpop_nonce(&self, nonce: &str) {
        if let Some(dpop) = &self.inner.dpop {
            dpop.set_rs_nonce(nonce);
        }
    }

    /// Credentials that need no registration request: pre-registered, stored for this issuer, or CIMD.
    fn existing_credentials(
        &self,
        session: &mut Session,
        d: &Discovered,
        stored: &StoredAuth,
    ) -> Result<Option<ClientCredentials>, AuthError> {
        let inner = &self.inner;
        if let Some((bound, creds)) = &inner.pre_registered {
            let bound = bound.clone().or_else(|| session.pre_registered_issuer.clone());
            match bound {
                Some(b) if b != d.issuer => {
                    return Err(AuthError::PreRegisteredForOtherIssuer { bound: b, current: d.issuer.clone() });
                }
                _ => {
                    session.pre_registered_issuer = Some(d.issuer.clone());
                    return Ok(Some(creds.clone()));
                }
            }
        }
        if let Some(creds) = stored.clients.get(&d.issuer) {
            return Ok(Some(creds.clone()));
        }
        if let Some(cimd) = inner.cimd_url.as_ref().filter(|_| d.metadata.supports_cimd()) {
            let mut creds = ClientCredentials::public(cimd.clone());
            creds.grant_types = inner.metadata.grant_types().into_iter().map(str::to_owned).collect();
            return Ok(Some(creds));
        }
        Ok(None)
    }

    /// Registration in priority order: pre-registered, stored for this issuer, CIMD, then DCR (stored per issuer)
    /// for `scope`, the scopes the client will ask for (RFC 7591 `scope`).
    async fn credentials(
        &self,
        session: &mut Session,
        d: &Discovered,
        stored: &mut StoredAuth,
        scope: Option<&str>,
    ) -> Result<ClientCredentials, AuthError> {
        if let Some(creds) = self.existing_credentials(session, d, stored)? {
            return Ok(creds);
        }
        let inner = &self.inner;
        let endpoint =
            d.metadata.registration_endpoint.as_deref().ok_or_else(|| AuthError::NoRegistration(d.issuer.clone()))?;
        let redirect_uri = inner.redirect.redirect_uri();
        let creds =
            flow::register(inner.http.as_ref(), endpoint, &inner.metadata, &redirect_uri, scope, &d.metadata).await?;
        stored.clients.insert(d.issuer.clone(), creds.clone());
        inner.store.save(&inner.server_url, stored.clone()).await?;
        Ok(creds)
    }
}

/// The redirect step of a client that never sends a user anywhere.
struct NoRedirect;

impl RedirectStep for NoRedirect {
    fn redirect_uri(&self) -> String {
        "http://localhost/unused".into()
    }

    fn authorize(&self, _url: String) -> BoxFuture<Result<super::redirect::AuthorizationResponse, AuthError>> {
        Box::pin(std::future::ready(Err(AuthError::Redirect(
            "a client credentials client has no user to redirect".into(),
        ))))
    }
}

/// The bearer token goes only to the URL it was obtained for (query and fragment aside).
fn same_resource(url: &str, server_url: &str) -> bool {
    let strip = |u: &str| u.split(['?', '#']).next().unwrap_or("").trim_end_matches('/').to_owned();
    strip(url) == strip(server_url)
}

impl HttpAuth for OAuthClient {
    fn authorization(&self, url: &str) -> BoxFuture<Result<Option<String>, Error>> {
        let (this, url) = (self.clone(), url.to_owned());
        Box::pin(async move { Ok(this.access_header(&url).await?) })
    }

    fn request_headers(&self, method: &str, url: &str) -> BoxFuture<Result<Vec<(String, String)>, Error>> {
        let (this, method, url) = (self.clone(), method.to_owned(), url.to_owned());
        Box::pin(async move { Ok(this.request_headers(&method, &url).await?) })
    }

    fn dpop_nonce(&self, url: &str, nonce: &str) {
        if same_resource(url, &self.inner.server_url) {
            self.note_dpop_nonce(nonce);
        }
    }

    fn unauthorized(&self, url: &str, challenge: Challenge) -> BoxFuture<Result<bool, Error>> {
        let (this, url) = (self.clone(), url.to_owned());
        Box::pin(async move { Ok(this.handle_challenge(&url, challenge.status, &challenge.www_authenticate).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory_as::{Approve, MCP, MemoryAs, standard};
    use super::*;
    use serde_json::json;

    fn client(server: &Arc<MemoryAs>, user: &Approve) -> OAuthClientBuilder {
        OAuthClient::builder(MCP, user.clone()).transport(server.clone())
    }

    #[tokio::test]
    async fn login_then_refresh_on_401_in_memory() {
        let (server, user) = (MemoryAs::standard(), Approve::default());
        let c = client(&server, &user).build().unwrap();
        assert!(c.handle_challenge(MCP, 401, &[]).await.unwrap());
        let token = &server.hits("/token")[0];
        assert_eq!(token.param("grant_type"), Some("authorization_code"));
        assert_eq!(token.param("client_id"), Some("client-2"));
        assert_eq!(token.param("resource"), Some(MCP));
        let header = c.access_header(MCP).await.unwrap().unwrap();
        assert!(header.starts_with("Bearer tok-"), "{header}");
        // A 401 with tokens in hand: the plan is a refresh, not the user.
        assert!(c.handle_challenge(MCP, 401, &[]).await.unwrap());
        assert_eq!(server.hits("/token")[1].param("grant_type"), Some("refresh_token"));
        assert_eq!(user.urls.lock().unwrap().len(), 1);
        assert_eq!(server.hits("/register").len(), 1);
    }

    /// A server that refuses the client at refresh (`invalid_client`), as after forgetting a registration.
    fn refusing_refresh() -> Arc<MemoryAs> {
        MemoryAs::new(|call, n| {
            if call.param("grant_type") == Some("refresh_token") {
                return (401, json!({"error": "invalid_client"}));
            }
            standard(call, n)
        })
    }

    #[tokio::test]
    async fn a_refused_dynamic_client_registers_again_in_memory() {
        let server = refusing_refresh();
        let user = Approve::default();
        let c = client(&server, &user).build().unwrap();
        assert!(c.handle_challenge(MCP, 401, &[]).await.unwrap());
        assert!(c.handle_challenge(MCP, 401, &[]).await.unwrap());
        assert_eq!(server.hits("/register").len(), 2, "a new registration");
        assert_eq!(user.urls.lock().unwrap().len(), 2, "and one new authorization");
        let last = server.hits("/token").pop().unwrap();
        assert_eq!(last.param("grant_type"), Some("authorization_code"));
        assert_ne!(last.param("client_id"), Some("client-2"), "with the new client");
    }

    #[tokio::test]
    async fn a_refused_pre_registered_client_fails_clearly_in_memory() {
        let server = refusing_refresh();
        let user = Approve::default();
        let c = client(&server, &user).pre_registered(ClientCredentials::public("given")).build().unwrap();
        assert!(c.handle_challenge(MCP, 401, &[]).await.unwrap());
        let err = c.handle_challenge(MCP, 401, &[]).await.unwrap_err();
        assert!(matches!(err, AuthError::ClientRejected { ref error, .. } if error == "invalid_client"), "{err}");
        assert_eq!(user.urls.lock().unwrap().len(), 1, "the user is not asked again");
        // And it stays refused without another request to the token endpoint.
        let tokens_before = server.hits("/token").len();
        assert!(c.handle_challenge(MCP, 401, &[]).await.is_err());
        assert_eq!(server.hits("/token").len(), tokens_before);
    }

    #[test]
    fn token_goes_only_to_its_resource() {
        let cases = [
            ("https://h/mcp", "https://h/mcp", true),
            ("https://h/mcp?x=1", "https://h/mcp", true),
            ("https://h/mcp/", "https://h/mcp", true),
            ("https://h/other", "https://h/mcp", false),
            ("https://evil/mcp", "https://h/mcp", false),
            ("https://h/mcp2", "https://h/mcp", false),
        ];
        for (url, server, ok) in cases {
            assert_eq!(same_resource(url, server), ok, "{url}");
        }
    }
}
