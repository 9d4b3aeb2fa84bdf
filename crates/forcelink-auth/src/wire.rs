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

use crate::clock::{Clock, SystemClock, from_unix_millis};
use crate::endpoint::{UrlPolicy, display_origin};
use crate::error::{AuthError, BodyKind, OAuthError};
use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken, secrets_equal};
use crate::token::{LifetimeSource, TokenSet};

/// Largest response body read from an authorization server.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest excerpt of a bad body kept in an error.
pub const EXCERPT_CHARS: usize = 300;

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
    pub fn new(http: reqwest::Client, clock: Arc<dyn Clock>, policy: UrlPolicy) -> Self {
        Self { http, clock, policy }
    }

    /// A default client (rustls, 30-second timeout, no redirects: a redirect from a token
    /// endpoint is an error, not something to follow with credentials), the system clock and the
    /// default URL policy.
    pub fn default_client() -> Result<Self, AuthError> {
        Ok(Self::new(default_http_client()?, Arc::new(SystemClock), UrlPolicy::new()))
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
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
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
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
        Ok(RawResponse { endpoint, status, html, body })
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
    pub html: bool,
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
        let trimmed = self.body.trim_ascii();
        if self.html || trimmed.starts_with(b"<") {
            return Err(self.unexpected(BodyKind::Html));
        }
        if trimmed.is_empty() {
            return Err(self.unexpected(BodyKind::Empty));
        }
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

/// Keys whose values are secrets wherever they appear in a body.
const SECRET_KEYS: [&str; 8] =
    ["access_token", "refresh_token", "id_token", "client_secret", "device_code", "signature", "assertion", "password"];

/// A shortened body with secret values replaced, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let short: String = text.chars().take(EXCERPT_CHARS).collect();
    let mut out = redact(&short);
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// Replaces the values of [`SECRET_KEYS`] in JSON (`"key": "value"`) and form (`key=value`)
/// text, including a value cut off by truncation.
pub(crate) fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    for key in SECRET_KEYS {
        out = redact_json_key(&out, key);
        out = redact_form_key(&out, key);
    }
    out
}

/// Replaces the string value of every `"key": "value"` in JSON text with `"[redacted]"`, also a
/// value cut off by truncation (shared with forcelink-client's error excerpts).
pub fn redact_json_key(text: &str, key: &str) -> String {
    let needle = format!("\"{key}\"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(&needle) {
        let after_key = pos + needle.len();
        out.push_str(&rest[..after_key]);
        let tail = &rest[after_key..];
        let colon = tail.len() - tail.trim_start().len();
        let t = tail.trim_start();
        if let Some(t2) = t.strip_prefix(':') {
            let ws = t2.len() - t2.trim_start().len();
            let v = t2.trim_start();
            if let Some(inner) = v.strip_prefix('"') {
                out.push_str(&tail[..colon + 1 + ws]);
                out.push_str("\"[redacted]\"");
                let mut end = inner.len();
                let mut escaped = false;
                for (i, c) in inner.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i + 1;
                        break;
                    }
                }
                rest = &inner[end.min(inner.len())..];
                continue;
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn redact_form_key(text: &str, key: &str) -> String {
    let needle = format!("{key}=");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(&needle) {
        let boundary_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b'&' | b'?' | b'#' | b' ' | b'\n');
        out.push_str(&rest[..pos + needle.len()]);
        rest = &rest[pos + needle.len()..];
        if boundary_ok {
            out.push_str("[redacted]");
            let end = rest.find(['&', ' ', '"', '\n']).unwrap_or(rest.len());
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
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
        Ok(TokenSet {
            access_token: AccessToken::new(r.access_token),
            instance_url,
            identity_url,
            issued_at,
            expires_at: expires_in.map(|s| now + Duration::from_secs(s)),
            lifetime_source: if expires_in.is_some() { LifetimeSource::ExpiresIn } else { LifetimeSource::Unknown },
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
        RawResponse { endpoint: "https://x/services/oauth2/token".into(), status, html, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn redacts_json_and_form_and_truncated_values() {
        let t = redact(r#"{"access_token":"00D!abc","x":1,"refresh_token" : "5Aep\"q","signature":"sig"#);
        assert!(!t.contains("00D!abc") && !t.contains("5Aep") && !t.contains("sig\""), "{t}");
        assert!(t.contains("\"x\":1"), "{t}");
        let f = redact("#access_token=00D!abc&instance_url=https://x&refresh_token=5Aep");
        assert!(!f.contains("00D!abc") && !f.contains("5Aep"), "{f}");
        assert!(f.contains("instance_url=https://x"), "{f}");
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
