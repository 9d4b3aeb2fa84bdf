//! What a valid connection is: [`Connection`] (endpoints, JWT audiences, the app's
//! credentials) and its [`AuthConfig`], exactly what its auth method needs.

use std::time::Duration;

use forcelink_auth::secret::ClientSecret;
use forcelink_auth::{AppCredentials, AuthError, ConnectionId, Endpoints, UrlPolicy};
use url::Url;

use super::ConfigError;
use super::method::{Environment, Method};
use super::secret::{SecretRef, SecretResolver};

/// What an auth method needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthConfig {
    AccessToken {
        access_token: SecretRef,
    },
    ClientCredentials {
        client_id: String,
        client_secret: SecretRef,
        scope: Option<String>,
    },
    Jwt {
        client_id: String,
        username: String,
        private_key: SecretRef,
        /// Not needed to sign in; when given, tokens are introspected to learn their expiry.
        client_secret: Option<SecretRef>,
    },
    Web {
        client_id: String,
        client_secret: Option<SecretRef>,
        scope: Option<String>,
        callback_url: Url,
    },
    Device {
        client_id: String,
        client_secret: Option<SecretRef>,
        scope: Option<String>,
    },
    Password {
        client_id: String,
        client_secret: Option<SecretRef>,
        username: String,
        password: SecretRef,
        security_token: Option<SecretRef>,
    },
}

impl AuthConfig {
    pub fn method(&self) -> Method {
        match self {
            AuthConfig::AccessToken { .. } => Method::AccessToken,
            AuthConfig::ClientCredentials { .. } => Method::ClientCredentials,
            AuthConfig::Jwt { .. } => Method::Jwt,
            AuthConfig::Web { .. } => Method::Web,
            AuthConfig::Device { .. } => Method::Device,
            AuthConfig::Password { .. } => Method::Password,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            AuthConfig::AccessToken { .. } => None,
            AuthConfig::ClientCredentials { client_id, .. }
            | AuthConfig::Jwt { client_id, .. }
            | AuthConfig::Web { client_id, .. }
            | AuthConfig::Device { client_id, .. }
            | AuthConfig::Password { client_id, .. } => Some(client_id),
        }
    }

    pub fn client_secret(&self) -> Option<&SecretRef> {
        match self {
            AuthConfig::ClientCredentials { client_secret, .. } => Some(client_secret),
            AuthConfig::Web { client_secret, .. }
            | AuthConfig::Device { client_secret, .. }
            | AuthConfig::Jwt { client_secret, .. }
            | AuthConfig::Password { client_secret, .. } => client_secret.as_ref(),
            AuthConfig::AccessToken { .. } => None,
        }
    }

    pub fn scope(&self) -> Option<&str> {
        match self {
            AuthConfig::ClientCredentials { scope, .. }
            | AuthConfig::Web { scope, .. }
            | AuthConfig::Device { scope, .. } => scope.as_deref(),
            _ => None,
        }
    }
}

/// A validated connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub name: ConnectionId,
    pub environment: Environment,
    pub login_url: Url,
    pub token_url: Option<Url>,
    pub audience: Option<String>,
    pub instance_url: Option<Url>,
    pub api_version: String,
    pub session_timeout: Option<Duration>,
    pub auth: AuthConfig,
}

impl Connection {
    pub fn method(&self) -> Method {
        self.auth.method()
    }

    /// Checks every URL this connection sends secrets or tokens to — login, token and instance
    /// URL, and the JWT audience — against `policy` (https Salesforce hosts, or origins the
    /// operator allows).
    pub fn check_hosts(&self, policy: &UrlPolicy) -> Result<(), ConfigError> {
        let at = |e: AuthError| ConfigError::new(format!("connection {}: {e}", self.name));
        policy.check("login_url", &self.login_url).map_err(at)?;
        if let Some(u) = &self.token_url {
            policy.check("token_url", u).map_err(at)?;
        }
        if let Some(u) = &self.instance_url {
            policy.check("instance_url", u).map_err(at)?;
        }
        if let Some(a) = &self.audience {
            policy.check_str("audience", a).map_err(at)?;
        }
        Ok(())
    }

    /// The authorize, revoke, introspect and userinfo endpoints (on the login URL).
    pub fn login_endpoints(&self) -> Endpoints {
        Endpoints::salesforce(&self.login_url)
    }

    /// The endpoints with the token endpoint on `token_url` when it is set.
    pub fn endpoints(&self) -> Endpoints {
        let mut e = self.login_endpoints();
        if let Some(t) = &self.token_url {
            let on_token_host = Endpoints::salesforce(t);
            e.token = on_token_host.token;
            e.revoke = on_token_host.revoke;
            e.introspect = on_token_host.introspect;
            e.userinfo = on_token_host.userinfo;
        }
        e
    }

    /// JWT audiences in the order to try: the configured one, else the login URL then the token
    /// URL (the auth crate moves on when Salesforce says the audience is wrong).
    pub fn audiences(&self) -> Vec<String> {
        if let Some(a) = &self.audience {
            return vec![a.clone()];
        }
        let origin = |u: &Url| u.origin().ascii_serialization();
        let mut out = vec![origin(&self.login_url)];
        if let Some(t) = &self.token_url
            && origin(t) != out[0]
        {
            out.push(origin(t));
        }
        out
    }

    /// The app's credentials (client id and, when configured, the secret).
    pub fn app_credentials(&self, secrets: &SecretResolver) -> Result<Option<AppCredentials>, ConfigError> {
        let Some(id) = self.auth.client_id() else { return Ok(None) };
        let secret = self
            .auth
            .client_secret()
            .map(|s| secrets.resolve(&self.what("client_secret"), s).map(ClientSecret::new))
            .transpose()?;
        Ok(Some(AppCredentials::new(id, secret)))
    }

    pub(super) fn what(&self, field: &str) -> String {
        format!("{field} of connection {}", self.name)
    }
}
