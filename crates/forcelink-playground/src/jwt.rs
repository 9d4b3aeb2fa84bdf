//! Just enough JWS (RFC 7515, compact form) for RS256: the playground verifies client assertions
//! and signs its own ID and asset tokens. Written here, not shared with the client crates, so a
//! client bug cannot be mirrored by the org it is tested against.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS split into its parts; nothing is verified yet.
#[derive(Debug)]
pub(crate) struct Compact {
    pub(crate) header: Value,
    pub(crate) claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Compact {
    pub(crate) fn parse(token: &str) -> Option<Self> {
        let mut parts = token.trim().split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
        if !header.is_object() || !claims.is_object() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        Some(Self { header, claims, signing_input: format!("{h}.{c}"), signature })
    }

    pub(crate) fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// True when the token is RS256 and signed by `key`.
    pub(crate) fn verify_rs256(&self, key: &RsaPublicKey) -> bool {
        if self.alg() != Some("RS256") {
            return false;
        }
        let Ok(signature) = Signature::try_from(self.signature.as_slice()) else { return false };
        VerifyingKey::<Sha256>::new(key.clone()).verify(self.signing_input.as_bytes(), &signature).is_ok()
    }
}

/// Signs `claims` with RS256.
pub(crate) fn sign_rs256(key: &RsaPrivateKey, kid: &str, claims: &Value) -> String {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature.to_bytes()))
}

/// Reads a NumericDate claim that may be a JSON number or a string of digits (Salesforce's own
/// example sends `"exp":"1333685628"`).
pub(crate) fn numeric_date(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}
