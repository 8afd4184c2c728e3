//! The standard and custom request headers of the 2026-07-28 HTTP binding (SEP-2243): `Mcp-Method`,
//! `Mcp-Name`, and `Mcp-Param-*` mirrors of tool arguments whose input-schema property is annotated with
//! `x-mcp-header`. Pure functions: value encoding, the Base64 sentinel, and validation of annotations.

use base64::Engine as _;
use serde_json::Value;

/// The largest integer a header may mirror (JSON's exact-integer range).
const MAX_SAFE_INTEGER: i128 = (1 << 53) - 1;

/// One mirrored argument: where it sits in `arguments` and the header suffix it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderParam {
    /// Property names from the arguments object down to the value.
    pub path: Vec<String>,
    /// The `x-mcp-header` value; the header is `Mcp-Param-<name>`.
    pub name: String,
}

/// Why a tool's `x-mcp-header` annotations are unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeaderAnnotation {
    /// Empty, or not an HTTP token.
    #[error("x-mcp-header {0:?} is not a valid header name token")]
    NotToken(String),
    /// Two annotations name the same header (case-insensitively).
    #[error("x-mcp-header {0:?} is declared twice")]
    Duplicate(String),
    /// The annotated property is not a string, integer or boolean.
    #[error("x-mcp-header {0:?} sits on a property that is not a string, integer or boolean")]
    NotPrimitive(String),
    /// The annotation is not reachable through `properties` alone.
    #[error("x-mcp-header at {0} is not reachable through properties alone")]
    Unreachable(String),
}

/// Encodes a header value: as-is when it is printable ASCII without leading or trailing whitespace and does
/// not itself look like the sentinel; otherwise `=?base64?<Base64 of the UTF-8 bytes>?=`.
pub fn encode_text(value: &str) -> String {
    let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    let plain = printable && !padded && !looks_encoded;
    if plain {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// The header form of an argument value; `None` for null (the header is omitted) and for values that cannot
/// be mirrored (objects, arrays, integers beyond ±(2^53−1)).
pub fn encode_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(encode_text(s)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (i128::from(i).abs() <= MAX_SAFE_INTEGER).then(|| i.to_string())
            } else if n.as_u64().is_some() {
                None
            } else {
                Some(n.to_string())
            }
        }
        _ => None,
    }
}

/// The `Mcp-Param-*` headers for `arguments` of a tool whose annotations are `params`.
pub fn param_headers(
    params: &[HeaderParam],
    arguments: Option<&serde_json::Map<String, Value>>,
) -> Vec<(String, String)> {
    let Some(arguments) = arguments else { return Vec::new() };
    let mut out = Vec::new();
    for param in params {
        let mut value = None;
        let mut object = Some(arguments);
        for (i, key) in param.path.iter().enumerate() {
            let Some(v) = object.and_then(|o| o.get(key)) else { break };
            if i + 1 == param.path.len() {
                value = Some(v);
            } else {
                object = v.as_object();
            }
        }
        if let Some(encoded) = value.and_then(encode_value) {
            out.push((format!("Mcp-Param-{}", param.name), encoded));
        }
    }
    out
}

/// Whether `name` is an HTTP token (RFC 9110 `tchar`s, at least one).
pub fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads and validates every `x-mcp-header` annotation of a tool's input schema.
pub fn header_params(
    input_schema: &serde_json::Map<String, Value>,
) -> Result<Vec<HeaderParam>, InvalidHeaderAnnotation> {
    let mut found = Vec::new();
    walk(input_schema, &mut Vec::new(), true, &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for param in &found {
        if !seen.insert(param.name.to_ascii_lowercase()) {
            return Err(InvalidHeaderAnnotation::Duplicate(param.name.clone()));
        }
    }
    Ok(found)
}

/// Visits every schema object. `reachable` says whether the path so far went through `properties` only;
/// `path` holds the property names along it.
fn walk(
    schema: &serde_json::Map<String, Value>,
    path: &mut Vec<String>,
    reachable: bool,
    found: &mut Vec<HeaderParam>,
) -> Result<(), InvalidHeaderAnnotation> {
    if let Some(annotation) = schema.get("x-mcp-header") {
        if !reachable || path.is_empty() {
            return Err(InvalidHeaderAnnotation::Unreachable(format!("/{}", path.join("/"))));
        }
        let name = annotation.as_str().unwrap_or_default().to_owned();
        if !is_token(&name) {
            return Err(InvalidHeaderAnnotation::NotToken(name));
        }
        let primitive = matches!(schema.get("type").and_then(Value::as_str), Some("string" | "integer" | "boolean"));
        if !primitive {
            return Err(InvalidHeaderAnnotation::NotPrimitive(name));
        }
        found.push(HeaderParam { path: path.clone(), name });
    }
    for (key, value) in schema {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => {
                for (name, sub) in props {
                    if let Value::Object(sub) = sub {
                        path.push(name.clone());
                        walk(sub, path, reachable, found)?;
                        path.pop();
                    }
                }
            }
            // `const`, `default`, `enum` and `examples` hold data, not schemas.
            ("const" | "default" | "enum" | "examples", _) => {}
            (_, Value::Object(sub)) => walk(sub, path, false, found)?,
            (_, Value::Array(items)) => {
                for item in items {
                    if let Value::Object(sub) = item {
                        walk(sub, path, false, found)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn value_encoding() {
        assert_eq!(encode_value(&json!("us-west1")).unwrap(), "us-west1");
        assert_eq!(encode_value(&json!("us west 1")).unwrap(), "us west 1");
        assert_eq!(encode_value(&json!("")).unwrap(), "");
        assert_eq!(encode_value(&json!(42)).unwrap(), "42");
        assert_eq!(encode_value(&json!(false)).unwrap(), "false");
        assert_eq!(encode_value(&json!(null)), None);
        assert_eq!(encode_value(&json!(9007199254740992_i64)), None);
        assert_eq!(encode_value(&json!(" padded ")).unwrap(), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encode_value(&json!("Hello, 世界")).unwrap(), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encode_value(&json!("line1\nline2")).unwrap(), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(encode_value(&json!("\tindented")).unwrap(), "=?base64?CWluZGVudGVk?=");
        // A value that looks like the sentinel is wrapped so the server cannot misread it.
        assert!(encode_value(&json!("=?base64?abc?=")).unwrap().starts_with("=?base64?PT9i"));
    }

    #[test]
    fn annotations_are_read_and_mirrored() {
        let s = schema(json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "v": {"type": "boolean", "x-mcp-header": "Verbose"},
            "query": {"type": "string"}
        }}));
        let params = header_params(&s).unwrap();
        assert_eq!(params.len(), 3);
        let args = json!({"region": "eu", "n": 3, "v": null, "query": "x"});
        let mut headers = param_headers(&params, args.as_object());
        headers.sort();
        assert_eq!(headers, vec![("Mcp-Param-N".into(), "3".into()), ("Mcp-Param-Region".into(), "eu".into())]);
    }

    #[test]
    fn invalid_annotations_are_rejected() {
        let bad = [
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "has space"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "a:b"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "Région"}}}),
            json!({"properties": {"a": {"type": "object", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "array", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "null", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"a": {"anyOf": [{"type": "string", "x-mcp-header": "A"}]}}}),
            json!({"properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}}}),
        ];
        for b in bad {
            assert!(header_params(&schema(b.clone())).is_err(), "{b}");
        }
    }
}
