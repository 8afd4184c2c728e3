//! One process, two roles: Keel's embedded OAuth 2.1 authorization server, and the MCP server whose
//! tokens it issues (`/mcp`: the `protected_server` example's notes server, tools `whoami`, `list_notes`
//! (`notes:read`), `add_note` (`notes:write`), behind Keel's resource-server layer).
//!
//! ```text
//! cargo run --release -p keel-mcp --example authorization_server --features authorization-server,resource-server -- \
//!     --port 9000 --auto-approve [--token-ttl SECONDS] [--public-client-id ID] \
//!     [--confidential-client-id ID --client-secret S]
//! ```
//!
//! The issuer is exactly `http://127.0.0.1:PORT`; the MCP endpoint `http://127.0.0.1:PORT/mcp` answers 401
//! with a `resource_metadata` pointer until a request carries an access token from this issuer for that
//! resource; that 401 asks for `notes:read` only, so a client steps up to `notes:write` (a 403
//! `insufficient_scope`, then a new authorization) when it first calls `add_note`. Clients given on the command line are pre-registered with the redirect URI
//! `http://127.0.0.1:3000/callback` (any loopback port is accepted) and the `authorization_code` and
//! `refresh_token` grants; others register dynamically. With only a confidential client configured the
//! metadata does not advertise `none`, so a client reading it sends its secret. A line containing
//! `listening` is printed when the server accepts connections; SIGTERM or Ctrl-C stops it.
//!
//! Without `--auto-approve` each authorization shows the built-in consent page (the client's name, logo and
//! redirect host, the scopes; Allow / Deny) for the single user `demo-user`; `--auto-approve` approves every
//! request at once as that user. Both are for development on loopback: anyone who reaches the page is the
//! user.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keel_mcp::auth::resource::{JwtConfig, JwtVerifier};
use keel_mcp::auth::server::{AuthorizationServer, AutoApprove, Client, ClientAuthMethod, ConsentPage};
use keel_mcp::server::http::{HttpConfig, McpService, PeerAddr, ResponseBody};
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

#[path = "protected_app/notes.rs"]
mod notes;

/// Routes the MCP endpoint and its protected resource metadata to the MCP service (the resource-server
/// layer verifies this issuer's tokens there, fetching the keys from `{issuer}/jwks`), everything else to the
/// authorization server.
struct App {
    authorization: AuthorizationServer,
    mcp: McpService,
}

impl App {
    async fn handle(self: Arc<Self>, mut request: Request<Incoming>, peer: SocketAddr) -> Response<ResponseBody> {
        request.extensions_mut().insert(PeerAddr(peer));
        let path = request.uri().path();
        let to_mcp = path == "/mcp" || path.starts_with("/.well-known/oauth-protected-resource");
        let Ok(response) = if to_mcp {
            self.mcp.clone().oneshot(request).await
        } else {
            self.authorization.clone().oneshot(request).await
        };
        response
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        format!("{e}\nusage: authorization_server --port P [--auto-approve] [--token-ttl SECONDS] [--public-client-id ID] [--confidential-client-id ID --client-secret S]")
    })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    let issuer = format!("http://127.0.0.1:{port}");
    let resource = format!("{issuer}/mcp");

    let builder = AuthorizationServer::builder(&issuer).resource(&resource).scopes(["notes:read", "notes:write"]);
    let mut builder = if args.auto_approve {
        builder.consent(AutoApprove::as_user("demo-user"))
    } else {
        // The owner of this server is whoever reaches the page: fine on loopback, not on a network.
        builder.consent(ConsentPage::single_user("demo-user")?)
    };
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

    // The 401 asks for `notes:read` only: a client starts with the least and steps up to `notes:write`
    // (a 403 `insufficient_scope`, then a new authorization) when it first adds a note.
    let verifier = JwtVerifier::new(JwtConfig::new(&issuer, format!("{issuer}/jwks"), &resource))?;
    let protection = notes::protection(&issuer, &resource, Arc::new(verifier)).default_scopes([notes::READ]);
    let config =
        HttpConfig::default().resource_server(protection).map_err(|e| format!("resource server configuration: {e}"))?;
    let mcp = notes::server().http_service(config);
    let app = Arc::new(App { authorization, mcp: mcp.clone() });
    println!("listening on {issuer} (authorization server {issuer}, MCP server {issuer}/mcp)");

    let shutdown = keel_mcp::server::http::shutdown_signal();
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
