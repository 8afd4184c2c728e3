//! [`VerifiedCache`]: remembers tokens a [`JwtVerifier`](super::JwtVerifier) already checked, so a client
//! that sends the same token on every request pays for one signature check, not one per request.
//!
//! Entries are keyed by the SHA-256 of the token (the token itself is not kept) and live until the token's
//! `exp` or [`MAX_AGE`], whichever comes first, so a key withdrawn from the JWKS stops working within
//! [`MAX_AGE`]. At most [`MAX_ENTRIES`] tokens are kept; past it, expired entries are dropped, and if none
//! are, the whole cache is cleared (a flood of distinct valid tokens costs signature checks, never memory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::VerifiedToken;

/// Longest a verified token is trusted without checking its signature again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Most tokens remembered.
pub(crate) const MAX_ENTRIES: usize = 4096;

type Digest = [u8; 32];

#[derive(Default)]
pub(crate) struct VerifiedCache {
    entries: Mutex<HashMap<Digest, (VerifiedToken, Instant)>>,
}

impl VerifiedCache {
    pub(crate) fn digest(token: &str) -> Digest {
        hmac_sha256::Hash::hash(token.as_bytes())
    }

    /// The verified token with this digest, if it is still trusted.
    pub(crate) fn get(&self, digest: &Digest) -> Option<VerifiedToken> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (token, until) = entries.get(digest)?;
        (Instant::now() < *until).then(|| token.clone())
    }

    /// Remembers a token that passed every check, until its expiry or [`MAX_AGE`].
    pub(crate) fn put(&self, digest: Digest, token: &VerifiedToken) {
        let now = Instant::now();
        let left =
            token.principal.expires_at.and_then(|exp| exp.duration_since(SystemTime::now()).ok()).unwrap_or_default();
        let until = now + left.min(MAX_AGE);
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (token.clone(), until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Principal;

    fn token(expires_in: Duration) -> VerifiedToken {
        VerifiedToken::new(Principal { expires_at: Some(SystemTime::now() + expires_in), ..Principal::default() })
    }

    #[tokio::test(start_paused = true)]
    async fn entries_live_until_expiry_or_max_age_and_stay_bounded() {
        let cache = VerifiedCache::default();
        let (a, b) = (VerifiedCache::digest("a"), VerifiedCache::digest("b"));
        cache.put(a, &token(Duration::from_secs(3600)));
        cache.put(b, &token(Duration::from_secs(0)));
        assert!(cache.get(&a).is_some());
        assert!(cache.get(&b).is_none(), "an expired token is not kept");
        tokio::time::advance(MAX_AGE).await;
        assert!(cache.get(&a).is_none(), "checked again after MAX_AGE");
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(VerifiedCache::digest(&i.to_string()), &token(Duration::from_secs(3600)));
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
