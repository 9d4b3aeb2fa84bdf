//! The web page: server-rendered (askama), no script. Sign in with an admin API key (a session
//! cookie: HttpOnly, SameSite=Strict); every form carries a CSRF token tied to the session (the
//! sign-in form: to a cookie of its own).
//!
//! - this module: sign-in and sign-out, and what every page handler shares (cookies, the CSRF
//!   check, the connection rights check, the state badge);
//! - `connections`: the list with each connection's state, new connection (the method's own
//!   fields; Authorize for the web-server flow), delete, Authorize;
//! - `detail`: one connection: its org and user, state with reason and fix, token expiry,
//!   approvals used and daily API usage as bars, the latest renewals and errors, its audit
//!   trail; Test;
//! - `keys`: API keys (create, shown once; revoke);
//! - `subscriptions`: event subscriptions with their state, lag and checkpoint.
//! - `webhooks`: webhooks (add, its secret shown once; list with the last delivery and
//!   failures; delete; failed deliveries sent again).
//!
//! The web-server flow: `POST /connections/{name}/authorize` (CSRF token in the form) sends the
//! browser to the org's authorize endpoint with PKCE and a random `state`, the redirect URI
//! built from the configured public URL (never the `Host` header); `GET /oauth/callback` checks the state,
//! exchanges the code and stores the tokens. The callback needs no session (a SameSite=Strict
//! cookie does not come along on a redirect from another site): the single-use state is what
//! ties it to the click. It answers with a page that moves on to the connection by itself, so
//! the session cookie comes along again.

mod connections;
mod detail;
mod keys;
mod subscriptions;
mod webhooks;

pub(crate) use connections::{authorize, create, delete, index, new_page};
pub(crate) use detail::{detail, test};
pub(crate) use keys::{keys_create, keys_page, keys_revoke};
pub(crate) use subscriptions::subscriptions_page;
pub(crate) use webhooks::{webhooks_create, webhooks_delete, webhooks_page, webhooks_retry};

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use forcelink_store::{ApiKeyRecord, AuditAction, ConnectionState, Scope};
use subtle::ConstantTimeEq;

use crate::access::{SESSION_COOKIE, WebUser, has_capability, refused_actor};
use crate::body::{ConnectionView, StateName};
use crate::ids::random_id;
use crate::page::{html, message};
use crate::state::BrokerState;

/// The sign-in form's CSRF cookie (there is no session yet to tie it to).
pub(crate) const LOGIN_COOKIE: &str = "forcelink_login";
/// How long a sign-in form stays usable. 1 hour.
pub(crate) const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

/// A connection state as the page shows it: the API's name (`data-state`, a CSS class) and words
/// that say it without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Badge {
    state: &'static str,
    label: &'static str,
    /// A shape that differs per state (for those who cannot tell the colours apart).
    mark: &'static str,
}

impl Badge {
    fn of(state: StateName) -> Self {
        let state = match state {
            StateName::Healthy => ConnectionState::Healthy,
            StateName::Unhealthy => ConnectionState::Unhealthy,
            StateName::ReauthorizationRequired => ConnectionState::ReauthorizationRequired,
            StateName::Unknown => ConnectionState::Unknown,
        };
        let (label, mark) = match state {
            ConnectionState::Healthy => ("Healthy", "●"),
            ConnectionState::Unhealthy => ("Unhealthy", "▲"),
            ConnectionState::ReauthorizationRequired => ("Re-authorization required", "✖"),
            ConnectionState::Unknown => ("Not checked yet", "○"),
        };
        Badge { state: state.as_str(), label, mark }
    }
}

/// An optional value as the page shows it (a dash when absent).
fn shown(v: Option<&str>) -> String {
    v.unwrap_or("—").to_owned()
}

/// A comma-separated form field as a list (blank items dropped).
fn list_field(form: &HashMap<String, String>, name: &str) -> Vec<String> {
    form.get(name)
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// A page cookie: HttpOnly, SameSite=Strict, Path=/, for `max_age` (zero removes it); Secure
/// when browsers reach the broker over https.
fn page_cookie(state: &BrokerState, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
    let secure = state.public_url().is_some_and(|u| u.scheme() == "https");
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX)))
        .secure(secure)
        .build()
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The form's CSRF token matches the session's.
fn checked(user: &WebUser, form_csrf: Option<&String>) -> Result<(), Response> {
    if !form_csrf.is_some_and(|c| same(c, &user.session.csrf)) {
        return Err(message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The form's security token did not match; reload the page and try again.",
            None,
        ));
    }
    Ok(())
}

/// A form posted about connection `name`: its CSRF token matches and the key administers it.
fn posted_for(user: &WebUser, form: &HashMap<String, String>, name: &str) -> Result<(), Response> {
    checked(user, form.get("csrf")).and_then(|()| may(&user.key, name))
}

fn may(key: &ApiKeyRecord, name: &str) -> Result<(), Response> {
    if key.allows(name, Scope::Admin) {
        Ok(())
    } else {
        Err(message(StatusCode::FORBIDDEN, "Not allowed", "Your key does not administer this connection.", None))
    }
}

/// `GET /login`.
pub(crate) async fn login_page(State(state): State<BrokerState>) -> Response {
    let token = random_id(24);
    let page = html(StatusCode::OK, &LoginPage { csrf: &token, error: None });
    (CookieJar::new().add(page_cookie(&state, LOGIN_COOKIE, token, LOGIN_FORM_TTL)), page).into_response()
}

/// `POST /login`.
pub(crate) async fn login(
    State(state): State<BrokerState>,
    jar: CookieJar,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let fresh = random_id(24);
    let fail = |status: StatusCode, text: &str| {
        let page = html(status, &LoginPage { csrf: &fresh, error: Some(text) });
        (CookieJar::new().add(page_cookie(&state, LOGIN_COOKIE, fresh.clone(), LOGIN_FORM_TTL)), page).into_response()
    };
    let csrf_ok = match (jar.get(LOGIN_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) => same(c.value(), f),
        _ => false,
    };
    if !csrf_ok {
        return fail(StatusCode::FORBIDDEN, "The form expired; please sign in again.");
    }
    let presented = form.get("key").map(String::as_str).unwrap_or("").trim();
    let key = match state.verify_key(presented).await {
        Ok(Some(k)) if k.read_only => {
            state.audit_refusal(&format!("api-key:{}", k.id), "web sign-in: the key is read-only");
            return fail(
                StatusCode::FORBIDDEN,
                "That key is read-only; the page changes things. Use a key that may write.",
            );
        }
        Ok(Some(k)) if has_capability(&k, Scope::Admin) => k,
        Ok(Some(k)) => {
            state.audit_refusal(&format!("api-key:{}", k.id), "web sign-in: the key lacks the admin scope");
            return fail(StatusCode::FORBIDDEN, "That key lacks the admin scope.");
        }
        Ok(None) => {
            state.audit_refusal(&refused_actor(presented), "web sign-in: unknown, malformed or revoked key");
            return fail(StatusCode::UNAUTHORIZED, "That key is not valid.");
        }
        Err(e) => {
            // The store's text goes to the log only (the error's own answer would do the same).
            tracing::warn!("sign-in: {}", e.message);
            return fail(StatusCode::SERVICE_UNAVAILABLE, "The broker's store does not answer; try again later.");
        }
    };
    let id = match state.create_session(&key.id).await {
        Ok((id, _)) => id,
        Err(e) => {
            tracing::warn!("sign-in: {}", e.message);
            return fail(StatusCode::SERVICE_UNAVAILABLE, "The broker's store does not answer; try again later.");
        }
    };
    state.audit(&format!("web:api-key:{}", key.id), crate::audit::NO_CONNECTION, AuditAction::WebSignIn, None).await;
    let cookies = CookieJar::new()
        .add(page_cookie(&state, SESSION_COOKIE, id, crate::state::SESSION_TTL))
        .add(page_cookie(&state, LOGIN_COOKIE, String::new(), Duration::ZERO));
    (cookies, Redirect::to("/")).into_response()
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = checked(&user, form.get("csrf")) {
        return r;
    }
    state.end_session(&user.session_id).await;
    state.audit(&user.actor(), crate::audit::NO_CONNECTION, AuditAction::WebSignOut, None).await;
    let cookies = CookieJar::new().add(page_cookie(&state, SESSION_COOKIE, String::new(), Duration::ZERO));
    (cookies, Redirect::to("/login")).into_response()
}

/// This broker's counters for a connection, in words.
fn usage(d: &ConnectionView) -> String {
    let Some(u) = &d.usage else { return "—".to_owned() };
    let mut s = format!("{} tokens, {} proxied, {} actions", u.tokens_handed_out, u.proxied_requests, u.actions);
    if let Some(info) = &u.salesforce_limit_info {
        s.push_str(&format!(" ({info})"));
    }
    s
}

/// A share of a maximum as the page draws it: a `<progress>` bar and the same in words.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    used: i64,
    max: i64,
    /// One decimal, e.g. `12.5`.
    percent: String,
    /// At or above the level where the broker warns (a webhook is sent).
    near: bool,
}

impl Bar {
    fn new(used: i64, max: i64, warn_fraction: f64) -> Self {
        let fraction = if max <= 0 { 0.0 } else { (used as f64 / max as f64).clamp(0.0, 1.0) };
        Bar { used, max, percent: format!("{:.1}", fraction * 100.0), near: max > 0 && fraction >= warn_fraction }
    }

    /// `DailyApiRequests` as of the last background check.
    fn daily_api(d: &ConnectionView) -> Option<Self> {
        d.checks
            .daily_api_requests
            .as_ref()
            .map(|l| Bar::new(l.max - l.remaining, l.max, crate::monitor::LIMIT_WARN_FRACTION))
    }
}
