//! [`VerifiedCache`]: remembers tokens a [`JwtVerifier`](super::JwtVerifier) already checked, so a client
//! that sends the same token on every request pays for one signature check, not one per request.
//!
//! A hit is the hot path of every protected request, so it costs little: a keyed SipHash of the token's
//! length and last bytes (its signature) picks an entry in one of [`SHARDS`] read-mostly maps (concurrent
//! requests share a read lock instead of queueing on one mutex), the cached token is compared in full with
//! the presented one, and the answer is the verified token as it was built on the miss (the principal behind
//! an `Arc`, never rebuilt or copied).
//!
//! Entries live until the token's `exp` or [`MAX_AGE`], whichever comes first, so a key withdrawn from the
//! JWKS stops working within [`MAX_AGE`]. At most [`MAX_ENTRIES`] tokens are kept; past a shard's share of
//! it, that shard's expired entries are dropped, and if none are, the shard is cleared (a flood of distinct
//! valid tokens costs signature checks, never memory). Only tokens the issuer signed get in, and each is at
//! most the configured `Authorization` bound long.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::VerifiedToken;

/// Longest a verified token is trusted without checking its signature again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Most tokens remembered.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// Independently locked parts of the cache.
const SHARDS: usize = 16;
/// How many bytes at the end of a token its hash covers (an ES256 signature is 86 characters, RS256 342).
const HASHED_TAIL: usize = 64;

struct Entry {
    /// The token itself: a hit must be this exact token, not merely one with the same hash.
    token: Box<str>,
    verified: VerifiedToken,
    until: Instant,
}

/// The map of one shard, keyed by the token's keyed hash (already uniform: hashed again by nothing).
type Shard = HashMap<u64, Entry, BuildHasherDefault<PassThrough>>;

pub(crate) struct VerifiedCache {
    /// SipHash with a per-process random key: nobody outside can choose tokens that collide.
    keys: RandomState,
    shards: Box<[RwLock<Shard>]>,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache { keys: RandomState::new(), shards: (0..SHARDS).map(|_| RwLock::default()).collect() }
    }
}

impl VerifiedCache {
    fn locate(&self, token: &str) -> (u64, &RwLock<Shard>) {
        // The length and the last bytes: a JWT ends with its signature, which differs between any two tokens,
        // so hashing the rest would buy nothing (a collision costs a miss, never a wrong hit).
        let bytes = token.as_bytes();
        let tail = bytes.get(bytes.len().saturating_sub(HASHED_TAIL)..).unwrap_or(bytes);
        let hash = self.keys.hash_one((bytes.len(), tail));
        // The high bits pick the shard; the map indexes by the low ones.
        (hash, &self.shards[(hash >> 56) as usize % SHARDS])
    }

    /// The verified `token`, if it is cached and still trusted.
    pub(crate) fn get(&self, token: &str) -> Option<VerifiedToken> {
        let (hash, shard) = self.locate(token);
        let entries = shard.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&hash)?;
        (Instant::now() < entry.until && same_token(&entry.token, token)).then(|| entry.verified.clone())
    }

    /// Remembers a token that passed every check, until its expiry or [`MAX_AGE`].
    pub(crate) fn put(&self, token: &str, verified: &VerifiedToken) {
        let now = Instant::now();
        let left = verified
            .principal
            .expires_at
            .and_then(|exp| exp.duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        let until = now + left.min(MAX_AGE);
        if until <= now {
            return;
        }
        let (hash, shard) = self.locate(token);
        let mut entries = shard.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES / SHARDS {
            entries.retain(|_, entry| now < entry.until);
            if entries.len() >= MAX_ENTRIES / SHARDS {
                entries.clear();
            }
        }
        entries.insert(hash, Entry { token: token.into(), verified: verified.clone(), until });
    }
}

/// Whether the cached token is the presented one, in time that depends only on the length. The comparison
/// runs only when the keyed hashes already match, which nobody without the key can arrange for a token other
/// than the cached one, so even an early-exit comparison would leak nothing usable; this one does not exit
/// early anyway, and costs a few dozen instructions for a typical JWT.
fn same_token(cached: &str, presented: &str) -> bool {
    let (a, b) = (cached.as_bytes(), presented.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a_words.remainder().iter().zip(b_words.remainder()).fold(0u64, |acc, (x, y)| acc | u64::from(x ^ y));
    let word = |chunk: &[u8]| chunk.try_into().map_or(0, u64::from_ne_bytes);
    a_words.zip(b_words).fold(tail, |acc, (x, y)| acc | (word(x) ^ word(y))) == 0
}

/// The identity hash, for keys that are already keyed hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach here (through `write_u64`); fold anything else in rather than drop it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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
        cache.put("a", &token(Duration::from_secs(3600)));
        cache.put("b", &token(Duration::from_secs(0)));
        assert!(cache.get("a").is_some());
        assert!(cache.get("b").is_none(), "an expired token is not kept");
        tokio::time::advance(MAX_AGE).await;
        assert!(cache.get("a").is_none(), "checked again after MAX_AGE");
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(&i.to_string(), &token(Duration::from_secs(3600)));
        }
        let held: usize = cache.shards.iter().map(|s| s.read().unwrap().len()).sum();
        assert!(held <= MAX_ENTRIES);
    }

    #[test]
    fn a_hit_is_the_same_principal_and_only_for_the_same_token() {
        let cache = VerifiedCache::default();
        let verified = token(Duration::from_secs(3600));
        cache.put("header.payload.signature", &verified);
        let hit = cache.get("header.payload.signature").unwrap();
        assert!(std::sync::Arc::ptr_eq(&hit.principal, &verified.principal), "no copy of the principal");
        assert!(cache.get("header.payload.signaturf").is_none());
        assert!(cache.get("header.payload.signature=").is_none());
        // Same length and the same hashed tail, another head: the full comparison refuses it.
        let tail = "s".repeat(HASHED_TAIL);
        cache.put(&format!("aaaa.{tail}"), &verified);
        assert!(cache.get(&format!("aaaa.{tail}")).is_some());
        assert!(cache.get(&format!("bbbb.{tail}")).is_none());
        // A colliding hash with another token is no hit: plant one under the real token's hash.
        let (hash, shard) = cache.locate("the-real-token");
        let planted = Entry { token: "another-token".into(), verified, until: Instant::now() + MAX_AGE };
        shard.write().unwrap().insert(hash, planted);
        assert!(cache.get("the-real-token").is_none());
    }

    #[test]
    fn token_comparison() {
        assert!(same_token("", ""));
        assert!(same_token("abcdefghijklmnopq", "abcdefghijklmnopq"));
        assert!(!same_token("abcdefghijklmnopq", "abcdefghijklmnopr"));
        assert!(!same_token("abcdefgh", "abcdefgX"));
        assert!(!same_token("abc", "abcd"));
    }
}
