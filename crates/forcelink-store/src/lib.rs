//! forcelink-store: where forcelink keeps connections, token sets, the audit log and the
//! broker's API keys — in memory, in a SQLite file (the default) or in PostgreSQL — with every
//! secret encrypted at rest.
//!
//! ```
//! use std::sync::Arc;
//!
//! use forcelink_auth::{ConnectionId, SystemClock};
//! use forcelink_store::{ConnectionSpec, ConnectionStore, MasterKey, Method, PutMode, PutOutcome, SqliteStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! // The master key seals every secret; keep it (a key file, or FORCELINK_MASTER_KEY).
//! let key = MasterKey::generate();
//! let store = SqliteStore::open(&dir.path().join("forcelink.db"), key, Arc::new(SystemClock))?;
//!
//! let mut spec = ConnectionSpec { method: Some(Method::ClientCredentials), ..ConnectionSpec::default() };
//! spec.set_field("login_url", "https://acme.my.salesforce.com")?;
//! spec.set_field("client_id", "3MVG9-consumer-key")?;
//! spec.set_field("client_secret", "env:ACME_CLIENT_SECRET")?;
//! let name = ConnectionId::new("acme");
//! assert_eq!(store.put_connection(&name, &spec, PutMode::Create).await?, PutOutcome::Created);
//!
//! let saved = store.connection(&name).await?.expect("just saved");
//! assert_eq!(saved.spec, spec);
//! let connection = saved.spec.resolve(name.as_str())?;
//! assert_eq!(connection.method(), Method::ClientCredentials);
//! # Ok(())
//! # }
//! ```
//!
//! - [`open`]: [`open_store`], the one way in for the CLI and the broker: a [`StoreLocation`]
//!   (`sqlite:PATH`, a path, or `postgres://…`) and a [`KeySource`] (`FORCELINK_MASTER_KEY`'s
//!   base64, or a key file) give an `Arc<dyn ConnectionStore>`; a key other than the one that
//!   sealed the store is refused on open, naming both key ids.
//! - [`registry`]: the [`ConnectionStore`] port (connections, audit log, API keys) on top of
//!   forcelink-auth's [`TokenStore`] port (token sets, renewal leases, approvals), and the
//!   records it keeps ([`StoredConnection`], [`AuditEntry`], [`ApiKeyRecord`], checkpoints).
//! - [`memory`]: [`MemoryConnectionStore`], for tests and in-process use.
//! - [`sqlite`]: [`SqliteStore`], the embedded default (WAL; several processes on one file).
//! - [`postgres`]: [`PostgresStore`], for several broker replicas (`forcelink_` tables).
//!   Both databases are split the same way: `schema` (versions, migrations), `tokens` (token
//!   sets, leases, approvals), `records` (connections, audit log), `apikeys`, `checkpoints`,
//!   `ops` (health, work leases, webhooks, the outbox, ephemeral records), `rekey`.
//! - `rows`: what both databases decide about a row whatever their SQL (times, connection,
//!   audit and approval rows, the lease rule, the compare-and-swap version, the key-id check,
//!   sealed webhook secrets and ephemeral values, outbox rows).
//! - [`pgconnect`]: how PostgreSQL is reached: `sslmode` (`disable`, `prefer` (default),
//!   `require`, `verify-ca`, `verify-full`) and `sslrootcert` over rustls, and the URL shown
//!   without its password.
//! - [`crypto`]: the [`MasterKey`] (AES-256-GCM), the MAC key derived from it for API-key rows,
//!   the key file created with mode 0600 and directories created with mode 0700.
//! - [`codec`]: token sets and connection specs as the sealed bytes the databases keep, each
//!   bound to its row by associated data.
//! - [`rotation`]: [`rotate_key`], a new master key for a store, safe against a crash at any
//!   point.
//! - [`apikey`]: broker API keys (`flk_<id>_<secret>`): generated, stored as a hash in a row
//!   signed with a MAC (a row planted or altered without the master key is ignored), verified.
//! - [`scope`]: [`Scope`] and [`Scopes`] (what a key may do) and [`AuditAction`] (what the
//!   audit log records), shared by the CLI and the broker; the bottom of the crate's modules.
//! - [`checkpoint`]: Pub/Sub subscription checkpoints ([`CheckpointKey`], [`StoredCheckpoint`]):
//!   the last replay id a named subscriber handled, per connection and topic.
//! - [`health`]: [`ConnectionHealth`], a connection's state (`healthy`, `unhealthy`,
//!   `reauthorization_required`, `unknown`) with its reason, fix and what background checks read,
//!   written by compare-and-swap together with the webhook deliveries it causes.
//! - [`outbox`]: webhooks ([`WebhookRecord`], secret sealed) and the durable outbox of deliveries
//!   (enqueue, claim under a lease, finish; at least once).
//! - [`ephemeral`]: web sessions, OAuth states and connect sessions shared by replicas (keys
//!   hashed, values sealed, expiring); work leases name the one replica that does a piece of
//!   background work.
//! - [`connection`]: the connection model ([`ConnectionSpec`] from every source, validated into
//!   a [`Connection`] that builds its token source); secrets as values or `env:`/`file:` refs.
//!
//! Both databases give cross-process single flight through a lease row: a renewal takes the
//! lease, re-reads the token set, and writes the new one by compare-and-swap on its version.
//! Each records its schema version and migrates on open, refusing a newer one.
//!
//! [`TokenStore`]: forcelink_auth::TokenStore

#![warn(missing_docs)]

pub mod apikey;
pub mod checkpoint;
pub mod codec;
pub mod connection;
pub mod crypto;
pub mod ephemeral;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod memory;
pub mod open;
pub mod outbox;
pub mod pgconnect;
pub mod postgres;
pub mod registry;
pub mod rotation;
mod rows;
pub mod scope;
pub mod sqlite;
pub mod subscription;

pub use connection::{
    AuthConfig, ConfigError, Connection, ConnectionSpec, Environment, Method, SecretRef, SecretResolver,
};
pub use registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};
pub use rotation::{NewKeyText, RotateReport, rotate_key};
pub use scope::{AuditAction, Scope, Scopes};

pub use apikey::ApiKeySecret;
pub use checkpoint::{CheckpointKey, StoredCheckpoint};
pub use crypto::MasterKey;
pub use ephemeral::EphemeralKind;
pub use health::{ConnectionHealth, ConnectionState, HealthNote, HealthWrite, LimitUsage};
pub use memory::MemoryConnectionStore;
pub use open::{KeySource, StoreLocation, open_store};
pub use outbox::{
    Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, DeliveryState, NewDelivery, WebhookRecord, WebhookSecret,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use subscription::SubscriptionRecord;

/// Errors opening a store or its key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("master key: {0}")]
    /// The master key is missing, malformed, not private, or not the store's.
    Key(String),
    #[error("opening the SQLite store {path}: {message}")]
    /// The SQLite store at `path` could not be opened or migrated.
    Sqlite {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    #[error("connecting to PostgreSQL: {0}")]
    /// The PostgreSQL store could not be reached, or its tables not created or migrated.
    Postgres(String),
}

/// The store was sealed with another master key than the one given.
pub(crate) fn key_mismatch(store: &str, stored_id: &str, given: &MasterKey) -> OpenError {
    OpenError::Key(format!(
        "the store {store} is sealed with master key {stored_id}, but the key given has id {}; \
         use the store's key: set FORCELINK_MASTER_KEY to it, or point to the key file that created \
         the store (after a key rotation, the rotated key file)",
        given.id_hex()
    ))
}

/// The store was re-sealed with a new key after this instance opened it.
pub(crate) fn rotated_away(stored_id: &str, held: &MasterKey) -> forcelink_auth::error::StoreError {
    forcelink_auth::error::StoreError::Unavailable(format!(
        "the store's master key was rotated (now {stored_id}; this process holds {}); restart with the new key",
        held.id_hex()
    ))
}

/// How long a waiting process sleeps between lease attempts at most (another process holds it;
/// it will usually finish within one token request).
pub const LEASE_POLL_MAX: std::time::Duration = std::time::Duration::from_millis(100);

/// The first pause between two lease attempts; pauses double up to [`LEASE_POLL_MAX`]. 5 ms.
pub const LEASE_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(5);

/// Tries `attempt` until it yields a lease or `wait` has passed, backing off from
/// [`LEASE_POLL_FIRST`] to [`LEASE_POLL_MAX`]: databases offer no wake-up across processes, so
/// waiters poll.
///
/// The pauses run on the real clock, not the store's: the lease is held by another task or
/// process whose work takes real time, and a test's manual clock (which jumps on every sleep)
/// would spend the whole wait at once and move every token's expiry with it.
pub(crate) async fn poll_lease<F, Fut>(
    wait: std::time::Duration,
    mut attempt: F,
) -> Result<Option<forcelink_auth::store::Lease>, forcelink_auth::error::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<forcelink_auth::store::Lease>, forcelink_auth::error::StoreError>>,
{
    use forcelink_auth::backoff::{Backoff, Jitter};
    let schedule = Backoff {
        jitter: Jitter::None,
        max_retries: None,
        budget: Some(wait),
        ..Backoff::exponential(LEASE_POLL_FIRST, LEASE_POLL_MAX)
    };
    let mut retries = schedule.start(std::sync::Arc::new(forcelink_auth::SystemClock));
    loop {
        let got = attempt().await?;
        if got.is_some() || retries.wait(None).await.is_err() {
            return Ok(got);
        }
    }
}
