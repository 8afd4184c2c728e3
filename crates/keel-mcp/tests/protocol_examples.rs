//! Every official 2026-07-28 example decodes into a Keel type and encodes back to the same JSON.
//!
//! The folder-to-type table lives in `schema_support::example_types`; a folder without an entry fails the
//! test, so no example is skipped silently.

mod schema_support;

use std::path::{Path, PathBuf};

use schema_support::example_types;
use schema_support::{EXAMPLES_REVISION, read_json, schema_dir};

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn every_example_round_trips_exactly() {
    let Some(dir) = schema_dir() else { return };
    let examples = dir.join(EXAMPLES_REVISION).join("examples");
    let table = example_types::table();
    let (mut unmapped, mut failures, mut checked) = (Vec::new(), Vec::new(), 0);
    for folder in sorted_entries(&examples).into_iter().filter(|p| p.is_dir()) {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let Some(round_trip) = table.get(name.as_str()) else {
            unmapped.push(name);
            continue;
        };
        let files: Vec<PathBuf> =
            sorted_entries(&folder).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
        assert!(!files.is_empty(), "{name} has no examples");
        for file in files {
            let input = read_json(&file);
            let label = format!("{name}/{}", file.file_name().unwrap().to_string_lossy());
            match round_trip(&input) {
                Ok(output) if output == input => checked += 1,
                Ok(output) => failures.push(format!("{label}: re-encoded differently\n in: {input}\nout: {output}")),
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    assert!(unmapped.is_empty(), "example folders with no Keel type: {unmapped:?}");
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        checked + failures.len(),
        failures.join("\n\n")
    );
    assert!(checked > 100, "only {checked} examples checked");
}

#[test]
fn every_table_entry_names_an_example_folder() {
    let Some(dir) = schema_dir() else { return };
    let examples = dir.join(EXAMPLES_REVISION).join("examples");
    let stale: Vec<_> = example_types::table().into_keys().filter(|name| !examples.join(name).is_dir()).collect();
    assert!(stale.is_empty(), "table entries with no example folder: {stale:?}");
}
