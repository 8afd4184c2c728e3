//! Which URLs the OAuth client may talk to: https (or http on an exact loopback host) everywhere, and an SSRF
//! guard for every URL an attacker could choose (`resource_metadata`, `authorization_servers`, AS endpoints).
//!
//! Literal hosts are judged here: the `url` crate turns numeric tricks (`2130706433`, `0x7f000001`, `127.1`)
//! into their dotted form first, so they are caught as what they are. Host names are judged after
//! resolution, by the OAuth HTTP client's resolver, with the same table: [`ip_is_private`].
//!
//! The table is the IANA IPv4 and IPv6 Special-Purpose Address Registries (every block that is not globally
//! reachable, plus multicast and the deprecated 6to4 and site-local blocks); IPv4-mapped, IPv4-compatible
//! and NAT64 (`64:ff9b::/96`) addresses are judged by the IPv4 address they embed.

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
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network" 0.0.0.0/8
        || a == 10 // private 10.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT) 100.64.0.0/10
        || a == 127 // loopback 127.0.0.0/8
        || (a == 169 && b == 254) // link-local 169.254.0.0/16
        || (a == 172 && (16..32).contains(&b)) // private 172.16.0.0/12
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1 192.0.2.0/24
        || (a == 192 && b == 88 && c == 99) // deprecated 6to4 relay anycast 192.88.99.0/24
        || (a == 192 && b == 168) // private 192.168.0.0/16
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2 198.51.100.0/24
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3 203.0.113.0/24
        || a >= 224 // multicast 224.0.0.0/4, reserved 240.0.0.0/4, broadcast
}

fn ipv6_is_private(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let embedded_v4 = || Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_is_private(v4); // ::ffff:0:0/96
    }
    if seg[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ipv4_is_private(embedded_v4()); // NAT64 well-known prefix 64:ff9b::/96
    }
    seg[0..6] == [0, 0, 0, 0, 0, 0] // ::, ::1 and the deprecated IPv4-compatible ::/96
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1) // local-use NAT64 64:ff9b:1::/48
        || seg[0..4] == [0x100, 0, 0, 0] // discard-only 100::/64
        || (seg[0] == 0x2001 && seg[1] < 0x200) // IETF protocol assignments 2001::/23 (Teredo, benchmarking, ORCHID)
        || (seg[0] == 0x2001 && seg[1] == 0xdb8) // documentation 2001:db8::/32
        || seg[0] == 0x2002 // 6to4 2002::/16 (embeds any IPv4 address)
        || (seg[0] == 0x3fff && seg[1] < 0x1000) // documentation 3fff::/20
        || seg[0] == 0x5f00 // SRv6 SIDs 5f00::/16
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (seg[0] & 0xff00) == 0xff00 // multicast ff00::/8
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
            ("https://[2001:db8::1]/", false),
            ("https://localhost/", false),
            ("https://a.localhost/", false),
            ("https://8.8.8.8/", true),
            ("https://[2606:4700::1111]/", true),
            // IANA special-purpose blocks beyond the RFC 1918 ones.
            ("https://192.0.0.8/", false),
            ("https://192.0.2.1/", false),
            ("https://192.88.99.1/", false),
            ("https://198.18.0.1/", false),
            ("https://198.19.255.255/", false),
            ("https://198.20.0.1/", true),
            ("https://198.51.100.7/", false),
            ("https://203.0.113.9/", false),
            ("https://240.0.0.1/", false),
            ("https://255.255.255.255/", false),
            ("https://192.1.0.1/", true),
            // NAT64: judged by the embedded IPv4 address.
            ("https://[64:ff9b::a00:1]/", false),
            ("https://[64:ff9b::7f00:1]/", false),
            ("https://[64:ff9b::808:808]/", true),
            ("https://[64:ff9b:1::1]/", false),
            ("https://[2002:a00:1::]/", false),
            ("https://[2002:808:808::]/", false),
            ("https://[2001::1]/", false),
            ("https://[100::1]/", false),
            ("https://[3fff::1]/", false),
            ("https://[3fff:1000::1]/", true),
            ("https://[5f00::1]/", false),
            ("https://[fec0::1]/", false),
            ("https://[ff02::1]/", false),
            ("https://[::]/", false),
            ("https://[::a00:1]/", false),
            ("https://[2a00:1450::1]/", true),
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
