//! The DPoP step of [`Protection`] (RFC 9449 §7): a request with `Authorization: DPoP <token>` is admitted
//! only with exactly one `DPoP` proof header that [`DpopVerifier`] accepts for this method, this URL, this
//! token and the key the token is bound to. Refusals carry a `DPoP` challenge naming the accepted
//! algorithms, and a fresh `DPoP-Nonce` when nonces are required.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::{Protection, Refusal};
use crate::auth::resource::VerifyError;
use crate::auth::resource::challenge;
use crate::auth::resource::dpop::{DpopError, DpopRequest, DpopVerifier};
use crate::server::Principal;

/// How long a client is asked to wait when the replay cache (or its key's share of it) is full: by then older
/// proofs have left it.
const REPLAY_FULL_RETRY: Duration = Duration::from_secs(5);

/// The DPoP configuration of a [`Protection`], compiled.
#[derive(Debug)]
pub(crate) struct DpopGate {
    verifier: Arc<DpopVerifier>,
    /// The resource's origin: a proof's `htu` is compared with it and the request path, not with the `Host`
    /// header (which a proxy may rewrite and a client may forge).
    origin: String,
    /// `algs` of every `DPoP` challenge.
    algs: String,
    resource_metadata: String,
    /// The `DPoP` challenge without an error, for requests that presented no DPoP credentials.
    plain: Option<HeaderValue>,
}

impl DpopGate {
    pub(crate) fn new(verifier: Arc<DpopVerifier>, resource: &str, resource_metadata: &str) -> Self {
        let origin = url::Url::parse(resource).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let algs = verifier.algorithm_names().join(" ");
        let plain = HeaderValue::from_str(&challenge::dpop(&algs, None, None, resource_metadata)).ok();
        DpopGate { verifier, origin, algs, resource_metadata: resource_metadata.to_owned(), plain }
    }

    fn nonce(&self) -> Option<HeaderValue> {
        self.verifier.current_nonce().and_then(|n| HeaderValue::from_str(&n).ok())
    }
}

/// The single `DPoP` header of a request, bounded in size.
fn read_proof(headers: &HeaderMap, max_bytes: usize) -> Result<&str, ProofHeaderError> {
    let mut values = headers.get_all("dpop").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ProofHeaderError::MissingOrRepeated);
    };
    if value.len() > max_bytes {
        return Err(ProofHeaderError::TooLarge);
    }
    value.to_str().map_err(|_| ProofHeaderError::MissingOrRepeated)
}

enum ProofHeaderError {
    MissingOrRepeated,
    TooLarge,
}

impl Protection {
    /// Admits a DPoP-scheme request: the token, then its proof.
    pub(super) async fn authenticate_dpop(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        token: &str,
    ) -> Result<Arc<Principal>, Refusal> {
        let Some(gate) = &self.dpop else {
            return Err(self.dpop_refusal(StatusCode::UNAUTHORIZED, "invalid_token", "DPoP is not enabled"));
        };
        let proof = match read_proof(headers, gate.verifier.proof_limit()) {
            Ok(proof) => proof,
            Err(ProofHeaderError::TooLarge) => {
                return Err(self.dpop_refusal(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "invalid_dpop_proof",
                    "the DPoP header is too large",
                ));
            }
            Err(ProofHeaderError::MissingOrRepeated) => {
                return Err(self.dpop_refusal(
                    StatusCode::UNAUTHORIZED,
                    "invalid_dpop_proof",
                    "exactly one DPoP proof header is required",
                ));
            }
        };
        let verified = match self.config.verifier.verify(token).await {
            Ok(verified) => verified,
            Err(VerifyError::Invalid(why)) => {
                tracing::debug!(reason = %why, "DPoP access token refused");
                return Err(self.dpop_refusal(StatusCode::UNAUTHORIZED, "invalid_token", "invalid access token"));
            }
            Err(VerifyError::Unavailable { retry_after }) => {
                tracing::warn!(retry_after_s = retry_after.as_secs(), "access token cannot be verified now");
                return Err(self.unavailable(retry_after, "the access token cannot be verified now; retry later"));
            }
        };
        let Some(jkt) = verified.jkt.as_deref() else {
            // RFC 9449 §7.1: the DPoP scheme is for bound tokens; an unbound one gains nothing from a proof.
            return Err(self.dpop_refusal(StatusCode::UNAUTHORIZED, "invalid_token", "the token is not DPoP-bound"));
        };
        let url = format!("{}{}", gate.origin, uri.path());
        let request = DpopRequest { method: method.as_str(), url: &url, access_token: token, jkt };
        match gate.verifier.verify(proof, &request) {
            Ok(()) => Ok(verified.principal),
            Err(DpopError::ReplayCacheFull) => {
                tracing::warn!("DPoP replay cache full; refusing new proofs until older ones expire");
                Err(self.unavailable(REPLAY_FULL_RETRY, "too many DPoP proofs at once; retry later"))
            }
            Err(DpopError::KeyQuotaExceeded) => {
                tracing::debug!("one DPoP key holds its whole share of the replay cache; refusing its new proofs");
                let mut refusal =
                    self.unavailable(REPLAY_FULL_RETRY, "too many DPoP proofs from this key; retry later");
                refusal.status = StatusCode::TOO_MANY_REQUESTS;
                Err(refusal)
            }
            Err(error) => {
                tracing::debug!(reason = %error, "DPoP proof refused");
                let (code, message) = match error {
                    DpopError::InvalidProof(why) => ("invalid_dpop_proof", why),
                    DpopError::KeyMismatch => ("invalid_token", "the proof is not signed by the token's key"),
                    _ => ("use_dpop_nonce", "a DPoP nonce is required"),
                };
                Err(self.dpop_refusal(StatusCode::UNAUTHORIZED, code, message))
            }
        }
    }

    /// A refusal whose challenge is `DPoP` with `error` (and the current nonce, when nonces are required).
    pub(super) fn dpop_refusal(&self, status: StatusCode, error: &str, message: &'static str) -> Refusal {
        let (challenge, dpop_nonce) = match &self.dpop {
            Some(gate) => {
                let text = challenge::dpop(&gate.algs, Some(error), Some(message), &gate.resource_metadata);
                (HeaderValue::from_str(&text).ok(), gate.nonce())
            }
            None => (Some(self.invalid_token.clone()), None),
        };
        Refusal { status, challenge, retry_after: None, message, dpop_challenge: None, dpop_nonce }
    }

    /// Adds the `DPoP` challenge to a refusal when DPoP is on (and keeps only it when DPoP is required).
    pub(super) fn with_dpop_challenge(&self, mut refusal: Refusal) -> Refusal {
        if let Some(gate) = &self.dpop {
            if self.config.dpop_required {
                refusal.challenge = None;
            }
            refusal.dpop_challenge = gate.plain.clone();
            refusal.dpop_nonce = gate.nonce();
        }
        refusal
    }

    fn unavailable(&self, retry_after: Duration, message: &'static str) -> Refusal {
        Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            challenge: None,
            retry_after: Some(retry_after),
            message,
            dpop_challenge: None,
            dpop_nonce: None,
        }
    }
}
