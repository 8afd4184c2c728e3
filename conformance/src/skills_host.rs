//! The host side of the skills extension (SEP-2640) as the `sep-2640-client-*` scenarios expect it: list
//! skills without fetching any file, and when a skill is loaded, check its `SKILL.md` against the manifest
//! entry — size, SHA-256 digest, frontmatter — before reading any of its other files.

use anyhow::{Context as _, bail};
use keel_mcp::client::Client;
use keel_mcp::protocol::ResourceContents;
use keel_mcp::protocol::skills::{ListSkillsParams, Skill, SkillResources};

/// `skills/list`, every page (bounded).
pub async fn list(client: &Client) -> anyhow::Result<Vec<Skill>> {
    let mut skills = Vec::new();
    let mut cursor = None;
    for _ in 0..1_000 {
        let page = client.request(ListSkillsParams { cursor: cursor.take(), meta: None }).await?;
        skills.extend(page.skills);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(skills),
        }
    }
    bail!("skills/list did not end")
}

async fn read_text(client: &Client, uri: &str) -> anyhow::Result<String> {
    let result = client.read_resource(uri).await?;
    match result.contents.into_iter().next() {
        Some(ResourceContents::Text(text)) => Ok(text.text),
        _ => bail!("{uri}: no text contents"),
    }
}

/// The value of `key:` in a `---`-delimited YAML frontmatter (flat string values only).
fn frontmatter_value<'a>(markdown: &'a str, key: &str) -> Option<&'a str> {
    let rest = markdown.strip_prefix("---")?.trim_start_matches(['\r', '\n']);
    let end = rest.find("\n---")?;
    rest[..end].lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

/// Loads `skill`: reads and verifies `SKILL.md`, then (only if it checks out) the skill's other files.
pub async fn load(client: &Client, skill: &Skill) -> anyhow::Result<()> {
    let body = read_text(client, &skill.uri).await?;
    if let SkillResources::Listed(_) = &skill.resources {
        let entry = skill.resources.get(&skill.uri).context("the manifest does not list SKILL.md")?;
        entry
            .verify(body.len() as u64, || hmac_sha256::Hash::hash(body.as_bytes()))
            .map_err(|e| anyhow::anyhow!("{}: {e}; refusing to load the skill", skill.uri))?;
    }
    let description = frontmatter_value(&body, "description");
    if description != Some(skill.frontmatter.description.as_str()) {
        bail!("{}: the frontmatter description differs from the listed one; refusing to load the skill", skill.uri);
    }
    if let SkillResources::Listed(resources) = &skill.resources {
        for resource in resources.iter().filter(|r| r.uri != skill.uri) {
            let text = read_text(client, &resource.uri).await?;
            resource
                .verify(text.len() as u64, || hmac_sha256::Hash::hash(text.as_bytes()))
                .map_err(|e| anyhow::anyhow!("{}: {e}", resource.uri))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontmatter_values() {
        let md = "---\nname: pdf\ndescription: Extract PDFs\n---\n\nBody\n";
        assert_eq!(frontmatter_value(md, "description"), Some("Extract PDFs"));
        assert_eq!(frontmatter_value(md, "name"), Some("pdf"));
        assert_eq!(frontmatter_value("no frontmatter", "name"), None);
    }
}
