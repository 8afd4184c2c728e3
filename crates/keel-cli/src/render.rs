//! The text format: results as people read them. Stable line shapes (golden-tested), so scripts that grep
//! them keep working; `--format json` is the format for programs.

use std::fmt::Write;

use serde_json::Value;

/// A JSON scalar without quotes; anything else as compact JSON.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// `name  description` per item, then `next cursor: …` when the page is not the last.
pub fn listing(out: &mut String, items: &[Value], key: &str, next_cursor: Option<&str>) {
    let width = items.iter().filter_map(|i| str_field(i, key)).map(str::len).max().unwrap_or(0);
    for item in items {
        let name = str_field(item, key).unwrap_or("?");
        match str_field(item, "description").map(first_line) {
            Some(d) if !d.is_empty() => {
                let _ = writeln!(out, "{name:width$}  {d}");
            }
            _ => {
                let _ = writeln!(out, "{name}");
            }
        }
    }
    if let Some(cursor) = next_cursor {
        let _ = writeln!(out, "next cursor: {cursor}");
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Content blocks: text as is, other kinds as one descriptive line.
pub fn content(out: &mut String, blocks: &[Value]) {
    for block in blocks {
        match str_field(block, "type").unwrap_or("") {
            "text" => line(out, str_field(block, "text").unwrap_or("")),
            "image" | "audio" => {
                let kind = str_field(block, "type").unwrap_or("");
                let mime = str_field(block, "mimeType").unwrap_or("?");
                let size = str_field(block, "data").map_or(0, |d| d.len() * 3 / 4);
                let _ = writeln!(out, "[{kind} {mime}, about {size} bytes]");
            }
            "resource_link" => {
                let _ = writeln!(out, "[link {}]", str_field(block, "uri").unwrap_or("?"));
            }
            "resource" => match block.get("resource") {
                Some(r) => resource_contents(out, r),
                None => line(out, &block.to_string()),
            },
            _ => line(out, &block.to_string()),
        }
    }
}

/// One item of `resources/read` contents.
pub fn resource_contents(out: &mut String, contents: &Value) {
    let uri = str_field(contents, "uri").unwrap_or("?");
    let mime = str_field(contents, "mimeType").map(|m| format!(" ({m})")).unwrap_or_default();
    let _ = writeln!(out, "[resource {uri}{mime}]");
    if let Some(text) = str_field(contents, "text") {
        line(out, text);
    } else if let Some(blob) = str_field(contents, "blob") {
        let _ = writeln!(out, "[blob, about {} bytes]", blob.len() * 3 / 4);
    }
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}

/// A JSON value pretty-printed, newline-terminated.
pub fn pretty(out: &mut String, value: &Value) {
    line(out, &serde_json::to_string_pretty(value).unwrap_or_default());
}
