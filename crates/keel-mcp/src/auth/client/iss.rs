//! RFC 9207 `iss` validation of the authorization response (SEP-2468): the decision table of the MCP
//! specification, with exact string comparison after form decoding and no normalisation at all.

use super::error::AuthError;

/// Decides whether an authorization response may be acted on (its code redeemed, its error shown).
///
/// | advertised | `iss` present | result |
/// |---|---|---|
/// | yes | yes | exact comparison |
/// | yes | no | reject |
/// | no | yes | exact comparison (stricter than RFC 9207's "ignore") |
/// | no | no | proceed |
pub fn check_iss(advertised: bool, iss: Option<&str>, issuer: &str) -> Result<(), AuthError> {
    match (advertised, iss) {
        (_, Some(iss)) if iss.as_bytes() == issuer.as_bytes() => Ok(()),
        (_, Some(_)) => Err(AuthError::CallbackRejected("the iss parameter does not match the issuer")),
        (true, None) => Err(AuthError::CallbackRejected("the issuer advertises iss but the response has none")),
        (false, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iss_table() {
        let issuer = "http://localhost:4000";
        let cases = [
            (true, Some("http://localhost:4000"), true),
            (true, None, false),
            (true, Some("https://evil.example.com"), false),
            (false, Some("http://localhost:4000"), true),
            (false, Some("https://evil.example.com"), false),
            (false, None, true),
            (true, Some("http://localhost:4000/"), false),
            (true, Some("HTTP://localhost:4000"), false),
            (true, Some("http://LOCALHOST:4000"), false),
            (true, Some("http://localhost:4000%2F"), false),
            (false, Some(""), false),
        ];
        for (advertised, iss, ok) in cases {
            assert_eq!(check_iss(advertised, iss, issuer).is_ok(), ok, "{advertised} {iss:?}");
        }
        assert!(check_iss(true, Some("https://a.example:443"), "https://a.example").is_err(), "no port elision");
    }
}
