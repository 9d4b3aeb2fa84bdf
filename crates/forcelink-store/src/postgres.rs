//! [`PostgresStore`]: the store for several broker replicas. The lease is a row claimed with
//! one `INSERT … ON CONFLICT … WHERE expired OR mine` statement; the fence comes from a
//! sequence. Tables are prefixed `forcelink_` so the database can be shared.
//!
//! Schema versions (the `schema_version` row of `forcelink_meta`; none before version 2):
//! 1 = token sets, leases, the fence sequence, approvals; 2 adds connections (sealed specs), the
//! audit log, API keys and `forcelink_meta` (with the id of the master key that sealed the
//! store, checked on connect); 3 adds the `mac` column of API keys (see [`crate::apikey`]);
//! 4 adds `forcelink_checkpoints` (see [`crate::checkpoint`]); 5 adds
//! `forcelink_connection_health`, `forcelink_work_leases`, `forcelink_webhooks` (secrets
//! sealed), `forcelink_outbox` and `forcelink_ephemeral` (keys hashed, values sealed); 6 adds
//! `forcelink_subscriptions` (secrets sealed, see [`crate::subscription`]) and indexes the outbox
//! by target.
//! Migrations run as ordered steps in one transaction under an advisory lock.
//!
//! - here: [`PostgresStore`] (connect, the one shared client) and the key-id check of writes.
//! - `schema`: the schema versions and their migrations under an advisory lock; the key id
//!   recorded in a database.
//! - `tokens`: token sets (compare-and-swap), the lease row and approvals ([`TokenStore`]).
//! - `records`: connections, the audit log and API keys ([`ConnectionStore`]); `apikeys`: the
//!   API-key rows (read, insert, revoke); `checkpoints`: subscription checkpoints.
//! - `ops`: connection health (compare-and-swap with its deliveries in one statement), work
//!   leases, webhooks, the outbox (claims with `FOR UPDATE SKIP LOCKED`) and ephemeral records.
//! - `subscriptions`: event subscriptions and the ordered claims of their outbox targets.
//! - `rekey`: re-sealing every value under a new master key.
//!
//! [`TokenStore`]: forcelink_auth::TokenStore
//! [`ConnectionStore`]: crate::ConnectionStore

mod apikeys;
mod checkpoints;
mod ops;
mod records;
mod rekey;
mod schema;
mod subscriptions;
mod tokens;

use std::sync::Arc;

use forcelink_auth::Clock;
use forcelink_auth::error::StoreError;
use tokio_postgres::Client;

use crate::OpenError;
use crate::crypto::{MacKey, MasterKey};
use crate::rows::check_key_id;

pub(crate) use rekey::reseal;
pub(crate) use schema::stored_key_id;

/// True when this instance's key still seals the store (see [`ConnectionStore`] writes).
const SAME_KEY: &str = "EXISTS (SELECT 1 FROM forcelink_meta WHERE key = 'key_id' AND value = ";

/// The PostgreSQL store: a cheap-clone handle; clones share one client connection.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    key: MasterKey,
    /// Derived from `key`: signs API-key rows.
    mac_key: MacKey,
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

pub(crate) use crate::pgconnect::redact_url;

/// Connects with the TLS the URL's `sslmode` asks for (see [`crate::pgconnect`]); the
/// connection runs on its own task.
async fn connect_client(url: &str) -> Result<Client, OpenError> {
    crate::pgconnect::PgTarget::parse(url)?.connect().await
}

impl PostgresStore {
    /// Connects (TLS as the URL's `sslmode` says, `prefer` by default) and brings the schema up
    /// to date. Fails with [`OpenError::Key`] when the store was sealed with another master key.
    pub async fn connect(url: &str, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let mut client = connect_client(url).await?;
        let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("creating the tables: {e}"));
        let tx = client.transaction().await.map_err(fail)?;
        match schema::migrate(&tx, url, &key).await {
            Ok(()) => tx.commit().await.map_err(fail)?,
            Err(e) => {
                // Rolled back now, not whenever the dropped transaction's message gets sent:
                // the locks must not outlive this call.
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
        let mac_key = key.api_key_mac_key();
        Ok(Self { inner: Arc::new(Inner { client, key, mac_key, clock }) })
    }

    /// Fails when the store is now sealed with another key than this instance's (it was rotated).
    async fn check_same_key(&self) -> Result<(), StoreError> {
        let row = self
            .inner
            .client
            .query_opt("SELECT value FROM forcelink_meta WHERE key = 'key_id'", &[])
            .await
            .map_err(db_err)?;
        check_key_id(row.map(|r| r.get::<_, String>(0)), &self.inner.key)
    }
}
