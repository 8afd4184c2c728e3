//! A transport wrapper that delays, drops, reorders or truncates chosen frames, so that a test can drive
//! the retry, timeout and cancellation paths of a client or server.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;

use crate::transport::{FrameError, FrameReader, FrameWriter, Transport};

/// Which way a frame travels, seen from the side whose transport is wrapped (the client in a
/// [`TestPair`](super::TestPair)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Written by the wrapped side (client → server in a pair).
    Outgoing,
    /// Read by the wrapped side (server → client in a pair).
    Incoming,
}

/// What happens to a frame a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The frame never arrives.
    Drop,
    /// The frame arrives after this long (on tokio's clock; later frames wait behind it).
    Delay(Duration),
    /// Only the first this-many bytes arrive (the receiver sees malformed JSON).
    Truncate(usize),
    /// The frame arrives after the next one.
    Reorder,
}

/// A frame as a rule sees it.
#[derive(Debug)]
pub struct FrameInfo<'a> {
    direction: Direction,
    bytes: &'a [u8],
    method: Option<String>,
    is_response: bool,
}

impl FrameInfo<'_> {
    /// Which way the frame travels.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The frame's bytes (one JSON-RPC message).
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Whether the frame answers a request (a result or an error).
    pub fn is_response(&self) -> bool {
        self.is_response
    }
}

type Matcher = Box<dyn Fn(&FrameInfo<'_>) -> bool + Send + Sync>;

struct Rule {
    direction: Direction,
    matches: Matcher,
    fault: Fault,
    /// How many more frames the rule applies to (`None`: every one).
    remaining: Option<usize>,
}

/// The faults to inject: rules tried in order, the first that matches a frame decides its fate. Cheap to
/// clone; clones share the rules and their counts, so a test can keep a clone and add rules while the
/// connection runs (after the handshake, say).
///
/// ```
/// use std::time::Duration;
/// use keel_mcp::testing::{Direction, Fault, Faults};
///
/// let faults = Faults::new()
///     // The first tools/call the client sends is lost...
///     .inject_times(1, Direction::Outgoing, Faults::method("tools/call"), Fault::Drop)
///     // ...and every answer the client gets takes a second.
///     .inject(Direction::Incoming, |frame| frame.is_response(), Fault::Delay(Duration::from_secs(1)));
/// # let _ = faults;
/// ```
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list().entries(rules.iter().map(|r| (r.direction, r.fault, r.remaining))).finish()
    }
}

impl Faults {
    /// No faults: frames pass as they are.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Applies `fault` to every frame going `direction` that `matches`.
    pub fn inject(
        self,
        direction: Direction,
        matches: impl Fn(&FrameInfo<'_>) -> bool + Send + Sync + 'static,
        fault: Fault,
    ) -> Faults {
        self.push(Rule { direction, matches: Box::new(matches), fault, remaining: None })
    }

    /// Applies `fault` to the first `times` frames going `direction` that `matches`.
    pub fn inject_times(
        self,
        times: usize,
        direction: Direction,
        matches: impl Fn(&FrameInfo<'_>) -> bool + Send + Sync + 'static,
        fault: Fault,
    ) -> Faults {
        self.push(Rule { direction, matches: Box::new(matches), fault, remaining: Some(times) })
    }

    /// A matcher for the requests and notifications of `method`.
    pub fn method(method: &str) -> impl Fn(&FrameInfo<'_>) -> bool + Send + Sync + 'static {
        let method = method.to_owned();
        move |frame| frame.method() == Some(method.as_str())
    }

    fn push(self, rule: Rule) -> Faults {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner).push(rule);
        self
    }

    /// The fault for `frame`, counting it against its rule.
    fn decide(&self, direction: Direction, bytes: &[u8]) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        if rules.is_empty() {
            return None;
        }
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            method: Option<String>,
            #[serde(default)]
            result: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            error: Option<serde::de::IgnoredAny>,
        }
        let envelope = serde_json::from_slice::<Envelope>(bytes).ok();
        let info = FrameInfo {
            direction,
            bytes,
            is_response: envelope.as_ref().is_some_and(|e| e.result.is_some() || e.error.is_some()),
            method: envelope.and_then(|e| e.method),
        };
        let rule =
            rules.iter_mut().find(|r| r.direction == direction && r.remaining != Some(0) && (r.matches)(&info))?;
        if let Some(remaining) = &mut rule.remaining {
            *remaining -= 1;
        }
        Some(rule.fault)
    }
}

/// Wraps a transport and applies [`Faults`] to the frames it carries.
#[derive(Debug)]
pub struct FaultyTransport<T> {
    inner: T,
    faults: Faults,
}

impl<T: Transport> FaultyTransport<T> {
    /// `inner`, with `faults` applied.
    pub fn new(inner: T, faults: Faults) -> FaultyTransport<T> {
        FaultyTransport { inner, faults }
    }
}

impl<T: Transport> Transport for FaultyTransport<T> {
    type Reader = FaultyReader<T::Reader>;
    type Writer = FaultyWriter<T::Writer>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        let (reader, writer) = self.inner.split();
        (
            FaultyReader { inner: reader, faults: self.faults.clone(), held: None, ready: VecDeque::new() },
            FaultyWriter { inner: writer, faults: self.faults, held: None },
        )
    }
}

/// The reading half of a [`FaultyTransport`].
#[derive(Debug)]
pub struct FaultyReader<R> {
    inner: R,
    faults: Faults,
    /// A frame held back by [`Fault::Reorder`] until the next one has gone.
    held: Option<Vec<u8>>,
    ready: VecDeque<Vec<u8>>,
}

impl<R: FrameReader> FrameReader for FaultyReader<R> {
    async fn read_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(Ok(frame));
            }
            let mut frame = match self.inner.read_frame().await {
                Some(Ok(frame)) => frame,
                // The end of the stream releases a held frame first.
                None => return self.held.take().map(Ok),
                Some(Err(error)) => return Some(Err(error)),
            };
            match self.faults.decide(Direction::Incoming, &frame) {
                None => {}
                Some(Fault::Drop) => continue,
                Some(Fault::Delay(by)) => tokio::time::sleep(by).await,
                Some(Fault::Truncate(len)) => frame.truncate(len),
                Some(Fault::Reorder) if self.held.is_none() => {
                    self.held = Some(frame);
                    continue;
                }
                Some(Fault::Reorder) => {}
            }
            if let Some(held) = self.held.take() {
                self.ready.push_back(held);
            }
            return Some(Ok(frame));
        }
    }
}

/// The writing half of a [`FaultyTransport`].
#[derive(Debug)]
pub struct FaultyWriter<W> {
    inner: W,
    faults: Faults,
    /// A frame held back by [`Fault::Reorder`] until the next one has gone.
    held: Option<Vec<u8>>,
}

impl<W: FrameWriter> FrameWriter for FaultyWriter<W> {
    async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let mut frame = frame.to_vec();
        match self.faults.decide(Direction::Outgoing, &frame) {
            None => {}
            Some(Fault::Drop) => return Ok(()),
            Some(Fault::Delay(by)) => tokio::time::sleep(by).await,
            Some(Fault::Truncate(len)) => frame.truncate(len),
            Some(Fault::Reorder) if self.held.is_none() => {
                self.held = Some(frame);
                return Ok(());
            }
            Some(Fault::Reorder) => {}
        }
        self.inner.write_frame(&frame).await?;
        match self.held.take() {
            Some(held) => self.inner.write_frame(&held).await,
            None => Ok(()),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    async fn close(mut self) -> io::Result<()> {
        if let Some(held) = self.held.take() {
            self.inner.write_frame(&held).await?;
        }
        self.inner.close().await
    }
}
