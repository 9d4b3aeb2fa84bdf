//! The OAuth 2.0 and identity side of the org: the token endpoint and its grants
//! ([`token`]), the authorize endpoint with login, consent and device pages ([`authorize`]),
//! and revoke, introspect, userinfo, identity URL, discovery and keys ([`identity`]).

pub(crate) mod authorize;
pub(crate) mod identity;
pub(crate) mod token;

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use subtle::ConstantTimeEq;

use crate::state::Shared;

/// An OAuth error: `{"error", "error_description"}`, HTTP 400 unless stated.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, description: Some(description.into()) }
    }
    /// An error with no description (Salesforce sends `authorization_pending` this way).
    pub(crate) fn bare(error: &'static str) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, description: None }
    }
    pub(crate) fn unsupported_grant() -> Self {
        Self::new("unsupported_grant_type", "grant type not supported")
    }
    pub(crate) fn invalid_client_id() -> Self {
        Self::new("invalid_client_id", "client identifier invalid")
    }
    pub(crate) fn invalid_client() -> Self {
        Self::new("invalid_client", "invalid client credentials")
    }
    pub(crate) fn expired_token() -> Self {
        Self::new("invalid_grant", "expired access/refresh token")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.error.into());
        if let Some(d) = self.description {
            body.insert("error_description".into(), d.into());
        }
        json_response(self.status, &serde_json::Value::Object(body))
    }
}

/// A JSON answer with the headers Salesforce's OAuth endpoints send.
pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache,must-revalidate,max-age=0,no-store,private"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Request parameters from the query string and a form-urlencoded or multipart body (the body
/// wins). A JSON body is refused the way Salesforce refuses it.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn extend_urlencoded(&mut self, bytes: &[u8]) {
        for (k, v) in form_urlencoded::parse(bytes) {
            self.0.insert(k.into_owned(), v.into_owned());
        }
    }

    pub(crate) fn from_query(query: Option<&str>) -> Self {
        let mut p = Self::default();
        if let Some(q) = query {
            p.extend_urlencoded(q.as_bytes());
        }
        p
    }

    pub(crate) async fn read(headers: &HeaderMap, query: Option<&str>, body: Bytes) -> Result<Self, OAuthError> {
        let mut params = Self::from_query(query);
        // The media type is case-insensitive, the multipart boundary is not: keep both forms.
        let raw_content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let content_type = raw_content_type.to_ascii_lowercase();
        if body.is_empty() {
            return Ok(params);
        }
        if content_type.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(raw_content_type)
                .map_err(|_| OAuthError::new("invalid_request", "malformed multipart body"))?;
            let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|_| OAuthError::new("invalid_request", "malformed multipart body"))?
            {
                let Some(name) = field.name().map(str::to_owned) else { continue };
                let value =
                    field.text().await.map_err(|_| OAuthError::new("invalid_request", "malformed multipart body"))?;
                params.0.insert(name, value);
            }
            Ok(params)
        } else if content_type.starts_with("application/x-www-form-urlencoded") || content_type.is_empty() {
            params.extend_urlencoded(&body);
            Ok(params)
        } else {
            // Salesforce answers a JSON (or any non-form) token request this way.
            Err(OAuthError::unsupported_grant())
        }
    }
}

/// Client id and secret from HTTP Basic or the form body (Basic wins).
#[derive(Debug)]
pub(crate) struct ClientCredentials {
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
}

impl ClientCredentials {
    pub(crate) fn from_request(headers: &HeaderMap, params: &Params) -> Self {
        if let Some((id, secret)) = basic_auth(headers) {
            return Self { client_id: Some(id), client_secret: Some(secret) };
        }
        Self {
            client_id: params.get("client_id").map(str::to_owned),
            client_secret: params.get("client_secret").map(str::to_owned),
        }
    }
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// Secret comparison that takes the same time wherever the strings differ.
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Which kind of client authentication an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretPolicy {
    Required,
    /// Checked when present, but a public client may leave it out.
    Optional,
}

/// Finds the app and checks its secret.
pub(crate) fn authenticate_client(
    pg: &Shared,
    creds: &ClientCredentials,
    policy: SecretPolicy,
) -> Result<usize, OAuthError> {
    let id = creds.client_id.as_deref().ok_or_else(OAuthError::invalid_client_id)?;
    let app = pg.app_by_client_id(id).ok_or_else(OAuthError::invalid_client_id)?;
    match (&creds.client_secret, policy) {
        (Some(secret), _) if !secrets_equal(secret, &pg.apps[app].seed.client_secret) => {
            Err(OAuthError::invalid_client())
        }
        (None, SecretPolicy::Required) => Err(OAuthError::invalid_client()),
        _ => Ok(app),
    }
}

/// Splits a space-separated scope parameter.
pub(crate) fn split_scopes(value: Option<&str>) -> Vec<String> {
    value.unwrap_or("").split([' ', '+', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The scopes an interactive grant gets: all the app's when none are asked for, else exactly
/// those asked for, each of which the app must allow.
pub(crate) fn requested_scopes(app_scopes: &[String], requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let asked = split_scopes(requested);
    if asked.is_empty() {
        return Ok(app_scopes.to_vec());
    }
    if let Some(bad) = asked.iter().find(|s| !app_scopes.contains(s)) {
        return Err(OAuthError::new("invalid_scope", format!("the requested scope is not allowed: {bad}")));
    }
    Ok(asked)
}

/// Scopes of grants that never carry a refresh token (client credentials, JWT, password).
pub(crate) fn non_interactive_scopes(app_scopes: &[String]) -> Vec<String> {
    app_scopes.iter().filter(|s| *s != "refresh_token" && *s != "offline_access").cloned().collect()
}
