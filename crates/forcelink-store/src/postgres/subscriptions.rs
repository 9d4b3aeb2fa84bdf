//! Event subscriptions of a PostgresStore (schema version 6) and the ordered claims of their
//! outbox targets (see [`crate::subscription`]). As in `ops`, each write is one statement.

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;

use super::ops::delivery_row;
use super::{PostgresStore, SAME_KEY, db_err};
use crate::outbox::Delivery;
use crate::rows::{
    DELIVERY_COLUMNS, check_subscription, db_millis, from_db_millis, open_subscription_secret,
    seal_subscription_secret, subscription_exists, unordered_target_term,
};
use crate::subscription::{SubscriptionRecord, check_text};

/// Version 6: subscriptions (secrets sealed); the outbox gains an index by target (ordered
/// claims, per-target counts), and its due index becomes one of the pending rows of unordered
/// targets by `seq` (the webhook sender's claims skip an ordered backlog without reading it).
pub(super) fn schema_v6() -> String {
    format!(
        "
CREATE TABLE IF NOT EXISTS forcelink_subscriptions (
    id TEXT PRIMARY KEY,
    connection TEXT NOT NULL,
    url TEXT NOT NULL,
    secret BYTEA NOT NULL,
    spec TEXT NOT NULL,
    paused BOOLEAN NOT NULL,
    status TEXT,
    status_at_ms BIGINT,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS forcelink_outbox_by_target ON forcelink_outbox (target, state, seq);
DROP INDEX IF EXISTS forcelink_outbox_due;
CREATE INDEX IF NOT EXISTS forcelink_outbox_due_unordered ON forcelink_outbox (seq)
    WHERE state = 'pending' AND {};
",
        unordered_target_term()
    )
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, connection, url, secret, spec, paused, status, status_at_ms, created_by, created_at_ms";

impl PostgresStore {
    fn subscription_record(&self, r: &tokio_postgres::Row) -> Result<SubscriptionRecord, StoreError> {
        let id: String = r.get(0);
        Ok(SubscriptionRecord {
            connection: r.get(1),
            url: r.get(2),
            secret: open_subscription_secret(&self.inner.key, &id, r.get(3))?,
            spec: r.get(4),
            paused: r.get(5),
            status: r.get(6),
            status_at: r.get::<_, Option<i64>>(7).map(from_db_millis),
            created_by: r.get(8),
            created_at: from_db_millis(r.get(9)),
            id,
        })
    }

    pub(super) async fn subs_claim_target_deliveries(
        &self,
        target: &str,
        holder: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // As the webhook sender's claims: rows another claimer has locked are skipped, and a row
        // claimed meanwhile is checked again once locked.
        let rows = self
            .inner
            .client
            .query(
                &format!(
                    "UPDATE forcelink_outbox SET claim_holder = $2, claim_until_ms = $3
                     WHERE seq IN (
                         SELECT seq FROM forcelink_outbox
                         WHERE target = $1 AND state = 'pending'
                           AND (claim_until_ms IS NULL OR claim_until_ms <= $4 OR claim_holder = $2)
                         ORDER BY seq LIMIT $5
                         FOR UPDATE SKIP LOCKED)
                     RETURNING {DELIVERY_COLUMNS}"
                ),
                &[&target, &holder, &db_millis(now + lease), &db_millis(now), &limit],
            )
            .await
            .map_err(db_err)?;
        let mut claimed = rows.iter().map(delivery_row).collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    pub(super) async fn subs_put(&self, sub: &SubscriptionRecord) -> Result<(), StoreError> {
        check_subscription(sub)?;
        let sealed = seal_subscription_secret(&self.inner.key, &sub.id, &sub.secret);
        // Sealed only while this instance's key is the store's (see key rotation).
        let n = self
            .inner
            .client
            .execute(
                &format!(
                    "INSERT INTO forcelink_subscriptions ({SUBSCRIPTION_COLUMNS})
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE {SAME_KEY} $11)
                     ON CONFLICT (id) DO NOTHING"
                ),
                &[
                    &sub.id,
                    &sub.connection,
                    &sub.url,
                    &sealed,
                    &sub.spec,
                    &sub.paused,
                    &sub.status,
                    &sub.status_at.map(db_millis),
                    &sub.created_by,
                    &db_millis(sub.created_at),
                    &self.inner.key.id_hex(),
                ],
            )
            .await
            .map_err(db_err)?;
        if n == 0 {
            self.check_same_key().await?;
            return Err(subscription_exists(&sub.id));
        }
        Ok(())
    }

    pub(super) async fn subs_get(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        let row = self
            .inner
            .client
            .query_opt(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM forcelink_subscriptions WHERE id = $1"), &[&id])
            .await
            .map_err(db_err)?;
        row.map(|r| self.subscription_record(&r)).transpose()
    }

    pub(super) async fn subs_list(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let rows = self
            .inner
            .client
            .query(
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM forcelink_subscriptions ORDER BY created_at_ms, id COLLATE \"C\""
                ),
                &[],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| self.subscription_record(r)).collect()
    }

    pub(super) async fn subs_set_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        let n = self
            .inner
            .client
            .execute("UPDATE forcelink_subscriptions SET paused = $1 WHERE id = $2", &[&paused, &id])
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    pub(super) async fn subs_set_spec(&self, id: &str, spec: &str) -> Result<bool, StoreError> {
        check_text("spec", spec)?;
        let n = self
            .inner
            .client
            .execute("UPDATE forcelink_subscriptions SET spec = $1 WHERE id = $2", &[&spec, &id])
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    pub(super) async fn subs_set_status(&self, id: &str, status: &str, at: SystemTime) -> Result<bool, StoreError> {
        check_text("status", status)?;
        let n = self
            .inner
            .client
            .execute(
                "UPDATE forcelink_subscriptions SET status = $1, status_at_ms = $2 WHERE id = $3",
                &[&status, &db_millis(at), &id],
            )
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    pub(super) async fn subs_delete(&self, id: &str) -> Result<bool, StoreError> {
        // One statement: the row and its pending deliveries (`id` and `id.` + anything) go
        // together.
        let row = self
            .inner
            .client
            .query_one(
                "WITH s AS (DELETE FROM forcelink_subscriptions WHERE id = $1 RETURNING 1),
                      o AS (DELETE FROM forcelink_outbox WHERE state = 'pending'
                              AND (target = $1 OR left(target, length($2)) = $2))
                 SELECT count(*) FROM s",
                &[&id, &format!("{id}.")],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) > 0)
    }
}
