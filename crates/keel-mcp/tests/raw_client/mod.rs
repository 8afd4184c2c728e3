//! A deliberately small HTTP/1.1 client over raw TCP for the adversarial and soak tests: it can choose its
//! source address on the loopback range (to play several peers), stop reading at any point, and hang up
//! mid-stream, which a full client library hides.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use keel_mcp::server::Server;
use keel_mcp::server::http::HttpConfig;

/// A server on an ephemeral loopback port; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn serve(server: Server, config: HttpConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = server
            .serve_http_on(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Running { addr, _stop: stop }
}

/// One HTTP/1.1 connection from source address `127.0.0.<from>`.
pub struct Conn {
    io: BufReader<TcpStream>,
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    }
}

impl Conn {
    pub async fn open(server: SocketAddr, from: u8) -> Conn {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, from), 0))).unwrap();
        let stream = socket.connect(server).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { io: BufReader::new(stream) }
    }

    /// Sends a request: `extra` headers, and a body when given.
    pub async fn send(&mut self, method: &str, extra: &[(&str, &str)], body: Option<&[u8]>) {
        let mut head = format!("{method} /mcp HTTP/1.1\r\nhost: localhost\r\n");
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.io.get_mut().write_all(&bytes).await.unwrap();
    }

    /// Reads a response head; `None` when the server closed the connection instead, or sent nothing for
    /// 10 s (every test stays bounded in time, whatever the server does).
    pub async fn head(&mut self) -> Option<Head> {
        tokio::time::timeout(Duration::from_secs(10), self.read_head()).await.ok()?
    }

    async fn read_head(&mut self) -> Option<Head> {
        let mut line = String::new();
        if self.io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.io.read_line(&mut line).await.ok()?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':')?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Some(Head { status, headers })
    }

    /// Reads the next piece of the body: a chunk of a chunked body, or the whole of a sized one; `None` at
    /// its end.
    pub async fn piece(&mut self, head: &Head) -> Option<Vec<u8>> {
        if head.chunked() {
            let mut line = String::new();
            self.io.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.io.read_exact(&mut chunk).await.ok()?;
            chunk.truncate(size);
            return (size > 0).then_some(chunk);
        }
        let length: usize = head.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if length == 0 {
            return None;
        }
        let mut body = vec![0; length];
        self.io.read_exact(&mut body).await.ok()?;
        Some(body)
    }

    /// Reads a whole (sized) body.
    pub async fn body(&mut self, head: &Head) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(piece) = self.piece(head).await {
            all.extend(piece);
            if !head.chunked() {
                break;
            }
        }
        all
    }

    /// Sends a JSON POST and reads the head and whole body.
    pub async fn post(&mut self, session: Option<&str>, accept: &str, body: &[u8]) -> Option<(Head, Vec<u8>)> {
        let mut extra = vec![("accept", accept), ("mcp-protocol-version", "2025-11-25")];
        if let Some(session) = session {
            extra.push(("mcp-session-id", session));
        }
        self.send("POST", &extra, Some(body)).await;
        let head = self.head().await?;
        let body = self.body(&head).await;
        Some((head, body))
    }

    /// Hangs up at once (RST), as a client that crashed or gave up would.
    pub fn abort(self) {
        let stream = self.io.into_inner();
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

pub const JSON_AND_SSE: &str = "application/json, text/event-stream";

/// `initialize` then `notifications/initialized`: a well-behaved client's session id.
pub async fn session(server: SocketAddr, from: u8) -> String {
    let mut conn = Conn::open(server, from).await;
    let session = initialize(&mut conn, &serde_json::json!({})).await.expect("initialize accepted");
    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (head, _) = conn.post(Some(&session), JSON_AND_SSE, initialized).await.unwrap();
    assert_eq!(head.status, 202);
    session
}

/// `initialize` with these capabilities: the session id, or `Err(status)`.
pub async fn initialize(conn: &mut Conn, capabilities: &Value) -> Result<String, u16> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}});
    let (head, _) = conn.post(None, JSON_AND_SSE, body.to_string().as_bytes()).await.expect("an answer");
    match head.header("mcp-session-id") {
        Some(id) if head.status == 200 => Ok(id.to_owned()),
        _ => Err(head.status),
    }
}

/// A well-behaved client's round trip in `session`: `tools/call echo` answered 200 with the text.
pub async fn echo(server: SocketAddr, from: u8, session: &str) -> u16 {
    let mut conn = Conn::open(server, from).await;
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
    let (head, body) = conn.post(Some(session), "application/json", call).await.unwrap();
    if head.status == 200 {
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    }
    head.status
}

/// A parsed SSE event.
#[derive(Debug)]
pub struct Event {
    pub id: Option<String>,
    pub data: String,
}

/// Splits complete SSE events off the front of `buffer`.
pub fn events(buffer: &mut String) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let raw: String = buffer.drain(..end + 2).collect();
        let mut event = Event { id: None, data: String::new() };
        for line in raw.lines() {
            if let Some(id) = line.strip_prefix("id: ") {
                event.id = Some(id.to_owned());
            } else if let Some(data) = line.strip_prefix("data:") {
                event.data.push_str(data.trim_start());
            }
        }
        out.push(event);
    }
    out
}

/// The process's resident memory, in bytes.
pub fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}
