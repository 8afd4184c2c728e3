//! Where the authorization server keeps what outlives a request: clients, authorization codes and refresh
//! token families. [`Store`] is the seam; [`MemoryStore`] the bounded in-memory default.
//!
//! Codes and refresh tokens are stored under the SHA-256 of their value ([`token_key`]), so a copy of the
//! store gives nobody a usable credential. The operations that decide a credential's fate —
//! [`Store::redeem_code`] and [`Store::use_refresh_token`] — are single atomic steps, so two concurrent
//! redemptions of one code cannot both succeed.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::client::Client;
use super::error::AuthServerError;

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
    /// The family (one per authorization).
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

/// What using a refresh token found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RefreshUse {
    /// The current token of a live family: it is now spent.
    Current(RefreshGrant),
    /// A token that was already rotated out: its whole family is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Unknown,
}

/// Storage for the authorization server. Calls are short and synchronous (the server calls them from its
/// request futures): an implementation on a database should keep them fast or use a local cache.
pub trait Store: Send + Sync + 'static {
    /// Adds or replaces a client. Fails when the store holds its maximum of clients.
    fn put_client(&self, client: Client) -> Result<(), AuthServerError>;
    /// The client `client_id`.
    fn client(&self, client_id: &str) -> Result<Option<Client>, AuthServerError>;
    /// Stores a fresh code under `key` ([`token_key`] of the code).
    fn put_code(&self, key: String, grant: CodeGrant) -> Result<(), AuthServerError>;
    /// Redeems the code under `key` once: the first call gets its grant, later calls learn it was replayed.
    fn redeem_code(&self, key: &str, now: u64) -> Result<CodeRedemption, AuthServerError>;
    /// Records the refresh-token family issued for the code under `key`, so a replay can revoke it.
    fn link_code_family(&self, key: &str, family: &str) -> Result<(), AuthServerError>;
    /// Stores a fresh refresh token under `key`.
    fn put_refresh_token(&self, key: String, grant: RefreshGrant) -> Result<(), AuthServerError>;
    /// Uses the refresh token under `key` once (see [`RefreshUse`]).
    fn use_refresh_token(&self, key: &str, now: u64) -> Result<RefreshUse, AuthServerError>;
    /// The grant of the refresh token under `key`, without using it (for revocation).
    fn refresh_token(&self, key: &str) -> Result<Option<RefreshGrant>, AuthServerError>;
    /// Revokes every token of `family`.
    fn revoke_family(&self, family: &str) -> Result<(), AuthServerError>;
}

/// Bounds of the [`MemoryStore`]; past them new entries are refused (after expired ones are dropped).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StoreLimits {
    /// Most registered clients. Default 10,000.
    pub max_clients: usize,
    /// Most outstanding authorization codes. Default 10,000.
    pub max_codes: usize,
    /// Most refresh tokens, spent ones included until their family ends. Default 100,000.
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
    refresh: HashMap<String, RefreshEntry>,
    /// Revoked families and when they would have ended (kept until then).
    revoked: HashMap<String, u64>,
}

#[derive(Debug)]
struct CodeEntry {
    grant: CodeGrant,
    spent: bool,
    family: Option<String>,
}

#[derive(Debug)]
struct RefreshEntry {
    grant: RefreshGrant,
    spent: bool,
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

fn full(what: &str) -> AuthServerError {
    AuthServerError::Store(format!("the store holds its maximum of {what}"))
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
        state.codes.insert(key, CodeEntry { grant, spent: false, family: None });
        Ok(())
    }

    fn redeem_code(&self, key: &str, now: u64) -> Result<CodeRedemption, AuthServerError> {
        let mut state = self.state();
        let Some(entry) = state.codes.get_mut(key) else { return Ok(CodeRedemption::Unknown) };
        if entry.spent {
            return Ok(CodeRedemption::Replayed { family: entry.family.clone() });
        }
        if entry.grant.expires_at <= now {
            state.codes.remove(key);
            return Ok(CodeRedemption::Unknown);
        }
        // Spent, but kept until it expires so a replay is recognised as one.
        entry.spent = true;
        Ok(CodeRedemption::Fresh(entry.grant.clone()))
    }

    fn link_code_family(&self, key: &str, family: &str) -> Result<(), AuthServerError> {
        if let Some(entry) = self.state().codes.get_mut(key) {
            entry.family = Some(family.to_owned());
        }
        Ok(())
    }

    fn put_refresh_token(&self, key: String, grant: RefreshGrant) -> Result<(), AuthServerError> {
        let mut state = self.state();
        if state.refresh.len() >= self.limits.max_refresh_tokens {
            let now = crate::auth::client::token::now_secs();
            state.refresh.retain(|_, r| r.grant.expires_at > now);
            state.revoked.retain(|_, until| *until > now);
            if state.refresh.len() >= self.limits.max_refresh_tokens {
                return Err(full("refresh tokens"));
            }
        }
        state.refresh.insert(key, RefreshEntry { grant, spent: false });
        Ok(())
    }

    fn use_refresh_token(&self, key: &str, now: u64) -> Result<RefreshUse, AuthServerError> {
        let mut state = self.state();
        let state = &mut *state;
        let Some(entry) = state.refresh.get_mut(key) else { return Ok(RefreshUse::Unknown) };
        if entry.grant.expires_at <= now || state.revoked.contains_key(&entry.grant.family) {
            return Ok(RefreshUse::Unknown);
        }
        if entry.spent {
            let (family, expires_at) = (entry.grant.family.clone(), entry.grant.expires_at);
            state.revoked.insert(family.clone(), expires_at);
            state.refresh.retain(|_, r| r.grant.family != family);
            return Ok(RefreshUse::Reused);
        }
        entry.spent = true;
        Ok(RefreshUse::Current(entry.grant.clone()))
    }

    fn refresh_token(&self, key: &str) -> Result<Option<RefreshGrant>, AuthServerError> {
        Ok(self.state().refresh.get(key).map(|r| r.grant.clone()))
    }

    fn revoke_family(&self, family: &str) -> Result<(), AuthServerError> {
        let mut state = self.state();
        let until = state.refresh.values().filter(|r| r.grant.family == family).map(|r| r.grant.expires_at).max();
        state.refresh.retain(|_, r| r.grant.family != family);
        state.revoked.insert(family.to_owned(), until.unwrap_or(u64::MAX));
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
        super::fixtures::refresh_grant(family, 1_000)
    }

    #[test]
    fn refresh_reuse_revokes_the_family() {
        let store = MemoryStore::new();
        store.put_refresh_token("a".into(), grant("f")).unwrap();
        assert!(matches!(store.use_refresh_token("a", 10).unwrap(), RefreshUse::Current(_)));
        store.put_refresh_token("b".into(), grant("f")).unwrap();
        assert_eq!(store.use_refresh_token("a", 11).unwrap(), RefreshUse::Reused);
        assert_eq!(store.use_refresh_token("b", 12).unwrap(), RefreshUse::Unknown, "the family is gone");
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let store = MemoryStore::new();
        let code = code_grant();
        store.put_code("k".into(), code.clone()).unwrap();
        assert_eq!(store.redeem_code("k", 99).unwrap(), CodeRedemption::Fresh(code.clone()));
        store.link_code_family("k", "f").unwrap();
        assert_eq!(store.redeem_code("k", 99).unwrap(), CodeRedemption::Replayed { family: Some("f".into()) });
        store.put_code("late".into(), code).unwrap();
        assert_eq!(store.redeem_code("late", 100).unwrap(), CodeRedemption::Unknown);
        assert_eq!(store.redeem_code("nope", 1).unwrap(), CodeRedemption::Unknown);
    }

    #[test]
    fn bounded() {
        let store = MemoryStore::with_limits(StoreLimits { max_clients: 1, ..StoreLimits::default() });
        store.put_client(Client::public("a", vec![])).unwrap();
        store.put_client(Client::public("a", vec![])).unwrap();
        assert!(store.put_client(Client::public("b", vec![])).is_err());
    }
}
