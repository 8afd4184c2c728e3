//! The tasks extension `io.modelcontextprotocol/tasks` of 2026-07-28 (SEP-2663).
//!
//! A client that lists the extension in its per-request capabilities may get a flat [`CreateTaskResult`]
//! (`resultType: "task"`) instead of a `tools/call` result. It polls `tasks/get`, which returns a
//! [`DetailedTask`] with the final result, the error or the outstanding input requests inline; answers
//! input requests with `tasks/update`; and may `tasks/cancel`. Both acknowledgements are empty results.
//! There is no `tasks/list` and no `tasks/result`.

use serde::{Deserialize, Serialize};

use super::TaskStatus;
use crate::protocol::jsonrpc::ErrorObject;
use crate::protocol::lifecycle::EmptyResult;
use crate::protocol::meta::RequestMeta;
use crate::protocol::method::{mcp_result, notification, request};
use crate::protocol::mrtr::{InputRequests, InputResponses};
use crate::protocol::{JsonObject, ResultType};

pub use crate::protocol::capabilities::extension_ids::TASKS as EXTENSION_ID;

/// A task's state (field names use the `Ms` suffix, unlike 2025-11-25).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The task id, chosen by the server.
    pub task_id: String,
    /// Current status.
    pub status: TaskStatus,
    /// A human-readable note on the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// ISO 8601 creation time.
    pub created_at: String,
    /// ISO 8601 time of the last change.
    pub last_updated_at: String,
    /// Milliseconds the task is kept after creation; `null` (always written) means unlimited.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// Suggested polling interval in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
}

/// A server's answer that it will process the request as a task: the task's state, flat, with
/// `resultType: "task"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskResult {
    /// The new task.
    #[serde(flatten)]
    pub task: Task,
    /// `resultType` (`task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl CreateTaskResult {
    /// A task-creation result (with `resultType` set) for `task`.
    pub fn new(task: Task) -> Self {
        CreateTaskResult { task, result_type: Some(ResultType::Task), meta: None }
    }
}

/// A task with the payload its status calls for: `inputRequests` when `input_required`, `result` when
/// `completed`, `error` when `failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedTask {
    /// The task's state.
    #[serde(flatten)]
    pub task: Task,
    /// `input_required`: what the server needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<InputRequests>,
    /// `completed`: the original request's result (e.g. a `CallToolResult`, even one with `isError`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonObject>,
    /// `failed`: the JSON-RPC error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

/// A checked view of a [`DetailedTask`]'s status and payload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TaskOutcome<'a> {
    /// Still working.
    Working,
    /// Waiting for these input requests.
    InputRequired(&'a InputRequests),
    /// Finished with this result.
    Completed(&'a JsonObject),
    /// Failed with this error.
    Failed(&'a ErrorObject),
    /// Cancelled.
    Cancelled,
}

impl DetailedTask {
    /// A task with no payload (`working` or `cancelled`).
    pub fn plain(task: Task) -> Self {
        DetailedTask { task, input_requests: None, result: None, error: None }
    }

    /// The status with its payload, or `None` when the payload the status requires is missing.
    pub fn outcome(&self) -> Option<TaskOutcome<'_>> {
        Some(match self.task.status {
            TaskStatus::Working => TaskOutcome::Working,
            TaskStatus::InputRequired => TaskOutcome::InputRequired(self.input_requests.as_ref()?),
            TaskStatus::Completed => TaskOutcome::Completed(self.result.as_ref()?),
            TaskStatus::Failed => TaskOutcome::Failed(self.error.as_ref()?),
            TaskStatus::Cancelled => TaskOutcome::Cancelled,
        })
    }
}

/// `tasks/get` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskParams {
    /// The task.
    pub task_id: String,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `tasks/get` result (`resultType: "complete"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskResult {
    /// The task and its payload.
    #[serde(flatten)]
    pub task: DetailedTask,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `tasks/update` params: answers to the task's outstanding input requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskParams {
    /// The task.
    pub task_id: String,
    /// Answers, by the keys of the task's `inputRequests`.
    pub input_responses: InputResponses,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `tasks/cancel` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelTaskParams {
    /// The task.
    pub task_id: String,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `notifications/tasks/status` params (optional; sent on a listen stream that asked for `tasksStatus`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusParams {
    /// The task and its payload.
    #[serde(flatten)]
    pub task: DetailedTask,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

request!(GetTaskParams, "tasks/get" => GetTaskResult);
request!(UpdateTaskParams, "tasks/update" => EmptyResult);
request!(CancelTaskParams, "tasks/cancel" => EmptyResult);
notification!(TaskStatusParams, "notifications/tasks/status");
mcp_result!(CreateTaskResult, GetTaskResult);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(status: &str) -> serde_json::Value {
        json!({
            "taskId": "786512e2", "status": status, "createdAt": "2025-11-25T10:30:00Z",
            "lastUpdatedAt": "2025-11-25T10:40:00Z", "ttlMs": 60000, "pollIntervalMs": 5000
        })
    }

    #[test]
    fn create_result_is_flat() {
        let mut v = base("working");
        v["resultType"] = json!("task");
        v["statusMessage"] = json!("The operation is now in progress.");
        let r: CreateTaskResult = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.result_type, Some(ResultType::Task));
        assert_eq!(r.task.ttl_ms, Some(60000));
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn detailed_task_outcomes() {
        let mut done = base("completed");
        done["result"] = json!({"content": [{"type": "text", "text": "ok"}], "isError": true});
        done["resultType"] = json!("complete");
        let r: GetTaskResult = serde_json::from_value(done.clone()).unwrap();
        assert!(matches!(r.task.outcome(), Some(TaskOutcome::Completed(res)) if res["isError"] == true));
        assert_eq!(serde_json::to_value(&r).unwrap(), done);

        let mut failed = base("failed");
        failed["error"] = json!({"code": -32603, "message": "boom"});
        let t: DetailedTask = serde_json::from_value(failed).unwrap();
        assert!(matches!(t.outcome(), Some(TaskOutcome::Failed(e)) if e.code == -32603));

        let mut input = base("input_required");
        input["inputRequests"] = json!({"confirm": {"method": "elicitation/create", "params": {
            "message": "Sure?", "requestedSchema": {"type": "object", "properties": {}}}}});
        let t: DetailedTask = serde_json::from_value(input.clone()).unwrap();
        assert!(matches!(t.outcome(), Some(TaskOutcome::InputRequired(r)) if r.contains_key("confirm")));
        assert_eq!(serde_json::to_value(&t).unwrap(), input);

        let missing: DetailedTask = serde_json::from_value(base("completed")).unwrap();
        assert_eq!(missing.outcome(), None);
    }
}
