//! The other OAuth endpoints: revoke, introspect, userinfo and the identity URL.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::endpoint::Endpoints;
use crate::error::AuthError;
use crate::secret::{AccessToken, RefreshToken};
use crate::source::AppCredentials;
use crate::token::Token;
use crate::wire::Transport;

/// A token to revoke or inspect.
#[derive(Debug, Clone, Copy)]
pub enum AnyToken<'a> {
    Access(&'a AccessToken),
    Refresh(&'a RefreshToken),
}

impl AnyToken<'_> {
    fn secret(&self) -> &str {
        match self {
            AnyToken::Access(t) => t.secret(),
            AnyToken::Refresh(t) => t.secret(),
        }
    }
    fn hint(&self) -> &'static str {
        match self {
            AnyToken::Access(_) => "access_token",
            AnyToken::Refresh(_) => "refresh_token",
        }
    }
}

/// An introspection answer (RFC 7662 as Salesforce sends it: `token_type` is the token kind,
/// `sub` the identity URL).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(default)]
    pub iat: Option<u64>,
    #[serde(default)]
    pub nbf: Option<u64>,
}

impl Introspection {
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    }
}

/// OpenID Connect userinfo, with the Salesforce claims clients use. Other claims are in `extra`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub urls: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The identity URL's answer. Other fields are in `extra`.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub id: String,
    pub user_id: String,
    pub organization_id: String,
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub urls: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Calls the non-grant endpoints of one authorization server as one app.
#[derive(Debug, Clone)]
pub struct IdentityClient {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
}

impl IdentityClient {
    pub fn new(transport: Transport, endpoints: Endpoints, app: AppCredentials) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self { transport, endpoints, app })
    }

    /// Revokes a token (a refresh token also revokes its access tokens). Succeeds on HTTP 200.
    pub async fn revoke(&self, token: AnyToken<'_>) -> Result<(), AuthError> {
        let mut form = vec![("token", token.secret())];
        // Salesforce needs no client authentication to revoke; RFC 7009 servers do.
        let basic = if self.app.client_secret.is_some() { self.app.apply(&mut form) } else { None };
        let raw = self.transport.post_form(&self.endpoints.revoke, &form, basic).await?;
        if raw.is_success() {
            return Ok(());
        }
        // An error body names what went wrong; anything else becomes a typed decode error.
        raw.json_object().map(|_| ())
    }

    /// Asks the server about a token. Needs the app's secret.
    pub async fn introspect(&self, token: AnyToken<'_>) -> Result<Introspection, AuthError> {
        let mut form = vec![("token", token.secret()), ("token_type_hint", token.hint())];
        let basic = self.app.apply(&mut form);
        let raw = self.transport.post_form(&self.endpoints.introspect, &form, basic).await?;
        raw.parse("active")
    }

    pub async fn userinfo(&self, token: &Token) -> Result<UserInfo, AuthError> {
        let raw = self.transport.get_bearer(&self.endpoints.userinfo, &token.access_token).await?;
        raw.parse("sub")
    }

    /// Reads the identity URL (`id` of the token response), checked against the URL policy.
    pub async fn identity(&self, token: &Token, identity_url: &Url) -> Result<Identity, AuthError> {
        self.transport.policy.check("identity URL", identity_url)?;
        let raw = self.transport.get_bearer(identity_url, &token.access_token).await?;
        raw.parse("user_id")
    }
}
