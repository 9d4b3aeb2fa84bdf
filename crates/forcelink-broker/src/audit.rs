//! Frequent events for the audit log, counted in memory and written in batches. Writing one row
//! per event would put a database write on the hot path (tens of thousands of token hand-outs
//! or proxied requests per second) and let a flood of refused keys fill the log; instead events
//! are grouped and each group is written as one entry every second ([`crate::state::AUDIT_FLUSH_INTERVAL`]):
//!
//! - `token.issued` per API key, connection and token (`detail`: the token's fingerprint and
//!   how many times it was handed out);
//! - `proxy.request` per API key, connection, method, path (query values removed) and status
//!   (`detail`: `GET services/data/v64.0/query?q=… → 200`, and the count when above one);
//! - `key.refused` per key id (or `anonymous` / `unknown`) and reason.
//!
//! The number of groups waiting is bounded ([`MAX_GROUPS`]): beyond it, events are counted in
//! one overflow group per action, so memory and the log stay bounded whatever arrives.

use std::collections::HashMap;
use std::time::SystemTime;

use forcelink_auth::ConnectionId;
use forcelink_store::{AuditAction, AuditEntry};
use parking_lot::Mutex;

/// Most groups waiting for a flush; further distinct events share one overflow group. 10 000.
pub(crate) const MAX_GROUPS: usize = 10_000;
/// The connection column of entries about no connection (API keys, sign-ins, refusals).
pub(crate) const NO_CONNECTION: &str = "*";

/// What events are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Group {
    pub actor: String,
    pub connection: String,
    pub action: AuditAction,
    /// For `token.issued` the token fingerprint; otherwise the entry's detail.
    pub detail: String,
}

/// A drained group: the entry to write and what to put back if the write fails.
#[derive(Debug, Clone)]
pub(crate) struct Drained {
    pub entry: AuditEntry,
    pub group: Group,
    pub count: u64,
}

/// Counts waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct AuditBuffer {
    counts: Mutex<HashMap<Group, u64>>,
}

fn times(n: u64) -> String {
    format!("{n} time{}", if n == 1 { "" } else { "s" })
}

impl AuditBuffer {
    /// Counts one event of `group`.
    pub(crate) fn add(&self, group: Group) {
        self.add_n(group, 1);
    }

    fn add_n(&self, mut group: Group, n: u64) {
        let mut counts = self.counts.lock();
        if let Some(c) = counts.get_mut(&group) {
            *c += n;
            return;
        }
        if counts.len() >= MAX_GROUPS {
            group = Group {
                actor: "overflow".to_owned(),
                connection: NO_CONNECTION.to_owned(),
                action: group.action,
                detail: "more distinct events than the audit buffer groups".to_owned(),
            };
        }
        *counts.entry(group).or_default() += n;
    }

    /// Counts a token hand-out.
    pub(crate) fn record(&self, actor: &str, connection: &str, fingerprint: &str) {
        self.add(Group {
            actor: actor.to_owned(),
            connection: connection.to_owned(),
            action: AuditAction::TokenIssued,
            detail: fingerprint.to_owned(),
        });
    }

    /// Takes every count as audit entries stamped `at`.
    pub(crate) fn drain(&self, at: SystemTime) -> Vec<Drained> {
        let counts = std::mem::take(&mut *self.counts.lock());
        let mut out: Vec<Drained> = counts
            .into_iter()
            .map(|(group, n)| {
                let detail = match group.action {
                    AuditAction::TokenIssued => format!("token {} handed out {}", group.detail, times(n)),
                    _ if n == 1 => group.detail.clone(),
                    _ => format!("{} ({})", group.detail, times(n)),
                };
                let entry = AuditEntry {
                    at,
                    connection: ConnectionId::new(&group.connection),
                    actor: group.actor.clone(),
                    action: group.action.clone(),
                    detail: Some(detail),
                };
                Drained { entry, group, count: n }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.entry.connection.as_str(), &a.entry.actor, &a.entry.detail).cmp(&(
                b.entry.connection.as_str(),
                &b.entry.actor,
                &b.entry.detail,
            ))
        });
        out
    }

    /// Puts a drained group's count back (its write failed).
    pub(crate) fn restore(&self, drained: &Drained) {
        self.add_n(drained.group.clone(), drained.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_by_key_connection_and_token_and_survive_a_failed_write() {
        let buffer = AuditBuffer::default();
        for _ in 0..3 {
            buffer.record("api-key:a", "prod", "abcd1234");
        }
        buffer.record("api-key:b", "prod", "abcd1234");
        let entries = buffer.drain(SystemTime::UNIX_EPOCH);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].entry.actor, "api-key:a");
        assert_eq!(entries[0].entry.detail.as_deref(), Some("token abcd1234 handed out 3 times"));
        assert_eq!(entries[1].entry.detail.as_deref(), Some("token abcd1234 handed out 1 time"));
        assert!(buffer.drain(SystemTime::UNIX_EPOCH).is_empty());
        buffer.restore(&entries[0]);
        buffer.record("api-key:a", "prod", "abcd1234");
        let again = buffer.drain(SystemTime::UNIX_EPOCH);
        assert_eq!(again[0].entry.detail.as_deref(), Some("token abcd1234 handed out 4 times"));
    }

    #[test]
    fn a_flood_of_distinct_events_stays_bounded() {
        let buffer = AuditBuffer::default();
        for i in 0..(MAX_GROUPS + 500) {
            buffer.add(Group {
                actor: format!("api-key:{i}"),
                connection: NO_CONNECTION.to_owned(),
                action: AuditAction::KeyRefused,
                detail: "unauthorized".to_owned(),
            });
        }
        let drained = buffer.drain(SystemTime::UNIX_EPOCH);
        assert_eq!(drained.len(), MAX_GROUPS + 1);
        let overflow = drained.iter().find(|d| d.entry.actor == "overflow").unwrap();
        assert_eq!(overflow.count, 500);
    }
}
