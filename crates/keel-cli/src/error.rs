//! The one error type of the CLI and its exit-code map (the MCP Inspector CLI's codes, plus 10 and 11).
//!
//! Every failure ends as a [`CliError`]; `main` prints it as one JSON line on stderr,
//! `{"error":{"code","message",…}}`, and exits with [`CliError::exit_code`].

use std::fmt;

use keel_mcp::Error as McpError;
use serde_json::{Value, json};

/// What went wrong, as the exit code tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad arguments, an unreadable config or argument file, arguments that fail the tool's schema.
    Usage,
    /// The server wants authorization, or authorization failed.
    AuthRequired,
    /// The server could not be reached (connect failure, DNS, TLS), or the stdio command could not start.
    Unreachable,
    /// The tool reported an error (`isError: true`), or there is no such tool.
    ToolError,
    /// The peer broke the protocol, or answered with a JSON-RPC error.
    Protocol,
    /// No answer in time.
    Timeout,
}

impl Kind {
    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Usage => 1,
            Kind::AuthRequired => 3,
            Kind::Unreachable => 4,
            Kind::ToolError => 5,
            Kind::Protocol => 10,
            Kind::Timeout => 11,
        }
    }

    /// The `code` of the error envelope.
    fn code(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::AuthRequired => "auth_required",
            Kind::Unreachable => "unreachable",
            Kind::ToolError => "tool_error",
            Kind::Protocol => "protocol_error",
            Kind::Timeout => "timeout",
        }
    }
}

/// A failure of the command, with what the user needs to act on it.
#[derive(Debug)]
pub struct CliError {
    pub kind: Kind,
    /// A more precise `code` than the kind's (e.g. `tool_not_found`).
    pub code: Option<&'static str>,
    pub message: String,
    /// Extra fields of the envelope (`cause`, `status`, `url`, `rpc`, `result`).
    pub details: serde_json::Map<String, Value>,
}

impl CliError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        CliError { kind, code: None, message: message.into(), details: Default::default() }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(Kind::Usage, message)
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// The one line written to stderr.
    pub fn envelope(&self) -> Value {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code.unwrap_or(self.kind.code())));
        error.insert("message".into(), json!(self.message));
        error.insert("exitCode".into(), json!(self.exit_code()));
        error.extend(self.details.clone());
        json!({ "error": error })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message of [`McpError::Closed`] (a stdio server that exits during the handshake did not start).
pub const CLOSED: &str = "the server closed the connection";

/// The JSON-RPC code for an unknown tool in recent revisions, and the spec's generic one.
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

impl From<McpError> for CliError {
    fn from(e: McpError) -> Self {
        match e {
            McpError::Transport(io) => {
                let mut error = CliError::new(Kind::Unreachable, format!("cannot reach the server: {io}"));
                if let Some(cause) = std::error::Error::source(&io) {
                    error = error.with("cause", cause.to_string());
                }
                error
            }
            McpError::Unauthorized(challenge) => CliError::new(
                Kind::AuthRequired,
                format!(
                    "the server requires authorization: {challenge}; run `keel auth login URL` or pass credentials"
                ),
            )
            .with("status", challenge.status),
            McpError::Auth(auth) => CliError::new(Kind::AuthRequired, format!("authorization failed: {auth}")),
            McpError::Timeout(d) => CliError::new(Kind::Timeout, format!("no answer within {:.3} s", d.as_secs_f64())),
            McpError::Rpc(rpc) => {
                let code = rpc.code;
                CliError::new(Kind::Protocol, format!("the server answered with error {}: {}", rpc.code, rpc.message))
                    .with("rpc", serde_json::to_value(&rpc).unwrap_or(Value::Null))
                    .with_code(if code == METHOD_NOT_FOUND { "method_not_found" } else { "rpc_error" })
            }
            McpError::Closed => CliError::new(Kind::Protocol, CLOSED),
            McpError::Json(e) => CliError::new(Kind::Protocol, format!("invalid message from the server: {e}")),
            McpError::Protocol(why) => CliError::new(Kind::Protocol, why),
            other => CliError::new(Kind::Protocol, other.to_string()),
        }
    }
}

/// Maps a failed `tools/call`: an unknown tool is a tool error (exit 5), like the Inspector's.
pub fn tool_call_error(e: McpError, tool: &str) -> CliError {
    match &e {
        McpError::Rpc(rpc) if rpc.code == INVALID_PARAMS && rpc.message.to_lowercase().contains("unknown tool") => {
            CliError::new(Kind::ToolError, format!("no tool named {tool:?}: {}", rpc.message))
                .with_code("tool_not_found")
        }
        McpError::Rpc(rpc) if rpc.code == INVALID_PARAMS && rpc.message.to_lowercase().contains("not found") => {
            CliError::new(Kind::ToolError, format!("no tool named {tool:?}: {}", rpc.message))
                .with_code("tool_not_found")
        }
        _ => CliError::from(e),
    }
}

impl From<clap::Error> for CliError {
    fn from(e: clap::Error) -> Self {
        CliError::usage(e.to_string().trim().to_owned())
    }
}
