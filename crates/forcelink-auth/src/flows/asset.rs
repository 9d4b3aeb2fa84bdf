//! Asset token exchange (`urn:ietf:params:oauth:grant-type:token-exchange`): trades an access
//! token (subject) plus an actor token describing a device for a short-lived asset token (a
//! JWT). This grant, unlike the others, returns `expires_in`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::endpoint::Endpoints;
use crate::error::AuthError;
use crate::flows::token_request;
use crate::secret::PrivateKeyPem;
use crate::source::{AppCredentials, AuthMethod, TokenProvider, TokenSource};
use crate::token::TokenSet;
use crate::wire::Transport;

/// `grant_type` of the exchange (RFC 8693).
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `subject_token_type`: the subject is an access token.
pub(crate) const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `actor_token_type`: the actor token is a JWT.
pub(crate) const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The device's description. Claim names are the app's business (Salesforce's are
/// UNCONFIRMED: e.g. `did`, `Name`, `Asset`); signing with the device key is optional proof of
/// possession.
pub struct ActorToken {
    /// The JWT's claims, as the app defines them.
    pub claims: serde_json::Map<String, serde_json::Value>,
    key: Option<EncodingKey>,
}

impl std::fmt::Debug for ActorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorToken").field("claims", &self.claims).field("signed", &self.key.is_some()).finish()
    }
}

impl ActorToken {
    /// An actor token sent unsigned (`alg: none`).
    pub fn unsigned(claims: serde_json::Map<String, serde_json::Value>) -> Self {
        Self { claims, key: None }
    }
    /// An actor token signed RS256 with the device's private key.
    pub fn signed(claims: serde_json::Map<String, serde_json::Value>, key: &PrivateKeyPem) -> Result<Self, AuthError> {
        let key = EncodingKey::from_rsa_pem(key.secret().as_bytes())
            .map_err(|e| AuthError::Key(format!("the device key is not an RSA private key in PEM ({e})")))?;
        Ok(Self { claims, key: Some(key) })
    }

    /// The compact JWT: RS256 when a key is set, else unsigned (`alg: none`).
    pub fn encode(&self) -> Result<String, AuthError> {
        match &self.key {
            Some(key) => jsonwebtoken::encode(&Header::new(Algorithm::RS256), &self.claims, key)
                .map_err(|e| AuthError::Key(format!("signing the actor token failed: {e}"))),
            None => {
                let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
                let payload = serde_json::to_vec(&self.claims).map_err(|e| AuthError::Internal(e.to_string()))?;
                Ok(format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload)))
            }
        }
    }
}

/// A [`TokenSource`] of asset tokens: exchanges `subject`'s current access token (and the
/// actor token, when given) for an asset token.
#[derive(Debug)]
pub struct AssetTokenExchange {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
    subject: Arc<dyn TokenProvider>,
    actor: Option<ActorToken>,
}

impl AssetTokenExchange {
    /// An exchange at `endpoints`' token endpoint as `app`. Fails when an endpoint breaks the
    /// transport's URL policy.
    pub fn new(
        transport: Transport,
        endpoints: Endpoints,
        app: AppCredentials,
        subject: Arc<dyn TokenProvider>,
        actor: Option<ActorToken>,
    ) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self { transport, endpoints, app, subject, actor })
    }
}

impl TokenSource for AssetTokenExchange {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move {
            let subject = self.subject.token().await?;
            let actor = self.actor.as_ref().map(ActorToken::encode).transpose()?;
            let mut form = vec![
                ("grant_type", GRANT_TYPE),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("subject_token", subject.access_token.secret()),
            ];
            if let Some(a) = &actor {
                form.push(("actor_token_type", TOKEN_TYPE_JWT));
                form.push(("actor_token", a));
            }
            token_request(&self.transport, &self.endpoints, Some(&self.app), form, &subject.instance_url).await
        })
    }
    fn method(&self) -> AuthMethod {
        AuthMethod::AssetToken
    }
}
