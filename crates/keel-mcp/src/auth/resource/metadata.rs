//! Protected resource metadata (RFC 9728): the document, the well-known URLs it is served at, and how each
//! HTTP method is answered there. Pure: the HTTP service renders the [`MetadataAnswer`].

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Map, Value};

use super::config::ResourceServerConfig;

/// The well-known prefix of RFC 9728 §3.1.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where the metadata of a resource lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetadataLocation {
    /// The path-inserted path (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`).
    pub(crate) path: String,
    /// The absolute URL of that path, sent as `resource_metadata` in every challenge.
    pub(crate) url: String,
}

/// Why a resource identifier cannot be protected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceUrlError {
    /// Not an absolute `http(s)` URL with a host.
    #[error("the resource must be an absolute http(s) URL with a host: {0}")]
    NotHttpUrl(String),
    /// RFC 8707 §2: a resource identifier has no fragment.
    #[error("the resource must not have a fragment: {0}")]
    Fragment(String),
    /// The configuration names no authorization server (RFC 9728 and MCP require one).
    #[error("at least one authorization server is required")]
    NoAuthorizationServer,
}

/// The metadata location of `resource` (RFC 9728 §3.1: the well-known prefix inserted between the host and
/// the path; a query, if any, is kept out of the path).
pub(crate) fn location(resource: &str) -> Result<MetadataLocation, ResourceUrlError> {
    let url = url::Url::parse(resource).map_err(|_| ResourceUrlError::NotHttpUrl(resource.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ResourceUrlError::NotHttpUrl(resource.to_owned()));
    }
    if url.fragment().is_some() {
        return Err(ResourceUrlError::Fragment(resource.to_owned()));
    }
    let resource_path = url.path().trim_end_matches('/');
    let path = format!("{WELL_KNOWN}{resource_path}");
    let url = format!("{}{path}", url.origin().ascii_serialization());
    Ok(MetadataLocation { path, url })
}

/// The metadata document: `resource` exactly as configured, the authorization servers, the scopes, the
/// bearer method (`header` only) and the names a person reads.
pub(crate) fn document(config: &ResourceServerConfig) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("resource".into(), config.resource.clone().into());
    doc.insert("authorization_servers".into(), config.authorization_servers.clone().into());
    if !config.scopes_supported.is_empty() {
        doc.insert("scopes_supported".into(), config.scopes_supported.clone().into());
    }
    doc.insert("bearer_methods_supported".into(), vec!["header"].into());
    if let Some(name) = &config.resource_name {
        doc.insert("resource_name".into(), name.clone().into());
    }
    if let Some(docs) = &config.resource_documentation {
        doc.insert("resource_documentation".into(), docs.clone().into());
    }
    if let Some(dpop) = &config.dpop {
        doc.insert("dpop_signing_alg_values_supported".into(), dpop.algorithm_names().into());
        doc.insert("dpop_bound_access_tokens_required".into(), config.dpop_required.into());
    }
    doc
}

/// How the service answers a request at a metadata URL.
#[derive(Debug)]
pub(crate) struct MetadataAnswer {
    pub(crate) status: StatusCode,
    /// The JSON body (GET only).
    pub(crate) body: Option<Bytes>,
    /// The headers besides the CORS ones every answer carries.
    pub(crate) headers: &'static [(&'static str, &'static str)],
}

/// The methods a metadata URL answers; anything else gets 405 with this `Allow`.
const ALLOWED: &str = "GET, HEAD, OPTIONS";

/// Answers `method` at a metadata URL: GET the document, HEAD its headers, OPTIONS a CORS preflight, 405
/// otherwise. Every answer is readable from any origin: the document is public.
pub(crate) fn answer(method: &Method, document: &Bytes) -> MetadataAnswer {
    const JSON: (&str, &str) = ("content-type", "application/json");
    // Clients may cache it for a while; a changed configuration shows within five minutes.
    const CACHE: (&str, &str) = ("cache-control", "public, max-age=300");
    match *method {
        Method::GET => MetadataAnswer { status: StatusCode::OK, body: Some(document.clone()), headers: &[JSON, CACHE] },
        Method::HEAD => MetadataAnswer { status: StatusCode::OK, body: None, headers: &[JSON, CACHE] },
        Method::OPTIONS => MetadataAnswer {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: &[
                ("access-control-allow-methods", ALLOWED),
                ("access-control-allow-headers", "mcp-protocol-version"),
                ("access-control-max-age", "86400"),
            ],
        },
        _ => MetadataAnswer { status: StatusCode::METHOD_NOT_ALLOWED, body: None, headers: &[("allow", ALLOWED)] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_prefix_goes_between_host_and_path() {
        let at = |r: &str| location(r).map(|l| (l.path, l.url));
        assert_eq!(
            at("https://notes.example/mcp").unwrap(),
            (
                "/.well-known/oauth-protected-resource/mcp".to_owned(),
                "https://notes.example/.well-known/oauth-protected-resource/mcp".to_owned()
            )
        );
        assert_eq!(
            at("http://127.0.0.1:8080/public/mcp/").unwrap().1,
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/public/mcp"
        );
        assert_eq!(at("https://notes.example").unwrap().0, WELL_KNOWN);
        assert_eq!(at("https://notes.example/mcp?x=1").unwrap().0, "/.well-known/oauth-protected-resource/mcp");
        assert!(matches!(at("https://notes.example/mcp#f"), Err(ResourceUrlError::Fragment(_))));
        assert!(matches!(at("ftp://notes.example/mcp"), Err(ResourceUrlError::NotHttpUrl(_))));
        assert!(matches!(at("/mcp"), Err(ResourceUrlError::NotHttpUrl(_))));
    }

    #[test]
    fn the_document_publishes_the_resource_exactly_as_configured() {
        let verifier = std::sync::Arc::new(super::super::tests::Refuse);
        let config = ResourceServerConfig::new("https://Notes.example/mcp", ["https://idp.example"], verifier)
            .scopes_supported(["notes:read"])
            .resource_name("Notes");
        let doc = document(&config);
        assert_eq!(doc["resource"], "https://Notes.example/mcp");
        assert_eq!(doc["authorization_servers"], serde_json::json!(["https://idp.example"]));
        assert_eq!(doc["scopes_supported"], serde_json::json!(["notes:read"]));
        assert_eq!(doc["bearer_methods_supported"], serde_json::json!(["header"]));
        assert_eq!(doc["resource_name"], "Notes");
        assert!(!doc.contains_key("resource_documentation"));
        assert!(!doc.contains_key("dpop_signing_alg_values_supported"), "no DPoP unless configured");
        let config = config.dpop(crate::auth::resource::dpop::DpopVerifier::new(), true);
        let doc = document(&config);
        assert_eq!(doc["dpop_signing_alg_values_supported"], serde_json::json!(["ES256", "RS256", "PS256", "EdDSA"]));
        assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    }

    #[test]
    fn only_get_head_and_options_are_answered() {
        let doc = Bytes::from_static(b"{}");
        assert_eq!(answer(&Method::GET, &doc).body.as_deref(), Some(&b"{}"[..]));
        assert!(answer(&Method::HEAD, &doc).body.is_none());
        assert_eq!(answer(&Method::OPTIONS, &doc).status, StatusCode::NO_CONTENT);
        assert_eq!(answer(&Method::POST, &doc).status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
