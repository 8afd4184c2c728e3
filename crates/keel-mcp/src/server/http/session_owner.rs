//! [`SessionOwner`]: the principal a legacy session belongs to. A session id is a handle, not a credential:
//! once an authorization layer verified who opened a session, only that principal may use it (the MCP
//! security best practices, "session hijacking"); anyone else is told the session does not exist.

use std::sync::Arc;

use crate::server::principal::Principal;

/// Who opened a legacy session: the token's issuer, subject and client (as for tasks).
pub(crate) use crate::server::principal::PrincipalId as SessionOwner;

/// Whether the request with these extensions may use a session opened by `owner`: the same principal, or no
/// principal on either side.
pub(crate) fn may_use(owner: Option<&SessionOwner>, extensions: &http::Extensions) -> bool {
    crate::server::principal::same_caller(owner, principal(extensions))
}

fn principal(extensions: &http::Extensions) -> Option<&Principal> {
    extensions.get::<Arc<Principal>>().map(|p| &**p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(subject: &str, client: &str) -> http::Extensions {
        let principal = Principal {
            issuer: Some("https://idp.example".into()),
            subject: Some(subject.into()),
            client_id: Some(client.into()),
            ..Principal::default()
        };
        let mut extensions = http::Extensions::new();
        extensions.insert(Arc::new(principal));
        extensions
    }

    #[test]
    fn only_the_opening_principal_may_use_a_session() {
        let alice = principal(&with("alice", "app")).map(SessionOwner::of_principal);
        assert!(may_use(alice.as_ref(), &with("alice", "app")));
        assert!(!may_use(alice.as_ref(), &with("bob", "app")));
        assert!(!may_use(alice.as_ref(), &with("alice", "other-app")));
        assert!(!may_use(alice.as_ref(), &http::Extensions::new()));
        assert!(!may_use(None, &with("alice", "app")));
        assert!(may_use(None, &http::Extensions::new()));
    }
}
