//! The OAuth 2.1 client for MCP authorization (feature `auth`).
//!
//! [`OAuthClient`] implements [`crate::auth::HttpAuth`]: the streamable HTTP client transport asks it for an
//! `Authorization` header before each request and reports each 401 / 403. On a challenge it runs the MCP
//! authorization flow:
//!
//! 1. parse `WWW-Authenticate` ([`challenge`]) and find the protected resource metadata — the challenge's
//!    `resource_metadata`, else the path-aware, then the root well-known URL ([`discovery`]);
//! 2. check that the metadata's `resource` covers the MCP server ([`metadata::check_resource`]) — a mismatch
//!    stops before any authorization request;
//! 3. fetch the authorization server metadata (RFC 8414 and OIDC, path insertion orders) and require its
//!    `issuer` to equal, byte for byte, the issuer it was discovered for; servers of the 2025-03-26 revision
//!    (no resource metadata) get the root metadata or the default `/authorize` `/token` `/register`;
//! 4. register: pre-registered credentials, else a client ID metadata document URL when the server supports
//!    CIMD, else dynamic registration (`application_type`, the refresh grant); registrations are stored per
//!    issuer, so a move to another authorization server means a fresh registration there;
//! 5. authorization code with PKCE S256 (refused when S256 is not advertised), a 32-byte `state` compared in
//!    constant time, RFC 9207 `iss` checks ([`iss`]), and `resource` (the PRM `resource`, verbatim) on both
//!    the authorization and the token request;
//! 6. scopes ([`scope`]): the challenge's, else the resource's `scopes_supported`, else none; on a 403
//!    `insufficient_scope` the union of held and demanded scopes, at most [`MAX_AUTHORIZATIONS`] times for
//!    the same demand; `offline_access` only when the authorization server lists it (SEP-2207).
//!
//! Tokens carry an absolute expiry and are refreshed ahead of it (a minute, or a quarter of a shorter
//! lifetime, never in their first seconds), and on a 401; `invalid_grant` clears them and a new
//! authorization follows; an expired token that cannot be refreshed is not sent, a new authorization runs
//! first. An `invalid_client` from the token endpoint ends the flow with [`AuthError::ClientRejected`] and
//! no second trip through the browser. What to do next is decided by pure functions of the tokens, the
//! challenge, the discovered metadata, the attempts so far and the time (`plan`). They live in a [`TokenStore`] ([`MemoryTokenStore`],
//! [`FileTokenStore`]) and are only sent to the MCP server URL they were obtained for. The user-facing step
//! is a [`RedirectStep`]: [`LoopbackRedirect`] opens the browser (or prints the URL, or hands it to a hook,
//! for CLIs and CI) and reuses the port of the registered redirect URI when it is free — a dynamic
//! registration whose redirect URI the step cannot use is made again; [`HeadlessRedirect`] reads the
//! redirect from the authorization endpoint's `Location` header.
//!
//! Other grants, for clients without a user at a browser: [`OAuthClient::client_credentials`] (a secret, or
//! a `private_key_jwt` [`AssertionKey`] with [`OAuthClient::client_credentials_jwt`]),
//! [`OAuthClient::jwt_bearer`] (RFC 7523 with a workload identity JWT), and
//! [`OAuthClient::enterprise_managed`] (SEP-990: the SSO ID token is exchanged at the identity provider for an
//! ID-JAG, which the authorization server redeems). They share discovery, the `resource` rules and the store.
//!
//! # Security decisions
//!
//! * Identifiers are compared as the strings the servers sent: the PRM `resource` is sent back verbatim, the
//!   metadata `issuer` and the callback `iss` must equal the issuer byte for byte. The `url` crate is used to
//!   take URLs apart, never to rewrite one that is compared or sent back (it adds `/` and lowercases hosts).
//! * A PRM `resource` that does not cover the MCP server, an issuer that differs from its discovery URL, an
//!   authorization server without S256, a `state` that does not match, or an `iss` that fails the RFC 9207
//!   table each end the flow before the next request goes out, so no code, token or credential reaches a
//!   party that was not validated.
//! * Registrations are keyed by issuer; tokens remember their issuer and resource and are dropped when the
//!   resource metadata points elsewhere, so nothing issued by one authorization server is sent to another.
//! * Refresh tokens are sent only to the token endpoint of the issuer that issued them, with the same
//!   `resource`. A refresh answered with `invalid_grant` deletes the tokens.
//! * Token endpoint authentication is chosen deliberately ([`registration::registration_auth_method`]):
//!   `none` where offered, else `client_secret_post`, else `client_secret_basic` (which also carries
//!   `client_id` in the body). `prompt=consent` accompanies `offline_access` per [`ConsentPrompt`].
//!
//! Every URL the flow touches must be https (or http on exactly `localhost`, `127.0.0.1`, `[::1]`); metadata
//! and endpoint hosts that are private or loopback literals are refused unless the MCP server itself is
//! private ([`url_policy`]); host names are resolved before connecting and refused when any address they
//! resolve to is special-purpose. OAuth requests follow no redirects, read at most 4 MiB, and accept only JSON
//! objects. Tokens, secrets, codes and verifiers never appear in `Debug` output or error messages.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keel_mcp::auth::client::AuthError> {
//! use keel_mcp::auth::client::{LoopbackRedirect, OAuthClient};
//! let redirect = LoopbackRedirect::bind(0).await?;
//! let oauth = OAuthClient::builder("https://mcp.example.com/mcp", redirect).client_name("My app").build()?;
//! // Hand `oauth` to the streamable HTTP client transport as its `HttpAuth`.
//! # let _ = oauth; Ok(()) }
//! ```

pub mod assertion;
pub mod challenge;
pub mod discovery;
pub mod dpop;
mod error;
mod flow;
pub(crate) mod http;
pub mod iss;
#[cfg(test)]
mod memory_as;
pub mod metadata;
mod oauth;
pub mod pkce;
mod plan;
pub mod redirect;
pub mod registration;
pub mod scope;
pub mod token;
pub mod token_store;
pub mod url_policy;

pub use assertion::AssertionKey;
pub use challenge::AuthChallenge;
pub use error::AuthError;
pub use flow::IdentityProviderGrant;
pub use oauth::{MAX_AUTHORIZATIONS, OAuthClient, OAuthClientBuilder};
pub use redirect::{AuthorizationResponse, HeadlessRedirect, LoopbackRedirect, RedirectStep};
pub use registration::ClientCredentials;
pub use scope::ConsentPrompt;
pub use token::TokenSet;
pub use token_store::{FileTokenStore, MemoryTokenStore, StoredAuth, TokenStore};
