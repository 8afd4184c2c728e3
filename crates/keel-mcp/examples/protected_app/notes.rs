//! The notes server of the `protected_server` example: its tools, their scopes and its resource-server
//! configuration. The example serves it; `tests/resource_server.rs` includes this file to test the very same
//! configuration in-process.

use std::sync::{Arc, Mutex};

use keel_mcp::auth::resource::{JwtConfig, JwtVerifier, ResourceServerConfig, TokenVerifier};
use keel_mcp::protocol::Implementation;
use keel_mcp::server::http::HttpConfig;
use keel_mcp::server::{HandlerError, Json, NoArgs, RequestContext, Server, ToolDef};

/// Reading notes.
pub const READ: &str = "notes:read";
/// Adding notes.
pub const WRITE: &str = "notes:write";

/// The notes everyone shares.
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

/// What `whoami` answers: who the token says the caller is.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct WhoAmI {
    sub: Option<String>,
    client_id: Option<String>,
    scopes: Vec<String>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct NoteList {
    notes: Vec<String>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NewNote {
    /// The note's text.
    text: String,
}

/// The MCP server: `whoami` (any valid token), `list_notes` (`notes:read`), `add_note` (`notes:write`).
pub fn server() -> Server {
    let whoami = ToolDef::new("whoami", |ctx: RequestContext, _: NoArgs| async move {
        let principal = ctx.principal().ok_or_else(|| HandlerError::failed("no verified caller"))?;
        Ok::<_, HandlerError>(Json(WhoAmI {
            sub: principal.subject.clone(),
            client_id: principal.client_id.clone(),
            scopes: principal.scopes.clone(),
        }))
    })
    .description("Who the access token says you are");
    let list = ToolDef::new("list_notes", |ctx: RequestContext, _: NoArgs| async move {
        let notes = ctx.state::<Notes>()?.0.lock().map_err(|_| HandlerError::failed("notes unavailable"))?.clone();
        Ok::<_, HandlerError>(Json(NoteList { notes }))
    })
    .description("Lists the notes")
    .scopes([READ]);
    let add = ToolDef::new("add_note", |ctx: RequestContext, NewNote { text }: NewNote| async move {
        ctx.state::<Notes>()?.0.lock().map_err(|_| HandlerError::failed("notes unavailable"))?.push(text);
        Ok::<_, HandlerError>("added")
    })
    .description("Adds a note")
    .scopes([WRITE]);
    Server::builder(Implementation::new("protected-notes", "1.0.0"))
        .state(Notes::default())
        .tool_def(whoami)
        .tool_def(list)
        .tool_def(add)
        .build()
}

/// The HTTP configuration: tokens from `issuer`, signed with the keys at `jwks_url`, for `resource`.
/// `jwt` may adjust the verifier (tests shorten the refetch interval).
#[allow(dead_code, reason = "the tests' entry point; the example chooses its verifier from its arguments")]
pub fn http_config(
    issuer: &str,
    jwks_url: &str,
    resource: &str,
    jwt: impl FnOnce(JwtConfig) -> JwtConfig,
) -> Result<HttpConfig, Box<dyn std::error::Error + Send + Sync>> {
    let verifier = JwtVerifier::new(jwt(JwtConfig::new(issuer, jwks_url, resource)))?;
    Ok(HttpConfig::default().resource_server(protection(issuer, resource, Arc::new(verifier)))?)
}

/// The resource-server configuration: tokens from `issuer` for `resource`, checked by `verifier`, with the
/// notes scopes advertised.
pub fn protection(issuer: &str, resource: &str, verifier: Arc<dyn TokenVerifier>) -> ResourceServerConfig {
    ResourceServerConfig::new(resource, [issuer], verifier)
        .scopes_supported([READ, WRITE])
        .resource_name("Protected notes (Keel example)")
}
