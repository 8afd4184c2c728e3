//! Test kit (feature `testing`): drive a Keel server from a Keel client in the same process, with no
//! sockets, and check what it does.
//!
//! - [`TestPair`]: a [`Server`](crate::server::Server) and a [`Client`](crate::client::Client) joined in
//!   memory, in either era (pick the revision with [`TestPairBuilder::protocol_version`]).
//! - [`Script`]: the client's answers to the server's `sampling/createMessage`, `elicitation/create` and
//!   `roots/list` requests, queued in advance, and the requests the server made.
//! - [`Notifications`]: every notification and progress update the client received, with awaitable
//!   assertions ([`Notifications::wait_for`]) bounded in time.
//! - [`HttpServiceTransport`]: the client side of the streamable HTTP transport calling the server's
//!   [`McpService`](crate::server::http::McpService) in memory ([`TestPairBuilder::over_http`]), so the
//!   HTTP paths (header checks, sessions, SSE streams) run too, still without a socket.
//! - [`FaultyTransport`]: wraps any transport and delays, drops, reorders or truncates chosen frames
//!   ([`Faults`]), to exercise retry, timeout and cancellation paths.
//!
//! **Deterministic time.** Run tests under `#[tokio::test(start_paused = true)]` (tokio's `test-util`
//! feature): delays of [`Faults`], request timeouts and the waits of [`Notifications`] then run on tokio's
//! virtual clock, which jumps ahead whenever every task is idle — no real waiting, the same result every
//! run.
//!
//! ```
//! use keel_mcp::protocol::{Implementation, ProtocolVersion};
//! use keel_mcp::server::{NoArgs, Server};
//! use keel_mcp::testing::TestPair;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel_mcp::Error> {
//! let server = Server::builder(Implementation::new("demo", "1"))
//!     .tool("hello", "Says hello", |_: NoArgs| async { "hello" })
//!     .build();
//! for version in [ProtocolVersion::V2025_11_25, ProtocolVersion::V2026_07_28] {
//!     let pair = TestPair::builder().protocol_version(version).connect(&server).await?;
//!     let result = pair.client().call_tool("hello", json!({})).await?;
//!     assert_eq!(result.is_error, None);
//!     pair.close().await;
//! }
//! # Ok(()) }
//! ```

mod capture;
mod faults;
mod http;
mod pair;
mod script;

pub use capture::Notifications;
pub use faults::{Direction, Fault, Faults, FaultyReader, FaultyTransport, FaultyWriter, FrameInfo};
pub use http::{HttpServiceReader, HttpServiceTransport, HttpServiceWriter};
pub use pair::{TestPair, TestPairBuilder};
pub use script::Script;
