//! `WWW-Authenticate` challenges from a resource server (RFC 9110 §11.6.1, RFC 6750, RFC 9728). Input: one
//! header value per line.
#![no_main]

use keel_mcp::auth::client::AuthChallenge;
use keel_mcp::auth::client::challenge::parse_www_authenticate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for value in text.lines() {
        for challenge in parse_www_authenticate(value) {
            let _ = challenge.param("scope");
        }
    }
    let challenge = AuthChallenge::from_headers(&text.lines().map(str::to_owned).collect::<Vec<_>>());
    let _ = challenge.is_insufficient_scope();
});
