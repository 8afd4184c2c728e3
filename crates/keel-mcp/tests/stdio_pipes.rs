//! A server on its real stdin/stdout pipes, driven by the Keel client through a child process: the pipes are
//! switched to non-blocking mode for the reactor, and handed back in their original mode when the server ends.
//!
//! No libtest harness (`harness = false`): the child is this same binary, and libtest would print to stdout.

#[cfg(unix)]
fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
    } else {
        parent();
    }
    println!("stdio_pipes: ok");
}

#[cfg(not(unix))]
fn main() {}

#[cfg(unix)]
const CHILD: &str = "KEEL_STDIO_PIPES_CHILD";

/// Whether `fd` has `O_NONBLOCK` set.
#[cfg(unix)]
fn non_blocking(fd: i32) -> bool {
    // SAFETY: F_GETFL on the process's own standard descriptors.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl({fd}) failed");
    flags & libc::O_NONBLOCK != 0
}

/// The server side: serves until stdin closes, then writes whether both pipes are blocking again to the file the
/// parent named.
#[cfg(unix)]
fn child() {
    use keel_mcp::protocol::Implementation;
    use keel_mcp::server::Server;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Add {
        a: f64,
        b: f64,
    }

    assert!(!non_blocking(0) && !non_blocking(1), "pipes start blocking");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        Server::builder(Implementation::new("pipes", "0"))
            .tool("add", "Adds", |Add { a, b }: Add| async move { (a + b).to_string() })
            .build()
            .serve_stdio()
            .await
            .unwrap();
    });
    let verdict = if non_blocking(0) || non_blocking(1) { "left non-blocking" } else { "restored" };
    std::fs::write(std::env::var_os(CHILD).unwrap(), verdict).unwrap();
}

#[cfg(unix)]
fn parent() {
    use keel_mcp::client::Client;
    use keel_mcp::protocol::Implementation;
    use keel_mcp::transport::ChildProcess;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let exe = std::env::current_exe().unwrap();
        let verdict_file = std::env::temp_dir().join(format!("keel-stdio-pipes-{}", std::process::id()));
        let _ = std::fs::remove_file(&verdict_file);
        let transport = ChildProcess::new(exe).env(CHILD, &verdict_file).inherit_stderr(true).spawn().unwrap();
        let client = Client::builder(Implementation::new("parent", "0")).connect(transport).await.unwrap();
        // Many sequential round trips: each one waits on the reactor for the pipe to become readable.
        for i in 0..200 {
            let result = client.call_tool("add", serde_json::json!({"a": i, "b": 1})).await.unwrap();
            let text = serde_json::to_value(&result.content).unwrap()[0]["text"].as_str().unwrap().to_owned();
            assert_eq!(text, (i + 1).to_string());
        }
        // Closing ends the child (stdin closes, it finishes and exits); it writes its verdict on the way out.
        client.close().await;
        let verdict = std::fs::read_to_string(&verdict_file).expect("the child wrote its verdict before exiting");
        let _ = std::fs::remove_file(&verdict_file);
        assert_eq!(verdict, "restored");
    });
}
