//! DNS-rebinding protection: the `Host` and `Origin` of every request must name an allowed host.
//!
//! A browser tricked into talking to a local server sends the attacker's host name in `Host` and the
//! attacker's origin in `Origin`; both are checked against an allow-list that defaults to the loopback
//! names. Non-browser clients send no `Origin`, which is fine.

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Uri};

/// Which hosts a server answers to.
///
/// The authority a request names is checked in every HTTP version: the `Host` header (HTTP/1.1) and the
/// target's authority (HTTP/2's `:authority`, or an absolute-form HTTP/1 target) must each name an allowed
/// host when present. A request with neither — HTTP/1.0 without `Host` — gets 403 under every policy but
/// [`HostPolicy::Any`]: the server cannot tell which name the client used, so it cannot rule out DNS
/// rebinding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPolicy {
    /// `localhost`, `127.0.0.1` and `[::1]`, any port: the right default for a server bound to loopback.
    Loopback,
    /// These host names (no port), plus loopback names if you list them.
    Allow(Vec<String>),
    /// Any host: only behind a proxy that checks `Host` itself, or with authentication.
    Any,
}

impl HostPolicy {
    fn allows(&self, host: &str) -> bool {
        match self {
            HostPolicy::Loopback => is_loopback_name(host),
            HostPolicy::Allow(list) => list.iter().any(|h| h.eq_ignore_ascii_case(host)),
            HostPolicy::Any => true,
        }
    }

    /// Whether the request's authority and `Origin` are acceptable.
    ///
    /// The authority is checked in every HTTP version: the `Host` header (HTTP/1) and the target's
    /// authority (HTTP/2's `:authority`, or an HTTP/1 absolute-form target) must each name an allowed host
    /// when present. A request with neither (HTTP/1.0 without `Host`) is refused unless the policy is
    /// [`HostPolicy::Any`]: a server that cannot tell which name the client used cannot rule out rebinding.
    pub(crate) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), &'static str> {
        if *self == HostPolicy::Any {
            return Ok(());
        }
        let host = headers.get(HOST);
        if let Some(host) = host {
            let host = host.to_str().map_err(|_| "invalid Host header")?;
            if !self.allows(strip_port(host)) {
                return Err("Host not allowed");
            }
        }
        match uri.authority() {
            Some(authority) if !self.allows(authority.host()) => return Err("Host not allowed"),
            Some(_) => {}
            None if host.is_none() => return Err("missing Host header"),
            None => {}
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().map_err(|_| "invalid Origin header")?;
            let Some(authority) = origin.split_once("://").map(|(_, rest)| rest) else {
                return Err("Origin not allowed");
            };
            if !self.allows(strip_port(authority.trim_end_matches('/'))) {
                return Err("Origin not allowed");
            }
        }
        Ok(())
    }
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]" || host == "::1"
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |end| &authority[..=end]);
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn check(policy: &HostPolicy, headers: &HeaderMap) -> Result<(), &'static str> {
        policy.check(&Uri::from_static("/mcp"), headers)
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn loopback_policy() {
        let p = HostPolicy::Loopback;
        for ok in ["localhost", "localhost:3000", "127.0.0.1:8080", "[::1]:9", "LOCALHOST"] {
            assert!(check(&p, &headers(ok, None)).is_ok(), "{ok}");
        }
        assert!(check(&p, &headers("evil.example.com", None)).is_err());
        assert!(check(&p, &headers("localhost:3000", Some("http://evil.example.com"))).is_err());
        assert!(check(&p, &headers("localhost:3000", Some("http://localhost:5173"))).is_ok());
        assert!(check(&p, &headers("127.0.0.1.evil.com", None)).is_err());
        assert!(check(&p, &headers("localhost", Some("null"))).is_err());
    }

    #[test]
    fn allow_list_and_any() {
        let p = HostPolicy::Allow(vec!["mcp.example.com".into()]);
        assert!(check(&p, &headers("mcp.example.com:443", Some("https://mcp.example.com"))).is_ok());
        assert!(check(&p, &headers("localhost", None)).is_err());
        assert!(check(&HostPolicy::Any, &headers("anything", Some("https://x"))).is_ok());
    }

    #[test]
    fn the_authority_is_checked_without_a_host_header() {
        let p = HostPolicy::Loopback;
        let none = HeaderMap::new();
        // HTTP/2 carries the authority in the target, not in `Host`.
        assert!(p.check(&Uri::from_static("http://localhost:3000/mcp"), &none).is_ok());
        assert_eq!(p.check(&Uri::from_static("http://evil.example/mcp"), &none), Err("Host not allowed"));
        // Both present: both must pass.
        assert!(p.check(&Uri::from_static("http://evil.example/mcp"), &headers("localhost", None)).is_err());
        // Neither (HTTP/1.0 without Host): refused unless any host is allowed.
        assert_eq!(check(&p, &none), Err("missing Host header"));
        assert!(check(&HostPolicy::Any, &none).is_ok());
    }
}
