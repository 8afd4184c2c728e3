//! One run of the suite (a side at a spec version) judged against the expected failures, and the verdict over
//! all runs: what is unexpected makes `conformance/run` fail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::checks::{GENERIC_CHECKS, ScenarioResult, Status, collect_results};
use super::expected::{DEFAULT_LABEL, ExpectedFailures, MATRIX, Observed, SIDES};

/// A scenario's outcome in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed and not listed.
    Pass,
    /// Failed and listed: an expected failure.
    XFail,
    /// Failed and not listed: unexpected.
    Fail,
    /// Passed but listed: a stale entry, unexpected.
    XPass,
}

impl Outcome {
    /// Judges a scenario from whether it failed and whether the expected failures list it.
    pub fn of(failed: bool, listed: bool) -> Outcome {
        match (failed, listed) {
            (false, false) => Outcome::Pass,
            (true, true) => Outcome::XFail,
            (true, false) => Outcome::Fail,
            (false, true) => Outcome::XPass,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::XFail => "XFAIL",
            Outcome::Fail => "FAIL",
            Outcome::XPass => "XPASS",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Outcome::Pass => "32",
            Outcome::XFail => "33",
            Outcome::Fail | Outcome::XPass => "31;1",
        }
    }
}

/// What the launcher records about one run, as `<side>-<label>.run.json` beside the harness output directory
/// `<side>-<label>/`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunRecord {
    /// `server` or `client`.
    pub side: String,
    /// A [`MATRIX`] label, or another `--spec-version`.
    pub label: String,
    /// What the harness should have run (`conformance list`).
    pub scenarios: Vec<String>,
    /// The whole suite ran (no `--scenario` filter).
    pub complete: bool,
    /// Run-level problems (harness timeout or crash, server exit); each one is unexpected.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Log lines that explain the errors.
    #[serde(default)]
    pub context: Vec<String>,
    /// Informational lines.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The conformance-server log of a server run.
    #[serde(default)]
    pub server_log: Option<PathBuf>,
    /// The harness log (not written with `--verbose`): its tail explains run errors.
    #[serde(default)]
    pub harness_log: Option<PathBuf>,
    /// How long the harness took.
    #[serde(default)]
    pub seconds: f64,
}

/// A run with its results and outcomes.
#[derive(Clone, Debug)]
pub struct Run {
    /// What the launcher recorded.
    pub record: RunRecord,
    /// Results by scenario name.
    pub results: BTreeMap<String, ScenarioResult>,
    /// Outcomes by scenario name, after [`Run::judge`].
    pub outcomes: BTreeMap<String, Outcome>,
}

impl Run {
    /// A run from its record and the results the harness left in `dir`.
    pub fn load(record: RunRecord, dir: &Path) -> Run {
        let results = collect_results(&record.side, dir);
        Run::new(record, results)
    }

    /// A run from its record and results.
    pub fn new(mut record: RunRecord, results: BTreeMap<String, ScenarioResult>) -> Run {
        if !record.scenarios.is_empty() && results.is_empty() {
            record.errors.push("the harness produced no results at all".into());
        }
        if let Some(log) = record.harness_log.as_deref().filter(|_| !record.errors.is_empty()) {
            let lines = tail(log, 20);
            record.context.extend(lines.into_iter().map(|l| format!("harness log: {l}")));
        }
        Run { record, results, outcomes: BTreeMap::new() }
    }

    /// `server @ 2026-07-28`, or `… @ default (no --spec-version)`.
    pub fn title(&self) -> String {
        let extra = if self.record.label == DEFAULT_LABEL { " (no --spec-version)" } else { "" };
        format!("{} @ {}{extra}", self.record.side, self.record.label)
    }

    /// The scenarios listed for the run, then any others the harness reported, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names = self.record.scenarios.clone();
        names.extend(self.results.keys().filter(|n| !self.record.scenarios.contains(n)).cloned());
        names
    }

    /// The result of `name`; a scenario that left no result directory failed.
    pub fn result(&self, name: &str) -> ScenarioResult {
        self.results.get(name).cloned().unwrap_or_else(|| ScenarioResult::missing(name))
    }

    /// Decides every scenario's outcome.
    pub fn judge(&mut self, expected: &ExpectedFailures) {
        self.outcomes = self
            .names()
            .into_iter()
            .map(|name| {
                let failed = !self.result(&name).passed();
                let listed = !expected.covering(&self.record.side, &name, &self.record.label).is_empty();
                (name, Outcome::of(failed, listed))
            })
            .collect();
    }
}

/// Orders runs as they run: server before client, then [`MATRIX`] order, then other labels.
pub fn sort_runs(runs: &mut [Run]) {
    let rank = |run: &Run| {
        let side = SIDES.iter().position(|s| *s == run.record.side).unwrap_or(SIDES.len());
        let label = MATRIX.iter().position(|l| *l == run.record.label).unwrap_or(MATRIX.len());
        (side, label, run.record.label.clone())
    };
    runs.sort_by_key(rank);
}

/// The verdict over all runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Scenario-runs that passed.
    pub passed: usize,
    /// Scenario-runs that failed as expected.
    pub xfail: usize,
    /// Everything that makes the run fail, one line each.
    pub unexpected: Vec<String>,
}

/// Judges the runs as a whole: unexpected failures, stale entries, run errors, and entries that match no
/// scenario (decidable only when every run the entry applies to ran in full).
pub fn verdict(runs: &[Run], expected: &ExpectedFailures) -> Verdict {
    let mut v = Verdict::default();
    let listing = &expected.name;
    for run in runs {
        let (side, label) = (&run.record.side, &run.record.label);
        for (name, outcome) in &run.outcomes {
            match outcome {
                Outcome::Pass => v.passed += 1,
                Outcome::XFail => v.xfail += 1,
                Outcome::Fail => v.unexpected.push(format!("{side} @ {label}: {name} failed and is not in {listing}")),
                Outcome::XPass => {
                    v.unexpected.push(format!("{side} @ {label}: {name} passes but is listed in {listing}: remove it"));
                }
            }
        }
        v.unexpected.extend(run.record.errors.iter().map(|e| format!("{side} @ {label}: {e}")));
    }
    let complete = |side: &str, label: &str| {
        runs.iter().any(|r| r.record.complete && r.record.side == side && r.record.label == label)
    };
    for e in &expected.entries {
        let applies = MATRIX.iter().filter(|l| e.run.as_deref().is_none_or(|r| r == **l));
        if !applies.clone().all(|l| complete(&e.side, l)) {
            continue;
        }
        let matched = runs.iter().any(|r| {
            r.record.side == e.side
                && e.run.as_deref().is_none_or(|run| run == r.record.label)
                && r.outcomes.contains_key(&e.scenario)
        });
        if !matched {
            let (line, text, side) = (e.line_no, e.text(), &e.side);
            let run = e.run.as_ref().map_or_else(|| "any run".to_owned(), |r| format!("the {r} run"));
            v.unexpected
                .push(format!("{listing}:{line}: `{text}` matches no {side} scenario in {run}: fix or remove it"));
        }
    }
    v
}

/// What the runs observed, for rewriting the expected failures.
pub fn observed(runs: &[Run]) -> Observed {
    let mut seen = Observed::default();
    for run in runs {
        for name in run.outcomes.keys() {
            let key = (run.record.side.clone(), name.clone());
            seen.ran.entry(key.clone()).or_default().insert(run.record.label.clone());
            if !run.result(name).passed() {
                seen.failed.entry(key).or_default().insert(run.record.label.clone());
            }
        }
    }
    seen
}

/// Terminal colours, off unless wanted.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// Whether to colour.
    pub colour: bool,
}

impl Style {
    /// `text` in the ANSI colour `code`.
    pub fn paint(self, text: &str, code: &str) -> String {
        if self.colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
}

/// `text` on one line, at most `limit` characters.
pub fn one_line(text: &str, limit: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= limit { text } else { text.chars().take(limit - 1).chain(['…']).collect() }
}

fn tail(path: &Path, lines: usize) -> Vec<String> {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    kept[kept.len().saturating_sub(lines)..].iter().map(|l| (*l).to_owned()).collect()
}

/// The table of one run: every scenario with its outcome, counts and why it failed.
pub fn render_run(run: &Run, expected: &ExpectedFailures, style: Style) -> String {
    let mut out = String::new();
    let names = run.names();
    let _ = writeln!(
        out,
        "\n{}",
        style.paint(&format!("=== {}: {} scenarios, {:.1} s ===", run.title(), names.len(), run.record.seconds), "1")
    );
    for note in &run.record.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    for err in &run.record.errors {
        let _ = writeln!(out, "{}", style.paint(&format!("  ERROR: {err}"), "31;1"));
    }
    for line in &run.record.context {
        let _ = writeln!(out, "    {line}");
    }
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max(8);
    let _ = writeln!(out, "  {:<width$}  {:<7} {:>3} {:>3} {:>3}  details", "scenario", "verdict", "S", "F", "W");
    for name in &names {
        let result = run.result(name);
        let outcome = run.outcomes.get(name).copied().unwrap_or(Outcome::Fail);
        let counts = result.counts();
        let failing = result.failing();
        let mut detail = String::new();
        if outcome == Outcome::XPass {
            if let Some(entry) = expected.covering(&run.record.side, name, &run.record.label).first() {
                let (file, line, text) = (&expected.name, entry.line_no, entry.text());
                detail = format!("passes but is listed ({file}:{line} `{text}`): stale entry, remove it");
            }
        } else if matches!(outcome, Outcome::XFail | Outcome::Fail) {
            detail = if !result.problem.is_empty() {
                result.problem.clone()
            } else if failing.is_empty() && counts.success > 0 {
                let generic = GENERIC_CHECKS.join(", ");
                format!("only generic checks ({generic}) succeeded; the scenario's own checks were skipped or absent")
            } else if failing.is_empty() {
                "no checks (a scenario needs at least one SUCCESS check)".into()
            } else if outcome == Outcome::Fail {
                format!("{} failing check(s):", failing.len())
            } else {
                let ids: Vec<String> = failing
                    .iter()
                    .map(|c| format!("{}{}", c.id, if c.status == Status::Warning { "(W)" } else { "" }))
                    .collect();
                format!("failing: {}", ids.join(", "))
            };
            if outcome == Outcome::XFail {
                let first = failing.iter().find(|c| !c.message.is_empty()).map(|c| c.message.as_str());
                detail = one_line(&first.map_or(detail.clone(), |m| format!("{detail} | {m}")), 160);
            }
        }
        let verdict = style.paint(&format!("{:<7}", outcome.label()), outcome.colour());
        let _ = writeln!(
            out,
            "  {name:<width$}  {verdict} {:>3} {:>3} {:>3}  {detail}",
            counts.success, counts.failure, counts.warning
        );
        if outcome == Outcome::Fail {
            for c in &failing {
                let message = if c.message.is_empty() { "(no errorMessage)" } else { &c.message };
                let _ = writeln!(out, "  {:<width$}    {} {}: {}", "", c.status.as_str(), c.id, one_line(message, 300));
            }
            if let (Some(dir), "client") = (&result.result_dir, run.record.side.as_str()) {
                for line in tail(&dir.join("stderr.txt"), 5) {
                    let _ = writeln!(out, "  {:<width$}    client stderr: {}", "", one_line(&line, 200));
                }
            }
        }
    }
    if let Some(log) = run.record.server_log.as_deref().filter(|_| run.outcomes.values().any(|o| *o == Outcome::Fail)) {
        let _ = writeln!(out, "  last lines of the conformance-server log:");
        for line in tail(log, 10) {
            let _ = writeln!(out, "    {}", one_line(&line, 200));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(name: &str, checks: serde_json::Value) -> (String, ScenarioResult) {
        let mut r = ScenarioResult { name: name.into(), ..Default::default() };
        r.add_checks(checks.as_array().unwrap());
        (name.to_owned(), r)
    }

    fn pass(name: &str) -> (String, ScenarioResult) {
        result(name, json!([{"id": name, "status": "SUCCESS"}]))
    }

    fn fail(name: &str) -> (String, ScenarioResult) {
        result(name, json!([{"id": name, "status": "FAILURE"}]))
    }

    fn run(side: &str, label: &str, scenarios: &[&str], results: Vec<(String, ScenarioResult)>) -> Run {
        let record = RunRecord {
            side: side.into(),
            label: label.into(),
            scenarios: scenarios.iter().map(|s| (*s).to_owned()).collect(),
            complete: true,
            ..Default::default()
        };
        Run::new(record, results.into_iter().collect())
    }

    fn judged(mut runs: Vec<Run>, expected: &ExpectedFailures) -> Verdict {
        for r in &mut runs {
            r.judge(expected);
        }
        verdict(&runs, expected)
    }

    fn expected(text: &str) -> ExpectedFailures {
        ExpectedFailures::parse("expected-failures.yml", text).unwrap()
    }

    #[test]
    fn outcomes_follow_failed_and_listed() {
        assert_eq!(Outcome::of(false, false), Outcome::Pass);
        assert_eq!(Outcome::of(true, true), Outcome::XFail);
        assert_eq!(Outcome::of(true, false), Outcome::Fail);
        assert_eq!(Outcome::of(false, true), Outcome::XPass);
    }

    /// Every run of one side, each with the same results.
    fn matrix(side: &str, scenarios: &[&str], results: &[(String, ScenarioResult)]) -> Vec<Run> {
        MATRIX.iter().map(|l| run(side, l, scenarios, results.to_vec())).collect()
    }

    #[test]
    fn all_passing_and_nothing_listed_is_clean() {
        let v = judged(matrix("server", &["a", "b"], &[pass("a"), pass("b")]), &expected("server:\nclient:\n"));
        assert_eq!(v, Verdict { passed: 6, xfail: 0, unexpected: vec![] });
    }

    #[test]
    fn an_unlisted_failure_is_unexpected() {
        let v = judged(vec![run("server", "default", &["a"], vec![fail("a")])], &expected("server:\n"));
        assert_eq!(v.unexpected, ["server @ default: a failed and is not in expected-failures.yml"]);
    }

    #[test]
    fn a_listed_failure_is_expected() {
        let v = judged(matrix("server", &["a"], &[fail("a")]), &expected("server:\n  - a\n"));
        assert_eq!((v.xfail, v.unexpected.len()), (3, 0));
    }

    #[test]
    fn a_listed_scenario_that_passes_fails_the_run() {
        let v = judged(vec![run("client", "2026-07-28", &["a"], vec![pass("a")])], &expected("client:\n  - a@draft\n"));
        assert_eq!(v.unexpected, ["client @ 2026-07-28: a passes but is listed in expected-failures.yml: remove it"]);
    }

    #[test]
    fn a_scenario_with_no_checks_or_no_results_fails() {
        let runs = vec![run("server", "default", &["a", "b"], vec![result("a", json!([])), pass("c")])];
        let v = judged(runs, &expected("server:\n"));
        assert_eq!(
            v.unexpected,
            [
                "server @ default: a failed and is not in expected-failures.yml",
                "server @ default: b failed and is not in expected-failures.yml",
            ]
        );
        // `c` was not listed by `conformance list` but reported: it still counts.
        assert_eq!(v.passed, 1);
    }

    #[test]
    fn a_run_without_any_result_is_an_error() {
        let v = judged(vec![run("server", "default", &["a"], vec![])], &expected("server:\n  - a\n"));
        assert_eq!(v.unexpected, ["server @ default: the harness produced no results at all"]);
    }

    #[test]
    fn run_errors_are_unexpected() {
        let mut r = run("client", "default", &["a"], vec![pass("a")]);
        r.record.errors.push("the harness exited with code 3".into());
        let v = judged(vec![r], &expected("client:\n"));
        assert_eq!(v.unexpected, ["client @ default: the harness exited with code 3"]);
    }

    #[test]
    fn an_entry_matching_no_scenario_is_unexpected_only_after_complete_runs() {
        let file = expected("server:\n  - typo\n  - a@2025-11-25\n");
        let v = judged(matrix("server", &["a"], &[fail("a")]), &file);
        assert_eq!(
            v.unexpected,
            [
                "server @ 2026-07-28: a failed and is not in expected-failures.yml",
                "server @ default: a failed and is not in expected-failures.yml",
                "expected-failures.yml:2: `typo` matches no server scenario in any run: fix or remove it",
            ]
        );
        // With one run only (e.g. --spec-version 2025-11-25), `typo` cannot be judged; `a@2025-11-25` can.
        let v = judged(vec![run("server", "2025-11-25", &["a"], vec![fail("a")])], &file);
        assert!(v.unexpected.is_empty(), "{:?}", v.unexpected);
        let mut partial = matrix("server", &["a"], &[fail("a")]);
        partial[2].record.complete = false;
        let v = judged(partial, &file);
        assert!(!v.unexpected.iter().any(|u| u.contains("typo")));
    }

    #[test]
    fn observed_collects_runs_and_failures() {
        let mut runs = vec![run("server", "default", &["a", "b"], vec![pass("a"), fail("b")])];
        runs[0].judge(&expected("server:\n"));
        let seen = observed(&runs);
        assert_eq!(seen.ran.len(), 2);
        assert_eq!(seen.failed.keys().map(|(_, n)| n.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn runs_sort_in_matrix_order() {
        let mut runs: Vec<Run> =
            [("client", "default"), ("server", "2099-01-01"), ("server", "default"), ("server", "2025-11-25")]
                .iter()
                .map(|(s, l)| run(s, l, &[], vec![]))
                .collect();
        sort_runs(&mut runs);
        let order: Vec<String> = runs.iter().map(|r| format!("{}@{}", r.record.side, r.record.label)).collect();
        assert_eq!(order, ["server@2025-11-25", "server@default", "server@2099-01-01", "client@default"]);
    }

    #[test]
    fn the_table_says_why_a_scenario_failed() {
        let file = expected("server:\n  - b\n");
        let mut r = run("server", "default", &["a", "b", "c"], vec![fail("a"), fail("b"), pass("c")]);
        r.judge(&file);
        let table = render_run(&r, &file, Style { colour: false });
        assert!(table.contains("a         FAIL      0   1   0  1 failing check(s):"), "{table}");
        assert!(table.contains("FAILURE a: (no errorMessage)"), "{table}");
        assert!(table.contains("b         XFAIL     0   1   0  failing: b"), "{table}");
        assert!(table.contains("c         PASS      1   0   0"), "{table}");
    }
}
