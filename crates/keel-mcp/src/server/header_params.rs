//! `x-mcp-header` (2026-07-28, SEP-2243): tool arguments a client mirrors into `Mcp-Param-{Name}` HTTP
//! headers so intermediaries can route on them. A server that reads the body must check the mirror: a
//! header that disagrees with the body, is missing while the body has the value, or cannot be decoded is a
//! `HeaderMismatch` (-32020).

use serde_json::Value;

use crate::protocol::jsonrpc::code;
use crate::protocol::{ErrorObject, JsonObject};

/// One argument a tool asks clients to mirror into a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderParam {
    /// The argument (a top-level property of the input schema).
    pub(crate) property: String,
    /// The header name, lowercase (`mcp-param-region`).
    pub(crate) header: String,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Boolean,
}

/// The header parameters an input schema declares. Declarations that are not usable (not a string, on a
/// non-primitive or `number` property) are skipped: clients drop such tools anyway.
pub(crate) fn declared(schema: &JsonObject) -> Vec<HeaderParam> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .filter_map(|(property, spec)| {
            let name = spec.get("x-mcp-header")?.as_str().filter(|n| !n.is_empty())?;
            let kind = match spec.get("type")?.as_str()? {
                "string" => Kind::String,
                "integer" => Kind::Integer,
                "boolean" => Kind::Boolean,
                _ => return None,
            };
            Some(HeaderParam {
                property: property.clone(),
                header: format!("mcp-param-{}", name.to_ascii_lowercase()),
                kind,
            })
        })
        .collect()
}

/// What the transport read from one `Mcp-Param-*` header: the decoded value, or `None` when it could not
/// be decoded (bad base64, bytes outside visible ASCII).
pub(crate) type HeaderValue = Option<String>;

/// Checks every declared parameter of a call against the headers that came with it.
pub(crate) fn check(
    params: &[HeaderParam],
    arguments: Option<&JsonObject>,
    headers: &[(String, HeaderValue)],
) -> Result<(), ErrorObject> {
    let mismatch = |what: String| Err(ErrorObject::new(code::HEADER_MISMATCH, what));
    for param in params {
        let body = arguments.and_then(|a| a.get(&param.property)).filter(|v| !v.is_null());
        let header = headers.iter().find(|(name, _)| *name == param.header).map(|(_, v)| v);
        match (body, header) {
            (None, None) => {}
            (Some(_), None) => {
                return mismatch(format!("missing header {} for argument {}", param.header, param.property));
            }
            (None, Some(_)) => {
                return mismatch(format!("header {} has no argument {} in the body", param.header, param.property));
            }
            (_, Some(None)) => return mismatch(format!("header {} is not a valid value", param.header)),
            (Some(body), Some(Some(value))) => {
                let agrees = match param.kind {
                    Kind::String => body.as_str() == Some(value.as_str()),
                    // Integers compare as numbers, so `007` and `7` agree.
                    Kind::Integer => value.trim().parse::<i64>().ok().is_some_and(|n| body.as_i64() == Some(n)),
                    Kind::Boolean => body.as_bool().is_some_and(|b| value == if b { "true" } else { "false" }),
                };
                if !agrees {
                    return mismatch(format!("header {} does not match argument {}", param.header, param.property));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonObject {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn declarations_and_checks() {
        let schema = obj(json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "priority": {"type": "integer", "x-mcp-header": "Priority"},
            "verbose": {"type": "boolean", "x-mcp-header": "Verbose"},
            "ratio": {"type": "number", "x-mcp-header": "Ratio"},
            "plain": {"type": "string"}
        }}));
        let params = declared(&schema);
        assert_eq!(
            params.iter().map(|p| p.header.as_str()).collect::<Vec<_>>(),
            ["mcp-param-priority", "mcp-param-region", "mcp-param-verbose"]
        );
        let args = obj(json!({"region": "us-east1", "priority": 7, "verbose": null}));
        let h = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, HeaderValue)> {
            pairs.iter().map(|(n, v)| (n.to_string(), v.map(str::to_owned))).collect()
        };
        assert!(
            check(
                &params,
                Some(&args),
                &h(&[("mcp-param-region", Some("us-east1")), ("mcp-param-priority", Some("007"))])
            )
            .is_ok()
        );
        // Missing while the body has it; wrong value; undecodable; present without a body value.
        assert!(check(&params, Some(&args), &h(&[("mcp-param-priority", Some("7"))])).is_err());
        assert!(
            check(&params, Some(&args), &h(&[("mcp-param-region", Some("eu")), ("mcp-param-priority", Some("7"))]))
                .is_err()
        );
        assert!(
            check(&params, Some(&args), &h(&[("mcp-param-region", None), ("mcp-param-priority", Some("7"))])).is_err()
        );
        let with_verbose = h(&[
            ("mcp-param-region", Some("us-east1")),
            ("mcp-param-priority", Some("7")),
            ("mcp-param-verbose", Some("true")),
        ]);
        assert!(check(&params, Some(&args), &with_verbose).is_err());
    }
}
