//! A Server-Sent Events decoder (the `text/event-stream` format of the HTML standard), fed with byte
//! chunks as they arrive. Pure: no IO. Used for POST response streams, the legacy GET stream and the
//! 2024-11-05 HTTP+SSE transport.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `event:` (empty means `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id in force when this event was dispatched (`id:` persists across events).
    pub id: Option<String>,
}

/// Decodes a byte stream into events, bounding the size of a single event.
#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: String,
    last_id: Option<String>,
    retry: Option<u64>,
    max_event_bytes: usize,
    /// The previous chunk ended with `\r`; a leading `\n` in the next one belongs to it.
    after_cr: bool,
}

/// The stream broke the bound on one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event exceeds {0} bytes")]
pub struct EventTooLarge(pub usize);

impl SseDecoder {
    /// A decoder that refuses events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            event: String::new(),
            last_id: None,
            retry: None,
            max_event_bytes,
            after_cr: false,
        }
    }

    /// The last `id:` seen (the value to send as `Last-Event-ID` when resuming).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The last `retry:` seen, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        let mut events = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.process_line(&line)? {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() + self.data.len() >= self.max_event_bytes {
                        return Err(EventTooLarge(self.max_event_bytes));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(events)
    }

    fn process_line(&mut self, line: &[u8]) -> Result<Option<Event>, EventTooLarge> {
        match line.first() {
            None => return Ok(self.dispatch()),
            Some(b':') => return Ok(None), // comment (keep-alive)
            Some(_) => {}
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                // The raw bytes were bounded as they came, but each invalid UTF-8 byte became a
                // three-byte U+FFFD: bound what is kept, not only what arrived.
                if self.data.len() > self.max_event_bytes {
                    return Err(EventTooLarge(self.max_event_bytes));
                }
            }
            "event" => self.event = value.to_owned(),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(Event { event, data: std::mem::take(&mut self.data), id: self.last_id.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut SseDecoder, input: &str) -> Vec<Event> {
        decoder.feed(input.as_bytes()).unwrap()
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let mut d = SseDecoder::new(1024);
        let events = all(&mut d, ": keep-alive\nevent: message\nid: 7\ndata: {\"a\":\ndata:1}\n\ndata: x\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], Event { event: "message".into(), data: "{\"a\":\n1}".into(), id: Some("7".into()) });
        // The id persists; the event type does not.
        assert_eq!(events[1], Event { event: String::new(), data: "x".into(), id: Some("7".into()) });
    }

    #[test]
    fn priming_event_and_retry() {
        let mut d = SseDecoder::new(1024);
        let events = all(&mut d, "id: event-1\nretry: 500\ndata: \n\n");
        assert_eq!(events, vec![Event { event: String::new(), data: String::new(), id: Some("event-1".into()) }]);
        assert_eq!(d.retry(), Some(500));
        assert_eq!(d.last_event_id(), Some("event-1"));
        all(&mut d, "retry: soon\n\n");
        assert_eq!(d.retry(), Some(500));
    }

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut d = SseDecoder::new(1024);
        assert!(all(&mut d, "da").is_empty());
        assert!(all(&mut d, "ta: hel").is_empty());
        assert!(all(&mut d, "lo\r").is_empty());
        let events = all(&mut d, "\n\r\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "hello");
        // An id-only block dispatches nothing but still sets the id.
        assert!(all(&mut d, "id: 9\n\n").is_empty());
        assert_eq!(d.last_event_id(), Some("9"));
        // A field without a colon is a field with an empty value.
        let events = all(&mut d, "data\n\n");
        assert_eq!(events[0].data, "");
    }

    #[test]
    fn oversized_events_fail() {
        let mut d = SseDecoder::new(8);
        assert!(d.feed(b"data: 0123456789\n\n").is_err());
    }

    #[test]
    fn invalid_utf8_cannot_grow_an_event_past_the_bound() {
        // 400 invalid bytes are 400 bytes on the wire but 1,200 once each becomes U+FFFD.
        let mut stream = b"data: ".to_vec();
        stream.extend([0xff; 400]);
        stream.extend(b"\n\n");
        let mut d = SseDecoder::new(1024);
        assert_eq!(d.feed(&stream), Err(EventTooLarge(1024)));
        let mut d = SseDecoder::new(1024);
        let events = d.feed(b"data: \xff\xff\n\n").unwrap();
        assert_eq!(events[0].data, "\u{fffd}\u{fffd}");
    }
}
