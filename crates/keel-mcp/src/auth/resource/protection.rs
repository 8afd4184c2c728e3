//! [`Protection`]: a [`ResourceServerConfig`] compiled once for the HTTP service — the metadata document
//! encoded, the challenges written — and the per-request decision: serve the metadata, or admit the request
//! with its principal, or refuse it with the right status and challenge.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::VerifyError;
use super::challenge::{self, ChallengeError};
use super::config::ResourceServerConfig;
use super::credentials::{self, CredentialError, Credentials};
use super::metadata::{self, MetadataAnswer, MetadataLocation, ResourceUrlError};
use crate::server::Principal;

/// A request the resource server turns away, as data; the HTTP service renders it.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    /// The `WWW-Authenticate` value.
    pub(crate) challenge: Option<HeaderValue>,
    /// The `Retry-After` value (503).
    pub(crate) retry_after: Option<Duration>,
    /// What the client reads in the JSON-RPC error body (never the token).
    pub(crate) message: &'static str,
}

/// A resource server configuration, compiled.
#[derive(Debug)]
pub(crate) struct Protection {
    pub(crate) config: ResourceServerConfig,
    location: MetadataLocation,
    document: Bytes,
    /// The 401 challenge of a request without credentials.
    missing: HeaderValue,
    /// The 401 challenge of a bad token.
    invalid_token: HeaderValue,
}

impl Protection {
    pub(crate) fn new(config: ResourceServerConfig) -> Result<Self, ResourceUrlError> {
        if config.authorization_servers.is_empty() {
            return Err(ResourceUrlError::NoAuthorizationServer);
        }
        let location = metadata::location(&config.resource)?;
        let document = Bytes::from(serde_json::Value::Object(metadata::document(&config)).to_string());
        let header = |text: String| HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Bearer"));
        let missing = header(challenge::bearer(None, None, &config.default_scopes, &location.url));
        let invalid_token = header(challenge::bearer(
            Some(ChallengeError::InvalidToken),
            Some("the access token is invalid or expired"),
            &[],
            &location.url,
        ));
        Ok(Protection { config, location, document, missing, invalid_token })
    }

    /// Whether `path` is one of the metadata URLs.
    pub(crate) fn is_metadata_path(&self, path: &str) -> bool {
        path == self.location.path || (self.config.serve_root_metadata && path == metadata::WELL_KNOWN)
    }

    /// The answer to `method` at a metadata URL.
    pub(crate) fn metadata(&self, method: &Method) -> MetadataAnswer {
        metadata::answer(method, &self.document)
    }

    /// Checks the credentials of a request for the MCP endpoint: the verified principal, or the refusal.
    pub(crate) async fn authenticate(&self, uri: &Uri, headers: &HeaderMap) -> Result<Arc<Principal>, Refusal> {
        let token = match credentials::read(uri, headers, self.config.max_authorization_bytes) {
            Ok(Credentials::Bearer(token)) => token,
            Ok(Credentials::Missing | Credentials::OtherScheme) => {
                return Err(self.refuse(StatusCode::UNAUTHORIZED, self.missing.clone(), "authorization required"));
            }
            // No DPoP support here: a DPoP-scheme token cannot be checked, so it is refused as invalid.
            Ok(Credentials::Dpop(_)) => {
                return Err(self.refuse(
                    StatusCode::UNAUTHORIZED,
                    self.invalid_token.clone(),
                    "DPoP is not enabled on this server",
                ));
            }
            Err(CredentialError::InQuery) => {
                return Err(self.request_error(
                    StatusCode::BAD_REQUEST,
                    "access tokens are accepted only in the Authorization header",
                ));
            }
            Err(CredentialError::Repeated) => {
                return Err(self.request_error(StatusCode::BAD_REQUEST, "more than one Authorization header"));
            }
            Err(CredentialError::TooLarge) => {
                return Err(Refusal {
                    status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    challenge: None,
                    retry_after: None,
                    message: "the Authorization header is too large",
                });
            }
            Err(CredentialError::Malformed) => {
                return Err(self.refuse(
                    StatusCode::UNAUTHORIZED,
                    self.invalid_token.clone(),
                    "malformed access token",
                ));
            }
        };
        match self.config.verifier.verify(token).await {
            // A DPoP-bound token (RFC 9449 §7.1) is worthless without its proof: never accepted as Bearer.
            Ok(verified) if verified.jkt.is_some() => {
                Err(self.refuse(StatusCode::UNAUTHORIZED, self.invalid_token.clone(), "this token requires DPoP"))
            }
            Ok(verified) => Ok(Arc::new(verified.principal)),
            Err(VerifyError::Invalid(why)) => {
                tracing::debug!(reason = %why, "access token refused");
                Err(self.refuse(StatusCode::UNAUTHORIZED, self.invalid_token.clone(), "invalid access token"))
            }
            Err(VerifyError::Unavailable { retry_after }) => {
                tracing::warn!(retry_after_s = retry_after.as_secs(), "access token cannot be verified now");
                Err(Refusal {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    challenge: None,
                    retry_after: Some(retry_after),
                    message: "the access token cannot be verified now; retry later",
                })
            }
        }
    }

    /// The scopes every request of `method` needs (configured per method).
    pub(crate) fn method_scopes(&self, method: &str) -> &[String] {
        self.config.method_scopes.iter().find(|(m, _)| m == method).map_or(&[], |(_, scopes)| scopes)
    }

    /// The 403 of a token that lacks a scope of `method` or `target` (the scopes the request's method and its
    /// tool, resource or prompt need), naming every one of them so the client can step up in one go.
    pub(crate) fn insufficient_scope(&self, method: &[String], target: &[String]) -> Refusal {
        let text = challenge::bearer(
            Some(ChallengeError::InsufficientScope),
            Some("the access token lacks a scope this request needs"),
            &challenge::union(method, target),
            &self.location.url,
        );
        let challenge = HeaderValue::from_str(&text).ok();
        Refusal { status: StatusCode::FORBIDDEN, challenge, retry_after: None, message: "insufficient scope" }
    }

    fn refuse(&self, status: StatusCode, challenge: HeaderValue, message: &'static str) -> Refusal {
        Refusal { status, challenge: Some(challenge), retry_after: None, message }
    }

    fn request_error(&self, status: StatusCode, message: &'static str) -> Refusal {
        let text = challenge::bearer(Some(ChallengeError::InvalidRequest), Some(message), &[], &self.location.url);
        Refusal { status, challenge: HeaderValue::from_str(&text).ok(), retry_after: None, message }
    }
}
