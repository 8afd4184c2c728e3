//! RFC 6570 URI templates, read backwards: does a URI match a template, and with which variable values?
//!
//! Supported expressions: `{var}` (one path-safe value), `{+var}` and `{#var}` (reserved expansion: any
//! characters), `{/var}` (a `/`-prefixed segment), `{.var}` (a `.`-prefixed label), and `{?a,b}` /
//! `{&a,b}` (query parameters, each optional). That covers the templates MCP servers publish.

use std::collections::BTreeMap;

/// A parsed URI template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Expr { op: Op, vars: Vec<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Simple,
    Reserved,
    Fragment,
    Path,
    Label,
    Query,
    QueryContinuation,
}

/// Why a template could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid URI template {:?}: {}", self.template, self.reason)
    }
}

impl std::error::Error for TemplateError {}

impl UriTemplate {
    /// Parses `template`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let err = |reason| TemplateError { template: template.to_owned(), reason };
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| err("unclosed '{'"))?;
                    let body = &rest[1..end];
                    let (op, names) = match body.chars().next() {
                        Some('+') => (Op::Reserved, &body[1..]),
                        Some('#') => (Op::Fragment, &body[1..]),
                        Some('/') => (Op::Path, &body[1..]),
                        Some('.') => (Op::Label, &body[1..]),
                        Some('?') => (Op::Query, &body[1..]),
                        Some('&') => (Op::QueryContinuation, &body[1..]),
                        _ => (Op::Simple, body),
                    };
                    let vars: Vec<String> = names.split(',').map(|v| v.trim_end_matches('*').to_owned()).collect();
                    if vars.iter().any(|v| v.is_empty() || v.contains(['{', '}'])) {
                        return Err(err("empty or malformed variable name"));
                    }
                    parts.push(Part::Expr { op, vars });
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Literal(rest[..i].to_owned()));
                    rest = &rest[i..];
                }
                None => {
                    if rest.contains('}') {
                        return Err(err("unmatched '}'"));
                    }
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(UriTemplate { source: template.to_owned(), parts })
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().flat_map(|p| match p {
            Part::Expr { vars, .. } => vars.iter().map(String::as_str).collect::<Vec<_>>(),
            Part::Literal(_) => Vec::new(),
        })
    }

    /// The variable values when `uri` matches, `None` otherwise.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        match_parts(&self.parts, uri, &mut vars).then_some(vars)
    }
}

fn match_parts(parts: &[Part], input: &str, vars: &mut BTreeMap<String, String>) -> bool {
    let Some((first, rest)) = parts.split_first() else { return input.is_empty() };
    match first {
        Part::Literal(lit) => input.strip_prefix(lit.as_str()).is_some_and(|tail| match_parts(rest, tail, vars)),
        Part::Expr { op: Op::Query | Op::QueryContinuation, vars: names } => {
            // Query parameters run to the end of the URI or to a fragment.
            let lead = if matches!(first, Part::Expr { op: Op::Query, .. }) { '?' } else { '&' };
            let Some(query) = input.strip_prefix(lead) else { return match_parts(rest, input, vars) };
            let end = query.find('#').unwrap_or(query.len());
            for pair in query[..end].split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if names.iter().any(|n| n == k) {
                    vars.insert(k.to_owned(), percent_decode(v));
                }
            }
            match_parts(rest, &query[end..], vars)
        }
        Part::Expr { op, vars: names } => {
            let (prefix, stop): (&str, &[char]) = match op {
                Op::Simple => ("", &['/', '?', '#']),
                Op::Reserved => ("", &[]),
                Op::Fragment => ("#", &[]),
                Op::Path => ("/", &['/', '?', '#']),
                Op::Label => (".", &['/', '?', '#', '.']),
                Op::Query | Op::QueryContinuation => unreachable!(),
            };
            let Some(input) = input.strip_prefix(prefix) else { return false };
            let limit = input.find(stop).unwrap_or(input.len());
            // Longest value first, backing off until the rest of the template matches.
            for end in (1..=limit).rev() {
                if !input.is_char_boundary(end) {
                    continue;
                }
                let mut attempt = vars.clone();
                let values: Vec<&str> =
                    if names.len() > 1 { input[..end].split(',').collect() } else { vec![&input[..end]] };
                if values.len() != names.len() {
                    continue;
                }
                for (name, value) in names.iter().zip(values) {
                    attempt.insert(name.clone(), percent_decode(value));
                }
                if match_parts(rest, &input[end..], &mut attempt) {
                    *vars = attempt;
                    return true;
                }
            }
            false
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(template: &str, uri: &str) -> Option<Vec<(String, String)>> {
        UriTemplate::parse(template).unwrap().matches(uri).map(|v| v.into_iter().collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
    }

    #[test]
    fn simple_variables() {
        assert_eq!(m("test://template/{id}/data", "test://template/123/data"), pairs(&[("id", "123")]));
        assert_eq!(m("test://template/{id}/data", "test://template/1/2/data"), None);
        assert_eq!(m("test://template/{id}/data", "test://template//data"), None);
        assert_eq!(m("file:///{dir}/{name}.txt", "file:///docs/a.b.txt"), pairs(&[("dir", "docs"), ("name", "a.b")]));
        assert_eq!(m("x://{a}", "x://caf%C3%A9"), pairs(&[("a", "café")]));
    }

    #[test]
    fn operators() {
        assert_eq!(m("file:///{+path}", "file:///a/b/c.txt"), pairs(&[("path", "a/b/c.txt")]));
        assert_eq!(m("x://h{/seg}", "x://h/one"), pairs(&[("seg", "one")]));
        assert_eq!(m("x://h/s{?q,lang}", "x://h/s?q=rust&lang=en"), pairs(&[("lang", "en"), ("q", "rust")]));
        assert_eq!(m("x://h/s{?q}", "x://h/s"), pairs(&[]));
        assert_eq!(m("x://{a,b}", "x://1,2"), pairs(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn parse_errors_and_variables() {
        assert!(UriTemplate::parse("x://{open").is_err());
        assert!(UriTemplate::parse("x://}").is_err());
        assert!(UriTemplate::parse("x://{}").is_err());
        let t = UriTemplate::parse("a/{x}/{+y}{?z}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["x", "y", "z"]);
    }
}
