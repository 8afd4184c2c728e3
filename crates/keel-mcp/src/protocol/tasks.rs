//! Tasks: durable handles for long-running requests, in two incompatible generations that share method
//! names.
//!
//! - [`legacy`]: the experimental tasks of 2025-11-25 (SEP-1686): a client opts in per request with a
//!   `task` param, `CreateTaskResult` nests the task under `task`, and `tasks/get|result|list|cancel`
//!   plus `notifications/tasks/status` drive it.
//! - `extension` (feature `tasks`): the 2026-07-28 extension `io.modelcontextprotocol/tasks` (SEP-2663): the server
//!   decides, `CreateTaskResult` is flat with `resultType: "task"`, `tasks/get` returns the task with its
//!   result, error or input requests inline, and `tasks/update` answers input requests.
//!
//! Which generation applies follows from the era of the connection (legacy revisions never carry the
//! extension, 2026-07-28 has no core tasks), so code picks the module once.

use serde::{Deserialize, Serialize};

#[cfg(feature = "tasks")]
pub mod extension;
pub mod legacy;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Being processed.
    Working,
    /// Waiting for input from the requester.
    InputRequired,
    /// Finished; the result is available.
    Completed,
    /// Failed with a JSON-RPC error.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl TaskStatus {
    /// Whether the task can no longer change (`completed`, `failed`, `cancelled`).
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled)
    }
}
