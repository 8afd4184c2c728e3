//! Who sent a request, as the per-peer limits (connections, sessions, tasks) count it. A leaf: the HTTP
//! transport fills it in, the task store counts by it.

use std::net::{IpAddr, SocketAddr};

/// The address of the peer that sent a request, for the per-peer limits: legacy sessions, and the running
/// tasks of stateless requests ([`Limits::max_tasks_per_client`](crate::Limits::max_tasks_per_client)).
///
/// [`Server::serve_http_on`](crate::server::Server::serve_http_on) puts it in every request's extensions.
/// When you mount [`McpService`](crate::server::http::McpService) in your own server, insert it yourself (e.g. from
/// axum's `ConnectInfo<SocketAddr>`, or the client's address a trusted proxy forwards); without it, every
/// session counts as coming from one unknown peer that has no per-peer limit, and only
/// [`HttpConfig::max_sessions`](crate::server::http::HttpConfig::max_sessions) applies, and every stateless request
/// shares one task allowance. The authorization server's rate limits
/// (`auth::server::RateLimits`, feature `authorization-server`) count per address too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// What per-peer limits count by: the IP address, with IPv6 addresses grouped by /64 (the block one
/// subscriber usually gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PeerKey {
    V4(u32),
    /// The upper 64 bits of the address.
    V6(u64),
}

impl PeerKey {
    /// The key of `addr` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub(crate) fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => PeerKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey::V4(u32::from(v4)),
                None => PeerKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_counts_by_its_64_and_a_mapped_ipv4_by_its_address() {
        let key = |s: &str| PeerKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
        // An IPv4 address and the IPv6 /64 whose bits it shares are different peers.
        assert_ne!(key("0.0.0.1"), key("::1"));
    }
}
