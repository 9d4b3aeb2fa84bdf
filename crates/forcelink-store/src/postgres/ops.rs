//! Health records, work leases, webhooks, the outbox and ephemeral records of a PostgresStore
//! (schema version 5). The store's one client is shared by every task, so each write that must
//! be atomic is one statement (data-modifying `WITH` parts run in its one transaction): the
//! health compare-and-swap with its deliveries, claims (`FOR UPDATE SKIP LOCKED`), takes
//! (`DELETE … RETURNING`).

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;

use super::{PostgresStore, SAME_KEY, db_err};
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
CREATE TABLE IF NOT EXISTS forcelink_connection_health (
    connection TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forcelink_work_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS forcelink_webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    connections TEXT NOT NULL,
    secret BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS forcelink_outbox (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL,
    target TEXT NOT NULL,
    event_type TEXT NOT NULL,
    connection TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_attempt_ms BIGINT,
    last_status INTEGER,
    last_error TEXT,
    delivered_at_ms BIGINT,
    claim_holder TEXT,
    claim_until_ms BIGINT,
    UNIQUE (target, id)
);
CREATE INDEX IF NOT EXISTS forcelink_outbox_due ON forcelink_outbox (state, next_attempt_ms, seq);
CREATE TABLE IF NOT EXISTS forcelink_ephemeral (
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    value BYTEA NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, key_hash)
);
";

/// Inserts the rows of `unnest($first..$first+5)` (id, target, event type, connection, body,
/// created at), in order, when `condition` holds; a (target, id) already there is skipped.
fn insert_deliveries_sql(first: usize, condition: &str) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "INSERT INTO forcelink_outbox
             (id, target, event_type, connection, body, created_at_ms, state, attempts, next_attempt_ms)
         SELECT i, t, e, c, b, ms, 'pending', 0, ms
         FROM unnest({}::TEXT[], {}::TEXT[], {}::TEXT[], {}::TEXT[], {}::TEXT[], {}::BIGINT[])
              WITH ORDINALITY AS u (i, t, e, c, b, ms, ord)
         WHERE {condition}
         ORDER BY ord
         ON CONFLICT (target, id) DO NOTHING",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5)
    )
}

/// The columns of `deliveries`, as the arrays [`insert_deliveries_sql`] unnests.
struct DeliveryArrays {
    ids: Vec<String>,
    targets: Vec<String>,
    types: Vec<String>,
    connections: Vec<String>,
    bodies: Vec<String>,
    created: Vec<i64>,
}

impl DeliveryArrays {
    fn of(deliveries: &[NewDelivery]) -> Self {
        Self {
            ids: deliveries.iter().map(|d| d.id.clone()).collect(),
            targets: deliveries.iter().map(|d| d.target.clone()).collect(),
            types: deliveries.iter().map(|d| d.event_type.clone()).collect(),
            connections: deliveries.iter().map(|d| d.connection.clone()).collect(),
            bodies: deliveries.iter().map(|d| d.body.clone()).collect(),
            created: deliveries.iter().map(|d| db_millis(d.created_at)).collect(),
        }
    }
}

pub(super) fn delivery_row(r: &tokio_postgres::Row) -> Result<Delivery, StoreError> {
    DeliveryRow {
        seq: r.get(0),
        id: r.get(1),
        target: r.get(2),
        event_type: r.get(3),
        connection: r.get(4),
        body: r.get(5),
        created_at_ms: r.get(6),
        state: r.get(7),
        attempts: i64::from(r.get::<_, i32>(8)),
        next_attempt_ms: r.get(9),
        last_attempt_ms: r.get(10),
        last_status: r.get::<_, Option<i32>>(11).map(i64::from),
        last_error: r.get(12),
        delivered_at_ms: r.get(13),
    }
    .into_delivery()
}

const WEBHOOK_COLUMNS: &str = "id, url, events, connections, secret, created_by, created_at_ms";

impl PostgresStore {
    fn webhook_record(&self, r: &tokio_postgres::Row) -> Result<WebhookRecord, StoreError> {
        let id: String = r.get(0);
        Ok(WebhookRecord {
            url: r.get(1),
            events: parse_string_list(r.get(2), &format!("webhook {id}'s events"))?,
            connections: parse_string_list(r.get(3), &format!("webhook {id}'s connections"))?,
            secret: open_webhook_secret(&self.inner.key, &id, r.get(4))?,
            created_by: r.get(5),
            created_at: from_db_millis(r.get(6)),
            id,
        })
    }

    pub(super) async fn ops_write_health(
        &self,
        health: &ConnectionHealth,
        expected: Option<u64>,
        deliveries: &[NewDelivery],
    ) -> Result<HealthWrite, StoreError> {
        let name = health.connection.as_str();
        let body = health.to_json();
        let a = DeliveryArrays::of(deliveries);
        let expected_db = expected
            .map(i64::try_from)
            .transpose()
            .map_err(|_| StoreError::Unavailable("a health version out of range".into()))?;
        // The row and the deliveries in one statement: both are written, or (on a conflict)
        // neither.
        let write = match expected_db {
            None => {
                "INSERT INTO forcelink_connection_health (connection, version, body) SELECT $1, $2::BIGINT + 1, $3
                     ON CONFLICT (connection) DO NOTHING RETURNING version"
            }
            Some(_) => {
                "UPDATE forcelink_connection_health SET version = version + 1, body = $3
                        WHERE connection = $1 AND version = $2 RETURNING version"
            }
        };
        let sql = format!(
            "WITH w AS ({write}), d AS ({}) SELECT version FROM w",
            insert_deliveries_sql(4, "EXISTS (SELECT 1 FROM w)")
        );
        let row = self
            .inner
            .client
            .query_opt(
                &sql,
                &[
                    &name,
                    &expected_db.unwrap_or(0),
                    &body,
                    &a.ids,
                    &a.targets,
                    &a.types,
                    &a.connections,
                    &a.bodies,
                    &a.created,
                ],
            )
            .await
            .map_err(db_err)?;
        match row {
            Some(r) => Ok(HealthWrite::Written(u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))),
            None => Ok(HealthWrite::Conflict(self.ops_health(&health.connection).await?.map(Box::new))),
        }
    }

    pub(super) async fn ops_health(&self, name: &ConnectionId) -> Result<Option<ConnectionHealth>, StoreError> {
        let row = self
            .inner
            .client
            .query_opt("SELECT body, version FROM forcelink_connection_health WHERE connection = $1", &[&name.as_str()])
            .await
            .map_err(db_err)?;
        row.map(|r| health_row(r.get(0), r.get(1))).transpose()
    }

    pub(super) async fn ops_healths(&self) -> Result<Vec<ConnectionHealth>, StoreError> {
        let rows = self
            .inner
            .client
            .query("SELECT body, version FROM forcelink_connection_health ORDER BY connection COLLATE \"C\"", &[])
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| health_row(r.get(0), r.get(1))).collect()
    }

    pub(super) async fn ops_try_work_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.inner.clock.now();
        let n = self
            .inner
            .client
            .execute(
                "INSERT INTO forcelink_work_leases (name, holder, until_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms
                 WHERE forcelink_work_leases.holder = EXCLUDED.holder OR forcelink_work_leases.until_ms <= $4",
                &[&name, &holder, &db_millis(now + ttl), &db_millis(now)],
            )
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    pub(super) async fn ops_release_work_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner
            .client
            .execute("DELETE FROM forcelink_work_leases WHERE name = $1 AND holder = $2", &[&name, &holder])
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn ops_put_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError> {
        let sealed = seal_webhook_secret(&self.inner.key, &hook.id, &hook.secret);
        // Sealed only while this instance's key is the store's (see key rotation).
        let n = self
            .inner
            .client
            .execute(
                &format!(
                    "INSERT INTO forcelink_webhooks ({WEBHOOK_COLUMNS})
                     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE {SAME_KEY} $8) ON CONFLICT (id) DO NOTHING"
                ),
                &[
                    &hook.id,
                    &hook.url,
                    &string_list(&hook.events),
                    &string_list(&hook.connections),
                    &sealed,
                    &hook.created_by,
                    &db_millis(hook.created_at),
                    &self.inner.key.id_hex(),
                ],
            )
            .await
            .map_err(db_err)?;
        if n == 0 {
            self.check_same_key().await?;
            return Err(webhook_exists(&hook.id));
        }
        Ok(())
    }

    pub(super) async fn ops_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        let row = self
            .inner
            .client
            .query_opt(&format!("SELECT {WEBHOOK_COLUMNS} FROM forcelink_webhooks WHERE id = $1"), &[&id])
            .await
            .map_err(db_err)?;
        row.map(|r| self.webhook_record(&r)).transpose()
    }

    pub(super) async fn ops_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = self
            .inner
            .client
            .query(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM forcelink_webhooks ORDER BY created_at_ms, id COLLATE \"C\""),
                &[],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| self.webhook_record(r)).collect()
    }

    pub(super) async fn ops_delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let row = self
            .inner
            .client
            .query_one(
                "WITH h AS (DELETE FROM forcelink_webhooks WHERE id = $1 RETURNING 1),
                      o AS (DELETE FROM forcelink_outbox WHERE target = $1 AND state = 'pending')
                 SELECT count(*) FROM h",
                &[&id],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) > 0)
    }

    pub(super) async fn ops_enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<usize, StoreError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let a = DeliveryArrays::of(deliveries);
        let n = self
            .inner
            .client
            .execute(
                &insert_deliveries_sql(1, "TRUE"),
                &[&a.ids, &a.targets, &a.types, &a.connections, &a.bodies, &a.created],
            )
            .await
            .map_err(db_err)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) async fn ops_claim_deliveries(
        &self,
        holder: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Rows another claimer has locked are skipped, and a row claimed meanwhile is checked
        // again once locked: no row goes to two claimers.
        let rows = self
            .inner
            .client
            .query(
                &format!(
                    "UPDATE forcelink_outbox SET claim_holder = $1, claim_until_ms = $2
                     WHERE seq IN (
                         SELECT seq FROM forcelink_outbox
                         WHERE state = 'pending' AND next_attempt_ms <= $3 AND {}
                           AND (claim_until_ms IS NULL OR claim_until_ms <= $3)
                         ORDER BY seq LIMIT $4
                         FOR UPDATE SKIP LOCKED)
                     RETURNING {DELIVERY_COLUMNS}",
                    unordered_target_term()
                ),
                &[&holder, &db_millis(now + lease), &db_millis(now), &limit],
            )
            .await
            .map_err(db_err)?;
        let mut claimed = rows.iter().map(delivery_row).collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    pub(super) async fn ops_finish_delivery(
        &self,
        seq: i64,
        holder: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        let c = OutcomeColumns::of(outcome);
        let n = self
            .inner
            .client
            .execute(
                "UPDATE forcelink_outbox SET attempts = attempts + 1, state = $1, last_attempt_ms = $2,
                     last_status = $3, last_error = $4, next_attempt_ms = COALESCE($5, next_attempt_ms),
                     delivered_at_ms = COALESCE($6, delivered_at_ms), claim_holder = NULL, claim_until_ms = NULL
                 WHERE seq = $7 AND state = 'pending' AND claim_holder = $8",
                &[
                    &c.state,
                    &c.last_attempt_ms,
                    &c.last_status,
                    &c.last_error,
                    &c.next_attempt_ms,
                    &c.delivered_at_ms,
                    &seq,
                    &holder,
                ],
            )
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    pub(super) async fn ops_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        let state = filter.state.map(|s| s.as_str());
        let limit = i64::try_from(filter.effective_limit()).unwrap_or(i64::MAX);
        let rows = self
            .inner
            .client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM forcelink_outbox
                     WHERE ($1::TEXT IS NULL OR target = $1) AND ($2::TEXT IS NULL OR state = $2)
                     ORDER BY seq DESC LIMIT $3"
                ),
                &[&filter.target, &state, &limit],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(delivery_row).collect()
    }

    pub(super) async fn ops_delivery_counts(&self, target: &str) -> Result<DeliveryCounts, StoreError> {
        let rows = self
            .inner
            .client
            .query("SELECT state, count(*) FROM forcelink_outbox WHERE target = $1 GROUP BY state", &[&target])
            .await
            .map_err(db_err)?;
        counts_of(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn ops_retry_delivery(&self, seq: i64) -> Result<bool, StoreError> {
        let n = self
            .inner
            .client
            .execute(
                "UPDATE forcelink_outbox SET state = 'pending', next_attempt_ms = $1, claim_holder = NULL,
                     claim_until_ms = NULL
                 WHERE seq = $2 AND state = 'failed'",
                &[&db_millis(self.inner.clock.now()), &seq],
            )
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    pub(super) async fn ops_purge_deliveries(&self, before: SystemTime) -> Result<u64, StoreError> {
        self.inner
            .client
            .execute(
                "DELETE FROM forcelink_outbox WHERE state <> 'pending' AND created_at_ms < $1",
                &[&db_millis(before)],
            )
            .await
            .map_err(db_err)
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
        let now = db_millis(self.inner.clock.now());
        // The purge leaves the row being written alone: one statement must not touch a row twice.
        let n = self
            .inner
            .client
            .execute(
                &format!(
                    "WITH p AS (DELETE FROM forcelink_ephemeral
                                WHERE expires_at_ms <= $5 AND NOT (kind = $1 AND key_hash = $2))
                     INSERT INTO forcelink_ephemeral (kind, key_hash, value, expires_at_ms)
                     SELECT $1, $2, $3, $4 WHERE {SAME_KEY} $6)
                     ON CONFLICT (kind, key_hash)
                     DO UPDATE SET value = EXCLUDED.value, expires_at_ms = EXCLUDED.expires_at_ms"
                ),
                &[&kind.as_str(), &hash, &sealed, &db_millis(expires_at), &now, &self.inner.key.id_hex()],
            )
            .await
            .map_err(db_err)?;
        if n == 0 {
            self.check_same_key().await?;
            return Err(StoreError::Unavailable("the ephemeral record was not written; try again".into()));
        }
        Ok(())
    }

    pub(super) async fn ops_ephemeral(&self, kind: EphemeralKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = key_hash(key);
        let row = self
            .inner
            .client
            .query_opt(
                "SELECT value FROM forcelink_ephemeral WHERE kind = $1 AND key_hash = $2 AND expires_at_ms > $3",
                &[&kind.as_str(), &hash, &db_millis(self.inner.clock.now())],
            )
            .await
            .map_err(db_err)?;
        row.map(|r| open_ephemeral(&self.inner.key, kind, &hash, r.get(0))).transpose()
    }

    pub(super) async fn ops_take_ephemeral(
        &self,
        kind: EphemeralKind,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = key_hash(key);
        // One DELETE: of several takers on any replica, one gets the row.
        let row = self
            .inner
            .client
            .query_opt(
                "DELETE FROM forcelink_ephemeral WHERE kind = $1 AND key_hash = $2 RETURNING value, expires_at_ms",
                &[&kind.as_str(), &hash],
            )
            .await
            .map_err(db_err)?;
        let now = db_millis(self.inner.clock.now());
        row.filter(|r| r.get::<_, i64>(1) > now)
            .map(|r| open_ephemeral(&self.inner.key, kind, &hash, r.get(0)))
            .transpose()
    }

    pub(super) async fn ops_delete_ephemeral(&self, kind: EphemeralKind, key: &str) -> Result<bool, StoreError> {
        let row = self
            .inner
            .client
            .query_opt(
                "DELETE FROM forcelink_ephemeral WHERE kind = $1 AND key_hash = $2 RETURNING expires_at_ms",
                &[&kind.as_str(), &key_hash(key)],
            )
            .await
            .map_err(db_err)?;
        Ok(row.is_some_and(|r| r.get::<_, i64>(0) > db_millis(self.inner.clock.now())))
    }
}
