//! The JSON-RPC 2.0 envelope: ids, error objects, and the split between reading the envelope and reading
//! the payload.
//!
//! Incoming bytes are decoded once into a [`Message`] whose `params` / `result` stay as raw JSON
//! ([`RawValue`]). Code that knows the method (dispatch) or the pending request (the engine) then decodes
//! the payload straight into its concrete type. Nothing here guesses a type from the shape of a value.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// The only JSON-RPC version MCP speaks.
pub const JSONRPC_VERSION: &str = "2.0";

/// A JSON-RPC request id: a string or an integer (MCP forbids `null` ids on requests).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(Arc<str>),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Number(n)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId::String(s.into())
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId::String(s.into())
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestId::Number(n) => s.serialize_i64(*n),
            RequestId::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = RequestId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or integer request id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                Ok(RequestId::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                i64::try_from(v).map(RequestId::Number).map_err(|_| E::custom("request id out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                Ok(RequestId::String(v.into()))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// Standard and MCP-specific JSON-RPC error codes.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Resource not found, as 2025-11-25 and earlier servers report it (2026-07-28 uses `INVALID_PARAMS`).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// 2025-11-25: the request needs a URL-mode elicitation first.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// 2026-07-28: an HTTP header disagrees with the body, or is missing or malformed.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability the client did not declare.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error code (see [`code`]).
    pub code: i64,
    /// A short description.
    pub message: Cow<'static, str>,
    /// Additional information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl ErrorObject {
    /// An error with a code and a message.
    pub fn new(code: i64, message: impl Into<Cow<'static, str>>) -> Self {
        ErrorObject { code, message: message.into(), data: None }
    }

    /// Attaches `data`.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700.
    pub fn parse_error(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::PARSE_ERROR, message)
    }

    /// -32600.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INVALID_REQUEST, message)
    }

    /// -32601 for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(code::METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    /// -32602.
    pub fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// -32603.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// A request whose params are still raw JSON.
#[derive(Debug)]
pub struct RawRequest {
    /// The request id.
    pub id: RequestId,
    /// The method name.
    pub method: String,
    /// The params, undecoded.
    pub params: Option<Box<RawValue>>,
}

/// A notification whose params are still raw JSON.
#[derive(Clone, Debug)]
pub struct RawNotification {
    /// The method name.
    pub method: String,
    /// The params, undecoded.
    pub params: Option<Box<RawValue>>,
}

/// A response whose result is still raw JSON.
#[derive(Debug)]
pub struct RawResponse {
    /// The id of the request this answers.
    pub id: RequestId,
    /// The raw result, or the error.
    pub outcome: Result<Box<RawValue>, ErrorObject>,
}

/// One decoded JSON-RPC message (payload still raw).
#[derive(Debug)]
pub enum Message {
    /// A request (has `id` and `method`).
    Request(RawRequest),
    /// A notification (has `method`, no `id`).
    Notification(RawNotification),
    /// A response (has `id` and `result` or `error`).
    Response(RawResponse),
}

impl Message {
    /// The method name of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

/// Why an incoming message could not be decoded, and what to answer.
#[derive(Debug)]
pub struct DecodeError {
    /// The id, when it could be read (the error response must echo it).
    pub id: Option<RequestId>,
    /// The error to send back (-32700 or -32600).
    pub error: ErrorObject,
    /// Whether a reply should be sent at all: JSON-RPC answers nothing to a malformed response.
    pub reply: bool,
}

/// The envelope of one message, read in a single pass. Only a JSON object is an envelope: serde's derived
/// struct decoding also takes an array by field position, which JSON-RPC does not allow.
#[derive(Default)]
struct Envelope<'a> {
    jsonrpc: Option<Cow<'a, str>>,
    /// `Some("null")` when the id is present and null: a request must not have one, an error response may.
    id: Option<&'a RawValue>,
    method: Option<Cow<'a, str>>,
    params: Option<Box<RawValue>>,
    result: Option<Box<RawValue>>,
    error: Option<ErrorObject>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'a>, A::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
            match slot.replace(value) {
                None => Ok(()),
                Some(_) => Err(E::duplicate_field(name)),
            }
        }
        fn once_some<T, E: de::Error>(slot: &mut Option<T>, value: Option<T>, name: &'static str) -> Result<(), E> {
            value.map_or(Ok(()), |value| once(slot, value, name))
        }
        let mut env = Envelope::default();
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Jsonrpc => once(&mut env.jsonrpc, map.next_value::<BorrowedText<'a>>()?.0, "jsonrpc")?,
                Field::Id => once(&mut env.id, map.next_value()?, "id")?,
                Field::Method => once(&mut env.method, map.next_value::<BorrowedText<'a>>()?.0, "method")?,
                // A null member reads as absent, as it always has.
                Field::Params => once_some(&mut env.params, map.next_value()?, "params")?,
                Field::Result => once_some(&mut env.result, map.next_value()?, "result")?,
                Field::Error => once_some(&mut env.error, map.next_value()?, "error")?,
                Field::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

/// An envelope member name.
enum Field {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "jsonrpc" => Field::Jsonrpc,
                    "id" => Field::Id,
                    "method" => Field::Method,
                    "params" => Field::Params,
                    "result" => Field::Result,
                    "error" => Field::Error,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// A string borrowed from the input when it has no escapes, owned otherwise.
struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = BorrowedText<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<BorrowedText<'a>, E> {
                Ok(BorrowedText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BorrowedText<'a>, E> {
                Ok(BorrowedText(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

impl Message {
    /// Decodes one JSON-RPC message from `bytes`, reading the envelope only.
    ///
    /// Batches (JSON arrays, allowed by 2025-03-26 only) are reported as an invalid request here; see
    /// [`is_batch`].
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let env: Envelope<'_> = match serde_json::from_slice(bytes) {
            Ok(env) => env,
            Err(e) if e.is_syntax() || e.is_eof() => {
                return Err(DecodeError {
                    id: None,
                    error: ErrorObject::parse_error(format!("parse error: {e}")),
                    reply: true,
                });
            }
            Err(e) => {
                return Err(DecodeError {
                    id: None,
                    error: ErrorObject::invalid_request(format!("invalid JSON-RPC message: {e}")),
                    reply: true,
                });
            }
        };
        let null_id = env.id.is_some_and(|raw| raw.get() == "null");
        let id = match env.id {
            None => None,
            Some(_) if null_id => None,
            Some(raw) => match serde_json::from_str::<RequestId>(raw.get()) {
                Ok(id) => Some(id),
                Err(_) => {
                    return Err(invalid(None, "id must be a string or an integer", env.method.is_some()));
                }
            },
        };
        if env.jsonrpc.as_deref() != Some(JSONRPC_VERSION) {
            return Err(invalid(id, "jsonrpc must be \"2.0\"", env.method.is_some()));
        }
        match (env.method, id) {
            (Some(method), Some(id)) => {
                if env.result.is_some() || env.error.is_some() {
                    return Err(invalid(Some(id), "a request carries no result or error", true));
                }
                Ok(Message::Request(RawRequest { id, method: method.into_owned(), params: env.params }))
            }
            // JSON-RPC: a request's id is never null, and a notification has no id member at all.
            (Some(_), None) if null_id => Err(invalid(None, "a request id must not be null", true)),
            (Some(method), None) => {
                if env.result.is_some() || env.error.is_some() {
                    return Err(invalid(None, "a notification carries no result or error", true));
                }
                Ok(Message::Notification(RawNotification { method: method.into_owned(), params: env.params }))
            }
            (None, Some(id)) => match (env.result, env.error) {
                (Some(result), None) => Ok(Message::Response(RawResponse { id, outcome: Ok(result) })),
                (None, Some(error)) => Ok(Message::Response(RawResponse { id, outcome: Err(error) })),
                _ => Err(invalid(Some(id), "a response carries exactly one of result and error", false)),
            },
            (None, None) => match env.error {
                // An error response to a message whose id could not be read (e.g. our parse error).
                Some(error) => Err(DecodeError { id: None, error, reply: false }),
                None => Err(invalid(None, "message has neither method nor id", true)),
            },
        }
    }
}

fn invalid(id: Option<RequestId>, message: &'static str, reply: bool) -> DecodeError {
    DecodeError { id, error: ErrorObject::invalid_request(message), reply }
}

/// Whether `bytes` hold a JSON-RPC batch (a JSON array), which only 2025-03-26 allowed.
pub fn is_batch(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

#[derive(Serialize)]
struct OutRequest<'a, P: ?Sized> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    method: &'a str,
    params: &'a P,
}

#[derive(Serialize)]
struct OutNotification<'a, P: ?Sized> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a P>,
}

#[derive(Serialize)]
struct OutResult<'a, R: ?Sized> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    result: &'a R,
}

#[derive(Serialize)]
struct OutError<'a> {
    jsonrpc: &'static str,
    // The MCP schemas (2025-11-25 on) make the id optional and never null: omit it when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RequestId>,
    error: &'a ErrorObject,
}

/// Encodes a request.
pub fn encode_request<P: Serialize + ?Sized>(id: &RequestId, method: &str, params: &P) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&OutRequest { jsonrpc: JSONRPC_VERSION, id, method, params })
}

/// Encodes a notification (`params` omitted when `None`).
pub fn encode_notification<P: Serialize + ?Sized>(method: &str, params: Option<&P>) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&OutNotification { jsonrpc: JSONRPC_VERSION, method, params })
}

/// Encodes a successful response.
pub fn encode_result<R: Serialize + ?Sized>(id: &RequestId, result: &R) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&OutResult { jsonrpc: JSONRPC_VERSION, id, result })
}

/// Encodes the answer to request `id`: its raw result, or its error.
pub fn encode_answer(id: &RequestId, answer: &Result<Box<RawValue>, ErrorObject>) -> Vec<u8> {
    match answer {
        Ok(result) => encode_result(id, result).expect("raw results encode"),
        Err(error) => encode_error(Some(id), error),
    }
}

/// Encodes an error response; `id` is `None` (omitted) when the request's id could not be read.
pub fn encode_error(id: Option<&RequestId>, error: &ErrorObject) -> Vec<u8> {
    serde_json::to_vec(&OutError { jsonrpc: JSONRPC_VERSION, id, error }).expect("error objects always encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<Message, DecodeError> {
        Message::decode(s.as_bytes())
    }

    #[test]
    fn request_keeps_params_raw() {
        let m = decode(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}"#).unwrap();
        let Message::Request(r) = m else { panic!("not a request") };
        assert_eq!(r.id, RequestId::Number(7));
        assert_eq!(r.method, "tools/call");
        assert_eq!(r.params.unwrap().get(), r#"{"name":"x"}"#);
    }

    #[test]
    fn string_ids_and_escaped_methods() {
        let m = decode(r#"{"jsonrpc":"2.0","id":"a\"b","method":"to\u006fls/list"}"#).unwrap();
        let Message::Request(r) = m else { panic!() };
        assert_eq!(r.id, RequestId::from("a\"b"));
        assert_eq!(r.method, "tools/list");
        assert!(r.params.is_none());
    }

    #[test]
    fn notification_and_responses() {
        assert!(matches!(
            decode(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        let Ok(Message::Response(r)) = decode(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#) else { panic!() };
        assert!(r.outcome.is_ok());
        let Ok(Message::Response(r)) = decode(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#)
        else {
            panic!()
        };
        assert_eq!(r.outcome.unwrap_err().code, code::METHOD_NOT_FOUND);
    }

    #[test]
    fn malformed_input_maps_to_the_right_codes() {
        let e = decode("{not json").unwrap_err();
        assert_eq!(e.error.code, code::PARSE_ERROR);
        assert!(e.id.is_none());
        let e = decode(r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#).unwrap_err();
        assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, Some(RequestId::Number(3))));
        let e = decode(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#).unwrap_err();
        assert_eq!(e.error.code, code::INVALID_REQUEST);
        let e = decode(r#"{"jsonrpc":"2.0"}"#).unwrap_err();
        assert_eq!(e.error.code, code::INVALID_REQUEST);
        let e = decode(r#"[1,2]"#).unwrap_err();
        assert_eq!(e.error.code, code::INVALID_REQUEST);
        assert!(is_batch(b"  [{}]"));
        let e = decode(r#"{"jsonrpc":"2.0","id":1,"method":7}"#).unwrap_err();
        assert_eq!(e.error.code, code::INVALID_REQUEST);
    }

    #[test]
    fn positional_arrays_and_null_request_ids_are_invalid_requests() {
        // Derived struct decoding would read this as jsonrpc, id, method by position.
        let e = decode(r#"["2.0",1,"ping"]"#).unwrap_err();
        assert_eq!((e.error.code, e.reply), (code::INVALID_REQUEST, true));
        let e = decode(r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#).unwrap_err();
        assert_eq!((e.error.code, e.id, e.reply), (code::INVALID_REQUEST, None, true));
        // An error response may carry a null id (the answer to something whose id was unreadable).
        let e = decode(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#).unwrap_err();
        assert!(!e.reply);
        let e = decode(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#).unwrap_err();
        assert_eq!(e.error.code, code::INVALID_REQUEST);
        let Ok(Message::Request(r)) = decode(r#"{"params":null,"method":"m","x":[1,{}],"id":"i","jsonrpc":"2.0"}"#)
        else {
            panic!("members in any order, unknown ones skipped")
        };
        assert!(r.params.is_none());
        assert!(matches!(decode(r#"{"jsonrpc":"2.0","method":"n","error":null}"#), Ok(Message::Notification(_))));
    }

    #[test]
    fn encoders_produce_valid_envelopes() {
        let id = RequestId::Number(1);
        let v: serde_json::Value =
            serde_json::from_slice(&encode_request(&id, "ping", &serde_json::json!({})).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"jsonrpc":"2.0","id":1,"method":"ping","params":{}}));
        let v: serde_json::Value =
            serde_json::from_slice(&encode_error(None, &ErrorObject::parse_error("bad"))).unwrap();
        assert_eq!(v, serde_json::json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"bad"}}));
        let n = encode_notification::<()>("notifications/initialized", None).unwrap();
        assert_eq!(n, br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }
}
