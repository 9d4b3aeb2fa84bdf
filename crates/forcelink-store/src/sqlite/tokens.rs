//! Token sets (written by compare-and-swap), the renewal lease row and approvals: the
//! [`TokenStore`] half of [`SqliteStore`].

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, check_same_key, db_err};
use crate::codec;
use crate::crypto::MasterKey;
use crate::poll_lease;
use crate::rows::{approval, db_millis, lease_held_by_other, swapped};

fn load_row(conn: &Connection, key: &MasterKey, connection: &ConnectionId) -> Result<Option<StoredTokens>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT version, sealed FROM token_sets WHERE connection = ?1", [connection.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?;
    row.map(|(version, sealed)| {
        Ok(StoredTokens { set: codec::open(key, connection, &sealed)?, version: u64::try_from(version).unwrap_or(0) })
    })
    .transpose()
}

fn try_lease(
    conn: &mut Connection,
    now: SystemTime,
    connection: &ConnectionId,
    holder: &LeaseHolder,
    ttl: Duration,
) -> Result<Option<Lease>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
    let current: Option<(String, i64)> = tx
        .query_row("SELECT holder, expires_at_ms FROM leases WHERE connection = ?1", [connection.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?;
    if let Some((h, expires)) = current
        && lease_held_by_other(&h, expires, holder, now)
    {
        return Ok(None);
    }
    let fence: i64 = tx
        .query_row("UPDATE fences SET next = next + 1 WHERE id = 1 RETURNING next", [], |r| r.get(0))
        .map_err(db_err)?;
    let expires_at = now + ttl;
    tx.execute(
        "INSERT INTO leases (connection, holder, fence, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (connection) DO UPDATE SET holder = excluded.holder, fence = excluded.fence,
         expires_at_ms = excluded.expires_at_ms",
        params![connection.as_str(), holder.0, fence, db_millis(expires_at)],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    Ok(Some(Lease {
        connection: connection.clone(),
        holder: holder.clone(),
        fence: u64::try_from(fence).unwrap_or(0),
        expires_at,
    }))
}

fn approvals_of(conn: &Connection, user: &str, client_id: &str) -> Result<Vec<Approval>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT connection, approved_at_ms FROM approvals WHERE username = ?1 AND client_id = ?2
             ORDER BY approved_at_ms, connection",
        )
        .map_err(db_err)?;
    let rows =
        stmt.query_map([user, client_id], |r| Ok(approval(user, client_id, r.get(0)?, r.get(1)?))).map_err(db_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
}

impl TokenStore for SqliteStore {
    fn load<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredTokens>, StoreError>> {
        let connection = connection.clone();
        Box::pin(self.run(move |conn, inner| load_row(conn, &inner.key, &connection)))
    }

    fn compare_and_swap<'a>(
        &'a self,
        connection: &'a ConnectionId,
        expected: Option<u64>,
        set: &'a TokenSet,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        let connection = connection.clone();
        let sealed = codec::seal(&self.inner.key, &connection, set);
        Box::pin(self.run(move |conn, inner| {
            let now = db_millis(inner.clock.now());
            let key_id = inner.key.id_hex();
            // Each write carries `meta.key_id = this key`: a process started before a key
            // rotation cannot write a row the new key cannot open.
            let changed = match expected {
                Some(v) => conn
                    .execute(
                        "UPDATE token_sets SET version = ?1, sealed = ?2, updated_at_ms = ?3
                         WHERE connection = ?4 AND version = ?5
                         AND EXISTS (SELECT 1 FROM meta WHERE key = 'key_id' AND value = ?6)",
                        params![v as i64 + 1, sealed, now, connection.as_str(), v as i64, key_id],
                    )
                    .map_err(db_err)?,
                None => conn
                    .execute(
                        "INSERT INTO token_sets (connection, version, sealed, updated_at_ms)
                         SELECT ?1, 1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'key_id' AND value = ?4)
                         ON CONFLICT (connection) DO NOTHING",
                        params![connection.as_str(), sealed, now, key_id],
                    )
                    .map_err(db_err)?,
            };
            if changed == 1 {
                Ok(swapped(expected))
            } else {
                check_same_key(conn, &inner.key)?;
                Ok(CasOutcome::Conflict { current: load_row(conn, &inner.key, &connection)?.map(Box::new) })
            }
        }))
    }

    fn remove<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<(), StoreError>> {
        let connection = connection.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute("DELETE FROM token_sets WHERE connection = ?1", [connection.as_str()]).map_err(db_err)?;
            Ok(())
        }))
    }

    fn acquire_lease<'a>(
        &'a self,
        connection: &'a ConnectionId,
        holder: &'a LeaseHolder,
        ttl: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(poll_lease(wait, move || {
            let (c, h) = (connection.clone(), holder.clone());
            self.run(move |conn, inner| try_lease(conn, inner.clock.now(), &c, &h, ttl))
        }))
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        let lease = lease.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "DELETE FROM leases WHERE connection = ?1 AND fence = ?2",
                params![lease.connection.as_str(), lease.fence as i64],
            )
            .map_err(db_err)?;
            Ok(())
        }))
    }

    fn record_approval<'a>(&'a self, approval: &'a Approval) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        let a = approval.clone();
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "INSERT INTO approvals (username, client_id, connection, approved_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (username, client_id, connection) DO UPDATE SET approved_at_ms = excluded.approved_at_ms",
                params![a.user, a.client_id, a.connection.as_str(), db_millis(a.approved_at)],
            )
            .map_err(db_err)?;
            approvals_of(conn, &a.user, &a.client_id)
        }))
    }

    fn approvals<'a>(&'a self, user: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        let (user, client_id) = (user.to_owned(), client_id.to_owned());
        Box::pin(self.run(move |conn, _| approvals_of(conn, &user, &client_id)))
    }

    fn remove_approval<'a>(
        &'a self,
        user: &'a str,
        client_id: &'a str,
        connection: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (user, client_id, connection) = (user.to_owned(), client_id.to_owned(), connection.clone());
        Box::pin(self.run(move |conn, _| {
            conn.execute(
                "DELETE FROM approvals WHERE username = ?1 AND client_id = ?2 AND connection = ?3",
                params![user, client_id, connection.as_str()],
            )
            .map_err(db_err)?;
            Ok(())
        }))
    }
}
