//! `Mcp-Param-*` headers (SEP-2243): what the client encodes the server decodes back unchanged, and checking
//! arbitrary headers against arbitrary declarations and arguments never panics. Input: `value \n schema JSON
//! \n arguments JSON \n name: raw header value` lines.
#![no_main]

use keel_mcp::client::http::headers::encode_text;
use keel_mcp::fuzzing::{check_mcp_params, decode_mcp_param};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let value = lines.next().unwrap_or_default();
    assert_eq!(
        decode_mcp_param(&encode_text(value)).as_deref(),
        Some(value),
        "the header round trip changed the value"
    );
    let _ = decode_mcp_param(value);

    let schema = object(lines.next());
    let arguments = object(lines.next());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, raw)| (name.trim().to_owned(), raw.to_owned()))
        .collect();
    if let Some(schema) = &schema {
        let _ = check_mcp_params(schema, arguments.as_ref(), &headers);
    }
});

fn object(line: Option<&str>) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_str(line?) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}
