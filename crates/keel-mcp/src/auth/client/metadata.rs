//! Protected resource metadata (RFC 9728) and authorization server metadata (RFC 8414 / OIDC Discovery),
//! with the two checks that decide whether they may be used: the resource covers the MCP server, and the
//! issuer is the one the document was discovered for. Identifiers stay the strings the server sent.

use serde::Deserialize;
use url::Url;

use super::error::AuthError;

/// RFC 9728 protected resource metadata (the fields the client uses).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier, verbatim; sent as RFC 8707 `resource`.
    pub resource: String,
    /// Issuer identifiers of the authorization servers.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource understands.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 / OIDC authorization server metadata (the fields the client uses).
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct AuthServerMetadata {
    /// The issuer identifier, compared byte-for-byte.
    pub issuer: String,
    /// Authorization endpoint.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// RFC 7591 registration endpoint.
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// Scopes the server supports (consulted for `offline_access`).
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// PKCE methods.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Token endpoint client authentication methods.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Grant types.
    #[serde(default)]
    pub grant_types_supported: Option<Vec<String>>,
    /// RFC 9207: the server sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// The server accepts client ID metadata documents (CIMD).
    #[serde(default)]
    pub client_id_metadata_document_supported: Option<bool>,
    /// RFC 9449: DPoP proof algorithms the server accepts.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// OpenID Connect Discovery: ID token signing algorithms (required of an OpenID provider).
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
}

impl AuthServerMetadata {
    /// S256 is advertised.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported.as_ref().is_some_and(|m| m.iter().any(|x| x == "S256"))
    }

    /// CIMD is advertised.
    pub fn supports_cimd(&self) -> bool {
        self.client_id_metadata_document_supported == Some(true)
    }

    /// DPoP with ES256 is advertised.
    pub fn supports_dpop_es256(&self) -> bool {
        self.dpop_signing_alg_values_supported.as_ref().is_some_and(|a| a.iter().any(|x| x == "ES256"))
    }

    /// The metadata describes an OpenID provider (it lists ID token signing algorithms).
    pub fn describes_id_tokens(&self) -> bool {
        self.id_token_signing_alg_values_supported.as_ref().is_some_and(|a| !a.is_empty())
    }

    /// `scopes_supported` lists `scope`.
    pub fn advertises_scope(&self, scope: &str) -> bool {
        self.scopes_supported.as_ref().is_some_and(|s| s.iter().any(|x| x == scope))
    }
}

/// The metadata document's `issuer` must equal, byte for byte, the issuer its URL was built from.
pub fn check_issuer(expected: &str, metadata: &AuthServerMetadata) -> Result<(), AuthError> {
    if metadata.issuer.as_bytes() == expected.as_bytes() {
        Ok(())
    } else {
        Err(AuthError::IssuerMismatch { expected: expected.to_owned(), found: metadata.issuer.clone() })
    }
}

/// Longest `resource` that [`check_resource`] parses; longer ones (other than the server's own URL) do not
/// match.
const MAX_RESOURCE_BYTES: usize = 2048;

/// The PRM `resource` must identify the MCP server: the same string, or the same origin with a path that
/// is a whole-segment prefix of the server's path (`https://h` covers `https://h/mcp`; `https://h/m`
/// does not cover `https://h/mcp`). No fragment, no query (unless identical), no dot segments.
pub fn check_resource(server_url: &str, resource: &str) -> Result<(), AuthError> {
    if resource == server_url {
        return Ok(());
    }
    let mismatch = || AuthError::ResourceMismatch { expected: server_url.to_owned(), found: resource.to_owned() };
    // Longer than any real resource identifier: refused before URL parsing (IDNA work on a long host is
    // costly), so a hostile document cannot make the client spend time on it.
    if resource.len() > MAX_RESOURCE_BYTES {
        return Err(mismatch());
    }
    let raw_lower = resource.to_ascii_lowercase();
    if raw_lower.contains("/./")
        || raw_lower.contains("/../")
        || raw_lower.contains("%2e")
        || raw_lower.ends_with("/..")
    {
        return Err(mismatch());
    }
    let (Ok(s), Ok(r)) = (Url::parse(server_url), Url::parse(resource)) else { return Err(mismatch()) };
    if r.fragment().is_some() || r.query().is_some() {
        return Err(mismatch());
    }
    if s.scheme() != r.scheme() || s.host() != r.host() || s.port_or_known_default() != r.port_or_known_default() {
        return Err(mismatch());
    }
    let rp = r.path().trim_end_matches('/');
    let sp = s.path();
    let covered = rp.is_empty() || sp == rp || sp.strip_prefix(rp).is_some_and(|rest| rest.starts_with('/'));
    if covered { Ok(()) } else { Err(mismatch()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_resource_is_refused_unparsed() {
        let server = "https://h.example/mcp";
        let long = format!("https://h.example/{}", "a/".repeat(MAX_RESOURCE_BYTES));
        assert!(check_resource(&format!("{long}/mcp"), &long).is_err(), "a covering prefix, but too long");
        assert!(check_resource(&long, &long).is_ok(), "the server's own URL, however long");
        assert!(check_resource(server, "https://h.example").is_ok());
    }

    #[test]
    fn resource_table() {
        let cases = [
            ("http://localhost:3000/mcp", "http://localhost:3000/mcp", true),
            ("http://localhost:3000/mcp", "http://localhost:3000", true),
            ("http://localhost:3000/mcp", "http://localhost:3000/", true),
            ("https://h/a/mcp", "https://h/a", true),
            ("https://H/mcp", "https://h/mcp", true),
            ("https://h:443/mcp", "https://h/mcp", true),
            ("http://localhost:3000/mcp", "https://evil.example.com/mcp", false),
            ("http://localhost:3000/mcp", "http://localhost:3001/mcp", false),
            ("http://localhost:3000/mcp", "https://localhost:3000/mcp", false),
            ("https://h/mcp", "https://h/m", false),
            ("https://h/mcp", "https://h/mcp/sub", false),
            ("https://h/mcp", "https://h/other", false),
            ("https://h/mcp", "https://h/mcp#f", false),
            ("https://h/mcp", "https://h/?tenant=a", false),
            ("https://h/a/mcp", "https://h/b/../a", false),
            ("https://h/a/mcp", "https://h/%2e%2e/a", false),
            ("https://h/mcp", "not a url", false),
        ];
        for (server, resource, ok) in cases {
            assert_eq!(check_resource(server, resource).is_ok(), ok, "{server} vs {resource}");
        }
    }

    #[test]
    fn issuer_is_byte_exact() {
        let m = |issuer: &str| AuthServerMetadata { issuer: issuer.into(), ..Default::default() };
        let cases = [
            ("http://localhost:1", "http://localhost:1", true),
            ("http://localhost:1", "http://localhost:1/", false),
            ("https://a.example/t1", "https://A.example/t1", false),
            ("https://a.example", "https://a.example:443", false),
            ("http://localhost:1", "https://attacker.example.com", false),
        ];
        for (expected, found, ok) in cases {
            assert_eq!(check_issuer(expected, &m(found)).is_ok(), ok, "{expected} vs {found}");
        }
    }

    #[test]
    fn capability_queries() {
        let m: AuthServerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://a", "code_challenge_methods_supported": ["plain", "S256"],
            "client_id_metadata_document_supported": true, "scopes_supported": ["offline_access"]
        }))
        .unwrap();
        assert!(m.supports_s256() && m.supports_cimd() && m.advertises_scope("offline_access"));
        let plain: AuthServerMetadata = serde_json::from_value(
            serde_json::json!({"issuer": "https://a", "code_challenge_methods_supported": ["plain"]}),
        )
        .unwrap();
        assert!(!plain.supports_s256());
        assert!(!AuthServerMetadata::default().supports_s256());
    }
}
