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
    /// An access token obtained elsewhere, used until Salesforce refuses it.
    AccessToken {
        /// The token (a value, or where to read it).
        access_token: SecretRef,
    },
    /// The client credentials flow.
    ClientCredentials {
        /// The connected app's consumer key.
        client_id: String,
        /// The connected app's consumer secret.
        client_secret: SecretRef,
        /// Scopes to ask for; the app's when `None`.
        scope: Option<String>,
    },
    /// The JWT bearer flow.
    Jwt {
        /// The connected app's consumer key.
        client_id: String,
        /// The user the app acts as.
        username: String,
        /// The key whose certificate is in the app (PEM).
        private_key: SecretRef,
        /// Not needed to sign in; when given, tokens are introspected to learn their expiry.
        client_secret: Option<SecretRef>,
    },
    /// The web server flow at login; the refresh token afterwards.
    Web {
        /// The connected app's consumer key.
        client_id: String,
        /// The consumer secret; `None` for a public client.
        client_secret: Option<SecretRef>,
        /// Scopes to ask for; `api refresh_token` when `None`.
        scope: Option<String>,
        /// The loopback redirect URI registered in the app.
        callback_url: Url,
    },
    /// The device flow at login; the refresh token afterwards.
    Device {
        /// The connected app's consumer key.
        client_id: String,
        /// The consumer secret, when the app has one.
        client_secret: Option<SecretRef>,
        /// Scopes to ask for.
        scope: Option<String>,
    },
    /// The username-password flow (legacy).
    Password {
        /// The connected app's consumer key.
        client_id: String,
        /// The consumer secret, when the app has one.
        client_secret: Option<SecretRef>,
        /// The user signing in.
        username: String,
        /// The user's password.
        password: SecretRef,
        /// Appended to the password when the org asks for one.
        security_token: Option<SecretRef>,
    },
}

impl AuthConfig {
    /// The method this configuration is for.
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

    /// The connected app's consumer key (`None` for an access token).
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

    /// The consumer secret, when the method has one.
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

    /// The scopes to ask for, for the methods that take them.
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
    /// Its name, the key of everything stored.
    pub name: ConnectionId,
    /// Where the org signs users in.
    pub environment: Environment,
    /// The authorize endpoint's base URL (the environment's preset, or `login_url`).
    pub login_url: Url,
    /// The token endpoint's base URL when it differs from the login URL.
    pub token_url: Option<Url>,
    /// The JWT audience when set; else [`Connection::audiences`] tries the login then the token URL.
    pub audience: Option<String>,
    /// The org's instance (an origin), when known before the first token.
    pub instance_url: Option<Url>,
    /// The REST API version (`64.0`).
    pub api_version: String,
    /// The org's session timeout: the lifetime of tokens whose expiry is not told.
    pub session_timeout: Option<Duration>,
    /// What the auth method needs.
    pub auth: AuthConfig,
    /// The Pub/Sub API's `host:port` when the connection names one (checked and normalised);
    /// see [`Connection::pubsub_endpoint_or_default`].
    pub pubsub_endpoint: Option<String>,
}

impl Connection {
    /// The auth method.
    pub fn method(&self) -> Method {
        self.auth.method()
    }

    /// Where the Pub/Sub API is: the connection's endpoint, else
    /// [`DEFAULT_PUBSUB_ENDPOINT`](super::DEFAULT_PUBSUB_ENDPOINT).
    pub fn pubsub_endpoint_or_default(&self) -> &str {
        self.pubsub_endpoint.as_deref().unwrap_or(super::DEFAULT_PUBSUB_ENDPOINT)
    }

    /// Checks every URL this connection sends secrets or tokens to — login, token and instance
    /// URL, the JWT audience, and a Pub/Sub endpoint it names — against `policy` (https
    /// Salesforce hosts, or origins the operator allows). The Pub/Sub endpoint is checked as
    /// `scheme://host:port` with the scheme of the instance URL (else the login URL): the client
    /// speaks TLS to it for an https org, HTTP/2 in clear for an allowed http one (a playground).
    pub fn check_hosts(&self, policy: &UrlPolicy) -> Result<(), ConfigError> {
        let at = |e: AuthError| ConfigError::new(format!("connection {}: {e}", self.name));
        if let Some(endpoint) = &self.pubsub_endpoint {
            let scheme = self.instance_url.as_ref().unwrap_or(&self.login_url).scheme();
            policy.check_str("pubsub_endpoint", &format!("{scheme}://{endpoint}")).map_err(at)?;
        }
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
