//! The PostgreSQL schema: its versions (the `schema_version` row of `forcelink_meta`), the
//! migration of each step, and the id of the master key a store was sealed with.

use forcelink_auth::error::StoreError;
use tokio_postgres::GenericClient;

use super::apikeys::read_api_key_rows;
use super::checkpoints::SCHEMA_V4;
use super::ops::SCHEMA_V5;
use super::subscriptions::schema_v6;
use super::{connect_client, db_err};
use crate::crypto::{MacKey, MasterKey, sealed_key_id};
use crate::pgconnect::redact_url;
use crate::{OpenError, key_mismatch};

/// Serialises schema creation between processes starting at once.
const MIGRATION_LOCK: i64 = 0x666f_7263_656c_6e6b; // "forcelnk"

/// Schema version this code writes.
const SCHEMA_VERSION: i64 = 6;

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

async fn table_exists(client: &impl GenericClient, table: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?.get(0))
}

/// The id of the key that sealed the store: the `forcelink_meta` row, else (a version 1 store)
/// the header of any sealed token set; `None` when nothing is sealed yet.
pub(super) async fn stored_key_id_of(client: &impl GenericClient) -> Result<Option<String>, tokio_postgres::Error> {
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

/// Runs the migration that brings the tables from version `to - 1` to `to`. Steps 1 and 2 create
/// tables only when missing (version 1 recorded no version, so it reads as 0).
async fn migrate_step(tx: &tokio_postgres::Transaction<'_>, to: i64, key: &MasterKey) -> Result<(), StoreError> {
    match to {
        1 => tx.batch_execute(SCHEMA_V1).await.map_err(db_err),
        2 => tx.batch_execute(SCHEMA_V2).await.map_err(db_err),
        3 => migrate_to_v3(tx, &key.api_key_mac_key()).await,
        4 => tx.batch_execute(SCHEMA_V4).await.map_err(db_err),
        5 => tx.batch_execute(SCHEMA_V5).await.map_err(db_err),
        6 => tx.batch_execute(&schema_v6()).await.map_err(db_err),
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
pub(super) async fn migrate(tx: &tokio_postgres::Transaction<'_>, url: &str, key: &MasterKey) -> Result<(), OpenError> {
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
