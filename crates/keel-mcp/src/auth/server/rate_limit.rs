//! Rate limits per peer IP address (an IPv6 peer by its /64) and per client: fixed one-minute windows,
//! counted in bounded tables. Dynamic registration has its own, stricter, hourly budget per address.
//!
//! A client's budget is split so that nobody can spend another's: before authentication a request counts
//! against the `client_id` *from that address* (anyone can claim any id), and only a request that proved
//! the client's secret or key counts against the client's own, address-independent budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::server::peer_addr::PeerKey;

/// Rate limits of the authorization server; every endpoint counts. `None` turns a limit off.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RateLimits {
    /// Requests per minute from one IP address (IPv6: one /64), over all endpoints. Default 300.
    pub per_ip_per_minute: Option<u32>,
    /// Token and revocation requests per minute naming one `client_id` from one IP address (IPv6: one
    /// /64), counted before the client is authenticated. Default 60.
    pub per_client_per_ip_per_minute: Option<u32>,
    /// Token and revocation requests per minute of one client that proved its secret or key, from any
    /// address (a public client proves nothing, so only the per-address budgets apply to it). Default 60.
    pub per_client_per_minute: Option<u32>,
    /// Dynamic registrations per hour from one IP address. Default 20.
    pub registrations_per_ip_per_hour: Option<u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip_per_minute: Some(300),
            per_client_per_ip_per_minute: Some(60),
            per_client_per_minute: Some(60),
            registrations_per_ip_per_hour: Some(20),
        }
    }
}

impl RateLimits {
    /// No limits (tests, or a deployment whose proxy limits instead).
    pub fn off() -> Self {
        RateLimits {
            per_ip_per_minute: None,
            per_client_per_ip_per_minute: None,
            per_client_per_minute: None,
            registrations_per_ip_per_hour: None,
        }
    }
}

/// Most keys tracked per table; past it, windows that ended are dropped, then the oldest window.
const MAX_TRACKED: usize = 100_000;

/// One fixed-window counter table.
#[derive(Debug)]
pub(crate) struct Windows<K> {
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: std::hash::Hash + Eq + Clone> Windows<K> {
    pub fn new(window: Duration) -> Self {
        Windows { window, counts: Mutex::default() }
    }

    /// Counts one request for `key`; `false` when it is over `limit` in the current window.
    pub fn allow(&self, key: &K, limit: Option<u32>, now: Instant) -> bool {
        let Some(limit) = limit else { return true };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= MAX_TRACKED && !counts.contains_key(key) {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
            if counts.len() >= MAX_TRACKED {
                let oldest = counts.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    counts.remove(&oldest);
                }
            }
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= limit
    }
}

/// The tables of one server.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    pub limits: RateLimits,
    per_ip: Windows<PeerKey>,
    per_client_ip: Windows<(String, Option<PeerKey>)>,
    per_client: Windows<String>,
    registrations: Windows<PeerKey>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            per_ip: Windows::new(Duration::from_secs(60)),
            per_client_ip: Windows::new(Duration::from_secs(60)),
            per_client: Windows::new(Duration::from_secs(60)),
            registrations: Windows::new(Duration::from_secs(3600)),
        }
    }

    /// A request from `ip` (unknown when the service was mounted without a [`crate::server::PeerAddr`]).
    pub fn allow_ip(&self, ip: Option<IpAddr>) -> bool {
        ip.is_none_or(|ip| self.per_ip.allow(&PeerKey::of(ip), self.limits.per_ip_per_minute, Instant::now()))
    }

    /// A request naming `client_id` from `ip`, before the client is authenticated.
    pub fn allow_client_attempt(&self, client_id: &str, ip: Option<IpAddr>) -> bool {
        let key = (bounded_id(client_id), ip.map(PeerKey::of));
        self.per_client_ip.allow(&key, self.limits.per_client_per_ip_per_minute, Instant::now())
    }

    /// A request of `client_id` once it proved its secret or key.
    pub fn allow_authenticated_client(&self, client_id: &str) -> bool {
        self.per_client.allow(&bounded_id(client_id), self.limits.per_client_per_minute, Instant::now())
    }

    pub fn allow_registration(&self, ip: Option<IpAddr>) -> bool {
        ip.is_none_or(|ip| {
            self.registrations.allow(&PeerKey::of(ip), self.limits.registrations_per_ip_per_hour, Instant::now())
        })
    }
}

/// Long ids are counted by a prefix: the tables' memory is bounded per key as well.
fn bounded_id(client_id: &str) -> String {
    client_id.chars().take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows() {
        let w = Windows::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(w.allow(&1, Some(2), t0));
        assert!(w.allow(&1, Some(2), t0));
        assert!(!w.allow(&1, Some(2), t0));
        assert!(w.allow(&2, Some(2), t0), "another key has its own budget");
        assert!(w.allow(&1, Some(2), t0 + Duration::from_secs(60)), "a new window");
        assert!(w.allow(&1, None, t0));
    }
}
