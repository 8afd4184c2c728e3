//! A hand-written HTTP/1.1 server for client tests: reads one request per connection, answers with
//! `connection: close` (so every request opens a new connection), and records what it received.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server read it (header names lowercased).
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

pub async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (k, v) = header.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some(HttpRequest { method, path, headers, body })
}

pub async fn respond(stream: &mut BufReader<TcpStream>, status: &str, content_type: &str, body: &str) {
    respond_with(stream, status, &[("content-type", content_type)], body).await;
}

pub async fn respond_with(stream: &mut BufReader<TcpStream>, status: &str, headers: &[(&str, &str)], body: &str) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.get_mut().write_all(format!("{head}{body}").as_bytes()).await;
}

/// What the scripted server sends back for one request.
pub struct Reply {
    pub status: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::new("200 OK").header("content-type", "application/json").body(body.to_string())
    }
    pub fn new(status: &'static str) -> Reply {
        Reply { status, headers: Vec::new(), body: String::new() }
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn body(mut self, body: String) -> Reply {
        self.body = body;
        self
    }
}

/// A server at `http://127.0.0.1:<port>` that answers each request with `script` and records it. It
/// accepts at most `connections` connections, then closes its listener (later connections are refused).
pub struct Scripted {
    pub base: String,
    pub seen: Arc<Mutex<Vec<HttpRequest>>>,
}

impl Scripted {
    pub async fn start<F>(connections: usize, script: F) -> Scripted
    where
        F: Fn(&HttpRequest) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<HttpRequest>>> = Arc::default();
        let script = Arc::new(script);
        let record = seen.clone();
        tokio::spawn(async move {
            for _ in 0..connections {
                let Ok((socket, _)) = listener.accept().await else { return };
                let mut socket = BufReader::new(socket);
                let Some(request) = read_request(&mut socket).await else { continue };
                let reply = script(&request);
                record.lock().unwrap().push(request);
                let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                respond_with(&mut socket, reply.status, &headers, &reply.body).await;
            }
            // The listener drops here: the port refuses from now on.
        });
        Scripted { base, seen }
    }

    /// Requests received so far, as `METHOD path`.
    pub fn log(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|r| format!("{} {}", r.method, r.path)).collect()
    }
}

/// A JSON-RPC result answering `request`.
pub fn answer(request: &serde_json::Value, result: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string()
}
