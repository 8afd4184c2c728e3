//! Cache hints on list and read results (2026-07-28, SEP-2549).

use serde::{Deserialize, Serialize};

/// Who may cache a result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Only within the same authorization context.
    #[default]
    Private,
    /// Any client or intermediary.
    Public,
}

/// A result's cache hints: how long it stays fresh and who may keep it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CacheHint {
    /// Milliseconds the result may be reused (0 = immediately stale).
    pub ttl_ms: u64,
    /// Who may cache it.
    pub scope: CacheScope,
}
