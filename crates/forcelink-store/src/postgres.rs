//! [`PostgresStore`]: the store for several broker replicas. The lease is a row claimed with
//! one `INSERT … ON CONFLICT … WHERE expired OR mine` statement; the fence comes from a
//! sequence. Tables are prefixed `forcelink_` so the database can be shared.
//!
//! Schema versions (the `schema_version` row of `forcelink_meta`; none before version 2):
//! 1 = token sets, leases, the fence sequence, approvals; 2 adds connections (sealed specs), the
//! audit log, API keys and `forcelink_meta` (with the id of the master key that sealed the
//! store, checked on connect); 3 adds the `mac` column of API keys (see [`crate::apikey`]).
//! Migrations run as ordered steps in one transaction under an advisory lock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::Clock;
use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;
use tokio_postgres::{Client, GenericClient};

use crate::apikey::{ApiKeyRow, checked_rows};
use crate::codec::{self, from_millis, millis};
use crate::connection::ConnectionSpec;
use crate::crypto::{MacKey, MasterKey, sealed_key_id};
use crate::registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};
use crate::{OpenError, key_mismatch, poll_lease, rotated_away};

/// Serialises schema creation between processes starting at once.
const MIGRATION_LOCK: i64 = 0x666f_7263_656c_6e6b; // "forcelnk"

/// Schema version this code writes.
const SCHEMA_VERSION: i64 = 3;

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

const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS forcelink_connections (
    name TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS forcelink_audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    connection TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS forcelink_audit_log_by_connection ON forcelink_audit_log (connection, at_ms);
CREATE TABLE IF NOT EXISTS forcelink_api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    label TEXT NOT NULL,
    connections TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE TABLE IF NOT EXISTS forcelink_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// True when this instance's key still seals the store (see [`ConnectionStore`] writes).
const SAME_KEY: &str = "EXISTS (SELECT 1 FROM forcelink_meta WHERE key = 'key_id' AND value = ";

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

async fn table_exists(client: &impl GenericClient, table: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?.get(0))
}

/// The id of the key that sealed the store: the `forcelink_meta` row, else (a version 1 store)
/// the header of any sealed token set; `None` when nothing is sealed yet.
async fn stored_key_id_of(client: &impl GenericClient) -> Result<Option<String>, tokio_postgres::Error> {
    if table_exists(client, "forcelink_meta").await?
        && let Some(row) = client.query_opt("SELECT value FROM forcelink_meta WHERE key = 'key_id'", &[]).await?
    {
        return Ok(Some(row.get(0)));
    }
    if !table_exists(client, "forcelink_token_sets").await? {
        return Ok(None);
    }
    let row = client.query_opt("SELECT sealed FROM forcelink_token_sets LIMIT 1", &[]).await?;
    Ok(row.and_then(|r| sealed_key_id(&r.get::<_, Vec<u8>>(0))))
}

/// The key id recorded in the database at `url`, changing nothing.
pub(crate) async fn stored_key_id(url: &str) -> Result<Option<String>, OpenError> {
    let client = connect_client(url).await?;
    stored_key_id_of(&client).await.map_err(|e| OpenError::Postgres(format!("reading the store's key id: {e}")))
}

/// Re-seals every token set and connection spec with `new`, and re-signs every API-key row, in
/// one transaction that also records `new`'s id. Writers wait on the table locks; `before_commit` runs once they are held.
pub(crate) async fn reseal(
    url: &str,
    old: &MasterKey,
    new: &MasterKey,
    before_commit: impl FnOnce() -> Result<(), OpenError>,
) -> Result<crate::rows::ResealCounts, OpenError> {
    let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("re-sealing the store: {e}"));
    let mut client = connect_client(url).await?;
    let tx = client.transaction().await.map_err(fail)?;
    match reseal_in(&tx, url, old, new, before_commit).await {
        Ok(counts) => {
            tx.commit().await.map_err(fail)?;
            Ok(counts)
        }
        Err(e) => {
            // Rolled back now, so the table locks do not outlive this call.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The re-sealing inside `tx`; nothing is committed here.
async fn reseal_in(
    tx: &tokio_postgres::Transaction<'_>,
    url: &str,
    old: &MasterKey,
    new: &MasterKey,
    before_commit: impl FnOnce() -> Result<(), OpenError>,
) -> Result<crate::rows::ResealCounts, OpenError> {
    let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("re-sealing the store: {e}"));
    // Blocks every writer (readers go on) until the commit; checked again under the lock, as
    // another rotation may have finished meanwhile.
    tx.batch_execute(
        "LOCK TABLE forcelink_meta, forcelink_token_sets, forcelink_connections, forcelink_api_keys IN EXCLUSIVE MODE",
    )
    .await
    .map_err(fail)?;
    if let Some(id) = stored_key_id_of(tx).await.map_err(fail)?
        && id != old.id_hex()
    {
        return Err(key_mismatch(&redact_url(url), &id, old));
    }
    let unreadable = |e: StoreError| OpenError::Postgres(format!("{e}; nothing was changed"));
    let tokens = tx.query("SELECT connection, sealed FROM forcelink_token_sets", &[]).await.map_err(fail)?;
    for row in &tokens {
        let id = ConnectionId::new(row.get::<_, String>(0));
        let set = codec::open(old, &id, &row.get::<_, Vec<u8>>(1)).map_err(unreadable)?;
        // The version moves too, so a writer still holding the old key loses its compare-and-swap.
        tx.execute(
            "UPDATE forcelink_token_sets SET sealed = $1, version = version + 1 WHERE connection = $2",
            &[&codec::seal(new, &id, &set), &id.as_str()],
        )
        .await
        .map_err(fail)?;
    }
    let specs = tx.query("SELECT name, sealed FROM forcelink_connections", &[]).await.map_err(fail)?;
    for row in &specs {
        let id = ConnectionId::new(row.get::<_, String>(0));
        let spec = codec::open_spec(old, &id, &row.get::<_, Vec<u8>>(1)).map_err(unreadable)?;
        tx.execute(
            "UPDATE forcelink_connections SET sealed = $1 WHERE name = $2",
            &[&codec::seal_spec(new, &id, &spec), &id.as_str()],
        )
        .await
        .map_err(fail)?;
    }
    let (old_mac, new_mac) = (old.api_key_mac_key(), new.api_key_mac_key());
    let mut api_keys = 0;
    for mut row in read_api_key_rows(tx, None).await.map_err(fail)? {
        // A row that does not verify now must not be blessed by the new key: it keeps its bad MAC.
        if !row.mac_is_valid(&old_mac) {
            crate::apikey::warn_forged(&row.id);
            continue;
        }
        row.sign(&new_mac);
        tx.execute("UPDATE forcelink_api_keys SET mac = $1 WHERE id = $2", &[&row.mac, &row.id]).await.map_err(fail)?;
        api_keys += 1;
    }
    tx.execute(
        "INSERT INTO forcelink_meta (key, value) VALUES ('key_id', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&new.id_hex()],
    )
    .await
    .map_err(fail)?;
    before_commit()?;
    Ok((tokens.len(), specs.len(), api_keys))
}

/// Runs the migration that brings the tables from version `to - 1` to `to`. Steps 1 and 2 create
/// tables only when missing (version 1 recorded no version, so it reads as 0).
async fn migrate_step(tx: &tokio_postgres::Transaction<'_>, to: i64, key: &MasterKey) -> Result<(), StoreError> {
    match to {
        1 => tx.batch_execute(SCHEMA_V1).await.map_err(db_err),
        2 => tx.batch_execute(SCHEMA_V2).await.map_err(db_err),
        3 => migrate_to_v3(tx, &key.api_key_mac_key()).await,
        _ => Err(StoreError::Unavailable(format!("no migration to schema version {to}"))),
    }
}

/// Version 3: every API-key row carries a MAC. The rows already there get theirs now, under the
/// store's key (checked against the store before any step runs). A row planted in the table
/// before this upgrade is blessed with the genuine ones: version 2 rows carry no proof of who
/// wrote them, so nothing can tell them apart. That is unavoidable, and acceptable because the
/// protection holds from the upgrade on, and `forcelink apikey list` shows every key to review.
async fn migrate_to_v3(tx: &tokio_postgres::Transaction<'_>, mac_key: &MacKey) -> Result<(), StoreError> {
    tx.batch_execute("ALTER TABLE forcelink_api_keys ADD COLUMN IF NOT EXISTS mac TEXT").await.map_err(db_err)?;
    for mut row in read_api_key_rows(tx, None).await.map_err(db_err)? {
        row.sign(mac_key);
        tx.execute("UPDATE forcelink_api_keys SET mac = $1 WHERE id = $2", &[&row.mac, &row.id])
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`] and checks (or records) the key id, inside `tx`.
async fn migrate(tx: &tokio_postgres::Transaction<'_>, url: &str, key: &MasterKey) -> Result<(), OpenError> {
    let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("creating the tables: {e}"));
    // Held until the transaction ends: processes starting at once migrate one after another.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(fail)?;
    let version: i64 = if table_exists(tx, "forcelink_meta").await.map_err(fail)? {
        tx.query_opt("SELECT value FROM forcelink_meta WHERE key = 'schema_version'", &[])
            .await
            .map_err(fail)?
            .and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(1)
    } else {
        0
    };
    if version > SCHEMA_VERSION {
        return Err(OpenError::Postgres(format!(
            "the database has forcelink schema version {version}, newer than this forcelink ({SCHEMA_VERSION}); \
                 upgrade forcelink"
        )));
    }
    if let Some(stored) = stored_key_id_of(tx).await.map_err(fail)?
        && stored != key.id_hex()
    {
        return Err(key_mismatch(&redact_url(url), &stored, key));
    }
    for to in version + 1..=SCHEMA_VERSION {
        migrate_step(tx, to, key)
            .await
            .map_err(|e| OpenError::Postgres(format!("migrating to schema version {to}: {e}")))?;
    }
    if version < SCHEMA_VERSION {
        tx.execute(
            "INSERT INTO forcelink_meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA_VERSION.to_string()],
        )
        .await
        .map_err(fail)?;
    }
    tx.execute(
        "INSERT INTO forcelink_meta (key, value) VALUES ('key_id', $1) ON CONFLICT (key) DO NOTHING",
        &[&key.id_hex()],
    )
    .await
    .map_err(fail)?;
    Ok(())
}

impl PostgresStore {
    /// Connects (TLS as the URL's `sslmode` says, `prefer` by default) and brings the schema up
    /// to date. Fails with [`OpenError::Key`] when the store was sealed with another master key.
    pub async fn connect(url: &str, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let mut client = connect_client(url).await?;
        let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("creating the tables: {e}"));
        let tx = client.transaction().await.map_err(fail)?;
        match migrate(&tx, url, &key).await {
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
        match row.map(|r| r.get::<_, String>(0)) {
            Some(id) if id != self.inner.key.id_hex() => Err(rotated_away(&id, &self.inner.key)),
            _ => Ok(()),
        }
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
                Ok(CasOutcome::Swapped { version: expected.unwrap_or(0) + 1 })
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

const API_KEY_COLUMNS: &str = "id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac";

fn api_key_row(r: &tokio_postgres::Row) -> ApiKeyRow {
    ApiKeyRow {
        id: r.get(0),
        secret_hash: r.get(1),
        label: r.get(2),
        connections: r.get(3),
        capabilities: r.get(4),
        created_at_ms: r.get(5),
        revoked_at_ms: r.get(6),
        mac: r.get(7),
    }
}

/// The API-key rows, oldest first, or only the one with id `only` (one query each, so the
/// lookup by id on every broker request uses the primary key).
async fn read_api_key_rows(
    client: &impl GenericClient,
    only: Option<&str>,
) -> Result<Vec<ApiKeyRow>, tokio_postgres::Error> {
    let rows = match only {
        Some(id) => {
            client.query(&format!("SELECT {API_KEY_COLUMNS} FROM forcelink_api_keys WHERE id = $1"), &[&id]).await?
        }
        None => {
            client
                .query(&format!("SELECT {API_KEY_COLUMNS} FROM forcelink_api_keys ORDER BY created_at_ms, id"), &[])
                .await?
        }
    };
    Ok(rows.iter().map(api_key_row).collect())
}

impl PostgresStore {
    /// The records among `rows` whose MAC holds (see [`checked_rows`]).
    async fn checked(&self, rows: Vec<ApiKeyRow>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        checked_rows(rows, &self.inner.mac_key, || self.check_same_key()).await
    }
}

impl PostgresStore {
    fn connection_row(&self, r: &tokio_postgres::Row) -> Result<StoredConnection, StoreError> {
        let name = ConnectionId::new(r.get::<_, String>(0));
        Ok(StoredConnection {
            spec: codec::open_spec(&self.inner.key, &name, &r.get::<_, Vec<u8>>(1))?,
            name,
            created_at: from_millis(u64::try_from(r.get::<_, i64>(2)).unwrap_or(0)),
            updated_at: from_millis(u64::try_from(r.get::<_, i64>(3)).unwrap_or(0)),
        })
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
                        &[&name.as_str(), &sealed, &(millis(self.inner.clock.now()) as i64), &key_id],
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
                            &[&sealed, &(millis(self.inner.clock.now()) as i64), &name.as_str(), &key_id],
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
                          a AS (DELETE FROM forcelink_approvals WHERE connection = $1)
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
                        &(millis(entry.at) as i64),
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
            Ok(rows
                .iter()
                .map(|r| AuditEntry {
                    at: from_millis(u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)),
                    connection: ConnectionId::new(r.get::<_, String>(1)),
                    actor: r.get(2),
                    action: crate::scope::AuditAction::parse(r.get(3)),
                    detail: r.get(4),
                })
                .collect())
        })
    }

    fn put_api_key<'a>(&'a self, key: &'a ApiKeyRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let row = ApiKeyRow::new(key, &self.inner.mac_key);
            // Written only while this instance's key is the store's: a process started before a
            // key rotation would sign the row with a key the store no longer uses.
            let changed = self
                .inner
                .client
                .execute(
                    &format!(
                        "INSERT INTO forcelink_api_keys
                         (id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac)
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE {SAME_KEY} $9) ON CONFLICT (id) DO NOTHING"
                    ),
                    &[
                        &row.id,
                        &row.secret_hash,
                        &row.label,
                        &row.connections,
                        &row.capabilities,
                        &row.created_at_ms,
                        &row.revoked_at_ms,
                        &row.mac,
                        &self.inner.key.id_hex(),
                    ],
                )
                .await
                .map_err(db_err)?;
            if changed == 0 {
                self.check_same_key().await?;
                return Err(StoreError::Unavailable(format!("an API key with id {} already exists", key.id)));
            }
            Ok(())
        })
    }

    fn api_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let rows = read_api_key_rows(&self.inner.client, Some(id)).await.map_err(db_err)?;
            Ok(self.checked(rows).await?.into_iter().next())
        })
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let rows = read_api_key_rows(&self.inner.client, None).await.map_err(db_err)?;
            self.checked(rows).await
        })
    }

    fn revoke_api_key<'a>(&'a self, id: &'a str, at: SystemTime) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let client = &self.inner.client;
            // Single statements (the connection is shared by every task): the update applies
            // only to the row as read, by its MAC; a concurrent change sends us round again.
            for _ in 0..3 {
                let Some(mut row) = read_api_key_rows(client, Some(id)).await.map_err(db_err)?.pop() else {
                    return Ok(false);
                };
                if !row.mac_is_valid(&self.inner.mac_key) {
                    self.check_same_key().await?;
                    // Re-signing a planted row would bless it: it stays as it is, and absent.
                    crate::apikey::warn_forged(&row.id);
                    return Ok(false);
                }
                // A second revocation keeps the first time.
                if row.revoked_at_ms.is_some() {
                    return Ok(true);
                }
                let read_mac = row.mac.clone();
                row.revoked_at_ms = Some(millis(at) as i64);
                row.sign(&self.inner.mac_key);
                let changed = client
                    .execute(
                        &format!(
                            "UPDATE forcelink_api_keys SET revoked_at_ms = $1, mac = $2
                             WHERE id = $3 AND mac = $4 AND {SAME_KEY} $5)"
                        ),
                        &[&row.revoked_at_ms, &row.mac, &row.id, &read_mac, &self.inner.key.id_hex()],
                    )
                    .await
                    .map_err(db_err)?;
                if changed == 1 {
                    return Ok(true);
                }
                self.check_same_key().await?;
            }
            Err(StoreError::Unavailable(format!("API key {id} kept changing while being revoked; try again")))
        })
    }
}
