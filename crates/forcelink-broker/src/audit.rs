//! Token hand-outs for the audit log. Writing one row per hand-out would put a database write
//! on the hot path (tens of thousands per second); instead hand-outs are counted in memory per
//! API key, connection and token, and written as one `token.issued` entry per group every
//! second (`detail`: the token's fingerprint and how many times it was handed out).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use forcelink_auth::ConnectionId;
use forcelink_store::{AuditAction, AuditEntry};

/// Counts waiting to be written.
#[derive(Debug, Default)]
pub struct AuditBuffer {
    // (actor, connection, token fingerprint) → hand-outs since the last flush.
    counts: Mutex<HashMap<(String, String, String), u64>>,
}

impl AuditBuffer {
    pub fn record(&self, actor: &str, connection: &str, fingerprint: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        // Look up by reference first: the common case allocates nothing.
        if let Some(n) = counts
            .iter_mut()
            .find_map(|((a, c, f), n)| (a == actor && c == connection && f == fingerprint).then_some(n))
        {
            *n += 1;
            return;
        }
        counts.insert((actor.to_owned(), connection.to_owned(), fingerprint.to_owned()), 1);
    }

    /// Takes every count as audit entries stamped `at`.
    pub fn drain(&self, at: SystemTime) -> Vec<AuditEntry> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()));
        let mut entries: Vec<AuditEntry> = counts
            .into_iter()
            .map(|((actor, connection, fingerprint), n)| AuditEntry {
                at,
                connection: ConnectionId::new(connection),
                actor,
                action: AuditAction::TokenIssued,
                detail: Some(format!("token {fingerprint} handed out {n} time{}", if n == 1 { "" } else { "s" })),
            })
            .collect();
        entries.sort_by(|a, b| (a.connection.as_str(), &a.actor).cmp(&(b.connection.as_str(), &b.actor)));
        entries
    }

    /// Puts a drained entry's count back (its write failed).
    pub fn restore(&self, entry: &AuditEntry) {
        let Some(detail) = &entry.detail else { return };
        let mut words = detail.split(' ');
        let (Some(fingerprint), Some(n)) = (words.nth(1), words.nth(2).and_then(|n| n.parse::<u64>().ok())) else {
            return;
        };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((entry.actor.clone(), entry.connection.as_str().to_owned(), fingerprint.to_owned()))
            .or_default() += n;
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
        assert_eq!(entries[0].actor, "api-key:a");
        assert_eq!(entries[0].detail.as_deref(), Some("token abcd1234 handed out 3 times"));
        assert_eq!(entries[1].detail.as_deref(), Some("token abcd1234 handed out 1 time"));
        assert!(buffer.drain(SystemTime::UNIX_EPOCH).is_empty());
        buffer.restore(&entries[0]);
        buffer.record("api-key:a", "prod", "abcd1234");
        let again = buffer.drain(SystemTime::UNIX_EPOCH);
        assert_eq!(again[0].detail.as_deref(), Some("token abcd1234 handed out 4 times"));
    }
}
