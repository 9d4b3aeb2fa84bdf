//! The [`ConnectionStore`] port: connections, the audit log and the broker's API keys, next to
//! the token sets of forcelink-auth's [`TokenStore`]. Every adapter (memory, SQLite,
//! PostgreSQL) implements both.

use std::fmt;
use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::{ConnectionId, TokenStore};
use futures_util::future::BoxFuture;

use crate::checkpoint::{CheckpointKey, StoredCheckpoint};
use crate::connection::ConnectionSpec;
use crate::ephemeral::EphemeralKind;
use crate::health::{ConnectionHealth, HealthWrite};
use crate::outbox::{Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, NewDelivery, WebhookRecord};
use crate::scope::{ANY, AuditAction, Scope, Scopes};
use crate::subscription::SubscriptionRecord;

/// A connection as the store keeps it (the whole spec is sealed at rest: it may hold secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConnection {
    /// Its name.
    pub name: ConnectionId,
    /// Its settings, secrets included.
    pub spec: ConnectionSpec,
    /// When it was first saved.
    pub created_at: SystemTime,
    /// When it was last saved.
    pub updated_at: SystemTime,
}

/// What `put_connection` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Fails with [`PutOutcome::AlreadyExists`] when the name is taken.
    Create,
    /// Creates or replaces.
    Upsert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What `put_connection` did.
pub enum PutOutcome {
    /// The name was free: saved.
    Created,
    /// The name was taken: replaced (upsert).
    Replaced,
    /// The name was taken and the mode was [`PutMode::Create`]: nothing changed.
    AlreadyExists,
}

/// One line of the audit log: who received which connection's token (or changed it), when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When it happened.
    pub at: SystemTime,
    /// The connection it concerns.
    pub connection: ConnectionId,
    /// Who acted: `cli:<user>@<host>`, `api-key:<id>`, `web:<session>`…
    pub actor: String,
    /// What happened.
    pub action: AuditAction,
    /// Non-secret detail (never a token; a token fingerprint at most).
    pub detail: Option<String>,
}

/// A broker API key as stored: only a SHA-256 hash of its secret part.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public part (`flk_<id>_…`), unique.
    pub id: String,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// What the key is for, as its creator put it.
    pub label: String,
    /// Connection names it may use; `*` means all.
    pub connections: Vec<String>,
    /// What it may do on those connections.
    pub capabilities: Scopes,
    /// Reads only: no MCP tool that changes data, no action, no proxied request but `GET` and
    /// `HEAD`, whatever its scopes. False for keys made before the setting existed.
    pub read_only: bool,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("connections", &self.connections)
            .field("capabilities", &self.capabilities)
            .field("read_only", &self.read_only)
            .field("revoked", &self.revoked_at.is_some())
            .finish()
    }
}

impl ApiKeyRecord {
    /// Whether the key may use `scope` on `connection` (`*` allows every connection).
    /// Revocation is [`crate::apikey::verify`]'s job.
    pub fn allows(&self, connection: &str, scope: Scope) -> bool {
        self.allows_connection(connection) && self.capabilities.contains(scope)
    }

    /// Whether the key names `connection` (or every connection).
    pub fn allows_connection(&self, connection: &str) -> bool {
        self.connections.iter().any(|x| x == ANY || x == connection)
    }

    /// Whether the key is for every connection (`*`): only such keys manage keys and see metrics.
    pub fn all_connections(&self) -> bool {
        self.connections.iter().any(|x| x == ANY)
    }
}

/// Where connections, the audit log and the broker's API keys live, next to the token sets of
/// forcelink-auth's [`TokenStore`]; every adapter (memory, SQLite, PostgreSQL) implements both.
pub trait ConnectionStore: TokenStore {
    /// Saves `spec` as the connection `name` (sealed in the databases); `mode` says whether an
    /// existing one may be replaced.
    fn put_connection<'a>(
        &'a self,
        name: &'a ConnectionId,
        spec: &'a ConnectionSpec,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<PutOutcome, StoreError>>;

    /// The connection `name`, if saved.
    fn connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredConnection>, StoreError>>;

    /// Every connection, by name.
    fn connections(&self) -> BoxFuture<'_, Result<Vec<StoredConnection>, StoreError>>;

    /// Removes the connection with its token set, lease, approvals and checkpoints; false when
    /// unknown.
    fn remove_connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Appends an entry to the audit log.
    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Newest first, at most `limit`, only `connection`'s when given.
    fn audit<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditEntry>, StoreError>>;

    /// Fails with `StoreError::Unavailable` when the id exists. The databases sign the row with a
    /// MAC under a key derived from the master key (see [`crate::apikey`]).
    fn put_api_key<'a>(&'a self, key: &'a ApiKeyRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// `None` also for a row whose MAC is missing or wrong (written without the master key); the
    /// databases log a warning naming its id.
    fn api_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>>;

    /// Oldest first; rows whose MAC does not hold are left out, as in [`ConnectionStore::api_key`].
    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>>;

    /// Marks the key revoked (and re-signs its row); false when unknown or its row does not
    /// verify (such a row is left as it is, never signed).
    fn revoke_api_key<'a>(&'a self, id: &'a str, at: SystemTime) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Saves `replay_id` (1 to [`MAX_REPLAY_ID_LEN`](crate::checkpoint::MAX_REPLAY_ID_LEN)
    /// bytes) as the checkpoint `key`, replacing what was there, stamped with the store's clock.
    fn save_checkpoint<'a>(
        &'a self,
        key: &'a CheckpointKey,
        replay_id: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The checkpoint `key`, if saved.
    fn checkpoint<'a>(&'a self, key: &'a CheckpointKey) -> BoxFuture<'a, Result<Option<StoredCheckpoint>, StoreError>>;

    /// Every checkpoint, or only `connection`'s, ordered by connection, name and topic.
    fn checkpoints<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
    ) -> BoxFuture<'a, Result<Vec<StoredCheckpoint>, StoreError>>;

    /// Deletes the checkpoint `key`; false when there was none. Removing a connection deletes
    /// its checkpoints too.
    fn delete_checkpoint<'a>(&'a self, key: &'a CheckpointKey) -> BoxFuture<'a, Result<bool, StoreError>>;

    // --- Connection health (see [`crate::health`]) ---

    /// Writes `health` if the stored record's version is still `expected` (`None`: there is no
    /// record), with version `expected + 1` (1 for a new record), and enqueues `deliveries` in
    /// the same transaction (so a change of state and its webhooks are saved together or not at
    /// all). A conflict returns the record as it is now. Removing a connection removes its record.
    fn write_health<'a>(
        &'a self,
        health: &'a ConnectionHealth,
        expected: Option<u64>,
        deliveries: &'a [NewDelivery],
    ) -> BoxFuture<'a, Result<HealthWrite, StoreError>>;

    /// The health record of `name`, if one was written.
    fn health<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<ConnectionHealth>, StoreError>>;

    /// Every health record, by connection name.
    fn healths(&self) -> BoxFuture<'_, Result<Vec<ConnectionHealth>, StoreError>>;

    // --- Work leases: one replica does a piece of background work ---

    /// Takes (or, for the same `holder`, extends) the lease named `name` until now + `ttl`.
    /// False when another holder's lease has not ended.
    fn try_work_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Ends `holder`'s lease `name` (nothing when another holds it).
    fn release_work_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    // --- Webhooks and the outbox (see [`crate::outbox`]) ---

    /// Saves a new webhook (its secret sealed); fails when the id exists.
    fn put_webhook<'a>(&'a self, hook: &'a WebhookRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The webhook `id`.
    fn webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<WebhookRecord>, StoreError>>;

    /// Every webhook, oldest first.
    fn webhooks(&self) -> BoxFuture<'_, Result<Vec<WebhookRecord>, StoreError>>;

    /// Deletes the webhook `id` and its pending deliveries (delivered and failed rows stay until
    /// purged); false when unknown.
    fn delete_webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Adds deliveries to the outbox, pending, due at their `created_at`; a row whose
    /// (`target`, `id`) exists is left as it is. Returns how many were added.
    fn enqueue_deliveries<'a>(&'a self, deliveries: &'a [NewDelivery]) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// Claims up to `limit` pending deliveries due at `now` whose claim is free (never claimed,
    /// or its claim ended), oldest first (by `seq`), leaving out ordered targets (see
    /// [`crate::subscription::ORDERED_TARGET_PREFIX`]), for `holder` until now + `lease`; a row is
    /// claimed by one holder at a time. `attempts` is not changed by a claim.
    fn claim_deliveries<'a>(
        &'a self,
        holder: &'a str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>>;

    /// Records an attempt on the delivery `seq` claimed by `holder`: adds one to `attempts`, sets
    /// the state, times, status and error, and frees the claim. False (nothing written) when the
    /// row is gone or no longer claimed by `holder`.
    fn finish_delivery<'a>(
        &'a self,
        seq: i64,
        holder: &'a str,
        outcome: &'a DeliveryOutcome,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deliveries, newest first (by `seq`).
    fn deliveries<'a>(&'a self, filter: &'a DeliveryFilter) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>>;

    /// Counts of `target`'s deliveries by state.
    fn delivery_counts<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<DeliveryCounts, StoreError>>;

    /// Sets a failed delivery pending again, due now, with its attempts kept; false when it is
    /// not failed.
    fn retry_delivery<'a>(&'a self, seq: i64) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes delivered and failed rows enqueued before `before`; returns how many.
    fn purge_deliveries(&self, before: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Claims up to `limit` pending deliveries of exactly `target` (an ordered target, see
    /// [`crate::subscription`]) whose claim is free or already `holder`'s, oldest first (by
    /// `seq`), due or not (the caller sends them in order and waits for the first one's
    /// `next_attempt_at`), for `holder` until now + `lease`.
    fn claim_target_deliveries<'a>(
        &'a self,
        target: &'a str,
        holder: &'a str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>>;

    // --- Event subscriptions (see [`crate::subscription`]) ---

    /// Saves a new subscription (its secret sealed); fails when the id exists.
    fn put_subscription<'a>(&'a self, sub: &'a SubscriptionRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The subscription `id`.
    fn subscription<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SubscriptionRecord>, StoreError>>;

    /// Every subscription, oldest first.
    fn subscriptions(&self) -> BoxFuture<'_, Result<Vec<SubscriptionRecord>, StoreError>>;

    /// Pauses or resumes the subscription `id`; false when unknown.
    fn set_subscription_paused<'a>(&'a self, id: &'a str, paused: bool) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Replaces the subscription's `spec` (the broker's description); false when unknown.
    fn set_subscription_spec<'a>(&'a self, id: &'a str, spec: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Writes the consumer's report `status` at `at`; false when the subscription is unknown.
    fn set_subscription_status<'a>(
        &'a self,
        id: &'a str,
        status: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes the subscription `id` and the pending deliveries of its targets (`id` and every
    /// target starting with `id.`); false when unknown.
    fn delete_subscription<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    // --- Ephemeral records (see [`crate::ephemeral`]) ---

    /// Saves `value` under (`kind`, `key`) until `expires_at`, replacing what was there; purges
    /// expired records. The key is kept as a hash, the value sealed.
    fn put_ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
        value: &'a [u8],
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The value under (`kind`, `key`) when it has not expired.
    fn ephemeral<'a>(&'a self, kind: EphemeralKind, key: &'a str)
    -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Removes and returns the value under (`kind`, `key`) when it has not expired: of several
    /// concurrent takers (on any replica), exactly one gets it.
    fn take_ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Removes (`kind`, `key`); false when there was nothing (or only an expired record).
    fn delete_ephemeral<'a>(&'a self, kind: EphemeralKind, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
}
