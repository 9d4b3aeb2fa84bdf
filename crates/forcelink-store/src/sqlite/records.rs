//! Connections (sealed specs), the audit log, API keys and checkpoints: the [`ConnectionStore`] half of
//! [`SqliteStore`].

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;
use futures_util::future::BoxFuture;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, check_same_key, db_err};
use crate::checkpoint::{CheckpointKey, StoredCheckpoint};
use crate::codec;
use crate::connection::ConnectionSpec;
use crate::ephemeral::EphemeralKind;
use crate::health::{ConnectionHealth, HealthWrite};
use crate::outbox::{Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, NewDelivery, WebhookRecord};
use crate::registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};
use crate::rows::{audit_entry, db_millis, stored_connection};
use crate::subscription::SubscriptionRecord;

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
            let now = db_millis(inner.clock.now());
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
            row.map(|(sealed, c, u)| stored_connection(&inner.key, name.as_str().to_owned(), &sealed, c, u)).transpose()
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
                stored_connection(&inner.key, name, &sealed, c, u)
            })
            .collect()
        }))
    }

    fn remove_connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        let name = name.clone();
        Box::pin(self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let removed = tx.execute("DELETE FROM connections WHERE name = ?1", [name.as_str()]).map_err(db_err)?;
            for table in ["token_sets", "leases", "approvals", "checkpoints", "connection_health"] {
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
                params![db_millis(e.at), e.connection.as_str(), e.actor, e.action.as_str(), e.detail],
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
                    Ok(audit_entry(r.get(0)?, r.get(1)?, r.get(2)?, &r.get::<_, String>(3)?, r.get(4)?))
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        }))
    }

    fn put_api_key<'a>(&'a self, key: &'a ApiKeyRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.insert_api_key(key))
    }

    fn api_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move { Ok(self.read_api_keys(Some(id)).await?.into_iter().next()) })
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(self.read_api_keys(None))
    }

    fn revoke_api_key<'a>(&'a self, id: &'a str, at: SystemTime) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.revoke_api_key_row(id, at))
    }

    fn save_checkpoint<'a>(
        &'a self,
        key: &'a CheckpointKey,
        replay_id: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.upsert_checkpoint(key, replay_id))
    }

    fn checkpoint<'a>(&'a self, key: &'a CheckpointKey) -> BoxFuture<'a, Result<Option<StoredCheckpoint>, StoreError>> {
        Box::pin(self.read_checkpoint(key))
    }

    fn checkpoints<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
    ) -> BoxFuture<'a, Result<Vec<StoredCheckpoint>, StoreError>> {
        Box::pin(self.list_checkpoints(connection))
    }

    fn delete_checkpoint<'a>(&'a self, key: &'a CheckpointKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.remove_checkpoint(key))
    }

    fn write_health<'a>(
        &'a self,
        health: &'a ConnectionHealth,
        expected: Option<u64>,
        deliveries: &'a [NewDelivery],
    ) -> BoxFuture<'a, Result<HealthWrite, StoreError>> {
        Box::pin(self.ops_write_health(health, expected, deliveries))
    }

    fn health<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<ConnectionHealth>, StoreError>> {
        Box::pin(self.ops_health(name))
    }

    fn try_work_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.ops_try_work_lease(name, holder, ttl))
    }

    fn release_work_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.ops_release_work_lease(name, holder))
    }

    fn put_webhook<'a>(&'a self, hook: &'a WebhookRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.ops_put_webhook(hook))
    }

    fn webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<WebhookRecord>, StoreError>> {
        Box::pin(self.ops_webhook(id))
    }

    fn delete_webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.ops_delete_webhook(id))
    }

    fn enqueue_deliveries<'a>(&'a self, deliveries: &'a [NewDelivery]) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(self.ops_enqueue_deliveries(deliveries))
    }

    fn claim_deliveries<'a>(
        &'a self,
        holder: &'a str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(self.ops_claim_deliveries(holder, now, limit, lease))
    }

    fn finish_delivery<'a>(
        &'a self,
        seq: i64,
        holder: &'a str,
        outcome: &'a DeliveryOutcome,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.ops_finish_delivery(seq, holder, outcome))
    }

    fn deliveries<'a>(&'a self, filter: &'a DeliveryFilter) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(self.ops_deliveries(filter))
    }

    fn delivery_counts<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<DeliveryCounts, StoreError>> {
        Box::pin(self.ops_delivery_counts(target))
    }

    fn retry_delivery<'a>(&'a self, seq: i64) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.ops_retry_delivery(seq))
    }

    fn put_ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
        value: &'a [u8],
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.ops_put_ephemeral(kind, key, value, expires_at))
    }

    fn ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.ops_ephemeral(kind, key))
    }

    fn take_ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.ops_take_ephemeral(kind, key))
    }

    fn delete_ephemeral<'a>(&'a self, kind: EphemeralKind, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.ops_delete_ephemeral(kind, key))
    }

    fn healths(&self) -> BoxFuture<'_, Result<Vec<ConnectionHealth>, StoreError>> {
        Box::pin(self.ops_healths())
    }

    fn webhooks(&self) -> BoxFuture<'_, Result<Vec<WebhookRecord>, StoreError>> {
        Box::pin(self.ops_webhooks())
    }

    fn purge_deliveries(&self, before: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.ops_purge_deliveries(before))
    }

    fn claim_target_deliveries<'a>(
        &'a self,
        target: &'a str,
        holder: &'a str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(self.subs_claim_target_deliveries(target, holder, now, limit, lease))
    }

    fn put_subscription<'a>(&'a self, sub: &'a SubscriptionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.subs_put(sub))
    }

    fn subscription<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SubscriptionRecord>, StoreError>> {
        Box::pin(self.subs_get(id))
    }

    fn subscriptions(&self) -> BoxFuture<'_, Result<Vec<SubscriptionRecord>, StoreError>> {
        Box::pin(self.subs_list())
    }

    fn set_subscription_paused<'a>(&'a self, id: &'a str, paused: bool) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.subs_set_paused(id, paused))
    }

    fn set_subscription_spec<'a>(&'a self, id: &'a str, spec: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.subs_set_spec(id, spec))
    }

    fn set_subscription_status<'a>(
        &'a self,
        id: &'a str,
        status: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.subs_set_status(id, status, at))
    }

    fn delete_subscription<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.subs_delete(id))
    }
}
