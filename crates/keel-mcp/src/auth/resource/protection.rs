//! [`Protection`]: a [`ResourceServerConfig`] compiled once for the HTTP service — the metadata document
//! encoded, the challenges written — and the per-request decision: serve the metadata, or admit the request
//! with its principal, or refuse it with the right status and challenge.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use self::dpop::DpopGate;

use super::VerifyError;
use super::challenge::{self, ChallengeError};
use super::config::ResourceServerConfig;
use super::credentials::{self, CredentialError, Credentials};
use super::metadata::{self, MetadataAnswer, MetadataLocation, ResourceUrlError};
use crate::server::Principal;

mod dpop;

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
    /// A second `WWW-Authenticate` value: the `DPoP` challenge, when DPoP is on.
    pub(crate) dpop_challenge: Option<HeaderValue>,
    /// The `DPoP-Nonce` value, when DPoP proofs need server nonces.
    pub(crate) dpop_nonce: Option<HeaderValue>,
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
    /// DPoP checks, when configured.
    dpop: Option<DpopGate>,
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
        let dpop = config.dpop.clone().map(|v| DpopGate::new(v, &config.resource, &location.url));
        Ok(Protection { config, location, document, missing, invalid_token, dpop })
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
    pub(crate) async fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Arc<Principal>, Refusal> {
        let token = match credentials::read(uri, headers, self.config.max_authorization_bytes) {
            Ok(Credentials::Bearer(_)) if self.config.dpop_required => {
                return Err(self.dpop_refusal(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "this resource requires DPoP",
                ));
            }
            Ok(Credentials::Bearer(token)) => token,
            Ok(Credentials::Missing | Credentials::OtherScheme) => {
                let refusal = self.refuse(StatusCode::UNAUTHORIZED, self.missing.clone(), "authorization required");
                return Err(self.with_dpop_challenge(refusal));
            }
            Ok(Credentials::Dpop(token)) if self.dpop.is_some() => {
                return self.authenticate_dpop(method, uri, headers, token).await;
            }
            // No DPoP configured: a DPoP-scheme token cannot be checked, so it is refused as invalid.
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
                    dpop_challenge: None,
                    dpop_nonce: None,
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
                let refusal =
                    self.refuse(StatusCode::UNAUTHORIZED, self.invalid_token.clone(), "this token requires DPoP");
                Err(self.with_dpop_challenge(refusal))
            }
            Ok(verified) => Ok(verified.principal),
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
                    dpop_challenge: None,
                    dpop_nonce: None,
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
        Refusal {
            status: StatusCode::FORBIDDEN,
            challenge,
            retry_after: None,
            message: "insufficient scope",
            dpop_challenge: None,
            dpop_nonce: None,
        }
    }

    fn refuse(&self, status: StatusCode, challenge: HeaderValue, message: &'static str) -> Refusal {
        Refusal {
            status,
            challenge: Some(challenge),
            retry_after: None,
            message,
            dpop_challenge: None,
            dpop_nonce: None,
        }
    }

    fn request_error(&self, status: StatusCode, message: &'static str) -> Refusal {
        let text = challenge::bearer(Some(ChallengeError::InvalidRequest), Some(message), &[], &self.location.url);
        Refusal {
            status,
            challenge: HeaderValue::from_str(&text).ok(),
            retry_after: None,
            message,
            dpop_challenge: None,
            dpop_nonce: None,
        }
    }
}
