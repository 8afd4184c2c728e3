//! Token endpoint responses (RFC 6749 §5.1), first and refresh: reading them never panics, and the tokens kept
//! never have an empty access token.
#![no_main]

use keel_mcp::auth::client::TokenSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice(data) else { return };
    let now = 1_800_000_000;
    let Some(first) =
        TokenSet::from_response(&doc, now, Some("read"), None, "https://as.example", "https://rs.example")
    else {
        return;
    };
    assert!(!first.access_token.is_empty(), "an empty access token was kept");
    let _ = (first.expires_soon(now), first.is_dpop(), first.header());
    let refreshed =
        TokenSet::from_response(&doc, u64::MAX, None, Some(&first), "https://as.example", "https://rs.example");
    if let Some(refreshed) = refreshed {
        let _ = refreshed.expires_soon(u64::MAX);
    }
});
