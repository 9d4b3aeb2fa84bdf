//! A connection's state as the broker last saw it ([`ConnectionHealth`]): `healthy`,
//! `unhealthy`, `reauthorization_required` or `unknown`, why, what fixes it and since when, with
//! what the background checks read (API usage, approvals, the last renewals). Kept in the store,
//! so every replica and the CLI show the same state, and written by compare-and-swap on its
//! version, so a change of state is noticed (and announced) by exactly one writer.

use std::fmt;
use std::time::SystemTime;

use forcelink_auth::store::ConnectionId;
use serde::{Deserialize, Serialize};

/// How many renewal or check notes a health record keeps (newest first). 10.
pub const MAX_NOTES: usize = 10;

/// A connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// The last check or token hand-out worked.
    Healthy,
    /// The last check failed in a way that may pass by itself (network, Salesforce down, a
    /// limit spent) or that a setting fixes.
    Unhealthy,
    /// The grant is gone (refresh token revoked or expired, approval evicted, user frozen): only
    /// a person signing in again fixes it.
    ReauthorizationRequired,
    /// Never checked nor used.
    #[default]
    Unknown,
}

impl ConnectionState {
    /// Every state.
    pub const ALL: [ConnectionState; 4] = [
        ConnectionState::Healthy,
        ConnectionState::Unhealthy,
        ConnectionState::ReauthorizationRequired,
        ConnectionState::Unknown,
    ];

    /// The name used in the API, the CLI and webhooks: `healthy`, `unhealthy`,
    /// `reauthorization_required`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Healthy => "healthy",
            ConnectionState::Unhealthy => "unhealthy",
            ConnectionState::ReauthorizationRequired => "reauthorization_required",
            ConnectionState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One limit of the org as `/limits` reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitUsage {
    /// The limit's name, e.g. `DailyApiRequests`.
    pub name: String,
    /// Its maximum.
    pub max: i64,
    /// What is left.
    pub remaining: i64,
}

impl LimitUsage {
    /// Used share of the maximum, 0.0 to 1.0 (0 when the maximum is 0).
    pub fn used_fraction(&self) -> f64 {
        if self.max <= 0 { 0.0 } else { ((self.max - self.remaining) as f64 / self.max as f64).clamp(0.0, 1.0) }
    }
}

/// A renewal or check and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthNote {
    /// When.
    #[serde(with = "crate::health::epoch_ms")]
    pub at: SystemTime,
    /// `renewal` or `check`.
    pub kind: String,
    /// Whether it worked.
    pub ok: bool,
    /// What happened (never a token or secret).
    pub detail: String,
}

/// What the broker knows of a connection's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionHealth {
    /// The connection.
    #[serde(with = "crate::health::connection_id")]
    pub connection: ConnectionId,
    /// Its state.
    pub state: ConnectionState,
    /// Why it is in that state (for `healthy`: what last worked).
    pub reason: Option<String>,
    /// What a person should do (from the error catalogue), when something is wrong.
    pub fix: Option<String>,
    /// When the state began.
    #[serde(with = "crate::health::epoch_ms")]
    pub since: SystemTime,
    /// When the background check last ran (on any replica).
    #[serde(default, with = "crate::health::opt_epoch_ms")]
    pub checked_at: Option<SystemTime>,
    /// When a token was last handed out or used through the broker (to the nearest few minutes).
    #[serde(default, with = "crate::health::opt_epoch_ms")]
    pub last_used: Option<SystemTime>,
    /// When the stored token expires, when known.
    #[serde(default, with = "crate::health::opt_epoch_ms")]
    pub token_expires_at: Option<SystemTime>,
    /// Approvals (refresh tokens) of this connection's user and app, of Salesforce's five.
    #[serde(default)]
    pub approvals_used: Option<u32>,
    /// The org's limits at the last check (every limit `/limits` reported).
    #[serde(default)]
    pub limits: Vec<LimitUsage>,
    /// The latest renewals and checks, newest first, at most [`MAX_NOTES`].
    #[serde(default)]
    pub notes: Vec<HealthNote>,
    /// Limit names a `limits.near` event was sent for (cleared when the usage falls again).
    #[serde(default)]
    pub limits_warned: Vec<String>,
    /// Whether an `approvals.near_limit` event was sent for the current count.
    #[serde(default)]
    pub approvals_warned: bool,
    /// Increases with every write; the store's compare-and-swap checks it.
    #[serde(default)]
    pub version: u64,
}

impl ConnectionHealth {
    /// The record of a connection nobody has checked or used yet.
    pub fn unknown(connection: ConnectionId, since: SystemTime) -> Self {
        Self {
            connection,
            state: ConnectionState::Unknown,
            reason: Some("not checked or used yet".to_owned()),
            fix: None,
            since,
            checked_at: None,
            last_used: None,
            token_expires_at: None,
            approvals_used: None,
            limits: Vec::new(),
            notes: Vec::new(),
            limits_warned: Vec::new(),
            approvals_warned: false,
            version: 0,
        }
    }

    /// Adds a note (newest first, at most [`MAX_NOTES`]).
    pub fn note(&mut self, note: HealthNote) {
        self.notes.insert(0, note);
        self.notes.truncate(MAX_NOTES);
    }

    /// The `DailyApiRequests` limit, when read.
    pub fn daily_api(&self) -> Option<&LimitUsage> {
        self.limits.iter().find(|l| l.name == "DailyApiRequests")
    }

    /// The record as the bytes the databases keep (JSON; it holds no secret).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record read back from [`ConnectionHealth::to_json`].
    pub fn from_json(text: &str) -> Result<Self, forcelink_auth::error::StoreError> {
        serde_json::from_str(text)
            .map_err(|e| forcelink_auth::error::StoreError::Corrupt(format!("a connection health row: {e}")))
    }
}

/// What a compare-and-swap of a health record did.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthWrite {
    /// Written; the record now has this version.
    Written(u64),
    /// Someone else wrote first: this is the record now (`None`: there is none).
    Conflict(Option<Box<ConnectionHealth>>),
}

pub(crate) mod epoch_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_millis(u64::deserialize(d)?))
    }
}

pub(crate) mod connection_id {
    use forcelink_auth::store::ConnectionId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &ConnectionId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.as_str())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ConnectionId, D::Error> {
        Ok(ConnectionId::new(String::deserialize(d)?))
    }
}

pub(crate) mod opt_epoch_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_record_round_trips_through_its_json() {
        let at = UNIX_EPOCH + Duration::from_millis(1_765_000_000_123);
        let mut h = ConnectionHealth::unknown(ConnectionId::new("acme"), at);
        h.state = ConnectionState::ReauthorizationRequired;
        h.limits.push(LimitUsage { name: "DailyApiRequests".into(), max: 15000, remaining: 2000 });
        h.note(HealthNote { at, kind: "renewal".into(), ok: false, detail: "invalid_grant".into() });
        h.checked_at = Some(at);
        let back = ConnectionHealth::from_json(&h.to_json()).unwrap();
        assert_eq!(back, h);
        assert!(h.to_json().contains("\"reauthorization_required\""), "{}", h.to_json());
        assert!((back.daily_api().unwrap().used_fraction() - 13000.0 / 15000.0).abs() < 1e-9);
    }

    #[test]
    fn notes_keep_the_newest_ten() {
        let mut h = ConnectionHealth::unknown(ConnectionId::new("acme"), UNIX_EPOCH);
        for i in 0..15 {
            h.note(HealthNote { at: UNIX_EPOCH, kind: "check".into(), ok: true, detail: i.to_string() });
        }
        assert_eq!(h.notes.len(), MAX_NOTES);
        assert_eq!(h.notes[0].detail, "14");
    }

    #[test]
    fn a_damaged_row_is_reported_as_corrupt() {
        assert!(matches!(
            ConnectionHealth::from_json("{"),
            Err(forcelink_auth::error::StoreError::Corrupt(m)) if m.contains("health")
        ));
    }
}
