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
    /// An access token (`token_type_hint=access_token`).
    Access(&'a AccessToken),
    /// A refresh token (`token_type_hint=refresh_token`).
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
    /// Whether the token is valid now; when false, the other fields are usually absent.
    pub active: bool,
    /// The granted scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// The consumer key of the app the token was issued to.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The user's Salesforce username.
    #[serde(default)]
    pub username: Option<String>,
    /// The user's identity URL on Salesforce.
    #[serde(default)]
    pub sub: Option<String>,
    /// The token's kind, e.g. `access_token` or `refresh_token`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Expiry, in seconds since the Unix epoch (see [`Introspection::expires_at`]).
    #[serde(default)]
    pub exp: Option<u64>,
    /// Issue time, in seconds since the Unix epoch.
    #[serde(default)]
    pub iat: Option<u64>,
    /// Not valid before, in seconds since the Unix epoch.
    #[serde(default)]
    pub nbf: Option<u64>,
}

impl Introspection {
    /// `exp` as a time, when sent (and within what the clock can hold).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }
}

/// OpenID Connect userinfo, with the Salesforce claims clients use. Other claims are in `extra`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    /// The subject: the user's identity URL on Salesforce.
    pub sub: String,
    /// The user's record id (`005…`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The org's id (`00D…`).
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The user's Salesforce username.
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// The user's full name.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's email address.
    #[serde(default)]
    pub email: Option<String>,
    /// URL templates of the org's APIs (`rest`, `sobjects`, `query`…), keyed by name.
    #[serde(default)]
    pub urls: Option<serde_json::Map<String, serde_json::Value>>,
    /// Every other claim, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The identity URL's answer. Other fields are in `extra`.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    /// The identity URL itself.
    pub id: String,
    /// The user's record id (`005…`).
    pub user_id: String,
    /// The org's id (`00D…`).
    pub organization_id: String,
    /// The user's Salesforce username.
    pub username: String,
    /// The user's display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The user's email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user is active.
    #[serde(default)]
    pub active: Option<bool>,
    /// The user's type, e.g. `STANDARD`.
    #[serde(default)]
    pub user_type: Option<String>,
    /// URL templates of the org's APIs (`rest`, `sobjects`, `query`…), keyed by name.
    #[serde(default)]
    pub urls: Option<serde_json::Map<String, serde_json::Value>>,
    /// Every other field, as sent.
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
    /// A client for `endpoints`, acting as `app`. Fails when an endpoint breaks the transport's
    /// URL policy.
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

    /// Reads the OpenID Connect userinfo of `token`'s user.
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
