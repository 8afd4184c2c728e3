//! Consent: who the user is and what they agree to, decided by a [`Consent`] policy once the authorization
//! request has been validated (client known, redirect URI trusted, PKCE present, scopes and resource
//! allowed). [`AutoApprove`] approves everything as one fixed user — for tests, CI and development only.

use std::future::Future;
use std::pin::Pin;

use http::{HeaderMap, Method, Response};

use super::client::Client;
use crate::server::http::ResponseBody;

/// A validated authorization request awaiting the user's decision.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConsentRequest<'a> {
    /// The client asking.
    pub client: &'a Client,
    /// Where the answer goes (already matched against the client's registration).
    pub redirect_uri: &'a str,
    /// The scopes asked for (all supported by the server and allowed for the client).
    pub scopes: &'a [String],
    /// The resource the tokens will be for.
    pub resource: &'a str,
    /// Every parameter of the request: a consent page posts its form back to the authorization endpoint
    /// with the original parameters and its own (its CSRF token, the user's choice).
    pub params: &'a [(String, String)],
    /// GET or POST.
    pub method: &'a Method,
    /// The request headers (the session cookie of a logged-in user, say).
    pub headers: &'a HeaderMap,
}

/// The outcome of a [`Consent`] policy.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsentDecision {
    /// The user `subject` approved `scopes` (a subset of those asked for).
    Approve {
        /// Who approved: the access token's `sub`.
        subject: String,
        /// What was approved.
        scopes: Vec<String>,
    },
    /// The user declined: the client gets `access_denied`.
    Deny,
    /// Not decided yet: send this response (a login or consent page).
    Respond(Response<ResponseBody>),
}

/// Decides authorization requests. Implement it to plug in your own login and consent screens.
pub trait Consent: Send + Sync + 'static {
    /// Decides `request`.
    fn decide<'a>(&'a self, request: ConsentRequest<'a>) -> Pin<Box<dyn Future<Output = ConsentDecision> + Send + 'a>>;
}

/// Approves every request, as one fixed user, with every scope asked for. Never use it where anyone but you
/// can reach the server: whoever can open the authorization URL gets tokens.
#[derive(Clone, Debug)]
pub struct AutoApprove {
    subject: String,
}

impl AutoApprove {
    /// Approves as `subject`.
    pub fn as_user(subject: impl Into<String>) -> Self {
        AutoApprove { subject: subject.into() }
    }
}

impl Consent for AutoApprove {
    fn decide<'a>(&'a self, request: ConsentRequest<'a>) -> Pin<Box<dyn Future<Output = ConsentDecision> + Send + 'a>> {
        let decision = ConsentDecision::Approve { subject: self.subject.clone(), scopes: request.scopes.to_vec() };
        Box::pin(std::future::ready(decision))
    }
}
