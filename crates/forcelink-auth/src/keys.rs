//! Keys for the JWT bearer flow: an RSA 2048 private key and a self-signed X.509 certificate
//! (PEM) to upload to the connected app, replacing the usual openssl steps.

use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use crate::error::AuthError;
use crate::secret::PrivateKeyPem;

/// RSA modulus size. 2048 bits is what Salesforce documents for connected-app certificates.
pub const RSA_BITS: usize = 2048;
/// Certificate validity when none is given: 2 years.
pub const DEFAULT_VALIDITY_DAYS: u32 = 730;

/// A private key and its certificate.
#[derive(Debug, Clone)]
pub struct JwtKeyPair {
    /// The RSA private key (PKCS#8 PEM) the JWT bearer flow signs assertions with.
    pub private_key_pem: PrivateKeyPem,
    /// The self-signed X.509 certificate (PEM) to upload to the connected app.
    pub certificate_pem: String,
}

/// Generates a key pair whose certificate names `common_name` and is valid for `validity_days`
/// from now (per `now`).
pub fn generate_jwt_key_pair(
    common_name: &str,
    validity_days: u32,
    now: std::time::SystemTime,
) -> Result<JwtKeyPair, AuthError> {
    let mut rng = rand::rngs::OsRng;
    let key =
        rsa::RsaPrivateKey::new(&mut rng, RSA_BITS).map_err(|e| AuthError::Key(format!("RSA key generation: {e}")))?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| AuthError::Key(format!("encoding the key: {e}")))?;
    let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| AuthError::Key(format!("loading the key for signing: {e}")))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| AuthError::Key(format!("certificate parameters: {e}")))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, common_name);
    dn.push(rcgen::DnType::OrganizationName, "forcelink");
    params.distinguished_name = dn;
    let not_before = now - std::time::Duration::from_secs(60);
    params.not_before = not_before.into();
    params.not_after = (now + std::time::Duration::from_secs(u64::from(validity_days) * 86_400)).into();
    let cert =
        params.self_signed(&key_pair).map_err(|e| AuthError::Key(format!("self-signing the certificate: {e}")))?;
    Ok(JwtKeyPair { private_key_pem: PrivateKeyPem::new(pem.as_str()), certificate_pem: cert.pem() })
}
