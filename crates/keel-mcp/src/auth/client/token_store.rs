//! Where tokens and client registrations live between runs: the [`TokenStore`] trait, an in-memory store and
//! a file store (files 0600 in a 0700 directory, written through an exclusively created temporary file,
//! fsynced and renamed so a crash or `kill -9` leaves the old file or the new one, and an advisory lock so two
//! processes never refresh the same token at once). Everything is keyed by the MCP server URL; registrations inside are keyed by issuer.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::registration::ClientCredentials;
use super::token::TokenSet;
use crate::engine::BoxFuture;

/// Everything stored for one MCP server.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredAuth {
    /// The current tokens (they name their issuer and resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSet>,
    /// Registrations, keyed by authorization server issuer (SEP-2352).
    #[serde(default)]
    pub clients: BTreeMap<String, ClientCredentials>,
}

/// Held while a flow or refresh runs; dropping it releases the lock.
pub struct StoreLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Persists [`StoredAuth`] per MCP server.
pub trait TokenStore: Send + Sync + 'static {
    /// What is stored for `key`, if anything.
    fn load(&self, key: &str) -> BoxFuture<Result<Option<StoredAuth>, AuthError>>;
    /// Replaces what is stored for `key`.
    fn save(&self, key: &str, value: StoredAuth) -> BoxFuture<Result<(), AuthError>>;
    /// An exclusive lock for `key` (across processes where the store is shared), held while refreshing.
    fn lock(&self, key: &str) -> BoxFuture<Result<StoreLock, AuthError>>;
}

/// Keeps everything in memory, for one process.
#[derive(Clone, Default)]
pub struct MemoryTokenStore {
    values: Arc<Mutex<HashMap<String, StoredAuth>>>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryTokenStore(…)")
    }
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self, key: &str) -> BoxFuture<Result<Option<StoredAuth>, AuthError>> {
        let v = self.values.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned();
        Box::pin(std::future::ready(Ok(v)))
    }

    fn save(&self, key: &str, value: StoredAuth) -> BoxFuture<Result<(), AuthError>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), value);
        Box::pin(std::future::ready(Ok(())))
    }

    fn lock(&self, key: &str) -> BoxFuture<Result<StoreLock, AuthError>> {
        let m = self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_owned()).or_default().clone();
        Box::pin(async move { Ok(StoreLock(Box::new(m.lock_owned().await))) })
    }
}

/// One JSON file per MCP server in a directory, readable by the owner only.
#[derive(Clone, Debug)]
pub struct FileTokenStore {
    dir: PathBuf,
}

impl FileTokenStore {
    /// Stores files under `dir` (created with mode 0700 if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileTokenStore { dir: dir.into() }
    }

    fn path(&self, key: &str, ext: &str) -> PathBuf {
        let digest = hmac_sha256::Hash::hash(key.as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.{ext}"))
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&self.dir)
    }
}

/// Opens (creating with mode 0600) the lock file; it holds no secret.
fn open_lock_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Writes `bytes` to `path` so that a crash at any point leaves either the old file or the new one, never a
/// partial or more readable one: a temporary file with a random name, created exclusively (`O_EXCL`,
/// `O_NOFOLLOW`) with mode 0600, written and fsynced, renamed over `path`, then the directory fsynced so the
/// rename itself survives a power loss.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().ok_or_else(|| std::io::Error::other("token file path has no directory"))?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| std::io::Error::other(e.to_string()))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{suffix}.tmp"));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    let mut f = o.open(&tmp)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

struct FileLock(std::fs::File);

impl Drop for FileLock {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor we own; failure only means the lock was already gone.
            unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Store(std::io::Error::other(e.to_string())))?
        .map_err(AuthError::Store)
}

impl TokenStore for FileTokenStore {
    fn load(&self, key: &str) -> BoxFuture<Result<Option<StoredAuth>, AuthError>> {
        let path = self.path(key, "json");
        Box::pin(blocking(move || match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }))
    }

    fn save(&self, key: &str, value: StoredAuth) -> BoxFuture<Result<(), AuthError>> {
        let this = self.clone();
        let path = self.path(key, "json");
        Box::pin(blocking(move || {
            this.ensure_dir()?;
            let bytes = serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?;
            write_atomically(&path, &bytes)
        }))
    }

    fn lock(&self, key: &str) -> BoxFuture<Result<StoreLock, AuthError>> {
        let this = self.clone();
        let path = self.path(key, "lock");
        Box::pin(blocking(move || {
            this.ensure_dir()?;
            let f = open_lock_file(&path)?;
            #[cfg(unix)]
            {
                use std::os::fd::AsRawFd;
                // SAFETY: flock on a descriptor we own; blocks this worker thread until the lock is free.
                if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(StoreLock(Box::new(FileLock(f))))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredAuth {
        let mut s = StoredAuth::default();
        s.clients.insert("https://as.example".into(), ClientCredentials::confidential("id", "secret"));
        s
    }

    #[tokio::test]
    async fn memory_round_trip() {
        let store = MemoryTokenStore::new();
        assert_eq!(store.load("k").await.unwrap(), None);
        store.save("k", sample()).await.unwrap();
        assert_eq!(store.load("k").await.unwrap(), Some(sample()));
        let _l = store.lock("k").await.unwrap();
    }

    #[tokio::test]
    async fn file_round_trip_private_and_atomic() {
        let dir = std::env::temp_dir().join(format!("keel-token-store-{}", std::process::id()));
        let store = FileTokenStore::new(&dir);
        assert_eq!(store.load("https://mcp.example/mcp").await.unwrap(), None);
        store.save("https://mcp.example/mcp", sample()).await.unwrap();
        assert_eq!(store.load("https://mcp.example/mcp").await.unwrap(), Some(sample()));
        let path = store.path("https://mcp.example/mcp", "json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_planted_temp_file_cannot_widen_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("keel-token-planted-{}", std::process::id()));
        let store = FileTokenStore::new(&dir);
        store.ensure_dir().unwrap();
        let path = store.path("k", "json");
        // What an attacker (or an older version) could leave: a world-readable file at the old, predictable
        // temp name, and a world-readable token file.
        for planted in [path.with_extension(format!("json.tmp{}", std::process::id())), path.clone()] {
            std::fs::write(&planted, b"{}").unwrap();
            std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        store.save("k", sample()).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(store.load("k").await.unwrap(), Some(sample()));
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn file_lock_is_exclusive() {
        let dir = std::env::temp_dir().join(format!("keel-token-lock-{}", std::process::id()));
        let store = FileTokenStore::new(&dir);
        let first = store.lock("k").await.unwrap();
        let s2 = store.clone();
        let second = tokio::spawn(async move { s2.lock("k").await.map(|_| ()) });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!second.is_finished(), "second lock must wait");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), second).await.unwrap().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
