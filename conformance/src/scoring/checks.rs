//! What one scenario's `checks.json` says, and the strict rule that turns it into pass or fail.
//!
//! The harness writes one result directory per scenario, named `<scenario>-<ISO time>`, holding a
//! `checks.json` array. Its exit code is never trusted: a scenario passes only when, after collapsing repeated
//! check ids to their most severe status, there is no FAILURE or WARNING and at least one SUCCESS other than
//! the generic checks every scenario gets. INFO and SKIPPED checks do not count either way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Checks the harness adds to every scenario that exchanged a message. They count when they fail, but cannot be
/// the one SUCCESS a scenario needs: a scenario whose own checks were all SKIPPED has tested nothing.
pub const GENERIC_CHECKS: &[&str] = &["wire-schema-valid"];

/// A check status that counts, least severe first (the derived order is the severity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// The check passed.
    Success,
    /// A SHOULD was not met: fails the scenario like a FAILURE.
    Warning,
    /// A MUST was not met.
    Failure,
}

impl Status {
    /// The status named in `checks.json`; `None` for the ones that do not count (INFO, SKIPPED, anything else).
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "SUCCESS" => Some(Status::Success),
            "WARNING" => Some(Status::Warning),
            "FAILURE" => Some(Status::Failure),
            _ => None,
        }
    }

    /// The name `checks.json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Warning => "WARNING",
            Status::Failure => "FAILURE",
        }
    }
}

/// One check after collapsing: its id, its most severe status, and the message that came with that status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The check id (`id`, else `name`, else `?`).
    pub id: String,
    /// The most severe status reported under this id.
    pub status: Status,
    /// The `errorMessage` of that report, or empty.
    pub message: String,
}

/// Collapsed checks counted by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Check ids whose worst status is SUCCESS.
    pub success: usize,
    /// Check ids whose worst status is WARNING.
    pub warning: usize,
    /// Check ids whose worst status is FAILURE.
    pub failure: usize,
}

/// Everything the harness left for one scenario.
#[derive(Clone, Debug, Default)]
pub struct ScenarioResult {
    /// The scenario name (`tools-list`, `auth/metadata-default`).
    pub name: String,
    /// Its result directory (the last one, when the harness wrote several).
    pub result_dir: Option<PathBuf>,
    /// The checks, collapsed by id in order of first appearance.
    pub checks: Vec<Check>,
    /// Why there are no usable checks (no result directory, no or unreadable `checks.json`), or empty.
    pub problem: String,
}

impl ScenarioResult {
    /// The result of a scenario that left nothing behind.
    pub fn missing(name: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.to_owned(),
            problem: "no result directory (the scenario did not run)".into(),
            ..Default::default()
        }
    }

    /// Adds the entries of one `checks.json` array: objects only, statuses that count only, keeping the most
    /// severe status per id (the first report wins a tie).
    pub fn add_checks(&mut self, checks: &[Value]) {
        for check in checks.iter().filter_map(Value::as_object) {
            let Some(status) = check.get("status").and_then(Value::as_str).and_then(Status::parse) else { continue };
            let id = text(check.get("id")).or_else(|| text(check.get("name"))).unwrap_or_else(|| "?".into());
            let message = text(check.get("errorMessage")).unwrap_or_default();
            match self.checks.iter_mut().find(|c| c.id == id) {
                Some(seen) if status > seen.status => (seen.status, seen.message) = (status, message),
                Some(_) => {}
                None => self.checks.push(Check { id, status, message }),
            }
        }
    }

    /// The collapsed checks counted by status.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for check in &self.checks {
            match check.status {
                Status::Success => counts.success += 1,
                Status::Warning => counts.warning += 1,
                Status::Failure => counts.failure += 1,
            }
        }
        counts
    }

    /// SUCCESS checks that are the scenario's own (not [`GENERIC_CHECKS`]).
    pub fn own_successes(&self) -> usize {
        self.checks.iter().filter(|c| c.status == Status::Success && !GENERIC_CHECKS.contains(&c.id.as_str())).count()
    }

    /// The strict rule: at least one SUCCESS of its own, and no FAILURE or WARNING.
    pub fn passed(&self) -> bool {
        let counts = self.counts();
        self.own_successes() > 0 && counts.failure == 0 && counts.warning == 0
    }

    /// The checks that fail the scenario, FAILURE before WARNING.
    pub fn failing(&self) -> Vec<&Check> {
        let mut bad: Vec<&Check> = self.checks.iter().filter(|c| c.status != Status::Success).collect();
        bad.sort_by_key(|c| std::cmp::Reverse(c.status));
        bad
    }
}

/// A JSON value as the text a report shows; absent, null, `false`, `0` and `""` count as no value.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        other => Some(other.to_string()),
    }
}

/// Whether `name` ends the way the harness names result directories: `-YYYY-MM-DDTHH-MM-SS-mmmZ`.
fn result_dir_stem(name: &str) -> Option<&str> {
    const SHAPE: &[u8] = b"-dddd-dd-ddTdd-dd-dd-dddZ";
    let split = name.len().checked_sub(SHAPE.len())?;
    let tail = name.as_bytes().get(split..)?;
    let fits = tail.iter().zip(SHAPE).all(|(&c, &s)| if s == b'd' { c.is_ascii_digit() } else { c == s });
    if fits { name.get(..split) } else { None }
}

/// Reads every scenario result under `dir` (the harness's `-o` directory of one run). Server scenarios lose the
/// `server-` prefix the harness gives their directories; client scenarios keep their path (`auth/…`).
pub fn collect_results(side: &str, dir: &Path) -> BTreeMap<String, ScenarioResult> {
    let mut found = BTreeMap::new();
    walk(side, dir, dir, &mut found);
    found
}

fn walk(side: &str, root: &Path, dir: &Path, found: &mut BTreeMap<String, ScenarioResult>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
    dirs.sort();
    for path in dirs {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let Some(stem) = result_dir_stem(&relative) else {
            walk(side, root, &path, found);
            continue;
        };
        let name = match side {
            "server" => stem.strip_prefix("server-").unwrap_or(stem),
            _ => stem,
        };
        let result =
            found.entry(name.to_owned()).or_insert_with(|| ScenarioResult { name: name.into(), ..Default::default() });
        result.result_dir = Some(path.clone());
        match std::fs::read(path.join("checks.json")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                result.problem = "result directory has no checks.json".into();
            }
            Err(e) => result.problem = format!("unreadable checks.json: {e}"),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Array(checks)) => result.add_checks(&checks),
                Ok(_) => result.problem = "unreadable checks.json: not a JSON array".into(),
                Err(e) => result.problem = format!("unreadable checks.json: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scenario(checks: Value) -> ScenarioResult {
        let mut result = ScenarioResult { name: "s".into(), ..Default::default() };
        result.add_checks(checks.as_array().unwrap());
        result
    }

    #[test]
    fn one_own_success_and_nothing_bad_passes() {
        assert!(scenario(json!([{"id": "a", "status": "SUCCESS"}])).passed());
        assert!(scenario(json!([{"id": "a", "status": "SUCCESS"}, {"id": "b", "status": "INFO"}])).passed());
    }

    #[test]
    fn no_checks_fails() {
        assert!(!scenario(json!([])).passed());
    }

    #[test]
    fn only_skipped_or_info_fails() {
        assert!(!scenario(json!([{"id": "a", "status": "SKIPPED"}, {"id": "b", "status": "INFO"}])).passed());
    }

    #[test]
    fn the_generic_schema_check_alone_fails() {
        let result =
            scenario(json!([{"id": "wire-schema-valid", "status": "SUCCESS"}, {"id": "a", "status": "SKIPPED"}]));
        assert_eq!(result.counts().success, 1);
        assert_eq!(result.own_successes(), 0);
        assert!(!result.passed());
    }

    #[test]
    fn a_failing_generic_check_fails() {
        let result =
            scenario(json!([{"id": "a", "status": "SUCCESS"}, {"id": "wire-schema-valid", "status": "FAILURE"}]));
        assert!(!result.passed());
    }

    #[test]
    fn a_failure_or_a_warning_fails() {
        assert!(!scenario(json!([{"id": "a", "status": "SUCCESS"}, {"id": "b", "status": "FAILURE"}])).passed());
        assert!(!scenario(json!([{"id": "a", "status": "SUCCESS"}, {"id": "b", "status": "WARNING"}])).passed());
    }

    #[test]
    fn repeated_ids_collapse_to_the_most_severe_status() {
        let result = scenario(json!([
            {"id": "a", "status": "SUCCESS"},
            {"id": "a", "status": "FAILURE", "errorMessage": "boom"},
            {"id": "a", "status": "WARNING", "errorMessage": "later"},
            {"id": "b", "status": "SUCCESS"},
        ]));
        assert_eq!(result.checks.len(), 2);
        assert_eq!(result.checks[0], Check { id: "a".into(), status: Status::Failure, message: "boom".into() });
        assert_eq!(result.counts(), Counts { success: 1, warning: 0, failure: 1 });
        assert!(!result.passed());
    }

    #[test]
    fn ids_fall_back_to_name_then_question_mark() {
        let result = scenario(json!([
            {"name": "named", "status": "SUCCESS"},
            {"id": "", "status": "WARNING"},
            "not an object",
            {"id": "x"},
        ]));
        let ids: Vec<&str> = result.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["named", "?"]);
    }

    #[test]
    fn failing_lists_failures_before_warnings() {
        let result = scenario(json!([
            {"id": "w", "status": "WARNING"},
            {"id": "ok", "status": "SUCCESS"},
            {"id": "f", "status": "FAILURE"},
        ]));
        let ids: Vec<&str> = result.failing().iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["f", "w"]);
    }

    #[test]
    fn result_directory_names_are_recognised() {
        assert_eq!(result_dir_stem("server-tools-list-2026-11-27T04-54-28-324Z"), Some("server-tools-list"));
        assert_eq!(result_dir_stem("auth/metadata-default-2026-11-27T04-54-28-324Z"), Some("auth/metadata-default"));
        assert_eq!(result_dir_stem("tools-list"), None);
        assert_eq!(result_dir_stem("x-2026-11-27T04-54-28-32Z"), None);
        assert_eq!(result_dir_stem("é-2026-11-27T04-54-28-324Z"), Some("é"));
    }

    #[test]
    fn results_are_read_from_disk() {
        let root = std::env::temp_dir().join(format!("keel-score-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = |p: &str| {
            let d = root.join(p);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let ok = dir("server-tools-list-2026-11-27T04-54-28-324Z");
        std::fs::write(ok.join("checks.json"), r#"[{"id":"tools-list","status":"SUCCESS"}]"#).unwrap();
        dir("server-ping-2026-11-27T04-54-28-324Z");
        let bad = dir("server-nested/server-echo-2026-11-27T04-54-28-324Z");
        std::fs::write(bad.join("checks.json"), "{}").unwrap();
        let found = collect_results("server", &root);
        std::fs::remove_dir_all(&root).unwrap();
        assert!(found["tools-list"].passed());
        assert_eq!(found["ping"].problem, "result directory has no checks.json");
        assert_eq!(found["nested/server-echo"].problem, "unreadable checks.json: not a JSON array");
        assert_eq!(found.len(), 3);
    }
}
