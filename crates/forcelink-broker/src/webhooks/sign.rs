//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the secret is `whsec_` and
//! the base64 of the key bytes; a delivery carries `webhook-id`, `webhook-timestamp` (seconds
//! since the epoch) and `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the key bytes. Any of the specification's libraries verifies it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The secret's prefix.
pub(crate) const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new secret. 32.
const SECRET_BYTES: usize = 32;

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub(crate) fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret (with or without its prefix); `None` when it is not base64.
fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret)).ok()
}

/// The `webhook-signature` value of a delivery: `v1,<base64 HMAC-SHA256>`.
pub(crate) fn signature(secret: &str, id: &str, timestamp: u64, body: &str) -> Option<String> {
    let key = key_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_specification_example() {
        let sig = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    #[test]
    fn new_secrets_are_prefixed_random_and_usable() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a != b);
        assert_eq!(key_bytes(&a).unwrap().len(), 32);
        assert!(signature(&a, "msg_1", 1, "{}").unwrap().starts_with("v1,"));
        assert_eq!(signature("whsec_not base64!", "m", 1, "{}"), None);
    }
}
