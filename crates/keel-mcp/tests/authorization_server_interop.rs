//! Interop through the real programs: Keel's `oauth_client` example logs into the `authorization_server`
//! example (dynamic registration, PKCE, the loopback redirect played headless), calls `whoami`, refreshes
//! after `--token-ttl`, and a reused refresh token revokes its family; and it steps up from `notes:read` to
//! `notes:write` after the MCP server's 403 `insufficient_scope`.
//!
//! The examples are built by `cargo test` (all targets); run alone, build them first:
//! `cargo build -p keel-mcp --examples --features authorization-server,resource-server`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Every wait here is bounded by this.
const BOUND: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is not built: cargo build -p keel-mcp --examples --all-features", path.display());
    path
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a reader produces, on a channel (so every read is bounded by a timeout).
fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_matching(rx: &mpsc::Receiver<String>, what: impl Fn(&str) -> bool) -> String {
    loop {
        let line = rx.recv_timeout(BOUND).expect("the expected line within the bound");
        if what(&line) {
            return line;
        }
    }
}

/// A GET that follows no redirect: the status line and the `Location` header.
fn get(url: &str) -> (String, Option<String>) {
    let url = url::Url::parse(url).unwrap();
    let mut stream = TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", url.authority()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or("").to_owned();
    let location = response.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_owned())
    });
    (status, location)
}

fn post_form(url: &str, body: &str) -> Value {
    let url = url::Url::parse(url).unwrap();
    let mut stream = TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    write!(
        stream,
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.path(),
        url.authority(),
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let json = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// Runs `oauth_client URL whoami`; plays the browser if it asks for one. Returns its `result` line.
fn login_and_whoami(mcp: &str, token_dir: &std::path::Path, expect_browser: bool) -> String {
    call_tool(mcp, token_dir, &["whoami"], expect_browser)
}

/// Runs `oauth_client URL TOOL [ARGS]`; plays the browser (once) if it asks for one. Returns its `result` line.
fn call_tool(mcp: &str, token_dir: &std::path::Path, tool: &[&str], expect_browser: bool) -> String {
    let mut child = Command::new(example("oauth_client"))
        .arg(mcp)
        .args(tool)
        .env("KEEL_OAUTH_NO_BROWSER", "1")
        .env("KEEL_TOKEN_DIR", token_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let child = Running(child);
    if expect_browser {
        next_matching(&stderr, |l| l.contains("Open this URL in your browser to authorize:"));
        let url = next_matching(&stderr, |l| !l.trim().is_empty());
        let (status, location) = get(url.trim());
        assert!(status.contains(" 302 "), "{status}");
        let (callback_status, _) = get(&location.expect("a redirect to the client's loopback listener"));
        assert!(callback_status.contains(" 200 "), "{callback_status}");
    }
    let result = next_matching(&stdout, |l| l.starts_with("result "));
    drop(child);
    // No second authorization was asked for.
    assert!(stderr.try_iter().all(|l| !l.contains("Open this URL")), "a browser was needed again");
    result
}

fn stored_tokens(dir: &std::path::Path) -> Value {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .expect("a token file");
    serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap()
}

/// Starts the `authorization_server` example with `args` (plus a free port and `--auto-approve`): the
/// running process and its issuer.
fn start_example(args: &[&str]) -> (Running, String) {
    let mut server = Command::new(example("authorization_server"))
        .args(["--port", "0", "--auto-approve"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(server.stdout.take().unwrap());
    let server = Running(server);
    let listening = next_matching(&out, |l| l.contains("listening"));
    let issuer = listening.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).unwrap().to_owned();
    (server, issuer)
}

/// The `whoami` answer in a `result` line.
fn whoami(result: &str) -> Value {
    let result: Value = serde_json::from_str(result.trim_start_matches("result ")).unwrap();
    result["structuredContent"].clone()
}

#[test]
fn keel_oauth_client_logs_in_refreshes_and_reuse_revokes_the_family() {
    let (_server, issuer) = start_example(&["--token-ttl", "2"]);
    let mcp = format!("{issuer}/mcp");
    let dir = std::env::temp_dir().join(format!("keel-as-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let first = login_and_whoami(&mcp, &dir, true);
    assert!(first.contains("demo-user"), "{first}");
    let before = stored_tokens(&dir);
    let old_refresh = before["tokens"]["refresh_token"].as_str().expect("a refresh token").to_owned();
    let client_id = before["clients"][&issuer]["client_id"].as_str().unwrap().to_owned();

    // Past the two-second lifetime the stored access token is dead: the client refreshes, no browser. The
    // lifetime is wall-clock seconds in a JWT another process checks, so real time has to pass.
    std::thread::sleep(Duration::from_millis(2500));
    let second = login_and_whoami(&mcp, &dir, false);
    assert!(second.contains("demo-user"), "{second}");
    let after = stored_tokens(&dir);
    let new_refresh = after["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(old_refresh, new_refresh, "rotated on use");

    // The rotated-out token again: refused, and the family — the client's current token too — is revoked.
    let form = |token: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", &client_id)])
            .finish()
    };
    let reuse = post_form(&format!("{issuer}/token"), &form(&old_refresh));
    assert_eq!(reuse["error"], "invalid_grant", "{reuse}");
    let current = post_form(&format!("{issuer}/token"), &form(&new_refresh));
    assert_eq!(current["error"], "invalid_grant", "{current}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keel_oauth_client_steps_up_after_insufficient_scope() {
    let (_server, issuer) = start_example(&[]);
    let mcp = format!("{issuer}/mcp");
    let dir = std::env::temp_dir().join(format!("keel-as-step-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // The 401 asks for notes:read: that is what the first login gets.
    let first = whoami(&login_and_whoami(&mcp, &dir, true));
    assert_eq!(first["sub"], "demo-user", "{first}");
    let scopes = |who: &Value| -> Vec<String> {
        who["scopes"].as_array().unwrap().iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    assert!(scopes(&first).contains(&"notes:read".to_owned()), "{first}");
    assert!(!scopes(&first).contains(&"notes:write".to_owned()), "{first}");

    // add_note needs notes:write: 403 insufficient_scope, one new authorization (the browser once), success.
    let added = call_tool(&mcp, &dir, &["add_note", r#"{"text":"stepped up"}"#], true);
    let added: Value = serde_json::from_str(added.trim_start_matches("result ")).unwrap();
    assert_ne!(added["isError"], true, "{added}");
    assert_eq!(added["content"][0]["text"], "added", "{added}");

    // The stored token now carries both scopes; no browser needed.
    let after = whoami(&login_and_whoami(&mcp, &dir, false));
    assert!(scopes(&after).contains(&"notes:write".to_owned()), "{after}");
    assert!(scopes(&after).contains(&"notes:read".to_owned()), "{after}");
    let _ = std::fs::remove_dir_all(&dir);
}
