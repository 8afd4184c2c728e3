//! Finds the official MCP schemas and examples, and validates JSON against a revision's `schema.json`.
//!
//! The folder is `$KEEL_MCP_SCHEMA_DIR` when set, else `<workspace>/../shared/mcp-schema`. When it is
//! missing, tests skip loudly — unless `KEEL_REQUIRE_SCHEMAS=1`, in which case they fail (CI sets it).

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::ValidatorMap;
use serde_json::Value;

pub mod example_types;

/// Every revision with a `schema.json`.
pub const REVISIONS: [&str; 5] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

/// The revision whose examples are golden vectors.
pub const EXAMPLES_REVISION: &str = "2026-07-28";

/// The schema folder, or `None` (after a loud message) when it is missing and not required.
pub fn schema_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("KEEL_MCP_SCHEMA_DIR") {
            Some(d) => PathBuf::from(d),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/mcp-schema"),
        };
        if dir.join(EXAMPLES_REVISION).join("schema.json").is_file() {
            return Some(dir);
        }
        let message =
            format!("MCP schema folder not found at {} (set KEEL_MCP_SCHEMA_DIR to point at it)", dir.display());
        if std::env::var("KEEL_REQUIRE_SCHEMAS").as_deref() == Ok("1") {
            panic!("{message}; KEEL_REQUIRE_SCHEMAS=1 makes this an error");
        }
        // Straight to stderr: the test harness captures `eprintln!` of passing tests, and this must show.
        let bar = "!".repeat(72);
        let _ = writeln!(std::io::stderr(), "\n{bar}\n!!! SKIPPING schema tests: {message}\n{bar}\n");
        None
    })
    .clone()
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// One revision's `schema.json`, compiled: every subschema by JSON pointer.
struct Compiled {
    map: ValidatorMap,
    /// `$defs` (2020-12) or `definitions` (draft-07).
    defs_key: &'static str,
}

impl Compiled {
    fn pointer(&self, def_name: &str) -> String {
        format!("#/{}/{def_name}", self.defs_key)
    }
}

/// The compiled schema of `revision`, compiled once per test binary.
fn compiled(dir: &Path, revision: &str) -> Arc<Compiled> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Compiled>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    if let Some(hit) = cache.get(revision) {
        return hit.clone();
    }
    let schema = read_json(&dir.join(revision).join("schema.json"));
    let defs_key = if schema.get("$defs").is_some() { "$defs" } else { "definitions" };
    let map = jsonschema::validator_map_for(&schema).unwrap_or_else(|e| panic!("compiling the {revision} schema: {e}"));
    let entry = Arc::new(Compiled { map, defs_key });
    cache.insert(revision.to_owned(), entry.clone());
    entry
}

/// Validates `instance` against `#/$defs/<def_name>` (or `#/definitions/<def_name>`) of `revision`.
///
/// The error lists every violation with its instance path.
pub fn validate(revision: &str, def_name: &str, instance: &Value) -> Result<(), String> {
    let Some(dir) = schema_dir() else { return Ok(()) };
    let compiled = compiled(&dir, revision);
    let validator = compiled
        .map
        .get(&compiled.pointer(def_name))
        .ok_or_else(|| format!("{revision} has no definition {def_name}"))?;
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("  at '{}': {e}", e.instance_path())).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{def_name} ({revision}) rejects\n{instance:#}\n{}", errors.join("\n")))
    }
}

/// Whether `revision` defines `def_name`.
pub fn has_definition(revision: &str, def_name: &str) -> bool {
    let Some(dir) = schema_dir() else { return false };
    let compiled = compiled(&dir, revision);
    compiled.map.contains_key(&compiled.pointer(def_name))
}

/// Panics with the validation error.
#[track_caller]
pub fn assert_valid(revision: &str, def_name: &str, instance: &Value) {
    if let Err(e) = validate(revision, def_name, instance) {
        panic!("{e}");
    }
}

/// Checks a message a server sent: the JSON-RPC envelope and, by its kind, the revision's union of server
/// results, server notifications or server requests.
#[track_caller]
pub fn assert_valid_from_server(revision: &str, message: &Value) {
    assert_valid(revision, "JSONRPCMessage", message);
    let (def, payload) = if let Some(result) = message.get("result") {
        ("ServerResult", result)
    } else if message.get("error").is_some() {
        return;
    } else if message.get("id").is_some() {
        ("ServerRequest", message)
    } else {
        ("ServerNotification", message)
    };
    if has_definition(revision, def) {
        assert_valid(revision, def, payload);
    }
}

/// Checks a message a client sent, like [`assert_valid_from_server`].
#[track_caller]
pub fn assert_valid_from_client(revision: &str, message: &Value) {
    assert_valid(revision, "JSONRPCMessage", message);
    let (def, payload) = if let Some(result) = message.get("result") {
        ("ClientResult", result)
    } else if message.get("error").is_some() {
        return;
    } else if message.get("id").is_some() {
        ("ClientRequest", message)
    } else {
        ("ClientNotification", message)
    };
    if has_definition(revision, def) {
        assert_valid(revision, def, payload);
    }
}
