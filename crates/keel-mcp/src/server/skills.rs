//! The skills extension (`io.modelcontextprotocol/skills`, SEP-2640) on the server: Agent Skills — a
//! directory with a `SKILL.md` and supporting files — published as `skill://` resources, enumerated by
//! `skills/list` / `skills/get` with a digest manifest, and browsable with `resources/directory/read` (those
//! methods are served by `dispatch::skills`).

use std::collections::{BTreeMap, BTreeSet};

use super::resource::ResourceDef;
use crate::protocol::JsonObject;
use crate::protocol::resources::Resource;
use crate::protocol::skills::{
    DIRECTORY_MIME_TYPE, SKILL_FILE, Skill, SkillFrontmatter, SkillResource, SkillResources,
};

/// One skill: its `SKILL.md` (frontmatter and body) and supporting files.
#[derive(Clone, Debug)]
pub struct SkillDef {
    path: String,
    frontmatter: SkillFrontmatter,
    body: String,
    files: Vec<(String, String, String)>,
}

impl SkillDef {
    /// A skill at `skill://<path>/SKILL.md`. Its name is the last segment of `path` (lowercase letters,
    /// digits and hyphens, as Agent Skills names are).
    pub fn new(path: impl Into<String>, description: impl Into<String>, body: impl Into<String>) -> Self {
        let path: String = path.into().trim_matches('/').to_owned();
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        SkillDef {
            path,
            frontmatter: SkillFrontmatter { name, description: description.into(), other: JsonObject::new() },
            body: body.into(),
            files: Vec::new(),
        }
    }

    /// Adds a supporting file at `relative_path` (e.g. `references/FORMS.md`).
    pub fn file(
        mut self,
        relative_path: impl Into<String>,
        mime_type: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        self.files.push((relative_path.into().trim_matches('/').to_owned(), mime_type.into(), text.into()));
        self
    }

    fn root(&self) -> String {
        format!("skill://{}", self.path)
    }

    /// The `SKILL.md` text: YAML frontmatter (values written as JSON strings, which YAML reads verbatim),
    /// then the body.
    fn skill_md(&self) -> String {
        let quote = |s: &str| serde_json::to_string(s).expect("strings encode");
        format!(
            "---\nname: {}\ndescription: {}\n---\n{}",
            quote(&self.frontmatter.name),
            quote(&self.frontmatter.description),
            self.body
        )
    }

    /// Every file as (URI, MIME type, content), `SKILL.md` first.
    fn contents(&self) -> Vec<(String, String, String)> {
        let root = self.root();
        let mut all = vec![(format!("{root}/{SKILL_FILE}"), "text/markdown".to_owned(), self.skill_md())];
        all.extend(self.files.iter().map(|(rel, mime, text)| (format!("{root}/{rel}"), mime.clone(), text.clone())));
        all
    }

    /// What registering the skill adds: its `skills/list` entry, its resources, and the directories.
    pub(crate) fn publish(&self) -> PublishedSkill {
        let files = self.contents();
        let entry = Skill {
            uri: files[0].0.clone(),
            frontmatter: self.frontmatter.clone(),
            resources: SkillResources::Listed(
                files
                    .iter()
                    .map(|(uri, _, text)| SkillResource {
                        uri: uri.clone(),
                        digest: format!("sha256:{}", hex(&hmac_sha256::Hash::hash(text.as_bytes()))),
                        size: text.len() as u64,
                    })
                    .collect(),
            ),
        };
        let resources = files
            .iter()
            .enumerate()
            .map(|(i, (uri, mime, text))| {
                let name = if i == 0 {
                    self.frontmatter.name.clone()
                } else {
                    uri.rsplit('/').next().unwrap_or_default().to_owned()
                };
                let def = ResourceDef::text(uri.clone(), name, mime, text.clone()).size(text.len() as u64);
                if i == 0 { def.description(self.frontmatter.description.clone()) } else { def }
            })
            .collect();
        let mut directories: BTreeMap<String, BTreeSet<(String, bool)>> = BTreeMap::new();
        let root = self.root();
        for (uri, _, _) in &files {
            // Record each file under its parent, and each intermediate directory under its own parent.
            let mut child = uri.clone();
            let mut is_dir = false;
            while let Some((parent, _)) = child.rsplit_once('/') {
                if parent.len() < root.len() {
                    break;
                }
                directories.entry(parent.to_owned()).or_default().insert((child.clone(), is_dir));
                child = parent.to_owned();
                is_dir = true;
            }
        }
        PublishedSkill { entry, resources, directories }
    }
}

/// A registered skill's parts.
pub(crate) struct PublishedSkill {
    pub(crate) entry: Skill,
    pub(crate) resources: Vec<ResourceDef>,
    /// Directory URI → (child URI, child is a directory).
    pub(crate) directories: BTreeMap<String, BTreeSet<(String, bool)>>,
}

/// The direct children of a directory as resources.
pub(crate) fn children(resources: &[ResourceDef], entries: &BTreeSet<(String, bool)>) -> Vec<Resource> {
    entries
        .iter()
        .map(|(uri, is_dir)| match (is_dir, resources.iter().find(|r| &r.resource.uri == uri)) {
            (false, Some(file)) => file.resource.clone(),
            _ => {
                let mut dir = Resource::new(uri.clone(), uri.rsplit('/').next().unwrap_or_default());
                dir.mime_type = Some(DIRECTORY_MIME_TYPE.to_owned());
                dir
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_builds_entry_resources_and_directories() {
        let skill = SkillDef::new("acme/pdf-processing", "Fill PDF forms: carefully", "# PDF\nUse the tools.").file(
            "references/FORMS.md",
            "text/markdown",
            "forms",
        );
        let published = skill.publish();
        assert_eq!(published.entry.uri, "skill://acme/pdf-processing/SKILL.md");
        assert!(published.entry.name_matches_uri());
        let SkillResources::Listed(files) = &published.entry.resources else { panic!() };
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f.sha256_hex().is_some()));
        let skill_md = &published.resources[0];
        assert_eq!(skill_md.resource.mime_type.as_deref(), Some("text/markdown"));
        assert_eq!(skill_md.resource.name, "pdf-processing");
        let root = &published.directories["skill://acme/pdf-processing"];
        assert!(root.contains(&("skill://acme/pdf-processing/references".to_owned(), true)));
        assert!(root.contains(&("skill://acme/pdf-processing/SKILL.md".to_owned(), false)));
        let listed = children(&published.resources, root);
        assert!(listed.iter().any(|r| r.mime_type.as_deref() == Some(DIRECTORY_MIME_TYPE)));
        assert!(
            skill
                .skill_md()
                .starts_with("---\nname: \"pdf-processing\"\ndescription: \"Fill PDF forms: carefully\"\n---\n")
        );
    }
}
