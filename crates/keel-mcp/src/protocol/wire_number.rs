//! How `f64` fields are written: integral values as JSON integers, others as floats.
//!
//! Progress counters, priorities and schema bounds are numbers in MCP. Peers mostly send integers (`50`),
//! and writing them back as `50.0` would change the bytes a peer signed, cached or compared. Reading is
//! plain `f64` deserialization, which already accepts both forms.

use serde::Serializer;

/// The largest integer an `f64` holds exactly (2^53).
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Writes `value` as an integer when it has no fractional part and fits exactly, else as a float.
pub(crate) fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    let v = *value;
    if v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT_LIMIT {
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

/// [`serialize`] for an optional field (used with `skip_serializing_if = "Option::is_none"`).
pub(crate) fn serialize_option<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serialize(v, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct N(#[serde(serialize_with = "super::serialize")] f64);

    #[test]
    fn integral_values_stay_integers() {
        assert_eq!(serde_json::to_string(&N(50.0)).unwrap(), "50");
        assert_eq!(serde_json::to_string(&N(-3.0)).unwrap(), "-3");
        assert_eq!(serde_json::to_string(&N(0.5)).unwrap(), "0.5");
        assert_eq!(serde_json::to_string(&N(1e300)).unwrap(), "1e+300");
    }
}
