//! # Keel — a Model Context Protocol SDK for Rust
//!
//! Keel speaks every MCP revision a user meets: the legacy, session-based revisions (2024-11-05 through
//! 2025-11-25) and the modern, stateless 2026-07-28 revision, choosing per peer ("dual-era").
//!
//! Layers, bottom up:
//! - [`protocol`]: the wire model, pure data.
//! - `engine`: a transport-agnostic JSON-RPC peer (ids, pending requests, cancellation, progress, bounded
//!   dispatch).
//! - `transport`: stdio and child-process transports.
//! - `server` and `client`: the APIs most users touch.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod protocol;

mod error;
mod limits;

pub use error::Error;
pub use limits::Limits;

#[cfg(feature = "http-client")]
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "engine")]
pub mod transport;
