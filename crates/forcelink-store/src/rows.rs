//! What both databases do with their rows, whatever their SQL: times kept as milliseconds, a
//! sealed connection row read back as a [`StoredConnection`], audit and approval rows, the
//! lease rule, the version a compare-and-swap writes, the check that this process's key still
//! seals the store, the counts a re-sealing reports, webhook secrets and ephemeral values as
//! sealed bytes (and subscription secrets), and outbox rows and the columns an attempt's outcome writes. SQLite and PostgreSQL differ in how
//! they ask; what they decide is here, once.

use std::time::SystemTime;

use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, LeaseHolder};

use crate::codec::{self, from_millis, millis};
use crate::crypto::{MasterKey, OpenSealedError};
use crate::ephemeral::{self, EphemeralKind};
use crate::health::ConnectionHealth;
use crate::outbox::{Delivery, DeliveryCounts, DeliveryOutcome, DeliveryState, WebhookSecret};
use crate::registry::{AuditEntry, StoredConnection};
use crate::scope::AuditAction;
use crate::subscription::{ORDERED_TARGET_PREFIX, SubscriptionRecord, check_text};

/// The `meta` key naming the master key that sealed the store.
pub(crate) const KEY_ID: &str = "key_id";

/// What a re-sealing changed: token sets, connection specs, API-key rows re-signed.
pub(crate) type ResealCounts = (usize, usize, usize);

/// A time as the databases keep it: milliseconds since the Unix epoch.
pub(crate) fn db_millis(t: SystemTime) -> i64 {
    millis(t) as i64
}

/// A stored time back; a negative one (never written by forcelink) reads as the epoch.
pub(crate) fn from_db_millis(ms: i64) -> SystemTime {
    from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A `connections` row: the spec is opened with `key` (bound to the row by its name).
pub(crate) fn stored_connection(
    key: &MasterKey,
    name: String,
    sealed: &[u8],
    created_ms: i64,
    updated_ms: i64,
) -> Result<StoredConnection, StoreError> {
    let name = ConnectionId::new(name);
    Ok(StoredConnection {
        spec: codec::open_spec(key, &name, sealed)?,
        name,
        created_at: from_db_millis(created_ms),
        updated_at: from_db_millis(updated_ms),
    })
}

/// An `audit_log` row.
pub(crate) fn audit_entry(
    at_ms: i64,
    connection: String,
    actor: String,
    action: &str,
    detail: Option<String>,
) -> AuditEntry {
    AuditEntry {
        at: from_db_millis(at_ms),
        connection: ConnectionId::new(connection),
        actor,
        action: AuditAction::parse(action),
        detail,
    }
}

/// An `approvals` row of (`user`, `client_id`).
pub(crate) fn approval(user: &str, client_id: &str, connection: String, at_ms: i64) -> Approval {
    Approval {
        user: user.to_owned(),
        client_id: client_id.to_owned(),
        connection: ConnectionId::new(connection),
        approved_at: from_db_millis(at_ms),
    }
}

/// The lease rule: a lease row held by another holder until after `now` keeps `me` out; an
/// expired one, or my own, may be taken (again). PostgreSQL says the same in its `WHERE`.
pub(crate) fn lease_held_by_other(holder: &str, expires_ms: i64, me: &LeaseHolder, now: SystemTime) -> bool {
    holder != me.0 && u64::try_from(expires_ms).unwrap_or(0) > millis(now)
}

/// The outcome of a compare-and-swap that wrote: the version after `expected` (1 for a first
/// write).
pub(crate) fn swapped(expected: Option<u64>) -> CasOutcome {
    CasOutcome::Swapped { version: expected.unwrap_or(0) + 1 }
}

/// Fails when the store's recorded key id (`stored`) is not `key`'s: the store was re-sealed
/// with a new key after this instance opened it.
pub(crate) fn check_key_id(stored: Option<String>, key: &MasterKey) -> Result<(), StoreError> {
    match stored {
        Some(id) if id != key.id_hex() => Err(crate::rotated_away(&id, key)),
        _ => Ok(()),
    }
}

/// An API key with this id exists already (ids are random: a second key with one is a bug or
/// a replay, never overwritten).
pub(crate) fn api_key_exists(id: &str) -> StoreError {
    StoreError::Unavailable(format!("an API key with id {id} already exists"))
}

/// The associated data of a webhook's sealed secret: bound to the webhook's id.
pub(crate) fn webhook_aad(id: &str) -> Vec<u8> {
    [b"webhook:".as_slice(), id.as_bytes()].concat()
}

/// A webhook's secret as the databases keep it: sealed, bound to the webhook's id.
pub(crate) fn seal_webhook_secret(key: &MasterKey, id: &str, secret: &WebhookSecret) -> Vec<u8> {
    key.seal(secret.secret().as_bytes(), &webhook_aad(id))
}

/// Opens a secret sealed by [`seal_webhook_secret`] for the webhook `id`.
pub(crate) fn open_webhook_secret(key: &MasterKey, id: &str, sealed: &[u8]) -> Result<WebhookSecret, StoreError> {
    let plain = key.open(sealed, &webhook_aad(id)).map_err(|e| opened_error(&format!("webhook {id}"), e))?;
    String::from_utf8(plain)
        .map(WebhookSecret::new)
        .map_err(|_| StoreError::Corrupt(format!("webhook {id}: its secret is unreadable after decryption")))
}

/// A webhook secret sealed with `old`, sealed again with `new`.
pub(crate) fn reseal_webhook_secret(
    old: &MasterKey,
    new: &MasterKey,
    id: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    Ok(seal_webhook_secret(new, id, &open_webhook_secret(old, id, sealed)?))
}

/// The associated data of a subscription's sealed secret: bound to the subscription's id.
pub(crate) fn subscription_aad(id: &str) -> Vec<u8> {
    [b"subscription:".as_slice(), id.as_bytes()].concat()
}

/// A subscription's secret as the databases keep it: sealed, bound to the subscription's id.
pub(crate) fn seal_subscription_secret(key: &MasterKey, id: &str, secret: &WebhookSecret) -> Vec<u8> {
    key.seal(secret.secret().as_bytes(), &subscription_aad(id))
}

/// Opens a secret sealed by [`seal_subscription_secret`] for the subscription `id`.
pub(crate) fn open_subscription_secret(key: &MasterKey, id: &str, sealed: &[u8]) -> Result<WebhookSecret, StoreError> {
    let plain = key.open(sealed, &subscription_aad(id)).map_err(|e| opened_error(&format!("subscription {id}"), e))?;
    String::from_utf8(plain)
        .map(WebhookSecret::new)
        .map_err(|_| StoreError::Corrupt(format!("subscription {id}: its secret is unreadable after decryption")))
}

/// A subscription secret sealed with `old`, sealed again with `new`.
pub(crate) fn reseal_subscription_secret(
    old: &MasterKey,
    new: &MasterKey,
    id: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    Ok(seal_subscription_secret(new, id, &open_subscription_secret(old, id, sealed)?))
}

/// A subscription with this id exists already.
pub(crate) fn subscription_exists(id: &str) -> StoreError {
    StoreError::Unavailable(format!("a subscription with id {id} exists"))
}

/// Checks the texts of a subscription before it is written.
pub(crate) fn check_subscription(sub: &SubscriptionRecord) -> Result<(), StoreError> {
    check_text("spec", &sub.spec)?;
    if let Some(status) = &sub.status {
        check_text("status", status)?;
    }
    Ok(())
}

/// The `WHERE` term that leaves ordered (subscription) targets out of the webhook sender's
/// claims. Written with the prefix as a literal so a partial index with the same term serves it.
pub(crate) fn unordered_target_term() -> String {
    format!("substr(target, 1, {}) <> '{ORDERED_TARGET_PREFIX}'", ORDERED_TARGET_PREFIX.len())
}

/// The kind named by an `ephemeral` row's `kind` column.
pub(crate) fn ephemeral_kind(text: &str) -> Result<EphemeralKind, StoreError> {
    [EphemeralKind::WebSession, EphemeralKind::OAuthState, EphemeralKind::ConnectSession]
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt(format!("an ephemeral row has the unknown kind {text:?}")))
}

/// An ephemeral value as the databases keep it: sealed, bound to its kind and key hash.
pub(crate) fn seal_ephemeral(key: &MasterKey, kind: EphemeralKind, hash: &str, value: &[u8]) -> Vec<u8> {
    key.seal(value, &ephemeral::aad(kind, hash))
}

/// Opens a value sealed by [`seal_ephemeral`].
pub(crate) fn open_ephemeral(
    key: &MasterKey,
    kind: EphemeralKind,
    hash: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    key.open(sealed, &ephemeral::aad(kind, hash)).map_err(|e| opened_error(&format!("an ephemeral {kind} record"), e))
}

/// An ephemeral value (of the kind named `kind`) sealed with `old`, sealed again with `new`.
pub(crate) fn reseal_ephemeral(
    old: &MasterKey,
    new: &MasterKey,
    kind: &str,
    hash: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let kind = ephemeral_kind(kind)?;
    Ok(seal_ephemeral(new, kind, hash, &open_ephemeral(old, kind, hash, sealed)?))
}

fn opened_error(what: &str, e: OpenSealedError) -> StoreError {
    match e {
        OpenSealedError::WrongKey(_) => StoreError::Unavailable(format!("{what}: {e}")),
        OpenSealedError::Damaged => StoreError::Corrupt(format!("{what}: {e}")),
    }
}

/// A JSON array of strings (the `events` and `connections` columns of a webhook).
pub(crate) fn string_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// A column written by [`string_list`], read back.
pub(crate) fn parse_string_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(format!("{what}: not a JSON list of strings")))
}

/// A health row: the JSON body with the version of its column.
pub(crate) fn health_row(body: &str, version: i64) -> Result<ConnectionHealth, StoreError> {
    let mut health = ConnectionHealth::from_json(body)?;
    health.version = u64::try_from(version).unwrap_or(0);
    Ok(health)
}

/// The `state` column of an outbox row.
pub(crate) fn delivery_state(text: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("an outbox row has the unknown state {text:?}")))
}

/// The columns an attempt's outcome writes on its outbox row (`next_attempt_ms` and
/// `delivered_at_ms` are left as they are when `None`).
pub(crate) struct OutcomeColumns {
    /// The new state.
    pub state: &'static str,
    /// When the attempt was made.
    pub last_attempt_ms: i64,
    /// The status, when the receiver answered.
    pub last_status: Option<i32>,
    /// What went wrong.
    pub last_error: Option<String>,
    /// When to try again (a retry).
    pub next_attempt_ms: Option<i64>,
    /// When it was accepted (delivered).
    pub delivered_at_ms: Option<i64>,
}

impl OutcomeColumns {
    /// What `outcome` writes.
    pub fn of(outcome: &DeliveryOutcome) -> Self {
        match outcome {
            DeliveryOutcome::Delivered { at, status } => Self {
                state: DeliveryState::Delivered.as_str(),
                last_attempt_ms: db_millis(*at),
                last_status: Some(i32::from(*status)),
                last_error: None,
                next_attempt_ms: None,
                delivered_at_ms: Some(db_millis(*at)),
            },
            DeliveryOutcome::Retry { at, status, error, next_attempt_at } => Self {
                state: DeliveryState::Pending.as_str(),
                last_attempt_ms: db_millis(*at),
                last_status: status.map(i32::from),
                last_error: Some(error.clone()),
                next_attempt_ms: Some(db_millis(*next_attempt_at)),
                delivered_at_ms: None,
            },
            DeliveryOutcome::Failed { at, status, error } => Self {
                state: DeliveryState::Failed.as_str(),
                last_attempt_ms: db_millis(*at),
                last_status: status.map(i32::from),
                last_error: Some(error.clone()),
                next_attempt_ms: None,
                delivered_at_ms: None,
            },
        }
    }
}

/// The raw columns of an outbox row, in [`DELIVERY_COLUMNS`] order, made a [`Delivery`].
pub(crate) struct DeliveryRow {
    /// `seq`.
    pub seq: i64,
    /// `id`.
    pub id: String,
    /// `target`.
    pub target: String,
    /// `event_type`.
    pub event_type: String,
    /// `connection`.
    pub connection: String,
    /// `body`.
    pub body: String,
    /// `created_at_ms`.
    pub created_at_ms: i64,
    /// `state`.
    pub state: String,
    /// `attempts`.
    pub attempts: i64,
    /// `next_attempt_ms`.
    pub next_attempt_ms: i64,
    /// `last_attempt_ms`.
    pub last_attempt_ms: Option<i64>,
    /// `last_status`.
    pub last_status: Option<i64>,
    /// `last_error`.
    pub last_error: Option<String>,
    /// `delivered_at_ms`.
    pub delivered_at_ms: Option<i64>,
}

/// The outbox columns every read selects, in [`DeliveryRow`]'s order.
pub(crate) const DELIVERY_COLUMNS: &str = "seq, id, target, event_type, connection, body, created_at_ms, state, \
     attempts, next_attempt_ms, last_attempt_ms, last_status, last_error, delivered_at_ms";

impl DeliveryRow {
    /// The delivery; a row with an unknown state is corrupt.
    pub fn into_delivery(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            seq: self.seq,
            id: self.id,
            target: self.target,
            event_type: self.event_type,
            connection: self.connection,
            body: self.body,
            created_at: from_db_millis(self.created_at_ms),
            state: delivery_state(&self.state)?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: from_db_millis(self.next_attempt_ms),
            last_attempt_at: self.last_attempt_ms.map(from_db_millis),
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            delivered_at: self.delivered_at_ms.map(from_db_millis),
        })
    }
}

/// A webhook with this id exists already.
pub(crate) fn webhook_exists(id: &str) -> StoreError {
    StoreError::Unavailable(format!("a webhook with id {id} exists"))
}

/// Counts by state from `(state, count)` rows.
pub(crate) fn counts_of(rows: Vec<(String, i64)>) -> Result<DeliveryCounts, StoreError> {
    let mut counts = DeliveryCounts::default();
    for (state, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match delivery_state(&state)? {
            DeliveryState::Pending => counts.pending += n,
            DeliveryState::Delivered => counts.delivered += n,
            DeliveryState::Failed => counts.failed += n,
        }
    }
    Ok(counts)
}
