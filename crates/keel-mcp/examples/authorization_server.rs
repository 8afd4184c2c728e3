//! One process, two roles: Keel's embedded OAuth 2.1 authorization server, and the MCP server whose
//! tokens it issues (`/mcp`, tools `whoami`, `list_notes`, `add_note`).
//!
//! ```text
//! cargo run --release -p keel-mcp --example authorization_server --features authorization-server -- \
//!     --port 9000 --auto-approve [--token-ttl SECONDS] [--public-client-id ID] \
//!     [--confidential-client-id ID --client-secret S]
//! ```
//!
//! The issuer is exactly `http://127.0.0.1:PORT`; the MCP endpoint `http://127.0.0.1:PORT/mcp` answers 401
//! with a `resource_metadata` pointer until a request carries an access token from this issuer for that
//! resource. Clients given on the command line are pre-registered with the redirect URI
//! `http://127.0.0.1:3000/callback` (any loopback port is accepted) and the `authorization_code` and
//! `refresh_token` grants; others register dynamically. With only a confidential client configured the
//! metadata does not advertise `none`, so a client reading it sends its secret. A line containing
//! `listening` is printed when the server accepts connections; SIGTERM or Ctrl-C stops it.
//!
//! `--auto-approve` approves every authorization request as the user `demo-user`: development only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keel_mcp::auth::server::{AuthorizationServer, AutoApprove, Client, ClientAuthMethod};
use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::{HttpConfig, McpService, PeerAddr, ResponseBody};
use keel_mcp::server::{HandlerError, Json, NoArgs, Principal, RequestContext, Server};
use tower::ServiceExt as _;

const CALLBACK: &str = "http://127.0.0.1:3000/callback";

#[derive(Debug, Default)]
struct Args {
    port: u16,
    auto_approve: bool,
    token_ttl: Option<u64>,
    public_client: Option<String>,
    confidential_client: Option<String>,
    client_secret: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    let mut port = None;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = Some(value()?.parse().map_err(|_| "--port takes a port number")?),
            "--auto-approve" => args.auto_approve = true,
            "--token-ttl" => args.token_ttl = Some(value()?.parse().map_err(|_| "--token-ttl takes seconds")?),
            "--public-client-id" => args.public_client = Some(value()?),
            "--confidential-client-id" => args.confidential_client = Some(value()?),
            "--client-secret" => args.client_secret = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    args.port = port.ok_or("--port is required")?;
    if args.confidential_client.is_some() != args.client_secret.is_some() {
        return Err("--confidential-client-id and --client-secret go together".into());
    }
    Ok(args)
}

/// The notes of the MCP server.
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct AddNote {
    /// The note's text.
    text: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Whoami {
    subject: Option<String>,
    client_id: Option<String>,
    scopes: Vec<String>,
}

fn caller(ctx: &RequestContext) -> Result<&Principal, HandlerError> {
    ctx.principal().ok_or_else(|| HandlerError::failed("not authenticated"))
}

fn require_scope(ctx: &RequestContext, scope: &str) -> Result<(), HandlerError> {
    if caller(ctx)?.has_scope(scope) { Ok(()) } else { Err(HandlerError::failed(format!("needs scope {scope}"))) }
}

fn mcp_server() -> Server {
    Server::builder(Implementation::new("keel-protected-notes", env!("CARGO_PKG_VERSION")))
        .state(Notes::default())
        .tool("whoami", "Who the access token says you are", |ctx: RequestContext, _: NoArgs| async move {
            let p = caller(&ctx)?;
            Ok::<_, HandlerError>(Json(Whoami {
                subject: p.subject.clone(),
                client_id: p.client_id.clone(),
                scopes: p.scopes.clone(),
            }))
        })
        .tool("list_notes", "Lists the notes (scope notes:read)", |ctx: RequestContext, _: NoArgs| async move {
            require_scope(&ctx, "notes:read")?;
            let notes = ctx.state::<Notes>()?.0.lock().map_err(|_| HandlerError::failed("notes unavailable"))?.clone();
            Ok::<_, HandlerError>(Json(serde_json::json!({ "notes": notes })))
        })
        .tool("add_note", "Adds a note (scope notes:write)", |ctx: RequestContext, args: AddNote| async move {
            require_scope(&ctx, "notes:write")?;
            let mut notes = ctx.state::<Notes>()?.0.lock().map_err(|_| HandlerError::failed("notes unavailable"))?;
            if notes.len() >= 1000 || args.text.len() > 4096 {
                return Err(HandlerError::failed("too many notes, or a note too long"));
            }
            notes.push(args.text);
            Ok(Json(serde_json::json!({ "count": notes.len() })))
        })
        .build()
}

/// Verifies an access token of this issuer for `resource` against the issuer's current JWK Set.
fn verify(authorization: &AuthorizationServer, resource: &str, token: &str) -> Option<Principal> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some("at+jwt") || header.alg != jsonwebtoken::Algorithm::ES256 {
        return None;
    }
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(authorization.jwks()).ok()?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref()?)?).ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[authorization.issuer()]);
    validation.set_audience(&[resource]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let claims =
        jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation).ok()?.claims;
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let mut principal = Principal::default();
    principal.subject = text("sub");
    principal.client_id = text("client_id");
    principal.scopes = text("scope").map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    principal.audience = vec![resource.to_owned()];
    principal.expires_at = claims.get("exp").and_then(|v| v.as_u64()).map(|s| UNIX_EPOCH + Duration::from_secs(s));
    principal.claims = claims;
    Some(principal)
}

struct App {
    authorization: AuthorizationServer,
    mcp: McpService,
    issuer: String,
    resource: String,
}

impl App {
    fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.issuer)
    }

    async fn handle(self: Arc<Self>, mut request: Request<Incoming>, peer: SocketAddr) -> Response<ResponseBody> {
        request.extensions_mut().insert(PeerAddr(peer));
        let path = request.uri().path();
        if path == "/mcp" {
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            return match token.and_then(|t| verify(&self.authorization, &self.resource, t)) {
                Some(principal) => {
                    request.extensions_mut().insert(Arc::new(principal));
                    let Ok(response) = self.mcp.clone().oneshot(request).await;
                    response
                }
                None => self.unauthorized(token.is_some()),
            };
        }
        if path == "/.well-known/oauth-protected-resource/mcp" || path == "/.well-known/oauth-protected-resource" {
            let body = serde_json::json!({
                "resource": self.resource,
                "authorization_servers": [self.issuer],
                "scopes_supported": ["notes:read", "notes:write"],
                "bearer_methods_supported": ["header"],
            });
            let mut response = Response::new(ResponseBody::full(body.to_string()));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return response;
        }
        let Ok(response) = self.authorization.clone().oneshot(request).await;
        response
    }

    fn unauthorized(&self, had_token: bool) -> Response<ResponseBody> {
        let error = if had_token { ", error=\"invalid_token\"" } else { "" };
        let challenge = format!("Bearer resource_metadata=\"{}\"{error}", self.resource_metadata_url());
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        format!("{e}\nusage: authorization_server --port P [--auto-approve] [--token-ttl SECONDS] [--public-client-id ID] [--confidential-client-id ID --client-secret S]")
    })?;
    if !args.auto_approve {
        return Err("the consent page is not available in this build: run with --auto-approve".into());
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    let issuer = format!("http://127.0.0.1:{port}");
    let resource = format!("{issuer}/mcp");

    let mut builder = AuthorizationServer::builder(&issuer)
        .resource(&resource)
        .scopes(["notes:read", "notes:write"])
        .consent(AutoApprove::as_user("demo-user"));
    if let Some(ttl) = args.token_ttl {
        builder = builder.token_ttl(Duration::from_secs(ttl));
    }
    if args.confidential_client.is_some() && args.public_client.is_none() {
        // A client that sees `none` advertised may try it; a confidential-only server does not offer it.
        builder = builder.token_endpoint_auth_methods([
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::PrivateKeyJwt,
        ]);
    }
    let authorization = builder.build()?;
    if let Some(id) = &args.public_client {
        authorization
            .register_client(Client::public(id, vec![CALLBACK.into()]).name("Pre-registered public client"))?;
    }
    if let (Some(id), Some(secret)) = (&args.confidential_client, &args.client_secret) {
        let client =
            Client::confidential(id, secret, vec![CALLBACK.into()])?.name("Pre-registered confidential client");
        authorization.register_client(client)?;
    }

    let mcp = mcp_server().http_service(HttpConfig::default());
    let app = Arc::new(App { authorization, mcp: mcp.clone(), issuer: issuer.clone(), resource });
    println!("listening on {issuer} (authorization server {issuer}, MCP server {issuer}/mcp)");

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(_) => continue,
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(app.handle(request, peer).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    mcp.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
