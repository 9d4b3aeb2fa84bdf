//! Refresh token (`grant_type=refresh_token`). Salesforce returns a new refresh token only when
//! the app rotates them; otherwise the current one is kept. Use it through
//! [`crate::cache::TokenCache`], which stores a rotated refresh token by compare-and-swap before
//! the new access token is handed out and never runs two refreshes of one token at once.

use futures_util::future::BoxFuture;

use crate::endpoint::Endpoints;
use crate::error::AuthError;
use crate::flows::token_request;
use crate::source::{AppCredentials, AuthMethod, TokenSource};
use crate::token::TokenSet;
use crate::wire::Transport;

/// A [`TokenSource`] that renews with the refresh token of the current token set.
#[derive(Debug, Clone)]
pub struct RefreshTokenSource {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
}

impl RefreshTokenSource {
    /// A source at `endpoints` as `app`. Fails when an endpoint breaks the transport's URL policy.
    pub fn new(transport: Transport, endpoints: Endpoints, app: AppCredentials) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self { transport, endpoints, app })
    }
}

impl TokenSource for RefreshTokenSource {
    fn fetch<'a>(&'a self, current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move {
            let current = current.ok_or(AuthError::NoRefreshToken)?;
            let refresh = current.refresh_token.as_ref().ok_or(AuthError::NoRefreshToken)?;
            let form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh.secret())];
            let mut set =
                token_request(&self.transport, &self.endpoints, Some(&self.app), form, &current.instance_url).await?;
            if set.refresh_token.is_none() {
                set.refresh_token = current.refresh_token.clone();
            }
            if set.identity_url.is_none() {
                set.identity_url = current.identity_url.clone();
            }
            Ok(set)
        })
    }
    fn method(&self) -> AuthMethod {
        AuthMethod::RefreshToken
    }
}
