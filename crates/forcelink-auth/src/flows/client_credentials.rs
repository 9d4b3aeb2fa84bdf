//! Client credentials (`grant_type=client_credentials`): the app acts as its Run As user.
//! Salesforce accepts it only on the org's My Domain host.

use futures_util::future::BoxFuture;

use crate::endpoint::{Endpoints, is_generic_login_host};
use crate::error::AuthError;
use crate::flows::token_request;
use crate::source::{AppCredentials, AuthMethod, TokenSource};
use crate::token::TokenSet;
use crate::wire::Transport;

/// A [`TokenSource`] for the client credentials flow: the consumer key and secret are the
/// whole sign-in, and each renewal is a new request (no refresh token).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
    scope: Option<String>,
}

impl ClientCredentials {
    /// Refuses login/test hosts up front (Salesforce would answer "request not supported on this
    /// domain") and an app without a secret.
    pub fn new(transport: Transport, endpoints: Endpoints, app: AppCredentials) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        if is_generic_login_host(&endpoints.token) {
            return Err(AuthError::Config(
                "client credentials must use the org's My Domain URL (https://MyDomain.my.salesforce.com, or \
                 https://MyDomain--Sandbox.sandbox.my.salesforce.com), not login.salesforce.com or test.salesforce.com"
                    .to_owned(),
            ));
        }
        if app.client_secret.is_none() {
            return Err(AuthError::Config("client credentials need the connected app's consumer secret".to_owned()));
        }
        Ok(Self { transport, endpoints, app, scope: None })
    }

    /// Requests specific scopes (Salesforce grants the app's configured scopes without one).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl TokenSource for ClientCredentials {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move {
            let mut form = vec![("grant_type", "client_credentials")];
            if let Some(s) = &self.scope {
                form.push(("scope", s));
            }
            let origin = self.endpoints.token_origin();
            token_request(&self.transport, &self.endpoints, Some(&self.app), form, &origin).await
        })
    }
    fn method(&self) -> AuthMethod {
        AuthMethod::ClientCredentials
    }
}
