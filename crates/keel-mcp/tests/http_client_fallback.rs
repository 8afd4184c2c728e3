//! The HTTP client against hand-written servers: the 2024-11-05 HTTP+SSE transport (the last resort of era
//! detection), `Mcp-Param-*` mirroring with a re-list after `HeaderMismatch`, and credentials from `HttpAuth`
//! (per-request proof headers, `DPoP-Nonce`, a retry after 401).
#![cfg(feature = "http-client")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod raw_http;
use raw_http::{answer, read_request, respond};

use keel_mcp::client::Client;
use keel_mcp::client::http::HttpTransport;
use keel_mcp::protocol::{Era, Implementation, ProtocolVersion};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A 2024-11-05 server: POST to the endpoint URL is refused; GET opens the stream whose first event names
/// where to POST; answers travel on the stream.
#[tokio::test]
async fn the_http_sse_transport_is_the_last_resort() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let stream_tx: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let stream_tx = stream_tx.clone();
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                let Some(request) = read_request(&mut socket).await else { return };
                match (request.method.as_str(), request.path.as_str()) {
                    ("GET", "/mcp") => {
                        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                        *stream_tx.lock().unwrap() = Some(tx);
                        let head =
                            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";
                        let out = socket.get_mut();
                        out.write_all(head.as_bytes()).await.unwrap();
                        out.write_all(b"event: endpoint\ndata: /messages?session=abc\n\n").await.unwrap();
                        while let Some(message) = rx.recv().await {
                            let event = format!("event: message\ndata: {message}\n\n");
                            if out.write_all(event.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                    ("POST", "/messages?session=abc") => {
                        let message: Value = serde_json::from_slice(&request.body).unwrap();
                        respond(&mut socket, "202 Accepted", "text/plain", "").await;
                        let reply = match message["method"].as_str() {
                            Some("initialize") => Some(answer(
                                &message,
                                json!({"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                                       "serverInfo": {"name": "old", "version": "0.1"}}),
                            )),
                            Some("tools/list") => Some(answer(
                                &message,
                                json!({"tools": [{"name": "legacy_tool", "inputSchema": {"type": "object"}}]}),
                            )),
                            _ => None,
                        };
                        if let (Some(reply), Some(tx)) = (reply, stream_tx.lock().unwrap().as_ref()) {
                            let _ = tx.send(reply);
                        }
                    }
                    _ => respond(&mut socket, "405 Method Not Allowed", "text/plain", "").await,
                }
            });
        }
    });

    let client =
        Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await.unwrap();
    assert_eq!(client.protocol_version(), ProtocolVersion::V2024_11_05);
    assert_eq!(client.era(), Era::Legacy);
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools[0].name, "legacy_tool");
    client.close().await;
}

/// A modern server that checks `Mcp-Param-Region` against the arguments, and whose tool list changes
/// under the client: the first call carries the old header name, gets `HeaderMismatch`, and the transport
/// re-lists and retries once.
#[tokio::test]
async fn header_mismatch_makes_the_client_relist_and_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let lists = Arc::new(Mutex::new(0));
    let seen = Arc::new(Mutex::new(Vec::<HashMap<String, String>>::new()));
    let (lists2, seen2) = (lists.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (lists, seen) = (lists2.clone(), seen2.clone());
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                let Some(request) = read_request(&mut socket).await else { return };
                let message: Value = serde_json::from_slice(&request.body).unwrap();
                let json = "application/json";
                match message["method"].as_str().unwrap_or_default() {
                    "server/discover" => {
                        let result = json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                                            "resultType": "complete"});
                        respond(&mut socket, "200 OK", json, &answer(&message, result)).await;
                    }
                    "tools/list" => {
                        let n = {
                            let mut lists = lists.lock().unwrap();
                            *lists += 1;
                            *lists
                        };
                        // The header name changes between the first and the second listing.
                        let header = if n == 1 { "Zone" } else { "Region" };
                        let tools = json!({"resultType": "complete", "tools": [
                            {"name": "deploy", "inputSchema": {"type": "object", "properties": {
                                "region": {"type": "string", "x-mcp-header": header}}}},
                            {"name": "broken", "inputSchema": {"type": "object", "properties": {
                                "a": {"type": "object", "x-mcp-header": "A"}}}}
                        ]});
                        respond(&mut socket, "200 OK", json, &answer(&message, tools)).await;
                    }
                    "tools/call" => {
                        seen.lock().unwrap().push(request.headers.clone());
                        let ok = request.headers.get("mcp-param-region").map(String::as_str) == Some("eu west")
                            && request.headers.get("mcp-name").map(String::as_str) == Some("deploy")
                            && request.headers.get("mcp-method").map(String::as_str) == Some("tools/call");
                        if ok {
                            let result = json!({"resultType": "complete", "content": [{"type": "text", "text": "ok"}]});
                            respond(&mut socket, "200 OK", json, &answer(&message, result)).await;
                        } else {
                            let error = json!({"jsonrpc": "2.0", "id": message["id"],
                                               "error": {"code": -32020, "message": "header mismatch"}});
                            respond(&mut socket, "400 Bad Request", json, &error.to_string()).await;
                        }
                    }
                    _ => respond(&mut socket, "404 Not Found", "text/plain", "").await,
                }
            });
        }
    });

    let client =
        Client::builder(Implementation::new("t", "1")).connect(HttpTransport::new(&url).unwrap()).await.unwrap();
    assert_eq!(client.era(), Era::Modern);
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["deploy"], "invalid tools are dropped");
    let result = client.call_tool("deploy", json!({"region": "eu west"})).await.unwrap();
    assert!(!result.is_error());
    assert_eq!(*lists.lock().unwrap(), 2, "one re-list after the mismatch");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].get("mcp-param-zone").map(String::as_str), Some("eu west"));
    assert_eq!(seen[1].get("mcp-protocol-version").map(String::as_str), Some("2026-07-28"));
    client.close().await;
}

/// Hands out a token and a per-request proof naming the method, URL and latest nonce; retries after a 401
/// only once the server has sent a nonce.
#[derive(Default)]
struct ProofAuth {
    nonce: Mutex<Option<String>>,
    challenges: Mutex<Vec<keel_mcp::auth::Challenge>>,
}

impl keel_mcp::auth::HttpAuth for ProofAuth {
    fn authorization(&self, _url: &str) -> keel_mcp::engine::BoxFuture<Result<Option<String>, keel_mcp::Error>> {
        Box::pin(async { Ok(Some("DPoP token".to_owned())) })
    }

    fn unauthorized(
        &self,
        _url: &str,
        challenge: keel_mcp::auth::Challenge,
    ) -> keel_mcp::engine::BoxFuture<Result<bool, keel_mcp::Error>> {
        self.challenges.lock().unwrap().push(challenge);
        let retry = self.nonce.lock().unwrap().is_some();
        Box::pin(async move { Ok(retry) })
    }

    fn request_headers(
        &self,
        method: &str,
        url: &str,
    ) -> keel_mcp::engine::BoxFuture<Result<Vec<(String, String)>, keel_mcp::Error>> {
        let nonce = self.nonce.lock().unwrap().clone().unwrap_or_default();
        let proof = format!("{method} {url} {nonce}");
        Box::pin(async move { Ok(vec![("Authorization".into(), "DPoP token".into()), ("DPoP".into(), proof)]) })
    }

    fn dpop_nonce(&self, _url: &str, nonce: &str) {
        *self.nonce.lock().unwrap() = Some(nonce.to_owned());
    }
}

#[tokio::test]
async fn credentials_come_from_http_auth_per_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::<HashMap<String, String>>::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                let Some(request) = read_request(&mut socket).await else { return };
                seen.lock().unwrap().push(request.headers.clone());
                let proof = request.headers.get("dpop").cloned().unwrap_or_default();
                if !proof.ends_with(" n1") {
                    let head = "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: DPoP error=\"use_dpop_nonce\"\r\n\
                                dpop-nonce: n1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = socket.get_mut().write_all(head.as_bytes()).await;
                    return;
                }
                let message: Value = serde_json::from_slice(&request.body).unwrap();
                let result = match message["method"].as_str() {
                    Some("server/discover") => json!({"supportedVersions": ["2026-07-28"], "capabilities": {},
                                                      "resultType": "complete"}),
                    _ => json!({"resultType": "complete", "tools": []}),
                };
                respond(&mut socket, "200 OK", "application/json", &answer(&message, result)).await;
            });
        }
    });
    let auth = Arc::new(ProofAuth::default());
    let transport = HttpTransport::new(&url).unwrap().auth(auth.clone());
    let client = Client::builder(Implementation::new("t", "1")).connect(transport).await.unwrap();
    assert_eq!(client.era(), Era::Modern);
    assert!(client.list_all_tools().await.unwrap().is_empty());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "refused once, then discover and tools/list with the nonce");
    assert_eq!(seen[1]["authorization"], "DPoP token");
    assert_eq!(seen[1]["dpop"], format!("POST {url} n1"));
    let challenges = auth.challenges.lock().unwrap().clone();
    assert_eq!(challenges.len(), 1);
    assert_eq!(challenges[0].status, 401);
    assert_eq!(challenges[0].www_authenticate, vec!["DPoP error=\"use_dpop_nonce\"".to_owned()]);
    client.close().await;
}
