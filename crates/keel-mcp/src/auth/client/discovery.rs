//! Where to look for metadata: protected resource metadata (RFC 9728) and authorization server metadata
//! (RFC 8414 and OpenID Connect Discovery), in the order the MCP specification requires. Pure functions.

use url::Url;

/// The origin of a URL as `scheme://host[:port]` (default ports elided, no trailing slash).
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A URL's path without trailing slashes (`""` for the root).
fn trimmed_path(url: &Url) -> &str {
    url.path().trim_end_matches('/')
}

/// Protected resource metadata URLs to try, in order: the challenge's `resource_metadata` (when it names
/// one), else the path-aware well-known URL, then the root well-known URL.
pub fn resource_metadata_urls(server_url: &Url, from_challenge: Option<&str>) -> Vec<String> {
    if let Some(url) = from_challenge {
        return vec![url.to_owned()];
    }
    let base = format!("{}/.well-known/oauth-protected-resource", origin(server_url));
    let path = trimmed_path(server_url);
    if path.is_empty() { vec![base] } else { vec![format!("{base}{path}"), base] }
}

/// Authorization server metadata URLs for `issuer`, in order: RFC 8414 path insertion, OIDC path
/// insertion, OIDC path appending (for an issuer with a path); RFC 8414 then OIDC (without one).
pub fn auth_server_metadata_urls(issuer: &Url) -> Vec<String> {
    let o = origin(issuer);
    let path = trimmed_path(issuer);
    if path.is_empty() {
        vec![format!("{o}/.well-known/oauth-authorization-server"), format!("{o}/.well-known/openid-configuration")]
    } else {
        vec![
            format!("{o}/.well-known/oauth-authorization-server{path}"),
            format!("{o}/.well-known/openid-configuration{path}"),
            format!("{o}{path}/.well-known/openid-configuration"),
        ]
    }
}

/// The 2025-03-26 fallback: authorization server metadata at the MCP server's origin.
pub fn legacy_metadata_url(server_url: &Url) -> String {
    format!("{}/.well-known/oauth-authorization-server", origin(server_url))
}

/// The 2025-03-26 default endpoints (`/authorize`, `/token`, `/register`) at the MCP server's origin.
pub fn legacy_default_endpoints(server_url: &Url) -> (String, String, String) {
    let o = origin(server_url);
    (format!("{o}/authorize"), format!("{o}/token"), format!("{o}/register"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn resource_metadata_order() {
        let cases: Vec<(&str, Option<&str>, Vec<&str>)> = vec![
            ("https://h/mcp", Some("https://h/custom/m.json"), vec!["https://h/custom/m.json"]),
            (
                "https://h/public/mcp",
                None,
                vec![
                    "https://h/.well-known/oauth-protected-resource/public/mcp",
                    "https://h/.well-known/oauth-protected-resource",
                ],
            ),
            ("https://h/", None, vec!["https://h/.well-known/oauth-protected-resource"]),
            ("https://h", None, vec!["https://h/.well-known/oauth-protected-resource"]),
            (
                "http://localhost:3000/mcp/?x=1",
                None,
                vec![
                    "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                    "http://localhost:3000/.well-known/oauth-protected-resource",
                ],
            ),
        ];
        for (server, header, expected) in cases {
            assert_eq!(resource_metadata_urls(&u(server), header), expected, "{server}");
        }
    }

    #[test]
    fn auth_server_metadata_order() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "https://auth.example.com/tenant1",
                vec![
                    "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                    "https://auth.example.com/.well-known/openid-configuration/tenant1",
                    "https://auth.example.com/tenant1/.well-known/openid-configuration",
                ],
            ),
            (
                "https://auth.example.com",
                vec![
                    "https://auth.example.com/.well-known/oauth-authorization-server",
                    "https://auth.example.com/.well-known/openid-configuration",
                ],
            ),
            (
                "http://localhost:9/a/b/",
                vec![
                    "http://localhost:9/.well-known/oauth-authorization-server/a/b",
                    "http://localhost:9/.well-known/openid-configuration/a/b",
                    "http://localhost:9/a/b/.well-known/openid-configuration",
                ],
            ),
        ];
        for (issuer, expected) in cases {
            assert_eq!(auth_server_metadata_urls(&u(issuer)), expected, "{issuer}");
        }
    }

    #[test]
    fn legacy_urls() {
        let s = u("http://localhost:5/deep/mcp");
        assert_eq!(legacy_metadata_url(&s), "http://localhost:5/.well-known/oauth-authorization-server");
        let (a, t, r) = legacy_default_endpoints(&s);
        assert_eq!(
            (a.as_str(), t.as_str(), r.as_str()),
            ("http://localhost:5/authorize", "http://localhost:5/token", "http://localhost:5/register")
        );
    }
}
