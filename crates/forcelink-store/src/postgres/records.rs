//! Connections (sealed specs), the audit log, API keys and checkpoints: the [`ConnectionStore`] half of
//! [`PostgresStore`].

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;
use futures_util::future::BoxFuture;

use super::{PostgresStore, SAME_KEY, db_err};
use crate::checkpoint::{CheckpointKey, StoredCheckpoint};
use crate::codec;
use crate::connection::ConnectionSpec;
use crate::ephemeral::EphemeralKind;
use crate::health::{ConnectionHealth, HealthWrite};
use crate::outbox::{Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, NewDelivery, WebhookRecord};
use crate::registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};
use crate::rows::{audit_entry, db_millis, stored_connection};
use crate::subscription::SubscriptionRecord;

impl PostgresStore {
    fn connection_row(&self, r: &tokio_postgres::Row) -> Result<StoredConnection, StoreError> {
        stored_connection(&self.inner.key, r.get(0), &r.get::<_, Vec<u8>>(1), r.get(2), r.get(3))
    }
}

impl ConnectionStore for PostgresStore {
    fn put_connection<'a>(
        &'a self,
        name: &'a ConnectionId,
        spec: &'a ConnectionSpec,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<PutOutcome, StoreError>> {
        Box::pin(async move {
            let sealed = codec::seal_spec(&self.inner.key, name, spec);
            let key_id = self.inner.key.id_hex();
            let client = &self.inner.client;
            let insert = || async {
                client
                    .execute(
                        &format!(
                            "INSERT INTO forcelink_connections (name, sealed, created_at_ms, updated_at_ms)
                             SELECT $1, $2, $3, $3 WHERE {SAME_KEY} $4) ON CONFLICT (name) DO NOTHING"
                        ),
                        &[&name.as_str(), &sealed, &db_millis(self.inner.clock.now()), &key_id],
                    )
                    .await
                    .map_err(db_err)
            };
            // Single statements, no transaction: the store's one connection is shared by every
            // task. Another writer may come in between them; the loop settles within a round.
            for _ in 0..3 {
                if mode == PutMode::Upsert {
                    let replaced = client
                        .execute(
                            &format!(
                                "UPDATE forcelink_connections SET sealed = $1, updated_at_ms = $2
                                 WHERE name = $3 AND {SAME_KEY} $4)"
                            ),
                            &[&sealed, &db_millis(self.inner.clock.now()), &name.as_str(), &key_id],
                        )
                        .await
                        .map_err(db_err)?;
                    if replaced == 1 {
                        return Ok(PutOutcome::Replaced);
                    }
                }
                if insert().await? == 1 {
                    return Ok(PutOutcome::Created);
                }
                self.check_same_key().await?;
                if mode == PutMode::Create {
                    return Ok(PutOutcome::AlreadyExists);
                }
            }
            Err(StoreError::Unavailable(format!("connection {name} kept changing while being written; try again")))
        })
    }

    fn connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredConnection>, StoreError>> {
        Box::pin(async move {
            let row = self
                .inner
                .client
                .query_opt(
                    "SELECT name, sealed, created_at_ms, updated_at_ms FROM forcelink_connections WHERE name = $1",
                    &[&name.as_str()],
                )
                .await
                .map_err(db_err)?;
            row.map(|r| self.connection_row(&r)).transpose()
        })
    }

    fn connections(&self) -> BoxFuture<'_, Result<Vec<StoredConnection>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .inner
                .client
                .query(
                    "SELECT name, sealed, created_at_ms, updated_at_ms FROM forcelink_connections ORDER BY name",
                    &[],
                )
                .await
                .map_err(db_err)?;
            rows.iter().map(|r| self.connection_row(r)).collect()
        })
    }

    fn remove_connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            // One statement, so one transaction: every part goes, or none does.
            let row = self
                .inner
                .client
                .query_one(
                    "WITH c AS (DELETE FROM forcelink_connections WHERE name = $1 RETURNING 1),
                          t AS (DELETE FROM forcelink_token_sets WHERE connection = $1),
                          l AS (DELETE FROM forcelink_leases WHERE connection = $1),
                          a AS (DELETE FROM forcelink_approvals WHERE connection = $1),
                          k AS (DELETE FROM forcelink_checkpoints WHERE connection = $1),
                          h AS (DELETE FROM forcelink_connection_health WHERE connection = $1)
                     SELECT count(*) FROM c",
                    &[&name.as_str()],
                )
                .await
                .map_err(db_err)?;
            Ok(row.get::<_, i64>(0) > 0)
        })
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner
                .client
                .execute(
                    "INSERT INTO forcelink_audit_log (at_ms, connection, actor, action, detail)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &db_millis(entry.at),
                        &entry.connection.as_str(),
                        &entry.actor,
                        &entry.action.as_str().as_ref(),
                        &entry.detail,
                    ],
                )
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    fn audit<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(async move {
            let connection = connection.map(ConnectionId::as_str);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .inner
                .client
                .query(
                    "SELECT at_ms, connection, actor, action, detail FROM forcelink_audit_log
                     WHERE $1::TEXT IS NULL OR connection = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
                    &[&connection, &limit],
                )
                .await
                .map_err(db_err)?;
            Ok(rows.iter().map(|r| audit_entry(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
        })
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
