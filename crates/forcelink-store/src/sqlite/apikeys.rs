//! The `api_keys` rows of a SQLite store: read (one by id, or all) with their MACs checked,
//! inserted, revoked (see [`crate::apikey`]).

use std::time::SystemTime;

use forcelink_auth::error::StoreError;
use rusqlite::{Connection, TransactionBehavior, params};

use super::{SqliteStore, check_same_key, db_err};
use crate::apikey::{ApiKeyRow, Revocation, checked_rows, warn_forged};
use crate::registry::ApiKeyRecord;
use crate::rows::{KEY_ID, api_key_exists};

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
pub(super) fn read_api_key_rows(conn: &Connection, only: &str) -> rusqlite::Result<Vec<ApiKeyRow>> {
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

    /// Inserts `key`'s row, signed; fails when the id exists.
    pub(super) async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let row = ApiKeyRow::new(key, &self.inner.mac_key);
        self.run(move |conn, inner| {
            // Written only while this instance's key is the store's: a process started before a
            // key rotation would sign the row with a key the store no longer uses.
            let changed = conn
                .execute(
                    "INSERT INTO api_keys
                     (id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
                     WHERE EXISTS (SELECT 1 FROM meta WHERE key = ?9 AND value = ?10)
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
                        KEY_ID,
                        inner.key.id_hex(),
                    ],
                )
                .map_err(db_err)?;
            if changed == 0 {
                check_same_key(conn, &inner.key)?;
                return Err(api_key_exists(&row.id));
            }
            Ok(())
        })
        .await
    }

    /// The key with id `id` (`None` also for a row whose MAC does not hold), or every key
    /// when `id` is `None`.
    pub(super) async fn read_api_keys(&self, id: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        if id == Some("") {
            return Ok(Vec::new());
        }
        let only = id.unwrap_or_default().to_owned();
        let rows = self.run(move |conn, _| read_api_key_rows(conn, &only).map_err(db_err)).await?;
        self.checked(rows).await
    }

    /// Revokes the key in one transaction; false when unknown or its row does not verify.
    pub(super) async fn revoke_api_key_row(&self, id: &str, at: SystemTime) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let found = self
            .run(move |conn, inner| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                check_same_key(&tx, &inner.key)?;
                if id.is_empty() {
                    return Ok(None);
                }
                let Some(mut row) = read_api_key_rows(&tx, &id).map_err(db_err)?.pop() else {
                    return Ok(None);
                };
                let revocation = row.revoke(at, &inner.mac_key);
                if let Revocation::Revoked = revocation {
                    tx.execute(
                        "UPDATE api_keys SET revoked_at_ms = ?1, mac = ?2 WHERE id = ?3",
                        params![row.revoked_at_ms, row.mac, row.id],
                    )
                    .map_err(db_err)?;
                    tx.commit().map_err(db_err)?;
                }
                Ok(Some(revocation))
            })
            .await?;
        Ok(match found {
            None => false,
            Some(Revocation::Revoked | Revocation::AlreadyRevoked) => true,
            Some(Revocation::Forged(id)) => {
                warn_forged(&id);
                false
            }
        })
    }
}
