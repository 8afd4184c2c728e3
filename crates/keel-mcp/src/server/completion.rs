//! Argument completion: functions that suggest values for a prompt argument or a template variable.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::engine::BoxFuture;

/// What a completion function is asked.
#[derive(Clone, Debug)]
pub struct CompletionRequest {
    /// The argument or variable being completed.
    pub argument: String,
    /// What the user has typed so far.
    pub value: String,
    /// Values already chosen for the other arguments.
    pub context: BTreeMap<String, String>,
}

pub(crate) type ErasedCompleter = Arc<dyn Fn(CompletionRequest) -> BoxFuture<Vec<String>> + Send + Sync>;

/// What a completer is registered for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum CompletionTarget {
    Prompt(String),
    Template(String),
}

pub(crate) fn erase<F, Fut>(complete: F) -> ErasedCompleter
where
    F: Fn(CompletionRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<String>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(complete(request)))
}
