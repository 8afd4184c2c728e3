//! The HTTP load generator: N keep-alive HTTP/1.1 connections, each sending `tools/call` back to back (one request
//! in flight per connection) for a fixed time, recording every latency. Runs on a single-threaded runtime so it stays
//! on its own core.
//!
//! It speaks HTTP/1.1 itself over a raw `TcpStream` rather than through hyper's client: the request is built once per
//! connection with only the id's digits patched per call, and responses are parsed in place on reusable buffers. A
//! general-purpose client spent more CPU per request than the fastest servers, so the generator, not the server, set
//! the ceiling.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MODERN: &str = "2026-07-28";
pub const LEGACY: &str = "2025-11-25";

#[derive(Clone, Copy, PartialEq)]
pub enum Era {
    Modern,
    Legacy,
}

pub struct Stats {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// The `tools/call` body for an era.
pub fn call_body(era: Era, id: u64) -> Vec<u8> {
    let mut params = json!({"name": "add", "arguments": {"a": 1, "b": 2}});
    if era == Era::Modern {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        });
    }
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})).expect("json")
}

/// The JSON-RPC message in a body, whether sent as JSON or as SSE (the last `data:` line that parses).
pub fn message_of(body: &[u8]) -> anyhow::Result<Value> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)?;
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON-RPC message in body: {text:.200}"))
}

/// Asserts a `tools/call` answer is `sum = 3` (structured content), for request `id`.
pub fn check_sum(msg: &Value, id: u64) -> anyhow::Result<()> {
    let sum = msg["result"]["structuredContent"]["sum"].as_f64();
    anyhow::ensure!(msg["id"] == json!(id) && sum == Some(3.0), "wrong tools/call answer: {msg}");
    Ok(())
}

/// A whole HTTP/1.1 `POST /mcp` request with the MCP headers for `method` (and `Authorization: Bearer` when the
/// server is protected).
fn post(port: u16, version: &str, method: &str, session: Option<&str>, bearer: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: {version}\r\nmcp-method: {method}\r\n"
    );
    if method == "tools/call" {
        head.push_str("mcp-name: add\r\n");
    }
    if let Some(s) = session {
        head.push_str(&format!("mcp-session-id: {s}\r\n"));
    }
    if let Some(token) = bearer {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    request
}

/// Width of a call id: ten digits, enough for 10¹⁰ calls on one connection.
const ID_WIDTH: usize = 10;

/// A connection's `tools/call` request, built once: per call only its id changes, patched in place, so ids differ
/// per request without re-encoding anything. The id stays a JSON number (as most clients send) of fixed width by
/// padding it with leading spaces, which JSON allows before a value (`"id":        42`); leading zeros it does not.
struct CallRequest {
    bytes: Vec<u8>,
    /// Where the id's `ID_WIDTH` characters sit in `bytes`.
    id: Range<usize>,
}

impl CallRequest {
    fn new(port: u16, era: Era, session: Option<&str>, bearer: Option<&str>) -> CallRequest {
        let placeholder = 10u64.pow(ID_WIDTH as u32) - 1;
        let body = call_body(era, placeholder);
        let version = if era == Era::Modern { MODERN } else { LEGACY };
        let bytes = post(port, version, "tools/call", session, bearer, &body);
        let field = format!("\"id\":{placeholder}");
        let at = bytes.windows(field.len()).position(|w| w == field.as_bytes()).expect("id in the request");
        let end = at + field.len();
        CallRequest { bytes, id: end - ID_WIDTH..end }
    }

    /// Writes `n` into the id, right-aligned.
    fn set_id(&mut self, mut n: u64) -> anyhow::Result<()> {
        anyhow::ensure!(n > 0 && n < 10u64.pow(ID_WIDTH as u32), "call id {n} does not fit in {ID_WIDTH} digits");
        for place in self.bytes[self.id.clone()].iter_mut().rev() {
            *place = if n == 0 { b' ' } else { b'0' + (n % 10) as u8 };
            n /= 10;
        }
        Ok(())
    }
}

/// How a response's body is delimited.
#[derive(Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    /// No body: 1xx, 204 and 304 answers.
    Empty,
}

/// A parsed status line and headers: what the body reader needs, as offsets into the read buffer.
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    session: Option<Range<usize>>,
}

/// One response, borrowed from the connection's buffers until the next request.
struct Answer<'a> {
    status: u16,
    body: &'a [u8],
    session: Option<&'a str>,
}

/// One keep-alive connection and the buffers reused for every response on it.
struct Conn {
    stream: TcpStream,
    /// Bytes read from the socket; `buf[consumed..filled]` is not yet parsed.
    buf: Vec<u8>,
    consumed: usize,
    filled: usize,
    /// A chunked body, decoded.
    chunked: Vec<u8>,
}

impl Conn {
    async fn connect(port: u16) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: vec![0; 16 * 1024], consumed: 0, filled: 0, chunked: Vec::with_capacity(4096) })
    }

    /// Sends a request and reads its response.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<Answer<'_>> {
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    /// Reads more bytes after `filled`, growing the buffer when full; a closed connection is an error.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.filled..]).await?;
        anyhow::ensure!(
            n > 0,
            "server closed the connection ({} bytes of an unfinished response read)",
            self.filled - self.consumed
        );
        self.filled += n;
        Ok(())
    }

    /// Reads one response, however many reads it takes: head, then body by `Content-Length` or chunked encoding.
    async fn read_response(&mut self) -> anyhow::Result<Answer<'_>> {
        // Keep whatever followed the last response (nothing, as we never pipeline) at the front of the buffer.
        self.buf.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        let (at, head) = loop {
            match parse_head(&self.buf[self.consumed..self.filled])? {
                Some(head) if (100..200).contains(&head.status) => self.consumed += head.len,
                Some(head) => break (self.consumed, head),
                None => self.fill().await?,
            }
        };
        let start = at + head.len;
        let body = match head.framing {
            Framing::Empty => start..start,
            Framing::Length(len) => {
                while self.filled < start + len {
                    self.fill().await?;
                }
                start..start + len
            }
            Framing::Chunked => {
                let end = self.decode_chunked(start).await?;
                end..end
            }
        };
        self.consumed = body.end;
        let session = match head.session {
            Some(r) => Some(
                std::str::from_utf8(&self.buf[at + r.start..at + r.end])
                    .map_err(|_| anyhow::anyhow!("non-UTF-8 Mcp-Session-Id"))?,
            ),
            None => None,
        };
        let body = if matches!(head.framing, Framing::Chunked) { &self.chunked[..] } else { &self.buf[body] };
        Ok(Answer { status: head.status, body, session })
    }

    /// Decodes a chunked body starting at `at` into `chunked`, up to the zero-size chunk and its trailers; returns
    /// where the response ends.
    async fn decode_chunked(&mut self, mut at: usize) -> anyhow::Result<usize> {
        self.chunked.clear();
        loop {
            match httparse::parse_chunk_size(&self.buf[at..self.filled]) {
                Ok(httparse::Status::Complete((line, 0))) => {
                    at += line;
                    break;
                }
                Ok(httparse::Status::Complete((line, size))) => {
                    let data = at + line..at + line + usize::try_from(size)?;
                    while self.filled < data.end + 2 {
                        self.fill().await?;
                    }
                    anyhow::ensure!(&self.buf[data.end..data.end + 2] == b"\r\n", "chunk not followed by CRLF");
                    self.chunked.extend_from_slice(&self.buf[data.clone()]);
                    at = data.end + 2;
                }
                Ok(httparse::Status::Partial) => self.fill().await?,
                Err(_) => {
                    anyhow::bail!("bad chunk size line: {:?}", String::from_utf8_lossy(&self.buf[at..self.filled]))
                }
            }
        }
        // Trailer lines, if any, up to the empty line.
        loop {
            match self.buf[at..self.filled].windows(2).position(|w| w == b"\r\n") {
                Some(0) => return Ok(at + 2),
                Some(line) => at += line + 2,
                None => self.fill().await?,
            }
        }
    }

    /// Opens a legacy session on this connection: `initialize`, then `notifications/initialized`.
    async fn open_session(&mut self, port: u16, bearer: Option<&str>) -> anyhow::Result<String> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "keel-bench", "version": "0"}}});
        let request = post(port, LEGACY, "initialize", None, bearer, &serde_json::to_vec(&init)?);
        let answer = self.exchange(&request).await?;
        anyhow::ensure!(answer.status == 200, "initialize answered {}: {}", answer.status, text_of(answer.body));
        let session = answer.session.ok_or_else(|| anyhow::anyhow!("initialize gave no Mcp-Session-Id"))?.to_owned();
        let msg = message_of(answer.body)?;
        anyhow::ensure!(msg["result"]["protocolVersion"].is_string(), "bad initialize result: {msg}");
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let request =
            post(port, LEGACY, "notifications/initialized", Some(&session), bearer, &serde_json::to_vec(&note)?);
        let answer = self.exchange(&request).await?;
        anyhow::ensure!(answer.status == 202, "notifications/initialized answered {}", answer.status);
        Ok(session)
    }
}

/// Parses a response head if `bytes` holds all of it (`None`: read more).
fn parse_head(bytes: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(bytes)? else {
        return Ok(None);
    };
    let status = response.code.expect("complete head has a status");
    let (mut length, mut chunked, mut session) = (None, false, None);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(std::str::from_utf8(header.value)?.trim().parse::<usize>()?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides (`gzip, chunked`); compared without allocating.
            let value = header.value.trim_ascii_end();
            chunked = value.len() >= 7 && value[value.len() - 7..].eq_ignore_ascii_case(b"chunked");
        } else if header.name.eq_ignore_ascii_case("mcp-session-id") {
            let at = header.value.as_ptr() as usize - bytes.as_ptr() as usize;
            session = Some(at..at + header.value.len());
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(len)) => Framing::Length(len),
        (false, None) if status < 200 || status == 204 || status == 304 => Framing::Empty,
        (false, None) => anyhow::bail!("response {status} has neither Content-Length nor chunked encoding"),
    };
    Ok(Some(Head { len, status, framing, session }))
}

/// A body as text for error messages.
fn text_of(body: &[u8]) -> String {
    format!("{:.300}", String::from_utf8_lossy(body))
}

/// One connection's loop: send calls until `until`, recording latencies (after `count_from`).
async fn worker(
    port: u16,
    era: Era,
    count_from: Instant,
    until: Instant,
    check_all: bool,
    bearer: Option<Arc<str>>,
) -> anyhow::Result<Vec<u32>> {
    let mut conn = Conn::connect(port).await?;
    let bearer = bearer.as_deref();
    let session = if era == Era::Legacy { Some(conn.open_session(port, bearer).await?) } else { None };
    let mut call = CallRequest::new(port, era, session.as_deref(), bearer);
    let mut lat = Vec::with_capacity(65536);
    for n in 1u64.. {
        let start = Instant::now();
        if start >= until {
            break;
        }
        call.set_id(n)?;
        let answer = conn.exchange(&call.bytes).await?;
        anyhow::ensure!(answer.status == 200, "tools/call answered {}: {}", answer.status, text_of(answer.body));
        if check_all || n == 1 {
            check_sum(&message_of(answer.body)?, n)?;
        }
        if start >= count_from {
            lat.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    Ok(lat)
}

/// One round: `conns` connections for `warmup + measure`, counting only the measured part. With `bearer`, every
/// request (the legacy `initialize` too) carries `Authorization: Bearer <bearer>`.
pub async fn round(
    port: u16,
    era: Era,
    conns: usize,
    warmup: Duration,
    measure: Duration,
    check_all: bool,
    bearer: Option<Arc<str>>,
) -> anyhow::Result<Stats> {
    timed_round(conns, warmup, measure, |count_from, until| {
        worker(port, era, count_from, until, check_all, bearer.clone())
    })
    .await
}

/// Runs `conns` workers made by `worker(count_from, until)` at once and gathers their latencies.
async fn timed_round<W, F>(conns: usize, warmup: Duration, measure: Duration, worker: W) -> anyhow::Result<Stats>
where
    W: Fn(Instant, Instant) -> F,
    F: std::future::Future<Output = anyhow::Result<Vec<u32>>> + Send + 'static,
{
    let start = Instant::now() + Duration::from_millis(50);
    let count_from = start + warmup;
    let until = count_from + measure;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conns {
        set.spawn(worker(count_from, until));
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    Ok(stats(all, measure))
}

/// One connection's loop with its session spread over several instances (see `SpreadSession`), as behind a
/// round-robin load balancer.
async fn spread_worker(
    ports: Vec<u16>,
    count_from: Instant,
    until: Instant,
    check_all: bool,
) -> anyhow::Result<Vec<u32>> {
    let mut session = SpreadSession::open(&ports).await?;
    let mut lat = Vec::with_capacity(65536);
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        // The first call on each instance is always checked.
        session.call(check_all || session.sent < ports.len() as u64).await?;
        if start >= count_from {
            lat.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    Ok(lat)
}

/// A legacy round whose sessions are spread over `ports` (see `spread_worker`); one port is an ordinary round.
pub async fn spread_round(
    ports: &[u16],
    conns: usize,
    warmup: Duration,
    measure: Duration,
    check_all: bool,
) -> anyhow::Result<Stats> {
    timed_round(conns, warmup, measure, |count_from, until| spread_worker(ports.to_vec(), count_from, until, check_all))
        .await
}

/// A legacy session opened on the first of `ports`, with one keep-alive connection to each: call `n` goes to
/// instance `n % ports.len()`.
pub struct SpreadSession {
    conns: Vec<Conn>,
    calls: Vec<CallRequest>,
    sent: u64,
}

impl SpreadSession {
    pub async fn open(ports: &[u16]) -> anyhow::Result<SpreadSession> {
        anyhow::ensure!(!ports.is_empty(), "no instance to call");
        let mut conns = Vec::with_capacity(ports.len());
        for &port in ports {
            conns.push(Conn::connect(port).await?);
        }
        let session = conns[0].open_session(ports[0], None).await?;
        let calls = ports.iter().map(|&p| CallRequest::new(p, Era::Legacy, Some(&session), None)).collect();
        Ok(SpreadSession { conns, calls, sent: 0 })
    }

    /// One `tools/call`, on the next instance in turn; its answer checked when `check`.
    pub async fn call(&mut self, check: bool) -> anyhow::Result<()> {
        self.sent += 1;
        let at = (self.sent % self.conns.len() as u64) as usize;
        self.calls[at].set_id(self.sent)?;
        let answer = self.conns[at].exchange(&self.calls[at].bytes).await?;
        anyhow::ensure!(answer.status == 200, "tools/call answered {}: {}", answer.status, text_of(answer.body));
        if check {
            check_sum(&message_of(answer.body)?, self.sent)?;
        }
        Ok(())
    }
}

pub fn stats(mut lat: Vec<u32>, measure: Duration) -> Stats {
    lat.sort_unstable();
    let pct = |p: f64| if lat.is_empty() { f64::NAN } else { lat[((lat.len() - 1) as f64 * p) as usize] as f64 };
    Stats { rps: lat.len() as f64 / measure.as_secs_f64(), p50_us: pct(0.5), p99_us: pct(0.99) }
}

/// The HTTP status of one modern `tools/call` (with `bearer` when given): a protected server must refuse a call
/// without a token, or its row would measure nothing.
pub async fn call_status(port: u16, bearer: Option<&str>) -> anyhow::Result<u16> {
    let mut conn = Conn::connect(port).await?;
    let mut call = CallRequest::new(port, Era::Modern, None, bearer);
    call.set_id(1)?;
    Ok(conn.exchange(&call.bytes).await?.status)
}

/// Opens `n` idle legacy sessions over a few keep-alive connections.
pub async fn open_sessions(port: u16, n: usize) -> anyhow::Result<()> {
    let conns = 8;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..conns {
        let share = n / conns + usize::from(c < n % conns);
        set.spawn(async move {
            let mut conn = Conn::connect(port).await?;
            for _ in 0..share {
                conn.open_session(port, None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers each request with `responses[i]`, written in small pieces with pauses, so the reader
    /// must reassemble heads, lengths and chunks across reads.
    async fn trickle_server(responses: Vec<&'static [u8]>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 4096];
            for response in responses {
                let _ = stream.read(&mut request).await.expect("request");
                for piece in response.chunks(7) {
                    stream.write_all(piece).await.expect("write");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn reads_split_length_and_chunked_responses_on_one_connection() {
        let port = trickle_server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nMcp-Session-Id: s-1\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let mut conn = Conn::connect(port).await.expect("connect");
        let answer = conn.exchange(b"GET / HTTP/1.1\r\n\r\n").await.expect("first");
        assert_eq!((answer.status, answer.body, answer.session), (200, &b"hello"[..], Some("s-1")));
        let answer = conn.exchange(b"GET / HTTP/1.1\r\n\r\n").await.expect("second");
        assert_eq!((answer.status, answer.body, answer.session), (200, &b"abc0123456789abcdef"[..], None));
        let answer = conn.exchange(b"GET / HTTP/1.1\r\n\r\n").await.expect("third");
        assert_eq!((answer.status, answer.body), (202, &b""[..]));
        let closed = conn.exchange(b"GET / HTTP/1.1\r\n\r\n").await.err().expect("closed").to_string();
        assert!(closed.contains("closed the connection"), "{closed}");
    }

    #[test]
    fn call_ids_are_patched_in_place() {
        let mut call = CallRequest::new(1, Era::Modern, None, None);
        let len = call.bytes.len();
        call.set_id(42).expect("fits");
        assert_eq!(call.bytes.len(), len);
        let body = &call.bytes[call.bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4..];
        assert!(std::str::from_utf8(body).expect("UTF-8").contains(r#""id":        42,"#));
        let msg: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(msg["id"], 42);
        call.set_id(9_999_999_999).expect("fits");
        assert_eq!(&call.bytes[call.id.clone()], b"9999999999");
        assert!(call.set_id(10u64.pow(ID_WIDTH as u32)).is_err());
    }
}
