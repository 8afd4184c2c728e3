//! What the OAuth client does next, as pure functions of what it knows — the stored tokens, the challenge,
//! the discovered scopes, what was tried already and the time — so every decision has a table test and
//! [`super::OAuthClient`] only carries the plan out (storage, network, the user).

use super::challenge::AuthChallenge;
use super::error::AuthError;
use super::scope::{covers, initial_scope, union};
use super::token::TokenSet;

/// Before a request to the MCP server: what to do with the stored tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BeforeRequest {
    /// No tokens: send the request bare (its 401 starts the flow).
    Bare,
    /// Send the access token.
    Send,
    /// Refresh first (near expiry, with a refresh token, old enough).
    Refresh,
    /// The token has expired and cannot be refreshed: a request with it is doomed, authorize first.
    Authorize,
}

/// The plan before a request.
pub(crate) fn before_request(tokens: Option<&TokenSet>, now: u64) -> BeforeRequest {
    match tokens {
        None => BeforeRequest::Bare,
        Some(t) if t.refresh_token.is_some() && t.expires_soon(now) => BeforeRequest::Refresh,
        Some(t) if t.refresh_token.is_none() && t.is_expired(now) => BeforeRequest::Authorize,
        Some(_) => BeforeRequest::Send,
    }
}

/// After a 401 / 403 and discovery: the next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Retrying cannot help; let the caller see the refusal.
    GiveUp,
    /// Use the refresh token.
    Refresh,
    /// Obtain new tokens with the client's grant, asking for `scope`.
    Obtain {
        /// The scope to request (before `offline_access` handling).
        scope: Option<String>,
    },
}

/// What the client knows when it plans its answer to a challenge.
pub(crate) struct Facts<'a> {
    /// 401 or 403.
    pub status: u16,
    /// The parsed `WWW-Authenticate`.
    pub challenge: &'a AuthChallenge,
    /// Tokens for this issuer and resource, if any (others are dropped before planning).
    pub tokens: Option<&'a TokenSet>,
    /// The resource's `scopes_supported`.
    pub prm_scopes: Option<&'a [String]>,
    /// A refresh was already tried for this challenge.
    pub refresh_tried: bool,
}

/// The answer to a challenge: a 403 is a scope step-up (or final), a 401 is a refresh when one is possible,
/// else a new authorization for the challenge's scope (plus what is held).
pub(crate) fn plan(f: &Facts<'_>) -> Step {
    let held = f.tokens.and_then(|t| t.scope.as_deref());
    if f.status == 403 {
        if !f.challenge.is_insufficient_scope() || f.tokens.is_none() || covers(held, f.challenge.scope.as_deref()) {
            // Not about scope, nothing to step up from, or we already hold it: another authorization cannot help.
            return Step::GiveUp;
        }
        return Step::Obtain { scope: union(held, f.challenge.scope.as_deref()) };
    }
    if !f.refresh_tried && f.tokens.is_some_and(|t| t.refresh_token.is_some()) {
        return Step::Refresh;
    }
    let first = initial_scope(f.challenge.scope.as_deref(), f.prm_scopes);
    let scope = if f.tokens.is_some() { union(held, first.as_deref()) } else { first };
    Step::Obtain { scope }
}

/// What a failed refresh means for the stored state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshFailure {
    /// `invalid_grant`: the refresh token is dead; drop the tokens and authorize again.
    DropTokens,
    /// The client itself was refused and its registration came from dynamic registration: drop the tokens
    /// and the registration, register anew.
    DropRegistration,
    /// The client itself was refused and its credentials were given (pre-registered, CIMD): nothing the
    /// client can do fixes that; fail with a clear error.
    Fail,
    /// Anything else (network, a server error): keep everything and let the authorization decide.
    Keep,
}

/// Classifies a failed refresh; `dynamic` says whether the credentials came from dynamic registration.
pub(crate) fn after_refresh_error(error: &AuthError, dynamic: bool) -> RefreshFailure {
    if error.is_invalid_grant() {
        RefreshFailure::DropTokens
    } else if error.is_client_rejected() {
        if dynamic { RefreshFailure::DropRegistration } else { RefreshFailure::Fail }
    } else {
        RefreshFailure::Keep
    }
}

/// A dynamic registration must be redone before an authorization when it lists redirect URIs and the one
/// the redirect step will use is not among them (many servers match redirect URIs exactly).
pub(crate) fn needs_new_registration(registered: &[String], redirect_uri: &str) -> bool {
    !registered.is_empty() && !registered.iter().any(|r| r == redirect_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(refresh: bool, issued: u64, lifetime: u64, scope: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            refresh_token: refresh.then(|| "r".into()),
            expires_at: Some(issued + lifetime),
            issued_at: Some(issued),
            scope: scope.map(Into::into),
            issuer: "https://as".into(),
            resource: "https://rs/mcp".into(),
        }
    }

    #[test]
    fn before_request_table() {
        use BeforeRequest as B;
        let cases = [
            (None, 0, B::Bare),
            (Some(tokens(true, 1000, 3600, None)), 1001, B::Send),
            (Some(tokens(true, 1000, 3600, None)), 4550, B::Refresh),
            // A 60 s token just issued: sent as is (no refresh storm).
            (Some(tokens(true, 1000, 60, None)), 1000, B::Send),
            (Some(tokens(true, 1000, 60, None)), 1050, B::Refresh),
            // Expired without a refresh token: the request would only collect a 401.
            (Some(tokens(false, 1000, 60, None)), 1060, B::Authorize),
            (Some(tokens(false, 1000, 60, None)), 1059, B::Send),
            // Expired with a refresh token: refresh, never authorize first.
            (Some(tokens(true, 1000, 60, None)), 1100, B::Refresh),
        ];
        for (t, now, expected) in cases {
            assert_eq!(before_request(t.as_ref(), now), expected, "{t:?} at {now}");
        }
    }

    #[test]
    fn challenge_table() {
        let bare = AuthChallenge::default();
        let step_up = AuthChallenge {
            error: Some("insufficient_scope".into()),
            scope: Some("mcp:write".into()),
            ..Default::default()
        };
        let with_scope = AuthChallenge { scope: Some("mcp:read".into()), ..Default::default() };
        let prm = vec!["mcp:basic".to_owned()];
        let held = tokens(true, 0, 60, Some("mcp:basic"));
        let held_no_refresh = tokens(false, 0, 60, Some("mcp:basic"));
        let held_write = tokens(true, 0, 60, Some("mcp:basic mcp:write"));
        let obtain = |s: &str| Step::Obtain { scope: Some(s.to_owned()) };
        // (status, challenge, tokens, refresh tried, expected)
        let cases: Vec<(u16, &AuthChallenge, Option<&TokenSet>, bool, Step)> = vec![
            (401, &bare, None, false, obtain("mcp:basic")),
            (401, &with_scope, None, false, obtain("mcp:read")),
            (401, &bare, Some(&held), false, Step::Refresh),
            (401, &bare, Some(&held), true, obtain("mcp:basic")),
            (401, &with_scope, Some(&held_no_refresh), false, obtain("mcp:basic mcp:read")),
            (403, &step_up, Some(&held), false, obtain("mcp:basic mcp:write")),
            (403, &step_up, Some(&held_write), false, Step::GiveUp),
            (403, &step_up, None, false, Step::GiveUp),
            (403, &bare, Some(&held), false, Step::GiveUp),
        ];
        for (status, challenge, t, refresh_tried, expected) in cases {
            let facts = Facts { status, challenge, tokens: t, prm_scopes: Some(&prm), refresh_tried };
            assert_eq!(plan(&facts), expected, "{status} {challenge:?} {t:?} {refresh_tried}");
        }
        let none = Facts { status: 401, challenge: &bare, tokens: None, prm_scopes: None, refresh_tried: false };
        assert_eq!(plan(&none), Step::Obtain { scope: None });
    }

    #[test]
    fn refresh_failure_table() {
        let e = |code: &str| AuthError::TokenEndpoint { error: code.into() };
        use RefreshFailure as R;
        let cases = [
            (e("invalid_grant"), true, R::DropTokens),
            (e("invalid_grant"), false, R::DropTokens),
            (e("invalid_client"), true, R::DropRegistration),
            (e("invalid_client"), false, R::Fail),
            (e("unauthorized_client"), true, R::DropRegistration),
            (e("server_error"), true, R::Keep),
            (AuthError::Redirect("x".into()), false, R::Keep),
        ];
        for (error, dynamic, expected) in cases {
            assert_eq!(after_refresh_error(&error, dynamic), expected, "{error} {dynamic}");
        }
    }

    #[test]
    fn registration_redirect_table() {
        let a = "http://127.0.0.1:1000/callback".to_owned();
        assert!(!needs_new_registration(&[], &a), "unknown registrations are used as they are");
        assert!(!needs_new_registration(std::slice::from_ref(&a), &a));
        assert!(needs_new_registration(&[a], "http://127.0.0.1:2000/callback"));
    }
}
