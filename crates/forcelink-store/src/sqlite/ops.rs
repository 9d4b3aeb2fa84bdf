//! Health records, work leases, webhooks, the outbox and ephemeral records of a SqliteStore
//! (schema version 5). Every write that must be atomic runs in an `IMMEDIATE` transaction, which
//! takes the file's write lock first: two processes on one file never both claim a delivery or
//! take an ephemeral record.

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, check_same_key, db_err};
use crate::ephemeral::{EphemeralKind, check_value, key_hash};
use crate::health::{ConnectionHealth, HealthWrite};
use crate::outbox::{Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, NewDelivery, WebhookRecord};
use crate::rows::{
    DELIVERY_COLUMNS, DeliveryRow, OutcomeColumns, counts_of, db_millis, from_db_millis, health_row, open_ephemeral,
    open_webhook_secret, parse_string_list, seal_ephemeral, seal_webhook_secret, string_list, unordered_target_term,
    webhook_exists,
};

/// Version 5: connection health, work leases, webhooks, the outbox and ephemeral records.
pub(super) const SCHEMA_V5: &str = "
CREATE TABLE IF NOT EXISTS connection_health (
    connection TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS work_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    connections TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    target TEXT NOT NULL,
    event_type TEXT NOT NULL,
    connection TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_attempt_ms INTEGER,
    last_status INTEGER,
    last_error TEXT,
    delivered_at_ms INTEGER,
    claim_holder TEXT,
    claim_until_ms INTEGER,
    UNIQUE (target, id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_ms, seq);
CREATE TABLE IF NOT EXISTS ephemeral (
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key_hash)
);
";

pub(super) fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        target: r.get(2)?,
        event_type: r.get(3)?,
        connection: r.get(4)?,
        body: r.get(5)?,
        created_at_ms: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        next_attempt_ms: r.get(9)?,
        last_attempt_ms: r.get(10)?,
        last_status: r.get(11)?,
        last_error: r.get(12)?,
        delivered_at_ms: r.get(13)?,
    })
}

pub(super) fn deliveries_of(rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>, StoreError> {
    rows.into_iter().map(DeliveryRow::into_delivery).collect()
}

/// Inserts the deliveries whose (target, id) is new; returns how many.
fn insert_deliveries(conn: &Connection, deliveries: &[NewDelivery]) -> Result<usize, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO outbox (id, target, event_type, connection, body, created_at_ms, state, attempts, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?6)
             ON CONFLICT (target, id) DO NOTHING",
        )
        .map_err(db_err)?;
    let mut added = 0;
    for d in deliveries {
        added += stmt
            .execute(params![d.id, d.target, d.event_type, d.connection, d.body, db_millis(d.created_at)])
            .map_err(db_err)?;
    }
    Ok(added)
}

fn read_health(conn: &Connection, name: &str) -> Result<Option<ConnectionHealth>, StoreError> {
    let row: Option<(String, i64)> = conn
        .query_row("SELECT body, version FROM connection_health WHERE connection = ?1", [name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?;
    row.map(|(body, version)| health_row(&body, version)).transpose()
}

type WebhookColumns = (String, String, String, String, Vec<u8>, String, i64);

const WEBHOOK_COLUMNS: &str = "id, url, events, connections, secret, created_by, created_at_ms";

fn webhook_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

impl SqliteStore {
    fn webhook_record(&self, row: WebhookColumns) -> Result<WebhookRecord, StoreError> {
        let (id, url, events, connections, secret, created_by, created_at_ms) = row;
        Ok(WebhookRecord {
            secret: open_webhook_secret(&self.inner.key, &id, &secret)?,
            events: parse_string_list(&events, &format!("webhook {id}'s events"))?,
            connections: parse_string_list(&connections, &format!("webhook {id}'s connections"))?,
            id,
            url,
            created_by,
            created_at: from_db_millis(created_at_ms),
        })
    }

    pub(super) async fn ops_write_health(
        &self,
        health: &ConnectionHealth,
        expected: Option<u64>,
        deliveries: &[NewDelivery],
    ) -> Result<HealthWrite, StoreError> {
        let name = health.connection.as_str().to_owned();
        let body = health.to_json();
        let deliveries = deliveries.to_vec();
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let current = read_health(&tx, &name)?;
            if current.as_ref().map(|h| h.version) != expected {
                return Ok(HealthWrite::Conflict(current.map(Box::new)));
            }
            let version = expected.unwrap_or(0) + 1;
            let db_version =
                i64::try_from(version).map_err(|_| StoreError::Corrupt("health version overflow".into()))?;
            tx.execute(
                "INSERT INTO connection_health (connection, version, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (connection) DO UPDATE SET version = excluded.version, body = excluded.body",
                params![name, db_version, body],
            )
            .map_err(db_err)?;
            insert_deliveries(&tx, &deliveries)?;
            tx.commit().map_err(db_err)?;
            Ok(HealthWrite::Written(version))
        })
        .await
    }

    pub(super) async fn ops_health(&self, name: &ConnectionId) -> Result<Option<ConnectionHealth>, StoreError> {
        let name = name.as_str().to_owned();
        self.run(move |conn, _| read_health(conn, &name)).await
    }

    pub(super) async fn ops_healths(&self) -> Result<Vec<ConnectionHealth>, StoreError> {
        self.run(move |conn, _| {
            let mut stmt = conn
                .prepare_cached("SELECT body, version FROM connection_health ORDER BY connection")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            rows.iter().map(|(body, version)| health_row(body, *version)).collect()
        })
        .await
    }

    pub(super) async fn ops_try_work_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |conn, inner| {
            let now = inner.clock.now();
            let changed = conn
                .execute(
                    "INSERT INTO work_leases (name, holder, until_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                     WHERE work_leases.holder = excluded.holder OR work_leases.until_ms <= ?4",
                    params![name, holder, db_millis(now + ttl), db_millis(now)],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    pub(super) async fn ops_release_work_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |conn, _| {
            conn.execute("DELETE FROM work_leases WHERE name = ?1 AND holder = ?2", params![name, holder])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn ops_put_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError> {
        let sealed = seal_webhook_secret(&self.inner.key, &hook.id, &hook.secret);
        let hook = hook.clone();
        self.run(move |conn, inner| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            // Sealed only while this instance's key is the store's (see key rotation).
            check_same_key(&tx, &inner.key)?;
            let added = tx
                .execute(
                    &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING"),
                    params![
                        hook.id,
                        hook.url,
                        string_list(&hook.events),
                        string_list(&hook.connections),
                        sealed,
                        hook.created_by,
                        db_millis(hook.created_at)
                    ],
                )
                .map_err(db_err)?;
            if added == 0 {
                return Err(webhook_exists(&hook.id));
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    pub(super) async fn ops_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        let id = id.to_owned();
        let row = self
            .run(move |conn, _| {
                conn.query_row(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"), [id], webhook_columns)
                    .optional()
                    .map_err(db_err)
            })
            .await?;
        row.map(|r| self.webhook_record(r)).transpose()
    }

    pub(super) async fn ops_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = self
            .run(move |conn, _| {
                let mut stmt = conn
                    .prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at_ms, rowid"))
                    .map_err(db_err)?;
                let rows = stmt.query_map([], webhook_columns).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await?;
        rows.into_iter().map(|r| self.webhook_record(r)).collect()
    }

    pub(super) async fn ops_delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let removed = tx.execute("DELETE FROM webhooks WHERE id = ?1", [&id]).map_err(db_err)?;
            tx.execute("DELETE FROM outbox WHERE target = ?1 AND state = 'pending'", [&id]).map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(removed > 0)
        })
        .await
    }

    pub(super) async fn ops_enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<usize, StoreError> {
        let deliveries = deliveries.to_vec();
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let added = insert_deliveries(&tx, &deliveries)?;
            tx.commit().map_err(db_err)?;
            Ok(added)
        })
        .await
    }

    pub(super) async fn ops_claim_deliveries(
        &self,
        holder: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let holder = holder.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .run(move |conn, _| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                let rows = {
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "UPDATE outbox SET claim_holder = ?1, claim_until_ms = ?2
                             WHERE seq IN (
                                 SELECT seq FROM outbox
                                 WHERE state = 'pending' AND next_attempt_ms <= ?3 AND {}
                                   AND (claim_until_ms IS NULL OR claim_until_ms <= ?3)
                                 ORDER BY seq LIMIT ?4)
                             RETURNING {DELIVERY_COLUMNS}",
                            unordered_target_term()
                        ))
                        .map_err(db_err)?;
                    let rows = stmt
                        .query_map(params![holder, db_millis(now + lease), db_millis(now), limit], delivery_row)
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

    pub(super) async fn ops_finish_delivery(
        &self,
        seq: i64,
        holder: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        let holder = holder.to_owned();
        let c = OutcomeColumns::of(outcome);
        self.run(move |conn, _| {
            let changed = conn
                .execute(
                    "UPDATE outbox SET attempts = attempts + 1, state = ?1, last_attempt_ms = ?2, last_status = ?3,
                         last_error = ?4, next_attempt_ms = COALESCE(?5, next_attempt_ms),
                         delivered_at_ms = COALESCE(?6, delivered_at_ms), claim_holder = NULL, claim_until_ms = NULL
                     WHERE seq = ?7 AND state = 'pending' AND claim_holder = ?8",
                    params![
                        c.state,
                        c.last_attempt_ms,
                        c.last_status,
                        c.last_error,
                        c.next_attempt_ms,
                        c.delivered_at_ms,
                        seq,
                        holder
                    ],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    pub(super) async fn ops_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        let target = filter.target.clone();
        let state = filter.state.map(|s| s.as_str());
        let limit = i64::try_from(filter.effective_limit()).unwrap_or(i64::MAX);
        let rows = self
            .run(move |conn, _| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {DELIVERY_COLUMNS} FROM outbox
                         WHERE (?1 IS NULL OR target = ?1) AND (?2 IS NULL OR state = ?2)
                         ORDER BY seq DESC LIMIT ?3"
                    ))
                    .map_err(db_err)?;
                let rows = stmt.query_map(params![target, state, limit], delivery_row).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await?;
        deliveries_of(rows)
    }

    pub(super) async fn ops_delivery_counts(&self, target: &str) -> Result<DeliveryCounts, StoreError> {
        let target = target.to_owned();
        let rows = self
            .run(move |conn, _| {
                let mut stmt = conn
                    .prepare_cached("SELECT state, count(*) FROM outbox WHERE target = ?1 GROUP BY state")
                    .map_err(db_err)?;
                let rows =
                    stmt.query_map([target], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await?;
        counts_of(rows)
    }

    pub(super) async fn ops_retry_delivery(&self, seq: i64) -> Result<bool, StoreError> {
        self.run(move |conn, inner| {
            let changed = conn
                .execute(
                    "UPDATE outbox SET state = 'pending', next_attempt_ms = ?1, claim_holder = NULL, claim_until_ms = NULL
                     WHERE seq = ?2 AND state = 'failed'",
                    params![db_millis(inner.clock.now()), seq],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    pub(super) async fn ops_purge_deliveries(&self, before: SystemTime) -> Result<u64, StoreError> {
        self.run(move |conn, _| {
            let n = conn
                .execute("DELETE FROM outbox WHERE state <> 'pending' AND created_at_ms < ?1", [db_millis(before)])
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    pub(super) async fn ops_put_ephemeral(
        &self,
        kind: EphemeralKind,
        key: &str,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        check_value(value)?;
        let hash = key_hash(key);
        let sealed = seal_ephemeral(&self.inner.key, kind, &hash, value);
        self.run(move |conn, inner| {
            let now = db_millis(inner.clock.now());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            check_same_key(&tx, &inner.key)?;
            tx.execute("DELETE FROM ephemeral WHERE expires_at_ms <= ?1", [now]).map_err(db_err)?;
            tx.execute(
                "INSERT INTO ephemeral (kind, key_hash, value, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, key_hash) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms",
                params![kind.as_str(), hash, sealed, db_millis(expires_at)],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    pub(super) async fn ops_ephemeral(&self, kind: EphemeralKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = key_hash(key);
        self.run(move |conn, inner| {
            let sealed: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT value FROM ephemeral WHERE kind = ?1 AND key_hash = ?2 AND expires_at_ms > ?3",
                    params![kind.as_str(), hash, db_millis(inner.clock.now())],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            sealed.map(|s| open_ephemeral(&inner.key, kind, &hash, &s)).transpose()
        })
        .await
    }

    pub(super) async fn ops_take_ephemeral(
        &self,
        kind: EphemeralKind,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = key_hash(key);
        self.run(move |conn, inner| {
            // One statement under the file's write lock: of several takers, one gets the row.
            let row: Option<(Vec<u8>, i64)> = conn
                .query_row(
                    "DELETE FROM ephemeral WHERE kind = ?1 AND key_hash = ?2 RETURNING value, expires_at_ms",
                    params![kind.as_str(), hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            let now = db_millis(inner.clock.now());
            row.filter(|(_, until)| *until > now).map(|(s, _)| open_ephemeral(&inner.key, kind, &hash, &s)).transpose()
        })
        .await
    }

    pub(super) async fn ops_delete_ephemeral(&self, kind: EphemeralKind, key: &str) -> Result<bool, StoreError> {
        let hash = key_hash(key);
        self.run(move |conn, inner| {
            let until: Option<i64> = conn
                .query_row(
                    "DELETE FROM ephemeral WHERE kind = ?1 AND key_hash = ?2 RETURNING expires_at_ms",
                    params![kind.as_str(), hash],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            Ok(until.is_some_and(|until| until > db_millis(inner.clock.now())))
        })
        .await
    }
}
