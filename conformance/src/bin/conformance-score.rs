//! Scores a run of the official conformance suite that `conformance/run` launched.
//!
//! ```text
//! conformance-score check FILE                     check an expected-failures file
//! conformance-score score --expected FILE --results DIR [--write-expected]
//! ```
//!
//! `score` reads every `<side>-<label>.run.json` in DIR with the harness output beside it, prints one table per
//! run and what is unexpected, and exits 0 (all as expected), 1 (unexpected results) or 2 (setup error).
//! `--write-expected` first rewrites FILE to list exactly what fails now.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keel_conformance::scoring::expected::{self, ExpectedFailures};
use keel_conformance::scoring::report::{self, Run, RunRecord, Style};

const USAGE: &str = "usage: conformance-score check FILE\n       \
                     conformance-score score --expected FILE --results DIR [--write-expected]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("conformance-score: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    match args.split_first() {
        Some((command, [file])) if command == "check" => {
            ExpectedFailures::load(Path::new(file))?;
            Ok(ExitCode::SUCCESS)
        }
        Some((command, rest)) if command == "score" => score(rest),
        _ => Err(USAGE.into()),
    }
}

fn score(args: &[String]) -> Result<ExitCode, String> {
    let (mut file, mut results, mut write) = (None, None, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--expected" => file = args.next().map(PathBuf::from),
            "--results" => results = args.next().map(PathBuf::from),
            "--write-expected" => write = true,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let (Some(file), Some(results)) = (file, results) else { return Err(USAGE.into()) };
    let mut expected = ExpectedFailures::load(&file)?;
    let mut runs = load_runs(&results)?;
    for run in &mut runs {
        run.judge(&expected);
    }
    let style = Style { colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() };

    if write {
        let mut sides: Vec<&str> = runs.iter().map(|r| r.record.side.as_str()).collect();
        sides.dedup();
        let (text, changes) = expected::rewrite(&expected, &report::observed(&runs), &sides);
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
        println!("\n{}", style.paint(&format!("=== --write-expected: rewrote {} ===", file.display()), "1"));
        for change in &changes {
            println!("  {change}");
        }
        if changes.is_empty() {
            println!("  (no change)");
        }
        expected = ExpectedFailures::load(&file)?;
        for run in &mut runs {
            run.judge(&expected);
        }
    }

    for run in &runs {
        print!("{}", report::render_run(run, &expected, style));
    }
    let verdict = report::verdict(&runs, &expected);
    if !verdict.unexpected.is_empty() {
        println!("\n{}", style.paint("=== unexpected ===", "1"));
        for item in &verdict.unexpected {
            println!("{}", style.paint(&format!("  {item}"), "31;1"));
        }
    }
    let unexpected = verdict.unexpected.len();
    let line =
        format!("conformance: {} passed, {} expected failures, {unexpected} unexpected", verdict.passed, verdict.xfail);
    println!("\n{}", style.paint(&line, if unexpected > 0 { "31;1" } else { "32;1" }));
    Ok(if unexpected > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Every run recorded in `dir`, in the order they run.
fn load_runs(dir: &Path) -> Result<Vec<Run>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut runs = Vec::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".run.json")) else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let record: RunRecord = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        runs.push(Run::load(record, &dir.join(stem)));
    }
    if runs.is_empty() {
        return Err(format!("{}: no <side>-<label>.run.json records", dir.display()));
    }
    report::sort_runs(&mut runs);
    Ok(runs)
}
