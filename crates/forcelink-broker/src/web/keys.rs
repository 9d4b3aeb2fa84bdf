//! API keys on the page: list, create (the key's text shown once), revoke. Only a key for every
//! connection with the admin scope manages keys (as over the API).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use forcelink_store::{ApiKeyRecord, Scope};

use super::{checked, list_field};
use crate::access::WebUser;
use crate::page::{html, message, store_down};
use crate::state::BrokerState;

struct KeyRow {
    id: String,
    name: String,
    connections: String,
    scopes: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage<'a> {
    csrf: &'a str,
    keys: Vec<KeyRow>,
    /// (name, key text) of a key just created: shown once.
    created: Option<(String, String)>,
    error: Option<String>,
}

/// A form posted about API keys: its CSRF token matches and the key may manage keys.
fn posted_for_keys(user: &WebUser, form: &HashMap<String, String>) -> Result<(), Response> {
    checked(user, form.get("csrf")).and_then(|()| may_manage_keys(&user.key))
}

/// Only a key on every connection with `admin` manages keys.
fn may_manage_keys(key: &ApiKeyRecord) -> Result<(), Response> {
    if key.all_connections() && key.capabilities.contains(Scope::Admin) {
        Ok(())
    } else {
        Err(message(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only a key for every connection (*) manages API keys.",
            None,
        ))
    }
}

async fn render_keys(
    state: &BrokerState,
    csrf: &str,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Response {
    let keys = match state.store().api_keys().await {
        Ok(k) => k,
        Err(e) => return store_down(&e),
    };
    let rows = keys
        .iter()
        .map(|k| KeyRow {
            id: k.id.clone(),
            name: k.label.clone(),
            connections: k.connections.join(", "),
            scopes: k.capabilities.to_strings().join(", ") + if k.read_only { " (read-only)" } else { "" },
            created: crate::time::rfc3339(k.created_at),
            revoked: k.revoked_at.map(crate::time::rfc3339),
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html(status, &KeysPage { csrf, keys: rows, created, error })
}

/// `GET /keys`.
pub(crate) async fn keys_page(State(state): State<BrokerState>, Extension(user): Extension<WebUser>) -> Response {
    if let Err(r) = may_manage_keys(&user.key) {
        return r;
    }
    render_keys(&state, &user.session.csrf, None, None).await
}

/// `POST /keys`: creates a key and shows it once.
pub(crate) async fn keys_create(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = posted_for_keys(&user, &form) {
        return r;
    }
    let new = crate::keys::NewKey {
        name: form.get("name").cloned().unwrap_or_default(),
        connections: list_field(&form, "connections"),
        scopes: list_field(&form, "scopes"),
        read_only: form.get("read_only").is_some_and(|v| v == "on"),
    };
    match crate::keys::create(&state, &user.key, &user.actor(), new).await {
        Ok((text, record)) => render_keys(&state, &user.session.csrf, Some((record.label, text)), None).await,
        Err(e) => render_keys(&state, &user.session.csrf, None, Some(e.message)).await,
    }
}

/// `POST /keys/{id}/revoke`.
pub(crate) async fn keys_revoke(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = posted_for_keys(&user, &form) {
        return r;
    }
    match crate::keys::revoke(&state, &user.actor(), &id).await {
        Ok(true) => Redirect::to("/keys").into_response(),
        Ok(false) => message(StatusCode::NOT_FOUND, "Not found", &format!("No API key with id {id}."), None),
        Err(e) => message(e.status, "Not revoked", &e.message, None),
    }
}
