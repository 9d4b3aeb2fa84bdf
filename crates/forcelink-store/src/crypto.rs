//! Encryption at rest: AES-256-GCM with a random 96-bit nonce per value, bound to its row by
//! associated data (the connection name), so a sealed value copied to another row does not open.
//! Rows that are not secret but must not be forged (API keys) carry an HMAC-SHA256 under a key
//! derived from the master key (`MacKey`). Files and directories the store creates are
//! private to their owner (directories with mode 0700, files with mode 0600).

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Digest;

use crate::OpenError;

/// Format tag of sealed values (version 1: AES-256-GCM).
const MAGIC: &[u8; 3] = b"FL1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
/// Domain separation of the API-key row MAC key: `HMAC-SHA256(master key, this)`. A new purpose
/// gets a new label, so one derived key is never valid for another use.
const API_KEY_MAC_LABEL: &[u8] = b"forcelink api-key mac v1";

/// The 32-byte key that encrypts every secret in a store.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: [u8; KEY_ID_LEN],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id_hex()).field("key", &"[redacted]").finish()
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenSealedError {
    #[error("the value was encrypted with another master key (key id {0}); use that key or sign in again")]
    /// Sealed with the key whose id is given, not this one.
    WrongKey(String),
    #[error("the value is damaged or was moved from another row")]
    /// The value does not authenticate: changed, truncated, or sealed for another row.
    Damaged,
}

impl MasterKey {
    /// The key from its 32 bytes; its id is the first 8 bytes of their SHA-256.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let digest = sha2::Sha256::digest(key);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self { key, id }
    }

    /// A new random key (from the operating system's generator).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    /// Parses the base64 form (what `FORCELINK_MASTER_KEY` and key files hold).
    pub fn from_base64(text: &str) -> Result<Self, OpenError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| OpenError::Key("the master key is not base64; it must be 32 random bytes in base64".into()))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            OpenError::Key(format!("the master key has {} bytes; it must have 32 (base64 of 32 random bytes)", b.len()))
        })?;
        Ok(Self::from_bytes(key))
    }

    /// The base64 form (what `FORCELINK_MASTER_KEY` and key files hold).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    /// A short public name of the key (first 8 bytes of its SHA-256), to tell keys apart.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// The key that authenticates API-key rows, derived from this key (see [`MacKey`]).
    pub(crate) fn api_key_mac_key(&self) -> MacKey {
        MacKey(hmac_sha256(&self.key, &[API_KEY_MAC_LABEL]))
    }

    /// Reads an existing key file (refusing one others can read); never creates it.
    pub fn load(path: &Path) -> Result<Self, OpenError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OpenError::Key(format!("the key file {} does not exist", path.display()))
            } else {
                OpenError::Key(format!("reading {}: {e}", path.display()))
            }
        })?;
        check_private(path)?;
        Self::from_base64(&text).map_err(|e| match e {
            OpenError::Key(m) => OpenError::Key(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Writes the key to a new file with mode 0600 and flushes it to disk, replacing any file
    /// already at `path` (a key file left by an interrupted rotation, never a key in use).
    pub fn write_new_file(&self, path: &Path) -> Result<(), OpenError> {
        let fail = |e: std::io::Error| OpenError::Key(format!("writing {}: {e}", path.display()));
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(fail)?;
        f.write_all(self.to_base64().as_bytes()).and_then(|_| f.sync_all()).map_err(fail)
    }

    /// Reads the key file, or creates it with a new key and mode 0600 when it does not exist.
    /// Refuses a file others can read.
    pub fn load_or_create(path: &Path) -> Result<Self, OpenError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Self::from_base64(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir).map_err(|e| OpenError::Key(format!("creating {}: {e}", dir.display())))?;
                }
                let key = Self::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut f) => {
                        f.write_all(key.to_base64().as_bytes())
                            .and_then(|_| f.sync_all())
                            .map_err(|e| OpenError::Key(format!("writing {}: {e}", path.display())))?;
                        Ok(key)
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
                    Err(e) => Err(OpenError::Key(format!("creating {}: {e}", path.display()))),
                }
            }
            Err(e) => Err(OpenError::Key(format!("reading {}: {e}", path.display()))),
        }
    }

    /// `MAGIC | key id | nonce | ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(&self.key.into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce size cannot fail.
        let ciphertext = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad }).unwrap_or_default();
        let mut out = Vec::with_capacity(MAGIC.len() + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value sealed by [`MasterKey::seal`] with the same associated data.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenSealedError> {
        let header = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;
        if sealed.len() < header || &sealed[..MAGIC.len()] != MAGIC {
            return Err(OpenSealedError::Damaged);
        }
        let id = &sealed[MAGIC.len()..MAGIC.len() + KEY_ID_LEN];
        if id != self.id {
            return Err(OpenSealedError::WrongKey(hex::encode(id)));
        }
        let nonce = &sealed[MAGIC.len() + KEY_ID_LEN..header];
        Aes256Gcm::new(&self.key.into())
            .decrypt(Nonce::from_slice(nonce), Payload { msg: &sealed[header..], aad })
            .map_err(|_| OpenSealedError::Damaged)
    }
}

/// A key derived from the master key for one purpose, which authenticates rows with
/// HMAC-SHA256 (RFC 2104). `Debug` prints `[redacted]`.
#[derive(Clone)]
pub(crate) struct MacKey([u8; 32]);

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

impl MacKey {
    /// The tag of `parts` as lowercase hex. Callers pass an unambiguous encoding (each field
    /// length-prefixed), so two different rows never give the same input.
    pub(crate) fn tag_hex(&self, parts: &[&[u8]]) -> String {
        hex::encode(hmac_sha256(&self.0, parts))
    }

    /// Whether `tag` (lowercase hex) is the tag of `parts`, compared in constant time.
    pub(crate) fn verify_hex(&self, parts: &[&[u8]], tag: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.tag_hex(parts);
        expected.len() == tag.len() && bool::from(expected.as_bytes().ct_eq(tag.as_bytes()))
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Creates `dir` and its missing parents with mode 0700 (Unix): the store's directory holds its
/// database and maybe its key file, which other users have no business listing. An existing
/// directory is left as it is (it may be shared on purpose, like a home directory).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The id of the key that sealed `sealed` (from its header), when it is a sealed value at all.
pub(crate) fn sealed_key_id(sealed: &[u8]) -> Option<String> {
    let header = MAGIC.len() + KEY_ID_LEN;
    (sealed.len() >= header + NONCE_LEN && &sealed[..MAGIC.len()] == MAGIC)
        .then(|| hex::encode(&sealed[MAGIC.len()..header]))
}

/// Flushes a directory so a rename inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), OpenError> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        std::fs::metadata(path).map_err(|e| OpenError::Key(format!("{}: {e}", path.display())))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(OpenError::Key(format!(
            "the key file {} can be read by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), OpenError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_bind_to_the_row() {
        let k = MasterKey::generate();
        let sealed = k.seal(b"refresh-token-value", b"conn-a");
        assert!(!sealed.windows(5).any(|w| w == b"fresh"));
        assert_eq!(k.open(&sealed, b"conn-a").unwrap(), b"refresh-token-value");
        assert_eq!(k.open(&sealed, b"conn-b"), Err(OpenSealedError::Damaged));
        let other = MasterKey::generate();
        assert!(matches!(other.open(&sealed, b"conn-a"), Err(OpenSealedError::WrongKey(_))));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(&flipped, b"conn-a"), Err(OpenSealedError::Damaged));
        assert!(!format!("{k:?}").contains(&k.to_base64()));
    }

    #[test]
    fn key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.id_hex(), b.id_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64("AAAA").unwrap_err().to_string().contains("32"));
    }
}
