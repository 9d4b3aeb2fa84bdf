//! One module per auth method. Each speaks Salesforce's wire format for its grant.

pub mod asset;
pub mod client_credentials;
pub mod device;
pub mod jwt_bearer;
pub mod loopback;
pub mod password;
pub mod refresh;
pub mod static_token;
pub mod user_agent;
pub mod web_server;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use url::Url;

use crate::endpoint::Endpoints;
use crate::error::AuthError;
use crate::source::AppCredentials;
use crate::token::TokenSet;
use crate::wire::{Decode, Transport};

/// POSTs a grant to the token endpoint with the app's client authentication and decodes the
/// answer (verifying `signature` when the secret is known).
pub(crate) async fn token_request(
    transport: &Transport,
    endpoints: &Endpoints,
    app: Option<&AppCredentials>,
    mut form: Vec<(&str, &str)>,
    fallback_instance: &Url,
) -> Result<TokenSet, AuthError> {
    let basic = app.and_then(|a| a.apply(&mut form));
    let raw = transport.post_form(&endpoints.token, &form, basic).await?;
    let secret = app.and_then(|a| a.client_secret.as_ref());
    transport.token_set(&raw, Decode { secret, fallback_instance, issuer: &endpoints.token })
}

/// `n` random bytes, base64url without padding.
pub(crate) fn random_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Logs once per flow instance that Salesforce is retiring it.
pub(crate) fn warn_legacy(flag: &std::sync::atomic::AtomicBool, flow: &str) {
    if !flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            flow,
            "Salesforce is retiring the {flow} flow (blocked from 2027); switch to client credentials, JWT bearer, or \
             web server with PKCE"
        );
    }
}
