//! [`PostgresStore`]: the store for several broker replicas. The lease is a row claimed with
//! one `INSERT … ON CONFLICT … WHERE expired OR mine` statement; the fence comes from a
//! sequence. Tables are prefixed `forcelink_` so the database can be shared.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::Clock;
use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;
use tokio_postgres::{Client, NoTls};

use crate::codec::{self, from_millis, millis};
use crate::crypto::MasterKey;
use crate::{OpenError, poll_lease};

/// Serialises schema creation between processes starting at once.
const MIGRATION_LOCK: i64 = 0x666f_7263_656c_6e6b; // "forcelnk"

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS forcelink_token_sets (
    connection TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS forcelink_leases (
    connection TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    fence BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS forcelink_fence;
CREATE TABLE IF NOT EXISTS forcelink_approvals (
    username TEXT NOT NULL,
    client_id TEXT NOT NULL,
    connection TEXT NOT NULL,
    approved_at_ms BIGINT NOT NULL,
    PRIMARY KEY (username, client_id, connection)
);
";

#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    key: MasterKey,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("key", &self.inner.key).finish()
    }
}

fn db_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {e}"))
}

/// `postgres://user:secret@host/db` → `postgres://user:redacted@host/db`, for messages (brackets
/// would come out percent-encoded).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl PostgresStore {
    /// Connects (without TLS: for loopback or a private network) and creates the tables.
    pub async fn connect(url: &str, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| OpenError::Postgres(format!("{}: {e}", redact_url(url))))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection closed");
            }
        });
        let migrate = async {
            client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
            let r = client.batch_execute(SCHEMA_V1).await;
            client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
            r
        };
        migrate.await.map_err(|e| OpenError::Postgres(format!("creating the tables: {e}")))?;
        Ok(Self { inner: Arc::new(Inner { client, key, clock }) })
    }

    async fn try_lease(
        &self,
        connection: &ConnectionId,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = self.inner.clock.now();
        let expires_at = now + ttl;
        let row = self
            .inner
            .client
            .query_opt(
                "INSERT INTO forcelink_leases (connection, holder, fence, expires_at_ms)
                 VALUES ($1, $2, nextval('forcelink_fence'), $3)
                 ON CONFLICT (connection) DO UPDATE SET holder = EXCLUDED.holder, fence = EXCLUDED.fence,
                     expires_at_ms = EXCLUDED.expires_at_ms
                 WHERE forcelink_leases.expires_at_ms <= $4 OR forcelink_leases.holder = $2
                 RETURNING fence",
                &[&connection.as_str(), &holder.0, &(millis(expires_at) as i64), &(millis(now) as i64)],
            )
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| Lease {
            connection: connection.clone(),
            holder: holder.clone(),
            fence: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            expires_at,
        }))
    }

    async fn load_row(&self, connection: &ConnectionId) -> Result<Option<StoredTokens>, StoreError> {
        let row = self
            .inner
            .client
            .query_opt(
                "SELECT version, sealed FROM forcelink_token_sets WHERE connection = $1",
                &[&connection.as_str()],
            )
            .await
            .map_err(db_err)?;
        row.map(|r| {
            let version: i64 = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            Ok(StoredTokens {
                set: codec::open(&self.inner.key, connection, &sealed)?,
                version: u64::try_from(version).unwrap_or(0),
            })
        })
        .transpose()
    }

    async fn approvals_of(&self, user: &str, client_id: &str) -> Result<Vec<Approval>, StoreError> {
        let rows = self
            .inner
            .client
            .query(
                "SELECT connection, approved_at_ms FROM forcelink_approvals WHERE username = $1 AND client_id = $2
                 ORDER BY approved_at_ms, connection",
                &[&user, &client_id],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| Approval {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                connection: ConnectionId::new(r.get::<_, String>(0)),
                approved_at: from_millis(u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)),
            })
            .collect())
    }
}

impl TokenStore for PostgresStore {
    fn load<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredTokens>, StoreError>> {
        Box::pin(self.load_row(connection))
    }

    fn compare_and_swap<'a>(
        &'a self,
        connection: &'a ConnectionId,
        expected: Option<u64>,
        set: &'a TokenSet,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        Box::pin(async move {
            let sealed = codec::seal(&self.inner.key, connection, set);
            let now = millis(self.inner.clock.now()) as i64;
            let client = &self.inner.client;
            let changed = match expected {
                Some(v) => client
                    .execute(
                        "UPDATE forcelink_token_sets SET version = $1, sealed = $2, updated_at_ms = $3
                         WHERE connection = $4 AND version = $5",
                        &[&(v as i64 + 1), &sealed, &now, &connection.as_str(), &(v as i64)],
                    )
                    .await
                    .map_err(db_err)?,
                None => client
                    .execute(
                        "INSERT INTO forcelink_token_sets (connection, version, sealed, updated_at_ms)
                         VALUES ($1, 1, $2, $3) ON CONFLICT (connection) DO NOTHING",
                        &[&connection.as_str(), &sealed, &now],
                    )
                    .await
                    .map_err(db_err)?,
            };
            if changed == 1 {
                Ok(CasOutcome::Swapped { version: expected.unwrap_or(0) + 1 })
            } else {
                Ok(CasOutcome::Conflict { current: self.load_row(connection).await?.map(Box::new) })
            }
        })
    }

    fn remove<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner
                .client
                .execute("DELETE FROM forcelink_token_sets WHERE connection = $1", &[&connection.as_str()])
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        connection: &'a ConnectionId,
        holder: &'a LeaseHolder,
        ttl: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(poll_lease(wait, move || self.try_lease(connection, holder, ttl)))
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner
                .client
                .execute(
                    "DELETE FROM forcelink_leases WHERE connection = $1 AND fence = $2",
                    &[&lease.connection.as_str(), &(lease.fence as i64)],
                )
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    fn record_approval<'a>(&'a self, approval: &'a Approval) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        Box::pin(async move {
            self.inner
                .client
                .execute(
                    "INSERT INTO forcelink_approvals (username, client_id, connection, approved_at_ms)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (username, client_id, connection) DO UPDATE SET approved_at_ms = EXCLUDED.approved_at_ms",
                    &[&approval.user, &approval.client_id, &approval.connection.as_str(), &(millis(approval.approved_at) as i64)],
                )
                .await
                .map_err(db_err)?;
            self.approvals_of(&approval.user, &approval.client_id).await
        })
    }

    fn approvals<'a>(&'a self, user: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        Box::pin(self.approvals_of(user, client_id))
    }

    fn remove_approval<'a>(
        &'a self,
        user: &'a str,
        client_id: &'a str,
        connection: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner
                .client
                .execute(
                    "DELETE FROM forcelink_approvals WHERE username = $1 AND client_id = $2 AND connection = $3",
                    &[&user, &client_id, &connection.as_str()],
                )
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }
}

/// The key id recorded in the database (step 2 adds `forcelink_meta`).
pub(crate) async fn stored_key_id(_url: &str) -> Result<Option<String>, OpenError> {
    Ok(None)
}
