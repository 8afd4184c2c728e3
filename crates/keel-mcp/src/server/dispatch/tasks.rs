//! The tasks extension's methods (`io.modelcontextprotocol/tasks`, 2026-07-28 only): `tasks/get`,
//! `tasks/update` and `tasks/cancel`, on the tasks the server's [`TaskStore`](crate::server::tasks::TaskStore)
//! keeps.

use serde::Deserialize;

use crate::protocol::capabilities::extension_ids;
use crate::protocol::lifecycle::EmptyResult;
use crate::protocol::meta::RequestMeta;
use crate::protocol::tasks::extension::{GetTaskParams, GetTaskResult, UpdateTaskParams};
use crate::protocol::{ErrorObject, InputResponses, Request, decode_params};
use crate::server::request::{Incoming, Outcome, check_name, finish, scope};
use crate::server::tasks::extension_required;

/// `tasks/get`, `tasks/update` and `tasks/cancel` (tasks extension, 2026-07-28 only).
pub(super) fn dispatch(req: Incoming<'_>) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TaskIn {
        task_id: String,
        #[serde(default)]
        input_responses: Option<InputResponses>,
        #[serde(rename = "_meta", default)]
        meta: Option<RequestMeta>,
    }
    let params: TaskIn = decode_params(params)?;
    let scope = scope(server, session, params.meta.as_ref(), false, headers)?;
    // The 2025-11-25 experimental tasks are not served; the extension is a 2026-07-28 surface.
    if !scope.modern() {
        return Err(ErrorObject::method_not_found(method));
    }
    if !scope.client_capabilities.has_extension(extension_ids::TASKS) {
        return Err(extension_required());
    }
    check_name(headers, &params.task_id)?;
    let task = server.tasks.get(&params.task_id)?;
    match method {
        GetTaskParams::METHOD => {
            finish(server, &scope, GetTaskResult { task: task.detailed(), result_type: None, meta: None })
        }
        UpdateTaskParams::METHOD => {
            task.deliver(params.input_responses.unwrap_or_default());
            finish(server, &scope, EmptyResult::default())
        }
        _ => {
            task.cancel();
            finish(server, &scope, EmptyResult::default())
        }
    }
}
