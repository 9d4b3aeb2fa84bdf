//! Broker API keys: `flk_<id>_<secret>`. The id is public (it names the key in lists and the
//! audit log); the secret is 32 random bytes, shown once, and stored only as its SHA-256.
//!
//! A fast hash is right here, unlike for passwords: the secret is 256 random bits, so nobody
//! can guess it from the hash whatever the hashing speed, and a slow hash would only make every
//! broker request slower.
//!
//! The databases keep each key as an `ApiKeyRow` with an HMAC-SHA256 over every field, under a
//! key derived from the master key: someone who can write to the database but does not hold the
//! master key cannot plant a key (a row with the hash of a secret they chose) or widen one (more
//! connections or capabilities, a revocation undone). A row whose MAC is missing or wrong is
//! treated as absent, with a warning naming its id.
//!
//! A read-only key keeps that setting as the marker [`READ_ONLY_MARKER`] in its stored capability
//! list, so the MAC covers it and no database needed a new column: rows written before the setting
//! existed read back as writable with their MACs intact. A read-only row's MAC input also ends
//! with one more field, so a version that does not know the marker (and would skip it, granting
//! writes) finds the MAC wrong and refuses the key instead.

use std::fmt;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use forcelink_auth::error::StoreError;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::codec::{from_millis, millis};
use crate::crypto::MacKey;
use crate::registry::{ApiKeyRecord, ConnectionStore};
use crate::scope::Scopes;

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "flk_";
/// Characters of a key's public id.
pub const API_KEY_ID_LEN: usize = 12;
/// Random bytes of a key's secret part.
pub const API_KEY_SECRET_BYTES: usize = 32;
pub use crate::scope::ANY;
/// The entry of a read-only key's stored capability list that says so. No scope name starts
/// with `!`, so no version reads it as a scope.
pub const READ_ONLY_MARKER: &str = "!read-only";

/// Lowercase RFC 4648 base32: no `_` (the separator) and no look-alike case pairs.
const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The full text of a new API key, to show once. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// The whole key text (`flk_<id>_<secret>`), to show once.
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
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new key: its text (shown once) and the record to store (which holds only the hash). The
/// key may write; set [`ApiKeyRecord::read_only`] on the record before storing it to make it
/// read-only.
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
        read_only: false,
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

/// The stored record of the key `presented`, when it is well formed, known (its row's MAC holds),
/// its secret matches and it is not revoked (at or before `now`); `None` otherwise, whichever
/// the reason, so a caller cannot tell a guesser more than "no".
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

/// Version tag at the start of the MAC input: a future change of the row's fields changes it,
/// so a tag over the old layout can never pass for the new one.
const ROW_MAC_FORMAT: &[u8] = b"forcelink api_keys row v1";

/// An API key as the databases keep it: the record's fields in their stored form (lists as JSON
/// text, times in milliseconds) and the MAC over exactly those values. No `Debug`: the hash has
/// no business in logs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub secret_hash: String,
    pub label: String,
    /// JSON list of connection names.
    pub connections: String,
    /// JSON list of capability names.
    pub capabilities: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    /// Lowercase hex HMAC-SHA256 of [`ApiKeyRow::mac_input`]; `None` in a row written without one.
    pub mac: Option<String>,
}

/// What reading an [`ApiKeyRow`] found.
pub(crate) enum RowCheck {
    Valid(ApiKeyRecord),
    /// The MAC is missing or wrong: the row was written by someone without the master key (or
    /// under another master key); the id, for the warning.
    Forged(String),
}

impl ApiKeyRow {
    /// The row for `record`, with its MAC under `key`.
    pub fn new(record: &ApiKeyRecord, key: &MacKey) -> Self {
        let mut row = Self {
            id: record.id.clone(),
            secret_hash: record.secret_hash.clone(),
            label: record.label.clone(),
            // Serialising a list of strings cannot fail.
            connections: serde_json::to_string(&record.connections).unwrap_or_default(),
            capabilities: serde_json::to_string(&stored_capabilities(record)).unwrap_or_default(),
            created_at_ms: millis(record.created_at) as i64,
            revoked_at_ms: record.revoked_at.map(|t| millis(t) as i64),
            mac: None,
        };
        row.sign(key);
        row
    }

    /// Sets the MAC to the one of the current fields under `key`.
    pub fn sign(&mut self, key: &MacKey) {
        self.mac = Some(key.tag_hex(&[&self.mac_input()]));
    }

    /// Whether the MAC is present and right under `key`.
    pub fn mac_is_valid(&self, key: &MacKey) -> bool {
        self.mac.as_deref().is_some_and(|tag| key.verify_hex(&[&self.mac_input()], tag))
    }

    /// Whether the stored capability list holds [`READ_ONLY_MARKER`].
    fn is_read_only(&self) -> bool {
        serde_json::from_str::<Vec<String>>(&self.capabilities)
            .is_ok_and(|list| list.iter().any(|c| c == READ_ONLY_MARKER))
    }

    /// Every field, each length-prefixed (u64 big-endian), so no two rows give the same bytes
    /// (a label ending where a list begins cannot shift the boundary). A read-only row adds one
    /// field (see the module docs), so versions that ignore the marker refuse the row.
    fn mac_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut put = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        put(ROW_MAC_FORMAT);
        for text in [&self.id, &self.secret_hash, &self.label, &self.connections, &self.capabilities] {
            put(text.as_bytes());
        }
        put(&self.created_at_ms.to_be_bytes());
        match self.revoked_at_ms {
            None => put(&[]),
            Some(ms) => put(&ms.to_be_bytes()),
        }
        if self.is_read_only() {
            put(READ_ONLY_MARKER.as_bytes());
        }
        out
    }

    /// The record, when the MAC holds under `key`.
    pub fn check(self, key: &MacKey) -> Result<RowCheck, StoreError> {
        if !self.mac_is_valid(key) {
            return Ok(RowCheck::Forged(self.id));
        }
        let id = self.id;
        let list = |what: &str, json: &str| {
            serde_json::from_str::<Vec<String>>(json)
                .map_err(|_| StoreError::Corrupt(format!("API key {id}: {what} is not a JSON list of strings")))
        };
        let capabilities = list("capabilities", &self.capabilities)?;
        Ok(RowCheck::Valid(ApiKeyRecord {
            connections: list("connections", &self.connections)?,
            read_only: capabilities.iter().any(|c| c == READ_ONLY_MARKER),
            capabilities: Scopes::from_stored(&capabilities),
            secret_hash: self.secret_hash,
            label: self.label,
            created_at: from_millis(u64::try_from(self.created_at_ms).unwrap_or(0)),
            revoked_at: self.revoked_at_ms.map(|ms| from_millis(u64::try_from(ms).unwrap_or(0))),
            id,
        }))
    }
}

/// The capability list as stored: the scope names, and [`READ_ONLY_MARKER`] for a read-only key.
fn stored_capabilities(record: &ApiKeyRecord) -> Vec<String> {
    let mut list = record.capabilities.to_strings();
    if record.read_only {
        list.push(READ_ONLY_MARKER.to_owned());
    }
    list
}

/// What revoking a row found.
pub(crate) enum Revocation {
    /// The row now carries the revocation time and a new MAC: write it.
    Revoked,
    /// Revoked before: a second revocation keeps the first time, nothing to write.
    AlreadyRevoked,
    /// The MAC does not hold: re-signing would bless a planted row, so it stays as it is, and
    /// absent (the id, for the warning).
    Forged(String),
}

impl ApiKeyRow {
    /// Marks the row revoked at `at` and signs it again, when its MAC holds under `key`.
    pub fn revoke(&mut self, at: SystemTime, key: &MacKey) -> Revocation {
        if !self.mac_is_valid(key) {
            return Revocation::Forged(self.id.clone());
        }
        if self.revoked_at_ms.is_some() {
            return Revocation::AlreadyRevoked;
        }
        self.revoked_at_ms = Some(millis(at) as i64);
        self.sign(key);
        Revocation::Revoked
    }

    /// Signs the row under `new` when its MAC holds under `old` (a key rotation); a row that
    /// does not verify now must not be blessed by the new key: it keeps its bad MAC, with a
    /// warning, and false is returned.
    pub fn resign(&mut self, old: &MacKey, new: &MacKey) -> bool {
        if !self.mac_is_valid(old) {
            warn_forged(&self.id);
            return false;
        }
        self.sign(new);
        true
    }
}

/// The records of `rows` whose MAC holds under `key`; the others are left out with a warning.
/// `same_key` runs only when some row fails: a key rotation by another process re-signs every
/// row under the new key, and that must read as "restart with the new key", not as forgery.
pub(crate) async fn checked_rows<F, Fut>(
    rows: Vec<ApiKeyRow>,
    key: &MacKey,
    same_key: F,
) -> Result<Vec<ApiKeyRecord>, StoreError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut valid = Vec::with_capacity(rows.len());
    let mut forged = Vec::new();
    for row in rows {
        match row.check(key)? {
            RowCheck::Valid(record) => valid.push(record),
            RowCheck::Forged(id) => forged.push(id),
        }
    }
    if !forged.is_empty() {
        same_key().await?;
        forged.iter().for_each(|id| warn_forged(id));
    }
    Ok(valid)
}

/// Says that the row of API key `id` failed its integrity check. Names the id only: never the
/// hash or anything else from a row that may have been planted.
pub(crate) fn warn_forged(id: &str) {
    tracing::warn!(
        api_key_id = %id,
        "API key row {id} has a missing or wrong MAC (written without the store's master key); ignoring it"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;

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
    fn row_mac_covers_every_field_and_the_key() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let master = crate::MasterKey::generate();
        let key = master.api_key_mac_key();
        let (_, record) = generate("ci", vec!["prod".into()], Scope::Token.into(), now);
        let row = ApiKeyRow::new(&record, &key);
        assert!(row.mac_is_valid(&key));
        assert_eq!(row.mac.as_deref().map(str::len), Some(64));
        let Ok(RowCheck::Valid(back)) = row.clone().check(&key) else { panic!("a signed row checks") };
        assert_eq!(back, record);
        // Another master key's derived key, and a derived key that is not the master key itself.
        assert!(!row.mac_is_valid(&crate::MasterKey::generate().api_key_mac_key()));
        assert_ne!(row.mac, Some(MacKey::tag_hex(&key, &[b"x"])));
        type Tamper = Box<dyn Fn(&mut ApiKeyRow)>;
        let tampered: Vec<Tamper> = vec![
            Box::new(|r| r.id.push('x')),
            Box::new(|r| r.secret_hash = "00".repeat(32)),
            Box::new(|r| r.label.push('x')),
            Box::new(|r| r.connections = r#"["*"]"#.into()),
            Box::new(|r| r.capabilities = r#"["*"]"#.into()),
            Box::new(|r| r.created_at_ms += 1),
            Box::new(|r| r.revoked_at_ms = Some(0)),
            // Read-only switched on (a key narrowed behind the store's back is forged too).
            Box::new(|r| r.capabilities = r#"["token","!read-only"]"#.into()),
            Box::new(|r| r.mac = None),
            Box::new(|r| r.mac = Some(String::new())),
            Box::new(|r| r.mac = r.mac.as_ref().map(|m| m.to_uppercase())),
            // Moving text from one field to the next keeps the concatenation, not the encoding.
            Box::new(|r| {
                r.label = format!("ci{}", &r.connections[..1]);
                r.connections = r.connections[1..].to_owned();
            }),
        ];
        for (i, tamper) in tampered.iter().enumerate() {
            let mut bad = row.clone();
            tamper(&mut bad);
            assert!(!bad.mac_is_valid(&key), "change {i} must break the MAC");
            assert!(matches!(bad.check(&key), Ok(RowCheck::Forged(_))), "change {i}");
        }
        let mut revoked = row.clone();
        revoked.revoked_at_ms = Some(5);
        revoked.sign(&key);
        assert!(revoked.mac_is_valid(&key) && revoked.mac != row.mac);
        assert!(!format!("{key:?}").contains(&master.to_base64()));
    }

    #[test]
    fn read_only_is_kept_in_the_signed_list_and_older_rows_stay_valid() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let key = crate::MasterKey::generate().api_key_mac_key();
        let (_, writable) = generate("ci", vec!["prod".into()], Scope::Mcp.into(), now);
        let mut read_only = writable.clone();
        read_only.read_only = true;

        // A writable row is exactly what versions before the setting wrote: same list, same MAC
        // input, so their rows keep verifying and read back as writable.
        let row = ApiKeyRow::new(&writable, &key);
        assert_eq!(row.capabilities, r#"["mcp"]"#);
        let Ok(RowCheck::Valid(back)) = row.check(&key) else { panic!("a writable row checks") };
        assert!(!back.read_only);

        let row = ApiKeyRow::new(&read_only, &key);
        assert_eq!(row.capabilities, r#"["mcp","!read-only"]"#);
        let Ok(RowCheck::Valid(back)) = row.clone().check(&key) else { panic!("a read-only row checks") };
        assert_eq!(back, read_only);
        assert_eq!(back.capabilities, Scope::Mcp.into(), "the marker is no scope");

        // Dropping the marker (making the key writable) breaks the MAC.
        let mut widened = row.clone();
        widened.capabilities = r#"["mcp"]"#.into();
        assert!(matches!(widened.check(&key), Ok(RowCheck::Forged(_))));

        // A version that does not know the marker computes the MAC without the last field, and
        // so refuses the row rather than granting writes.
        let input = row.mac_input();
        let older = &input[..input.len() - 8 - READ_ONLY_MARKER.len()];
        assert!(!key.verify_hex(&[older], row.mac.as_deref().unwrap()));

        // Revocation and rotation keep the setting.
        let mut revoked = row.clone();
        assert!(matches!(revoked.revoke(now, &key), Revocation::Revoked));
        let Ok(RowCheck::Valid(back)) = revoked.check(&key) else { panic!("a revoked row checks") };
        assert!(back.read_only && back.revoked_at.is_some());
        let new_key = crate::MasterKey::generate().api_key_mac_key();
        let mut rotated = row;
        assert!(rotated.resign(&key, &new_key));
        let Ok(RowCheck::Valid(back)) = rotated.check(&new_key) else { panic!("a re-signed row checks") };
        assert!(back.read_only);
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
