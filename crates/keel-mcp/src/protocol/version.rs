//! Protocol revisions, the two eras they fall into, and the negotiation rules of each era.
//!
//! *Legacy* revisions (2024-11-05 … 2025-11-25) agree on a version once, through `initialize`, and keep a
//! session. The *modern* revision (2026-07-28) is stateless: every request names its version in `_meta`, and
//! a server that does not speak it answers `UnsupportedProtocolVersion` (-32022) with the versions it does.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An MCP protocol revision, by its date string. Unknown strings are kept (to echo them in errors).
///
/// Revisions order by date; the derived ordering on the string is chronological for `YYYY-MM-DD` values.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion(Cow<'static, str>);

/// Which lifecycle a revision uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// ≤ 2025-11-25: `initialize`, sessions, server→client requests.
    Legacy,
    /// ≥ 2026-07-28: stateless, `_meta` on every request, `server/discover`, input-required results.
    Modern,
}

impl ProtocolVersion {
    /// The first released revision (HTTP+SSE transport).
    pub const V2024_11_05: Self = Self(Cow::Borrowed("2024-11-05"));
    /// Streamable HTTP, OAuth, batching, tool annotations.
    pub const V2025_03_26: Self = Self(Cow::Borrowed("2025-03-26"));
    /// Structured tool output, elicitation, `MCP-Protocol-Version` header.
    pub const V2025_06_18: Self = Self(Cow::Borrowed("2025-06-18"));
    /// Icons, URL elicitation, sampling with tools, experimental tasks, SSE polling.
    pub const V2025_11_25: Self = Self(Cow::Borrowed("2025-11-25"));
    /// The modern, stateless revision.
    pub const V2026_07_28: Self = Self(Cow::Borrowed("2026-07-28"));

    /// The newest revision Keel speaks.
    pub const LATEST: Self = Self::V2026_07_28;
    /// The newest legacy revision Keel speaks.
    pub const LATEST_LEGACY: Self = Self::V2025_11_25;

    /// Every revision Keel speaks, oldest first.
    pub const ALL: [ProtocolVersion; 5] =
        [Self::V2024_11_05, Self::V2025_03_26, Self::V2025_06_18, Self::V2025_11_25, Self::V2026_07_28];

    /// A version from its wire string (known or not).
    pub fn new(s: impl Into<Cow<'static, str>>) -> Self {
        let s: Cow<'static, str> = s.into();
        match Self::ALL.iter().find(|v| v.as_str() == s) {
            Some(known) => known.clone(),
            None => Self(s),
        }
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether Keel implements this revision.
    pub fn is_known(&self) -> bool {
        Self::ALL.contains(self)
    }

    /// The era of this revision. Unknown versions newer than every legacy date count as modern.
    pub fn era(&self) -> Era {
        if *self >= Self::V2026_07_28 { Era::Modern } else { Era::Legacy }
    }

    /// Whether this revision belongs to the modern era.
    pub fn is_modern(&self) -> bool {
        self.era() == Era::Modern
    }

    /// Whether requests of this revision run inside an `initialize`d session.
    pub fn uses_initialize(&self) -> bool {
        self.era() == Era::Legacy
    }

    /// Whether every result must carry `resultType` (2026-07-28 and later).
    pub fn result_type_required(&self) -> bool {
        self.era() == Era::Modern
    }

    /// Whether the `MCP-Protocol-Version` HTTP header is sent (2025-06-18 and later).
    pub fn has_version_header(&self) -> bool {
        *self >= Self::V2025_06_18
    }

    /// Whether a resource that does not exist is reported as -32602 (2026-07-28) rather than -32002.
    pub fn resource_not_found_is_invalid_params(&self) -> bool {
        self.era() == Era::Modern
    }
}

impl fmt::Debug for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolVersion({})", self.0)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        Ok(Self::new(s.into_owned()))
    }
}

/// Legacy negotiation, server side: answer an `initialize` that asked for `requested`.
///
/// The server echoes the requested revision when it supports it, and otherwise offers the newest legacy
/// revision it supports (the client then decides whether it can go on). Returns `None` only when `supported`
/// holds no legacy revision at all.
pub fn negotiate_initialize(requested: &ProtocolVersion, supported: &[ProtocolVersion]) -> Option<ProtocolVersion> {
    if requested.era() == Era::Legacy && supported.contains(requested) {
        return Some(requested.clone());
    }
    supported.iter().filter(|v| v.era() == Era::Legacy).max().cloned()
}

/// Legacy negotiation, client side: whether the revision the server answered is one the client can speak.
pub fn accept_initialize_answer(answered: &ProtocolVersion, supported: &[ProtocolVersion]) -> bool {
    answered.era() == Era::Legacy && supported.contains(answered)
}

/// Modern negotiation, client side: after an `UnsupportedProtocolVersion` error listing `offered`, the newest
/// revision both sides speak, preferring the modern era.
pub fn choose_from_offered(ours: &[ProtocolVersion], offered: &[ProtocolVersion]) -> Option<ProtocolVersion> {
    ours.iter().filter(|v| offered.contains(v)).max().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_and_order() {
        assert!(ProtocolVersion::V2025_03_26 < ProtocolVersion::V2025_11_25);
        assert_eq!(ProtocolVersion::V2025_11_25.era(), Era::Legacy);
        assert_eq!(ProtocolVersion::V2026_07_28.era(), Era::Modern);
        assert!(!ProtocolVersion::new("v999.0.0").is_known());
        assert!(ProtocolVersion::new("2025-06-18").is_known());
        assert!(!ProtocolVersion::V2025_03_26.has_version_header());
        assert!(ProtocolVersion::V2026_07_28.result_type_required());
    }

    #[test]
    fn server_side_initialize_negotiation() {
        let all = ProtocolVersion::ALL;
        let v = |s: &'static str| ProtocolVersion::new(s);
        assert_eq!(negotiate_initialize(&v("2025-06-18"), &all), Some(v("2025-06-18")));
        // Unknown or modern versions in initialize get the newest legacy revision.
        assert_eq!(negotiate_initialize(&v("2099-01-01"), &all), Some(v("2025-11-25")));
        assert_eq!(negotiate_initialize(&v("2026-07-28"), &all), Some(v("2025-11-25")));
        assert_eq!(negotiate_initialize(&v("2025-06-18"), &[ProtocolVersion::V2026_07_28]), None);
    }

    #[test]
    fn client_side_negotiation() {
        let all = ProtocolVersion::ALL;
        assert!(accept_initialize_answer(&ProtocolVersion::V2025_03_26, &all));
        assert!(!accept_initialize_answer(&ProtocolVersion::new("1999-01-01"), &all));
        let offered = [ProtocolVersion::new("2030-01-01"), ProtocolVersion::V2026_07_28];
        assert_eq!(choose_from_offered(&all, &offered), Some(ProtocolVersion::V2026_07_28));
        assert_eq!(choose_from_offered(&all, &[ProtocolVersion::new("x")]), None);
    }
}
