//! `--timeout`, `--reset-timeout-on-progress`, `--max-total-timeout` and `--connect-timeout`.
//!
//! Keel's per-request timeout is fixed once the request is sent; to restart it on progress, the CLI keeps its
//! own deadline per request and cancels the request (Keel sends `notifications/cancelled`) when it passes.
//! The overall deadline bounds the connect and every request together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keel_mcp::client::{CancellationToken, RequestOptions};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::args::Common;
use crate::error::{CliError, Kind};
use crate::output::Output;

/// Keel's own request timeout, set far out so the CLI's deadline is the one that fires.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

fn seconds(flag: &str, value: f64) -> Result<Option<Duration>, CliError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(CliError::usage(format!("--{flag} must be a number of seconds, 0 or more")));
    }
    Ok((value > 0.0).then(|| Duration::from_secs_f64(value)))
}

/// The deadlines of one command.
#[derive(Clone, Debug)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    request: Option<Duration>,
    reset_on_progress: bool,
    /// When the whole command must have finished.
    total_deadline: Option<Instant>,
    total: Option<Duration>,
}

impl Timeouts {
    pub fn new(common: &Common) -> Result<Self, CliError> {
        let total = seconds("max-total-timeout", common.max_total_timeout)?;
        Ok(Timeouts {
            connect: seconds("connect-timeout", common.connect_timeout)?,
            request: seconds("timeout", common.timeout)?,
            reset_on_progress: common.reset_timeout_on_progress,
            total_deadline: total.map(|t| Instant::now() + t),
            total,
        })
    }

    fn total_expired(&self) -> CliError {
        let secs = self.total.unwrap_or_default().as_secs_f64();
        CliError::new(Kind::Timeout, format!("the command did not finish within --max-total-timeout {secs} s"))
    }

    /// Runs the connect (transport start and handshake) within --connect-timeout and the overall deadline.
    /// Once `login` fires (a user is at the browser), only the overall deadline applies.
    pub async fn connect<T>(
        &self,
        login: &Notify,
        connect: impl Future<Output = Result<T, CliError>>,
    ) -> Result<T, CliError> {
        tokio::pin!(connect);
        let mut connect_deadline = self.connect.map(|c| Instant::now() + c);
        loop {
            let deadline = earliest(connect_deadline, self.total_deadline);
            let expire = sleep_until(deadline);
            tokio::select! {
                result = &mut connect => return result,
                () = login.notified(), if connect_deadline.is_some() => connect_deadline = None,
                () = expire => {
                    if deadline == self.total_deadline {
                        return Err(self.total_expired());
                    }
                    let secs = self.connect.unwrap_or_default().as_secs_f64();
                    let message = format!("no handshake with the server within --connect-timeout {secs} s");
                    return Err(CliError::new(Kind::Timeout, message));
                }
            }
        }
    }

    /// Runs one request: `send` gets the options to pass to Keel (progress goes to `output` and, with
    /// --reset-timeout-on-progress, restarts the deadline). Past a deadline the request is cancelled.
    pub async fn request<T, Fut>(
        &self,
        output: &Output,
        send: impl FnOnce(RequestOptions) -> Fut,
    ) -> Result<T, CliError>
    where
        Fut: Future<Output = Result<T, CliError>>,
    {
        let cancel = CancellationToken::new();
        let progressed = Arc::new(Notify::new());
        let options = {
            let output = output.clone();
            let progressed = progressed.clone();
            RequestOptions::default().timeout(ENGINE_TIMEOUT).cancellation(cancel.clone()).on_progress(move |p| {
                output.progress(&p);
                progressed.notify_one();
            })
        };
        let call = send(options);
        tokio::pin!(call);
        let mut request_deadline = self.request.map(|r| Instant::now() + r);
        loop {
            let deadline = earliest(request_deadline, self.total_deadline);
            let expire = sleep_until(deadline);
            tokio::select! {
                result = &mut call => return result,
                () = progressed.notified(), if self.reset_on_progress => {
                    request_deadline = self.request.map(|r| Instant::now() + r);
                }
                () = expire => {
                    cancel.cancel();
                    if deadline == self.total_deadline {
                        return Err(self.total_expired());
                    }
                    let secs = self.request.unwrap_or_default().as_secs_f64();
                    return Err(CliError::new(Kind::Timeout, format!("no answer within --timeout {secs} s")));
                }
            }
        }
    }
}

/// Sleeps until `deadline`; forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
