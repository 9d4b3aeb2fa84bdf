//! [`SqliteStore`]: one SQLite file (WAL) shared by every process on the machine. Each store
//! instance holds one connection; work runs on tokio's blocking pool. The lease is a row taken
//! in an `IMMEDIATE` transaction, so two processes can never both hold it.
//!
//! Schema versions (`PRAGMA user_version`): 1 = token sets, leases, fences, approvals;
//! 2 adds connections (sealed specs), the audit log, API keys and `meta` (the id of the master
//! key that sealed the store, checked on open); 3 adds the `mac` column of API keys (see
//! [`crate::apikey`]); 4 adds `checkpoints` (see [`crate::checkpoint`]); 5 adds `connection_health`,
//! `work_leases`, `webhooks` (secrets sealed), `outbox` and `ephemeral` (keys hashed, values
//! sealed); 6 adds `subscriptions` (secrets sealed, see [`crate::subscription`]) and indexes the
//! outbox by target. Opening runs the missing steps in order, in one transaction.
//!
//! The file is created with mode 0600 and a directory created for it with mode 0700 (Unix);
//! SQLite gives its `-wal` and `-shm` files the mode of the database file.
//!
//! - here: [`SqliteStore`] (open, the one connection, work on the blocking pool) and the file's
//!   permissions.
//! - `schema`: the schema versions and their migrations; the key id recorded in a store.
//! - `tokens`: token sets (compare-and-swap), the lease row and approvals ([`TokenStore`]).
//! - `records`: connections, the audit log and API keys ([`ConnectionStore`]); `apikeys`: the
//!   API-key rows (read, insert, revoke); `checkpoints`: subscription checkpoints.
//! - `ops`: connection health (compare-and-swap with its deliveries), work leases, webhooks, the
//!   outbox (claims in `IMMEDIATE` transactions) and ephemeral records.
//! - `subscriptions`: event subscriptions and the ordered claims of their outbox targets.
//! - `rekey`: re-sealing every value under a new master key.
//!
//! [`TokenStore`]: forcelink_auth::TokenStore
//! [`ConnectionStore`]: crate::ConnectionStore

mod apikeys;
mod checkpoints;
mod ops;
mod records;
mod rekey;
mod schema;
mod subscriptions;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::Clock;
use forcelink_auth::error::StoreError;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::OpenError;
use crate::crypto::{MacKey, MasterKey, create_private_dir};
use crate::rows::{KEY_ID, check_key_id};

pub(crate) use rekey::reseal;
pub(crate) use schema::stored_key_id;

/// How long a statement waits for another process's write lock. 10 seconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store: a cheap-clone handle; clones share one connection.
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

/// Fails when the store is now sealed with another key than `key` (it was rotated).
fn check_same_key(conn: &Connection, key: &MasterKey) -> Result<(), StoreError> {
    let stored: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_ID], |r| r.get(0)).optional().map_err(db_err)?;
    check_key_id(stored, key)
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
        schema::migrate(&tx, path, &key)?;
        tx.commit().map_err(|e| fail(e.to_string()))?;
        let mac_key = key.api_key_mac_key();
        Ok(Self { inner: Arc::new(Inner { path: path.to_owned(), conn: Mutex::new(conn), key, mac_key, clock }) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock();
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
