//! `WWW-Authenticate` as the OAuth client reads it (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1): the
//! parameters MCP cares about — `resource_metadata`, `scope`, `error` — from whichever challenge carries
//! them, Bearer and DPoP first. The parsing is [`Challenge`](crate::auth::Challenge)'s, shared.

/// One challenge: a scheme and its parameters (names lowercased, values unquoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedChallenge {
    /// The auth scheme as sent (`Bearer`, `DPoP`, …).
    pub scheme: String,
    /// `name=value` pairs in order; names are lowercased.
    pub params: Vec<(String, String)>,
}

impl ParsedChallenge {
    /// The first value of parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What a 401 or 403 tells the OAuth client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthChallenge {
    /// RFC 9728 `resource_metadata` URL.
    pub resource_metadata: Option<String>,
    /// Space-separated scopes the operation needs.
    pub scope: Option<String>,
    /// OAuth error code (`invalid_token`, `insufficient_scope`, …).
    pub error: Option<String>,
}

impl AuthChallenge {
    /// Reads every `WWW-Authenticate` value; Bearer and DPoP challenges win over other schemes.
    pub fn from_headers(values: &[String]) -> AuthChallenge {
        let read = crate::auth::challenge::Challenge::read(values);
        AuthChallenge { resource_metadata: read.resource_metadata, scope: read.scope, error: read.error }
    }

    /// True for `error="insufficient_scope"` (a step-up demand).
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

/// Parses one header value, which may hold several comma-separated challenges.
pub fn parse_www_authenticate(value: &str) -> Vec<ParsedChallenge> {
    let mut parsed = Vec::new();
    crate::auth::challenge::parse_into(value, &mut parsed);
    parsed
        .into_iter()
        .map(|c| ParsedChallenge {
            scheme: c.scheme.to_owned(),
            params: c.params.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(v: &[&str]) -> AuthChallenge {
        AuthChallenge::from_headers(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn challenge_table() {
        let rm = "http://localhost:1/.well-known/oauth-protected-resource/mcp";
        let cases: Vec<(Vec<&str>, Option<&str>, Option<&str>, Option<&str>)> = vec![
            (
                vec![r#"Bearer resource_metadata="http://localhost:1/.well-known/oauth-protected-resource/mcp""#],
                Some(rm),
                None,
                None,
            ),
            (
                vec![
                    r#"Bearer error="invalid_token", error_description="No token", resource_metadata="x", scope="mcp:basic""#,
                ],
                Some("x"),
                Some("mcp:basic"),
                Some("invalid_token"),
            ),
            (vec![r#"DPoP resource_metadata="x", algs="ES256""#], Some("x"), None, None),
            (vec![r#"bearer error=insufficient_scope, scope="a b""#], None, Some("a b"), Some("insufficient_scope")),
            (vec!["Basic realm=\"r\", Bearer scope=\"s\""], None, Some("s"), None),
            (vec!["Basic abc==, Bearer error=\"invalid_token\""], None, None, Some("invalid_token")),
            (vec!["Basic realm=\"r\"", "Bearer scope=\"\\\"q\\\"\""], None, Some("\"q\""), None),
            (vec!["Negotiate"], None, None, None),
            (vec![""], None, None, None),
            (vec!["Bearer realm=\"a,b\", scope=\"s\""], None, Some("s"), None),
        ];
        for (headers, rm, scope, error) in cases {
            let c = ch(&headers);
            assert_eq!(c.resource_metadata.as_deref(), rm, "{headers:?}");
            assert_eq!(c.scope.as_deref(), scope, "{headers:?}");
            assert_eq!(c.error.as_deref(), error, "{headers:?}");
        }
    }

    #[test]
    fn bearer_wins_over_other_schemes() {
        let c = ch(&[r#"Custom scope="other""#, r#"Bearer scope="mine""#]);
        assert_eq!(c.scope.as_deref(), Some("mine"));
        assert!(!c.is_insufficient_scope());
    }

    #[test]
    fn the_oauth_client_reads_a_refusal_as_challenge_does() {
        let cases: &[&[&str]] = &[
            &[r#"Bearer error="invalid_token", scope="a b", resource_metadata="https://rs.example/prm""#],
            &[r#"Basic realm="r""#, r#"DPoP algs="ES256", error="use_dpop_nonce""#],
            &[r#"Bearer scope="unterminated\"#],
            &[r#"Bearer scope="\"q\"", error=é"#],
            &["Basic abc==, Bearer error=insufficient_scope"],
            &["", ",,, =", "\\\"\""],
        ];
        for values in cases {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            let challenge = crate::auth::Challenge::new(401, values.clone());
            let ours = AuthChallenge::from_headers(&values);
            assert_eq!(ours.scope, challenge.scope, "{values:?}");
            assert_eq!(ours.error, challenge.error, "{values:?}");
            assert_eq!(ours.resource_metadata, challenge.resource_metadata, "{values:?}");
        }
    }

    #[test]
    fn several_challenges_in_one_value() {
        let v = parse_www_authenticate(r#"Bearer realm="x", DPoP algs="ES256 PS256", error="use_dpop_nonce""#);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].scheme, "DPoP");
        assert_eq!(v[1].param("error"), Some("use_dpop_nonce"));
    }
}
