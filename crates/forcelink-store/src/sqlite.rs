//! [`SqliteStore`]: one SQLite file (WAL) shared by every process on the machine. Each store
//! instance holds one connection; work runs on tokio's blocking pool. The lease is a row taken
//! in an `IMMEDIATE` transaction, so two processes can never both hold it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use forcelink_auth::Clock;
use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::codec::{self, from_millis, millis};
use crate::crypto::MasterKey;
use crate::{OpenError, poll_lease};

/// Schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
/// How long a statement waits for another process's write lock. 10 seconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS token_sets (
    connection TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    connection TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    fence INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fences (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next INTEGER NOT NULL
);
INSERT OR IGNORE INTO fences (id, next) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS approvals (
    username TEXT NOT NULL,
    client_id TEXT NOT NULL,
    connection TEXT NOT NULL,
    approved_at_ms INTEGER NOT NULL,
    PRIMARY KEY (username, client_id, connection)
);
";

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    // The one connection of this store instance; statements run one at a time.
    conn: Mutex<Connection>,
    key: MasterKey,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).field("key", &self.inner.key).finish()
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("SQLite: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let fail = |message: String| OpenError::Sqlite { path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| fail(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| fail(e.to_string()))?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| fail(e.to_string()))?;
        let version: i64 =
            tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
        if version > SCHEMA_VERSION {
            return Err(fail(format!(
                "the file has schema version {version}, newer than this forcelink ({SCHEMA_VERSION}); upgrade forcelink"
            )));
        }
        tx.execute_batch(SCHEMA_V1).map_err(|e| fail(e.to_string()))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| fail(e.to_string()))?;
        tx.commit().map_err(|e| fail(e.to_string()))?;
        Ok(Self { inner: Arc::new(Inner { path: path.to_owned(), conn: Mutex::new(conn), key, clock }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn, &inner)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task: {e}")))?
    }
}

fn load_row(conn: &Connection, key: &MasterKey, connection: &ConnectionId) -> Result<Option<StoredTokens>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT version, sealed FROM token_sets WHERE connection = ?1", [connection.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?;
    row.map(|(version, sealed)| {
        Ok(StoredTokens { set: codec::open(key, connection, &sealed)?, version: u64::try_from(version).unwrap_or(0) })
    })
    .transpose()
}

fn try_lease(
    conn: &mut Connection,
    now: SystemTime,
    connection: &ConnectionId,
    holder: &LeaseHolder,
    ttl: Duration,
) -> Result<Option<Lease>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
    let current: Option<(String, i64)> = tx
        .query_row("SELECT holder, expires_at_ms FROM leases WHERE connection = ?1", [connection.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?;
    if let Some((h, expires)) = current
        && h != holder.0
        && u64::try_from(expires).unwrap_or(0) > millis(now)
    {
        return Ok(None);
    }
    let fence: i64 = tx
        .query_row("UPDATE fences SET next = next + 1 WHERE id = 1 RETURNING next", [], |r| r.get(0))
        .map_err(db_err)?;
    let expires_at = now + ttl;
    tx.execute(
        "INSERT INTO leases (connection, holder, fence, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (connection) DO UPDATE SET holder = excluded.holder, fence = excluded.fence,
         expires_at_ms = excluded.expires_at_ms",
        params![connection.as_str(), holder.0, fence, millis(expires_at) as i64],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    Ok(Some(Lease {
        connection: connection.clone(),
        holder: holder.clone(),
        fence: u64::try_from(fence).unwrap_or(0),
        expires_at,
    }))
}

fn approvals_of(conn: &Connection, user: &str, client_id: &str) -> Result<Vec<Approval>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT connection, approved_at_ms FROM approvals WHERE username = ?1 AND client_id = ?2
             ORDER BY approved_at_ms, connection",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([user, client_id], |r| {
            let connection: String = r.get(0)?;
            let at: i64 = r.get(1)?;
            Ok(Approval {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                connection: ConnectionId::new(connection),
                approved_at: from_millis(u64::try_from(at).unwrap_or(0)),
            })
        })
        .map_err(db_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
}

impl TokenStore for SqliteStore {
    fn load<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredTokens>, StoreError>> {
        let connection = connection.clone();
        Box::pin(self.run(move |conn, inner| load_row(conn, &inner.key, &connection)))
    }

    fn compare_and_swap<'a>(
        &'a self,
        connection: &'a ConnectionId,
        expected: Option<u64>,
        set: &'a TokenSet,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        let connection = connection.clone();
        let sealed = codec::seal(&self.inner.key, &connection, set);
        Box::pin(self.run(move |conn, inner| {
            let now = millis(inner.clock.now()) as i64;
            let changed = match expected {
                Some(v) => conn
                    .execute(
                        "UPDATE token_sets SET version = ?1, sealed = ?2, updated_at_ms = ?3
                         WHERE connection = ?4 AND version = ?5",
                        params![v as i64 + 1, sealed, now, connection.as_str(), v as i64],
                    )
                    .map_err(db_err)?,
                None => conn
                    .execute(
                        "INSERT INTO token_sets (connection, version, sealed, updated_at_ms) VALUES (?1, 1, ?2, ?3)
                         ON CONFLICT (connection) DO NOTHING",
                        params![connection.as_str(), sealed, now],
                    )
                    .map_err(db_err)?,
            };
            if changed == 1 {
                Ok(CasOutcome::Swapped { version: expected.unwrap_or(0) + 1 })
            } else {
                Ok(CasOutcome::Conflict { current: load_row(conn, &inner.key, &connection)?.map(Box::new) })
            }
        }))
    }

    fn remove<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<(), StoreError>> {
        let connection = connection.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute("DELETE FROM token_sets WHERE connection = ?1", [connection.as_str()]).map_err(db_err)?;
            Ok(())
        }))
    }

    fn acquire_lease<'a>(
        &'a self,
        connection: &'a ConnectionId,
        holder: &'a LeaseHolder,
        ttl: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(poll_lease(wait, move || {
            let (c, h) = (connection.clone(), holder.clone());
            self.run(move |conn, inner| try_lease(conn, inner.clock.now(), &c, &h, ttl))
        }))
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        let lease = lease.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "DELETE FROM leases WHERE connection = ?1 AND fence = ?2",
                params![lease.connection.as_str(), lease.fence as i64],
            )
            .map_err(db_err)?;
            Ok(())
        }))
    }

    fn record_approval<'a>(&'a self, approval: &'a Approval) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        let a = approval.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "INSERT INTO approvals (username, client_id, connection, approved_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (username, client_id, connection) DO UPDATE SET approved_at_ms = excluded.approved_at_ms",
                params![a.user, a.client_id, a.connection.as_str(), millis(a.approved_at) as i64],
            )
            .map_err(db_err)?;
            approvals_of(conn, &a.user, &a.client_id)
        }))
    }

    fn approvals<'a>(&'a self, user: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        let (user, client_id) = (user.to_owned(), client_id.to_owned());
        Box::pin(self.run(move |conn, _| approvals_of(conn, &user, &client_id)))
    }

    fn remove_approval<'a>(
        &'a self,
        user: &'a str,
        client_id: &'a str,
        connection: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (user, client_id, connection) = (user.to_owned(), client_id.to_owned(), connection.clone());
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "DELETE FROM approvals WHERE username = ?1 AND client_id = ?2 AND connection = ?3",
                params![user, client_id, connection.as_str()],
            )
            .map_err(db_err)?;
            Ok(())
        }))
    }
}
