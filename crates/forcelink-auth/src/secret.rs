//! Secret newtypes: their `Debug` and `Display` never print the value; read it with `.secret()`.

use std::fmt;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret value. Call it only where the value is sent or stored.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_type!(
    /// A session id / OAuth access token (`<org15>!…` on Salesforce, or a JWT).
    AccessToken
);
secret_type!(
    /// A refresh token: each one is an approval of the user for the connected app.
    RefreshToken
);
secret_type!(
    /// A connected app's consumer secret.
    ClientSecret
);
secret_type!(
    /// A user's password (without the security token).
    Password
);
secret_type!(
    /// The security token Salesforce appends to passwords from untrusted networks.
    SecurityToken
);
secret_type!(
    /// An RSA private key in PEM (PKCS#8 or PKCS#1).
    PrivateKeyPem
);
secret_type!(
    /// A PKCE code verifier (RFC 7636 §4.1).
    PkceCodeVerifier
);
secret_type!(
    /// A one-time authorization code from the authorize redirect.
    AuthorizationCode
);
secret_type!(
    /// The device code the device flow polls with.
    DeviceCode
);
secret_type!(
    /// An OpenID Connect ID token.
    IdToken
);

impl AccessToken {
    /// A short, non-reversible label for logs: the first 8 hex digits of SHA-256 of the token.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..4])
    }
}

/// Compares two secrets in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
