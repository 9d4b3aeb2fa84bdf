//! [`rotate_key`]: a new master key for a store. Every token set and connection spec is
//! re-sealed, every API-key row re-signed (its MAC key derives from the master key), and the
//! store's key id changed, in one database transaction, so the store is always wholly under one
//! key. An API-key row whose MAC does not hold under the old key is left unsigned (still
//! absent), never blessed by the new key.
//!
//! With a key file, the new key must be on disk before the store depends on it, and the old
//! key must stay until it no longer does:
//! 1. under the database's write lock, write `<file>.new` (mode 0600) and flush it;
//! 2. commit the re-sealed rows and the new key id;
//! 3. rename `<file>.new` over the key file and flush the directory.
//!
//! A crash before 2 leaves the store under the old key, which the key file still holds (the
//! stray `.new` is ignored and replaced by the next rotation). A crash between 2 and 3 leaves
//! the store under the key in `.new`: [`open_store`](crate::open_store) sees that the ids
//! match and finishes the rename. Nothing is lost at any point.

use std::fmt;
use std::sync::Arc;

use forcelink_auth::Clock;

use crate::crypto::MasterKey;
use crate::open::{KeySource, StoreLocation, blocking, install_pending_key, pending_key_path, resolve_key};
use crate::{OpenError, PostgresStore, SqliteStore};

/// The new key's base64 text, for a store whose key comes from `FORCELINK_MASTER_KEY`. Show it
/// once; `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKeyText(String);

impl NewKeyText {
    /// The key's base64 text, to show once.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewKeyText([redacted])")
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateReport {
    /// The id of the key the store was sealed with.
    pub old_key_id: String,
    /// The id of the key it is sealed with now.
    pub new_key_id: String,
    /// Token sets re-sealed.
    pub token_sets: usize,
    /// Connection specs re-sealed.
    pub connections: usize,
    /// API-key rows re-signed.
    pub api_keys: usize,
    /// For [`KeySource::Base64`]: the new key, which the user must put in
    /// `FORCELINK_MASTER_KEY` (the store no longer opens with the old one). `None` for a key
    /// file, which now holds the new key.
    pub new_key_base64: Option<NewKeyText>,
}

/// Replaces the master key of the store at `location`: see the module docs for the steps and
/// why a crash loses nothing. Processes still running with the old key can no longer write
/// sealed values (their writes are refused with an error saying the key was rotated); restart
/// them with the new key.
///
/// With [`KeySource::Base64`] the new key exists only in the returned report until the user
/// stores it: print it before anything else.
pub async fn rotate_key(
    location: &StoreLocation,
    key: &KeySource,
    clock: Arc<dyn Clock>,
) -> Result<RotateReport, OpenError> {
    let old = resolve_key(location, key, false).await?;
    // Brings the schema up to date and checks that `old` is the store's key.
    match location {
        StoreLocation::Sqlite(path) => {
            let (p, k) = (path.clone(), old.clone());
            drop(blocking(path, move || SqliteStore::open(&p, k, clock)).await?);
        }
        StoreLocation::Postgres(url) => drop(PostgresStore::connect(url, old.clone(), clock).await?),
    }
    let new = MasterKey::generate();
    let pending = match key {
        KeySource::File(path) => Some(pending_key_path(path)),
        KeySource::Base64(_) => None,
    };
    let write_pending = {
        let (new, pending) = (new.clone(), pending.clone());
        move || pending.as_deref().map_or(Ok(()), |p| new.write_new_file(p))
    };
    let (token_sets, connections, api_keys) = match location {
        StoreLocation::Sqlite(path) => {
            let (p, old, new) = (path.clone(), old.clone(), new.clone());
            blocking(path, move || crate::sqlite::reseal(&p, &old, &new, write_pending)).await?
        }
        StoreLocation::Postgres(url) => crate::postgres::reseal(url, &old, &new, write_pending).await?,
    };
    if let KeySource::File(path) = key {
        install_pending_key(path)?;
    }
    tracing::info!(old_key_id = %old.id_hex(), new_key_id = %new.id_hex(), token_sets, connections, api_keys, "rotated the master key");
    Ok(RotateReport {
        old_key_id: old.id_hex(),
        new_key_id: new.id_hex(),
        token_sets,
        connections,
        api_keys,
        new_key_base64: matches!(key, KeySource::Base64(_)).then(|| NewKeyText(new.to_base64())),
    })
}
