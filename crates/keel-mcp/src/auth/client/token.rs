//! Tokens as the client keeps them: an absolute expiry instead of `expires_in`, and a `Debug` that
//! never prints a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest a token is refreshed ahead of its expiry; shorter-lived tokens get a quarter of their lifetime.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A token younger than this is never refreshed proactively, whatever its `expires_in`: a server that issues
/// tokens living a second or two would otherwise get a refresh (and a rotated refresh token) per request.
pub const MIN_REFRESH_AGE: Duration = Duration::from_secs(5);

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
    /// When the token endpoint answered (Unix seconds); with `expires_at` it gives the lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
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
            issued_at: Some(now),
            scope: s("scope")
                .or_else(|| requested_scope.map(str::to_owned))
                .or_else(|| previous.and_then(|p| p.scope.clone())),
            issuer: issuer.to_owned(),
            resource: resource.to_owned(),
        })
    }

    /// Due for a proactive refresh: within the refresh margin of its expiry — the smaller of
    /// [`REFRESH_MARGIN`] and a quarter of its lifetime — and at least [`MIN_REFRESH_AGE`] old; or already
    /// expired, whatever its age. A token of unknown age (stored by an older version) gets the full margin.
    pub fn expires_soon(&self, now: u64) -> bool {
        let Some(at) = self.expires_at else { return false };
        // An expired token only buys a 401: refresh it whatever its age.
        if now >= at {
            return true;
        }
        let margin = match self.issued_at {
            Some(issued) => {
                if now.saturating_sub(issued) < MIN_REFRESH_AGE.as_secs() {
                    return false;
                }
                REFRESH_MARGIN.as_secs().min(at.saturating_sub(issued) / 4)
            }
            None => REFRESH_MARGIN.as_secs(),
        };
        now.saturating_add(margin) >= at
    }

    /// Past its expiry: the resource server will refuse it, so it is not worth sending.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
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
    fn refresh_margin_is_proportional_to_lifetime() {
        let t = |issued: Option<u64>, lifetime: u64| TokenSet {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            refresh_token: Some("r".into()),
            expires_at: Some(issued.unwrap_or(1000) + lifetime),
            issued_at: issued,
            scope: None,
            issuer: "i".into(),
            resource: "r".into(),
        };
        // (issued_at, lifetime, now, due for refresh)
        let cases = [
            (Some(1000), 3600, 1000, false),
            (Some(1000), 3600, 4539, false),
            (Some(1000), 3600, 4540, true),
            // A 60 s token: a 15 s margin, and never in the first moments of its life.
            (Some(1000), 60, 1000, false),
            (Some(1000), 60, 1044, false),
            (Some(1000), 60, 1045, true),
            // A 4 s token is not refreshed early in its first 5 s, but once expired it is, whatever its age.
            (Some(1000), 4, 1002, false),
            (Some(1000), 4, 1003, false),
            (Some(1000), 4, 1004, true),
            (Some(1000), 0, 1000, true),
            (Some(1000), 2, 1002, true),
            // Stored without issued_at (older versions): the fixed margin.
            (None, 3600, 4540, true),
            (None, 3600, 4539, false),
        ];
        for (issued, lifetime, now, due) in cases {
            assert_eq!(t(issued, lifetime).expires_soon(now), due, "{issued:?} {lifetime} {now}");
        }
        assert!(t(Some(1000), 60).is_expired(1060));
        assert!(!t(Some(1000), 60).is_expired(1059));
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
