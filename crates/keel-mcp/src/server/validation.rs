//! Schema validation of tool calls (feature `schema-validation`): arguments against the tool's input schema
//! (a failure is a tool error the model can fix, SEP-1303) and structured results against its output schema
//! (a failure is the server's bug, an internal error). Validators are compiled once, when the tool is
//! registered. Network `$ref`s are never fetched: the validator is built without a remote resolver.

use std::sync::Arc;

use crate::protocol::{ErrorObject, JsonObject};

/// The compiled schemas of one tool.
#[derive(Clone)]
pub(crate) struct ToolValidators {
    input: Option<Arc<jsonschema::Validator>>,
    output: Option<Arc<jsonschema::Validator>>,
}

impl std::fmt::Debug for ToolValidators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolValidators")
            .field("input", &self.input.is_some())
            .field("output", &self.output.is_some())
            .finish()
    }
}

fn compile(schema: &JsonObject) -> Option<Arc<jsonschema::Validator>> {
    let schema = serde_json::Value::Object(schema.clone());
    match jsonschema::validator_for(&schema) {
        Ok(validator) => Some(Arc::new(validator)),
        Err(e) => {
            tracing::warn!(error = %e, "a tool schema does not compile; it will not be validated");
            None
        }
    }
}

impl ToolValidators {
    pub(crate) fn new(input: &JsonObject, output: Option<&JsonObject>) -> Self {
        ToolValidators { input: compile(input), output: output.and_then(compile) }
    }

    /// Why `arguments` do not fit the input schema, if they do not.
    pub(crate) fn check_arguments(&self, arguments: &serde_json::Value) -> Option<String> {
        let validator = self.input.as_ref()?;
        let errors: Vec<String> =
            validator.iter_errors(arguments).take(5).map(|e| format!("{}: {e}", e.instance_path())).collect();
        (!errors.is_empty()).then(|| format!("invalid arguments: {}", errors.join("; ")))
    }

    /// Checks structured content against the output schema.
    pub(crate) fn check_output(&self, structured: Option<&serde_json::Value>) -> Result<(), ErrorObject> {
        let Some(validator) = &self.output else { return Ok(()) };
        let Some(value) = structured else {
            return Err(ErrorObject::internal("the tool declares an output schema but returned no structured content"));
        };
        match validator.validate(value) {
            Ok(()) => Ok(()),
            Err(e) => Err(ErrorObject::internal(format!(
                "the tool's structured content does not match its output schema: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn arguments_and_outputs_are_checked() {
        let input =
            obj(json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}));
        let output = obj(json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}));
        let v = ToolValidators::new(&input, Some(&output));
        assert!(v.check_arguments(&json!({"n": 3})).is_none());
        assert!(v.check_arguments(&json!({"n": -1})).unwrap().contains("/n"));
        assert!(v.check_arguments(&json!({})).is_some());
        assert!(v.check_output(Some(&json!({"ok": true}))).is_ok());
        assert_eq!(v.check_output(Some(&json!({"ok": 1}))).unwrap_err().code, -32603);
        assert!(v.check_output(None).is_err());
    }
}
