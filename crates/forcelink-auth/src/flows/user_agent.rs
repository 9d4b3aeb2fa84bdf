//! User-agent (implicit) flow: legacy; the token comes back in the redirect's URL fragment.
//! It works, and warns that Salesforce is retiring it.

use std::sync::atomic::AtomicBool;

use url::Url;

use crate::endpoint::Endpoints;
use crate::error::{AuthError, OAuthError};
use crate::flows::{random_urlsafe, warn_legacy};
use crate::secret::secrets_equal;
use crate::token::TokenSet;
use crate::wire::{Decode, TokenResponse, Transport};

/// The user-agent flow of one app: build the authorization URL, then parse the redirect.
#[derive(Debug)]
pub struct UserAgentFlow {
    transport: Transport,
    endpoints: Endpoints,
    client_id: String,
    redirect_uri: Url,
    scope: Option<String>,
    warned: AtomicBool,
}

impl UserAgentFlow {
    /// A flow for the app `client_id` that redirects to `redirect_uri` (on the app's Callback
    /// URL list). Fails when an endpoint breaks the transport's URL policy.
    pub fn new(
        transport: Transport,
        endpoints: Endpoints,
        client_id: impl Into<String>,
        redirect_uri: Url,
    ) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self {
            transport,
            endpoints,
            client_id: client_id.into(),
            redirect_uri,
            scope: None,
            warned: AtomicBool::new(false),
        })
    }
    /// Requests specific scopes (space-separated); without, the app's configured scopes.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The authorization URL (`response_type=token`) and the `state` to expect back.
    pub fn authorization_url(&self) -> (Url, String) {
        warn_legacy(&self.warned, "user-agent");
        let state = random_urlsafe(24);
        let mut url = self.endpoints.authorize.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "token")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("state", &state);
            if let Some(s) = &self.scope {
                q.append_pair("scope", s);
            }
        }
        (url, state)
    }

    /// Parses the redirect (`…#access_token=…&instance_url=…`). No client secret is involved, so
    /// the `signature` cannot be checked here.
    pub fn parse_redirect(&self, redirect: &Url, expected_state: &str) -> Result<TokenSet, AuthError> {
        let fragment = redirect.fragment().unwrap_or("");
        let mut map = serde_json::Map::new();
        for (k, v) in form_urlencoded::parse(fragment.as_bytes()) {
            map.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
        }
        // Errors may come in the fragment or the query.
        for (k, v) in redirect.query_pairs() {
            map.entry(k.into_owned()).or_insert(serde_json::Value::String(v.into_owned()));
        }
        let get = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        if !secrets_equal(get("state").as_deref().unwrap_or(""), expected_state) {
            return Err(AuthError::StateMismatch);
        }
        if let Some(error) = get("error") {
            return Err(AuthError::OAuth {
                endpoint: "authorization redirect".to_owned(),
                error: OAuthError::new(error, get("error_description"), 0),
            });
        }
        let response: TokenResponse = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| AuthError::Config("the redirect carries no access_token".to_owned()))?;
        let origin = self.endpoints.token_origin();
        self.transport.token_set_from(
            response,
            Decode { secret: None, fallback_instance: &origin, issuer: &origin },
            None,
        )
    }
}
