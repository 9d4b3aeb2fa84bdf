//! Token sets (written by compare-and-swap), the renewal lease row and approvals: the
//! [`TokenStore`] half of [`PostgresStore`].

use std::time::Duration;

use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;

use super::{PostgresStore, SAME_KEY, db_err};
use crate::codec;
use crate::poll_lease;
use crate::rows::{approval, db_millis, swapped};

impl PostgresStore {
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
                &[&connection.as_str(), &holder.0, &db_millis(expires_at), &db_millis(now)],
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
        Ok(rows.iter().map(|r| approval(user, client_id, r.get(0), r.get(1))).collect())
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
            let now = db_millis(self.inner.clock.now());
            let client = &self.inner.client;
            let key_id = self.inner.key.id_hex();
            // Each write carries `key_id = this key`: a process started before a key rotation
            // cannot write a row the new key cannot open.
            let changed = match expected {
                Some(v) => client
                    .execute(
                        &format!(
                            "UPDATE forcelink_token_sets SET version = $1, sealed = $2, updated_at_ms = $3
                             WHERE connection = $4 AND version = $5 AND {SAME_KEY} $6)"
                        ),
                        &[&(v as i64 + 1), &sealed, &now, &connection.as_str(), &(v as i64), &key_id],
                    )
                    .await
                    .map_err(db_err)?,
                None => client
                    .execute(
                        &format!(
                            "INSERT INTO forcelink_token_sets (connection, version, sealed, updated_at_ms)
                             SELECT $1, 1, $2, $3 WHERE {SAME_KEY} $4) ON CONFLICT (connection) DO NOTHING"
                        ),
                        &[&connection.as_str(), &sealed, &now, &key_id],
                    )
                    .await
                    .map_err(db_err)?,
            };
            if changed == 1 {
                Ok(swapped(expected))
            } else {
                self.check_same_key().await?;
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
                    &[&approval.user, &approval.client_id, &approval.connection.as_str(), &db_millis(approval.approved_at)],
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
