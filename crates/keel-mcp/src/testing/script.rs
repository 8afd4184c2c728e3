//! Scripted answers to the requests a server sends its client (sampling, elicitation, roots).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::client::ClientBuilder;
use crate::protocol::sampling::{SamplingContent, StopReason};
use crate::protocol::{
    CreateMessageParams, CreateMessageResult, ElicitParams, ElicitResult, ErrorObject, ListRootsResult, Role, Root,
};

/// The client's answers to the server's requests, given in advance and used in order, and the requests
/// the server made. Cheap to clone; clones share the queues.
///
/// A kind of request with an answer queued before connecting makes the client declare the capability
/// (`sampling`, `elicitation`, `roots`). A request that finds its queue empty gets an internal error that
/// says so, so the test fails where the script ran out.
///
/// ```
/// use keel_mcp::protocol::{ElicitResult, Root};
/// use keel_mcp::testing::Script;
///
/// let script = Script::new()
///     .sampling_text("a haiku", "test-model")
///     .elicitation(ElicitResult::decline())
///     .roots(vec![Root::new("file:///workspace", None)]);
/// assert!(script.sampling_requests().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Script {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    sampling: VecDeque<Result<CreateMessageResult, ErrorObject>>,
    elicitation: VecDeque<Result<ElicitResult, ErrorObject>>,
    roots: Option<Vec<Root>>,
    sampling_seen: Vec<CreateMessageParams>,
    elicitation_seen: Vec<ElicitParams>,
    roots_asked: usize,
}

impl Script {
    /// An empty script: the client declares none of the three capabilities.
    pub fn new() -> Script {
        Script::default()
    }

    fn with(self, change: impl FnOnce(&mut State)) -> Script {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self
    }

    /// Queues the answer to the next `sampling/createMessage`.
    pub fn sampling(self, answer: CreateMessageResult) -> Script {
        self.with(|s| s.sampling.push_back(Ok(answer)))
    }

    /// Queues an assistant message of `text` from `model` as the answer to the next `sampling/createMessage`.
    pub fn sampling_text(self, text: &str, model: &str) -> Script {
        self.sampling(CreateMessageResult {
            role: Role::Assistant,
            content: SamplingContent::text(text),
            model: model.to_owned(),
            stop_reason: Some(StopReason::EndTurn),
            result_type: None,
            meta: None,
        })
    }

    /// Queues a JSON-RPC error as the answer to the next `sampling/createMessage`.
    pub fn sampling_error(self, error: ErrorObject) -> Script {
        self.with(|s| s.sampling.push_back(Err(error)))
    }

    /// Queues the answer to the next `elicitation/create`.
    pub fn elicitation(self, answer: ElicitResult) -> Script {
        self.with(|s| s.elicitation.push_back(Ok(answer)))
    }

    /// Queues a JSON-RPC error as the answer to the next `elicitation/create`.
    pub fn elicitation_error(self, error: ErrorObject) -> Script {
        self.with(|s| s.elicitation.push_back(Err(error)))
    }

    /// The roots every `roots/list` gets.
    pub fn roots(self, roots: Vec<Root>) -> Script {
        self.with(|s| s.roots = Some(roots))
    }

    /// The `sampling/createMessage` requests the server made, in order.
    pub fn sampling_requests(&self) -> Vec<CreateMessageParams> {
        self.lock().sampling_seen.clone()
    }

    /// The `elicitation/create` requests the server made, in order.
    pub fn elicitation_requests(&self) -> Vec<ElicitParams> {
        self.lock().elicitation_seen.clone()
    }

    /// How many times the server asked for the roots.
    pub fn roots_requests(&self) -> usize {
        self.lock().roots_asked
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs the script's handlers for the kinds of request it has answers for.
    pub(crate) fn install(&self, mut builder: ClientBuilder) -> ClientBuilder {
        let (sampling, elicitation, roots) = {
            let state = self.lock();
            (!state.sampling.is_empty(), !state.elicitation.is_empty(), state.roots.is_some())
        };
        if sampling {
            let script = self.clone();
            builder = builder.on_sampling(move |params| {
                let mut state = script.lock();
                state.sampling_seen.push(params);
                let answer = state.sampling.pop_front().unwrap_or_else(|| Err(exhausted("sampling/createMessage")));
                std::future::ready(answer)
            });
        }
        if elicitation {
            let script = self.clone();
            builder = builder.on_elicitation(move |params| {
                let mut state = script.lock();
                state.elicitation_seen.push(params);
                let answer = state.elicitation.pop_front().unwrap_or_else(|| Err(exhausted("elicitation/create")));
                std::future::ready(answer)
            });
        }
        if roots {
            let script = self.clone();
            builder = builder.on_list_roots(move |_| {
                let mut state = script.lock();
                state.roots_asked += 1;
                let roots = state.roots.clone().unwrap_or_default();
                std::future::ready(Ok(ListRootsResult { roots, result_type: None, meta: None }))
            });
        }
        builder
    }
}

fn exhausted(method: &str) -> ErrorObject {
    ErrorObject::internal(format!("the test script has no more answers to {method}"))
}
