//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).
//!
//! Any scheme is accepted (`Bearer`, `DPoP`, …): the parameters MCP cares about — `resource_metadata`,
//! `scope`, `error` — are read from whichever challenge carries them, Bearer and DPoP first.

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
        let mut all: Vec<ParsedChallenge> = values.iter().flat_map(|v| parse_www_authenticate(v)).collect();
        // Stable sort: Bearer / DPoP first, the rest in order.
        all.sort_by_key(|c| {
            let s = c.scheme.to_ascii_lowercase();
            if s == "bearer" || s == "dpop" { 0 } else { 1 }
        });
        let pick = |name: &str| all.iter().find_map(|c| c.param(name)).filter(|v| !v.is_empty()).map(str::to_owned);
        AuthChallenge { resource_metadata: pick("resource_metadata"), scope: pick("scope"), error: pick("error") }
    }

    /// True for `error="insufficient_scope"` (a step-up demand).
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses one header value, which may hold several comma-separated challenges.
pub fn parse_www_authenticate(value: &str) -> Vec<ParsedChallenge> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut out: Vec<ParsedChallenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i] == ' ' || chars[*i] == '\t') {
            *i += 1;
        }
    };
    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t' || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && is_tchar(chars[i]) {
            i += 1;
        }
        if i == start {
            // Garbage: skip one character so we always progress.
            i += 1;
            continue;
        }
        let token: String = chars[start..i].iter().collect();
        let mut j = i;
        skip_ws(&mut j);
        if j < chars.len() && chars[j] == '=' {
            // Either `name=value` or a token68 ending in '='.
            let mut k = j;
            while k < chars.len() && chars[k] == '=' {
                k += 1;
            }
            let mut after = k;
            skip_ws(&mut after);
            let token68_end = after >= chars.len() || chars[after] == ',';
            if k - j > 1 || (token68_end && out.last().is_some_and(|c| c.params.is_empty())) {
                i = k; // token68 (e.g. `Basic abc==`); not needed by MCP.
                continue;
            }
            let mut k = j + 1;
            skip_ws(&mut k);
            let mut val = String::new();
            if k < chars.len() && chars[k] == '"' {
                k += 1;
                while k < chars.len() && chars[k] != '"' {
                    if chars[k] == '\\' && k + 1 < chars.len() {
                        k += 1;
                    }
                    val.push(chars[k]);
                    k += 1;
                }
                k += 1; // closing quote
            } else {
                while k < chars.len() && chars[k] != ',' && chars[k] != ' ' && chars[k] != '\t' {
                    val.push(chars[k]);
                    k += 1;
                }
            }
            i = k;
            if let Some(current) = out.last_mut() {
                current.params.push((token.to_ascii_lowercase(), val));
            }
        } else {
            out.push(ParsedChallenge { scheme: token, params: Vec::new() });
        }
    }
    out
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
    fn several_challenges_in_one_value() {
        let v = parse_www_authenticate(r#"Bearer realm="x", DPoP algs="ES256 PS256", error="use_dpop_nonce""#);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].scheme, "DPoP");
        assert_eq!(v[1].param("error"), Some("use_dpop_nonce"));
    }
}
