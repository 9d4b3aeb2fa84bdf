//! One way in: [`open_store`] takes where the store is ([`StoreLocation`]) and where its master
//! key is ([`KeySource`]) and gives the [`ConnectionStore`] the CLI and the broker use. It
//! refuses a key other than the one that sealed the store, and finishes a key rotation that
//! was interrupted after its database commit (see [`crate::rotation`]).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use forcelink_auth::Clock;

use crate::crypto::{MasterKey, sync_dir};
use crate::registry::ConnectionStore;
use crate::{OpenError, SqliteStore};

/// Where a store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file (created on first use).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host/db`); may hold a password.
    Postgres(String),
}

impl StoreLocation {
    /// `postgres://…` and `postgresql://…` are PostgreSQL; `sqlite:PATH` (also `sqlite://PATH`)
    /// or any other text is the path of a SQLite file.
    pub fn parse(text: &str) -> StoreLocation {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreLocation::Postgres(text.to_owned())
        } else if let Some(path) = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")) {
            StoreLocation::Sqlite(PathBuf::from(path))
        } else {
            StoreLocation::Sqlite(PathBuf::from(text))
        }
    }
}

/// Shows a PostgreSQL URL without its password.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&crate::postgres::redact_url(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreLocation::Postgres(url) => f.debug_tuple("Postgres").field(&crate::postgres::redact_url(url)).finish(),
        }
    }
}

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The base64 text of the key (what `FORCELINK_MASTER_KEY` holds).
    Base64(String),
    /// A key file, created with mode 0600 and a new key on first use.
    File(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Base64(_) => f.write_str("Base64([redacted])"),
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Where a rotation writes the new key before its database commit: `<key file>.new`.
pub fn pending_key_path(key_file: &Path) -> PathBuf {
    let mut name = OsString::from(key_file.as_os_str());
    name.push(".new");
    PathBuf::from(name)
}

/// The id of the key that sealed the store, without changing it; `None` when it holds nothing
/// sealed yet (or does not exist).
pub(crate) async fn stored_key_id(location: &StoreLocation) -> Result<Option<String>, OpenError> {
    match location {
        StoreLocation::Sqlite(path) => {
            let path = path.clone();
            blocking(&path.clone(), move || crate::sqlite::stored_key_id(&path)).await
        }
        StoreLocation::Postgres(url) => crate::postgres::stored_key_id(url).await,
    }
}

/// Runs blocking SQLite work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, OpenError> + Send + 'static,
) -> Result<T, OpenError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OpenError::Sqlite { path: path.display().to_string(), message: format!("store task: {e}") })?
}

/// A rotation that committed but stopped before renaming `<file>.new` over the key file left
/// the store sealed with the pending key: finish the rename. A pending key the store does not
/// use (a rotation that never committed, or one still running) is left alone.
pub(crate) async fn finish_interrupted_rotation(location: &StoreLocation, key_file: &Path) -> Result<(), OpenError> {
    let pending = pending_key_path(key_file);
    if !pending.exists() {
        return Ok(());
    }
    // The file is flushed before the commit that makes the store depend on it, so one that
    // cannot be read is what a crash while writing it left: the store still uses the old key.
    let new = match MasterKey::load(&pending) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(file = %pending.display(), error = %e, "ignoring an unusable pending master key");
            return Ok(());
        }
    };
    if stored_key_id(location).await?.as_deref() == Some(new.id_hex().as_str()) {
        install_pending_key(key_file)?;
        tracing::info!(key_id = %new.id_hex(), "finished an interrupted master key rotation");
    }
    Ok(())
}

/// Renames `<file>.new` over the key file and flushes the directory. Another process may have
/// done it first, which is fine once the file holds the pending key.
pub(crate) fn install_pending_key(key_file: &Path) -> Result<(), OpenError> {
    let pending = pending_key_path(key_file);
    match std::fs::rename(&pending, key_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(OpenError::Key(format!(
                "renaming {} to {}: {e}; rename it by hand: it holds the store's key",
                pending.display(),
                key_file.display()
            )));
        }
    }
    sync_dir(key_file.parent().unwrap_or(Path::new(".")))
        .map_err(|e| OpenError::Key(format!("flushing the directory of {}: {e}", key_file.display())))
}

/// The key for opening: the base64 text, or the key file (finishing an interrupted rotation
/// first, and creating the file with a new key when `create`, it does not exist and the store
/// holds nothing sealed yet).
pub(crate) async fn resolve_key(
    location: &StoreLocation,
    key: &KeySource,
    create: bool,
) -> Result<MasterKey, OpenError> {
    match key {
        KeySource::Base64(text) => MasterKey::from_base64(text),
        KeySource::File(path) => {
            finish_interrupted_rotation(location, path).await?;
            if !create {
                return MasterKey::load(path);
            }
            if !path.exists()
                && let Some(stored) = stored_key_id(location).await?
            {
                // A new key could never open this store: say so instead of creating one.
                return Err(OpenError::Key(format!(
                    "the key file {} does not exist, and the store {location} is sealed with master key \
                     {stored}; point to the key file that created the store, or set FORCELINK_MASTER_KEY \
                     to its key",
                    path.display()
                )));
            }
            MasterKey::load_or_create(path)
        }
    }
}

/// Opens the store at `location` (creating it and bringing its schema up to date) with the key
/// from `key`. Fails with [`OpenError::Key`] naming both key ids when the store was sealed with
/// another key; a fresh store records the key's id.
pub async fn open_store(
    location: &StoreLocation,
    key: &KeySource,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn ConnectionStore>, OpenError> {
    let master = resolve_key(location, key, true).await?;
    match location {
        StoreLocation::Sqlite(path) => {
            let p = path.clone();
            let store = blocking(path, move || SqliteStore::open(&p, master, clock)).await?;
            Ok(Arc::new(store))
        }
        StoreLocation::Postgres(url) => Ok(Arc::new(crate::PostgresStore::connect(url, master, clock).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        assert_eq!(
            StoreLocation::parse("postgres://u:pw@h/db"),
            StoreLocation::Postgres("postgres://u:pw@h/db".into())
        );
        assert!(
            matches!(StoreLocation::parse(" postgresql://h/db "), StoreLocation::Postgres(u) if u == "postgresql://h/db")
        );
        assert_eq!(StoreLocation::parse("sqlite:/var/x.db"), StoreLocation::Sqlite("/var/x.db".into()));
        assert_eq!(StoreLocation::parse("sqlite:///var/x.db"), StoreLocation::Sqlite("/var/x.db".into()));
        assert_eq!(StoreLocation::parse("data/x.db"), StoreLocation::Sqlite("data/x.db".into()));
        let pg = StoreLocation::parse("postgres://u:hunter2@h/db");
        let shown = format!("{pg} {pg:?}");
        assert!(!shown.contains("hunter2") && shown.contains("u:redacted@h"), "{shown}");
        let key = KeySource::Base64(MasterKey::generate().to_base64());
        let KeySource::Base64(text) = &key else { unreachable!() };
        assert!(!format!("{key:?}").contains(text.as_str()));
        assert_eq!(pending_key_path(Path::new("/k/master.key")), PathBuf::from("/k/master.key.new"));
    }
}
