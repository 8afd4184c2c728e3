//! The `WWW-Authenticate` challenges of a protected resource (RFC 6750 §3, RFC 9728 §5.1): pure text
//! building, no IO.

/// The error code of a challenge (RFC 6750 §3.1). A request without credentials gets none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChallengeError {
    /// The request is malformed (400).
    InvalidRequest,
    /// The token is expired, revoked, malformed or otherwise invalid (401).
    InvalidToken,
    /// The token lacks a scope the request needs (403).
    InsufficientScope,
}

impl ChallengeError {
    fn code(self) -> &'static str {
        match self {
            ChallengeError::InvalidRequest => "invalid_request",
            ChallengeError::InvalidToken => "invalid_token",
            ChallengeError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// `Bearer` challenge text: `error` (when there is one), `error_description`, `scope` (when non-empty) and
/// always `resource_metadata`, each a quoted string.
pub(crate) fn bearer(
    error: Option<ChallengeError>,
    description: Option<&str>,
    scopes: &[String],
    resource_metadata: &str,
) -> String {
    let mut params: Vec<(&str, String)> = Vec::with_capacity(4);
    if let Some(error) = error {
        params.push(("error", error.code().to_owned()));
    }
    if let Some(description) = description {
        params.push(("error_description", description.to_owned()));
    }
    if !scopes.is_empty() {
        params.push(("scope", scopes.join(" ")));
    }
    params.push(("resource_metadata", resource_metadata.to_owned()));
    render("Bearer ", &params)
}

/// `DPoP` challenge text (RFC 9449 §7.1): `algs` (the accepted proof algorithms), `error` and
/// `error_description` when there is an error, and `resource_metadata`.
pub(crate) fn dpop(algs: &str, error: Option<&str>, description: Option<&str>, resource_metadata: &str) -> String {
    let mut params: Vec<(&str, String)> = Vec::with_capacity(4);
    params.push(("algs", algs.to_owned()));
    if let Some(error) = error {
        params.push(("error", error.to_owned()));
    }
    if let Some(description) = description {
        params.push(("error_description", description.to_owned()));
    }
    params.push(("resource_metadata", resource_metadata.to_owned()));
    render("DPoP ", &params)
}

/// `scheme` followed by the parameters as quoted strings.
fn render(scheme: &str, params: &[(&str, String)]) -> String {
    let mut text = String::from(scheme);
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(name);
        text.push_str("=\"");
        quote_into(&mut text, value);
        text.push('"');
    }
    text
}

/// Appends `value` as the inside of a quoted-string (RFC 9110 §5.6.4): `"` and `\` escaped, and anything that
/// is not visible ASCII or a space dropped, so that the header value is always valid.
fn quote_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
}

/// Every scope of `first` and then of `second`, each once, in order.
pub(crate) fn union(first: &[String], second: &[String]) -> Vec<String> {
    let mut all: Vec<String> = Vec::with_capacity(first.len() + second.len());
    for scope in first.iter().chain(second) {
        if !all.contains(scope) {
            all.push(scope.clone());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://notes.example/.well-known/oauth-protected-resource/mcp";

    #[test]
    fn missing_credentials_carry_no_error_code() {
        assert_eq!(bearer(None, None, &[], PRM), format!("Bearer resource_metadata=\"{PRM}\""));
        let scopes = vec!["notes:read".to_owned(), "notes:write".to_owned()];
        assert_eq!(
            bearer(None, None, &scopes, PRM),
            format!("Bearer scope=\"notes:read notes:write\", resource_metadata=\"{PRM}\"")
        );
    }

    #[test]
    fn errors_name_their_code_and_scopes() {
        let text = bearer(Some(ChallengeError::InsufficientScope), Some("needs \"more\""), &["a".into()], PRM);
        assert_eq!(
            text,
            format!(
                "Bearer error=\"insufficient_scope\", error_description=\"needs \\\"more\\\"\", scope=\"a\", \
                 resource_metadata=\"{PRM}\""
            )
        );
        assert!(
            http::HeaderValue::from_str(&bearer(Some(ChallengeError::InvalidToken), Some("é\n"), &[], PRM)).is_ok()
        );
    }

    #[test]
    fn dpop_challenges_name_the_algorithms() {
        assert_eq!(
            dpop("ES256 EdDSA", Some("use_dpop_nonce"), None, PRM),
            format!("DPoP algs=\"ES256 EdDSA\", error=\"use_dpop_nonce\", resource_metadata=\"{PRM}\"")
        );
    }

    #[test]
    fn union_keeps_order_and_drops_repeats() {
        let a = vec!["x".to_owned(), "y".to_owned()];
        let b = vec!["y".to_owned(), "z".to_owned()];
        assert_eq!(union(&a, &b), vec!["x", "y", "z"]);
    }
}
