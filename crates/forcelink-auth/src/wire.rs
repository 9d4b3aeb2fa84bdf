//! The HTTP side of every flow: [`Transport`] (client, clock, URL policy), form posts,
//! defensive body reading, and decoding of token responses exactly as Salesforce sends them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use url::Url;

use crate::body::{self, BodyKind, excerpt};
use crate::clock::{Clock, SystemClock, from_unix_millis};
use crate::endpoint::{UrlPolicy, display_origin};
use crate::error::{AuthError, OAuthError};
use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken, secrets_equal};
use crate::token::{LifetimeSource, TokenSet};

/// Largest response body read from an authorization server.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every flow needs to talk to an authorization server. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: UrlPolicy,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("clock", &self.clock).field("policy", &self.policy).finish()
    }
}

impl Transport {
    /// A transport over `http` (build it without redirects, like [`default_http_client`]),
    /// reading time from `clock` and sending credentials only where `policy` allows.
    pub fn new(http: reqwest::Client, clock: Arc<dyn Clock>, policy: UrlPolicy) -> Self {
        Self { http, clock, policy }
    }

    /// A default client (rustls, 30-second timeout, no redirects: a redirect from a token
    /// endpoint is an error, not something to follow with credentials), the system clock and the
    /// default URL policy.
    pub fn default_client() -> Result<Self, AuthError> {
        Ok(Self::new(default_http_client()?, Arc::new(SystemClock), UrlPolicy::new()))
    }

    /// The clock token lifetimes and polling are measured with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// The policy every URL is checked against before credentials are sent.
    pub fn policy(&self) -> &UrlPolicy {
        &self.policy
    }

    /// POSTs an `application/x-www-form-urlencoded` body.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &ClientSecret)>,
    ) -> Result<RawResponse, AuthError> {
        self.policy.check("endpoint", url)?;
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut req = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret.secret()));
        }
        self.send(url, req).await
    }

    /// GETs with a bearer token.
    pub(crate) async fn get_bearer(&self, url: &Url, token: &AccessToken) -> Result<RawResponse, AuthError> {
        self.policy.check("endpoint", url)?;
        let req =
            self.http.get(url.clone()).bearer_auth(token.secret()).header(reqwest::header::ACCEPT, "application/json");
        self.send(url, req).await
    }

    async fn send(&self, url: &Url, req: reqwest::RequestBuilder) -> Result<RawResponse, AuthError> {
        let endpoint = endpoint_label(url);
        let resp = req.send().await.map_err(|e| transport_error(&endpoint, e))?;
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if resp.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(AuthError::UnexpectedResponse {
                endpoint,
                status,
                kind: BodyKind::TooLarge,
                excerpt: String::new(),
            });
        }
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&endpoint, e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AuthError::UnexpectedResponse {
                    endpoint,
                    status,
                    kind: BodyKind::TooLarge,
                    excerpt: String::new(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse { endpoint, status, content_type, body })
    }
}

/// The client [`Transport::default_client`] uses.
pub fn default_http_client() -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AuthError::Internal(format!("building the HTTP client: {e}")))
}

/// `scheme://host[:port]/path` — never a query string.
pub(crate) fn endpoint_label(url: &Url) -> String {
    format!("{}{}", display_origin(url), url.path())
}

fn transport_error(endpoint: &str, e: reqwest::Error) -> AuthError {
    // The endpoint is named separately; the URL is dropped from the error text.
    let e = e.without_url();
    AuthError::Transport { endpoint: endpoint.to_owned(), message: error_chain(&e), timeout: e.is_timeout() }
}

/// An error with its sources, `: `-joined, without the query string of any URL it quotes
/// (locators and SOQL may carry personal data). Shared with forcelink-client.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    // Drop anything after a '?' in a URL the error may quote.
    if let Some(q) = text.find('?') {
        let end = text[q..].find([' ', ')']).map_or(text.len(), |i| q + i);
        text.replace_range(q..end, "");
    }
    text
}

/// A response as read (bounded), before interpretation.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub endpoint: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn unexpected(&self, kind: BodyKind) -> AuthError {
        AuthError::UnexpectedResponse {
            endpoint: self.endpoint.clone(),
            status: self.status,
            kind,
            excerpt: excerpt(&self.body),
        }
    }

    /// The JSON object of a success, or the OAuth error / typed decode error of a failure.
    pub fn json_object(&self) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
        if let Some(kind) = body::classify(self.content_type.as_deref(), &self.body) {
            return Err(self.unexpected(kind));
        }
        let trimmed = self.body.trim_ascii();
        let value: serde_json::Value = match serde_json::from_slice(trimmed) {
            Ok(v) => v,
            Err(_) if !self.is_success() => {
                // Some servers answer errors form-encoded (`error=…&error_description=…`).
                if let Some(err) = form_error(trimmed, self.status) {
                    return Err(AuthError::OAuth { endpoint: self.endpoint.clone(), error: err });
                }
                return Err(self.unexpected(BodyKind::Malformed));
            }
            Err(_) => return Err(self.unexpected(BodyKind::Malformed)),
        };
        let serde_json::Value::Object(map) = value else {
            return Err(self.unexpected(BodyKind::Malformed));
        };
        if let Some(code) = map.get("error").and_then(|v| v.as_str()) {
            let description = map.get("error_description").and_then(|v| v.as_str()).map(str::to_owned);
            return Err(AuthError::OAuth {
                endpoint: self.endpoint.clone(),
                error: OAuthError::new(code, description, self.status),
            });
        }
        if !self.is_success() {
            return Err(self.unexpected(BodyKind::MissingField("error")));
        }
        Ok(map)
    }

    /// Like [`Self::json_object`], then deserialises into `T`.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self, what: &'static str) -> Result<T, AuthError> {
        let map = self.json_object()?;
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| self.unexpected(BodyKind::MissingField(what)))
    }
}

fn form_error(body: &[u8], status: u16) -> Option<OAuthError> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("error=") {
        return None;
    }
    let mut error = None;
    let mut description = None;
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        match k.as_ref() {
            "error" => error = Some(v.into_owned()),
            "error_description" => description = Some(v.into_owned()),
            _ => {}
        }
    }
    Some(OAuthError::new(error?, description, status))
}

/// The fields of a token response. Unknown fields are ignored; `issued_at` is a string of
/// milliseconds on Salesforce and a number elsewhere.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub instance_url: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub issued_at: Option<serde_json::Value>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub api_instance_url: Option<String>,
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
}

/// How to interpret one token response.
pub(crate) struct Decode<'a> {
    /// The client secret, when known: the `signature` is then verified.
    pub secret: Option<&'a ClientSecret>,
    /// The instance URL to use when the response has none (the token endpoint's origin).
    pub fallback_instance: &'a Url,
    /// The server that answered (recorded as the set's issuer).
    pub issuer: &'a Url,
}

impl Transport {
    /// Decodes a token endpoint answer into a checked [`TokenSet`].
    pub(crate) fn token_set(&self, raw: &RawResponse, how: Decode<'_>) -> Result<TokenSet, AuthError> {
        let map = raw.json_object()?;
        let r: TokenResponse = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| raw.unexpected(BodyKind::MissingField("access_token")))?;
        self.token_set_from(r, how, Some(raw))
    }

    pub(crate) fn token_set_from(
        &self,
        r: TokenResponse,
        how: Decode<'_>,
        raw: Option<&RawResponse>,
    ) -> Result<TokenSet, AuthError> {
        let missing = |field: &'static str| match raw {
            Some(raw) => raw.unexpected(BodyKind::MissingField(field)),
            None => AuthError::Config(format!("the redirect carries no usable `{field}`")),
        };
        if r.access_token.is_empty() {
            return Err(missing("access_token"));
        }
        let now = self.clock.now();
        let issued_at_text = match &r.issued_at {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let issued_at = match &issued_at_text {
            Some(s) => from_unix_millis(s.parse::<u64>().map_err(|_| missing("issued_at"))?),
            None => now,
        };
        // Signature: base64(HMAC-SHA256(client_secret, id + issued_at)) (Salesforce token
        // response docs). Verified whenever the secret is known and the server signed.
        if let (Some(secret), Some(sig), Some(id), Some(at)) = (how.secret, &r.signature, &r.id, &issued_at_text) {
            let expected = identity_signature(secret, id, at);
            if !secrets_equal(&expected, sig) {
                return Err(AuthError::SignatureMismatch);
            }
        }
        let instance_url = match r.instance_url.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => self.policy.check_str("instance_url", s)?,
            None => how.fallback_instance.clone(),
        };
        let identity_url = match r.id.as_deref() {
            Some(s) => Some(Url::parse(s).map_err(|_| missing("id"))?),
            None => None,
        };
        let expires_in = match &r.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        // A lifetime beyond what the clock can hold is no lifetime (it would overflow the time).
        let expires_at = expires_in.and_then(|s| now.checked_add(Duration::from_secs(s)));
        Ok(TokenSet {
            access_token: AccessToken::new(r.access_token),
            instance_url,
            identity_url,
            issued_at,
            expires_at,
            lifetime_source: if expires_at.is_some() { LifetimeSource::ExpiresIn } else { LifetimeSource::Unknown },
            refresh_token: r.refresh_token.filter(|s| !s.is_empty()).map(RefreshToken::new),
            scope: r.scope,
            token_type: r.token_type.unwrap_or_else(|| "Bearer".to_owned()),
            id_token: r.id_token.map(IdToken::new),
            api_instance_url: r.api_instance_url,
            issuer: Some(origin_of(how.issuer)),
        })
    }
}

/// `scheme://host[:port]/` of `url`.
fn origin_of(url: &Url) -> Url {
    let mut u = url.clone();
    u.set_path("");
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// `base64(HMAC-SHA256(client_secret, id || issued_at))`.
pub fn identity_signature(secret: &ClientSecret, id: &str, issued_at: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.secret().as_bytes()) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, html: bool, body: &str) -> RawResponse {
        let content_type = Some(if html { "text/html" } else { "application/json" }.to_owned());
        RawResponse {
            endpoint: "https://x/services/oauth2/token".into(),
            status,
            content_type,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn bad_bodies_become_typed_errors() {
        let e = raw(503, true, "<html><body>Down for maintenance</body></html>").json_object().unwrap_err();
        assert!(matches!(e, AuthError::UnexpectedResponse { status: 503, kind: BodyKind::Html, .. }), "{e:?}");
        let e = raw(200, false, "").json_object().unwrap_err();
        assert!(matches!(e, AuthError::UnexpectedResponse { kind: BodyKind::Empty, .. }));
        let e = raw(200, false, r#"{"access_token":"00D!secretvalue","instance_ur"#).json_object().unwrap_err();
        let AuthError::UnexpectedResponse { kind: BodyKind::Malformed, excerpt, .. } = &e else { panic!("{e:?}") };
        assert!(!excerpt.contains("secretvalue"), "{excerpt}");
        let e =
            raw(400, false, "error=invalid_grant&error_description=authentication+failure").json_object().unwrap_err();
        assert_eq!(e.oauth().map(|o| o.error.as_str()), Some("invalid_grant"));
        let e = raw(500, false, r#"{"unexpected":true}"#).json_object().unwrap_err();
        assert!(matches!(e, AuthError::UnexpectedResponse { status: 500, .. }));
    }

    #[test]
    fn signature_matches_the_documented_construction() {
        // HMAC-SHA256 keyed with the secret over id + issued_at, standard base64 with padding.
        let sig = identity_signature(&ClientSecret::new("secret"), "https://login.salesforce.com/id/00D/005", "1");
        assert_eq!(sig.len(), 44);
        assert!(sig.ends_with('='));
    }
}
