//! [`Principal`]: who made a request, as an authorization layer verified it.

use std::time::SystemTime;

use crate::protocol::JsonObject;

/// The verified caller of a request: what an authorization layer (Keel's resource-server layer, or your
/// own tower middleware) learned from the request's credentials. Handlers read it with
/// [`RequestContext::principal`](super::RequestContext::principal); it never holds the token itself.
///
/// An authorization layer in front of Keel's HTTP service makes it visible by inserting an
/// `Arc<Principal>` into the HTTP request's extensions. Legacy sessions and tasks are bound to the issuer,
/// subject and client of the principal that created them; a principal without a subject owns none (for a
/// machine client that is one party, set the subject to its client id). The struct is `#[non_exhaustive]`: build one with
/// [`Principal::default`] and set the fields.
///
/// ```
/// use keel_mcp::server::Principal;
///
/// let mut principal = Principal::default();
/// principal.subject = Some("alice".into());
/// principal.scopes = vec!["notes:read".into()];
/// assert!(principal.has_scope("notes:read"));
/// assert!(!principal.has_scope("notes:write"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Principal {
    /// The issuer (`iss`) of the token: the authorization server that vouches for the subject.
    pub issuer: Option<String>,
    /// The subject (`sub`): the user or service the token was issued for.
    pub subject: Option<String>,
    /// The OAuth client the token was issued to (`client_id` / `azp`).
    pub client_id: Option<String>,
    /// The scopes the token grants.
    pub scopes: Vec<String>,
    /// The audiences the token names (`aud`).
    pub audience: Vec<String>,
    /// When the token expires (`exp`).
    pub expires_at: Option<SystemTime>,
    /// Every claim of the token (JWT payload or introspection response), as verified.
    pub claims: JsonObject,
}

impl Principal {
    /// Whether the token grants `scope` (exact, case-sensitive comparison).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}

/// Who a principal is, for binding what it creates (a legacy session, a task) to it: the issuer, the subject
/// and the client. Scopes and expiry are left out: a refreshed token of the same caller is the same caller.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PrincipalId {
    #[serde(default, rename = "iss", skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(default, rename = "sub", skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
}

impl PrincipalId {
    /// The identity of `principal`.
    pub(crate) fn of_principal(principal: &Principal) -> PrincipalId {
        PrincipalId {
            issuer: principal.issuer.clone(),
            subject: principal.subject.clone(),
            client_id: principal.client_id.clone(),
        }
    }

    /// Whether `principal` says who it is well enough to own something: a subject, or — only when
    /// `client_only` (the deployment said each client is one party) — a client. A token naming a client but
    /// no subject would otherwise share one identity with every other user of that client app (an
    /// authorization server may leave `sub` out of introspection answers); one naming neither, with every
    /// such token of its issuer.
    pub(crate) fn can_own(principal: &Principal, client_only: bool) -> bool {
        principal.subject.is_some() || (client_only && principal.client_id.is_some())
    }

    /// Whether `principal` has this identity (no copy made).
    pub(crate) fn is(&self, principal: &Principal) -> bool {
        self.issuer == principal.issuer && self.subject == principal.subject && self.client_id == principal.client_id
    }
}

/// Lets a principal naming a client but no subject own legacy sessions and tasks for one HTTP request (the
/// resource server's
/// [`bind_client_only_tokens`](crate::auth::resource::ResourceServerConfig::bind_client_only_tokens)): an
/// HTTP request extension.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "http-server"), expect(dead_code, reason = "only HTTP requests carry it"))]
pub(crate) struct ClientOnlyOwners;

/// Whether `caller` may use what was created by `owner`: the same principal, or no principal on either side.
pub(crate) fn same_caller(owner: Option<&PrincipalId>, caller: Option<&Principal>) -> bool {
    match (owner, caller) {
        (None, None) => true,
        (Some(owner), Some(caller)) => owner.is(caller),
        _ => false,
    }
}
