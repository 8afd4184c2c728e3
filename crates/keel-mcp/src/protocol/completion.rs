//! Argument completion: `completion/complete` suggests values for a prompt argument or a resource-template
//! variable as the user types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::RequestMeta;
use super::method::{mcp_result, request};
use super::{JsonObject, ResultType};

/// The most values one completion result may carry.
pub const MAX_COMPLETION_VALUES: usize = 100;

/// What is being completed: a prompt or a resource template, told apart by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CompletionReference {
    /// `ref/prompt`: an argument of a prompt.
    #[serde(rename = "ref/prompt")]
    Prompt(PromptReference),
    /// `ref/resource`: a variable of a resource template (a plain resource URI in 2024-11-05 / 2025-03-26).
    #[serde(rename = "ref/resource")]
    Resource(ResourceTemplateReference),
}

/// A prompt, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptReference {
    /// The prompt's name.
    pub name: String,
    /// Display name (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A resource template, by its URI template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceTemplateReference {
    /// The URI template (or URI).
    pub uri: String,
}

/// The argument being completed and its partial value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionArgument {
    /// The argument's name.
    pub name: String,
    /// What the user has typed so far.
    pub value: String,
}

/// Values already chosen for other arguments (2025-06-18+).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionContext {
    /// Argument name to value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<BTreeMap<String, String>>,
}

/// `completion/complete` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompleteParams {
    /// What is being completed.
    #[serde(rename = "ref")]
    pub reference: CompletionReference,
    /// The argument and its partial value.
    pub argument: CompletionArgument,
    /// Other arguments' values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CompletionContext>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// The suggestions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// Suggested values, at most [`MAX_COMPLETION_VALUES`].
    pub values: Vec<String>,
    /// How many values exist in total (may exceed `values.len()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether more values exist than were returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

impl Completion {
    /// Suggestions from `all`, truncated to [`MAX_COMPLETION_VALUES`] with `total` and `hasMore` set.
    pub fn from_values(all: Vec<String>) -> Self {
        let total = all.len();
        let mut values = all;
        values.truncate(MAX_COMPLETION_VALUES);
        Completion { has_more: Some(total > values.len()), total: Some(total as u64), values }
    }
}

/// `completion/complete` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResult {
    /// The suggestions.
    pub completion: Completion,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

request!(CompleteParams, "completion/complete" => CompleteResult);
mcp_result!(CompleteResult);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_to_the_limit_and_reports_more() {
        let c = Completion::from_values((0..150).map(|i| i.to_string()).collect());
        assert_eq!(c.values.len(), MAX_COMPLETION_VALUES);
        assert_eq!((c.total, c.has_more), (Some(150), Some(true)));
        let c = Completion::from_values(vec!["a".into()]);
        assert_eq!((c.total, c.has_more), (Some(1), Some(false)));
    }

    #[test]
    fn reference_is_tagged_by_type() {
        let r: CompletionReference =
            serde_json::from_value(serde_json::json!({"type": "ref/resource", "uri": "file:///{p}"})).unwrap();
        assert_eq!(r, CompletionReference::Resource(ResourceTemplateReference { uri: "file:///{p}".into() }));
    }
}
