//! # Keel — a Model Context Protocol SDK for Rust
//!
//! Keel speaks every MCP revision a user meets: the legacy, session-based revisions (2024-11-05 through
//! 2025-11-25) and the modern, stateless 2026-07-28 revision, choosing per peer ("dual-era").
//!
//! Layers, bottom up:
//! - [`protocol`]: the wire model, pure data (no IO, no async).
//! - `engine`: a transport-agnostic JSON-RPC peer (ids, pending requests, cancellation, progress, bounded
//!   dispatch).
//! - `transport`: stdio, child-process and in-memory transports.
//! - `server` (with `server::http`, feature `http-server`) and `client` (with its streamable HTTP transport,
//!   feature `http-client`): the APIs most users touch.
//! - [`middleware`]: tower layers around the server's operations (`server::middleware`, with one visibility
//!   predicate for lists and calls, `server::visibility`) and around the client's requests
//!   (`client::middleware`).
//! - `auth` (feature `http-client`): how the HTTP client gets credentials — the `HttpAuth` trait, a fixed
//!   `BearerToken`, the `Challenge` of a 401 / 403; with feature `auth`, `auth::client`, the OAuth 2.1 client
//!   for MCP authorization; with feature `resource-server`, `auth::resource`, which makes Keel's HTTP server
//!   an OAuth 2.1 resource server (bearer challenges, protected resource metadata, JWT verification,
//!   introspection, DPoP); with feature `authorization-server`, `auth::server`, an embedded OAuth 2.1
//!   authorization server.
//! - `telemetry` (feature `otel`): OpenTelemetry spans and metrics per the MCP semantic conventions.
//! - `testing` (feature `testing`): an in-process client/server pair, scripts, capture and fault injection.
//!
//! Features: `client`, `server`, `stdio` and `child-process` by default; `http-server`, `http-client`, `auth`,
//! `schema-validation`, the `tasks` and `skills` extensions, `resource-server`, `authorization-server`
//! (`authorization-server-sqlite`), `redis`, `otel` and `testing` on request. Every buffer, queue and wait is
//! bounded ([`Limits`]).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod docs;
pub mod protocol;

mod error;
mod limits;

pub use error::Error;
pub use limits::Limits;

#[cfg(any(feature = "http-client", feature = "resource-server"))]
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(any(feature = "client", feature = "server"))]
pub mod middleware;
#[cfg(feature = "server")]
pub mod server;
/// The `schemars` (major version 1) that tool and prompt argument types derive `JsonSchema` from. Use it
/// when your crate depends on another major, with `#[schemars(crate = "keel_mcp::schemars")]` on the type.
#[cfg(feature = "server")]
pub use schemars;
#[cfg(feature = "engine")]
pub mod transport;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "otel")]
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
