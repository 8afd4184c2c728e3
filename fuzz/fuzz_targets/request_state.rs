//! `requestState` as a client sends it back (attacker-controlled): opening anything never panics and never
//! accepts a token the server did not seal; what the server seals opens to the same state, and only for the
//! call it was sealed for. Input: `token`, read as `method \n target \n arguments JSON \n state` for the
//! round trip.
#![no_main]

use keel_mcp::fuzzing::RequestState;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sealer = RequestState::with_key([7; 32]);
    assert!(sealer.open("tools/call", "echo", None, text).is_err(), "an unsealed token was accepted");

    let mut parts = text.splitn(4, '\n');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let arguments = parts.next().and_then(|a| serde_json::from_str::<&RawValue>(a).ok());
    let state = parts.next().map(str::to_owned);
    let token = sealer.seal(method, target, arguments, state.clone());
    assert_eq!(sealer.open(method, target, arguments, &token).ok(), Some(state), "a sealed state did not open");
    if !target.is_empty() {
        assert!(sealer.open(method, "", arguments, &token).is_err(), "a state opened for another target");
    }
    if arguments.is_some() {
        assert!(sealer.open(method, target, None, &token).is_err(), "a state opened without its arguments");
    }
    assert!(RequestState::with_key([8; 32]).open(method, target, arguments, &token).is_err(), "another key opened it");
});
