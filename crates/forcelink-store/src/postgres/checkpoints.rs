//! The `forcelink_checkpoints` rows (schema version 4): saved, read, listed, deleted.

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;

use super::{PostgresStore, db_err};
use crate::checkpoint::{CheckpointKey, StoredCheckpoint, check_replay_id};
use crate::rows::{db_millis, from_db_millis};

/// Version 4: one row per (connection, checkpoint name, topic).
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE IF NOT EXISTS forcelink_checkpoints (
    connection TEXT NOT NULL,
    name TEXT NOT NULL,
    topic TEXT NOT NULL,
    replay_id BYTEA NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (connection, name, topic)
);
";

const COLUMNS: &str = "connection, name, topic, replay_id, updated_at_ms";

fn checkpoint_row(r: &tokio_postgres::Row) -> StoredCheckpoint {
    StoredCheckpoint {
        key: CheckpointKey::from_row(r.get(0), r.get(1), r.get(2)),
        replay_id: r.get(3),
        updated_at: from_db_millis(r.get(4)),
    }
}

impl PostgresStore {
    pub(super) async fn upsert_checkpoint(&self, key: &CheckpointKey, replay_id: &[u8]) -> Result<(), StoreError> {
        check_replay_id(replay_id)?;
        let now = db_millis(self.inner.clock.now());
        self.inner
            .client
            .execute(
                "INSERT INTO forcelink_checkpoints (connection, name, topic, replay_id, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (connection, name, topic)
                 DO UPDATE SET replay_id = EXCLUDED.replay_id, updated_at_ms = EXCLUDED.updated_at_ms",
                &[&key.connection().as_str(), &key.name(), &key.topic(), &replay_id, &now],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn read_checkpoint(&self, key: &CheckpointKey) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = self
            .inner
            .client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM forcelink_checkpoints WHERE connection = $1 AND name = $2 AND topic = $3"
                ),
                &[&key.connection().as_str(), &key.name(), &key.topic()],
            )
            .await
            .map_err(db_err)?;
        Ok(row.as_ref().map(checkpoint_row))
    }

    pub(super) async fn list_checkpoints(
        &self,
        connection: Option<&ConnectionId>,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let connection = connection.map(ConnectionId::as_str);
        let rows = self
            .inner
            .client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM forcelink_checkpoints WHERE $1::TEXT IS NULL OR connection = $1
                     ORDER BY connection COLLATE \"C\", name COLLATE \"C\", topic COLLATE \"C\""
                ),
                &[&connection],
            )
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(checkpoint_row).collect())
    }

    pub(super) async fn remove_checkpoint(&self, key: &CheckpointKey) -> Result<bool, StoreError> {
        let n = self
            .inner
            .client
            .execute(
                "DELETE FROM forcelink_checkpoints WHERE connection = $1 AND name = $2 AND topic = $3",
                &[&key.connection().as_str(), &key.name(), &key.topic()],
            )
            .await
            .map_err(db_err)?;
        Ok(n > 0)
    }
}
