//! Multi round-trip requests (2026-07-28, SEP-2322): a server that needs input answers
//! `tools/call`, `prompts/get` or `resources/read` with an input-required result; the client fulfils the
//! input requests and retries the original request with `inputResponses` and the opaque `requestState`.

use super::JsonObject;

/// The client's answers, by the keys of the server's `inputRequests`. Each value is the result of the
/// embedded request (elicitation, sampling or roots); the server decodes each by the request it asked for.
pub type InputResponses = JsonObject;
