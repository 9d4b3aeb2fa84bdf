//! Event subscriptions of a SqliteStore (schema version 6) and the ordered claims of their
//! outbox targets (see [`crate::subscription`]).

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::ops::{deliveries_of, delivery_row};
use super::{SqliteStore, check_same_key, db_err};
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
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    connection TEXT NOT NULL,
    url TEXT NOT NULL,
    secret BLOB NOT NULL,
    spec TEXT NOT NULL,
    paused INTEGER NOT NULL,
    status TEXT,
    status_at_ms INTEGER,
    created_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_target ON outbox (target, state, seq);
DROP INDEX IF EXISTS outbox_due;
CREATE INDEX IF NOT EXISTS outbox_due_unordered ON outbox (seq) WHERE state = 'pending' AND {};
",
        unordered_target_term()
    )
}

type SubscriptionColumns = (String, String, String, Vec<u8>, String, bool, Option<String>, Option<i64>, String, i64);

const SUBSCRIPTION_COLUMNS: &str =
    "id, connection, url, secret, spec, paused, status, status_at_ms, created_by, created_at_ms";

fn subscription_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

impl SqliteStore {
    fn subscription_record(&self, row: SubscriptionColumns) -> Result<SubscriptionRecord, StoreError> {
        let (id, connection, url, secret, spec, paused, status, status_at_ms, created_by, created_at_ms) = row;
        Ok(SubscriptionRecord {
            secret: open_subscription_secret(&self.inner.key, &id, &secret)?,
            id,
            connection,
            url,
            spec,
            paused,
            status,
            status_at: status_at_ms.map(from_db_millis),
            created_by,
            created_at: from_db_millis(created_at_ms),
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
        let (target, holder) = (target.to_owned(), holder.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .run(move |conn, _| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                let rows = {
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "UPDATE outbox SET claim_holder = ?2, claim_until_ms = ?3
                             WHERE seq IN (
                                 SELECT seq FROM outbox
                                 WHERE target = ?1 AND state = 'pending'
                                   AND (claim_until_ms IS NULL OR claim_until_ms <= ?4 OR claim_holder = ?2)
                                 ORDER BY seq LIMIT ?5)
                             RETURNING {DELIVERY_COLUMNS}"
                        ))
                        .map_err(db_err)?;
                    let rows = stmt
                        .query_map(params![target, holder, db_millis(now + lease), db_millis(now), limit], delivery_row)
                        .map_err(db_err)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
                };
                tx.commit().map_err(db_err)?;
                Ok(rows)
            })
            .await?;
        let mut claimed = deliveries_of(rows)?;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    pub(super) async fn subs_put(&self, sub: &SubscriptionRecord) -> Result<(), StoreError> {
        check_subscription(sub)?;
        let sealed = seal_subscription_secret(&self.inner.key, &sub.id, &sub.secret);
        let sub = sub.clone();
        self.run(move |conn, inner| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            // Sealed only while this instance's key is the store's (see key rotation).
            check_same_key(&tx, &inner.key)?;
            let added = tx
                .execute(
                    &format!(
                        "INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"
                    ),
                    params![
                        sub.id,
                        sub.connection,
                        sub.url,
                        sealed,
                        sub.spec,
                        sub.paused,
                        sub.status,
                        sub.status_at.map(db_millis),
                        sub.created_by,
                        db_millis(sub.created_at)
                    ],
                )
                .map_err(db_err)?;
            if added == 0 {
                return Err(subscription_exists(&sub.id));
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    pub(super) async fn subs_get(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        let id = id.to_owned();
        let row = self
            .run(move |conn, _| {
                conn.query_row(
                    &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ?1"),
                    [id],
                    subscription_columns,
                )
                .optional()
                .map_err(db_err)
            })
            .await?;
        row.map(|r| self.subscription_record(r)).transpose()
    }

    pub(super) async fn subs_list(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let rows = self
            .run(move |conn, _| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY created_at_ms, rowid"
                    ))
                    .map_err(db_err)?;
                let rows = stmt.query_map([], subscription_columns).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await?;
        rows.into_iter().map(|r| self.subscription_record(r)).collect()
    }

    pub(super) async fn subs_set_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |conn, _| {
            let n = conn
                .execute("UPDATE subscriptions SET paused = ?1 WHERE id = ?2", params![paused, id])
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    pub(super) async fn subs_set_spec(&self, id: &str, spec: &str) -> Result<bool, StoreError> {
        check_text("spec", spec)?;
        let (id, spec) = (id.to_owned(), spec.to_owned());
        self.run(move |conn, _| {
            let n =
                conn.execute("UPDATE subscriptions SET spec = ?1 WHERE id = ?2", params![spec, id]).map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    pub(super) async fn subs_set_status(&self, id: &str, status: &str, at: SystemTime) -> Result<bool, StoreError> {
        check_text("status", status)?;
        let (id, status) = (id.to_owned(), status.to_owned());
        self.run(move |conn, _| {
            let n = conn
                .execute(
                    "UPDATE subscriptions SET status = ?1, status_at_ms = ?2 WHERE id = ?3",
                    params![status, db_millis(at), id],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    pub(super) async fn subs_delete(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let removed = tx.execute("DELETE FROM subscriptions WHERE id = ?1", [&id]).map_err(db_err)?;
            // `id` and `id.` + anything: a range on the target index (no LIKE, whose wildcards
            // and case folding would need escaping).
            tx.execute(
                "DELETE FROM outbox WHERE state = 'pending'
                   AND (target = ?1 OR (target >= ?2 AND substr(target, 1, length(?2)) = ?2))",
                params![id, format!("{id}.")],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(removed > 0)
        })
        .await
    }
}
