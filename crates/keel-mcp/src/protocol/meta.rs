//! `_meta`: the reserved keys MCP defines, and typed views of the request / result / notification `_meta`
//! objects.
//!
//! In the modern era every request's `_meta` carries the protocol version, the client's capabilities and
//! (optionally) its identity and log level. [`RequestMeta`] reads those keys straight into their types in
//! one pass and keeps every other key as JSON.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::capabilities::ClientCapabilities;
use super::jsonrpc::RequestId;
use super::lifecycle::Implementation;
use super::logging::LoggingLevel;
use super::version::ProtocolVersion;
use super::{JsonObject, ProgressToken};

/// Reserved `_meta` keys.
pub mod keys {
    /// Request: the protocol version of this request (modern era, required).
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// Request: the client's capabilities for this request (modern era, required).
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// Request: the client's identity (modern era, recommended).
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// Request: the log level the client wants for this request (modern era, optional).
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// Result: the server's identity (modern era, recommended).
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    /// Notification: the `subscriptions/listen` request a notification was delivered for.
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
    /// Request: a progress token.
    pub const PROGRESS_TOKEN: &str = "progressToken";
    /// The task a message relates to (tasks extension).
    pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
}

/// The `_meta` object of a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestMeta {
    /// `progressToken`: the caller wants progress notifications under this token.
    pub progress_token: Option<ProgressToken>,
    /// `io.modelcontextprotocol/protocolVersion`.
    pub protocol_version: Option<ProtocolVersion>,
    /// `io.modelcontextprotocol/clientCapabilities`.
    pub client_capabilities: Option<ClientCapabilities>,
    /// `io.modelcontextprotocol/clientInfo`.
    pub client_info: Option<Implementation>,
    /// `io.modelcontextprotocol/logLevel`.
    pub log_level: Option<LoggingLevel>,
    /// Every other key, kept as JSON.
    pub other: JsonObject,
}

impl RequestMeta {
    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.progress_token.is_none()
            && self.protocol_version.is_none()
            && self.client_capabilities.is_none()
            && self.client_info.is_none()
            && self.log_level.is_none()
            && self.other.is_empty()
    }
}

impl Serialize for RequestMeta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(v) = &self.progress_token {
            map.serialize_entry(keys::PROGRESS_TOKEN, v)?;
        }
        if let Some(v) = &self.protocol_version {
            map.serialize_entry(keys::PROTOCOL_VERSION, v)?;
        }
        if let Some(v) = &self.client_info {
            map.serialize_entry(keys::CLIENT_INFO, v)?;
        }
        if let Some(v) = &self.client_capabilities {
            map.serialize_entry(keys::CLIENT_CAPABILITIES, v)?;
        }
        if let Some(v) = &self.log_level {
            map.serialize_entry(keys::LOG_LEVEL, v)?;
        }
        for (k, v) in &self.other {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RequestMeta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MetaVisitor;
        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = RequestMeta;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a _meta object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestMeta, A::Error> {
                let mut meta = RequestMeta::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        keys::PROGRESS_TOKEN => meta.progress_token = Some(map.next_value()?),
                        keys::PROTOCOL_VERSION => meta.protocol_version = Some(map.next_value()?),
                        keys::CLIENT_CAPABILITIES => meta.client_capabilities = Some(map.next_value()?),
                        keys::CLIENT_INFO => meta.client_info = Some(map.next_value()?),
                        keys::LOG_LEVEL => meta.log_level = Some(map.next_value()?),
                        _ => {
                            meta.other.insert(key.into_owned(), map.next_value()?);
                        }
                    }
                }
                Ok(meta)
            }
        }
        d.deserialize_map(MetaVisitor)
    }
}

/// Reads the subscription id a notification's `_meta` carries, if any.
pub fn subscription_id(meta: Option<&JsonObject>) -> Option<RequestId> {
    meta?.get(keys::SUBSCRIPTION_ID).and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys_into_types_and_keeps_the_rest() {
        let json = serde_json::json!({
            "progressToken": 5,
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
            "io.modelcontextprotocol/logLevel": "debug",
            "traceparent": "00-abc"
        });
        let meta: RequestMeta = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(meta.progress_token, Some(RequestId::Number(5)));
        assert_eq!(meta.protocol_version, Some(ProtocolVersion::V2026_07_28));
        assert!(meta.client_capabilities.as_ref().unwrap().sampling.is_some());
        assert_eq!(meta.log_level, Some(LoggingLevel::Debug));
        assert_eq!(meta.other.len(), 1);
        assert_eq!(serde_json::to_value(&meta).unwrap(), json);
    }
}
