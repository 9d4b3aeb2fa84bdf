//! Web server flow (authorization code) with PKCE S256: build the authorization URL with
//! `state` and a code challenge, check the callback, exchange the code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;
use url::Url;

use crate::endpoint::Endpoints;
use crate::error::{AuthError, OAuthError};
use crate::flows::{random_urlsafe, token_request};
use crate::secret::{AuthorizationCode, PkceCodeVerifier, secrets_equal};
use crate::source::AppCredentials;
use crate::token::TokenSet;
use crate::wire::Transport;

/// Optional `prompt` values of Salesforce's authorize endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// `login`: ask for credentials even when a session exists.
    Login,
    /// `consent`: ask for approval even when the app is approved.
    Consent,
    /// `select_account`: let the user pick among signed-in accounts.
    SelectAccount,
}

/// The web server flow of one app and redirect URI: [`WebServerFlow::authorization_request`],
/// then [`WebServerFlow::exchange`] with the code from the callback.
#[derive(Debug, Clone)]
pub struct WebServerFlow {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
    redirect_uri: Url,
    scope: Option<String>,
    prompt: Option<Prompt>,
    login_hint: Option<String>,
}

/// One pending authorization: send the user to `url`, keep the rest for the callback.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The authorize URL to open in the user's browser.
    pub url: Url,
    /// The random `state` the callback must carry back.
    pub state: String,
    /// The `redirect_uri` sent, which the code exchange must repeat.
    pub redirect_uri: Url,
    verifier: PkceCodeVerifier,
}

impl AuthorizationRequest {
    /// Checks a callback URL (or just its query) for this request: the state must match, an
    /// `error` becomes an [`AuthError::OAuth`], else the code is returned.
    pub fn code_from_callback(&self, callback: &Url) -> Result<AuthorizationCode, AuthError> {
        code_from_pairs(&self.state, callback.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())))
    }

    /// The PKCE code verifier the exchange sends (`code_verifier`).
    pub fn verifier(&self) -> &PkceCodeVerifier {
        &self.verifier
    }

    /// A request saved elsewhere and read back (a broker keeps pending authorizations in its
    /// store, so the callback may reach another replica than the click).
    pub fn resume(url: Url, state: String, redirect_uri: Url, verifier: PkceCodeVerifier) -> Self {
        Self { url, state, redirect_uri, verifier }
    }
}

pub(crate) fn code_from_pairs(
    expected_state: &str,
    pairs: impl Iterator<Item = (String, String)>,
) -> Result<AuthorizationCode, AuthError> {
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (k, v) in pairs {
        match k.as_str() {
            "code" => code = Some(v),
            "state" => state = Some(v),
            "error" => error = Some(v),
            "error_description" => description = Some(v),
            _ => {}
        }
    }
    if !secrets_equal(state.as_deref().unwrap_or(""), expected_state) {
        return Err(AuthError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(AuthError::OAuth {
            endpoint: "authorization callback".to_owned(),
            error: OAuthError::new(error, description, 0),
        });
    }
    code.filter(|c| !c.is_empty())
        .map(AuthorizationCode::new)
        .ok_or_else(|| AuthError::Config("the callback carries no authorization code".to_owned()))
}

impl WebServerFlow {
    /// A flow for `app` that redirects to `redirect_uri` (on the app's Callback URL list).
    /// Fails when an endpoint breaks the transport's URL policy.
    pub fn new(
        transport: Transport,
        endpoints: Endpoints,
        app: AppCredentials,
        redirect_uri: Url,
    ) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self { transport, endpoints, app, redirect_uri, scope: None, prompt: None, login_hint: None })
    }
    /// Space-separated scopes, e.g. `"api refresh_token"` (a refresh token needs
    /// `refresh_token` or `offline_access`).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Sends `prompt` with the authorization request.
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }
    /// Fills in the username on Salesforce's login page (`login_hint`).
    pub fn with_login_hint(mut self, username: impl Into<String>) -> Self {
        self.login_hint = Some(username.into());
        self
    }
    /// The redirect URI this flow sends.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// A new authorization URL with a random `state` and a PKCE S256 challenge.
    pub fn authorization_request(&self) -> AuthorizationRequest {
        // 96 random bytes → a 128-character verifier (RFC 7636 allows 43–128).
        let verifier = PkceCodeVerifier::new(random_urlsafe(96));
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.secret().as_bytes()));
        let state = random_urlsafe(24);
        let mut url = self.endpoints.authorize.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.app.client_id)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(s) = &self.scope {
                q.append_pair("scope", s);
            }
            if let Some(p) = self.prompt {
                q.append_pair(
                    "prompt",
                    match p {
                        Prompt::Login => "login",
                        Prompt::Consent => "consent",
                        Prompt::SelectAccount => "select_account",
                    },
                );
            }
            if let Some(h) = &self.login_hint {
                q.append_pair("login_hint", h);
            }
        }
        AuthorizationRequest { url, state, redirect_uri: self.redirect_uri.clone(), verifier }
    }

    /// Exchanges the code for tokens.
    pub async fn exchange(
        &self,
        request: &AuthorizationRequest,
        code: &AuthorizationCode,
    ) -> Result<TokenSet, AuthError> {
        let form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", request.verifier.secret()),
        ];
        let origin = self.endpoints.token_origin();
        token_request(&self.transport, &self.endpoints, Some(&self.app), form, &origin).await
    }
}
