//! JWT bearer (`urn:ietf:params:oauth:grant-type:jwt-bearer`): an RS256 assertion signed with
//! the key whose certificate is on the connected app. Salesforce issues no refresh token here;
//! a new assertion is the renewal.
//!
//! The audience (`aud`) is its own setting, separate from the token endpoint: orgs differ on
//! whether they accept login/test or only the My Domain URL, so an ordered fallback list is
//! tried on "audience" failures and the one that worked is remembered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::endpoint::Endpoints;
use crate::error::{AuthError, OAuthErrorKind};
use crate::flows::token_request;
use crate::secret::PrivateKeyPem;
use crate::source::{AuthMethod, TokenSource};
use crate::token::TokenSet;
use crate::wire::Transport;

/// Salesforce wants `exp` "within 3 minutes"; assertions never live longer.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(180);
/// `grant_type` of the JWT bearer flow (RFC 7523).
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

/// A [`TokenSource`] for the JWT bearer flow: signs an assertion for `username` as the app
/// (`iss` = consumer key) and trades it for an access token.
pub struct JwtBearer {
    transport: Transport,
    endpoints: Endpoints,
    client_id: String,
    username: String,
    key: EncodingKey,
    audiences: Vec<String>,
    lifetime: Duration,
    // Index into `audiences` of the last one that worked (tried first next time).
    preferred: AtomicUsize,
}

impl std::fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtBearer")
            .field("token_endpoint", &self.endpoints.token.as_str())
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("audiences", &self.audiences)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl JwtBearer {
    /// `audiences` in the order to try (e.g. the login URL, then the My Domain URL); at least one.
    pub fn new(
        transport: Transport,
        endpoints: Endpoints,
        client_id: impl Into<String>,
        username: impl Into<String>,
        private_key: &PrivateKeyPem,
        audiences: Vec<String>,
    ) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        let key = EncodingKey::from_rsa_pem(private_key.secret().as_bytes()).map_err(|e| {
            AuthError::Key(format!(
                "the JWT private key is not an RSA private key in PEM ({e}); `forcelink keygen` makes one"
            ))
        })?;
        let audiences: Vec<String> = audiences
            .into_iter()
            .map(|a| a.trim().trim_end_matches('/').to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        if audiences.is_empty() {
            return Err(AuthError::Config("the JWT bearer flow needs at least one audience".to_owned()));
        }
        Ok(Self {
            transport,
            endpoints,
            client_id: client_id.into(),
            username: username.into(),
            key,
            audiences,
            lifetime: MAX_ASSERTION_LIFETIME,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Assertion lifetime; capped at [`MAX_ASSERTION_LIFETIME`] (the default).
    pub fn with_assertion_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.min(MAX_ASSERTION_LIFETIME);
        self
    }

    /// The signed assertion for `aud`.
    pub fn assertion(&self, aud: &str) -> Result<String, AuthError> {
        let now = self.transport.clock.now();
        let exp = (now + self.lifetime).duration_since(std::time::SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims { iss: &self.client_id, sub: &self.username, aud, exp };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| AuthError::Key(format!("signing the JWT assertion failed: {e}")))
    }

    /// The audience that worked last (or the first configured).
    pub fn current_audience(&self) -> &str {
        &self.audiences[self.preferred.load(Ordering::Relaxed).min(self.audiences.len() - 1)]
    }
}

impl TokenSource for JwtBearer {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move {
            let first = self.preferred.load(Ordering::Relaxed).min(self.audiences.len() - 1);
            let order = std::iter::once(first).chain((0..self.audiences.len()).filter(move |&i| i != first));
            let origin = self.endpoints.token_origin();
            let mut last_err = None;
            for i in order {
                let assertion = self.assertion(&self.audiences[i])?;
                let form = vec![("grant_type", GRANT_TYPE), ("assertion", assertion.as_str())];
                match token_request(&self.transport, &self.endpoints, None, form, &origin).await {
                    Ok(set) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Ok(set);
                    }
                    Err(e) if e.oauth_kind() == Some(OAuthErrorKind::InvalidAudience) => {
                        tracing::debug!(audience = %self.audiences[i], "JWT audience refused; trying the next one");
                        last_err = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(last_err.unwrap_or_else(|| AuthError::Internal("no JWT audience tried".to_owned())))
        })
    }
    fn method(&self) -> AuthMethod {
        AuthMethod::JwtBearer
    }
}
