//! [`SqliteStore`]: one SQLite file (WAL) shared by every process on the machine. Each store
//! instance holds one connection; work runs on tokio's blocking pool. The lease is a row taken
//! in an `IMMEDIATE` transaction, so two processes can never both hold it.
//!
//! Schema versions (`PRAGMA user_version`): 1 = token sets, leases, fences, approvals;
//! 2 adds connections (sealed specs), the audit log, API keys and `meta` (the id of the master
//! key that sealed the store, checked on open); 3 adds the `mac` column of API keys (see
//! [`crate::apikey`]). Opening runs the missing steps in order, in one transaction.
//!
//! The file is created with mode 0600 and a directory created for it with mode 0700 (Unix);
//! SQLite gives its `-wal` and `-shm` files the mode of the database file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use forcelink_auth::Clock;
use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::apikey::{ApiKeyRow, checked_rows};
use crate::codec::{self, from_millis, millis};
use crate::connection::ConnectionSpec;
use crate::crypto::{MacKey, MasterKey, create_private_dir, sealed_key_id};
use crate::registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};
use crate::{OpenError, key_mismatch, poll_lease, rotated_away};

/// Schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;
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

const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS connections (
    name TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    connection TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_by_connection ON audit_log (connection, at_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    label TEXT NOT NULL,
    connections TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Runs the migration that brings a store from version `to - 1` to `to`. Steps 1 and 2 create
/// tables only when missing (stores written before versions were recorded may hold some).
fn migrate_step(tx: &Connection, to: i64, key: &MasterKey) -> rusqlite::Result<()> {
    match to {
        1 => tx.execute_batch(SCHEMA_V1),
        2 => tx.execute_batch(SCHEMA_V2),
        3 => migrate_to_v3(tx, &key.api_key_mac_key()),
        _ => Err(rusqlite::Error::InvalidParameterName(format!("no migration to schema version {to}"))),
    }
}

/// Version 3: every API-key row carries a MAC. The rows already there get theirs now, under the
/// store's key (checked against the store before any step runs). A row planted in the file
/// before this upgrade is blessed with the genuine ones: version 2 rows carry no proof of who
/// wrote them, so nothing can tell them apart. That is unavoidable, and acceptable because the
/// protection holds from the upgrade on, and `forcelink apikey list` shows every key to review.
fn migrate_to_v3(tx: &Connection, mac_key: &MacKey) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE api_keys ADD COLUMN mac TEXT")?;
    for mut row in read_api_key_rows(tx, "")? {
        row.sign(mac_key);
        tx.execute("UPDATE api_keys SET mac = ?1 WHERE id = ?2", params![row.mac, row.id])?;
    }
    Ok(())
}

/// The `meta` row naming the master key that sealed the store.
const KEY_ID: &str = "key_id";

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    // The one connection of this store instance; statements run one at a time.
    conn: Mutex<Connection>,
    key: MasterKey,
    /// Derived from `key`: signs API-key rows.
    mac_key: MacKey,
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

/// The id of the key that sealed the store: the `meta` row, else (a version 1 store) the header
/// of any sealed value; `None` for a store holding nothing sealed yet.
fn stored_key_id_of(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if has_meta
        && let Some(id) = conn.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_ID], |r| r.get(0)).optional()?
    {
        return Ok(Some(id));
    }
    let has_tokens: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'token_sets')",
        [],
        |r| r.get(0),
    )?;
    if !has_tokens {
        return Ok(None);
    }
    let sealed: Option<Vec<u8>> =
        conn.query_row("SELECT sealed FROM token_sets LIMIT 1", [], |r| r.get(0)).optional()?;
    Ok(sealed.as_deref().and_then(sealed_key_id))
}

/// Fails when the store is now sealed with another key than `key` (it was rotated).
fn check_same_key(conn: &Connection, key: &MasterKey) -> Result<(), StoreError> {
    let stored: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_ID], |r| r.get(0)).optional().map_err(db_err)?;
    match stored {
        Some(id) if id != key.id_hex() => Err(rotated_away(&id, key)),
        _ => Ok(()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date. Fails
    /// with [`OpenError::Key`] when the store was sealed with another master key.
    pub fn open(path: &Path, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let fail = |message: String| OpenError::Sqlite { path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        }
        create_private_file(path).map_err(|e| fail(format!("creating the file: {e}")))?;
        warn_if_readable_by_others(path);
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
        let stored = stored_key_id_of(&tx).map_err(|e| fail(e.to_string()))?;
        if let Some(stored) = &stored
            && *stored != key.id_hex()
        {
            return Err(key_mismatch(&path.display().to_string(), stored, &key));
        }
        for to in version + 1..=SCHEMA_VERSION {
            migrate_step(&tx, to, &key).map_err(|e| fail(format!("migrating to schema version {to}: {e}")))?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| fail(e.to_string()))?;
        }
        tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![KEY_ID, key.id_hex()])
            .map_err(|e| fail(e.to_string()))?;
        tx.commit().map_err(|e| fail(e.to_string()))?;
        let mac_key = key.api_key_mac_key();
        Ok(Self { inner: Arc::new(Inner { path: path.to_owned(), conn: Mutex::new(conn), key, mac_key, clock }) })
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

/// Creates the database file with mode 0600 when it does not exist yet, so SQLite (which would
/// create it with the process's umask, usually 0644) opens a private file; its `-wal` and
/// `-shm` files copy that mode. An existing file is left alone.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A store file made before files were created private (or loosened since) still opens, as
/// refusing it would stop a working broker, but says how to fix it.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
                "the store file can be read by other users; run `chmod 600` on it (and on its -wal and -shm files)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The key id recorded in the store at `path`, without changing anything; `None` when there is
/// no store there yet or it holds nothing sealed.
pub(crate) fn stored_key_id(path: &Path) -> Result<Option<String>, OpenError> {
    let fail = |e: rusqlite::Error| OpenError::Sqlite { path: path.display().to_string(), message: e.to_string() };
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    stored_key_id_of(&conn).map_err(fail)
}

/// What a re-sealing changed: token sets, connection specs, API-key rows re-signed.
pub(crate) type ResealCounts = (usize, usize, usize);

/// Re-seals every token set and connection spec of the store at `path` with `new`, and re-signs
/// every API-key row, in one transaction that also records `new`'s id. `before_commit` runs inside the transaction once
/// the write lock is held (the key file source writes the new key file there).
pub(crate) fn reseal(
    path: &Path,
    old: &MasterKey,
    new: &MasterKey,
    before_commit: impl FnOnce() -> Result<(), OpenError>,
) -> Result<ResealCounts, OpenError> {
    let fail = |message: String| OpenError::Sqlite { path: path.display().to_string(), message };
    let mut conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| fail(e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(e.to_string()))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| fail(e.to_string()))?;
    // Checked again under the write lock: another rotation may have finished meanwhile.
    match stored_key_id_of(&tx).map_err(|e| fail(e.to_string()))? {
        Some(id) if id != old.id_hex() => return Err(key_mismatch(&path.display().to_string(), &id, old)),
        _ => {}
    }
    let unreadable = |e: StoreError| fail(format!("{e}; nothing was changed"));
    let tokens: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT connection, sealed FROM token_sets").map_err(|e| fail(e.to_string()))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| fail(e.to_string()))?;
        rows.collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?
    };
    for (name, sealed) in &tokens {
        let id = ConnectionId::new(name.clone());
        let set = codec::open(old, &id, sealed).map_err(unreadable)?;
        // The version moves too, so a writer still holding the old key loses its compare-and-swap.
        tx.execute(
            "UPDATE token_sets SET sealed = ?1, version = version + 1 WHERE connection = ?2",
            params![codec::seal(new, &id, &set), name],
        )
        .map_err(|e| fail(e.to_string()))?;
    }
    let specs: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT name, sealed FROM connections").map_err(|e| fail(e.to_string()))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| fail(e.to_string()))?;
        rows.collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?
    };
    for (name, sealed) in &specs {
        let id = ConnectionId::new(name.clone());
        let spec = codec::open_spec(old, &id, sealed).map_err(unreadable)?;
        tx.execute(
            "UPDATE connections SET sealed = ?1 WHERE name = ?2",
            params![codec::seal_spec(new, &id, &spec), name],
        )
        .map_err(|e| fail(e.to_string()))?;
    }
    let (old_mac, new_mac) = (old.api_key_mac_key(), new.api_key_mac_key());
    let mut api_keys = 0;
    for mut row in read_api_key_rows(&tx, "").map_err(|e| fail(e.to_string()))? {
        // A row that does not verify now must not be blessed by the new key: it keeps its bad MAC.
        if !row.mac_is_valid(&old_mac) {
            crate::apikey::warn_forged(&row.id);
            continue;
        }
        row.sign(&new_mac);
        tx.execute("UPDATE api_keys SET mac = ?1 WHERE id = ?2", params![row.mac, row.id])
            .map_err(|e| fail(e.to_string()))?;
        api_keys += 1;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![KEY_ID, new.id_hex()],
    )
    .map_err(|e| fail(e.to_string()))?;
    before_commit()?;
    tx.commit().map_err(|e| fail(e.to_string()))?;
    Ok((tokens.len(), specs.len(), api_keys))
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
            let key_id = inner.key.id_hex();
            // Each write carries `meta.key_id = this key`: a process started before a key
            // rotation cannot write a row the new key cannot open.
            let changed = match expected {
                Some(v) => conn
                    .execute(
                        "UPDATE token_sets SET version = ?1, sealed = ?2, updated_at_ms = ?3
                         WHERE connection = ?4 AND version = ?5
                         AND EXISTS (SELECT 1 FROM meta WHERE key = 'key_id' AND value = ?6)",
                        params![v as i64 + 1, sealed, now, connection.as_str(), v as i64, key_id],
                    )
                    .map_err(db_err)?,
                None => conn
                    .execute(
                        "INSERT INTO token_sets (connection, version, sealed, updated_at_ms)
                         SELECT ?1, 1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'key_id' AND value = ?4)
                         ON CONFLICT (connection) DO NOTHING",
                        params![connection.as_str(), sealed, now, key_id],
                    )
                    .map_err(db_err)?,
            };
            if changed == 1 {
                Ok(CasOutcome::Swapped { version: expected.unwrap_or(0) + 1 })
            } else {
                check_same_key(conn, &inner.key)?;
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

fn connection_row(
    key: &MasterKey,
    name: String,
    sealed: &[u8],
    created: i64,
    updated: i64,
) -> Result<StoredConnection, StoreError> {
    let name = ConnectionId::new(name);
    Ok(StoredConnection {
        spec: codec::open_spec(key, &name, sealed)?,
        name,
        created_at: from_millis(u64::try_from(created).unwrap_or(0)),
        updated_at: from_millis(u64::try_from(updated).unwrap_or(0)),
    })
}

const API_KEY_COLUMNS: &str = "id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac";

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.get(0)?,
        secret_hash: r.get(1)?,
        label: r.get(2)?,
        connections: r.get(3)?,
        capabilities: r.get(4)?,
        created_at_ms: r.get(5)?,
        revoked_at_ms: r.get(6)?,
        mac: r.get(7)?,
    })
}

/// The API-key rows, oldest first, or only the one with id `only` when it is not empty (one
/// query each, so the lookup by id on every broker request uses the primary key).
fn read_api_key_rows(conn: &Connection, only: &str) -> rusqlite::Result<Vec<ApiKeyRow>> {
    if only.is_empty() {
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id"))?;
        let rows = stmt.query_map([], api_key_row)?;
        rows.collect()
    } else {
        let mut stmt = conn.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?;
        let rows = stmt.query_map([only], api_key_row)?;
        rows.collect()
    }
}

impl SqliteStore {
    /// The records among `rows` whose MAC holds (see [`checked_rows`]).
    async fn checked(&self, rows: Vec<ApiKeyRow>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        checked_rows(rows, &self.inner.mac_key, || self.run(|conn, inner| check_same_key(conn, &inner.key))).await
    }
}

impl ConnectionStore for SqliteStore {
    fn put_connection<'a>(
        &'a self,
        name: &'a ConnectionId,
        spec: &'a ConnectionSpec,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<PutOutcome, StoreError>> {
        let name = name.clone();
        let sealed = codec::seal_spec(&self.inner.key, &name, spec);
        Box::pin(self.run(move |conn, inner| {
            let now = millis(inner.clock.now()) as i64;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            check_same_key(&tx, &inner.key)?;
            let exists: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM connections WHERE name = ?1)", [name.as_str()], |r| r.get(0))
                .map_err(db_err)?;
            let outcome = match (exists, mode) {
                (true, PutMode::Create) => return Ok(PutOutcome::AlreadyExists),
                (true, PutMode::Upsert) => {
                    tx.execute(
                        "UPDATE connections SET sealed = ?1, updated_at_ms = ?2 WHERE name = ?3",
                        params![sealed, now, name.as_str()],
                    )
                    .map_err(db_err)?;
                    PutOutcome::Replaced
                }
                (false, _) => {
                    tx.execute(
                        "INSERT INTO connections (name, sealed, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?3)",
                        params![name.as_str(), sealed, now],
                    )
                    .map_err(db_err)?;
                    PutOutcome::Created
                }
            };
            tx.commit().map_err(db_err)?;
            Ok(outcome)
        }))
    }

    fn connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredConnection>, StoreError>> {
        let name = name.clone();
        Box::pin(self.run(move |conn, inner| {
            let row: Option<(Vec<u8>, i64, i64)> = conn
                .query_row(
                    "SELECT sealed, created_at_ms, updated_at_ms FROM connections WHERE name = ?1",
                    [name.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            row.map(|(sealed, c, u)| connection_row(&inner.key, name.as_str().to_owned(), &sealed, c, u)).transpose()
        }))
    }

    fn connections(&self) -> BoxFuture<'_, Result<Vec<StoredConnection>, StoreError>> {
        Box::pin(self.run(move |conn, inner| {
            let mut stmt = conn
                .prepare_cached("SELECT name, sealed, created_at_ms, updated_at_ms FROM connections ORDER BY name")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?, r.get(3)?)))
                .map_err(db_err)?;
            rows.map(|row| {
                let (name, sealed, c, u) = row.map_err(db_err)?;
                connection_row(&inner.key, name, &sealed, c, u)
            })
            .collect()
        }))
    }

    fn remove_connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        let name = name.clone();
        Box::pin(self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let removed = tx.execute("DELETE FROM connections WHERE name = ?1", [name.as_str()]).map_err(db_err)?;
            for table in ["token_sets", "leases", "approvals"] {
                tx.execute(&format!("DELETE FROM {table} WHERE connection = ?1"), [name.as_str()]).map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(removed > 0)
        }))
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        let e = entry.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "INSERT INTO audit_log (at_ms, connection, actor, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![millis(e.at) as i64, e.connection.as_str(), e.actor, e.action.as_str(), e.detail],
            )
            .map_err(db_err)?;
            Ok(())
        }))
    }

    fn audit<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditEntry>, StoreError>> {
        let connection = connection.map(|c| c.as_str().to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(self.run(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT at_ms, connection, actor, action, detail FROM audit_log
                     WHERE ?1 IS NULL OR connection = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![connection, limit], |r| {
                    Ok(AuditEntry {
                        at: from_millis(u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0)),
                        connection: ConnectionId::new(r.get::<_, String>(1)?),
                        actor: r.get(2)?,
                        action: crate::scope::AuditAction::parse(&r.get::<_, String>(3)?),
                        detail: r.get(4)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        }))
    }

    fn put_api_key<'a>(&'a self, key: &'a ApiKeyRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let row = ApiKeyRow::new(key, &self.inner.mac_key);
        Box::pin(self.run(move |conn, inner| {
            // Written only while this instance's key is the store's: a process started before a
            // key rotation would sign the row with a key the store no longer uses.
            let changed = conn
                .execute(
                    "INSERT INTO api_keys
                     (id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
                     WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'key_id' AND value = ?9)
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        row.id,
                        row.secret_hash,
                        row.label,
                        row.connections,
                        row.capabilities,
                        row.created_at_ms,
                        row.revoked_at_ms,
                        row.mac,
                        inner.key.id_hex(),
                    ],
                )
                .map_err(db_err)?;
            if changed == 0 {
                check_same_key(conn, &inner.key)?;
                return Err(StoreError::Unavailable(format!("an API key with id {} already exists", row.id)));
            }
            Ok(())
        }))
    }

    fn api_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            if id.is_empty() {
                return Ok(None);
            }
            let only = id.to_owned();
            let rows = self.run(move |conn, _| read_api_key_rows(conn, &only).map_err(db_err)).await?;
            Ok(self.checked(rows).await?.into_iter().next())
        })
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let rows = self.run(move |conn, _| read_api_key_rows(conn, "").map_err(db_err)).await?;
            self.checked(rows).await
        })
    }

    fn revoke_api_key<'a>(&'a self, id: &'a str, at: SystemTime) -> BoxFuture<'a, Result<bool, StoreError>> {
        let id = id.to_owned();
        Box::pin(async move {
            let outcome = self
                .run(move |conn, inner| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                    check_same_key(&tx, &inner.key)?;
                    if id.is_empty() {
                        return Ok(Revoked::Unknown);
                    }
                    let Some(mut row) = read_api_key_rows(&tx, &id).map_err(db_err)?.pop() else {
                        return Ok(Revoked::Unknown);
                    };
                    // Re-signing a planted row would bless it: it stays as it is, and absent.
                    if !row.mac_is_valid(&inner.mac_key) {
                        return Ok(Revoked::Forged(row.id));
                    }
                    // A second revocation keeps the first time.
                    if row.revoked_at_ms.is_none() {
                        row.revoked_at_ms = Some(millis(at) as i64);
                        row.sign(&inner.mac_key);
                        tx.execute(
                            "UPDATE api_keys SET revoked_at_ms = ?1, mac = ?2 WHERE id = ?3",
                            params![row.revoked_at_ms, row.mac, row.id],
                        )
                        .map_err(db_err)?;
                        tx.commit().map_err(db_err)?;
                    }
                    Ok(Revoked::Done)
                })
                .await?;
            Ok(match outcome {
                Revoked::Done => true,
                Revoked::Unknown => false,
                Revoked::Forged(id) => {
                    crate::apikey::warn_forged(&id);
                    false
                }
            })
        })
    }
}

/// What revoking found.
enum Revoked {
    Done,
    Unknown,
    /// The row's MAC does not hold: treated as unknown (the id, for the warning).
    Forged(String),
}
