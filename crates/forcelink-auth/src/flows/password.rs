//! Username-password (`grant_type=password`): legacy. It works, and warns that Salesforce is
//! retiring it. The password is sent with the security token appended.

use std::sync::atomic::AtomicBool;

use futures_util::future::BoxFuture;

use crate::endpoint::Endpoints;
use crate::error::AuthError;
use crate::flows::{token_request, warn_legacy};
use crate::secret::{Password, SecurityToken};
use crate::source::{AppCredentials, AuthMethod, TokenSource};
use crate::token::TokenSet;
use crate::wire::Transport;

/// A [`TokenSource`] for the username-password flow (legacy; warns once per instance).
#[derive(Debug)]
pub struct UsernamePassword {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
    username: String,
    password: Password,
    security_token: Option<SecurityToken>,
    warned: AtomicBool,
}

impl UsernamePassword {
    /// A source signing in as `username` through `app`; `security_token` is appended to the
    /// password when given. Fails when an endpoint breaks the transport's URL policy.
    pub fn new(
        transport: Transport,
        endpoints: Endpoints,
        app: AppCredentials,
        username: impl Into<String>,
        password: Password,
        security_token: Option<SecurityToken>,
    ) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self {
            transport,
            endpoints,
            app,
            username: username.into(),
            password,
            security_token,
            warned: AtomicBool::new(false),
        })
    }
}

impl TokenSource for UsernamePassword {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move {
            warn_legacy(&self.warned, "username-password");
            let combined = match &self.security_token {
                Some(t) => format!("{}{}", self.password.secret(), t.secret()),
                None => self.password.secret().to_owned(),
            };
            let form = vec![("grant_type", "password"), ("username", self.username.as_str()), ("password", &combined)];
            let origin = self.endpoints.token_origin();
            token_request(&self.transport, &self.endpoints, Some(&self.app), form, &origin).await
        })
    }
    fn method(&self) -> AuthMethod {
        AuthMethod::UsernamePassword
    }
}
