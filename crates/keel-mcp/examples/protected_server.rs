//! A notes server protected as an OAuth 2.1 resource server: it accepts JWT access tokens from one issuer,
//! checked against the issuer's JWKS, and serves both eras at `http://127.0.0.1:PORT/mcp`.
//!
//! ```sh
//! cargo run --example protected_server --features resource-server -- \
//!     --port 8080 --issuer https://idp.example --jwks-url https://idp.example/jwks.json \
//!     --resource http://127.0.0.1:8080/mcp
//! ```
//!
//! Scopes: `notes:read`, `notes:write`. Tools: `whoami` (any valid token; `{"sub","client_id","scopes"}`),
//! `list_notes` (`notes:read`), `add_note` (`notes:write`, `{"text": string}`). Prints a line containing
//! `listening` once it accepts connections, and exits cleanly on SIGTERM or Ctrl-C. `--port 0` picks a free
//! port (the line names it).

#[path = "protected_app/notes.rs"]
mod notes;

use std::process::ExitCode;

struct Args {
    port: u16,
    issuer: String,
    jwks_url: String,
    resource: String,
}

const USAGE: &str = "usage: protected_server --port P --issuer ISS --jwks-url URL --resource URL \
                     [--introspection-url URL --client-id ID --client-secret S] [--dpop]";

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut port, mut issuer, mut jwks_url, mut resource) = (None, None, None, None);
    let mut not_yet = Vec::new();
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = Some(value()?.parse::<u16>().map_err(|e| format!("--port: {e}"))?),
            "--issuer" => issuer = Some(value()?),
            "--jwks-url" => jwks_url = Some(value()?),
            "--resource" => resource = Some(value()?),
            "--introspection-url" | "--client-id" | "--client-secret" => {
                value()?;
                not_yet.push(flag);
            }
            "--dpop" => not_yet.push(flag),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !not_yet.is_empty() {
        return Err(format!("{} not supported by this build yet (introspection and DPoP)", not_yet.join(", ")));
    }
    let missing = |name: &str| format!("{name} is required");
    Ok(Args {
        port: port.ok_or_else(|| missing("--port"))?,
        issuer: issuer.ok_or_else(|| missing("--issuer"))?,
        jwks_url: jwks_url.ok_or_else(|| missing("--jwks-url"))?,
        resource: resource.ok_or_else(|| missing("--resource"))?,
    })
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
    let config = match notes::http_config(&args.issuer, &args.jwks_url, &args.resource, |jwt| jwt) {
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
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    match notes::server().serve_http_on(listener, config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("protected_server: {why}");
            ExitCode::FAILURE
        }
    }
}
