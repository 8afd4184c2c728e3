//! The catalog: every tool, resource, template and prompt a server offers, as one immutable value.
//!
//! Requests read the current catalog through an `Arc` (no lock held while a handler runs); a runtime change
//! builds a new catalog and swaps it in, then announces the change (`list_changed`).

use std::collections::HashMap;

use super::completion::{CompletionTarget, ErasedCompleter};
use super::prompt::PromptDef;
use super::resource::{ResourceDef, TemplateDef};
use super::tool::ToolDef;

/// A registered tool and whether it is offered.
#[derive(Clone, Debug)]
pub(crate) struct ToolEntry {
    pub(crate) def: ToolDef,
    pub(crate) enabled: bool,
}

#[derive(Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) tools: Vec<ToolEntry>,
    pub(crate) resources: Vec<ResourceDef>,
    pub(crate) templates: Vec<TemplateDef>,
    pub(crate) prompts: Vec<PromptDef>,
    pub(crate) completers: HashMap<(CompletionTarget, String), ErasedCompleter>,
    /// Skills (skills extension) and the directories their files form.
    #[cfg(feature = "skills")]
    pub(crate) skills: Vec<crate::protocol::skills::Skill>,
    #[cfg(feature = "skills")]
    pub(crate) directories: std::collections::BTreeMap<String, std::collections::BTreeSet<(String, bool)>>,
    tool_index: HashMap<String, usize>,
    resource_index: HashMap<String, usize>,
    prompt_index: HashMap<String, usize>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("tools", &self.tools.len())
            .field("resources", &self.resources.len())
            .field("templates", &self.templates.len())
            .field("prompts", &self.prompts.len())
            .finish()
    }
}

impl Catalog {
    /// Rebuilds the name indexes after the lists changed.
    pub(crate) fn reindex(mut self) -> Self {
        self.tool_index = self.tools.iter().enumerate().map(|(i, t)| (t.def.tool.name.clone(), i)).collect();
        self.resource_index = self.resources.iter().enumerate().map(|(i, r)| (r.resource.uri.clone(), i)).collect();
        self.prompt_index = self.prompts.iter().enumerate().map(|(i, p)| (p.prompt.name.clone(), i)).collect();
        self
    }

    /// An enabled tool by name.
    pub(crate) fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tool_index.get(name).map(|&i| &self.tools[i]).filter(|t| t.enabled).map(|t| &t.def)
    }

    /// The enabled tools, in registration order (stable, as 2026-07-28 asks).
    pub(crate) fn enabled_tools(&self) -> Vec<&ToolDef> {
        self.tools.iter().filter(|t| t.enabled).map(|t| &t.def).collect()
    }

    pub(crate) fn resource(&self, uri: &str) -> Option<&ResourceDef> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }

    pub(crate) fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    /// The first template that matches `uri`, with the variable values.
    pub(crate) fn match_template(&self, uri: &str) -> Option<(&TemplateDef, super::resource::TemplateVars)> {
        self.templates.iter().find_map(|t| t.matcher.matches(uri).map(|vars| (t, vars)))
    }

    pub(crate) fn upsert_tool(&mut self, def: ToolDef) {
        let def = def.seal();
        match self.tools.iter_mut().find(|t| t.def.tool.name == def.tool.name) {
            Some(entry) => entry.def = def,
            None => self.tools.push(ToolEntry { def, enabled: true }),
        }
    }
}

/// A change the server announces to clients that listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The tool list changed.
    Tools,
    /// The prompt list changed.
    Prompts,
    /// The resource list changed.
    Resources,
    /// The content of this resource changed.
    ResourceUpdated(String),
}
