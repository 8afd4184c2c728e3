//! The skills extension `io.modelcontextprotocol/skills` (SEP-2640): a server publishes Agent Skills
//! (directories with a `SKILL.md`) as resources, and lists them with `skills/list` / `skills/get`, each
//! entry carrying the verbatim frontmatter and a digest manifest of every file. The optional
//! `resources/directory/read` lists a directory resource's direct children.
//!
//! Files are read with `resources/read`; a host verifies each against the entry's `digest` and `size`
//! ([`SkillResource::verify`]) and compares the frontmatter before using it.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::caching::CacheScope;
use super::meta::RequestMeta;
use super::method::{mcp_result, request};
use super::resources::Resource;
use super::{Cursor, JsonObject, ResultType};

pub use super::capabilities::extension_ids::SKILLS as EXTENSION_ID;

/// The file name of a skill's manifest.
pub const SKILL_FILE: &str = "SKILL.md";
/// The MIME type of a directory resource.
pub const DIRECTORY_MIME_TYPE: &str = "inode/directory";
/// Hosts must accept skills with up to this many files.
pub const MAX_RESOURCES_PER_SKILL: usize = 512;
/// Hosts must accept skills with up to this many bytes in total (16 MiB).
pub const MAX_SKILL_BYTES: u64 = 16 * 1024 * 1024;

/// The extension's settings in `capabilities.extensions["io.modelcontextprotocol/skills"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillsCapability {
    /// The server implements `resources/directory/read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_read: Option<bool>,
}

/// A skill's `SKILL.md` frontmatter, verbatim: `name` and `description` plus whatever else the author wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SkillFrontmatter {
    /// The skill's name (the final path segment of its URI).
    pub name: String,
    /// When to use the skill.
    pub description: String,
    /// Every other field.
    #[serde(flatten)]
    pub other: JsonObject,
}

/// One file of a skill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillResource {
    /// The file's resource URI.
    pub uri: String,
    /// `sha256:<64 lowercase hex>` of the raw bytes.
    pub digest: String,
    /// Length of the raw bytes.
    pub size: u64,
}

/// Why a file does not match its manifest entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// `digest` is not `sha256:` and 64 lowercase hex digits.
    MalformedDigest,
    /// The content's length differs from `size`.
    SizeMismatch {
        /// `size` in the entry.
        expected: u64,
        /// The content's length.
        actual: u64,
    },
    /// The content hashes to something else.
    DigestMismatch,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MalformedDigest => f.write_str("digest is not sha256:<64 lowercase hex>"),
            VerifyError::SizeMismatch { expected, actual } => write!(f, "size is {actual}, entry says {expected}"),
            VerifyError::DigestMismatch => f.write_str("content does not match the digest"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl SkillResource {
    /// The 64 hex digits of the digest, if it is well formed.
    pub fn sha256_hex(&self) -> Option<&str> {
        let hex = self.digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
    }

    /// Checks `content` against the entry, given its SHA-256 (the protocol layer does not hash).
    ///
    /// The size is checked first: a length mismatch fails without hashing.
    pub fn verify(&self, content_len: u64, content_sha256: impl FnOnce() -> [u8; 32]) -> Result<(), VerifyError> {
        let hex = self.sha256_hex().ok_or(VerifyError::MalformedDigest)?;
        if content_len != self.size {
            return Err(VerifyError::SizeMismatch { expected: self.size, actual: content_len });
        }
        let digest = content_sha256();
        let matches = hex.as_bytes().chunks(2).zip(digest).all(|(pair, byte)| {
            let s = std::str::from_utf8(pair).unwrap_or_default();
            u8::from_str_radix(s, 16) == Ok(byte)
        });
        if matches { Ok(()) } else { Err(VerifyError::DigestMismatch) }
    }
}

/// A skill's files: a complete manifest, or `"dynamic"` when the content is generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkillResources {
    /// Every file, `SKILL.md` included, each once.
    Listed(Vec<SkillResource>),
    /// `"dynamic"`: no stable digests.
    Dynamic,
}

impl SkillResources {
    /// The manifest entry for `uri`.
    pub fn get(&self, uri: &str) -> Option<&SkillResource> {
        match self {
            SkillResources::Listed(v) => v.iter().find(|r| r.uri == uri),
            SkillResources::Dynamic => None,
        }
    }

    /// Whether the manifest stays within the limits every host must accept.
    pub fn within_limits(&self) -> bool {
        match self {
            SkillResources::Listed(v) => {
                v.len() <= MAX_RESOURCES_PER_SKILL
                    && v.iter().try_fold(0u64, |sum, r| sum.checked_add(r.size)).is_some_and(|t| t <= MAX_SKILL_BYTES)
            }
            SkillResources::Dynamic => true,
        }
    }
}

impl Serialize for SkillResources {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SkillResources::Listed(v) => v.serialize(s),
            SkillResources::Dynamic => s.serialize_str("dynamic"),
        }
    }
}

impl<'de> Deserialize<'de> for SkillResources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ResourcesVisitor;
        impl<'de> Visitor<'de> for ResourcesVisitor {
            type Value = SkillResources;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of skill resources or \"dynamic\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SkillResources, E> {
                match v {
                    "dynamic" => Ok(SkillResources::Dynamic),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SkillResources, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(SkillResources::Listed)
            }
        }
        d.deserialize_any(ResourcesVisitor)
    }
}

/// One skill's entry, as `skills/list` and `skills/get` return it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    /// The URI of the skill's `SKILL.md`.
    pub uri: String,
    /// The `SKILL.md` frontmatter.
    pub frontmatter: SkillFrontmatter,
    /// The skill's files.
    pub resources: SkillResources,
}

impl Skill {
    /// The skill name the URI implies: the path segment before the final `/SKILL.md`.
    pub fn name_from_uri(uri: &str) -> Option<&str> {
        let dir = uri.strip_suffix(SKILL_FILE)?.strip_suffix('/')?;
        let name = dir.rsplit('/').next()?;
        (!name.is_empty() && !dir.ends_with(':') && !dir.ends_with(":/")).then_some(name)
    }

    /// The skill's root directory URI (the `SKILL.md` URI without `/SKILL.md`).
    pub fn root_uri(&self) -> Option<&str> {
        self.uri.strip_suffix(SKILL_FILE)?.strip_suffix('/')
    }

    /// Whether the URI's final segment equals `frontmatter.name`, as the extension requires.
    pub fn name_matches_uri(&self) -> bool {
        Self::name_from_uri(&self.uri) == Some(self.frontmatter.name.as_str())
    }
}

/// `skills/list` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListSkillsParams {
    /// Where to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `skills/list` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSkillsResult {
    /// The skills on this page.
    pub skills: Vec<Skill>,
    /// The cursor of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Cursor>,
    /// Cache lifetime in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Cache scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `skills/get` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetSkillParams {
    /// The URI of the skill's `SKILL.md`.
    pub uri: String,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `skills/get` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetSkillResult {
    /// The entry.
    pub skill: Skill,
    /// Cache lifetime in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Cache scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `resources/directory/read` params (only when the server declared `directoryRead`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadDirectoryParams {
    /// The directory resource (no trailing slash).
    pub uri: String,
    /// Where to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `resources/directory/read` result: the direct children.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadDirectoryResult {
    /// Files and sub-directories (`mimeType: inode/directory`).
    pub resources: Vec<Resource>,
    /// The cursor of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Cursor>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

request!(ListSkillsParams, "skills/list" => ListSkillsResult);
request!(GetSkillParams, "skills/get" => GetSkillResult);
request!(ReadDirectoryParams, "resources/directory/read" => ReadDirectoryResult);
mcp_result!(ListSkillsResult, GetSkillResult, ReadDirectoryResult);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_round_trip_in_both_forms() {
        let v = json!({"skills": [
            {"uri": "skill://acme/billing/refunds/SKILL.md",
             "frontmatter": {"name": "refunds", "description": "d", "license": "Apache-2.0"},
             "resources": [{"uri": "skill://acme/billing/refunds/SKILL.md", "digest": "sha256:ab", "size": 3871}]},
            {"uri": "skill://reports/daily/SKILL.md", "frontmatter": {"name": "daily", "description": "d"},
             "resources": "dynamic"}
        ], "resultType": "complete", "ttlMs": 300000, "cacheScope": "public"});
        let r: ListSkillsResult = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.skills[0].frontmatter.other["license"], "Apache-2.0");
        assert!(r.skills.iter().all(Skill::name_matches_uri));
        assert_eq!(r.skills[1].resources, SkillResources::Dynamic);
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
        assert!(serde_json::from_value::<SkillResources>(json!("static")).is_err());
    }

    #[test]
    fn names_from_uris() {
        assert_eq!(Skill::name_from_uri("skill://git-workflow/SKILL.md"), Some("git-workflow"));
        assert_eq!(Skill::name_from_uri("skill://acme/billing/refunds/SKILL.md"), Some("refunds"));
        assert_eq!(Skill::name_from_uri("skill://SKILL.md"), None);
        assert_eq!(Skill::name_from_uri("skill://x/README.md"), None);
    }

    #[test]
    fn verification_checks_format_size_then_digest() {
        let mut digest = [0u8; 32];
        digest[0] = 0xab;
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let entry = SkillResource { uri: "skill://a/SKILL.md".into(), digest: format!("sha256:{hex}"), size: 10 };
        assert_eq!(entry.verify(10, || digest), Ok(()));
        assert_eq!(entry.verify(11, || unreachable!()), Err(VerifyError::SizeMismatch { expected: 10, actual: 11 }));
        assert_eq!(entry.verify(10, || [0; 32]), Err(VerifyError::DigestMismatch));
        let upper = SkillResource { digest: format!("sha256:{}", hex.to_uppercase()), ..entry.clone() };
        assert_eq!(upper.verify(10, || digest), Err(VerifyError::MalformedDigest));
    }

    #[test]
    fn limits() {
        let r = |size| SkillResource { uri: "u".into(), digest: String::new(), size };
        assert!(SkillResources::Listed(vec![r(MAX_SKILL_BYTES)]).within_limits());
        assert!(!SkillResources::Listed(vec![r(MAX_SKILL_BYTES), r(1)]).within_limits());
        assert!(!SkillResources::Listed(vec![r(0); MAX_RESOURCES_PER_SKILL + 1]).within_limits());
        assert!(!SkillResources::Listed(vec![r(u64::MAX), r(1)]).within_limits());
    }
}
