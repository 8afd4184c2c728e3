//! `conformance/expected-failures.yml`: the scenarios Keel is known to fail, per side and optionally per run.
//!
//! The YAML is read by a YAML parser; the lines are kept as well, so that messages can name the line of an
//! entry and `--write-expected` can rewrite the lists while keeping every comment and group. Each entry must
//! therefore sit on its own `  - scenario[@run]` line, which the file's format asks for anyway.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_norway::Value;

/// The two sides of the suite: `conformance server` (our server under test) and `conformance client`.
pub const SIDES: [&str; 2] = ["server", "client"];
/// The run without `--spec-version` (the harness picks the wire version per scenario).
pub const DEFAULT_LABEL: &str = "default";
/// The runs of the full matrix, in the order they run.
pub const MATRIX: [&str; 3] = ["2025-11-25", "2026-07-28", DEFAULT_LABEL];

/// The spelling of a run after `@` or in `--spec-version`: `draft` and `none` are aliases.
pub fn canonical_run(run: &str) -> &str {
    match run {
        "draft" => "2026-07-28",
        "none" => DEFAULT_LABEL,
        other => other,
    }
}

/// One entry: a scenario expected to fail on one side, in every run or in one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `server` or `client`.
    pub side: String,
    /// The scenario name.
    pub scenario: String,
    /// A [`MATRIX`] label, or `None` for every run that includes the scenario.
    pub run: Option<String>,
    /// Its line in the file (1-based).
    pub line_no: usize,
    /// The comment after the entry on its line, or empty.
    pub comment: String,
}

impl Entry {
    /// The entry as written: `scenario` or `scenario@run`.
    pub fn text(&self) -> String {
        entry_text(&self.scenario, self.run.as_deref())
    }

    /// Whether this entry covers `scenario` of `side` in the run `label`.
    pub fn covers(&self, side: &str, scenario: &str, label: &str) -> bool {
        self.side == side && self.scenario == scenario && self.run.as_deref().is_none_or(|r| r == label)
    }
}

/// `scenario` or `scenario@run`.
pub fn entry_text(scenario: &str, run: Option<&str>) -> String {
    match run {
        Some(run) => format!("{scenario}@{run}"),
        None => scenario.to_owned(),
    }
}

/// One line of the file, kept verbatim.
#[derive(Clone, Debug)]
pub struct Line {
    /// The line as written.
    pub raw: String,
    /// The section it belongs to (`None` before the first).
    pub section: Option<String>,
    /// Set on the `server:` / `client:` lines.
    pub header: Option<String>,
    /// Set on entry lines: an index into [`ExpectedFailures::entries`].
    pub entry: Option<usize>,
}

/// The parsed file.
#[derive(Clone, Debug)]
pub struct ExpectedFailures {
    /// The file name, for messages.
    pub name: String,
    /// Every line.
    pub lines: Vec<Line>,
    /// Every entry, in file order.
    pub entries: Vec<Entry>,
}

impl ExpectedFailures {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<ExpectedFailures, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("{}: {e} (create it with `server:` and `client:` lists, or use --write-expected)", path.display())
        })?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        ExpectedFailures::parse(&name, &text)
    }

    /// Parses the text of a file called `name`.
    pub fn parse(name: &str, text: &str) -> Result<ExpectedFailures, String> {
        let values = yaml_entries(name, text)?;
        let (lines, located) = scan_lines(name, text)?;
        // The line scan must find exactly what the YAML parser found, or a rewrite could lose entries.
        let parsed: Vec<(&str, &str)> = values.iter().map(|(s, v)| (*s, v.as_str())).collect();
        let scanned: Vec<(&str, &str)> = located.iter().map(|(s, v, _, _)| (s.as_str(), v.as_str())).collect();
        if parsed != scanned {
            return Err(format!("{name}: write each entry as `  - scenario[@run]` on a line of its own in a section"));
        }
        let mut entries = Vec::new();
        let mut seen: HashMap<(String, String, Option<String>), usize> = HashMap::new();
        for (side, value, line_no, comment) in located {
            let at = format!("{name}:{line_no}");
            if value.replace("://", "").contains(':') {
                return Err(format!("{at}: per-check entries (`scenario:check-id`) are not supported: {value:?}"));
            }
            let (scenario, run) = match value.split_once('@') {
                Some((scenario, run)) => (scenario, Some(canonical_run(run))),
                None => (value.as_str(), None),
            };
            if scenario.is_empty() || run.is_some_and(|r| !MATRIX.contains(&r)) {
                let runs = MATRIX.join(", ");
                return Err(format!("{at}: bad entry {value:?}; the part after @ must be one of {runs}"));
            }
            let key = (side.clone(), scenario.to_owned(), run.map(str::to_owned));
            if let Some(first) = seen.get(&key) {
                return Err(format!("{at}: duplicate entry {value:?} (first on line {first})"));
            }
            seen.insert(key, line_no);
            entries.push(Entry { side, scenario: scenario.into(), run: run.map(str::to_owned), line_no, comment });
        }
        for e in entries.iter().filter(|e| e.run.is_some()) {
            if seen.contains_key(&(e.side.clone(), e.scenario.clone(), None)) {
                let (line, text, scenario) = (e.line_no, e.text(), &e.scenario);
                return Err(format!("{name}:{line}: {text:?} is already covered by unqualified {scenario:?}"));
            }
        }
        // Entry lines index `located`, which became `entries` one for one.
        Ok(ExpectedFailures { name: name.to_owned(), lines, entries })
    }

    /// The entries that cover `scenario` of `side` in the run `label`.
    pub fn covering(&self, side: &str, scenario: &str, label: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.covers(side, scenario, label)).collect()
    }
}

/// The entries as the YAML parser reads them: `(side, value)` in file order.
fn yaml_entries<'a>(name: &str, text: &str) -> Result<Vec<(&'a str, String)>, String> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| format!("{name}: not valid YAML: {e}"))?;
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(map) => map,
        _ => return Err(format!("{name}: expected a mapping with `server:` and `client:` lists")),
    };
    // serde_norway keeps the mapping's order, so entries come out in file order.
    let mut entries = Vec::new();
    for (key, list) in map {
        let key = key.as_str().map(str::to_owned).unwrap_or_else(|| format!("{key:?}"));
        let Some(side) = SIDES.iter().copied().find(|s| *s == key) else {
            return Err(format!("{name}: unknown section {key:?} (expected server: or client:)"));
        };
        let items = match list {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items,
            _ => return Err(format!("{name}: `{side}:` must be a list of `- scenario[@run]` entries")),
        };
        for item in items {
            let Value::String(value) = item else {
                return Err(format!("{name}: `{side}:` entries must be plain scenario names, found {item:?}"));
            };
            entries.push((side, value));
        }
    }
    Ok(entries)
}

/// Entries found by scanning lines: `(side, value, line number, comment)`.
type Located = Vec<(String, String, usize, String)>;

/// Classifies every line (header, entry, other) and finds each entry's value, line and comment.
fn scan_lines(name: &str, text: &str) -> Result<(Vec<Line>, Located), String> {
    let mut lines = Vec::new();
    let mut located = Vec::new();
    let mut section: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let (body, comment) = split_comment(raw);
        let mut line = Line { raw: raw.to_owned(), section: section.clone(), header: None, entry: None };
        let indented = raw.starts_with([' ', '\t']);
        if let Some(side) = SIDES.iter().find(|s| !indented && is_header(body, s)) {
            section = Some((*side).to_owned());
            line.section.clone_from(&section);
            line.header = Some((*side).to_owned());
        } else if let Some(value) = body.trim_start().strip_prefix("- ").filter(|_| indented) {
            let Some(side) = &section else {
                return Err(format!("{name}:{}: an entry before any `server:` or `client:` line", index + 1));
            };
            located.push((side.clone(), unquote(value.trim()).to_owned(), index + 1, comment.to_owned()));
            line.entry = Some(located.len() - 1);
        }
        lines.push(line);
    }
    Ok((lines, located))
}

/// `server:` or `server: []` (with any spacing).
fn is_header(body: &str, side: &str) -> bool {
    body.strip_prefix(side)
        .and_then(|rest| rest.trim_start().strip_prefix(':'))
        .is_some_and(|rest| matches!(rest.split_whitespace().collect::<String>().as_str(), "" | "[]"))
}

/// Splits `value  # comment` outside quotes (a YAML comment starts with `#` after whitespace).
fn split_comment(raw: &str) -> (&str, &str) {
    let mut quote = None;
    let mut previous = ' ';
    for (i, ch) in raw.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch == '#' && (i == 0 || previous == ' ' || previous == '\t') => {
                return (raw[..i].trim_end(), raw[i + 1..].trim());
            }
            None => {}
        }
        previous = ch;
    }
    (raw.trim_end(), "")
}

fn unquote(value: &str) -> &str {
    let quoted = value.len() >= 2
        && (value.starts_with('"') && value.ends_with('"') || value.starts_with('\'') && value.ends_with('\''));
    if quoted { &value[1..value.len() - 1] } else { value }
}

/// The runs of [`MATRIX`] an entry for `run` covers.
fn runs_of(run: Option<&str>) -> BTreeSet<String> {
    match run {
        Some(run) => BTreeSet::from([run.to_owned()]),
        None => MATRIX.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Runs covered so far by the entries a rewrite wrote, per `(side, scenario)`.
type Covered = HashMap<(String, String), BTreeSet<String>>;

/// Writes one entry line and records what it covers.
fn emit(covered: &mut Covered, indent: &str, side: &str, name: &str, run: Option<&str>, comment: &str) -> String {
    covered.entry((side.into(), name.into())).or_default().extend(runs_of(run));
    let comment = if comment.is_empty() { String::new() } else { format!("  # {comment}") };
    format!("{indent}- {}{comment}", entry_text(name, run))
}

/// What the runs found, for `--write-expected`: per `(side, scenario)`, the runs it was part of and the runs it
/// failed in.
#[derive(Debug, Default)]
pub struct Observed {
    /// Runs that included the scenario.
    pub ran: HashMap<(String, String), BTreeSet<String>>,
    /// Runs in which it failed.
    pub failed: HashMap<(String, String), BTreeSet<String>>,
}

/// The file rewritten to list exactly what fails now in `sides`, keeping comments, groups and entry order, and
/// what changed (`- removed`, `+ added` lines).
///
/// A scenario failing in every run it is part of gets one unqualified entry (its first line is kept, with its
/// comment, and widened if needed); one failing in only some runs gets one `@run` entry per failing run; one
/// passing everywhere loses its entries. New failures are appended to their section under a marker comment.
pub fn rewrite(expected: &ExpectedFailures, observed: &Observed, sides: &[&str]) -> (String, Vec<String>) {
    let empty = BTreeSet::new();
    let mut covered: Covered = HashMap::new();
    let mut changes = Vec::new();
    let mut out: Vec<String> = Vec::new();
    let mut section_end: Vec<(String, usize)> = Vec::new();
    for line in &expected.lines {
        let entry = line.entry.and_then(|i| expected.entries.get(i));
        if let Some(header) = &line.header {
            out.push(if sides.contains(&header.as_str()) { format!("{header}:") } else { line.raw.clone() });
        } else if let Some(e) = entry.filter(|e| sides.contains(&e.side.as_str())) {
            let key = (e.side.clone(), e.scenario.clone());
            let failing = observed.failed.get(&key).unwrap_or(&empty);
            let ran = observed.ran.get(&key).unwrap_or(&empty);
            let keep: Vec<Option<&str>> = if !failing.is_empty() && failing == ran {
                vec![None]
            } else if let Some(run) = &e.run {
                if failing.contains(run) { vec![Some(run.as_str())] } else { vec![] }
            } else {
                MATRIX.iter().copied().filter(|l| failing.contains(*l)).map(Some).collect()
            };
            let done = covered.get(&key).cloned().unwrap_or_default();
            let keep: Vec<Option<&str>> = keep.into_iter().filter(|r| !runs_of(*r).is_subset(&done)).collect();
            let indent = &line.raw[..line.raw.len() - line.raw.trim_start().len()];
            if keep == [e.run.as_deref()] {
                covered.entry(key).or_default().extend(runs_of(e.run.as_deref()));
                out.push(line.raw.clone()); // unchanged entries keep their exact text
            } else {
                changes.push(format!("- {}: {}", e.side, e.text()));
                for run in keep {
                    out.push(emit(&mut covered, indent, &e.side, &e.scenario, run, &e.comment));
                    changes.push(format!("+ {}: {}", e.side, entry_text(&e.scenario, run)));
                }
            }
        } else {
            out.push(line.raw.clone());
        }
        if line.header.is_some() || entry.is_some() {
            let section = line.section.clone().unwrap_or_default();
            match section_end.iter_mut().find(|(s, _)| *s == section) {
                Some(end) => end.1 = out.len(),
                None => section_end.push((section, out.len())),
            }
        }
    }
    for side in sides {
        let mut failures: Vec<(&(String, String), &BTreeSet<String>)> =
            observed.failed.iter().filter(|((s, _), _)| s == side).collect();
        failures.sort();
        let mut new = Vec::new();
        for (key, failing) in failures {
            let missing: BTreeSet<String> = failing.difference(covered.get(key).unwrap_or(&empty)).cloned().collect();
            if missing.is_empty() {
                continue;
            }
            let runs: Vec<Option<&str>> = if &missing == failing && Some(failing) == observed.ran.get(key) {
                vec![None]
            } else {
                MATRIX.iter().copied().filter(|l| missing.contains(*l)).map(Some).collect()
            };
            for run in runs {
                new.push(emit(&mut covered, "  ", side, &key.1, run, ""));
                changes.push(format!("+ {side}: {}", entry_text(&key.1, run)));
            }
        }
        if !new.is_empty() {
            new.insert(0, "  # New failures found by --write-expected: move them into a group and say why.".into());
        }
        match section_end.iter().position(|(s, _)| s == side) {
            None => {
                out.push(String::new());
                out.push(format!("{side}:"));
                out.extend(new);
            }
            Some(i) if !new.is_empty() => {
                let at = section_end[i].1;
                let added = new.len();
                out.splice(at..at, new);
                for (other, end) in section_end.iter_mut() {
                    if *end > at || (*end == at && other != side) {
                        *end += added;
                    }
                }
            }
            Some(_) => {}
        }
    }
    let mut text = out.join("\n").trim_end_matches('\n').to_owned();
    text.push('\n');
    (text, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# header comment
server:
  # a group
  - tasks-status-notifications   # never emits a check
  - tools-call@2026-07-28
  - \"quoted-one\"

client:
  - auth/metadata-default@draft
";

    #[test]
    fn entries_with_lines_runs_and_comments() {
        let parsed = ExpectedFailures::parse("x.yml", FILE).unwrap();
        let texts: Vec<String> =
            parsed.entries.iter().map(|e| format!("{}:{}:{}", e.side, e.text(), e.line_no)).collect();
        assert_eq!(
            texts,
            [
                "server:tasks-status-notifications:4",
                "server:tools-call@2026-07-28:5",
                "server:quoted-one:6",
                "client:auth/metadata-default@2026-07-28:9"
            ]
        );
        assert_eq!(parsed.entries[0].comment, "never emits a check");
    }

    #[test]
    fn an_unqualified_entry_covers_every_run_and_a_qualified_one_only_its_own() {
        let parsed = ExpectedFailures::parse("x.yml", FILE).unwrap();
        for run in MATRIX {
            assert_eq!(parsed.covering("server", "tasks-status-notifications", run).len(), 1);
            assert!(parsed.covering("client", "tasks-status-notifications", run).is_empty());
        }
        assert_eq!(parsed.covering("server", "tools-call", "2026-07-28").len(), 1);
        assert!(parsed.covering("server", "tools-call", "2025-11-25").is_empty());
        assert!(parsed.covering("server", "tools-call", DEFAULT_LABEL).is_empty());
    }

    #[test]
    fn empty_sections_and_empty_files_are_fine() {
        assert!(ExpectedFailures::parse("x.yml", "server:\nclient: []\n").unwrap().entries.is_empty());
        assert!(ExpectedFailures::parse("x.yml", "# nothing\n").unwrap().entries.is_empty());
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let err = |text: &str| ExpectedFailures::parse("x.yml", text).unwrap_err();
        assert!(err("servers:\n  - a\n").contains("unknown section \"servers\""));
        assert!(err("server:\n  - a@2024-01-01\n").contains("x.yml:2: bad entry"));
        assert!(err("server:\n  - a\n  - a\n").contains("x.yml:3: duplicate entry \"a\" (first on line 2)"));
        assert!(err("server:\n  - a\n  - a@default\n").contains("already covered by unqualified"));
        assert!(err("server:\n  - a:check\n").contains("per-check entries"));
        assert!(err("server:\n  - a: b\n").contains("plain scenario names"));
        assert!(err("server: [a, b]\n").contains("on a line of its own"));
        assert!(err("server:\n  - [a\n").contains("not valid YAML"));
        assert!(err("server: 3\n").contains("must be a list"));
        assert!(err("- a\n").contains("expected a mapping"));
    }

    #[test]
    fn urls_are_not_per_check_entries() {
        assert!(ExpectedFailures::parse("x.yml", "client:\n  - \"auth/http://x\"\n").is_ok());
    }

    fn observed(items: &[(&str, &str, &[&str], &[&str])]) -> Observed {
        let mut o = Observed::default();
        for (side, name, ran, failed) in items {
            let key = ((*side).to_owned(), (*name).to_owned());
            o.ran.insert(key.clone(), ran.iter().map(|s| (*s).to_owned()).collect());
            if !failed.is_empty() {
                o.failed.insert(key, failed.iter().map(|s| (*s).to_owned()).collect());
            }
        }
        o
    }

    #[test]
    fn rewrite_keeps_comments_drops_passes_narrows_and_appends() {
        let parsed = ExpectedFailures::parse("x.yml", FILE).unwrap();
        let all = &MATRIX[..];
        let now = observed(&[
            ("server", "tasks-status-notifications", all, all), // still fails everywhere: unchanged
            ("server", "tools-call", all, &[]),                 // passes now: dropped
            ("server", "quoted-one", all, &["default"]),        // fails in one run only: narrowed
            ("server", "brand-new", all, all),                  // new failure: appended to its section
            ("client", "auth/metadata-default", all, &["2026-07-28"]),
        ]);
        let (text, changes) = rewrite(&parsed, &now, &["server", "client"]);
        let expected = "\
# header comment
server:
  # a group
  - tasks-status-notifications   # never emits a check
  - quoted-one@default
  # New failures found by --write-expected: move them into a group and say why.
  - brand-new

client:
  - auth/metadata-default@draft
";
        assert_eq!(text, expected);
        assert_eq!(
            changes,
            [
                "- server: tools-call@2026-07-28",
                "- server: quoted-one",
                "+ server: quoted-one@default",
                "+ server: brand-new"
            ]
        );
        // The rewritten file parses, and rewriting again changes nothing.
        let again = ExpectedFailures::parse("x.yml", &text).unwrap();
        assert_eq!(rewrite(&again, &now, &["server", "client"]).1, Vec::<String>::new());
    }
}
