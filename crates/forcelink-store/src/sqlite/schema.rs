//! The SQLite schema: its versions (`PRAGMA user_version`), the migration of each step, and
//! the id of the master key a store was sealed with.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::BUSY_TIMEOUT;
use super::apikeys::read_api_key_rows;
use super::checkpoints::SCHEMA_V4;
use super::ops::SCHEMA_V5;
use super::subscriptions::schema_v6;
use crate::crypto::{MacKey, MasterKey, sealed_key_id};
use crate::rows::KEY_ID;
use crate::{OpenError, key_mismatch};

/// Schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 6;

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
        4 => tx.execute_batch(SCHEMA_V4),
        5 => tx.execute_batch(SCHEMA_V5),
        6 => tx.execute_batch(&schema_v6()),
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

/// Brings the schema inside `tx` (an `IMMEDIATE` transaction) to [`SCHEMA_VERSION`] and checks
/// (or records) the key id; refuses a newer schema and a store sealed with another key.
pub(super) fn migrate(tx: &Transaction<'_>, path: &Path, key: &MasterKey) -> Result<(), OpenError> {
    let fail = |message: String| OpenError::Sqlite { path: path.display().to_string(), message };
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
    if version > SCHEMA_VERSION {
        return Err(fail(format!(
            "the file has schema version {version}, newer than this forcelink ({SCHEMA_VERSION}); upgrade forcelink"
        )));
    }
    let stored = stored_key_id_of(tx).map_err(|e| fail(e.to_string()))?;
    if let Some(stored) = &stored
        && *stored != key.id_hex()
    {
        return Err(key_mismatch(&path.display().to_string(), stored, key));
    }
    for to in version + 1..=SCHEMA_VERSION {
        migrate_step(tx, to, key).map_err(|e| fail(format!("migrating to schema version {to}: {e}")))?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| fail(e.to_string()))?;
    }
    tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![KEY_ID, key.id_hex()])
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// The id of the key that sealed the store: the `meta` row, else (a version 1 store) the header
/// of any sealed value; `None` for a store holding nothing sealed yet.
pub(super) fn stored_key_id_of(conn: &Connection) -> rusqlite::Result<Option<String>> {
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
