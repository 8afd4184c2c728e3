//! Soak: a process killed with SIGKILL while it writes the token store never leaves a corrupt or
//! world-readable token file. The test re-runs its own binary as the writer (selected by an environment
//! variable), kills it after a random number of completed writes, and checks the file each time.
#![cfg(all(feature = "auth", unix))]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

use keel_mcp::auth::client::{ClientCredentials, FileTokenStore, StoredAuth, TokenSet, TokenStore};

const CHILD_DIR: &str = "KEEL_TOKEN_SOAK_DIR";
const KEY: &str = "https://mcp.example/mcp";

fn sample(n: u64) -> StoredAuth {
    let mut s = StoredAuth::default();
    // Large enough that a write is more than one syscall's worth of work.
    s.clients.insert("https://as.example".into(), ClientCredentials::confidential("id".repeat(2000), "secret"));
    s.tokens = Some(TokenSet {
        access_token: format!("access-{n}"),
        token_type: "Bearer".into(),
        refresh_token: Some(format!("refresh-{n}")),
        expires_at: Some(n + 3600),
        issued_at: Some(n),
        scope: None,
        issuer: "https://as.example".into(),
        resource: KEY.into(),
    });
    s
}

/// The writer: saves forever, printing a line after each completed save.
async fn write_forever(dir: &str) -> ! {
    let store = FileTokenStore::new(dir);
    let mut n = 0u64;
    loop {
        n += 1;
        store.save(KEY, sample(n)).await.unwrap();
        println!("saved {n}");
    }
}

#[tokio::test]
async fn sigkill_while_saving_never_corrupts_or_exposes_the_token_file() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        write_forever(&dir).await;
    }
    let dir = std::env::temp_dir().join(format!("keel-token-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::process::id() as u64 | 1;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .args(["--exact", "sigkill_while_saving_never_corrupts_or_exposes_the_token_file", "--nocapture"])
            .env(CHILD_DIR, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill after a random number (1..=40) of completed saves, i.e. at a random point of a later one.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let saves = 1 + seed % 40;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < saves {
            let line = lines.next().expect("the writer keeps writing").unwrap();
            if line.starts_with("saved ") {
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let store = FileTokenStore::new(&dir);
        let loaded = store.load(KEY).await.unwrap_or_else(|e| panic!("round {round}: corrupt token file: {e}"));
        let tokens = loaded.and_then(|s| s.tokens).expect("a complete file");
        assert!(tokens.access_token.starts_with("access-"));
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "round {round}: {:?} is readable by others ({mode:o})", entry.file_name());
            if entry.path().extension().is_some_and(|e| e == "json") {
                assert_eq!(mode, 0o600, "round {round}: the token file");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
