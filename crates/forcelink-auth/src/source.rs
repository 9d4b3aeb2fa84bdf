//! The two seams: a [`TokenSource`] gets a token from the authorization server (one per auth
//! method); a [`TokenProvider`] hands valid tokens to the data path (the cache, or a static
//! token) and hears about tokens that stopped working.

use std::fmt;

use futures_util::future::BoxFuture;

use crate::error::AuthError;
use crate::secret::{AccessToken, ClientSecret};
use crate::token::{Token, TokenSet};

/// The auth methods forcelink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// An access token given by the user, never renewed.
    StaticToken,
    /// `grant_type=client_credentials`: the app acts as its Run As user.
    ClientCredentials,
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: a signed assertion for a user.
    JwtBearer,
    /// Authorization code with PKCE, through the browser.
    WebServer,
    /// `grant_type=refresh_token`, with a token from an earlier sign-in.
    RefreshToken,
    /// Salesforce's device flow: a code the user enters on another device.
    Device,
    /// `grant_type=password`: username, password and security token.
    UsernamePassword,
    /// The implicit flow: the token comes back in the redirect's fragment.
    UserAgent,
    /// Token exchange of an access token for an asset token (a JWT).
    AssetToken,
}

impl AuthMethod {
    /// Its name for people, e.g. "JWT bearer".
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::StaticToken => "static token",
            AuthMethod::ClientCredentials => "client credentials",
            AuthMethod::JwtBearer => "JWT bearer",
            AuthMethod::WebServer => "web server",
            AuthMethod::RefreshToken => "refresh token",
            AuthMethod::Device => "device",
            AuthMethod::UsernamePassword => "username-password",
            AuthMethod::UserAgent => "user-agent",
            AuthMethod::AssetToken => "asset token exchange",
        }
    }
}

/// Gets a fresh token set from the authorization server.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// `current` is the last known set (the refresh source reads its refresh token from it).
    fn fetch<'a>(&'a self, current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>>;
    /// The auth method this source speaks.
    fn method(&self) -> AuthMethod;
}

/// Hands out valid tokens; what the REST client holds.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// A token that is valid now, renewed first when needed.
    fn token(&self) -> BoxFuture<'_, Result<Token, AuthError>>;
    /// Reports that `stale` was refused (HTTP 401). Only that exact token is dropped.
    fn invalidate(&self, stale: &AccessToken);
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_id` / `client_secret` form fields (what most Salesforce clients send).
    #[default]
    Body,
    /// HTTP Basic `client_id:client_secret`.
    Basic,
}

/// A connected app's credentials as the client presents them.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// The consumer key (`client_id`).
    pub client_id: String,
    /// The consumer secret (`client_secret`), for flows and endpoints that need it.
    pub client_secret: Option<ClientSecret>,
    /// How the secret is sent. Defaults to [`ClientAuth::Body`].
    pub client_auth: ClientAuth,
}

impl AppCredentials {
    /// Credentials sent as form fields ([`ClientAuth::Body`]).
    pub fn new(client_id: impl Into<String>, client_secret: Option<ClientSecret>) -> Self {
        Self { client_id: client_id.into(), client_secret, client_auth: ClientAuth::Body }
    }
    /// Sends the secret as `auth` says instead.
    pub fn with_client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Adds the client's fields to `form` and returns the Basic credentials, if any.
    pub(crate) fn apply<'a>(&'a self, form: &mut Vec<(&'a str, &'a str)>) -> Option<(&'a str, &'a ClientSecret)> {
        match (&self.client_secret, self.client_auth) {
            (Some(secret), ClientAuth::Basic) => Some((self.client_id.as_str(), secret)),
            (secret, _) => {
                form.push(("client_id", &self.client_id));
                if let Some(s) = secret {
                    form.push(("client_secret", s.secret()));
                }
                None
            }
        }
    }
}
