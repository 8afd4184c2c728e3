//! What a server says when it refuses a request: the status (401 or 403) and its `WWW-Authenticate`
//! challenges (RFC 9110 §11.6.1), read far enough to act on — the scheme, and the `error`, `scope` and
//! `resource_metadata` parameters of RFC 6750 §3 and RFC 9728 §5.1. Pure: no IO.

/// A refusal (HTTP 401 or 403) and what its `WWW-Authenticate` headers ask for.
///
/// [`HttpAuth::unauthorized`](super::HttpAuth::unauthorized) receives one; a request that stays refused
/// fails with [`Error::Unauthorized`](crate::Error::Unauthorized) carrying one. Parameters come from the
/// `Bearer` or `DPoP` challenge when there is one, otherwise from the first challenge that has them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// 401 (no or invalid credentials: log in) or 403 (the credentials do not allow this: more scope).
    pub status: u16,
    /// Every `WWW-Authenticate` header value, verbatim.
    pub www_authenticate: Vec<String>,
    /// The auth scheme asked for (`Bearer`, `DPoP`, …), as sent.
    pub scheme: Option<String>,
    /// The OAuth error code (`invalid_token`, `insufficient_scope`, …).
    pub error: Option<String>,
    /// The server's human-readable explanation of `error`.
    pub error_description: Option<String>,
    /// Space-separated scopes the request needs.
    pub scope: Option<String>,
    /// Where the server's protected resource metadata lives (RFC 9728), the start of OAuth discovery.
    pub resource_metadata: Option<String>,
}

impl Challenge {
    /// Reads the challenges of a refusal with `status` and these `WWW-Authenticate` header values.
    pub fn new(status: u16, www_authenticate: Vec<String>) -> Self {
        let read = Challenge::read(&www_authenticate);
        Challenge { status, www_authenticate, ..read }
    }

    /// What these `WWW-Authenticate` values ask for (status 0, values not kept): the one reading of the
    /// header, which the OAuth client's `AuthChallenge` shares.
    pub(crate) fn read(www_authenticate: &[String]) -> Self {
        let mut parsed: Vec<SchemeParams<'_>> = Vec::new();
        for value in www_authenticate {
            parse_into(value, &mut parsed);
        }
        // Stable sort: Bearer and DPoP first, the rest in the order sent.
        parsed.sort_by_key(|c| !(c.scheme.eq_ignore_ascii_case("bearer") || c.scheme.eq_ignore_ascii_case("dpop")));
        let param = |name: &str| parsed.iter().find_map(|c| c.param(name)).filter(|v| !v.is_empty()).map(str::to_owned);
        Challenge {
            status: 0,
            scheme: parsed.first().map(|c| c.scheme.to_owned()),
            error: param("error"),
            error_description: param("error_description"),
            scope: param("scope"),
            resource_metadata: param("resource_metadata"),
            www_authenticate: Vec::new(),
        }
    }

    /// True for 403: the credentials were accepted but do not allow this request.
    pub fn is_forbidden(&self) -> bool {
        self.status == 403
    }

    /// True for `error="insufficient_scope"`: the server wants a token with more scope (`scope` says which).
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

impl std::fmt::Display for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.is_forbidden() { "forbidden" } else { "unauthorized" };
        write!(f, "HTTP {} ({what})", self.status)?;
        if let Some(scheme) = &self.scheme {
            write!(f, ", {scheme} challenge")?;
        }
        if let Some(error) = &self.error {
            write!(f, ", error {error:?}")?;
        }
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        if let Some(scope) = &self.scope {
            write!(f, " (scope {scope:?})")?;
        }
        Ok(())
    }
}

/// One challenge: its scheme and its `name=value` parameters (values unquoted).
pub(crate) struct SchemeParams<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) params: Vec<(&'a str, String)>,
}

impl SchemeParams<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses one header value, which may hold several comma-separated challenges, appending to `out`.
/// Anything that is not a scheme or a parameter (a token68, stray characters) is skipped.
pub(crate) fn parse_into<'a>(value: &'a str, out: &mut Vec<SchemeParams<'a>>) {
    let bytes = value.as_bytes();
    let skip = |mut i: usize, set: &[u8]| {
        while bytes.get(i).is_some_and(|b| set.contains(b)) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while i < bytes.len() {
        i = skip(i, b" \t,");
        let start = i;
        while bytes.get(i).copied().is_some_and(is_tchar) {
            i += 1;
        }
        if i == start {
            // Not a token: step over one character (whole, so slicing stays on char boundaries).
            i += value.get(i..).and_then(|rest| rest.chars().next()).map_or(1, char::len_utf8);
            continue;
        }
        let Some(token) = value.get(start..i) else { break };
        let eq = skip(i, b" \t");
        if bytes.get(eq) != Some(&b'=') {
            out.push(SchemeParams { scheme: token, params: Vec::new() });
            continue;
        }
        let after_eqs = skip(eq, b"=");
        let value_start = skip(after_eqs, b" \t");
        let ends = matches!(bytes.get(value_start), None | Some(b','));
        let fresh = out.last().is_some_and(|c| c.params.is_empty());
        if after_eqs - eq > 1 || (ends && fresh) {
            // A token68 such as `Basic dXNlcjpwdw==`: nothing MCP reads.
            i = after_eqs;
            continue;
        }
        let (param, next) = read_value(value, value_start);
        i = next;
        if let Some(current) = out.last_mut() {
            current.params.push((token, param));
        }
    }
}

/// A parameter value at `start`: a quoted-string (escapes undone) or a token. Returns it and where it ends.
fn read_value(value: &str, start: usize) -> (String, usize) {
    let bytes = value.as_bytes();
    if bytes.get(start) != Some(&b'"') {
        let len = bytes.iter().skip(start).take_while(|b| !matches!(b, b',' | b' ' | b'\t')).count();
        return (value.get(start..start + len).unwrap_or_default().to_owned(), start + len);
    }
    let mut out = String::new();
    let mut chars = value.get(start + 1..).unwrap_or_default().char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return (out, start + 1 + offset + 1),
            '\\' => out.extend(chars.next().map(|(_, escaped)| escaped)),
            c => out.push(c),
        }
    }
    // Unterminated: take what there is.
    (out, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(values: &[&str]) -> Challenge {
        Challenge::new(401, values.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn bearer_parameters_are_read() {
        let c = challenge(&[
            r#"Bearer error="invalid_token", error_description="The token expired", scope="notes:read notes:write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource""#,
        ]);
        assert_eq!(c.scheme.as_deref(), Some("Bearer"));
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.error_description.as_deref(), Some("The token expired"));
        assert_eq!(c.scope.as_deref(), Some("notes:read notes:write"));
        assert_eq!(c.resource_metadata.as_deref(), Some("https://mcp.example/.well-known/oauth-protected-resource"));
        assert!(!c.is_forbidden() && !c.is_insufficient_scope());
    }

    #[test]
    fn table() {
        // (header values, scheme, error, scope, resource_metadata)
        #[allow(clippy::type_complexity)]
        let cases: &[(&[&str], Option<&str>, Option<&str>, Option<&str>, Option<&str>)] = &[
            (
                &[r#"bearer error=insufficient_scope, scope="a b""#],
                Some("bearer"),
                Some("insufficient_scope"),
                Some("a b"),
                None,
            ),
            (&[r#"Basic realm="r", Bearer scope="s""#], Some("Bearer"), None, Some("s"), None),
            (&["Basic abc==, Bearer error=\"invalid_token\""], Some("Bearer"), Some("invalid_token"), None, None),
            (
                &["Basic realm=\"r\"", "DPoP algs=\"ES256\", resource_metadata=\"x\""],
                Some("DPoP"),
                None,
                None,
                Some("x"),
            ),
            (&[r#"Bearer realm="a,b", scope="\"q\"""#], Some("Bearer"), None, Some("\"q\""), None),
            (&[r#"Custom scope="other""#, r#"Bearer scope="mine""#], Some("Bearer"), None, Some("mine"), None),
            (&["Negotiate"], Some("Negotiate"), None, None, None),
            (&["", ",,, ="], None, None, None, None),
            (&[r#"Bearer error="unterminated"#], Some("Bearer"), Some("unterminated"), None, None),
            (&["Bearer scope=\"é ü\", error=é"], Some("Bearer"), Some("é"), Some("é ü"), None),
            (&["Bearer error=\"\""], Some("Bearer"), None, None, None),
        ];
        for (values, scheme, error, scope, metadata) in cases {
            let c = challenge(values);
            assert_eq!(c.scheme.as_deref(), *scheme, "{values:?}");
            assert_eq!(c.error.as_deref(), *error, "{values:?}");
            assert_eq!(c.scope.as_deref(), *scope, "{values:?}");
            assert_eq!(c.resource_metadata.as_deref(), *metadata, "{values:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for value in ["\"", "=", "a=\"\\", "é=é", "Bearer ,=,\"", "\\\\\"\"", "x=\"\\é\""] {
            let _ = challenge(&[value]);
        }
    }
}
