//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, `conformance-server` posts its spans as OTLP http/protobuf to
//! that endpoint (here a loopback collector stub that counts the requests and looks into the protobuf
//! just enough to find the span's name and attributes).

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;

mod server_process;
use server_process::{BOUND, start};

/// One request the collector received.
struct Export {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// A collector on a loopback port that answers every request with an empty success and reports it.
fn collector() -> (SocketAddr, mpsc::Receiver<Export>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve_exports(stream, tx));
        }
    });
    (addr, rx)
}

fn serve_exports(stream: TcpStream, tx: mpsc::Sender<Export>) {
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        let _ = writer.write_all(answer.as_bytes());
        let _ = tx.send(Export { path, content_type, body });
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn spans_are_posted_as_otlp_protobuf_to_the_endpoint() {
    let (collector, exports) = collector();
    let mut server = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Shutting down flushes the batch.
    let pid = server.child.as_ref().expect("started").id();
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let export = exports.recv_timeout(BOUND).expect("the server exported its spans");
    assert_eq!(export.path, "/v1/traces");
    assert_eq!(export.content_type, "application/x-protobuf");
    // Protobuf keeps strings as they are: the span's name and its attributes are readable.
    assert!(contains(&export.body, b"initialize"), "no initialize span");
    assert!(contains(&export.body, b"mcp.method.name"));
    assert!(contains(&export.body, b"keel-conformance-server"), "the service name");
    drop(server.child.take().map(|mut child| child.wait()));
}
