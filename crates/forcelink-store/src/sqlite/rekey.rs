//! Re-sealing a SQLite store under a new master key (see [`crate::rotation`]).

use std::path::Path;

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::BUSY_TIMEOUT;
use super::apikeys::read_api_key_rows;
use super::schema::stored_key_id_of;
use crate::codec;
use crate::crypto::MasterKey;
use crate::rows::{KEY_ID, ResealCounts, reseal_ephemeral, reseal_subscription_secret, reseal_webhook_secret};
use crate::{OpenError, key_mismatch};

/// Re-seals every token set, connection spec, webhook and subscription secret and ephemeral value of the store at
/// `path` with `new`, and re-signs every API-key row, in one transaction that also records `new`'s id. `before_commit` runs
/// inside the transaction once the write lock is held (the key file source writes the new key
/// file there).
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
        let resealed = codec::reseal(old, new, &ConnectionId::new(name.clone()), sealed).map_err(unreadable)?;
        // The version moves too, so a writer still holding the old key loses its compare-and-swap.
        tx.execute(
            "UPDATE token_sets SET sealed = ?1, version = version + 1 WHERE connection = ?2",
            params![resealed, name],
        )
        .map_err(|e| fail(e.to_string()))?;
    }
    let specs: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT name, sealed FROM connections").map_err(|e| fail(e.to_string()))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| fail(e.to_string()))?;
        rows.collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?
    };
    for (name, sealed) in &specs {
        let resealed = codec::reseal_spec(old, new, &ConnectionId::new(name.clone()), sealed).map_err(unreadable)?;
        tx.execute("UPDATE connections SET sealed = ?1 WHERE name = ?2", params![resealed, name])
            .map_err(|e| fail(e.to_string()))?;
    }
    let hooks: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT id, secret FROM webhooks").map_err(|e| fail(e.to_string()))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| fail(e.to_string()))?;
        rows.collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?
    };
    for (id, sealed) in &hooks {
        let resealed = reseal_webhook_secret(old, new, id, sealed).map_err(unreadable)?;
        tx.execute("UPDATE webhooks SET secret = ?1 WHERE id = ?2", params![resealed, id])
            .map_err(|e| fail(e.to_string()))?;
    }
    let subs: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT id, secret FROM subscriptions").map_err(|e| fail(e.to_string()))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| fail(e.to_string()))?;
        rows.collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?
    };
    for (id, sealed) in &subs {
        let resealed = reseal_subscription_secret(old, new, id, sealed).map_err(unreadable)?;
        tx.execute("UPDATE subscriptions SET secret = ?1 WHERE id = ?2", params![resealed, id])
            .map_err(|e| fail(e.to_string()))?;
    }
    let records: Vec<(String, String, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT kind, key_hash, value FROM ephemeral").map_err(|e| fail(e.to_string()))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(|e| fail(e.to_string()))?;
        rows.collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?
    };
    for (kind, hash, sealed) in &records {
        let resealed = reseal_ephemeral(old, new, kind, hash, sealed).map_err(unreadable)?;
        tx.execute("UPDATE ephemeral SET value = ?1 WHERE kind = ?2 AND key_hash = ?3", params![resealed, kind, hash])
            .map_err(|e| fail(e.to_string()))?;
    }
    let (old_mac, new_mac) = (old.api_key_mac_key(), new.api_key_mac_key());
    let mut api_keys = 0;
    for mut row in read_api_key_rows(&tx, "").map_err(|e| fail(e.to_string()))? {
        if !row.resign(&old_mac, &new_mac) {
            continue;
        }
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
