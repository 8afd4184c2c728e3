//! The client's Server-Sent Events decoder, fed the same stream whole and in pieces: the split points must not
//! change the events, and no event may exceed the bound.
#![no_main]

use keel_mcp::client::http::sse::{Event, SseDecoder};
use libfuzzer_sys::fuzz_target;

const MAX_EVENT: usize = 1024;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size of the second pass.
    let Some((&step, stream)) = data.split_first() else { return };
    let whole = decode(stream, stream.len().max(1));
    let pieces = decode(stream, usize::from(step % 16) + 1);
    assert_eq!(whole, pieces, "chunk boundaries changed the events");
});

fn decode(stream: &[u8], chunk: usize) -> (Vec<Event>, bool, Option<String>, Option<u64>) {
    let mut decoder = SseDecoder::new(MAX_EVENT);
    let mut events = Vec::new();
    for piece in stream.chunks(chunk) {
        match decoder.feed(piece) {
            Ok(new) => events.extend(new),
            // Where the bound breaks, events completed in earlier pieces differ from those of one whole
            // chunk; that both passes fail is what must agree.
            Err(_) => return (Vec::new(), true, None, None),
        }
    }
    for event in &events {
        assert!(event.data.len() <= MAX_EVENT, "an event beyond the bound was dispatched");
    }
    (events, false, decoder.last_event_id().map(str::to_owned), decoder.retry())
}
