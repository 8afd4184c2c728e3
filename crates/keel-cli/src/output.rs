//! Where things go: the result on stdout (text or one JSON object), and everything that streams — progress,
//! log messages, other notifications, traces — on stderr as it arrives (text lines, or NDJSON).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use keel_mcp::client::{Progress, ServerNotification};
use serde_json::{Value, json};

use crate::args::Format;

/// What every part of a run writes through.
#[derive(Clone, Debug)]
pub struct Output {
    pub format: Format,
    pub quiet: bool,
    started: Arc<Instant>,
}

impl Output {
    pub fn new(format: Format, quiet: bool) -> Self {
        Output { format, quiet, started: Arc::new(Instant::now()) }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Seconds since the command started (the trace timestamps).
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Prints the command's result: `{"result": …}` in JSON, `text` otherwise.
    pub fn result(&self, result: &Value, text: impl FnOnce(&mut String)) {
        let mut out = String::new();
        if self.json() {
            out = json!({ "result": result }).to_string();
            out.push('\n');
        } else {
            text(&mut out);
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    /// One line on stderr: `text` in text mode, `{kind: value}` as NDJSON in JSON mode.
    pub fn event(&self, kind: &str, value: Value, text: impl FnOnce() -> String) {
        let line = if self.json() { json!({ kind: value }).to_string() } else { text() };
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }

    /// A progress update of the running request.
    pub fn progress(&self, progress: &Progress) {
        if self.quiet {
            return;
        }
        let value = serde_json::to_value(progress).unwrap_or(Value::Null);
        self.event("progress", value, || {
            let total = progress.total.map(|t| format!("/{t}")).unwrap_or_default();
            let message = progress.message.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
            format!("progress {}{total}{message}", progress.progress)
        });
    }

    /// A notification from the server.
    pub fn notification(&self, notification: ServerNotification) {
        if self.quiet {
            return;
        }
        match notification {
            ServerNotification::Log(log) => {
                let value = serde_json::to_value(&log).unwrap_or(Value::Null);
                self.event("log", value, || {
                    let level = serde_json::to_value(log.level).ok();
                    let level = level.as_ref().and_then(Value::as_str).unwrap_or("log");
                    let logger = log.logger.as_deref().map(|l| format!(" [{l}]")).unwrap_or_default();
                    let data = match &log.data {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{level}{logger} {data}")
                });
            }
            ServerNotification::Progress(progress) => {
                let value = serde_json::to_value(&progress).unwrap_or(Value::Null);
                self.event("progress", value.clone(), || format!("progress {value}"));
            }
            ServerNotification::Other(raw) => {
                let params = raw.params.as_deref().map(|p| p.get().to_owned()).unwrap_or_default();
                let value = json!({ "method": raw.method, "params": serde_json::from_str::<Value>(&params).ok() });
                self.event("notification", value, || format!("notification {} {params}", raw.method));
            }
            other => {
                let name = format!("{other:?}");
                self.event("notification", json!({ "kind": name }), || format!("notification {name}"));
            }
        }
    }
}
