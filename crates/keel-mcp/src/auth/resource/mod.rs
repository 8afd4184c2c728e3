//! Resource-server authorization (placeholder until the `resource-server` branch lands the layer).

use std::time::Duration;

use crate::server::Principal;

pub mod dpop;
pub mod introspection;

/// A boxed future borrowing its arguments.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Verifies an access token.
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token`.
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<VerifiedToken, VerifyError>>;
}

/// A verified token.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// Who.
    pub principal: Principal,
    /// `cnf.jkt`.
    pub jkt: Option<String>,
}

/// Why a token was not accepted.
#[derive(Clone, Debug)]
pub enum VerifyError {
    /// Invalid.
    Invalid(String),
    /// Unavailable.
    Unavailable {
        /// Retry after.
        retry_after: Duration,
    },
}
