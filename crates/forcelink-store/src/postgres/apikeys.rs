//! The `forcelink_api_keys` rows: read (one by id, or all) with their MACs checked, inserted,
//! revoked (see [`crate::apikey`]).

use std::time::SystemTime;

use forcelink_auth::error::StoreError;
use tokio_postgres::GenericClient;

use super::{PostgresStore, SAME_KEY, db_err};
use crate::apikey::{ApiKeyRow, Revocation, checked_rows, warn_forged};
use crate::registry::ApiKeyRecord;
use crate::rows::api_key_exists;

const API_KEY_COLUMNS: &str = "id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac";

fn api_key_row(r: &tokio_postgres::Row) -> ApiKeyRow {
    ApiKeyRow {
        id: r.get(0),
        secret_hash: r.get(1),
        label: r.get(2),
        connections: r.get(3),
        capabilities: r.get(4),
        created_at_ms: r.get(5),
        revoked_at_ms: r.get(6),
        mac: r.get(7),
    }
}

/// The API-key rows, oldest first, or only the one with id `only` (one query each, so the
/// lookup by id on every broker request uses the primary key).
pub(super) async fn read_api_key_rows(
    client: &impl GenericClient,
    only: Option<&str>,
) -> Result<Vec<ApiKeyRow>, tokio_postgres::Error> {
    let rows = match only {
        Some(id) => {
            client.query(&format!("SELECT {API_KEY_COLUMNS} FROM forcelink_api_keys WHERE id = $1"), &[&id]).await?
        }
        None => {
            client
                .query(&format!("SELECT {API_KEY_COLUMNS} FROM forcelink_api_keys ORDER BY created_at_ms, id"), &[])
                .await?
        }
    };
    Ok(rows.iter().map(api_key_row).collect())
}

impl PostgresStore {
    /// The records among `rows` whose MAC holds (see [`checked_rows`]).
    async fn checked(&self, rows: Vec<ApiKeyRow>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        checked_rows(rows, &self.inner.mac_key, || self.check_same_key()).await
    }

    /// Inserts `key`'s row, signed; fails when the id exists.
    pub(super) async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let row = ApiKeyRow::new(key, &self.inner.mac_key);
        // Written only while this instance's key is the store's: a process started before a
        // key rotation would sign the row with a key the store no longer uses.
        let changed = self
            .inner
            .client
            .execute(
                &format!(
                    "INSERT INTO forcelink_api_keys
                     (id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac)
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE {SAME_KEY} $9) ON CONFLICT (id) DO NOTHING"
                ),
                &[
                    &row.id,
                    &row.secret_hash,
                    &row.label,
                    &row.connections,
                    &row.capabilities,
                    &row.created_at_ms,
                    &row.revoked_at_ms,
                    &row.mac,
                    &self.inner.key.id_hex(),
                ],
            )
            .await
            .map_err(db_err)?;
        if changed == 0 {
            self.check_same_key().await?;
            return Err(api_key_exists(&key.id));
        }
        Ok(())
    }

    /// The key with id `id` (none also for a row whose MAC does not hold), or every key when
    /// `id` is `None`.
    pub(super) async fn read_api_keys(&self, id: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = read_api_key_rows(&self.inner.client, id).await.map_err(db_err)?;
        self.checked(rows).await
    }

    /// Revokes the key; false when unknown or its row does not verify.
    pub(super) async fn revoke_api_key_row(&self, id: &str, at: SystemTime) -> Result<bool, StoreError> {
        let client = &self.inner.client;
        // Single statements (the connection is shared by every task): the update applies
        // only to the row as read, by its MAC; a concurrent change sends us round again.
        for _ in 0..3 {
            let Some(mut row) = read_api_key_rows(client, Some(id)).await.map_err(db_err)?.pop() else {
                return Ok(false);
            };
            let read_mac = row.mac.clone();
            match row.revoke(at, &self.inner.mac_key) {
                Revocation::Forged(id) => {
                    self.check_same_key().await?;
                    warn_forged(&id);
                    return Ok(false);
                }
                Revocation::AlreadyRevoked => return Ok(true),
                Revocation::Revoked => {}
            }
            let changed = client
                .execute(
                    &format!(
                        "UPDATE forcelink_api_keys SET revoked_at_ms = $1, mac = $2
                         WHERE id = $3 AND mac = $4 AND {SAME_KEY} $5)"
                    ),
                    &[&row.revoked_at_ms, &row.mac, &row.id, &read_mac, &self.inner.key.id_hex()],
                )
                .await
                .map_err(db_err)?;
            if changed == 1 {
                return Ok(true);
            }
            self.check_same_key().await?;
        }
        Err(StoreError::Unavailable(format!("API key {id} kept changing while being revoked; try again")))
    }
}
