//! Broker API keys: `flk_<id>_<secret>`. The id is public (it names the key in lists and the
//! audit log); the secret is 32 random bytes, shown once, and stored only as its SHA-256.
//!
//! A fast hash is right here, unlike for passwords: the secret is 256 random bits, so nobody
//! can guess it from the hash whatever the hashing speed, and a slow hash would only make every
//! broker request slower.

use std::fmt;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use forcelink_auth::error::StoreError;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::registry::{ApiKeyRecord, ConnectionStore};
use crate::scope::{Scope, Scopes};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "flk_";
/// Characters of a key's public id.
pub const API_KEY_ID_LEN: usize = 12;
/// Random bytes of a key's secret part.
pub const API_KEY_SECRET_BYTES: usize = 32;
/// Lists of connections or capabilities containing this allow every one.
pub const ANY: &str = "*";

/// Lowercase RFC 4648 base32: no `_` (the separator) and no look-alike case pairs.
const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The full text of a new API key, to show once. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret([redacted])")
    }
}

/// Lowercase hex SHA-256 of a key's secret part, as stored.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key: its text (shown once) and the record to store (which holds only the hash).
pub fn generate(
    label: impl Into<String>,
    connections: Vec<String>,
    capabilities: Scopes,
    now: SystemTime,
) -> (ApiKeySecret, ApiKeyRecord) {
    let mut rng = rand::rngs::OsRng;
    let id: String =
        (0..API_KEY_ID_LEN).map(|_| char::from(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())])).collect();
    let mut bytes = [0u8; API_KEY_SECRET_BYTES];
    rng.fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let record = ApiKeyRecord {
        secret_hash: hash_secret(&secret),
        id: id.clone(),
        label: label.into(),
        connections,
        capabilities,
        created_at: now,
        revoked_at: None,
    };
    (ApiKeySecret(format!("{API_KEY_PREFIX}{id}_{secret}")), record)
}

/// `flk_<id>_<secret>` → (id, secret), when it has that shape.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.trim().strip_prefix(API_KEY_PREFIX)?.split_once('_')?;
    let id_ok = id.len() == API_KEY_ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b));
    let secret_ok = URL_SAFE_NO_PAD.decode(secret).is_ok_and(|b| b.len() == API_KEY_SECRET_BYTES);
    (id_ok && secret_ok).then_some((id, secret))
}

/// The stored record of the key `presented`, when it is well formed, known, its secret matches
/// and it is not revoked (at or before `now`); `None` otherwise, whichever the reason, so a
/// caller cannot tell a guesser more than "no".
pub async fn verify(
    store: &dyn ConnectionStore,
    presented: &str,
    now: SystemTime,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let Some((id, secret)) = parse(presented) else { return Ok(None) };
    let Some(record) = store.api_key(id).await? else { return Ok(None) };
    // Constant time, so response times say nothing about how much of the hash matched.
    let matches: bool = hash_secret(secret).as_bytes().ct_eq(record.secret_hash.as_bytes()).into();
    if !matches || record.revoked_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    Ok(Some(record))
}

impl ApiKeyRecord {
    /// Whether the key may use `scope` on `connection` (`*` allows every connection).
    /// Revocation is [`verify`]'s job.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_hide_in_debug() {
        let now = SystemTime::UNIX_EPOCH;
        let (key, record) = generate("ci", vec!["prod".into()], Scope::Token.into(), now);
        let text = key.secret();
        let (id, secret) = parse(text).expect("a generated key parses");
        assert_eq!(id, record.id);
        assert_eq!(id.len(), API_KEY_ID_LEN);
        assert_eq!(record.secret_hash, hash_secret(secret));
        assert_eq!(record.secret_hash.len(), 64);
        assert!(!format!("{key:?} {record:?}").contains(secret));
        let (other, _) = generate("ci", vec![], Scopes::Only(Default::default()), now);
        assert_ne!(other.secret(), text);
        for bad in
            ["", "flk_", "flk_abc_def", "xyz_abcdefghijkl_AAAA", &text.replace("flk_", "flq_"), &text[..text.len() - 2]]
        {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_allow_listed_connections_and_capabilities_or_any() {
        let scopes = Scopes::parse(&["token", "proxy"]).unwrap();
        let (_, mut r) = generate("x", vec!["prod".into()], scopes, SystemTime::UNIX_EPOCH);
        assert!(r.allows("prod", Scope::Token) && r.allows("prod", Scope::Proxy));
        assert!(!r.allows("sandbox", Scope::Token) && !r.allows("prod", Scope::Admin));
        assert!(!r.all_connections());
        r.connections = vec![ANY.into()];
        assert!(r.allows("sandbox", Scope::Token) && r.all_connections());
        r.capabilities = Scopes::All;
        assert!(r.allows("sandbox", Scope::Admin));
    }
}
