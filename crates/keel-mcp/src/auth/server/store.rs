//! Where the authorization server keeps what outlives a request: clients, authorization codes and refresh
//! token families. [`Store`] is the seam; [`MemoryStore`] the bounded in-memory default.
//!
//! Codes and refresh tokens are stored under the SHA-256 of their value ([`token_key`]), so a copy of the
//! store gives nobody a usable credential. The operations that decide a credential's fate —
//! [`Store::redeem_code`] and [`Store::rotate_refresh_token`] — are single atomic steps, so two concurrent
//! redemptions of one code cannot both succeed.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::client::Client;
use super::error::AuthServerError;
use crate::auth::client::pkce::constant_time_eq;

/// The key a code or refresh token is stored under: base64url(SHA-256(value)).
pub fn token_key(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(value.as_bytes()))
}

/// An authorization code's grant, bound to everything the token request must repeat.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct CodeGrant {
    /// The client it was issued to.
    pub client_id: String,
    /// The `redirect_uri` of the authorization request, when it had one (the token request must repeat it).
    pub redirect_uri: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) the tokens are for.
    pub resource: String,
    /// The user who approved.
    pub subject: String,
    /// Seconds since the epoch after which the code is worthless.
    pub expires_at: u64,
}

/// What redeeming a code found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// First use: the grant.
    Fresh(CodeGrant),
    /// The code was redeemed before; `family` is the refresh-token family issued then, to revoke.
    Replayed {
        /// The family issued for the first redemption.
        family: Option<String>,
    },
    /// No such code (or it expired).
    Unknown,
}

/// A refresh token's grant. All tokens of one family share `family`; using a rotated-out token revokes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct RefreshGrant {
    /// The family's id, one per authorization: the [`token_key`] of the secret all its tokens start with.
    pub family: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub subject: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The resource.
    pub resource: String,
    /// Seconds since the epoch when the family ends (rotation does not extend it).
    pub expires_at: u64,
}

/// What presenting a refresh token found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RefreshUse {
    /// The current token of a live family: it is spent and the next token is current.
    Current(RefreshGrant),
    /// Another token of a live family (one rotated out, or a forgery by someone who saw one): the whole
    /// family is now revoked.
    Reused,
    /// Unknown, expired or revoked family.
    Unknown,
}

/// Storage for the authorization server. Calls are short and synchronous (the server calls them from its
/// request futures): an implementation on a database should keep them fast or use a local cache.
///
/// Refresh tokens are kept per family (one per authorization): only the family's grant and the key of its
/// current token. A refresh token names its family, so any other token of the family — however long ago it
/// was rotated out — is recognised as reuse without storing spent tokens.
pub trait Store: Send + Sync + 'static {
    /// Adds or replaces a client. Fails when the store holds its maximum of clients.
    fn put_client(&self, client: Client) -> Result<(), AuthServerError>;
    /// The client `client_id`.
    fn client(&self, client_id: &str) -> Result<Option<Client>, AuthServerError>;
    /// Stores a fresh code under `key` ([`token_key`] of the code).
    fn put_code(&self, key: String, grant: CodeGrant) -> Result<(), AuthServerError>;
    /// Redeems the code under `key` once: the first call gets its grant and records `family` as the
    /// refresh-token family issued for it, in the same step, so that a replay — even one racing this
    /// redemption — learns which family to revoke. Later calls learn it was replayed.
    fn redeem_code(&self, key: &str, family: &str, now: u64) -> Result<CodeRedemption, AuthServerError>;
    /// Starts the family `grant.family` with its first token under `key`. `Ok(false)` when the family was
    /// revoked before it started (its code was replayed meanwhile); [`AuthServerError::StoreFull`] when the
    /// store holds its maximum of families.
    fn start_refresh_family(&self, key: String, grant: RefreshGrant) -> Result<bool, AuthServerError>;
    /// Presents the token under `key` of `family`. When it is the family's current token, `next` becomes
    /// current in the same step ([`RefreshUse::Current`]); any other token revokes the family.
    fn rotate_refresh_token(
        &self,
        family: &str,
        key: &str,
        next: String,
        now: u64,
    ) -> Result<RefreshUse, AuthServerError>;
    /// The grant of `family` while it is live, without using any token (to check its client, or revoke).
    fn refresh_family(&self, family: &str, now: u64) -> Result<Option<RefreshGrant>, AuthServerError>;
    /// Revokes every token of `family`. A family that has not started yet can no longer start before `until`
    /// (seconds since the epoch).
    fn revoke_family(&self, family: &str, until: u64) -> Result<(), AuthServerError>;
}

/// Bounds of the stores; past them new entries are refused (after expired ones are dropped).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StoreLimits {
    /// Most registered clients. Default 10,000.
    pub max_clients: usize,
    /// Most outstanding authorization codes. Default 10,000.
    pub max_codes: usize,
    /// Most live refresh tokens, which is most live refresh-token families: rotation replaces a family's
    /// token and spent tokens are not kept. Past it a code redemption that would start a family gets 503
    /// `temporarily_unavailable`; existing families keep refreshing. Default 100,000.
    pub max_refresh_tokens: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits { max_clients: 10_000, max_codes: 10_000, max_refresh_tokens: 100_000 }
    }
}

/// The in-memory store: everything is lost on restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    limits: StoreLimits,
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    clients: HashMap<String, Client>,
    codes: HashMap<String, CodeEntry>,
    families: HashMap<String, Family>,
}

#[derive(Debug)]
struct CodeEntry {
    grant: CodeGrant,
    /// Set when the code is redeemed.
    family: Option<String>,
}

#[derive(Debug)]
enum Family {
    /// A live family and the key of its current token.
    Live { grant: RefreshGrant, current: String },
    /// Revoked before it started: refused until then.
    Refused { until: u64 },
}

impl Family {
    fn ends(&self) -> u64 {
        match self {
            Family::Live { grant, .. } => grant.expires_at,
            Family::Refused { until } => *until,
        }
    }
}

impl MemoryStore {
    /// A store with the default [`StoreLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with `limits`.
    pub fn with_limits(limits: StoreLimits) -> Self {
        MemoryStore { limits, state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn full(what: &str) -> AuthServerError {
    AuthServerError::StoreFull(format!("the store holds its maximum of {what}"))
}

impl Store for MemoryStore {
    fn put_client(&self, client: Client) -> Result<(), AuthServerError> {
        let mut state = self.state();
        if state.clients.len() >= self.limits.max_clients && !state.clients.contains_key(&client.client_id) {
            return Err(full("clients"));
        }
        state.clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    fn client(&self, client_id: &str) -> Result<Option<Client>, AuthServerError> {
        Ok(self.state().clients.get(client_id).cloned())
    }

    fn put_code(&self, key: String, grant: CodeGrant) -> Result<(), AuthServerError> {
        let mut state = self.state();
        if state.codes.len() >= self.limits.max_codes {
            let now = crate::auth::client::token::now_secs();
            state.codes.retain(|_, c| c.grant.expires_at > now);
            if state.codes.len() >= self.limits.max_codes {
                return Err(full("authorization codes"));
            }
        }
        state.codes.insert(key, CodeEntry { grant, family: None });
        Ok(())
    }

    fn redeem_code(&self, key: &str, family: &str, now: u64) -> Result<CodeRedemption, AuthServerError> {
        let mut state = self.state();
        let Some(entry) = state.codes.get_mut(key) else { return Ok(CodeRedemption::Unknown) };
        if entry.family.is_some() {
            return Ok(CodeRedemption::Replayed { family: entry.family.clone() });
        }
        if entry.grant.expires_at <= now {
            state.codes.remove(key);
            return Ok(CodeRedemption::Unknown);
        }
        // Spent, but kept until it expires so a replay is recognised as one.
        entry.family = Some(family.to_owned());
        Ok(CodeRedemption::Fresh(entry.grant.clone()))
    }

    fn start_refresh_family(&self, key: String, grant: RefreshGrant) -> Result<bool, AuthServerError> {
        let mut state = self.state();
        let now = crate::auth::client::token::now_secs();
        match state.families.get(&grant.family) {
            Some(family) if family.ends() > now => return Ok(false),
            _ => {}
        }
        if state.families.len() >= self.limits.max_refresh_tokens {
            state.families.retain(|_, f| f.ends() > now);
            if state.families.len() >= self.limits.max_refresh_tokens {
                return Err(full("refresh tokens"));
            }
        }
        state.families.insert(grant.family.clone(), Family::Live { grant, current: key });
        Ok(true)
    }

    fn rotate_refresh_token(
        &self,
        family: &str,
        key: &str,
        next: String,
        now: u64,
    ) -> Result<RefreshUse, AuthServerError> {
        let mut state = self.state();
        let Some(Family::Live { grant, current }) = state.families.get_mut(family) else {
            return Ok(RefreshUse::Unknown);
        };
        if grant.expires_at <= now {
            state.families.remove(family);
            return Ok(RefreshUse::Unknown);
        }
        if !constant_time_eq(current, key) {
            state.families.remove(family);
            return Ok(RefreshUse::Reused);
        }
        *current = next;
        Ok(RefreshUse::Current(grant.clone()))
    }

    fn refresh_family(&self, family: &str, now: u64) -> Result<Option<RefreshGrant>, AuthServerError> {
        Ok(match self.state().families.get(family) {
            Some(Family::Live { grant, .. }) if grant.expires_at > now => Some(grant.clone()),
            _ => None,
        })
    }

    fn revoke_family(&self, family: &str, until: u64) -> Result<(), AuthServerError> {
        let mut state = self.state();
        match state.families.get(family) {
            // Its tokens name it: once it is gone they are unknown.
            Some(Family::Live { .. }) => {
                state.families.remove(family);
            }
            // Not started (a replayed code racing its first redemption): keep it from starting. The marker
            // takes a family's room until `until`, and is not refused when the store is full, since it is
            // what stops a stolen code.
            _ => {
                state.families.insert(family.to_owned(), Family::Refused { until });
            }
        }
        Ok(())
    }
}

/// Records for the stores' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{CodeGrant, RefreshGrant};

    /// A refresh grant of `family` for client `c`, ending at `expires_at`.
    pub fn refresh_grant(family: &str, expires_at: u64) -> RefreshGrant {
        RefreshGrant {
            family: family.into(),
            client_id: "c".into(),
            subject: "u".into(),
            scopes: vec![],
            resource: "r".into(),
            expires_at,
        }
    }

    /// A code grant for client `c`, expiring at 100.
    pub fn code_grant() -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: None,
            code_challenge: "x".into(),
            scopes: vec![],
            resource: "r".into(),
            subject: "u".into(),
            expires_at: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::code_grant;
    use super::*;

    fn grant(family: &str) -> RefreshGrant {
        super::fixtures::refresh_grant(family, u64::MAX / 4)
    }

    #[test]
    fn refresh_reuse_revokes_the_family() {
        let store = MemoryStore::new();
        assert!(store.start_refresh_family("a".into(), grant("f")).unwrap());
        assert!(matches!(store.rotate_refresh_token("f", "a", "b".into(), 10).unwrap(), RefreshUse::Current(_)));
        assert!(matches!(store.rotate_refresh_token("f", "b", "c".into(), 10).unwrap(), RefreshUse::Current(_)));
        assert_eq!(store.rotate_refresh_token("f", "a", "x".into(), 11).unwrap(), RefreshUse::Reused);
        assert_eq!(store.rotate_refresh_token("f", "c", "y".into(), 12).unwrap(), RefreshUse::Unknown, "gone");
        assert_eq!(store.refresh_family("f", 12).unwrap(), None);
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let store = MemoryStore::new();
        let code = code_grant();
        store.put_code("k".into(), code.clone()).unwrap();
        assert_eq!(store.redeem_code("k", "f", 99).unwrap(), CodeRedemption::Fresh(code.clone()));
        assert_eq!(store.redeem_code("k", "g", 99).unwrap(), CodeRedemption::Replayed { family: Some("f".into()) });
        store.put_code("late".into(), code).unwrap();
        assert_eq!(store.redeem_code("late", "h", 100).unwrap(), CodeRedemption::Unknown);
        assert_eq!(store.redeem_code("nope", "i", 1).unwrap(), CodeRedemption::Unknown);
    }

    #[test]
    fn a_replay_racing_the_first_redemption_stops_its_family() {
        let store = MemoryStore::new();
        store.put_code("k".into(), code_grant()).unwrap();
        assert!(matches!(store.redeem_code("k", "f", 50).unwrap(), CodeRedemption::Fresh(_)));
        // The replay lands before the first redemption has issued anything: it already knows the family.
        let CodeRedemption::Replayed { family: Some(family) } = store.redeem_code("k", "g", 51).unwrap() else {
            panic!("the family is linked at redemption")
        };
        store.revoke_family(&family, u64::MAX / 4).unwrap();
        assert!(!store.start_refresh_family("r".into(), grant("f")).unwrap(), "the family never starts");
        assert_eq!(store.refresh_family("f", 52).unwrap(), None);
    }

    #[test]
    fn bounded() {
        let store = MemoryStore::with_limits(StoreLimits { max_clients: 1, ..StoreLimits::default() });
        store.put_client(Client::public("a", vec![])).unwrap();
        store.put_client(Client::public("a", vec![])).unwrap();
        assert!(store.put_client(Client::public("b", vec![])).is_err());
        let store = MemoryStore::with_limits(StoreLimits { max_refresh_tokens: 1, ..StoreLimits::default() });
        assert!(store.start_refresh_family("a".into(), grant("f")).unwrap());
        let full = store.start_refresh_family("b".into(), grant("g")).unwrap_err();
        assert!(matches!(full, AuthServerError::StoreFull(_)), "{full}");
        // An ended family makes room.
        store.revoke_family("f", 0).unwrap();
        assert!(store.start_refresh_family("b".into(), grant("g")).unwrap());
    }
}
