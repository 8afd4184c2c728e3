//! Progress: `notifications/progress`, sent by whoever handles a request whose `_meta` carried a
//! `progressToken`.

use serde::{Deserialize, Serialize};

use super::wire_number;
use super::{JsonObject, ProgressToken};

/// `notifications/progress` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressParams {
    /// The token from the request's `_meta`.
    pub progress_token: ProgressToken,
    /// Progress so far; must increase with every notification.
    #[serde(serialize_with = "wire_number::serialize")]
    pub progress: f64,
    /// The total, if known.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "wire_number::serialize_option")]
    pub total: Option<f64>,
    /// A human-readable status (2025-03-26+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `_meta`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl ProgressParams {
    /// Progress `progress` of `total` under `token`.
    pub fn new(token: ProgressToken, progress: f64, total: Option<f64>) -> Self {
        ProgressParams { progress_token: token, progress, total, message: None, meta: None }
    }
}

super::method::notification!(ProgressParams, "notifications/progress");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_progress_is_written_as_an_integer() {
        let p = ProgressParams::new("t".into(), 50.0, Some(100.0));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"progressToken":"t","progress":50,"total":100}"#);
    }
}
