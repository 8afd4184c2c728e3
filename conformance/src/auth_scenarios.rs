//! The `auth/*` client scenarios: a Keel [`Client`] over the streamable HTTP transport, authorized by
//! Keel's [`OAuthClient`] with the headless redirect step the suite's mock authorization server expects.
//! Every scenario runs the same well-behaved flow — list tools, call `test-tool` — and the suite judges what
//! the client sent on the way.

use std::sync::Arc;

use anyhow::Context as _;
use keel_mcp::auth::client::{AssertionKey, ClientCredentials, HeadlessRedirect, IdentityProviderGrant, OAuthClient};
use keel_mcp::client::Client;
use keel_mcp::client::http::HttpTransport;
use keel_mcp::protocol::{Implementation, ProtocolVersion};

/// The client ID metadata document URL the suite's authorization server expects (it never fetches it).
pub const CIMD_CLIENT_ID: &str = "https://conformance-test.local/client-metadata.json";
/// The redirect URI the headless step registers; the mock authorization server accepts any.
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";

/// Builds the OAuth client for `scenario` (pre-registered credentials come from the context).
pub fn oauth_client(scenario: &str, url: &str, context: Option<&serde_json::Value>) -> anyhow::Result<OAuthClient> {
    let field = |k: &str| context.and_then(|c| c.get(k)).and_then(|v| v.as_str()).map(str::to_owned);
    match scenario {
        "auth/client-credentials-basic" => {
            let id = field("client_id").context("no client_id in the context")?;
            let secret = field("client_secret").context("no client_secret in the context")?;
            return Ok(OAuthClient::client_credentials(url, ClientCredentials::confidential(id, secret)).build()?);
        }
        "auth/client-credentials-jwt" => {
            let id = field("client_id").context("no client_id in the context")?;
            let pem = field("private_key_pem").context("no private_key_pem in the context")?;
            let key = AssertionKey::from_pkcs8(pem.as_bytes())?;
            return Ok(OAuthClient::client_credentials_jwt(url, id, key).build()?);
        }
        "auth/enterprise-managed-authorization" => {
            let creds = ClientCredentials::confidential(
                field("client_id").context("no client_id in the context")?,
                field("client_secret").context("no client_secret in the context")?,
            );
            let idp = IdentityProviderGrant {
                token_endpoint: field("idp_token_endpoint").context("no idp_token_endpoint in the context")?,
                client_id: field("idp_client_id").context("no idp_client_id in the context")?,
                id_token: field("idp_id_token").context("no idp_id_token in the context")?,
            };
            return Ok(OAuthClient::enterprise_managed(url, creds, idp).build()?);
        }
        "auth/wif-jwt-bearer" => {
            let jwt = field("valid_jwt").context("no valid_jwt in the context")?;
            return Ok(OAuthClient::jwt_bearer(url, jwt).build()?);
        }
        _ => {}
    }
    let redirect = HeadlessRedirect::new(REDIRECT_URI)?;
    let mut builder = OAuthClient::builder(url, redirect)
        .client_name("keel-conformance-client")
        .client_metadata_url(CIMD_CLIENT_ID)
        // Only used where the authorization server advertises ES256 DPoP proofs (auth/dpop*).
        .dpop(true);
    if let Some(id) = field("client_id") {
        let creds = match field("client_secret") {
            Some(secret) => ClientCredentials::confidential(id, secret),
            None => ClientCredentials::public(id),
        };
        builder = builder.pre_registered(creds);
    }
    Ok(builder.build()?)
}

/// Runs one `auth/*` scenario against the MCP server at `url`.
pub async fn run(scenario: &str, url: &str, context: Option<serde_json::Value>) -> anyhow::Result<()> {
    let oauth = oauth_client(scenario, url, context.as_ref())?;
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_else(|_| "2025-11-25".into());
    let transport = HttpTransport::new(url)?.auth(Arc::new(oauth));
    let client = Client::builder(Implementation::new("keel-conformance-client", env!("CARGO_PKG_VERSION")))
        .protocol_versions([ProtocolVersion::new(version)])
        .connect(transport)
        .await
        .with_context(|| format!("{scenario}: connect"))?;
    let tools = client.list_all_tools().await.with_context(|| format!("{scenario}: tools/list"))?;
    if tools.iter().any(|t| t.name == "test-tool") {
        client
            .call_tool("test-tool", serde_json::json!({}))
            .await
            .with_context(|| format!("{scenario}: tools/call"))?;
    }
    client.close().await;
    Ok(())
}
