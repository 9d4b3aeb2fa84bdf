//! Short-lived records that several replicas must share so a browser needs no sticky session:
//! web-page sessions, OAuth `state` with its PKCE verifier, and connect sessions. Each is found by
//! a random key the browser holds (a cookie, the `state` parameter, a link), which the store
//! keeps only as a SHA-256 hash; the value is sealed under the master key (it may hold a PKCE
//! verifier or an app's secret) and bound to its kind and key hash. An expired record is never
//! returned and is purged on later writes.

use std::fmt;

use sha2::{Digest, Sha256};

/// Longest value accepted. 64 KiB.
pub const MAX_EPHEMERAL_VALUE_LEN: usize = 64 * 1024;

/// What an ephemeral record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EphemeralKind {
    /// A signed-in web page user (key: the session cookie).
    WebSession,
    /// An authorization waiting for its callback (key: the OAuth `state`).
    OAuthState,
    /// A connect link (key: the random part of its URL).
    ConnectSession,
}

impl EphemeralKind {
    /// `web_session`, `oauth_state` or `connect_session`: the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EphemeralKind::WebSession => "web_session",
            EphemeralKind::OAuthState => "oauth_state",
            EphemeralKind::ConnectSession => "connect_session",
        }
    }
}

impl fmt::Display for EphemeralKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hash the store keeps in place of a record's key: lowercase hex SHA-256.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The associated data a record's value is sealed with: its kind and key hash, so a value copied
/// to another row does not open.
pub(crate) fn aad(kind: EphemeralKind, hash: &str) -> Vec<u8> {
    format!("ephemeral:{}:{hash}", kind.as_str()).into_bytes()
}

/// Refuses a value larger than [`MAX_EPHEMERAL_VALUE_LEN`].
pub(crate) fn check_value(value: &[u8]) -> Result<(), forcelink_auth::error::StoreError> {
    if value.len() > MAX_EPHEMERAL_VALUE_LEN {
        return Err(forcelink_auth::error::StoreError::Unavailable(format!(
            "an ephemeral value of {} bytes exceeds the {MAX_EPHEMERAL_VALUE_LEN}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_as_hashes_bound_to_their_kind() {
        let h = key_hash("cookie-value");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("cookie"));
        assert_ne!(aad(EphemeralKind::WebSession, &h), aad(EphemeralKind::OAuthState, &h));
    }
}
