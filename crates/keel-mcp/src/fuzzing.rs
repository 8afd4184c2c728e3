//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): thin wrappers that reach crate-private
//! parsers. Not part of the API; it may change in any release.

use serde_json::value::RawValue;

use crate::protocol::{ErrorObject, JsonObject};
use crate::server::header_params;
use crate::server::http::modern::decode_header_value;
use crate::server::input::{StateBinding, StateSealer};

/// Decodes one `Mcp-Param-*` / `Mcp-Name` header value as the HTTP server does.
pub fn decode_mcp_param(raw: &str) -> Option<String> {
    decode_header_value(raw.trim())
}

/// Checks `headers` (name, raw value) against the `x-mcp-header` declarations of `schema` and the call's
/// `arguments`, as the server does for a `tools/call`.
pub fn check_mcp_params(
    schema: &JsonObject,
    arguments: Option<&JsonObject>,
    headers: &[(String, String)],
) -> Result<(), ErrorObject> {
    let declared = header_params::declared(schema);
    let decoded: Vec<_> =
        headers.iter().map(|(name, raw)| (name.to_ascii_lowercase(), decode_mcp_param(raw))).collect();
    header_params::check(&declared, arguments, &decoded)
}

/// Seals and opens `requestState` like a server with this key.
#[derive(Debug)]
pub struct RequestState(StateSealer);

impl RequestState {
    /// A sealer with a fixed key.
    pub fn with_key(key: [u8; 32]) -> Self {
        RequestState(StateSealer::with_keys(key, Vec::new()))
    }

    /// Seals `state` for a retry of `method` on `target` with `arguments`.
    pub fn seal(&self, method: &str, target: &str, arguments: Option<&RawValue>, state: Option<String>) -> String {
        self.0.seal(StateBinding { method, target, arguments }, None, state)
    }

    /// Opens a `requestState` a client sent back with a call of `method` on `target` with `arguments`.
    pub fn open(
        &self,
        method: &str,
        target: &str,
        arguments: Option<&RawValue>,
        token: &str,
    ) -> Result<Option<String>, ErrorObject> {
        self.0.open(StateBinding { method, target, arguments }, None, token)
    }
}
