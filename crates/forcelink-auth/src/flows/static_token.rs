//! An instance URL and an access token, given by the user (quick tests). It cannot renew:
//! once Salesforce refuses it, every call says to provide a new one.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::BoxFuture;

use crate::endpoint::UrlPolicy;
use crate::error::AuthError;
use crate::secret::AccessToken;
use crate::source::{AuthMethod, TokenProvider, TokenSource};
use crate::token::{LifetimeSource, Token, TokenSet};

/// Both a [`TokenSource`] and a [`TokenProvider`] of one given token, until it is refused.
#[derive(Debug)]
pub struct StaticToken {
    set: TokenSet,
    rejected: AtomicBool,
}

impl StaticToken {
    /// Checks `instance_url` against `policy` (tokens go only to https or loopback).
    pub fn new(policy: &UrlPolicy, instance_url: &str, access_token: AccessToken) -> Result<Self, AuthError> {
        let instance_url = policy.check_str("instance URL", instance_url)?;
        if access_token.secret().trim().is_empty() {
            return Err(AuthError::Config("the access token is empty".to_owned()));
        }
        Ok(Self {
            set: TokenSet {
                access_token,
                instance_url,
                identity_url: None,
                issued_at: std::time::SystemTime::UNIX_EPOCH,
                expires_at: None,
                lifetime_source: LifetimeSource::Static,
                refresh_token: None,
                scope: None,
                token_type: "Bearer".to_owned(),
                id_token: None,
                api_instance_url: None,
                issuer: None,
            },
            rejected: AtomicBool::new(false),
        })
    }
}

impl TokenSource for StaticToken {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move {
            if self.rejected.load(Ordering::Acquire) {
                return Err(AuthError::StaticTokenRejected);
            }
            Ok(self.set.clone())
        })
    }
    fn method(&self) -> AuthMethod {
        AuthMethod::StaticToken
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<Token, AuthError>> {
        Box::pin(async move {
            if self.rejected.load(Ordering::Acquire) {
                return Err(AuthError::StaticTokenRejected);
            }
            Ok(self.set.token())
        })
    }
    fn invalidate(&self, stale: &AccessToken) {
        if stale == &self.set.access_token {
            self.rejected.store(true, Ordering::Release);
        }
    }
}
