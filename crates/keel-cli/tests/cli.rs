//! Runs the built `keel` binary as a user would, against Keel's conformance server over stdio and HTTP, the
//! Python SDK server of the interop suite, and small loopback servers that refuse (401), never answer, or
//! are not there at all.
//!
//! `harness = false`: this executable is also the stdio server `keel` launches (`KEEL_CLI_TEST_FIXTURE=stdio`),
//! so the stdio tests need no other binary. Arguments: an optional name filter; `--list` lists the tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

const FIXTURE_ENV: &str = "KEEL_CLI_TEST_FIXTURE";
/// The longest any one `keel` run may take before the test fails (keel's own deadlines are far shorter).
const RUN_BOUND: Duration = Duration::from_secs(60);

fn main() {
    if std::env::var(FIXTURE_ENV).as_deref() == Ok("stdio") {
        serve_stdio();
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tests = tests();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &tests {
            println!("{name}: test");
        }
        return;
    }
    // libtest's options that take a value; their values are not name filters.
    const WITH_VALUE: [&str; 6] = ["--test-threads", "--color", "--format", "--skip", "--logfile", "-Z"];
    let mut filter = None;
    let mut is_value = false;
    for arg in &args {
        if std::mem::take(&mut is_value) {
            continue;
        }
        is_value = WITH_VALUE.contains(&arg.as_str());
        if !arg.starts_with('-') && filter.is_none() {
            filter = Some(arg);
        }
    }
    let exact = args.iter().any(|a| a == "--exact");
    let selected: Vec<_> = tests
        .into_iter()
        .filter(|(name, _)| filter.is_none_or(|f| if exact { name == f } else { name.contains(f.as_str()) }))
        .collect();
    println!("running {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in selected {
        let outcome = std::panic::catch_unwind(test);
        println!("test {name} ... {}", if outcome.is_ok() { "ok" } else { "FAILED" });
        if outcome.is_err() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(101);
    }
    println!("test result: ok");
}

type Test = (&'static str, fn());

fn tests() -> Vec<Test> {
    vec![
        ("stdio_tools_list_golden", stdio_tools_list_golden),
        ("stdio_info_reports_era_and_capabilities", stdio_info_reports_era_and_capabilities),
        ("text_format_golden", text_format_golden),
        ("json_format_is_one_result_object", json_format_is_one_result_object),
        ("era_and_protocol_version", era_and_protocol_version),
        ("tool_error_exits_5", tool_error_exits_5),
        ("unknown_tool_exits_5", unknown_tool_exits_5),
        ("arguments_are_typed_and_validated", arguments_are_typed_and_validated),
        ("args_json_inline_file_and_stdin", args_json_inline_file_and_stdin),
        ("unreachable_exits_4", unreachable_exits_4),
        ("unauthorized_exits_3", unauthorized_exits_3),
        ("headers_and_bearer_env_are_sent", headers_and_bearer_env_are_sent),
        ("config_file_servers", config_file_servers),
        ("silent_server_times_out_11", silent_server_times_out_11),
        ("request_timeouts", request_timeouts),
        ("reset_timeout_on_progress", reset_timeout_on_progress),
        ("trace_prints_every_message", trace_prints_every_message),
        ("trace_http_shows_exchanges_not_tokens", trace_http_shows_exchanges_not_tokens),
        ("resources_prompts_complete_ping_log_level", resources_prompts_complete_ping_log_level),
        ("paging_flags", paging_flags),
        ("notifications_stream_unless_quiet", notifications_stream_unless_quiet),
        ("client_features_roots_elicit_sampling", client_features_roots_elicit_sampling),
        ("completions_scripts", completions_scripts),
        ("auth_status_logout_and_flags", auth_status_logout_and_flags),
        ("auth_login_store_refresh_logout", auth_login_store_refresh_logout),
        ("client_credentials_grant", client_credentials_grant),
        ("usage_errors_exit_1", usage_errors_exit_1),
        ("python_sdk_server", python_sdk_server),
    ]
}

// ---------------------------------------------------------------------------------------------------------
// Running keel

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The error envelope: the last stderr line, which must be one JSON object `{"error":{code,message,…}}`.
    fn error(&self) -> Value {
        let line = self.stderr.lines().last().unwrap_or_default();
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("last stderr line {line:?}: {e}"));
        assert!(value["error"]["code"].is_string() && value["error"]["message"].is_string(), "{value}");
        value["error"].clone()
    }

    /// The `result` of `--format json`: stdout must be exactly one JSON object.
    fn result(&self) -> Value {
        let value: Value = serde_json::from_str(self.stdout.trim_end())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {:?}", self.stdout));
        assert_eq!(value.as_object().map(|o| o.len()), Some(1), "{value}");
        value["result"].clone()
    }

    fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        if code != 0 {
            self.error();
        }
        self
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn keel_with(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keel"));
    command
        .args(args)
        .env("KEEL_TOKEN_DIR", temp_dir("tokens"))
        .env_remove("KEEL_CLIENT_SECRET")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run keel");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(RUN_BOUND) {
        Ok(output) => output.expect("wait for keel"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("keel {args:?} did not exit within {RUN_BOUND:?}");
        }
    };
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn keel(args: &[&str]) -> Run {
    keel_with(args, None, &[])
}

/// `args` followed by `-- <this test executable>`, which serves the conformance fixture over stdio.
fn keel_stdio(args: &[&str]) -> Run {
    let exe = std::env::current_exe().expect("test executable");
    let mut all: Vec<&str> = args.to_vec();
    all.push("--");
    all.push(exe.to_str().expect("utf-8 path"));
    keel_with(&all, None, &[(FIXTURE_ENV, "stdio")])
}

// ---------------------------------------------------------------------------------------------------------
// Servers

fn serve_stdio() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let _ = keel_conformance::fixture::server().serve_stdio().await;
    });
}

/// Serves `server` over streamable HTTP on a loopback port for the rest of the test run.
fn serve_http(server: keel_mcp::server::Server) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let config = keel_mcp::server::http::HttpConfig::default();
            let _ = server.serve_http_on(listener, config, std::future::pending()).await;
        });
    });
    format!("http://127.0.0.1:{port}/mcp")
}

/// The conformance fixture over HTTP (listening before this returns: the socket is bound here).
fn conformance_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| serve_http(keel_conformance::fixture::server()))
}

/// Tools the conformance fixture lacks: `ticker` (progress every 100 ms for 2 s) and `stall` (answers after
/// a minute).
fn extras_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        use keel_mcp::protocol::Implementation;
        use keel_mcp::server::{NoArgs, RequestContext, Server};
        let server = Server::builder(Implementation::new("keel-cli-extras", "1.0.0"))
            .tool("ticker", "Reports progress every 100 ms for 2 s", |ctx: RequestContext, _: NoArgs| async move {
                for step in 0..20 {
                    ctx.progress(f64::from(step), Some(20.0), None).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                "ticked"
            })
            .tool("stall", "Answers after a minute", |_: NoArgs| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            })
            .build();
        serve_http(server)
    })
}

/// A loopback port with nothing listening.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mcp")
}

/// Accepts connections and never answers.
fn silent_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        format!("http://127.0.0.1:{port}/mcp")
    })
}

/// Answers every request 401 with a Bearer challenge, and records each request head (lower-cased).
struct Refuser {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

fn refuser() -> &'static Refuser {
    static SERVER: OnceLock<Refuser> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let recorded = recorded.clone();
                std::thread::spawn(move || refuse(stream, port, &recorded));
            }
        });
        Refuser { url: format!("http://127.0.0.1:{port}/mcp"), heads }
    })
}

fn refuse(stream: TcpStream, port: u16, recorded: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    recorded.lock().unwrap().push(head);
    let challenge =
        format!("Bearer resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\"");
    let response = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = reader.get_mut().write_all(response.as_bytes());
}

/// One HTTP/1.1 request as the fake servers read it: method, path with query, lower-cased headers, body.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn form(&self, name: &str) -> Option<String> {
        String::from_utf8_lossy(&self.body).split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
        })
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let length =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0usize);
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body })
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// An OAuth-protected MCP server: its own authorization server (metadata, dynamic registration, an authorize
/// endpoint that approves at once, a token endpoint for the code, refresh and client-credentials grants) in
/// front of the conformance fixture, which gets every MCP request that carries the current access token.
struct Protected {
    url: String,
    /// The access token the resource accepts; tokens are `tok-N`, each grant issues the next.
    current: Arc<Mutex<String>>,
    /// `grant_type client_id` of each token request.
    grants: Arc<Mutex<Vec<String>>>,
}

fn protected() -> &'static Protected {
    static SERVER: OnceLock<Protected> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let current = Arc::new(Mutex::new(String::new()));
        let grants = Arc::new(Mutex::new(Vec::new()));
        let (state, log) = (current.clone(), grants.clone());
        let upstream = conformance_url().trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
        let origin = base.clone();
        std::thread::spawn(move || {
            let issued = Arc::new(Mutex::new(0u32));
            for stream in listener.incoming().flatten() {
                let (base, state, log, upstream, issued) =
                    (origin.clone(), state.clone(), log.clone(), upstream.clone(), issued.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(stream);
                    let Some(request) = read_request(&mut reader) else { return };
                    let mut stream = reader.into_inner();
                    authorization_server(&mut stream, &request, &base, &state, &log, &issued, &upstream);
                });
            }
        });
        Protected { url: format!("{base}/mcp"), current, grants }
    })
}

fn authorization_server(
    stream: &mut TcpStream,
    request: &Request,
    base: &str,
    current: &Mutex<String>,
    grants: &Mutex<Vec<String>>,
    issued: &Mutex<u32>,
    upstream: &str,
) {
    let path = request.path.split('?').next().unwrap_or_default();
    match (request.method.as_str(), path) {
        ("GET", "/.well-known/oauth-protected-resource/mcp") => {
            let prm = json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["mcp"]});
            respond(stream, "200 OK", "", &prm.to_string());
        }
        ("GET", "/.well-known/oauth-authorization-server") => {
            let metadata = json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "registration_endpoint": format!("{base}/register"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
            });
            respond(stream, "200 OK", "", &metadata.to_string());
        }
        ("POST", "/register") => {
            let asked: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let client = json!({
                "client_id": "registered-client",
                "redirect_uris": asked["redirect_uris"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            });
            respond(stream, "201 Created", "", &client.to_string());
        }
        ("GET", "/authorize") => {
            // The user approves at once: back to the client's redirect URI with a code and its state.
            let query = request.path.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let param = |name: &str| {
                query.split('&').find_map(|p| p.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
            };
            let redirect = param("redirect_uri").unwrap_or_default().replace("%3A", ":").replace("%2F", "/");
            let location = format!("{redirect}?code=code-1&state={}", param("state").unwrap_or_default());
            respond(stream, "302 Found", &format!("Location: {location}\r\n"), "");
        }
        ("POST", "/token") => {
            let grant = request.form("grant_type").unwrap_or_default();
            grants.lock().unwrap().push(format!("{grant} {}", request.form("client_id").unwrap_or_default()));
            let mut n = issued.lock().unwrap();
            *n += 1;
            let token = format!("tok-{n}");
            *current.lock().unwrap() = token.clone();
            let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "refresh_token": format!("ref-{n}"), "scope": "mcp"});
            respond(stream, "200 OK", "", &body.to_string());
        }
        (_, "/mcp") => {
            let expected = format!("Bearer {}", current.lock().unwrap());
            if request.header("authorization") != Some(expected.as_str()) {
                let challenge = format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
                respond(stream, "401 Unauthorized", &format!("WWW-Authenticate: {challenge}\r\n"), "");
                return;
            }
            proxy(stream, request, upstream);
        }
        _ => respond(stream, "404 Not Found", "", "{}"),
    }
}

/// Forwards an authorized MCP request to the fixture and copies the answer back until it closes.
fn proxy(stream: &mut TcpStream, request: &Request, upstream: &str) {
    let Ok(mut server) = TcpStream::connect(upstream) else { return };
    let mut head = format!("{} /mcp HTTP/1.1\r\nhost: {upstream}\r\nconnection: close\r\n", request.method);
    for (k, v) in &request.headers {
        if !matches!(k.as_str(), "host" | "connection" | "authorization") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    if server.write_all(head.as_bytes()).and_then(|()| server.write_all(&request.body)).is_ok() {
        let _ = std::io::copy(&mut server, stream);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tests

fn stdio_tools_list_golden() {
    let run = keel_stdio(&["tools", "list"]).expect(0);
    let expected = "\
test_simple_text                            Returns simple text
test_image_content                          Returns an image
test_audio_content                          Returns audio
test_embedded_resource                      Returns an embedded resource
test_multiple_content_types                 Returns text, an image and a resource
";
    assert!(run.stdout.starts_with(expected), "{}", run.stdout);
    assert!(run.stdout.lines().all(|l| !l.trim().is_empty()));
}

fn stdio_info_reports_era_and_capabilities() {
    let run = keel_stdio(&["info"]).expect(0);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some(format!("server: keel-conformance-server {}", env!("CARGO_PKG_VERSION")).as_str()));
    assert_eq!(lines.next(), Some("protocol: 2026-07-28 (modern)"));
    assert_eq!(lines.next(), Some("capabilities: completions, extensions, logging, prompts, resources, tools"));
    let run = keel_stdio(&["info", "--era", "legacy", "--format", "json"]).expect(0);
    let result = run.result();
    assert_eq!(result["era"], "legacy");
    assert_eq!(result["protocolVersion"], "2025-11-25");
    assert_eq!(result["serverInfo"]["name"], "keel-conformance-server");
}

fn text_format_golden() {
    let url = conformance_url();
    let cases: [(&[&str], &str); 5] = [
        (&["tools", "call", url, "test_simple_text"], "This is a simple text response for testing.\n"),
        (
            &["tools", "call", url, "test_embedded_resource"],
            "[resource test://embedded-resource (text/plain)]\nThis is an embedded resource content.\n",
        ),
        (
            &["resources", "read", url, "test://static-text"],
            "[resource test://static-text (text/plain)]\nThis is the content of the static text resource.\n",
        ),
        (
            &["prompts", "get", url, "test_prompt_with_arguments", "arg1=x", "arg2=y"],
            "# A prompt with two arguments\n[user]\nPrompt with arguments: arg1='x', arg2='y'\n",
        ),
        (
            &["complete", url, "--prompt", "test_prompt_with_arguments", "--argument", "arg1=par"],
            "paris\npark\nparty\n",
        ),
    ];
    for (args, expected) in cases {
        let run = keel(args).expect(0);
        assert_eq!(run.stdout, expected, "{args:?}");
    }
    let run = keel(&["tools", "call", url, "test_image_content"]).expect(0);
    assert!(run.stdout.starts_with("[image image/png, about "), "{}", run.stdout);
}

fn json_format_is_one_result_object() {
    let url = conformance_url();
    let result = keel(&["tools", "list", "--url", url, "--format", "json"]).expect(0).result();
    let names: Vec<&str> = result["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"test_simple_text") && names.contains(&"greet"), "{names:?}");
    let result = keel(&["tools", "call", "--format", "json", url, "greet", "name=Ada"]).expect(0).result();
    assert_eq!(result["content"][0]["text"].as_str().map(|t| t.contains("Ada")), Some(true), "{result}");
}

fn era_and_protocol_version() {
    let url = conformance_url();
    for (flags, version, era) in [
        (vec!["--era", "modern"], "2026-07-28", "modern"),
        (vec!["--era", "legacy"], "2025-11-25", "legacy"),
        (vec!["--era", "auto"], "2026-07-28", "modern"),
        (vec!["--protocol-version", "2025-03-26"], "2025-03-26", "legacy"),
    ] {
        let mut args = vec!["info", url, "--format", "json"];
        args.extend(&flags);
        let result = keel(&args).expect(0).result();
        assert_eq!(
            (result["protocolVersion"].as_str(), result["era"].as_str()),
            (Some(version), Some(era)),
            "{flags:?}"
        );
    }
    keel(&["info", url, "--url", url]).expect(1);
    let run = keel(&["info", url, "--protocol-version", "1999-01-01"]).expect(1);
    assert!(run.error()["message"].as_str().unwrap().contains("known are"));
}

fn tool_error_exits_5() {
    for run in [
        keel(&["tools", "call", conformance_url(), "test_error_handling"]),
        keel_stdio(&["tools", "call", "test_error_handling"]),
    ] {
        let run = run.expect(5);
        assert_eq!(run.error()["code"], "tool_error");
        assert!(run.stdout.contains("intentionally returns an error"));
    }
}

fn unknown_tool_exits_5() {
    let run = keel(&["tools", "call", conformance_url(), "no_such_tool"]).expect(5);
    assert_eq!(run.error()["code"], "tool_not_found");
    // Without the tools/list check, the server's own answer maps to the same code.
    let run = keel(&["tools", "call", conformance_url(), "no_such_tool", "--no-validate"]).expect(5);
    assert_eq!(run.error()["code"], "tool_not_found");
}

fn arguments_are_typed_and_validated() {
    let url = conformance_url();
    // `name:=5` is a number, which greet's schema refuses: nothing is sent (the trace shows no tools/call).
    let run = keel(&["tools", "call", url, "greet", "name:=5", "--trace", "--format", "json"]).expect(1);
    assert_eq!(run.error()["code"], "invalid_arguments");
    assert!(!run.stderr.contains("\"tools/call\""), "{}", run.stderr);
    let run = keel(&["tools", "call", url, "greet"]).expect(1);
    assert!(run.error()["message"].as_str().unwrap().contains("required"));
    // `name=5` stays the string "5".
    let run = keel(&["tools", "call", url, "greet", "name=5"]).expect(0);
    assert!(run.stdout.contains('5'));
}

fn args_json_inline_file_and_stdin() {
    let url = conformance_url();
    let dir = temp_dir("args");
    let file = dir.join("args.json");
    std::fs::write(&file, r#"{"name": "FromFile"}"#).unwrap();
    let at_file = format!("@{}", file.display());
    let run = keel(&["tools", "call", url, "greet", "--args-json", r#"{"name":"Inline"}"#]).expect(0);
    assert!(run.stdout.contains("Inline"));
    let run = keel(&["tools", "call", url, "greet", "--args-json", &at_file]).expect(0);
    assert!(run.stdout.contains("FromFile"));
    let run =
        keel_with(&["tools", "call", url, "greet", "--args-json", "-"], Some(r#"{"name":"FromStdin"}"#), &[]).expect(0);
    assert!(run.stdout.contains("FromStdin"));
    // Pairs override --args-json.
    let run = keel(&["tools", "call", url, "greet", "--args-json", r#"{"name":"A"}"#, "name=B"]).expect(0);
    assert!(run.stdout.contains('B') && !run.stdout.contains("A!"));
}

fn unreachable_exits_4() {
    let run = keel(&["tools", "list", &closed_port_url()]).expect(4);
    assert_eq!(run.error()["code"], "unreachable");
    let run = keel(&["tools", "list", "--", "/nonexistent/keel-test-server"]).expect(4);
    assert_eq!(run.error()["code"], "spawn_failed");
    // A server that starts and dies at once: its stderr reaches the user, the exit says it never answered.
    let run = keel(&["tools", "list", "--", "sh", "-c", "echo boom-from-server >&2; exit 3"]).expect(4);
    assert_eq!(run.error()["code"], "server_exited");
    assert!(run.stderr.starts_with("boom-from-server\n"), "{}", run.stderr);
}

fn unauthorized_exits_3() {
    let refuser = refuser();
    // OAuth would need a login: --no-interactive fails at once.
    let run = keel(&["tools", "list", &refuser.url, "--no-interactive", "--connect-timeout", "20"]).expect(3);
    assert_eq!(run.error()["code"], "auth_required");
    // A static token the server refuses: no OAuth at all.
    let run = keel(&["tools", "list", &refuser.url, "-H", "Authorization: Bearer wrong"]).expect(3);
    assert_eq!(run.error()["status"], 401);
}

fn headers_and_bearer_env_are_sent() {
    let refuser = refuser();
    let run = keel_with(
        &["info", &refuser.url, "--header", "X-Keel-Test: header-one", "--bearer-env", "KEEL_TEST_TOKEN"],
        None,
        &[("KEEL_TEST_TOKEN", "token-from-env")],
    );
    run.expect(3);
    let heads = refuser.heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .any(|h| h.contains("x-keel-test: header-one") && h.contains("authorization: bearer token-from-env")),
        "{heads:?}"
    );
    let run = keel(&["info", &refuser.url, "--bearer-env", "KEEL_TEST_UNSET_VARIABLE"]).expect(1);
    assert!(run.error()["message"].as_str().unwrap().contains("KEEL_TEST_UNSET_VARIABLE"));
}

fn config_file_servers() {
    let dir = temp_dir("config");
    let exe = std::env::current_exe().unwrap();
    let config = json!({"mcpServers": {
        "stdio": {"command": exe, "args": [], "env": {FIXTURE_ENV: "stdio"}, "cwd": dir},
        "http": {"url": conformance_url()},
        "refused": {"url": refuser().url, "headers": {"X-From-Config": "yes"}},
    }});
    let path = dir.join("mcp.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let path = path.to_str().unwrap();
    let run = keel(&["tools", "call", "--config", path, "--server", "stdio", "test_simple_text"]).expect(0);
    assert_eq!(run.stdout, "This is a simple text response for testing.\n");
    keel(&["ping", "--config", path, "--server", "http"]).expect(0);
    keel(&["info", "--config", path, "--server", "refused", "--no-interactive"]).expect(3);
    assert!(refuser().heads.lock().unwrap().iter().any(|h| h.contains("x-from-config: yes")));
    let run = keel(&["info", "--config", path, "--server", "missing"]).expect(1);
    assert!(run.error()["message"].as_str().unwrap().contains("known: http, refused, stdio"));
}

fn silent_server_times_out_11() {
    let run = keel(&["tools", "list", silent_url(), "--connect-timeout", "0.5"]).expect(11);
    assert_eq!(run.error()["code"], "timeout");
    assert!(run.error()["message"].as_str().unwrap().contains("--connect-timeout"));
    // A stdio server that never reads its stdin.
    let run = keel(&["info", "--connect-timeout", "0.5", "--", "sleep", "5"]).expect(11);
    assert_eq!(run.error()["code"], "timeout");
}

fn request_timeouts() {
    let url = extras_url();
    let run = keel(&["tools", "call", url, "stall", "--timeout", "0.5"]).expect(11);
    assert!(run.error()["message"].as_str().unwrap().contains("--timeout"));
    let run = keel(&["tools", "call", url, "stall", "--max-total-timeout", "1"]).expect(11);
    assert!(run.error()["message"].as_str().unwrap().contains("--max-total-timeout"));
}

fn reset_timeout_on_progress() {
    let url = extras_url();
    // Two seconds of work, progress every 100 ms: a 1 s timeout fires unless progress restarts it.
    keel(&["tools", "call", url, "ticker", "--timeout", "1", "-q"]).expect(11);
    let run = keel(&["tools", "call", url, "ticker", "--timeout", "1", "--reset-timeout-on-progress"]).expect(0);
    assert_eq!(run.stdout, "ticked\n");
    assert!(run.stderr.lines().filter(|l| l.starts_with("progress ")).count() >= 10, "{}", run.stderr);
    // ...but not past the overall bound.
    keel(&[
        "tools",
        "call",
        url,
        "ticker",
        "--timeout",
        "1",
        "--reset-timeout-on-progress",
        "--max-total-timeout",
        "1.2",
    ])
    .expect(11);
}

fn trace_prints_every_message() {
    let run = keel(&["tools", "call", conformance_url(), "test_simple_text", "--trace", "--format", "json"]).expect(0);
    let traces: Vec<Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("NDJSON on stderr"))
        .filter_map(|v| v.get("trace").cloned())
        .collect();
    let out: Vec<&Value> = traces.iter().filter(|t| t["dir"] == "out").collect();
    let methods: Vec<&str> = out.iter().filter_map(|t| t["message"]["method"].as_str()).collect();
    assert_eq!(methods, ["server/discover", "tools/list", "tools/call"]);
    let call_id = &out[2]["message"]["id"];
    let answer = traces.iter().find(|t| t["dir"] == "in" && &t["message"]["id"] == call_id).expect("answer traced");
    assert!(answer["message"]["result"]["content"].is_array());
    let times: Vec<f64> = traces.iter().map(|t| t["t"].as_f64().expect("timestamp")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Text form: `[trace +S.SSSSSSs] -> {json}` over stdio as well.
    let run = keel_stdio(&["tools", "list", "--trace"]).expect(0);
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("[trace +")).collect();
    assert!(lines.len() >= 4, "{}", run.stderr);
    for line in lines {
        let (_, rest) = line.split_once("s] ").expect("timestamp");
        let (arrow, json) = rest.split_once(' ').expect("direction");
        assert!(arrow == "->" || arrow == "<-", "{line}");
        serde_json::from_str::<Value>(json).expect("the message as JSON");
    }
}

fn trace_http_shows_exchanges_not_tokens() {
    let url = conformance_url();
    let run = keel(&[
        "tools",
        "list",
        url,
        "--era",
        "legacy",
        "--trace-http",
        "--format",
        "json",
        "-H",
        "Authorization: Bearer sekrit-token",
    ])
    .expect(0);
    assert!(!run.stderr.contains("sekrit"), "{}", run.stderr);
    let http: Vec<Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("http").cloned())
        .collect();
    let first = http.iter().find(|h| h["kind"] == "request").expect("a request");
    assert_eq!((first["method"].as_str(), first["url"].as_str()), (Some("POST"), Some(url)));
    assert!(
        http.iter()
            .any(|h| h["kind"] == "response" && h["status"] == 200 && h["headers"]["mcp-session-id"].is_string())
    );
    assert!(http.iter().any(|h| h["kind"] == "request" && h["headers"]["mcp-protocol-version"] == "2025-11-25"));
    assert!(http.iter().any(|h| h["kind"] == "request" && h["method"] == "DELETE"));
    // Text form, with SSE event ids: the reconnection tool answers over an SSE stream.
    let run = keel(&["tools", "call", url, "test_logging_tool", "--trace-http", "--log-level", "debug"]).expect(0);
    assert!(run.stderr.lines().any(|l| l.starts_with("[http +") && l.contains("> POST ")), "{}", run.stderr);
    assert!(run.stderr.lines().any(|l| l.contains("sse id=")), "{}", run.stderr);
}

fn resources_prompts_complete_ping_log_level() {
    let url = conformance_url();
    let run = keel(&["resources", "list", url]).expect(0);
    assert!(run.stdout.lines().any(|l| l.starts_with("test://static-text ")));
    let result = keel(&["resources", "templates", url, "--format", "json"]).expect(0).result();
    assert!(result["resourceTemplates"].as_array().is_some_and(|t| !t.is_empty()), "{result}");
    let run = keel(&["prompts", "list", url]).expect(0);
    assert!(run.stdout.contains("test_prompt_with_arguments"));
    let result = keel(&[
        "complete",
        url,
        "--prompt",
        "test_prompt_with_arguments",
        "--argument",
        "arg1=pa",
        "--context",
        "arg2=z",
        "--format",
        "json",
    ])
    .expect(0)
    .result();
    assert_eq!(result["completion"]["values"], json!(["paris", "park", "party"]));
    keel(&["complete", url, "--resource", "test://template/{id}/data", "--argument", "id=1"]);
    assert!(keel(&["ping", url, "--era", "legacy"]).expect(0).stdout.starts_with("pong in "));
    assert!(keel_stdio(&["ping"]).expect(0).stdout.starts_with("pong in "));
    assert_eq!(keel(&["log-level", url, "debug", "--era", "legacy"]).expect(0).stdout, "log level set to debug\n");
    keel(&["log-level", url, "loud"]).expect(1);
}

fn paging_flags() {
    let url = conformance_url();
    let all = keel(&["tools", "list", url, "--all-pages", "--format", "json"]).expect(0).result();
    let first = keel(&["tools", "list", url, "--format", "json"]).expect(0).result();
    assert_eq!(all["tools"].as_array().map(Vec::len), first["tools"].as_array().map(Vec::len));
    // A cursor the server never issued is the server's to refuse: a protocol error, exit 10.
    let run = keel(&["tools", "list", url, "--cursor", "not-a-cursor"]).expect(10);
    assert_eq!(run.error()["code"], "rpc_error");
    keel(&["tools", "list", url, "--cursor", "x", "--all-pages"]).expect(1);
}

fn notifications_stream_unless_quiet() {
    let url = conformance_url();
    let run = keel(&["tools", "call", url, "test_tool_with_logging", "--log-level", "info"]).expect(0);
    let logs: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("info [conformance] ")).collect();
    assert_eq!(logs.len(), 3, "{}", run.stderr);
    let run =
        keel(&["tools", "call", url, "test_tool_with_logging", "--log-level", "info", "--format", "json"]).expect(0);
    let logs: Vec<Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("NDJSON"))
        .filter_map(|v| v.get("log").cloned())
        .collect();
    assert_eq!(logs[0]["data"], "Tool execution started");
    let run = keel(&["tools", "call", url, "test_tool_with_progress", "--format", "json"]).expect(0);
    assert!(run.stderr.lines().any(|l| l.starts_with(r#"{"progress":"#)), "{}", run.stderr);
    let run = keel(&["tools", "call", url, "test_tool_with_logging", "--log-level", "info", "-q"]).expect(0);
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout, "Logging test completed\n");
}

fn client_features_roots_elicit_sampling() {
    let url = conformance_url();
    let dir = temp_dir("roots");
    let run = keel(&[
        "tools",
        "call",
        url,
        "test_input_required_result_list_roots",
        "--roots",
        dir.to_str().unwrap(),
        "/tmp",
    ])
    .expect(0);
    assert!(
        run.stdout.contains(&format!("file://{}", dir.display())) && run.stdout.contains("file:///tmp"),
        "{}",
        run.stdout
    );
    let run = keel(&["tools", "call", url, "test_elicitation", "message=hi", "--elicit", "decline"]).expect(0);
    assert!(run.stdout.contains("decline"), "{}", run.stdout);
    let run = keel(&["tools", "call", url, "test_elicitation", "message=hi", "--elicit", "cancel", "--era", "legacy"])
        .expect(0);
    assert!(run.stdout.contains("cancel"), "{}", run.stdout);
    let answer = dir.join("answer.json");
    std::fs::write(&answer, r#"{"username": "ada", "email": "ada@example.com"}"#).unwrap();
    let run =
        keel(&["tools", "call", url, "test_elicitation", "message=hi", "--elicit", answer.to_str().unwrap()]).expect(0);
    assert!(run.stdout.contains("ada@example.com"), "{}", run.stdout);
    let run = keel(&["tools", "call", url, "test_sampling", "prompt=hi", "--sampling", "reject"]);
    assert_ne!(run.code, 0);
    assert!(run.error()["message"].as_str().unwrap().contains("rejected"), "{}", run.stderr);
}

fn completions_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let run = keel(&["completions", shell]).expect(0);
        assert!(run.stdout.contains("keel") && run.stdout.contains("tools"), "{shell}");
    }
}

fn auth_status_logout_and_flags() {
    let dir = temp_dir("auth");
    let dir = dir.to_str().unwrap();
    let url = "https://mcp.example.com/mcp";
    let run = keel(&["auth", "status", url, "--token-dir", dir]).expect(0);
    assert_eq!(run.stdout, format!("not logged in to {url}\n"));
    let result = keel(&["auth", "logout", url, "--token-dir", dir, "--format", "json"]).expect(0).result();
    assert_eq!(result["loggedIn"], false);
    // Pre-registered and machine credentials reach the OAuth client; the refusing server has no authorization
    // server behind it, so each ends in exit 3 rather than a usage error or a browser.
    let refused = &refuser().url;
    for flags in [
        vec!["--client-id", "cli-test", "--client-secret", "s3cret"],
        vec!["--client-id", "cli-test", "--client-secret", "s3cret", "--client-credentials"],
        vec!["--client-metadata-url", "https://keel.example/client.json", "--no-browser"],
    ] {
        let mut args = vec!["tools", "list", refused.as_str(), "--no-interactive"];
        args.extend(&flags);
        let run = keel(&args).expect(3);
        assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    }
    // A server that asks for no authorization: nothing to log in to.
    let run = keel(&["auth", "login", conformance_url(), "--no-browser", "--token-dir", dir]).expect(0);
    assert!(run.stdout.ends_with("asked for no authorization; nothing stored\n"), "{}", run.stdout);
    // A login needs https or loopback http.
    keel(&["auth", "login", "http://mcp.example.com/mcp", "--no-browser"]).expect(1);
}

fn auth_login_store_refresh_logout() {
    let server = protected();
    let dir = temp_dir("login");
    let dir = dir.to_str().unwrap();
    let url = server.url.as_str();
    // Not logged in and not interactive: exit 3 at once.
    keel(&["tools", "list", url, "--token-dir", dir, "--no-interactive"]).expect(3);
    // `auth login --no-browser` prints the URL; this test is the browser.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut login = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["auth", "login", url, "--no-browser", "--token-dir", dir, "--port", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel auth login");
    let authorize = stderr_line(&mut login, |line| line.starts_with("http://")).expect("the authorization URL");
    let location = http_get(&authorize).1.expect("a redirect to the loopback callback");
    assert!(location.starts_with(&format!("http://127.0.0.1:{port}/callback?code=code-1&state=")), "{location}");
    assert_eq!(http_get(&location).0, 200, "the callback page");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(login.wait_with_output());
    });
    let output = rx.recv_timeout(RUN_BOUND).expect("login exits").expect("login output");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("logged in to {url}\n"));
    // Stored 0600, used without a browser, shown without its value.
    #[cfg(unix)]
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        use std::os::unix::fs::PermissionsExt;
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.path().display());
    }
    let run = keel(&["tools", "list", url, "--token-dir", dir, "--no-interactive"]).expect(0);
    assert!(run.stdout.contains("test_simple_text"));
    let status = keel(&["auth", "status", url, "--token-dir", dir, "--format", "json"]).expect(0).result();
    assert_eq!(status["loggedIn"], true);
    assert!(!status.to_string().contains("tok-"), "{status}");
    // The resource stops accepting the token (it takes only the one the next grant issues): the next run
    // refreshes it on the 401, without a browser.
    let before = server.grants.lock().unwrap().len();
    *server.current.lock().unwrap() = "revoked".into();
    let run = keel(&["tools", "list", url, "--token-dir", dir, "--no-interactive"]);
    let grants = server.grants.lock().unwrap()[before..].to_vec();
    assert!(grants.iter().any(|g| g.starts_with("refresh_token")), "{grants:?}");
    run.expect(0);
    // Logged out: back to exit 3.
    keel(&["auth", "logout", url, "--token-dir", dir]).expect(0);
    keel(&["tools", "list", url, "--token-dir", dir, "--no-interactive"]).expect(3);
    let status = keel(&["auth", "status", url, "--token-dir", dir, "--format", "json"]).expect(0).result();
    assert_eq!(status["loggedIn"], false);
}

fn client_credentials_grant() {
    let server = protected();
    let dir = temp_dir("client-credentials");
    let run = keel(&[
        "tools",
        "list",
        &server.url,
        "--token-dir",
        dir.to_str().unwrap(),
        "--client-id",
        "ci-bot",
        "--client-secret",
        "ci-secret",
        "--client-credentials",
    ])
    .expect(0);
    assert!(run.stdout.contains("test_simple_text"));
    assert!(server.grants.lock().unwrap().iter().any(|g| g.starts_with("client_credentials")));
}

/// The first line of `child`'s stderr that `matches`, waiting at most 30 s (`None` past that). The rest of
/// its stderr is read and dropped, so the child never blocks on a full pipe.
fn stderr_line(child: &mut std::process::Child, matches: fn(&str) -> bool) -> Option<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if matches(&line) {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).ok()
}

/// A GET without following redirects: the status and the `Location`, if any.
fn http_get(url: &str) -> (u16, Option<String>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let location = response.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_owned())
    });
    (status, location)
}

fn usage_errors_exit_1() {
    for args in [
        vec!["tools"],
        vec!["tools", "list"],
        vec!["tools", "list", "--format", "yaml", "http://127.0.0.1:9/mcp"],
        vec!["tools", "call", "http://127.0.0.1:9/mcp", "x", "novalue"],
        vec!["tools", "list", "ftp://example.com"],
        vec!["tools", "list", "--timeout", "-1", "http://127.0.0.1:9/mcp"],
    ] {
        let run = keel(&args).expect(1);
        assert_eq!(run.error()["code"], "usage", "{args:?}");
    }
    assert!(keel(&["--help"]).expect(0).stdout.contains("tools"));
    assert!(keel(&["--version"]).expect(0).stdout.starts_with("keel "));
}

/// The interop suite's Python SDK server (mcp==2.3.0), from the venv `interop/run` builds.
fn python_sdk_server() {
    let Some(python) = interop_python() else {
        eprintln!(
            "SKIPPED python_sdk_server: no interop venv with mcp==2.3.0 (run interop/run once, or set KEEL_INTEROP_PYTHON)"
        );
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/python_server.py");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(python)
        .arg(script)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python server");
    let ready = stderr_line(&mut child, |line| line.contains("Uvicorn running on"));
    let outcome = std::panic::catch_unwind(|| {
        ready.expect("the Python server starts within 30 s");
        let url = format!("http://127.0.0.1:{port}/mcp");
        let info = keel(&["info", &url, "--format", "json"]).expect(0).result();
        assert_eq!(info["serverInfo"]["name"], "keel-interop-python-server");
        let run = keel(&["tools", "list", &url]).expect(0);
        assert!(run.stdout.starts_with("add  Adds two numbers"), "{}", run.stdout);
        let result = keel(&["tools", "call", &url, "add", "a:=1", "b:=2", "--format", "json"]).expect(0).result();
        assert_eq!(result["structuredContent"]["sum"], 3.0, "{result}");
        keel(&["tools", "call", &url, "add", "a=1", "b:=2"]).expect(1);
        let run = keel(&["resources", "read", &url, "memo://greeting"]).expect(0);
        assert!(run.stdout.contains("hello from python"));
        keel(&["tools", "call", &url, "nope", "--no-validate"]).expect(5);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

fn interop_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEEL_INTEROP_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("KEEL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/keel")))?;
    std::fs::read_dir(cache.join("interop"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("venv-") && n.contains("-mcp2.3.0-"))
        })
        .map(|p| p.join("bin/python"))
        .find(|p| p.exists())
}
