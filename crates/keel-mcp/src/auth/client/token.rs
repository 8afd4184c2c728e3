//! Tokens as the client keeps them: an absolute expiry instead of `expires_in`, and a `Debug` that
//! never prints a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long before expiry a token is refreshed proactively.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An access token (and maybe a refresh token) for one resource from one issuer.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// `Bearer` or `DPoP`.
    pub token_type: String,
    /// The refresh token, if the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Absolute expiry (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Granted scope (the response's, else the requested one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The issuer that issued the tokens.
    pub issuer: String,
    /// The resource (PRM `resource`) the tokens are for.
    pub resource: String,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"…")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl TokenSet {
    /// Reads a token endpoint response. `previous` supplies the refresh token when a refresh response omits it
    /// (RFC 6749 §6) and `requested_scope` the scope when the response omits it.
    pub fn from_response(
        doc: &serde_json::Map<String, Value>,
        now: u64,
        requested_scope: Option<&str>,
        previous: Option<&TokenSet>,
        issuer: &str,
        resource: &str,
    ) -> Option<TokenSet> {
        let s = |k: &str| doc.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
        let expires_in = doc.get("expires_in").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        Some(TokenSet {
            access_token: s("access_token")?,
            token_type: s("token_type").unwrap_or_else(|| "Bearer".into()),
            refresh_token: s("refresh_token").or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: expires_in.map(|e| now.saturating_add(e)),
            scope: s("scope")
                .or_else(|| requested_scope.map(str::to_owned))
                .or_else(|| previous.and_then(|p| p.scope.clone())),
            issuer: issuer.to_owned(),
            resource: resource.to_owned(),
        })
    }

    /// Expired, or expiring within [`REFRESH_MARGIN`].
    pub fn expires_soon(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now.saturating_add(REFRESH_MARGIN.as_secs()) >= at)
    }

    /// A DPoP-bound token (`token_type` DPoP).
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("dpop")
    }

    /// The `Authorization` header value (`Bearer …`, or `DPoP …` for a DPoP-bound token).
    pub fn header(&self) -> String {
        if self.is_dpop() { format!("DPoP {}", self.access_token) } else { format!("Bearer {}", self.access_token) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn absolute_expiry_and_refresh_margin() {
        let t = TokenSet::from_response(
            &doc(json!({"access_token": "a", "expires_in": 3600})),
            1000,
            Some("s"),
            None,
            "i",
            "r",
        )
        .unwrap();
        assert_eq!(t.expires_at, Some(4600));
        assert_eq!(t.scope.as_deref(), Some("s"));
        assert!(!t.expires_soon(1000));
        assert!(t.expires_soon(4540));
        assert!(t.expires_soon(5000));
        let forever = TokenSet { expires_at: None, ..t.clone() };
        assert!(!forever.expires_soon(u64::MAX));
    }

    #[test]
    fn refresh_keeps_old_refresh_token() {
        let old =
            TokenSet::from_response(&doc(json!({"access_token": "a", "refresh_token": "r1"})), 0, None, None, "i", "r")
                .unwrap();
        let new = TokenSet::from_response(&doc(json!({"access_token": "b"})), 0, None, Some(&old), "i", "r").unwrap();
        assert_eq!(new.refresh_token.as_deref(), Some("r1"));
        assert!(TokenSet::from_response(&doc(json!({"token_type": "Bearer"})), 0, None, None, "i", "r").is_none());
    }

    #[test]
    fn debug_hides_tokens() {
        let t = TokenSet::from_response(
            &doc(json!({"access_token": "SECRET1", "refresh_token": "SECRET2"})),
            0,
            None,
            None,
            "i",
            "r",
        )
        .unwrap();
        let d = format!("{t:?}");
        assert!(!d.contains("SECRET1") && !d.contains("SECRET2"));
    }
}
