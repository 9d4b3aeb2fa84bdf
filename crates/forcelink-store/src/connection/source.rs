//! Building the token source: [`Connection::token_source`] (the method's own flow, or the
//! refresh token), [`Connection::token_cache`] (the one way a connection becomes a
//! [`TokenCache`]) and [`Connection::revoke`].

use std::sync::Arc;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::jwt_bearer::JwtBearer;
use forcelink_auth::flows::password::UsernamePassword;
use forcelink_auth::flows::refresh::RefreshTokenSource;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::identity::{AnyToken, IdentityClient};
use forcelink_auth::secret::{AccessToken, Password, PrivateKeyPem};
use forcelink_auth::{
    AppCredentials, AuthError, AuthMethod, CacheConfig, Endpoints, OAuthErrorKind, TokenCache, TokenSet, TokenSource,
    TokenStore, Transport,
};
use futures_util::future::BoxFuture;
use url::Url;

use super::ConfigError;
use super::method::Method;
use super::resolved::{AuthConfig, Connection};
use super::secret::SecretResolver;

impl Connection {
    /// The source that gets this connection's tokens without a person: the method's own flow,
    /// or the refresh token for connections signed in interactively (`web`, `device`).
    pub fn token_source(
        &self,
        transport: &Transport,
        secrets: &SecretResolver,
    ) -> Result<Arc<dyn TokenSource>, SourceError> {
        let endpoints = self.endpoints();
        let app = self.app_credentials(secrets)?;
        let t = transport.clone();
        Ok(match &self.auth {
            AuthConfig::AccessToken { access_token } => {
                let token = AccessToken::new(secrets.resolve(&self.what("access_token"), access_token)?);
                // resolve() guarantees instance_url for this method.
                let instance = self.instance_url.as_ref().map(Url::as_str).unwrap_or_default();
                Arc::new(StaticToken::new(transport.policy(), instance, token)?)
            }
            AuthConfig::ClientCredentials { scope, .. } => {
                let mut s = ClientCredentials::new(t, endpoints, app.unwrap_or_else(|| AppCredentials::new("", None)))?;
                if let Some(sc) = scope {
                    s = s.with_scope(sc.clone());
                }
                Arc::new(s)
            }
            AuthConfig::Jwt { client_id, username, private_key, .. } => {
                let pem = PrivateKeyPem::new(secrets.resolve(&self.what("private_key"), private_key)?);
                Arc::new(JwtBearer::new(t, endpoints, client_id.clone(), username.clone(), &pem, self.audiences())?)
            }
            AuthConfig::Web { .. } | AuthConfig::Device { .. } => {
                Arc::new(RefreshTokenSource::new(t, endpoints, app.unwrap_or_else(|| AppCredentials::new("", None)))?)
            }
            AuthConfig::Password { username, password, security_token, .. } => {
                let pw = Password::new(secrets.resolve(&self.what("password"), password)?);
                let st = security_token
                    .as_ref()
                    .map(|s| secrets.resolve(&self.what("security_token"), s))
                    .transpose()?
                    .map(forcelink_auth::secret::SecurityToken::new);
                Arc::new(UsernamePassword::new(
                    t,
                    endpoints,
                    app.unwrap_or_else(|| AppCredentials::new("", None)),
                    username.clone(),
                    pw,
                    st,
                )?)
            }
        })
    }
}

impl Connection {
    /// The one way a connection becomes a [`TokenCache`] (the CLI and the broker both use it):
    /// its token source over `store` (one renewal per connection across processes), the
    /// connection's session timeout over `config`, and introspection to learn expiries when the
    /// app's secret is known. A secret reference that cannot be resolved now (an unset
    /// variable, a missing file) fails only when a new token is needed, so a stored valid
    /// token is still used.
    pub fn token_cache(
        &self,
        transport: &Transport,
        secrets: &SecretResolver,
        store: Arc<dyn TokenStore>,
        config: CacheConfig,
    ) -> Result<TokenCache, SourceError> {
        let source: Arc<dyn TokenSource> = match self.token_source(transport, secrets) {
            Ok(s) => s,
            Err(SourceError::Config(e)) => Arc::new(Unresolved { method: self.method(), message: e.0 }),
            Err(e) => return Err(e),
        };
        let config = CacheConfig { session_timeout: self.session_timeout.or(config.session_timeout), ..config };
        let cache = TokenCache::new(self.name.clone(), source, store, transport.clock().clone(), config);
        // Introspection tells the real expiry; Salesforce requires the app's secret for it.
        Ok(match self.app_credentials(secrets) {
            Ok(Some(app)) if app.client_secret.is_some() => {
                cache.with_introspection(IdentityClient::new(transport.clone(), self.endpoints(), app)?)
            }
            _ => cache,
        })
    }
}

impl Connection {
    /// Revokes `set` — its refresh token when it has one (which ends every access token of that
    /// grant), else its access token — at the server that issued it and nowhere else: a set
    /// records its issuer, so settings edited since cannot redirect the token. Sets stored before
    /// issuers were recorded go to this connection's endpoints. `Ok(true)` when revoked or
    /// already unknown to the server; `Ok(false)` for a pasted access token (it belongs to
    /// another session and is only forgotten).
    pub async fn revoke(
        &self,
        transport: &Transport,
        secrets: &SecretResolver,
        set: &TokenSet,
    ) -> Result<bool, AuthError> {
        if self.method() == Method::AccessToken {
            return Ok(false);
        }
        let endpoints = match &set.issuer {
            Some(issuer) => Endpoints::salesforce(issuer),
            None => self.endpoints(),
        };
        let app = self.app_credentials(secrets).unwrap_or_default().unwrap_or_else(|| AppCredentials::new("", None));
        let identity = IdentityClient::new(transport.clone(), endpoints, app)?;
        let token = match &set.refresh_token {
            Some(r) => AnyToken::Refresh(r),
            None => AnyToken::Access(&set.access_token),
        };
        match identity.revoke(token).await {
            Ok(()) => Ok(true),
            // Salesforce answers `invalid_token` for a token it no longer knows (already revoked).
            Err(AuthError::OAuth { error, .. })
                if error.error == "invalid_token" || error.kind() == OAuthErrorKind::ExpiredToken =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

/// The token source of a connection whose secret reference cannot be resolved: it fails, with
/// what to set, only when asked for a token.
#[derive(Debug)]
struct Unresolved {
    method: Method,
    message: String,
}

impl TokenSource for Unresolved {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move { Err(AuthError::Config(self.message.clone())) })
    }
    fn method(&self) -> AuthMethod {
        match self.method {
            Method::AccessToken => AuthMethod::StaticToken,
            Method::ClientCredentials => AuthMethod::ClientCredentials,
            Method::Jwt => AuthMethod::JwtBearer,
            // Signed in interactively; renewed with the refresh token.
            Method::Web | Method::Device => AuthMethod::RefreshToken,
            Method::Password => AuthMethod::UsernamePassword,
        }
    }
}

/// Why a token source could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error(transparent)]
    /// The connection's settings are wrong or a secret cannot be read.
    Config(#[from] ConfigError),
    #[error(transparent)]
    /// The auth crate refused to build the source.
    Auth(#[from] AuthError),
}
