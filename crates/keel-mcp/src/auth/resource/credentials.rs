//! Reads the access token of a request (RFC 6750 §2.1): only from the `Authorization` header, bounded in
//! size, never from the query string. Pure: no IO, and the token is never copied or logged.

use http::header::AUTHORIZATION;
use http::{HeaderMap, Uri};

/// The credentials a request presents.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header.
    Missing,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` (RFC 9449): a sender-constrained token, which needs a proof.
    Dpop(&'a str),
    /// Another scheme (`Basic`, …): nothing this resource accepts.
    OtherScheme,
}

/// Why the credentials of a request are refused before any verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CredentialError {
    /// An `access_token` in the query string (RFC 6750 §2.3, refused: URLs end up in logs).
    InQuery,
    /// The `Authorization` header is longer than the configured bound.
    TooLarge,
    /// More than one `Authorization` header.
    Repeated,
    /// The header is not visible ASCII, or the token is empty or not a `b64token`.
    Malformed,
}

/// The credentials of a request with target `uri` and `headers`; `max_bytes` bounds the header.
pub(crate) fn read<'a>(
    uri: &Uri,
    headers: &'a HeaderMap,
    max_bytes: usize,
) -> Result<Credentials<'a>, CredentialError> {
    if uri.query().is_some_and(names_access_token) {
        return Err(CredentialError::InQuery);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(Credentials::Missing) };
    if values.next().is_some() {
        return Err(CredentialError::Repeated);
    }
    if value.len() > max_bytes {
        return Err(CredentialError::TooLarge);
    }
    let text = value.to_str().map_err(|_| CredentialError::Malformed)?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let token = rest.trim_start_matches(' ');
    let make: fn(&'a str) -> Credentials<'a> = if scheme.eq_ignore_ascii_case("bearer") {
        Credentials::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Credentials::Dpop
    } else {
        return Ok(Credentials::OtherScheme);
    };
    if !is_b64token(token.as_bytes()) {
        return Err(CredentialError::Malformed);
    }
    Ok(make(token))
}

/// Whether a query string has an `access_token` parameter (its name percent-decoded).
fn names_access_token(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token")
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = token.get(..token.len() - padding).unwrap_or_default();
    // Every request's token passes here: one table lookup a byte, no branch per character class.
    !body.is_empty() && body.iter().fold(true, |ok, &b| ok & B64TOKEN[usize::from(b)])
}

/// The bytes of a `b64token` body (before its `=` padding).
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, http::HeaderValue::from_static(v));
        }
        map
    }

    fn read_with(uri: &str, values: &[&'static str]) -> Result<String, CredentialError> {
        let h = headers(values);
        read(&uri.parse().unwrap(), &h, 64).map(|c| format!("{c:?}"))
    }

    #[test]
    fn the_header_is_the_only_place_for_a_token() {
        assert_eq!(read_with("/mcp", &[]).unwrap(), "Missing");
        assert_eq!(read_with("/mcp", &["Bearer abc.def-_~+/=="]).unwrap(), "Bearer(\"abc.def-_~+/==\")");
        assert_eq!(read_with("/mcp", &["bearer   abc"]).unwrap(), "Bearer(\"abc\")");
        assert_eq!(read_with("/mcp", &["DPoP abc"]).unwrap(), "Dpop(\"abc\")");
        assert_eq!(read_with("/mcp", &["Basic dXNlcjpwYXNz"]).unwrap(), "OtherScheme");
        assert_eq!(read_with("/mcp?access_token=abc", &[]), Err(CredentialError::InQuery));
        assert_eq!(read_with("/mcp?x=1&access%5Ftoken=abc", &["Bearer abc"]), Err(CredentialError::InQuery));
        assert_eq!(read_with("/mcp?x=access_token", &[]).unwrap(), "Missing");
    }

    #[test]
    fn malformed_repeated_and_oversized_headers_are_refused() {
        assert_eq!(read_with("/mcp", &["Bearer a", "Bearer b"]), Err(CredentialError::Repeated));
        assert_eq!(read_with("/mcp", &["Bearer "]), Err(CredentialError::Malformed));
        assert_eq!(read_with("/mcp", &["Bearer a b"]), Err(CredentialError::Malformed));
        assert_eq!(read_with("/mcp", &["Bearer ="]), Err(CredentialError::Malformed));
        let long: &'static str = Box::leak(format!("Bearer {}", "a".repeat(64)).into_boxed_str());
        assert_eq!(read_with("/mcp", &[long]), Err(CredentialError::TooLarge));
        let mut opaque = HeaderMap::new();
        opaque.insert(AUTHORIZATION, http::HeaderValue::from_bytes(b"Bearer \xff").unwrap());
        assert_eq!(read(&"/mcp".parse().unwrap(), &opaque, 64), Err(CredentialError::Malformed));
    }
}
