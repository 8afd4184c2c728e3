//! Elicitation: `elicitation/create`, by which a server asks the user for input, either through a form
//! the client renders from a restricted JSON Schema (2025-06-18+) or by sending the user to a URL
//! (2025-11-25+), and `notifications/elicitation/complete` (2025-11-25 only).
//!
//! A legacy-era server sends `elicitation/create` as a request; a modern-era server embeds it in an
//! input-required result (see [`super::mrtr`]).
//!
//! Form fields are typed ([`PrimitiveSchema`]) but never lossy: a field is read into a typed variant only
//! when writing that variant back reproduces the field exactly; anything else (an unknown keyword, a future
//! field type) is kept as JSON in [`PrimitiveSchema::Other`]. Fields keep their wire order, which is the
//! order a client shows them in.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::meta::RequestMeta;
use super::method::{mcp_result, notification, request};
use super::tasks::legacy::TaskMetadata;
use super::wire_number;
use super::{JsonObject, ResultType};

/// How the user is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitMode {
    /// The client renders a form from `requestedSchema` (the default when `mode` is absent).
    Form,
    /// The client sends the user to `url`; nothing passes through the client (2025-11-25+).
    Url,
}

/// `elicitation/create` params, in either mode.
///
/// One flat type reads every revision: `mode` is absent in 2025-06-18 and optional for forms afterwards,
/// and is kept as read. Use [`ElicitParams::kind`] for a checked view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitParams {
    /// The mode, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ElicitMode>,
    /// What to tell the user.
    pub message: String,
    /// Form mode: the fields to ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_schema: Option<RequestedSchema>,
    /// URL mode: where to send the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL mode, 2025-11-25: the id `notifications/elicitation/complete` will name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation_id: Option<String>,
    /// 2025-11-25 experimental tasks: run as a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskMetadata>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RequestMeta>,
}

/// A checked view of [`ElicitParams`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ElicitKind<'a> {
    /// Form mode.
    Form(&'a RequestedSchema),
    /// URL mode.
    Url {
        /// Where to send the user.
        url: &'a str,
        /// The elicitation id (2025-11-25).
        elicitation_id: Option<&'a str>,
    },
}

impl ElicitParams {
    /// A form-mode request (`mode` set explicitly).
    pub fn form(message: impl Into<String>, schema: RequestedSchema) -> Self {
        ElicitParams {
            mode: Some(ElicitMode::Form),
            message: message.into(),
            requested_schema: Some(schema),
            url: None,
            elicitation_id: None,
            task: None,
            meta: None,
        }
    }

    /// A URL-mode request.
    pub fn url(message: impl Into<String>, url: impl Into<String>, elicitation_id: Option<String>) -> Self {
        ElicitParams {
            mode: Some(ElicitMode::Url),
            message: message.into(),
            requested_schema: None,
            url: Some(url.into()),
            elicitation_id,
            task: None,
            meta: None,
        }
    }

    /// The effective mode (absent means form).
    pub fn effective_mode(&self) -> ElicitMode {
        self.mode.unwrap_or(ElicitMode::Form)
    }

    /// The request's mode with the fields that mode requires, or `None` when they are missing.
    pub fn kind(&self) -> Option<ElicitKind<'_>> {
        match self.effective_mode() {
            ElicitMode::Form => self.requested_schema.as_ref().map(ElicitKind::Form),
            ElicitMode::Url => {
                self.url.as_deref().map(|url| ElicitKind::Url { url, elicitation_id: self.elicitation_id.as_deref() })
            }
        }
    }
}

/// The JSON Schema `type` keyword, as form schemas use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaType {
    /// `"object"` (the form itself).
    Object,
    /// `"string"`.
    String,
    /// `"number"`.
    Number,
    /// `"integer"`.
    Integer,
    /// `"boolean"`.
    Boolean,
    /// `"array"` (multi-select).
    Array,
}

/// The fields of a form, in wire order.
pub type FormProperties = Vec<(String, PrimitiveSchema)>;

/// A form: a flat object schema whose properties are primitive fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestedSchema {
    /// `$schema`, when the server names a dialect.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Always `object`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// The fields, in order.
    #[serde(with = "ordered_properties")]
    pub properties: FormProperties,
    /// The names of the required fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
}

impl RequestedSchema {
    /// A form with `properties`, of which `required` must be filled.
    pub fn new(properties: FormProperties, required: &[&str]) -> Self {
        RequestedSchema {
            schema: None,
            schema_type: SchemaType::Object,
            properties,
            required: (!required.is_empty()).then(|| required.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// The field called `name`.
    pub fn property(&self, name: &str) -> Option<&PrimitiveSchema> {
        self.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether field `name` must be filled.
    pub fn is_required(&self, name: &str) -> bool {
        self.required.as_ref().is_some_and(|r| r.iter().any(|n| n == name))
    }

    /// Every field's default (SEP-1034), in field order.
    pub fn defaults(&self) -> Vec<(&str, ElicitValue)> {
        self.properties.iter().filter_map(|(k, v)| Some((k.as_str(), v.default_value()?))).collect()
    }

    /// Fills the fields the user left out with their defaults, as a client should before accepting.
    pub fn apply_defaults(&self, content: &mut BTreeMap<String, ElicitValue>) {
        for (name, value) in self.defaults() {
            content.entry(name.to_owned()).or_insert(value);
        }
    }

    /// The required fields `content` does not fill.
    pub fn missing_required<'a>(&'a self, content: &BTreeMap<String, ElicitValue>) -> Vec<&'a str> {
        let required = self.required.as_deref().unwrap_or_default();
        required.iter().filter(|n| !content.contains_key(n.as_str())).map(String::as_str).collect()
    }
}

/// Reads and writes form properties as a JSON object, keeping their order.
mod ordered_properties {
    use super::*;

    pub(super) fn serialize<S: Serializer>(props: &FormProperties, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(props.len()))?;
        for (k, v) in props {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FormProperties, D::Error> {
        struct PropsVisitor;
        impl<'de> Visitor<'de> for PropsVisitor {
            type Value = FormProperties;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of field schemas")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FormProperties, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, PrimitiveSchema>()? {
                    out.push((k, v));
                }
                Ok(out)
            }
        }
        d.deserialize_map(PropsVisitor)
    }
}

/// One form field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PrimitiveSchema {
    /// A free-text field.
    String(StringSchema),
    /// A number or integer field.
    Number(NumberSchema),
    /// A checkbox.
    Boolean(BooleanSchema),
    /// Choose one of `enum` (SEP-1330).
    UntitledSingleSelect(UntitledSingleSelectEnumSchema),
    /// Choose one of `oneOf`, each with a title (SEP-1330).
    TitledSingleSelect(TitledSingleSelectEnumSchema),
    /// Choose several of `items.enum` (SEP-1330).
    UntitledMultiSelect(UntitledMultiSelectEnumSchema),
    /// Choose several of `items.anyOf`, each with a title (SEP-1330).
    TitledMultiSelect(TitledMultiSelectEnumSchema),
    /// Choose one of `enum` with display names in the legacy `enumNames` (2025-06-18).
    LegacyTitledEnum(LegacyTitledEnumSchema),
    /// Any other field, kept verbatim.
    Other(JsonObject),
}

impl PrimitiveSchema {
    /// Reads a field from its JSON object: dispatch on `type` and the keys that tell the enum forms apart,
    /// then keep the typed form only if it writes back identically.
    // `inline` makes this compiled only where it is called (a client decoding schemas): as an ordinary
    // function it, and a `Value` codec for every schema type, would be compiled into every server too.
    #[inline]
    pub fn from_object(object: JsonObject) -> Self {
        let has = |k: &str| object.contains_key(k);
        let items = object.get("items").and_then(Value::as_object);
        let items_has = |k: &str| items.is_some_and(|i| i.contains_key(k));
        let shape = match object.get("type").and_then(Value::as_str) {
            Some("string") if has("oneOf") => Shape::TitledSingleSelect,
            Some("string") if has("enumNames") => Shape::LegacyTitledEnum,
            Some("string") if has("enum") => Shape::UntitledSingleSelect,
            Some("string") => Shape::String,
            Some("number" | "integer") => Shape::Number,
            Some("boolean") => Shape::Boolean,
            Some("array") if items_has("anyOf") => Shape::TitledMultiSelect,
            Some("array") if items_has("enum") => Shape::UntitledMultiSelect,
            _ => Shape::Unknown,
        };
        let value = Value::Object(object);
        let typed = match shape {
            Shape::TitledSingleSelect => exact(&value).map(Self::TitledSingleSelect),
            Shape::LegacyTitledEnum => exact(&value).map(Self::LegacyTitledEnum),
            Shape::UntitledSingleSelect => exact(&value).map(Self::UntitledSingleSelect),
            Shape::String => exact(&value).map(Self::String),
            Shape::Number => exact(&value).map(Self::Number),
            Shape::Boolean => exact(&value).map(Self::Boolean),
            Shape::TitledMultiSelect => exact(&value).map(Self::TitledMultiSelect),
            Shape::UntitledMultiSelect => exact(&value).map(Self::UntitledMultiSelect),
            Shape::Unknown => None,
        };
        match (typed, value) {
            (Some(t), _) => t,
            (None, Value::Object(object)) => Self::Other(object),
            (None, _) => unreachable!("built from an object"),
        }
    }

    /// The field's display title.
    pub fn title(&self) -> Option<&str> {
        match self {
            Self::String(s) => s.title.as_deref(),
            Self::Number(s) => s.title.as_deref(),
            Self::Boolean(s) => s.title.as_deref(),
            Self::UntitledSingleSelect(s) => s.title.as_deref(),
            Self::TitledSingleSelect(s) => s.title.as_deref(),
            Self::UntitledMultiSelect(s) => s.title.as_deref(),
            Self::TitledMultiSelect(s) => s.title.as_deref(),
            Self::LegacyTitledEnum(s) => s.title.as_deref(),
            Self::Other(o) => o.get("title").and_then(Value::as_str),
        }
    }

    /// The field's description.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::String(s) => s.description.as_deref(),
            Self::Number(s) => s.description.as_deref(),
            Self::Boolean(s) => s.description.as_deref(),
            Self::UntitledSingleSelect(s) => s.description.as_deref(),
            Self::TitledSingleSelect(s) => s.description.as_deref(),
            Self::UntitledMultiSelect(s) => s.description.as_deref(),
            Self::TitledMultiSelect(s) => s.description.as_deref(),
            Self::LegacyTitledEnum(s) => s.description.as_deref(),
            Self::Other(o) => o.get("description").and_then(Value::as_str),
        }
    }

    /// The field's default value (SEP-1034), typed as the answer would be.
    pub fn default_value(&self) -> Option<ElicitValue> {
        match self {
            Self::String(s) => s.default.clone().map(ElicitValue::String),
            Self::Number(s) => s.default.map(|d| match s.schema_type {
                SchemaType::Integer if d.fract() == 0.0 && d.abs() < 9.0e15 => ElicitValue::Integer(d as i64),
                _ => ElicitValue::Number(d),
            }),
            Self::Boolean(s) => s.default.map(ElicitValue::Boolean),
            Self::UntitledSingleSelect(s) => s.default.clone().map(ElicitValue::String),
            Self::TitledSingleSelect(s) => s.default.clone().map(ElicitValue::String),
            Self::LegacyTitledEnum(s) => s.default.clone().map(ElicitValue::String),
            Self::UntitledMultiSelect(s) => s.default.clone().map(ElicitValue::StringList),
            Self::TitledMultiSelect(s) => s.default.clone().map(ElicitValue::StringList),
            Self::Other(o) => o.get("default").and_then(|v| ElicitValue::deserialize(v).ok()),
        }
    }
}

/// Which typed form a field's keys point to.
enum Shape {
    String,
    Number,
    Boolean,
    UntitledSingleSelect,
    TitledSingleSelect,
    UntitledMultiSelect,
    TitledMultiSelect,
    LegacyTitledEnum,
    Unknown,
}

/// Decodes `value` as `T` only if `T` writes it back unchanged.
fn exact<T: DeserializeOwned + Serialize>(value: &Value) -> Option<T> {
    let typed = T::deserialize(value).ok()?;
    (serde_json::to_value(&typed).ok()? == *value).then_some(typed)
}

impl<'de> Deserialize<'de> for PrimitiveSchema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        JsonObject::deserialize(d).map(Self::from_object)
    }
}

/// `format` of a string field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StringFormat {
    /// An email address.
    Email,
    /// A URI.
    Uri,
    /// A calendar date.
    Date,
    /// A date and time.
    DateTime,
}

/// A free-text field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringSchema {
    /// Always `string`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Minimum length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Expected format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<StringFormat>,
    /// Default (2025-11-25+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl StringSchema {
    /// A plain string field.
    pub fn new() -> Self {
        StringSchema {
            schema_type: SchemaType::String,
            title: None,
            description: None,
            min_length: None,
            max_length: None,
            format: None,
            default: None,
        }
    }
}

impl Default for StringSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// A number (or, with `type: integer`, an integer) field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberSchema {
    /// `number` or `integer`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Minimum.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "wire_number::serialize_option")]
    pub minimum: Option<f64>,
    /// Maximum.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "wire_number::serialize_option")]
    pub maximum: Option<f64>,
    /// Default (2025-11-25+).
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "wire_number::serialize_option")]
    pub default: Option<f64>,
}

impl NumberSchema {
    /// A number field, or an integer field when `integer` is true.
    pub fn new(integer: bool) -> Self {
        NumberSchema {
            schema_type: if integer { SchemaType::Integer } else { SchemaType::Number },
            title: None,
            description: None,
            minimum: None,
            maximum: None,
            default: None,
        }
    }
}

/// A checkbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BooleanSchema {
    /// Always `boolean`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

impl BooleanSchema {
    /// A checkbox.
    pub fn new() -> Self {
        BooleanSchema { schema_type: SchemaType::Boolean, title: None, description: None, default: None }
    }
}

impl Default for BooleanSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// A choice with a value and a display title.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumOption {
    /// The value.
    #[serde(rename = "const")]
    pub value: String,
    /// What the user sees.
    pub title: String,
}

/// Choose one of `enum`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UntitledSingleSelectEnumSchema {
    /// Always `string`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The values.
    #[serde(rename = "enum")]
    pub values: Vec<String>,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Choose one of `oneOf`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitledSingleSelectEnumSchema {
    /// Always `string`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The choices.
    pub one_of: Vec<EnumOption>,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Choose one of `enum`, displayed by the parallel `enumNames` (deprecated form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyTitledEnumSchema {
    /// Always `string`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The values.
    #[serde(rename = "enum")]
    pub values: Vec<String>,
    /// Display names, parallel to `values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_names: Option<Vec<String>>,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// `items` of an untitled multi-select.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UntitledEnumItems {
    /// Always `string`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// The values.
    #[serde(rename = "enum")]
    pub values: Vec<String>,
}

/// `items` of a titled multi-select.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitledEnumItems {
    /// The choices.
    pub any_of: Vec<EnumOption>,
}

/// Choose several of `items.enum`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntitledMultiSelectEnumSchema {
    /// Always `array`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fewest choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// Most choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// The values.
    pub items: UntitledEnumItems,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<String>>,
}

/// Choose several of `items.anyOf`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitledMultiSelectEnumSchema {
    /// Always `array`.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fewest choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// Most choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// The choices.
    pub items: TitledEnumItems,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<String>>,
}

/// One answer in an accepted form: a string, integer, number, boolean or list of strings.
///
/// The JSON type decides the variant; integers stay integers.
#[derive(Clone, Debug, PartialEq)]
pub enum ElicitValue {
    /// A string (also a single-select choice).
    String(String),
    /// An integer.
    Integer(i64),
    /// A non-integral or out-of-range number.
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A multi-select answer.
    StringList(Vec<String>),
}

impl Serialize for ElicitValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ElicitValue::String(v) => s.serialize_str(v),
            ElicitValue::Integer(v) => s.serialize_i64(*v),
            ElicitValue::Number(v) => wire_number::serialize(v, s),
            ElicitValue::Boolean(v) => s.serialize_bool(*v),
            ElicitValue::StringList(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ElicitValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = ElicitValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or array of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ElicitValue, E> {
                Ok(ElicitValue::Boolean(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ElicitValue, E> {
                Ok(ElicitValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ElicitValue, E> {
                Ok(i64::try_from(v).map_or(ElicitValue::Number(v as f64), ElicitValue::Integer))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ElicitValue, E> {
                Ok(ElicitValue::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ElicitValue, E> {
                Ok(ElicitValue::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ElicitValue, E> {
                Ok(ElicitValue::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ElicitValue, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(ElicitValue::StringList)
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

impl From<&str> for ElicitValue {
    fn from(v: &str) -> Self {
        ElicitValue::String(v.to_owned())
    }
}

impl From<i64> for ElicitValue {
    fn from(v: i64) -> Self {
        ElicitValue::Integer(v)
    }
}

impl From<bool> for ElicitValue {
    fn from(v: bool) -> Self {
        ElicitValue::Boolean(v)
    }
}

/// What the user did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitAction {
    /// Submitted (form mode: with `content`; URL mode: consented to open the URL).
    Accept,
    /// Explicitly refused.
    Decline,
    /// Dismissed without choosing.
    Cancel,
}

/// `elicitation/create` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitResult {
    /// What the user did.
    pub action: ElicitAction,
    /// Form mode, on accept: the answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<BTreeMap<String, ElicitValue>>,
    /// `resultType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl ElicitResult {
    /// Accepted, with `content` (`None` for URL mode).
    pub fn accept(content: Option<BTreeMap<String, ElicitValue>>) -> Self {
        ElicitResult { action: ElicitAction::Accept, content, result_type: None, meta: None }
    }

    /// Declined.
    pub fn decline() -> Self {
        ElicitResult { action: ElicitAction::Decline, content: None, result_type: None, meta: None }
    }

    /// Cancelled.
    pub fn cancel() -> Self {
        ElicitResult { action: ElicitAction::Cancel, content: None, result_type: None, meta: None }
    }
}

/// `notifications/elicitation/complete` params (2025-11-25 only): a URL-mode elicitation finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitationCompleteParams {
    /// The `elicitationId` of the finished elicitation.
    pub elicitation_id: String,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// `data` of a 2025-11-25 `URLElicitationRequired` (-32042) error: the URL elicitations to complete first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UrlElicitationRequiredData {
    /// URL-mode elicitation params.
    pub elicitations: Vec<ElicitParams>,
}

request!(ElicitParams, "elicitation/create" => ElicitResult);
notification!(ElicitationCompleteParams, "notifications/elicitation/complete");
mcp_result!(ElicitResult);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(v: Value) -> PrimitiveSchema {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fields_are_typed_by_shape() {
        assert!(matches!(field(json!({"type": "string"})), PrimitiveSchema::String(_)));
        assert!(matches!(field(json!({"type": "integer", "default": 3})), PrimitiveSchema::Number(_)));
        assert!(matches!(field(json!({"type": "string", "enum": ["a"]})), PrimitiveSchema::UntitledSingleSelect(_)));
        assert!(matches!(
            field(json!({"type": "string", "enum": ["a"], "enumNames": ["A"]})),
            PrimitiveSchema::LegacyTitledEnum(_)
        ));
        assert!(matches!(
            field(json!({"type": "string", "oneOf": [{"const": "a", "title": "A"}]})),
            PrimitiveSchema::TitledSingleSelect(_)
        ));
        assert!(matches!(
            field(json!({"type": "array", "items": {"type": "string", "enum": ["a"]}})),
            PrimitiveSchema::UntitledMultiSelect(_)
        ));
        assert!(matches!(
            field(json!({"type": "array", "items": {"anyOf": [{"const": "a", "title": "A"}]}})),
            PrimitiveSchema::TitledMultiSelect(_)
        ));
    }

    #[test]
    fn unknown_keywords_fall_back_to_json_losslessly() {
        for v in [
            json!({"type": "string", "pattern": "^a"}),
            json!({"type": "string", "format": "ipv4"}),
            json!({"type": "object"}),
            json!({"anyOf": []}),
        ] {
            let f = field(v.clone());
            assert!(matches!(f, PrimitiveSchema::Other(_)), "{v}");
            assert_eq!(serde_json::to_value(&f).unwrap(), v);
        }
    }

    #[test]
    fn properties_keep_wire_order() {
        let text = r#"{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"boolean"}}}"#;
        let s: RequestedSchema = serde_json::from_str(text).unwrap();
        assert_eq!(s.properties[0].0, "z");
        assert_eq!(serde_json::to_string(&s).unwrap(), text);
    }

    #[test]
    fn defaults_fill_omitted_fields() {
        let schema: RequestedSchema = serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "status": {"type": "string", "enum": ["active", "inactive"], "default": "active"},
                "verified": {"type": "boolean", "default": true},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}, "default": ["x"]}
            },
            "required": ["name"]
        }))
        .unwrap();
        let mut content = BTreeMap::from([("name".to_owned(), ElicitValue::from("Ann"))]);
        schema.apply_defaults(&mut content);
        assert_eq!(
            serde_json::to_value(&content).unwrap(),
            json!({"name": "Ann", "age": 30, "score": 95.5, "status": "active", "verified": true, "tags": ["x"]})
        );
        assert!(schema.missing_required(&content).is_empty());
        assert_eq!(schema.missing_required(&BTreeMap::new()), vec!["name"]);
    }

    #[test]
    fn mode_and_kind() {
        let url = ElicitParams::url("go", "https://x.example/a", Some("e1".into()));
        assert_eq!(url.kind(), Some(ElicitKind::Url { url: "https://x.example/a", elicitation_id: Some("e1") }));
        let legacy: ElicitParams = serde_json::from_value(json!({
            "message": "m", "requestedSchema": {"type": "object", "properties": {}}
        }))
        .unwrap();
        assert_eq!(legacy.effective_mode(), ElicitMode::Form);
        assert!(matches!(legacy.kind(), Some(ElicitKind::Form(_))));
        let broken: ElicitParams = serde_json::from_value(json!({"mode": "url", "message": "m"})).unwrap();
        assert_eq!(broken.kind(), None);
    }

    #[test]
    fn answers_keep_their_json_type() {
        let v = json!({"a": "x", "b": 30, "c": 2.5, "d": false, "e": ["p", "q"]});
        let content: BTreeMap<String, ElicitValue> = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(content["b"], ElicitValue::Integer(30));
        assert_eq!(serde_json::to_value(&content).unwrap(), v);
        assert!(serde_json::from_value::<ElicitValue>(json!({"x": 1})).is_err());
    }
}
