//! Keeps `src/server/` free of import cycles, so that its modules stack in one direction
//! (`request ← dispatch ← connection / http ← server`) and a new feature has a clear room.
//!
//! The graph, kept deliberately coarse and simple:
//! - **Nodes** are the direct children of `src/server/`: `tool.rs` is `tool`, everything under `dispatch/`
//!   is `dispatch`, everything under `http/` is `http` (a transport is one concept; its files may lean on each
//!   other). `src/server/mod.rs` is the node `server`: it declares every module, so it has an edge to each, and
//!   an import of it (of an item it defines or re-exports) closes a cycle.
//! - **Edges** are the paths a file names in code (comments are skipped, wherever they appear):
//!   `super::…` and `crate::server::…`, including `{…}` groups. A path naming a child module is an edge to it;
//!   a path naming an item of `mod.rs` (a type defined there, or one of its re-exports) is an edge to `server`.
//!   `#[cfg]` is ignored: every feature's imports count.
//! - A file's `mod tests` is skipped from that line on (its `super::` means the file itself). String and
//!   character literals are skipped too.
//!
//! The check fails on any cycle and prints one, with the files behind each edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The root node: `src/server/mod.rs`.
const ROOT: &str = "server";

/// Edges that still close a cycle, left out of the check until they are untangled. Must shrink to nothing;
/// an entry that no longer exists fails the check, so the list stays honest.
const ALLOWED: &[(&str, &str)] = &[];

#[test]
fn server_modules_import_each_other_in_one_direction() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
    let files = rust_files(&dir);
    assert!(files.len() > 10, "expected the server's sources under {}", dir.display());
    let nodes: BTreeSet<String> = files.iter().map(|f| node_of(&dir, f)).collect();
    // (from, to) -> the files that make the edge.
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = node_of(&dir, file);
        let source = std::fs::read_to_string(file).expect("source file reads");
        let relative = file.strip_prefix(&dir).expect("under src/server").to_string_lossy().replace('\\', "/");
        for to in imports(&relative, &source, &nodes) {
            if to != from {
                edges.entry((from.clone(), to)).or_default().insert(relative.clone());
            }
        }
    }
    // mod.rs declares every module, so an edge back to it is a cycle.
    for node in nodes.iter().filter(|n| *n != ROOT) {
        edges.entry((ROOT.to_owned(), node.clone())).or_default().insert("mod.rs".to_owned());
    }
    let stale: Vec<_> =
        ALLOWED.iter().filter(|(a, b)| !edges.contains_key(&((*a).to_owned(), (*b).to_owned()))).collect();
    assert!(stale.is_empty(), "ALLOWED lists edges that no longer exist; remove them: {stale:?}");
    for (a, b) in ALLOWED {
        edges.remove(&((*a).to_owned(), (*b).to_owned()));
    }
    if let Some(cycle) = find_cycle(&nodes, &edges) {
        let mut report = String::from("import cycle among src/server modules:\n");
        for pair in cycle.windows(2) {
            let files = &edges[&(pair[0].clone(), pair[1].clone())];
            report.push_str(&format!("  {} -> {}   (in {})\n", pair[0], pair[1], join(files)));
        }
        panic!(
            "{report}Make the lower module independent of the higher one (see the rules in tests/server_layers.rs)."
        );
    }
}

#[test]
fn the_parser_reads_groups_nested_paths_and_skips_comments_and_tests() {
    let nodes: BTreeSet<String> = ["server", "dispatch", "request", "tool", "http"].map(String::from).into();
    let source = "const ANY: &str = \"*/*\"; const Q: char = '\"'; fn g<'a>(_: &'a str) -> &'a str { \"a\\\"b\" }\n\
                  use super::request::{Incoming, finish};\n\
                  use super::{ServerInner, tool::{self, ToolDef}};\n\
                  // use super::http::Nope;\n\
                  fn f() { crate::server::http::thing(); } // super::dispatch in a comment\n\
                  #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::server::dispatch::X;\n}\n";
    let found = imports("tasks.rs", source, &nodes);
    assert_eq!(found, ["http", "request", "server", "tool"].map(String::from).into());
    // In a nested file `super::` is the folder's own module; `super::super::` is the server root.
    let nested = "use super::Outcome;\nuse super::super::tool::ToolDef;\nuse crate::server::Server;\n";
    assert_eq!(imports("dispatch/tools.rs", nested, &nodes), ["dispatch", "server", "tool"].map(String::from).into());
}

fn join(files: &BTreeSet<String>) -> String {
    files.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("source directory reads") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The node a file belongs to: its first path component under `src/server/`, without `.rs`.
fn node_of(dir: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(dir).expect("under src/server");
    let first = relative.components().next().expect("a file name").as_os_str().to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("mod") => ROOT.to_owned(),
        Some(stem) => stem.to_owned(),
        None => first.into_owned(),
    }
}

/// The nodes a file (`relative` to `src/server/`) imports.
fn imports(relative: &str, source: &str, nodes: &BTreeSet<String>) -> BTreeSet<String> {
    // How many `super::` reach the server root from this file's module.
    let depth = relative.matches('/').count() + usize::from(!relative.ends_with("mod.rs"));
    let own = relative.split(['/', '.']).next().unwrap_or_default().to_owned();
    let code = strip_comments(source);
    let code = match code.lines().position(|l| l.trim_start().starts_with("mod tests")) {
        Some(n) => code.lines().take(n).collect::<Vec<_>>().join("\n"),
        None => code,
    };
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let preceded_by_ident = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !preceded_by_ident && rest.starts_with("crate::server::") {
            collect(&rest["crate::server::".len()..], nodes, &mut found);
            i += "crate::server::".len();
        } else if !preceded_by_ident && rest.starts_with("super::") {
            let mut ups = 0;
            let mut tail = rest;
            while let Some(t) = tail.strip_prefix("super::") {
                ups += 1;
                tail = t;
            }
            if ups == depth {
                collect(tail, nodes, &mut found);
            } else if ups < depth {
                // Inside this file's own folder: the node itself.
                found.insert(own.clone());
            }
            i += rest.len() - tail.len();
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// Reads the path (or `{…}` group of paths) after `server::` and records the node each one names.
fn collect(tail: &str, nodes: &BTreeSet<String>, found: &mut BTreeSet<String>) {
    let tail = tail.trim_start();
    if let Some(group) = tail.strip_prefix('{') {
        // Top-level items of the group: split at commas outside nested braces.
        let mut depth = 0usize;
        let mut start = 0;
        for (at, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    record(&group[start..at], nodes, found);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    record(&group[start..at], nodes, found);
                    start = at + 1;
                }
                _ => {}
            }
        }
    } else {
        record(tail, nodes, found);
    }
}

fn record(item: &str, nodes: &BTreeSet<String>, found: &mut BTreeSet<String>) {
    let name: String = item.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    match name.as_str() {
        "" if item.trim_start().starts_with('*') => {
            found.insert(ROOT.to_owned());
        }
        "" => {}
        // `super::*` or `super::{self}`: the root itself.
        "self" => {
            found.insert(ROOT.to_owned());
        }
        n if nodes.contains(n) && n != ROOT => {
            found.insert(n.to_owned());
        }
        _ => {
            found.insert(ROOT.to_owned());
        }
    }
}

/// The source without comments and without the contents of string and character literals (so that a
/// `"*/*"` or a `"skill://"` cannot open a comment). Raw strings are not recognised: one holding a quote
/// would throw the reading off until its end.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |n| &after[n..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |n| &after[n + 2..]);
        } else if c == '"' {
            out.push_str("\"\"");
            rest = skip_literal(&rest[1..], '"');
        } else if let Some(after) =
            rest.strip_prefix('\'').filter(|a| a.starts_with('\\') || a.chars().nth(1) == Some('\''))
        {
            // A character literal (a lifetime has no closing quote after one character).
            out.push_str("' '");
            rest = skip_literal(after, '\'');
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// What follows a literal whose opening quote was just read (escapes skipped).
fn skip_literal(mut rest: &str, quote: char) -> &str {
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == '\\' {
            let skipped = rest.chars().next().map_or(0, char::len_utf8);
            rest = &rest[skipped..];
        } else if c == quote {
            break;
        }
    }
    rest
}

/// One cycle of the graph, as a path that ends where it starts, if there is any.
fn find_cycle(nodes: &BTreeSet<String>, edges: &BTreeMap<(String, String), BTreeSet<String>>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from.as_str()).or_default().push(to.as_str());
    }
    // Depth-first search; 1 = on the current path, 2 = done.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    for start in nodes {
        let mut path: Vec<&str> = Vec::new();
        if let Some(cycle) = visit(start, &next, &mut mark, &mut path) {
            return Some(cycle);
        }
    }
    None
}

fn visit<'a>(
    node: &'a str,
    next: &BTreeMap<&'a str, Vec<&'a str>>,
    mark: &mut BTreeMap<&'a str, u8>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<String>> {
    match mark.get(node) {
        Some(2) => return None,
        Some(_) => {
            let from = path.iter().position(|n| *n == node).expect("on the path");
            let mut cycle: Vec<String> = path[from..].iter().map(|n| (*n).to_owned()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        None => {}
    }
    mark.insert(node, 1);
    path.push(node);
    for to in next.get(node).into_iter().flatten() {
        if let Some(cycle) = visit(to, next, mark, path) {
            return Some(cycle);
        }
    }
    path.pop();
    mark.insert(node, 2);
    None
}
