//! The experimental tasks of 2025-11-25 (SEP-1686).
//!
//! A requester adds `task: {ttl}` to a task-capable request (`tools/call`, and server-side
//! `sampling/createMessage` / `elicitation/create`); the receiver answers [`CreateTaskResult`] at once and
//! the requester polls `tasks/get`, fetches the payload with the blocking `tasks/result`, lists with
//! `tasks/list` and cancels with `tasks/cancel`.

use serde::{Deserialize, Serialize};

use super::TaskStatus;
use crate::protocol::meta::RequestMeta;
use crate::protocol::method::{mcp_result, notification, request};
use crate::protocol::{Cursor, JsonObject, ResultType};

/// A task's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The task id, chosen by the receiver.
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
    pub ttl: Option<u64>,
    /// Suggested polling interval in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<u64>,
}

/// The `task` param that asks for task execution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMetadata {
    /// Requested retention in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// `_meta["io.modelcontextprotocol/related-task"]`: the task a message belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedTaskMetadata {
    /// The task id.
    pub task_id: String,
}

/// A tool's task support (`Tool.execution.taskSupport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    /// Must not be called as a task (the default).
    Forbidden,
    /// May be called as a task.
    Optional,
    /// Must be called as a task.
    Required,
}

/// `Tool.execution`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolExecution {
    /// Task support (absent means forbidden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_support: Option<TaskSupport>,
}

/// The immediate answer to a task-augmented request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskResult {
    /// The new task.
    pub task: Task,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
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

/// `tasks/get` and `tasks/cancel` result: the task's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskResult {
    /// The task.
    #[serde(flatten)]
    pub task: Task,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `tasks/cancel` result (the same shape as `tasks/get`'s).
pub type CancelTaskResult = GetTaskResult;

/// `tasks/result` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskPayloadParams {
    /// The task.
    pub task_id: String,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `tasks/result` result: the result of the original request, whatever its type.
///
/// Decode [`TaskPayloadResult::fields`] into the original request's result type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPayloadResult {
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta` (carries `io.modelcontextprotocol/related-task`).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
    /// Every other field of the original result.
    #[serde(flatten)]
    pub fields: JsonObject,
}

/// `tasks/list` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListTasksParams {
    /// Where to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// `tasks/list` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResult {
    /// The tasks on this page.
    pub tasks: Vec<Task>,
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

/// `notifications/tasks/status` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusParams {
    /// The task's new state.
    #[serde(flatten)]
    pub task: Task,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

request!(GetTaskParams, "tasks/get" => GetTaskResult);
request!(GetTaskPayloadParams, "tasks/result" => TaskPayloadResult);
request!(ListTasksParams, "tasks/list" => ListTasksResult);
request!(CancelTaskParams, "tasks/cancel" => CancelTaskResult);
notification!(TaskStatusParams, "notifications/tasks/status");
mcp_result!(CreateTaskResult, GetTaskResult, TaskPayloadResult, ListTasksResult);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ttl_is_always_written_and_get_result_is_flat() {
        let v = json!({
            "taskId": "t1", "status": "working", "createdAt": "2025-11-25T10:30:00Z",
            "lastUpdatedAt": "2025-11-25T10:30:00Z", "ttl": null, "pollInterval": 5000
        });
        let r: GetTaskResult = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.task.ttl, None);
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
        let created = CreateTaskResult { task: r.task, result_type: None, meta: None };
        assert_eq!(serde_json::to_value(&created).unwrap(), json!({"task": v}));
    }

    #[test]
    fn payload_keeps_the_original_result() {
        let v = json!({"content": [], "isError": false, "_meta": {"io.modelcontextprotocol/related-task": {"taskId": "t"}}});
        let r: TaskPayloadResult = serde_json::from_value(v.clone()).unwrap();
        assert!(r.fields.contains_key("content") && !r.fields.contains_key("_meta"));
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }
}
