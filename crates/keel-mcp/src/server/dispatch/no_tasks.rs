//! Without the `tasks` feature a tool call never becomes a task: the [`TaskOffer`] of `tasks.rs`, doing
//! nothing, so that `tools/call` reads the same in every build.

use std::sync::Mutex;

use crate::protocol::ErrorObject;
use crate::protocol::tools::CallToolResult;
use crate::server::context::RequestContext;
use crate::server::error::HandlerError;
use crate::server::inner::ServerInner;
use crate::server::middleware::Run;
use crate::server::request::{Outcome, Scope};
use crate::server::session::LegacySession;
use crate::server::tool::ToolDef;

/// A `tools/call`, which without the extension always runs to its end.
pub(super) struct TaskOffer;

impl TaskOffer {
    pub(super) fn check(_tool: &ToolDef, _scope: &Scope) -> Result<Self, ErrorObject> {
        Ok(TaskOffer)
    }

    pub(super) fn offer(
        self,
        _server: &ServerInner,
        _session: Option<&Mutex<LegacySession>>,
        _tool: &ToolDef,
        _scope: &Scope,
        _ctx: &mut RequestContext,
    ) -> TaskRun {
        TaskRun
    }
}

/// A tool call that runs to its end.
pub(super) struct TaskRun;

impl TaskRun {
    pub(super) async fn run(
        self,
        _server: &ServerInner,
        _scope: &Scope,
        run: Run<CallToolResult>,
    ) -> Result<Result<CallToolResult, HandlerError>, Outcome> {
        Ok(run.await)
    }
}
