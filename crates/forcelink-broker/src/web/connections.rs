//! The connections list (each connection's state), the new-connection form, delete and
//! Authorize (the web-server flow's start).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use forcelink_auth::ConnectionId;
use forcelink_store::{Method, Scope};
use serde_json::{Map, Value};

use super::{Badge, Bar, checked, may, posted_for, shown};
use crate::access::WebUser;
use crate::api;
use crate::body::Revoked;
use crate::page::{html, message, store_down};
use crate::state::BrokerState;

struct Row {
    name: String,
    method: String,
    badge: Badge,
    /// Why, when the connection is not healthy.
    reason: Option<String>,
    since: String,
    token_expires: String,
    daily_api: Option<Bar>,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage<'a> {
    csrf: &'a str,
    rows: Vec<Row>,
}

struct Field {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    required: bool,
    hint: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "new.html")]
struct NewPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
    methods: Vec<(&'static str, &'static str, bool)>,
    method: &'a str,
    method_label: &'static str,
    name: &'a str,
    environment: &'a str,
    login_url: &'a str,
    pubsub_endpoint: &'a str,
    fields: Vec<Field>,
    submit: &'static str,
}

/// `GET /`: the connections, each with its state.
pub(crate) async fn index(State(state): State<BrokerState>, Extension(user): Extension<WebUser>) -> Response {
    let WebUser { session, key, .. } = user;
    let list = match state.store().connections().await {
        Ok(l) => l,
        Err(e) => return store_down(&e),
    };
    let mut rows = Vec::new();
    for c in list.iter().filter(|c| key.allows(c.name.as_str(), Scope::Admin)) {
        let d = api::view(&state, c).await;
        let badge = Badge::of(d.state);
        rows.push(Row {
            name: c.name.as_str().to_owned(),
            method: shown(d.method.as_deref()),
            reason: d.state_reason.clone().filter(|_| badge.state != "healthy"),
            badge,
            since: shown(d.state_since.as_deref()),
            token_expires: shown(d.token.expires_at.as_deref().or(d.checks.token_expires_at.as_deref())),
            daily_api: Bar::daily_api(&d),
        });
    }
    html(StatusCode::OK, &ListPage { csrf: &session.csrf, rows })
}

/// The methods the page offers (the device flow needs a person at a terminal: CLI only).
const METHODS: [Method; 5] =
    [Method::Web, Method::ClientCredentials, Method::Jwt, Method::Password, Method::AccessToken];

/// Exactly the fields of `method`, from the connection model's one list.
fn fields(method: Method) -> Vec<Field> {
    method
        .fields()
        .iter()
        .map(|f| Field {
            name: f.name,
            label: f.label,
            kind: f.kind,
            required: f.required,
            hint: f.hint,
            value: String::new(),
        })
        .collect()
}

fn new_form(csrf: &str, form: &HashMap<String, String>, error: Option<&str>) -> Response {
    let method_text = form.get("method").map(String::as_str).unwrap_or("web");
    let method = Method::parse(method_text).filter(|m| *m != Method::Device).unwrap_or(Method::Web);
    let method_label = method.label();
    let mut fs = fields(method);
    for f in &mut fs {
        // Secrets are never echoed back into the page.
        if f.kind != "password" && f.kind != "textarea" {
            f.value = form.get(f.name).cloned().unwrap_or_default();
        }
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let environment = if get("environment").is_empty() { "production" } else { get("environment") };
    let page = NewPage {
        csrf,
        error,
        methods: METHODS.iter().map(|m| (m.as_str(), m.label(), *m == method)).collect(),
        method: method.as_str(),
        method_label,
        name: get("name"),
        environment,
        login_url: get("login_url"),
        pubsub_endpoint: get("pubsub_endpoint"),
        fields: fs,
        submit: if method == Method::Web { "Authorize" } else { "Save" },
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html(status, &page)
}

/// `GET /connections/new[?method=…]`.
pub(crate) async fn new_page(
    Extension(user): Extension<WebUser>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    new_form(&user.session.csrf, &q, None)
}

/// `POST /connections`: saves, then (web-server flow) starts the authorization.
pub(crate) async fn create(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = checked(&user, form.get("csrf")) {
        return r;
    }
    let method = form.get("method").and_then(|m| Method::parse(m)).unwrap_or(Method::Web);
    let mut obj = Map::new();
    obj.insert("method".into(), Value::String(method.as_str().to_owned()));
    // A blank Pub/Sub endpoint means the default (`spec_from_json` drops blank settings).
    for k in ["name", "environment", "pubsub_endpoint"] {
        if let Some(v) = form.get(k) {
            obj.insert(k.into(), Value::String(v.trim().to_owned()));
        }
    }
    if form.get("environment").map(String::as_str) == Some("custom")
        && let Some(v) = form.get("login_url")
    {
        obj.insert("login_url".into(), Value::String(v.trim().to_owned()));
    }
    for f in fields(method) {
        if let Some(v) = form.get(f.name) {
            let v = if f.kind == "textarea" { v.clone() } else { v.trim().to_owned() };
            obj.insert(f.name.into(), Value::String(v));
        }
    }
    let (name, spec) = match api::spec_from_json(Value::Object(obj), None) {
        Ok(x) => x,
        Err(e) => return new_form(&user.session.csrf, &form, Some(&e.message)),
    };
    if let Err(r) = may(&user.key, &name) {
        return r;
    }
    let actor = user.actor();
    if let Err(e) = api::create(&state, &actor, &name, &spec).await {
        return new_form(&user.session.csrf, &form, Some(&e.message));
    }
    if method == Method::Web {
        return start_authorization(&state, &name, &actor).await;
    }
    Redirect::to(&format!("/connections/{name}")).into_response()
}

/// `POST /connections/{name}/delete`: revokes the tokens, then deletes.
pub(crate) async fn delete(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = posted_for(&user, &form, &name) {
        return r;
    }
    match api::delete(&state, &user.actor(), &name, true).await {
        Ok(deleted) => {
            let revoked = match deleted.revoked {
                Some(Revoked::Done(true)) => "its tokens were revoked".to_owned(),
                None => "it held no tokens".to_owned(),
                Some(Revoked::Done(false)) => "revoking its tokens failed: —".to_owned(),
                Some(Revoked::Failed { error }) => format!("revoking its tokens failed: {error}"),
            };
            message(StatusCode::OK, "Deleted", &format!("Connection {name} was deleted; {revoked}."), None)
        }
        Err(e) => message(e.status, "Not deleted", &e.message, None),
    }
}

/// `POST /connections/{name}/authorize` (CSRF token in the form).
pub(crate) async fn authorize(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = posted_for(&user, &form, &name) {
        return r;
    }
    start_authorization(&state, &name, &user.actor()).await
}

/// Sends the browser on to the org's authorize page. A page that moves on by itself rather
/// than a redirect: the page's `Content-Security-Policy: form-action 'self'` would stop a form
/// submission redirected to another origin.
async fn start_authorization(state: &BrokerState, name: &str, actor: &str) -> Response {
    let fail = |text: String| message(StatusCode::BAD_REQUEST, "Cannot authorize", &text, None);
    let stored = match state.store().connection(&ConnectionId::new(name)).await {
        Ok(Some(s)) => s,
        Ok(None) => return fail(format!("No connection named {name}.")),
        Err(e) => return fail(e.to_string()),
    };
    match crate::authorize::begin(state, name, stored.spec, actor, None).await {
        Ok(to) => {
            message(StatusCode::OK, "Continue to Salesforce", &format!("Signing {name} in at its org…"), Some(&to))
        }
        Err(e) => fail(e),
    }
}
