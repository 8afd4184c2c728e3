//! The era each HTTP origin spoke last time, remembered for the life of the process (bounded), so a client
//! that met a legacy server once does not probe it again. Using the entry (skipping one probe) or a failed
//! connection forgets it; the client probes after all when the remembered era does not work for it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::protocol::Era;

/// Origins remembered at most; the cache is cleared when full (cheap, and probing again is always safe).
const MAX_ORIGINS: usize = 256;

fn cache() -> &'static Mutex<HashMap<String, Era>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Era>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The era `origin` spoke last time, if known.
pub fn get(origin: &str) -> Option<Era> {
    cache().lock().expect("era cache lock").get(origin).copied()
}

/// Records the era `origin` speaks.
pub fn set(origin: &str, era: Era) {
    let mut map = cache().lock().expect("era cache lock");
    if map.len() >= MAX_ORIGINS && !map.contains_key(origin) {
        map.clear();
    }
    map.insert(origin.to_owned(), era);
}

/// Forgets `origin` (its server changed, or the cached era failed).
pub fn forget(origin: &str) {
    cache().lock().expect("era cache lock").remove(origin);
}
