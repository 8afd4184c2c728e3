//! `WWW-Authenticate` challenges from a resource server (RFC 9110 §11.6.1, RFC 6750, RFC 9728), through both
//! readers: the OAuth client's and the `Challenge` every HTTP client error carries. Input: one header value per
//! line.
#![no_main]

use keel_mcp::auth::Challenge;
use keel_mcp::auth::client::AuthChallenge;
use keel_mcp::auth::client::challenge::parse_www_authenticate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<String> = text.lines().map(str::to_owned).collect();
    for value in &values {
        for challenge in parse_www_authenticate(value) {
            let _ = challenge.param("scope");
        }
    }
    let _ = AuthChallenge::from_headers(&values).is_insufficient_scope();
    let challenge = Challenge::new(401, values.clone());
    assert_eq!(challenge.www_authenticate, values, "the header values were not kept verbatim");
    let _ = (challenge.is_forbidden(), challenge.is_insufficient_scope());
});
