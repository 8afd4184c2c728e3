//! Multi round-trip requests (2026-07-28, SEP-2322): a server that needs input answers
//! `tools/call`, `prompts/get` or `resources/read` with an input-required result; the client fulfils the
//! input requests and retries the original request with `inputResponses` and the opaque `requestState`.
//!
//! An input request is an embedded `elicitation/create`, `sampling/createMessage` or `roots/list`
//! (`{method, params}`, no id). Its answer is decoded by the method of the request it answers
//! ([`InputRequest::decode_response`]), never by its shape.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::elicitation::{ElicitParams, ElicitResult};
use super::method::{Request, mcp_result};
use super::roots::{ListRootsParams, ListRootsResult};
use super::sampling::{CreateMessageParams, CreateMessageResult};
use super::{JsonObject, ResultType};

/// The client's answers, by the keys of the server's `inputRequests`. Each value is the result of the
/// embedded request (elicitation, sampling or roots); the server decodes each by the request it asked for.
pub type InputResponses = JsonObject;

/// The server's requests for input, by keys it chooses.
pub type InputRequests = BTreeMap<String, InputRequest>;

/// A request for input embedded in a result: `{method, params}`.
#[derive(Clone, Debug, PartialEq)]
pub enum InputRequest {
    /// `elicitation/create`.
    Elicit(ElicitParams),
    /// `sampling/createMessage`.
    CreateMessage(CreateMessageParams),
    /// `roots/list` (`params` may be absent, and stays absent).
    ListRoots(Option<ListRootsParams>),
    /// A method Keel does not know (an extension's), kept verbatim.
    Other {
        /// The method.
        method: String,
        /// The params, if any.
        params: Option<Value>,
    },
}

impl InputRequest {
    /// The method name.
    pub fn method(&self) -> &str {
        match self {
            InputRequest::Elicit(_) => ElicitParams::METHOD,
            InputRequest::CreateMessage(_) => CreateMessageParams::METHOD,
            InputRequest::ListRoots(_) => ListRootsParams::METHOD,
            InputRequest::Other { method, .. } => method,
        }
    }

    /// Decodes the client's answer to this request.
    pub fn decode_response(&self, value: &Value) -> Result<InputResponse, serde_json::Error> {
        Ok(match self {
            InputRequest::Elicit(_) => InputResponse::Elicit(ElicitResult::deserialize(value)?),
            InputRequest::CreateMessage(_) => InputResponse::CreateMessage(CreateMessageResult::deserialize(value)?),
            InputRequest::ListRoots(_) => InputResponse::ListRoots(ListRootsResult::deserialize(value)?),
            InputRequest::Other { .. } => InputResponse::Other(value.clone()),
        })
    }
}

impl Serialize for InputRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("method", self.method())?;
        match self {
            InputRequest::Elicit(p) => map.serialize_entry("params", p)?,
            InputRequest::CreateMessage(p) => map.serialize_entry("params", p)?,
            InputRequest::ListRoots(Some(p)) => map.serialize_entry("params", p)?,
            InputRequest::Other { params: Some(p), .. } => map.serialize_entry("params", p)?,
            InputRequest::ListRoots(None) | InputRequest::Other { params: None, .. } => {}
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for InputRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            method: String,
            #[serde(default)]
            params: Option<Value>,
        }
        let Wire { method, params } = Wire::deserialize(d)?;
        fn decode<T: serde::de::DeserializeOwned, E: serde::de::Error>(method: &str, p: Option<Value>) -> Result<T, E> {
            let p = p.ok_or_else(|| E::custom(format!("{method}: missing params")))?;
            T::deserialize(p).map_err(|e| E::custom(format!("{method}: {e}")))
        }
        Ok(match method.as_str() {
            ElicitParams::METHOD => InputRequest::Elicit(decode(&method, params)?),
            CreateMessageParams::METHOD => InputRequest::CreateMessage(decode(&method, params)?),
            ListRootsParams::METHOD => InputRequest::ListRoots(match params {
                None => None,
                p => Some(decode(&method, p)?),
            }),
            _ => InputRequest::Other { method, params },
        })
    }
}

/// A client's answer to one [`InputRequest`], decoded by that request's method.
#[derive(Clone, Debug, PartialEq)]
pub enum InputResponse {
    /// Answer to `elicitation/create`.
    Elicit(ElicitResult),
    /// Answer to `sampling/createMessage`.
    CreateMessage(CreateMessageResult),
    /// Answer to `roots/list`.
    ListRoots(ListRootsResult),
    /// Answer to an unknown method, kept verbatim.
    Other(Value),
}

impl InputResponse {
    /// The answer as JSON, for [`InputResponses`].
    pub fn to_value(&self) -> Value {
        let v = match self {
            InputResponse::Elicit(r) => serde_json::to_value(r),
            InputResponse::CreateMessage(r) => serde_json::to_value(r),
            InputResponse::ListRoots(r) => serde_json::to_value(r),
            InputResponse::Other(v) => return v.clone(),
        };
        v.expect("results encode as JSON")
    }
}

/// Decodes every answer in `responses` whose key names one of `requests`; unknown keys are skipped
/// (a server ignores answers it did not ask for). Fails on the first answer that does not fit its request.
pub fn decode_responses(
    requests: &InputRequests,
    responses: &InputResponses,
) -> Result<BTreeMap<String, InputResponse>, serde_json::Error> {
    let mut out = BTreeMap::new();
    for (key, value) in responses {
        if let Some(request) = requests.get(key) {
            let answer =
                request.decode_response(value).map_err(|e| serde_json::Error::custom(format!("{key}: {e}")))?;
            out.insert(key.clone(), answer);
        }
    }
    Ok(out)
}

/// A result that asks for input before the request can complete (`resultType: "input_required"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputRequiredResult {
    /// What the server needs, by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<InputRequests>,
    /// Opaque state the client echoes on retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
    /// `resultType` (`input_required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl InputRequiredResult {
    /// An input-required result (with `resultType` set) asking for `requests` and carrying `state`.
    pub fn new(requests: Option<InputRequests>, state: Option<String>) -> Self {
        InputRequiredResult {
            input_requests: requests,
            request_state: state,
            result_type: Some(ResultType::InputRequired),
            meta: None,
        }
    }
}

mcp_result!(InputRequiredResult);

/// Reads only the `resultType` of a raw result, so the caller can decode the result into the type that
/// value names (the request's result, [`InputRequiredResult`], or an extension's). Absent means `complete`.
pub fn peek_result_type(raw: &str) -> Result<ResultType, serde_json::Error> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "resultType", default)]
        result_type: Option<ResultType>,
    }
    Ok(serde_json::from_str::<Peek>(raw)?.result_type.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_decode_by_method() {
        let reqs: InputRequests = serde_json::from_value(json!({
            "a": {"method": "roots/list"},
            "b": {"method": "elicitation/create", "params": {"message": "m", "requestedSchema": {"type": "object", "properties": {}}}},
            "c": {"method": "x/custom", "params": {"k": 1}}
        }))
        .unwrap();
        assert_eq!(reqs["a"], InputRequest::ListRoots(None));
        assert!(matches!(reqs["b"], InputRequest::Elicit(_)));
        assert_eq!(reqs["c"].method(), "x/custom");
        assert_eq!(serde_json::to_value(&reqs["a"]).unwrap(), json!({"method": "roots/list"}));
        assert!(serde_json::from_value::<InputRequest>(json!({"method": "sampling/createMessage"})).is_err());
    }

    #[test]
    fn answers_decode_by_the_request_they_answer() {
        let reqs: InputRequests = serde_json::from_value(json!({"r": {"method": "roots/list", "params": {}}})).unwrap();
        let responses = json!({"r": {"roots": [{"uri": "file:///a"}]}, "stray": {"action": "accept"}});
        let decoded = decode_responses(&reqs, responses.as_object().unwrap()).unwrap();
        assert_eq!(decoded.len(), 1);
        let InputResponse::ListRoots(r) = &decoded["r"] else { panic!("not roots") };
        assert_eq!(r.roots[0].uri, "file:///a");
        assert_eq!(decoded["r"].to_value(), responses["r"]);
        let bad = json!({"r": {"action": "accept"}});
        assert!(decode_responses(&reqs, bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn result_type_peek() {
        assert_eq!(peek_result_type(r#"{"content":[]}"#).unwrap(), ResultType::Complete);
        assert_eq!(peek_result_type(r#"{"resultType":"input_required"}"#).unwrap(), ResultType::InputRequired);
        assert_eq!(peek_result_type(r#"{"resultType":"task","taskId":"t"}"#).unwrap(), ResultType::Task);
    }
}
