//! Connect links: a workflow tool (or an admin) asks for a one-time, short-lived URL that a
//! person opens — without an admin key — to sign a connection in with the web-server flow (PKCE,
//! state); the browser then goes back to the tool's `return_url` with the outcome, and
//! `connection.created` (or `.updated`, then `.recovered` when it was in trouble) follows.
//!
//! `POST /v1/connect-sessions` (admin scope on the connection) keeps the link's settings sealed in
//! the store under a random token for [`CONNECT_SESSION_TTL`]; `GET /connect/{token}` shows what
//! the link will do and a Continue button (a GET alone never uses the link up, so a chat tool's
//! link preview cannot spend it); `POST /connect/{token}` takes the link (once, on any replica)
//! and sends the browser to the org. `return_url` must be an origin the operator allowed
//! (`--allow-origin`) or the broker's own.

use askama::Template;
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use forcelink_store::connection::validate_name;
use forcelink_store::{AuditAction, ConnectionSpec, EphemeralKind, Method, Scope};
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::access::Caller;
use crate::error::ErrorResponse;
use crate::ids::random_id;
use crate::page::{html, message, store_down};
use crate::state::{BrokerState, CONNECT_SESSION_TTL};
use crate::time::rfc3339;

/// `POST /v1/connect-sessions`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConnectSession {
    /// The connection to create (or sign in again).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub connection: String,
    /// `production`, `sandbox` or `custom` (then `login_url` is required).
    #[schema(pattern = "^(production|sandbox|custom)$")]
    pub environment: String,
    /// A My Domain login URL (or an allowed origin).
    #[serde(default)]
    pub login_url: Option<String>,
    /// The connected app's consumer key.
    #[schema(min_length = 1)]
    pub client_id: String,
    /// The consumer secret, when the app requires one for the web-server flow.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes to ask for (default `api refresh_token`).
    #[serde(default)]
    pub scopes: Option<String>,
    /// Where the browser goes afterwards, with `connection` and `status` added to the query.
    #[schema(format = "uri")]
    pub return_url: String,
}

/// The link to hand to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ConnectSessionAnswer {
    /// Opens the sign-in; works once, until `expires_at`.
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// What the store keeps of a link (sealed: the settings may hold the app's secret).
#[derive(Serialize, Deserialize)]
struct ConnectSession {
    connection: String,
    spec: ConnectionSpec,
    return_url: String,
    actor: String,
}

/// Checks a `return_url`: an allowed origin or the broker's own, no credentials.
fn check_return_url(state: &BrokerState, raw: &str) -> Result<Url, ErrorResponse> {
    let url = Url::parse(raw.trim()).map_err(|e| ErrorResponse::bad_request(format!("return_url: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() || !matches!(url.scheme(), "http" | "https") {
        return Err(ErrorResponse::bad_request("return_url must be an http(s) URL without credentials"));
    }
    let origin = url.origin().ascii_serialization();
    let own = state.public_url().map(|u| u.origin().ascii_serialization());
    // An origin the operator allowed (not merely a Salesforce host: a Site there could be anyone's).
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let allowed = state.transport().policy().check("return_url", &url).is_ok()
        && !forcelink_auth::endpoint::is_salesforce_host(&host);
    if own.as_deref() != Some(origin.as_str()) && !allowed {
        return Err(ErrorResponse::bad_request(format!(
            "return_url: {origin} is not an origin the operator allowed; start the broker with --allow-origin {origin}"
        )));
    }
    Ok(url)
}

/// The connection settings of a link.
fn spec_of(new: &NewConnectSession) -> Result<ConnectionSpec, ErrorResponse> {
    let mut spec = ConnectionSpec { method: Some(Method::Web), ..ConnectionSpec::default() };
    let mut set = |field: &str, value: &str| {
        spec.set_field(field, value).map_err(|e| ErrorResponse::bad_request(format!("{field}: {}", e.0)))
    };
    set("environment", &new.environment)?;
    set("client_id", &new.client_id)?;
    if let Some(v) = new.login_url.as_deref().filter(|v| !v.trim().is_empty()) {
        set("login_url", v)?;
    }
    if let Some(v) = new.client_secret.as_deref().filter(|v| !v.trim().is_empty()) {
        if v.starts_with("env:") || v.starts_with("file:") {
            return Err(ErrorResponse::bad_request("client_secret: the broker takes secret values only"));
        }
        set("client_secret", v)?;
    }
    if let Some(v) = new.scopes.as_deref().filter(|v| !v.trim().is_empty()) {
        set("scope", v)?;
    }
    Ok(spec)
}

/// `POST /v1/connect-sessions`.
pub(crate) async fn create_session(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let new: NewConnectSession = serde_json::from_value(crate::api::parse_json(&body)?)
        .map_err(|e| ErrorResponse::bad_request(format!("not a connect session: {e}")))?;
    validate_name(&new.connection).map_err(|e| ErrorResponse::bad_request(e.0))?;
    caller.require(&state, Scope::Admin, &new.connection)?;
    let return_url = check_return_url(&state, &new.return_url)?;
    let spec = spec_of(&new)?;
    crate::api::validate(&state, &new.connection, &spec)?;
    let Some(base) = state.public_url() else {
        return Err(ErrorResponse::conflict("connect links need the broker's public URL: start it with --public-url"));
    };
    let token = random_id(32);
    let expires_at = state.now() + CONNECT_SESSION_TTL;
    let session = ConnectSession {
        connection: new.connection.clone(),
        spec,
        return_url: return_url.to_string(),
        actor: caller.actor(),
    };
    let value = serde_json::to_vec(&session).map_err(|e| ErrorResponse::upstream(e.to_string()))?;
    state.store().put_ephemeral(EphemeralKind::ConnectSession, &token, &value, expires_at).await?;
    let detail = format!("returns to {}", return_url.origin().ascii_serialization());
    state.audit(&caller.actor(), &new.connection, AuditAction::ConnectLinkCreated, Some(detail)).await;
    let url = base.join(&format!("/connect/{token}")).map_err(|e| ErrorResponse::upstream(e.to_string()))?;
    let answer = ConnectSessionAnswer { url: url.to_string(), expires_at: rfc3339(expires_at) };
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage<'a> {
    token: &'a str,
    connection: &'a str,
    host: String,
}

fn gone() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "This connect link is unknown, already used or expired. Ask for a new one.",
        None,
    )
}

/// Tokens are what `random_id(32)` makes; anything else is not looked up.
fn plausible(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /connect/{token}`: what the link does, and a Continue button.
pub(crate) async fn page(State(state): State<BrokerState>, Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return gone();
    }
    let session = match state.store().ephemeral(EphemeralKind::ConnectSession, &token).await {
        Ok(Some(bytes)) => serde_json::from_slice::<ConnectSession>(&bytes).ok(),
        Ok(None) => None,
        Err(e) => return store_down(&e),
    };
    let Some(session) = session else { return gone() };
    let host = session
        .spec
        .resolve(&session.connection)
        .map(|c| c.endpoints().authorize.origin().ascii_serialization())
        .unwrap_or_default();
    html(StatusCode::OK, &ConnectPage { token: &token, connection: &session.connection, host })
}

/// `POST /connect/{token}`: uses the link up and sends the browser to the org.
pub(crate) async fn start(State(state): State<BrokerState>, Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return gone();
    }
    let session = match state.store().take_ephemeral(EphemeralKind::ConnectSession, &token).await {
        Ok(Some(bytes)) => serde_json::from_slice::<ConnectSession>(&bytes).ok(),
        Ok(None) => None,
        Err(e) => return store_down(&e),
    };
    let Some(s) = session else { return gone() };
    let actor = format!("connect-link:{}", s.actor);
    match crate::authorize::begin(&state, &s.connection, s.spec, &actor, Some(s.return_url)).await {
        Ok(to) => {
            message(StatusCode::OK, "Continue to Salesforce", &format!("Signing {} in…", s.connection), Some(&to))
        }
        Err(e) => message(StatusCode::BAD_REQUEST, "Cannot connect", &e, None),
    }
}
