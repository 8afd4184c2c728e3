//! Which scopes to request: the challenge, else everything the resource lists, else none; the union of
//! held and demanded scopes on step-up; `offline_access` per SEP-2207. Pure functions on space-separated
//! scope strings; `None` means "omit the `scope` parameter".

const OFFLINE_ACCESS: &str = "offline_access";

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|x| !x.is_empty())
}

fn join(scopes: Vec<&str>) -> Option<String> {
    if scopes.is_empty() { None } else { Some(scopes.join(" ")) }
}

/// The scope for a first authorization: the challenge's `scope`, else all of PRM `scopes_supported`, else none.
pub fn initial_scope(challenge: Option<&str>, prm_scopes_supported: Option<&[String]>) -> Option<String> {
    if let Some(s) = challenge.and_then(|c| join(split(c).collect())) {
        return Some(s);
    }
    prm_scopes_supported.and_then(|all| join(all.iter().map(String::as_str).filter(|s| !s.is_empty()).collect()))
}

/// Held scopes plus demanded ones, in order, without duplicates.
pub fn union(held: Option<&str>, demanded: Option<&str>) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for s in held.into_iter().flat_map(split).chain(demanded.into_iter().flat_map(split)) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    join(out)
}

/// Every demanded scope is already held.
pub fn covers(held: Option<&str>, demanded: Option<&str>) -> bool {
    let held: Vec<&str> = held.into_iter().flat_map(split).collect();
    demanded.into_iter().flat_map(split).all(|s| held.contains(&s))
}

/// SEP-2207: add `offline_access` once when the authorization server lists it and the client registered the
/// refresh grant; drop it when the authorization server does not list it (whatever asked for it).
pub fn apply_offline_access(
    scope: Option<String>,
    as_advertises: bool,
    refresh_grant_registered: bool,
) -> Option<String> {
    let mut scopes: Vec<&str> = scope.as_deref().into_iter().flat_map(split).collect();
    if !as_advertises {
        scopes.retain(|s| *s != OFFLINE_ACCESS);
    } else if refresh_grant_registered && !scopes.contains(&OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS);
    }
    join(scopes)
}

/// When an authorization request asks for consent (`prompt=consent`) along with `offline_access`.
///
/// OpenID Connect Core §11 lets an OpenID provider ignore `offline_access` unless the request also carries
/// `prompt=consent`, and some providers (node-oidc-provider as shipped, among others) do exactly that, so
/// the login succeeds without a refresh token. Forcing the consent screen, though, breaks tenant-wide (admin)
/// consent on some enterprise identity providers and annoys users of plain OAuth servers, which never apply
/// §11. The default, [`ConsentPrompt::OpenIdProviders`], sends it only where §11 can apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentPrompt {
    /// With `offline_access`, when the authorization server is an OpenID provider (metadata from
    /// `/.well-known/openid-configuration`, or listing ID token signing algorithms). The default.
    #[default]
    OpenIdProviders,
    /// With `offline_access`, at every authorization server.
    Always,
    /// Never (identity providers with tenant-wide consent).
    Never,
}

/// Whether an authorization request for `scope` carries `prompt=consent`.
pub fn wants_consent_prompt(policy: ConsentPrompt, scope: Option<&str>, openid_provider: bool) -> bool {
    let offline = scope.into_iter().flat_map(split).any(|s| s == OFFLINE_ACCESS);
    offline
        && match policy {
            ConsentPrompt::OpenIdProviders => openid_provider,
            ConsentPrompt::Always => true,
            ConsentPrompt::Never => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn initial_scope_table() {
        let prm = v(&["mcp:basic", "mcp:read", "mcp:write"]);
        let cases: Vec<(Option<&str>, Option<&[String]>, Option<&str>)> = vec![
            (Some("mcp:basic"), Some(&prm), Some("mcp:basic")),
            (None, Some(&prm), Some("mcp:basic mcp:read mcp:write")),
            (Some(""), Some(&prm), Some("mcp:basic mcp:read mcp:write")),
            (None, None, None),
            (None, Some(&[]), None),
            (Some("  a  b "), None, Some("a b")),
        ];
        for (challenge, prm, expected) in cases {
            assert_eq!(initial_scope(challenge, prm).as_deref(), expected, "{challenge:?}");
        }
    }

    #[test]
    fn step_up_union() {
        assert_eq!(union(Some("mcp:basic"), Some("mcp:write")).as_deref(), Some("mcp:basic mcp:write"));
        assert_eq!(union(Some("a b"), Some("b c")).as_deref(), Some("a b c"));
        assert_eq!(union(None, Some("x")).as_deref(), Some("x"));
        assert_eq!(union(None, None), None);
        assert!(covers(Some("a b"), Some("b")));
        assert!(!covers(Some("a"), Some("a c")));
        assert!(covers(Some("a"), None));
    }

    #[test]
    fn consent_prompt_table() {
        use ConsentPrompt as P;
        let offline = Some("mcp:basic offline_access");
        // (policy, scope, OpenID provider, prompt=consent)
        let cases = [
            (P::OpenIdProviders, offline, true, true),
            (P::OpenIdProviders, offline, false, false),
            (P::OpenIdProviders, Some("mcp:basic"), true, false),
            (P::Always, offline, false, true),
            (P::Always, None, true, false),
            (P::Never, offline, true, false),
        ];
        for (policy, scope, openid, expected) in cases {
            assert_eq!(wants_consent_prompt(policy, scope, openid), expected, "{policy:?} {scope:?} {openid}");
        }
        assert_eq!(ConsentPrompt::default(), P::OpenIdProviders);
    }

    #[test]
    fn offline_access_four_cases() {
        // Advertised by the AS and the refresh grant registered: added.
        assert_eq!(
            apply_offline_access(Some("mcp:basic".into()), true, true).as_deref(),
            Some("mcp:basic offline_access")
        );
        // Refresh grant not registered: not added.
        assert_eq!(apply_offline_access(Some("mcp:basic".into()), true, false).as_deref(), Some("mcp:basic"));
        // Not advertised: not added, and removed if something asked for it.
        assert_eq!(apply_offline_access(Some("mcp:basic".into()), false, true).as_deref(), Some("mcp:basic"));
        assert_eq!(
            apply_offline_access(Some("offline_access mcp:basic".into()), false, true).as_deref(),
            Some("mcp:basic")
        );
        assert_eq!(apply_offline_access(Some("offline_access".into()), false, true), None);
        // Already present: not duplicated.
        assert_eq!(
            apply_offline_access(Some("offline_access mcp:basic".into()), true, true).as_deref(),
            Some("offline_access mcp:basic")
        );
        // No other scope: offline_access alone.
        assert_eq!(apply_offline_access(None, true, true).as_deref(), Some("offline_access"));
    }
}
