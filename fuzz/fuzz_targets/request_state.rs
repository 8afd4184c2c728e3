//! `requestState` as a client sends it back (attacker-controlled): opening anything never panics and never
//! accepts a token the server did not seal; what the server seals opens to the same state. Input: `token` or
//! `method \n target \n state` for the round trip.
#![no_main]

use keel_mcp::fuzzing::RequestState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sealer = RequestState::with_key([7; 32]);
    assert!(sealer.open("tools/call", "echo", text).is_err(), "an unsealed token was accepted");

    let mut parts = text.splitn(3, '\n');
    let (method, target, state) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next());
    let token = sealer.seal(method, target, state.map(str::to_owned));
    assert_eq!(sealer.open(method, target, &token).ok(), Some(state.map(str::to_owned)), "a sealed state did not open");
    if !target.is_empty() {
        assert!(sealer.open(method, "", &token).is_err(), "a state opened for another target");
    }
    assert!(RequestState::with_key([8; 32]).open(method, target, &token).is_err(), "another key opened it");
});
