//! [`SqliteStore`]: the authorization server's [`Store`] in one SQLite file (feature
//! `authorization-server-sqlite`), so a small deployment keeps its clients and refresh tokens across restarts.
//!
//! Rows hold the same JSON the in-memory store keeps as values, under the same hashed keys; the decisions
//! that must be atomic (redeeming a code, rotating a refresh token) run in one transaction each, behind one
//! connection. A refresh-token family is one row (its grant and the key of its current token; a row with
//! neither is a family refused before it started). The file is created with mode 0600.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::client::Client;
use super::error::AuthServerError;
use super::store::full;
use super::store::{CodeGrant, CodeRedemption, RefreshGrant, RefreshUse, Store, StoreLimits};
use crate::auth::client::pkce::constant_time_eq;
use crate::auth::client::token::now_secs;

/// A [`Store`] in a SQLite database file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    limits: StoreLimits,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("limits", &self.limits).finish_non_exhaustive()
    }
}

fn db(e: rusqlite::Error) -> AuthServerError {
    AuthServerError::Store(format!("sqlite: {e}"))
}

fn json_err(e: serde_json::Error) -> AuthServerError {
    AuthServerError::Store(format!("stored record unreadable: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (key TEXT PRIMARY KEY, doc TEXT NOT NULL, expires INTEGER NOT NULL,
    family TEXT);
CREATE TABLE IF NOT EXISTS refresh_families (family TEXT PRIMARY KEY, doc TEXT, current TEXT,
    expires INTEGER NOT NULL);
";

impl SqliteStore {
    /// Opens (or creates, mode 0600) the database at `path`, with the default [`StoreLimits`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuthServerError> {
        Self::open_with_limits(path, StoreLimits::default())
    }

    /// Opens the database at `path` with `limits`.
    pub fn open_with_limits(path: impl AsRef<Path>, limits: StoreLimits) -> Result<Self, AuthServerError> {
        let path = path.as_ref();
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| AuthServerError::Store(format!("{}: {e}", path.display())))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteStore { conn: Mutex::new(conn), limits })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn count(conn: &Connection, table: &str) -> Result<usize, AuthServerError> {
    let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(db)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn secs(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn put_client(&self, client: Client) -> Result<(), AuthServerError> {
        let conn = self.conn();
        let exists: bool = conn
            .query_row("SELECT 1 FROM clients WHERE id = ?1", params![client.client_id], |_| Ok(true))
            .optional()
            .map_err(db)?
            .unwrap_or(false);
        if !exists && count(&conn, "clients")? >= self.limits.max_clients {
            return Err(full("clients"));
        }
        let doc = serde_json::to_string(&client).map_err(json_err)?;
        conn.execute("INSERT OR REPLACE INTO clients (id, doc) VALUES (?1, ?2)", params![client.client_id, doc])
            .map_err(db)?;
        Ok(())
    }

    fn client(&self, client_id: &str) -> Result<Option<Client>, AuthServerError> {
        let doc: Option<String> = self
            .conn()
            .query_row("SELECT doc FROM clients WHERE id = ?1", params![client_id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        doc.map(|d| serde_json::from_str(&d).map_err(json_err)).transpose()
    }

    fn put_code(&self, key: String, grant: CodeGrant) -> Result<(), AuthServerError> {
        let conn = self.conn();
        if count(&conn, "codes")? >= self.limits.max_codes {
            conn.execute("DELETE FROM codes WHERE expires <= ?1", params![secs(now_secs())]).map_err(db)?;
            if count(&conn, "codes")? >= self.limits.max_codes {
                return Err(full("authorization codes"));
            }
        }
        let doc = serde_json::to_string(&grant).map_err(json_err)?;
        conn.execute(
            "INSERT OR REPLACE INTO codes (key, doc, expires) VALUES (?1, ?2, ?3)",
            params![key, doc, secs(grant.expires_at)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn redeem_code(&self, key: &str, family: &str, now: u64) -> Result<CodeRedemption, AuthServerError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let row: Option<(String, i64, Option<String>)> = tx
            .query_row("SELECT doc, expires, family FROM codes WHERE key = ?1", params![key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(db)?;
        let outcome = match row {
            None => CodeRedemption::Unknown,
            Some((_, _, Some(family))) => CodeRedemption::Replayed { family: Some(family) },
            Some((_, expires, None)) if expires <= secs(now) => {
                tx.execute("DELETE FROM codes WHERE key = ?1", params![key]).map_err(db)?;
                CodeRedemption::Unknown
            }
            Some((doc, _, None)) => {
                tx.execute("UPDATE codes SET family = ?2 WHERE key = ?1", params![key, family]).map_err(db)?;
                CodeRedemption::Fresh(serde_json::from_str(&doc).map_err(json_err)?)
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn start_refresh_family(&self, key: String, grant: RefreshGrant) -> Result<bool, AuthServerError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let now = secs(now_secs());
        let blocked: bool = tx
            .query_row(
                "SELECT 1 FROM refresh_families WHERE family = ?1 AND expires > ?2",
                params![grant.family, now],
                |_| Ok(true),
            )
            .optional()
            .map_err(db)?
            .unwrap_or(false);
        if blocked {
            return Ok(false);
        }
        if count(&tx, "refresh_families")? >= self.limits.max_refresh_tokens {
            tx.execute("DELETE FROM refresh_families WHERE expires <= ?1", params![now]).map_err(db)?;
            if count(&tx, "refresh_families")? >= self.limits.max_refresh_tokens {
                return Err(full("refresh tokens"));
            }
        }
        let doc = serde_json::to_string(&grant).map_err(json_err)?;
        tx.execute(
            "INSERT OR REPLACE INTO refresh_families (family, doc, current, expires) VALUES (?1, ?2, ?3, ?4)",
            params![grant.family, doc, key, secs(grant.expires_at)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(true)
    }

    fn rotate_refresh_token(
        &self,
        family: &str,
        key: &str,
        next: String,
        now: u64,
    ) -> Result<RefreshUse, AuthServerError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let row: Option<(Option<String>, Option<String>, i64)> = tx
            .query_row("SELECT doc, current, expires FROM refresh_families WHERE family = ?1", params![family], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(db)?;
        let outcome = match row {
            Some((Some(doc), Some(current), expires)) if expires > secs(now) => {
                if constant_time_eq(&current, key) {
                    tx.execute("UPDATE refresh_families SET current = ?2 WHERE family = ?1", params![family, next])
                        .map_err(db)?;
                    RefreshUse::Current(serde_json::from_str(&doc).map_err(json_err)?)
                } else {
                    tx.execute("DELETE FROM refresh_families WHERE family = ?1", params![family]).map_err(db)?;
                    RefreshUse::Reused
                }
            }
            _ => RefreshUse::Unknown,
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn refresh_family(&self, family: &str, now: u64) -> Result<Option<RefreshGrant>, AuthServerError> {
        let doc: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT doc FROM refresh_families WHERE family = ?1 AND expires > ?2",
                params![family, secs(now)],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        doc.flatten().map(|d| serde_json::from_str(&d).map_err(json_err)).transpose()
    }

    fn revoke_family(&self, family: &str, until: u64) -> Result<(), AuthServerError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let live: bool = tx
            .query_row("SELECT 1 FROM refresh_families WHERE family = ?1 AND doc IS NOT NULL", params![family], |_| {
                Ok(true)
            })
            .optional()
            .map_err(db)?
            .unwrap_or(false);
        if live {
            // Its tokens name it: once it is gone they are unknown.
            tx.execute("DELETE FROM refresh_families WHERE family = ?1", params![family]).map_err(db)?;
        } else {
            // Not started yet: a marker keeps it from starting until `until`.
            tx.execute(
                "INSERT OR REPLACE INTO refresh_families (family, doc, current, expires) VALUES (?1, NULL, NULL, ?2)",
                params![family, secs(until)],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::fixtures::{code_grant, refresh_grant};
    use super::*;

    fn grant(family: &str) -> RefreshGrant {
        refresh_grant(family, u64::MAX / 4)
    }

    #[test]
    fn survives_a_restart_and_keeps_the_rules() {
        let dir = std::env::temp_dir().join(format!("keel-sqlite-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("as.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.put_client(Client::public("c", vec!["http://127.0.0.1:1/cb".into()])).unwrap();
            assert!(store.start_refresh_family("r1".into(), grant("f")).unwrap());
            let code = code_grant();
            store.put_code("k".into(), code.clone()).unwrap();
            assert_eq!(store.redeem_code("k", "h", 50).unwrap(), CodeRedemption::Fresh(code));
            // A replay racing the first redemption already knows the family, and stops it from starting.
            let replay = store.redeem_code("k", "other", 51).unwrap();
            assert_eq!(replay, CodeRedemption::Replayed { family: Some("h".into()) });
            store.revoke_family("h", u64::MAX / 4).unwrap();
            assert!(!store.start_refresh_family("h1".into(), grant("h")).unwrap());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.client("c").unwrap().unwrap().client_id, "c", "clients survive a restart");
        assert_eq!(store.refresh_family("f", 10).unwrap().unwrap().family, "f");
        assert!(matches!(store.rotate_refresh_token("f", "r1", "r2".into(), 10).unwrap(), RefreshUse::Current(_)));
        assert!(matches!(store.rotate_refresh_token("f", "r2", "r3".into(), 10).unwrap(), RefreshUse::Current(_)));
        assert_eq!(store.rotate_refresh_token("f", "r1", "x".into(), 11).unwrap(), RefreshUse::Reused);
        assert_eq!(store.rotate_refresh_token("f", "r3", "y".into(), 12).unwrap(), RefreshUse::Unknown, "revoked");
        assert!(store.start_refresh_family("g1".into(), grant("g")).unwrap());
        store.revoke_family("g", 0).unwrap();
        assert_eq!(store.rotate_refresh_token("g", "g1", "g2".into(), 13).unwrap(), RefreshUse::Unknown);
        assert_eq!(store.redeem_code("nope", "z", 1).unwrap(), CodeRedemption::Unknown);

        let small = SqliteStore::open_with_limits(
            dir.join("small.db"),
            StoreLimits { max_clients: 1, max_refresh_tokens: 1, ..StoreLimits::default() },
        )
        .unwrap();
        small.put_client(Client::public("a", vec![])).unwrap();
        small.put_client(Client::public("a", vec![])).unwrap();
        assert!(small.put_client(Client::public("b", vec![])).is_err());
        assert!(small.start_refresh_family("a".into(), grant("f")).unwrap());
        for round in 0..5 {
            let (key, next) = (format!("k{round}"), format!("k{}", round + 1));
            let key = if round == 0 { "a".to_owned() } else { key };
            assert!(matches!(small.rotate_refresh_token("f", &key, next, 20).unwrap(), RefreshUse::Current(_)));
        }
        assert!(matches!(small.start_refresh_family("b".into(), grant("g")), Err(AuthServerError::StoreFull(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
