//! The `checkpoints` rows of a SQLite store (schema version 4): saved, read, listed, deleted.

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, db_err};
use crate::checkpoint::{CheckpointKey, StoredCheckpoint, check_replay_id};
use crate::rows::{db_millis, from_db_millis};

/// Version 4: one row per (connection, checkpoint name, topic).
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    connection TEXT NOT NULL,
    name TEXT NOT NULL,
    topic TEXT NOT NULL,
    replay_id BLOB NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (connection, name, topic)
);
";

const COLUMNS: &str = "connection, name, topic, replay_id, updated_at_ms";

fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        key: CheckpointKey::from_row(r.get(0)?, r.get(1)?, r.get(2)?),
        replay_id: r.get(3)?,
        updated_at: from_db_millis(r.get(4)?),
    })
}

impl SqliteStore {
    pub(super) async fn upsert_checkpoint(&self, key: &CheckpointKey, replay_id: &[u8]) -> Result<(), StoreError> {
        check_replay_id(replay_id)?;
        let (key, replay_id) = (key.clone(), replay_id.to_vec());
        self.run(move |conn, inner| {
            conn.prepare_cached(
                "INSERT INTO checkpoints (connection, name, topic, replay_id, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (connection, name, topic)
                 DO UPDATE SET replay_id = excluded.replay_id, updated_at_ms = excluded.updated_at_ms",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key.connection().as_str(),
                    key.name(),
                    key.topic(),
                    replay_id,
                    db_millis(inner.clock.now())
                ])
            })
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn read_checkpoint(&self, key: &CheckpointKey) -> Result<Option<StoredCheckpoint>, StoreError> {
        let key = key.clone();
        self.run(move |conn, _| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM checkpoints WHERE connection = ?1 AND name = ?2 AND topic = ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(params![key.connection().as_str(), key.name(), key.topic()], checkpoint_row).optional()
            })
            .map_err(db_err)
        })
        .await
    }

    pub(super) async fn list_checkpoints(
        &self,
        connection: Option<&ConnectionId>,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let connection = connection.map(|c| c.as_str().to_owned());
        self.run(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM checkpoints WHERE ?1 IS NULL OR connection = ?1 ORDER BY connection, name, topic"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map(params![connection], checkpoint_row).map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    pub(super) async fn remove_checkpoint(&self, key: &CheckpointKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |conn, _| {
            let n = conn
                .execute(
                    "DELETE FROM checkpoints WHERE connection = ?1 AND name = ?2 AND topic = ?3",
                    params![key.connection().as_str(), key.name(), key.topic()],
                )
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }
}
