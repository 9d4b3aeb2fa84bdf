//! Key material: the default app's JWT key pair (the client's private key and the certificate
//! "uploaded" to the app), the playground's own signing key (ID tokens, asset tokens,
//! `/id/keys`), and the self-signed CA and server certificate for `--tls`.
//!
//! RSA generation is slow, so [`KeyMaterial::load_or_create`] keeps the keys in a directory and
//! reuses them across starts. Creation holds a lock file in that directory, so several
//! processes starting at once agree on one set; no other file in the directory is touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::error::PlaygroundError;

const RSA_BITS: usize = 2048;
const CLIENT_KEY_FILE: &str = "jwt-private-key.pem";
const CLIENT_CERT_FILE: &str = "jwt-certificate.pem";
const SIGNING_KEY_FILE: &str = "playground-signing-key.pem";
const LOCK_FILE: &str = ".keys.lock";

/// RSA keys the playground needs, with the files a client reads.
#[derive(Clone)]
pub struct KeyMaterial {
    /// The default app's certificate (PEM), whose private key a JWT-bearer client signs with.
    pub client_certificate_pem: String,
    /// Where the default app's JWT private key (PEM) is kept.
    pub client_private_key_path: PathBuf,
    /// Where the default app's certificate (PEM) is kept; its public key verifies assertions.
    pub client_certificate_path: PathBuf,
    pub(crate) client_public_key: RsaPublicKey,
    pub(crate) signing_key: Arc<RsaPrivateKey>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("client_private_key_path", &self.client_private_key_path)
            .field("client_certificate_path", &self.client_certificate_path)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// Reads the key set in `dir`, or creates it there (private keys with mode 0600).
    pub fn load_or_create(dir: &Path) -> Result<Self, PlaygroundError> {
        if !dir.join(SIGNING_KEY_FILE).exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| PlaygroundError::keys(format!("cannot create {}: {e}", dir.display())))?;
            // One creator at a time (test runners start many processes at once); the others
            // wait on the lock and then find the keys made.
            let lock_path = dir.join(LOCK_FILE);
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| PlaygroundError::keys(format!("cannot open {}: {e}", lock_path.display())))?;
            loop {
                match lock.lock() {
                    Ok(()) => break,
                    // A signal (a test runner's or fuzzer's timer) interrupted the wait: wait again.
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(PlaygroundError::keys(format!("cannot lock {}: {e}", lock_path.display())));
                    }
                }
            }
            let created = if dir.join(SIGNING_KEY_FILE).exists() { Ok(()) } else { create_in(dir) };
            let _ = lock.unlock();
            created?;
        }
        Self::load(dir)
    }

    fn load(dir: &Path) -> Result<Self, PlaygroundError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| PlaygroundError::keys(format!("cannot read {}: {e}", dir.join(name).display())))
        };
        let client_key = RsaPrivateKey::from_pkcs8_pem(&read(CLIENT_KEY_FILE)?)
            .map_err(|e| PlaygroundError::keys(format!("{CLIENT_KEY_FILE} is not a PKCS#8 RSA key: {e}")))?;
        let cert = read(CLIENT_CERT_FILE)?;
        let client_public_key = public_key_from_certificate(&cert)?;
        if client_public_key != client_key.to_public_key() {
            return Err(PlaygroundError::keys(format!(
                "{CLIENT_CERT_FILE} does not belong to {CLIENT_KEY_FILE} in {}; delete the directory to regenerate",
                dir.display()
            )));
        }
        let signing_key = RsaPrivateKey::from_pkcs8_pem(&read(SIGNING_KEY_FILE)?)
            .map_err(|e| PlaygroundError::keys(format!("{SIGNING_KEY_FILE} is not a PKCS#8 RSA key: {e}")))?;
        Ok(Self {
            client_certificate_pem: cert,
            client_private_key_path: dir.join(CLIENT_KEY_FILE),
            client_certificate_path: dir.join(CLIENT_CERT_FILE),
            client_public_key,
            signing_key: Arc::new(signing_key),
        })
    }

    /// The playground's public signing key as a JWK (`kid`, `kty`, `alg`, `use`, `n`, `e`).
    pub(crate) fn signing_jwk(&self) -> serde_json::Value {
        let public = self.signing_key.to_public_key();
        serde_json::json!({
            "kid": self.signing_kid(),
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "n": crate::jwt::b64url(&public.n().to_bytes_be()),
            "e": crate::jwt::b64url(&public.e().to_bytes_be()),
        })
    }

    pub(crate) fn signing_kid(&self) -> String {
        let n = self.signing_key.to_public_key().n().to_bytes_be();
        let digest = Sha256::digest(n);
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Creates the key files in `dir`, touching no other file there. Each file is written under a
/// temporary name and renamed into place; the signing key comes last, so its presence means
/// the set is complete.
fn create_in(dir: &Path) -> Result<(), PlaygroundError> {
    let client_key = generate_rsa()?;
    let cert = self_signed_certificate(&client_key, "forcelink playground JWT client")?;
    let signing_key = generate_rsa()?;
    place(dir, CLIENT_KEY_FILE, &pkcs8_pem(&client_key)?, Mode::Private)?;
    place(dir, CLIENT_CERT_FILE, &cert, Mode::Public)?;
    place(dir, SIGNING_KEY_FILE, &pkcs8_pem(&signing_key)?, Mode::Private)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Readable by the owner only (0600).
    Private,
    Public,
}

fn place(dir: &Path, name: &str, text: &str, mode: Mode) -> Result<(), PlaygroundError> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    match mode {
        Mode::Private => write_private(&tmp, text)?,
        Mode::Public => write_file(&tmp, text)?,
    }
    let target = dir.join(name);
    std::fs::rename(&tmp, &target).map_err(|e| PlaygroundError::keys(format!("cannot write {}: {e}", target.display())))
}

fn generate_rsa() -> Result<RsaPrivateKey, PlaygroundError> {
    RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(PlaygroundError::keys)
}

fn pkcs8_pem(key: &RsaPrivateKey) -> Result<String, PlaygroundError> {
    key.to_pkcs8_pem(LineEnding::LF).map(|pem| pem.to_string()).map_err(PlaygroundError::keys)
}

fn write_file(path: &Path, text: &str) -> Result<(), PlaygroundError> {
    std::fs::write(path, text).map_err(|e| PlaygroundError::keys(format!("cannot write {}: {e}", path.display())))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), PlaygroundError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file =
        options.open(path).map_err(|e| PlaygroundError::keys(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(|e| PlaygroundError::keys(format!("cannot write {}: {e}", path.display())))
}

/// A self-signed X.509 certificate for an RSA key, as a connected app stores it.
fn self_signed_certificate(key: &RsaPrivateKey, common_name: &str) -> Result<String, PlaygroundError> {
    let der = key.to_pkcs8_der().map_err(PlaygroundError::keys)?;
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
    let key_pair =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).map_err(PlaygroundError::keys)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(PlaygroundError::keys)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let cert = params.self_signed(&key_pair).map_err(PlaygroundError::keys)?;
    Ok(cert.pem())
}

/// The RSA public key inside an X.509 certificate (PEM).
pub(crate) fn public_key_from_certificate(pem: &str) -> Result<RsaPublicKey, PlaygroundError> {
    use x509_cert::der::{DecodePem, Encode};
    let cert = x509_cert::Certificate::from_pem(pem.trim().as_bytes())
        .map_err(|e| PlaygroundError::keys(format!("not an X.509 certificate in PEM form: {e}")))?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(PlaygroundError::keys)?;
    RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| PlaygroundError::keys(format!("the certificate does not hold an RSA key: {e}")))
}

/// TLS for `--tls`: a CA made for this run, and a server certificate it signs for loopback names.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

impl TlsMaterial {
    pub(crate) fn generate(host: &str) -> Result<Self, PlaygroundError> {
        let ca_key = rcgen::KeyPair::generate().map_err(PlaygroundError::keys)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(PlaygroundError::keys)?;
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "forcelink playground CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(PlaygroundError::keys)?;
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);

        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
        let leaf_key = rcgen::KeyPair::generate().map_err(PlaygroundError::keys)?;
        let mut leaf_params = rcgen::CertificateParams::new(names).map_err(PlaygroundError::keys)?;
        leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "forcelink playground");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(PlaygroundError::keys)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(PlaygroundError::keys)?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
                    leaf_key.serialize_der(),
                )),
            )
            .map_err(PlaygroundError::keys)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { ca_pem: ca_cert.pem(), server_config: Arc::new(config) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_creators_agree_on_one_key_set_with_private_files_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keys");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || KeyMaterial::load_or_create(&dir).unwrap().client_certificate_pem)
            })
            .collect();
        let certs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(certs.windows(2).all(|w| w[0] == w[1]), "every process sees the same certificate");
        let again = KeyMaterial::load_or_create(&dir).unwrap();
        assert_eq!(again.client_certificate_pem, certs[0], "keys are reused across starts");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [CLIENT_KEY_FILE, SIGNING_KEY_FILE] {
                let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{f}");
            }
        }
    }

    #[test]
    fn an_existing_directory_keeps_its_other_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("precious.txt"), "keep me").unwrap();
        KeyMaterial::load_or_create(root.path()).unwrap();
        assert_eq!(std::fs::read_to_string(root.path().join("precious.txt")).unwrap(), "keep me");
        assert!(root.path().join(SIGNING_KEY_FILE).exists());
    }

    #[test]
    fn a_mismatched_certificate_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keys");
        KeyMaterial::load_or_create(&dir).unwrap();
        std::fs::write(dir.join(CLIENT_CERT_FILE), "not a certificate").unwrap();
        let err = KeyMaterial::load_or_create(&dir).unwrap_err().to_string();
        assert!(err.contains("X.509"), "{err}");
    }
}
