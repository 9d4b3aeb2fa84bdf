//! What both databases do with their rows, whatever their SQL: times kept as milliseconds, a
//! sealed connection row read back as a [`StoredConnection`], audit and approval rows, the
//! lease rule, the version a compare-and-swap writes, the check that this process's key still
//! seals the store, and the counts a re-sealing reports. SQLite and PostgreSQL differ in how
//! they ask; what they decide is here, once.

use std::time::SystemTime;

use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, LeaseHolder};

use crate::codec::{self, from_millis, millis};
use crate::crypto::MasterKey;
use crate::registry::{AuditEntry, StoredConnection};
use crate::scope::AuditAction;

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
