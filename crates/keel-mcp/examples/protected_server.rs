//! A notes server protected as an OAuth 2.1 resource server: it accepts JWT access tokens from one issuer,
//! checked against the issuer's JWKS, and serves both eras at `http://127.0.0.1:PORT/mcp`.
//!
//! ```sh
//! cargo run --example protected_server --features resource-server -- \
//!     --port 8080 --issuer https://idp.example --jwks-url https://idp.example/jwks.json \
//!     --resource http://127.0.0.1:8080/mcp
//! ```
//!
//! With `--introspection-url URL --client-id ID --client-secret S` tokens are checked by RFC 7662
//! introspection at URL (authenticating with `client_secret_basic`) instead of as JWTs; with `--dpop` every
//! token must be DPoP-bound and come with a DPoP proof (RFC 9449), and bearer tokens are refused.
//!
//! Scopes: `notes:read`, `notes:write`. Tools: `whoami` (any valid token; `{"sub","client_id","scopes"}`),
//! `list_notes` (`notes:read`), `add_note` (`notes:write`, `{"text": string}`). Prints a line containing
//! `listening` once it accepts connections, and exits cleanly on SIGTERM or Ctrl-C. `--port 0` picks a free
//! port (the line names it).

#[path = "protected_app/notes.rs"]
mod notes;

use std::process::ExitCode;
use std::sync::Arc;

use keel_mcp::auth::resource::dpop::DpopVerifier;
use keel_mcp::auth::resource::introspection::IntrospectionVerifier;
use keel_mcp::auth::resource::{JwtConfig, JwtVerifier, TokenVerifier};
use keel_mcp::server::http::HttpConfig;

struct Args {
    port: u16,
    issuer: String,
    jwks_url: String,
    resource: String,
    introspection: Option<Introspection>,
    dpop: bool,
}

/// Where and how to introspect tokens.
struct Introspection {
    url: String,
    client_id: String,
    client_secret: String,
}

const USAGE: &str = "usage: protected_server --port P --issuer ISS --jwks-url URL --resource URL \
                     [--introspection-url URL --client-id ID --client-secret S] [--dpop]";

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut port, mut issuer, mut jwks_url, mut resource) = (None, None, None, None);
    let (mut introspection_url, mut client_id, mut client_secret, mut dpop) = (None, None, None, false);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = Some(value()?.parse::<u16>().map_err(|e| format!("--port: {e}"))?),
            "--issuer" => issuer = Some(value()?),
            "--jwks-url" => jwks_url = Some(value()?),
            "--resource" => resource = Some(value()?),
            "--introspection-url" => introspection_url = Some(value()?),
            "--client-id" => client_id = Some(value()?),
            "--client-secret" => client_secret = Some(value()?),
            "--dpop" => dpop = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let missing = |name: &str| format!("{name} is required");
    let introspection = match (introspection_url, client_id, client_secret) {
        (None, None, None) => None,
        (Some(url), Some(client_id), Some(client_secret)) => Some(Introspection { url, client_id, client_secret }),
        _ => return Err("--introspection-url, --client-id and --client-secret go together".into()),
    };
    Ok(Args {
        port: port.ok_or_else(|| missing("--port"))?,
        issuer: issuer.ok_or_else(|| missing("--issuer"))?,
        jwks_url: jwks_url.ok_or_else(|| missing("--jwks-url"))?,
        resource: resource.ok_or_else(|| missing("--resource"))?,
        introspection,
        dpop,
    })
}

/// The protection the arguments ask for: JWTs checked against the JWKS, or introspection; DPoP required
/// with `--dpop`.
fn http_config(args: &Args) -> Result<HttpConfig, Box<dyn std::error::Error + Send + Sync>> {
    let verifier: Arc<dyn TokenVerifier> = match &args.introspection {
        Some(i) => Arc::new(
            IntrospectionVerifier::builder(&i.url, &args.resource)
                .client_secret_basic(&i.client_id, &i.client_secret)
                .issuer(&args.issuer)
                .build()?,
        ),
        None => Arc::new(JwtVerifier::new(JwtConfig::new(&args.issuer, &args.jwks_url, &args.resource))?),
    };
    let mut protection = notes::protection(&args.issuer, &args.resource, verifier);
    if args.dpop {
        protection = protection.dpop(DpopVerifier::new(), true);
    }
    Ok(HttpConfig::default().resource_server(protection)?)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("protected_server: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match http_config(&args) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("protected_server: {why}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(listener) => listener,
        Err(why) => {
            eprintln!("protected_server: cannot listen on port {}: {why}", args.port);
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    println!("protected_server listening on http://127.0.0.1:{port}/mcp (resource {})", args.resource);
    match notes::server().serve_http_on(listener, config, keel_mcp::server::http::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("protected_server: {why}");
            ExitCode::FAILURE
        }
    }
}
