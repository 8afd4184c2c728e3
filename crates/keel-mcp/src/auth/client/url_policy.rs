//! Which URLs the OAuth client may talk to: https (or http on an exact loopback host) everywhere, and an SSRF
//! guard for every URL an attacker could choose (`resource_metadata`, `authorization_servers`, AS endpoints).
//!
//! Hosts are judged by their literal form only, never resolved: the `url` crate turns numeric tricks
//! (`2130706433`, `0x7f000001`, `127.1`) into their dotted form first, so they are caught as what they are.
//! DNS names that resolve to private addresses are out of reach of this check (use an egress proxy).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::error::{AuthError, redact_url};

/// The rules for one MCP server.
#[derive(Clone, Copy, Debug, Default)]
pub struct UrlPolicy {
    /// Private and loopback hosts are allowed (the MCP server itself is private, or a test asked for it).
    pub allow_private: bool,
}

impl UrlPolicy {
    /// The policy for an MCP server URL: private hosts are fine when the server itself is private.
    pub fn for_server(server_url: &str, allow_loopback: bool) -> UrlPolicy {
        let private = Url::parse(server_url).ok().and_then(|u| u.host().map(|h| host_is_private(&h))).unwrap_or(false);
        UrlPolicy { allow_private: private || allow_loopback }
    }

    /// Checks a URL the client is about to fetch or send the user to.
    pub fn check(&self, raw: &str) -> Result<Url, AuthError> {
        let url = check_secure(raw)?;
        if !self.allow_private && url.host().is_some_and(|h| host_is_private(&h)) {
            return Err(AuthError::PrivateAddress(redact_url(raw)));
        }
        Ok(url)
    }
}

/// https, or http on exactly `localhost`, `127.0.0.1` or `[::1]`; no userinfo, no fragment.
pub fn check_secure(raw: &str) -> Result<Url, AuthError> {
    let bad = || AuthError::InsecureUrl(redact_url(raw));
    let url = Url::parse(raw).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad());
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_exact_loopback(&url) => Ok(url),
        _ => Err(bad()),
    }
}

fn is_exact_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// Loopback, private, link-local, CGNAT, ULA, unspecified or `localhost` names.
pub fn host_is_private(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Host::Ipv4(ip) => ipv4_is_private(*ip),
        Host::Ipv6(ip) => ipv6_is_private(*ip),
    }
}

/// The same judgement for an IP address.
pub fn ip_is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_is_private(v4),
        IpAddr::V6(v6) => ipv6_is_private(v6),
    }
}

fn ipv4_is_private(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || a >= 224
}

fn ipv6_is_private(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_is_private(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || seg[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
        || (seg[0] & 0xfe00) == 0xfc00 // ULA fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xff00) == 0xff00 // multicast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_url_table() {
        let cases = [
            ("https://auth.example.com/token", true),
            ("http://localhost:3000/cb", true),
            ("http://LOCALHOST/cb", true),
            ("http://127.0.0.1:8080/", true),
            ("http://[::1]:8080/", true),
            ("http://127.0.0.2/", false),
            ("http://foo.localhost/", false),
            ("http://127.attacker.com/", false),
            ("http://localhost.attacker.com/", false),
            ("http://example.com/", false),
            ("javascript:alert(1)", false),
            ("data:text/html,hi", false),
            ("file:///etc/passwd", false),
            ("https://user:pw@example.com/", false),
            ("https://example.com/#frag", false),
            ("not a url", false),
        ];
        for (url, ok) in cases {
            assert_eq!(check_secure(url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn ssrf_table() {
        let strict = UrlPolicy { allow_private: false };
        let cases = [
            ("https://auth.example.com/", true),
            ("https://10.0.0.1/", false),
            ("https://172.16.5.4/", false),
            ("https://172.32.0.1/", true),
            ("https://192.168.1.1/", false),
            ("https://169.254.169.254/latest/meta-data", false),
            ("https://100.64.0.1/", false),
            ("https://0.0.0.0/", false),
            ("https://127.0.0.1/", false),
            ("https://2130706433/", false),
            ("https://0x7f000001/", false),
            ("https://127.1/", false),
            ("https://0177.0.0.1/", false),
            ("https://[::1]/", false),
            ("https://[fd00::1]/", false),
            ("https://[fe80::1]/", false),
            ("https://[::ffff:10.0.0.1]/", false),
            ("https://[::ffff:7f00:1]/", false),
            ("https://[2001:db8::1]/", true),
            ("https://localhost/", false),
            ("https://a.localhost/", false),
            ("https://8.8.8.8/", true),
        ];
        for (url, ok) in cases {
            assert_eq!(strict.check(url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn private_server_allows_private_metadata() {
        assert!(UrlPolicy::for_server("http://localhost:3000/mcp", false).allow_private);
        assert!(UrlPolicy::for_server("https://10.1.2.3/mcp", false).allow_private);
        assert!(!UrlPolicy::for_server("https://mcp.example.com/mcp", false).allow_private);
        assert!(UrlPolicy::for_server("https://mcp.example.com/mcp", true).allow_private);
        let p = UrlPolicy::for_server("http://127.0.0.1:1/mcp", false);
        assert!(p.check("http://localhost:2/token").is_ok());
        assert!(p.check("http://10.0.0.1/token").is_err(), "http stays loopback-only");
    }
}
