//! What a sign-in yields: the full [`TokenSet`] (kept by the cache and the store) and the
//! [`Token`] handed to the data path, which carries no refresh token.

use std::time::SystemTime;

use url::Url;

use crate::secret::{AccessToken, IdToken, RefreshToken};

/// Where a token's expiry came from. Salesforce sends no `expires_in`, so the cache learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifetimeSource {
    /// The response carried `expires_in` (asset tokens, non-Salesforce servers).
    ExpiresIn,
    /// `exp` from the introspection endpoint.
    Introspection,
    /// The connection's configured session timeout.
    Configured,
    /// Nothing better was known: [`crate::cache::DEFAULT_SESSION_LIFETIME`].
    Default,
    /// Not known yet: the cache fills it in.
    Unknown,
    /// A static token: used until Salesforce refuses it, never renewed.
    Static,
}

/// A token response, parsed and checked.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The session id (`access_token`), sent as `Authorization: Bearer`.
    pub access_token: AccessToken,
    /// Base URL for API calls (checked against the URL policy).
    pub instance_url: Url,
    /// The identity URL `…/id/{org}/{user}` (`id` in the response).
    pub identity_url: Option<Url>,
    /// When the server issued it (`issued_at`, milliseconds on Salesforce), else when received.
    pub issued_at: SystemTime,
    /// When the access token stops working, as far as is known.
    pub expires_at: Option<SystemTime>,
    /// Where `expires_at` came from.
    pub lifetime_source: LifetimeSource,
    /// The refresh token (`refresh_token`), from the flows that grant one.
    pub refresh_token: Option<RefreshToken>,
    /// Granted scopes, space-separated as sent.
    pub scope: Option<String>,
    /// `token_type` as sent; `Bearer` when absent.
    pub token_type: String,
    /// The OpenID Connect ID token (`id_token`), when `openid` was requested.
    pub id_token: Option<IdToken>,
    /// `api_instance_url` of the response, when sent (newer Salesforce responses).
    pub api_instance_url: Option<String>,
    /// The origin of the authorization server that issued this set. Revocation goes only
    /// there, whatever the connection's settings say later; `None` for sets stored by older
    /// versions and for static tokens.
    pub issuer: Option<Url>,
}

impl TokenSet {
    /// The org id (18 characters) from the identity URL.
    pub fn org_id(&self) -> Option<&str> {
        identity_parts(self.identity_url.as_ref()?).map(|(o, _)| o)
    }
    /// The user id (18 characters) from the identity URL.
    pub fn user_id(&self) -> Option<&str> {
        identity_parts(self.identity_url.as_ref()?).map(|(_, u)| u)
    }
    /// The part the data path may hold.
    pub fn token(&self) -> Token {
        Token {
            access_token: self.access_token.clone(),
            instance_url: self.instance_url.clone(),
            expires_at: self.expires_at,
        }
    }
}

fn identity_parts(url: &Url) -> Option<(&str, &str)> {
    let mut segs = url.path_segments()?.rev();
    let user = segs.next()?;
    let org = segs.next()?;
    (segs.next()? == "id").then_some((org, user))
}

/// An access token and where to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The session id, sent as `Authorization: Bearer`.
    pub access_token: AccessToken,
    /// Base URL for API calls.
    pub instance_url: Url,
    /// When the token stops working, as far as is known.
    pub expires_at: Option<SystemTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_url_parts() {
        let set = TokenSet {
            access_token: AccessToken::new("00D!x"),
            instance_url: Url::parse("https://acme.my.salesforce.com").unwrap(),
            identity_url: Some(
                Url::parse("https://login.salesforce.com/id/00D58000000arpqEAA/00558000000yFyDAAU").unwrap(),
            ),
            issued_at: SystemTime::UNIX_EPOCH,
            expires_at: None,
            lifetime_source: LifetimeSource::Unknown,
            refresh_token: Some(RefreshToken::new("5Aep-secret")),
            scope: None,
            token_type: "Bearer".into(),
            id_token: None,
            api_instance_url: None,
            issuer: None,
        };
        assert_eq!(set.org_id(), Some("00D58000000arpqEAA"));
        assert_eq!(set.user_id(), Some("00558000000yFyDAAU"));
        let debug = format!("{set:?}");
        assert!(!debug.contains("00D!x") && !debug.contains("5Aep-secret"), "{debug}");
    }
}
