//! The web page: server-rendered (askama), no script. Sign in with an admin API key (a session
//! cookie: HttpOnly, SameSite=Strict); every form carries a CSRF token tied to the session (the
//! sign-in form: to a cookie of its own). Connections list with health, new connection (the
//! method's own fields; Authorize for the web-server flow), detail (test, re-authorize, delete).
//!
//! The web-server flow: `POST /connections/{name}/authorize` (CSRF token in the form) sends the
//! browser to the org's authorize endpoint with PKCE and a random `state`, the redirect URI
//! built from the configured public URL (never the `Host` header); `GET /oauth/callback` checks the state,
//! exchanges the code and stores the tokens. The callback needs no session (a SameSite=Strict
//! cookie does not come along on a redirect from another site): the single-use state is what
//! ties it to the click. It answers with a page that moves on to the connection by itself, so
//! the session cookie comes along again.

use forcelink_store::AuditAction;
use forcelink_store::Scope;
use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use forcelink_auth::ConnectionId;
use forcelink_store::{ApiKeyRecord, Method};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::access::{SESSION_COOKIE, WebUser, has_capability, refused_actor};
use crate::api;
use crate::body::{ConnectionView, Revoked};
use crate::ids::random_id;
use crate::page::{html, message, store_down};
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

struct Row {
    name: String,
    method: String,
    ok: bool,
    unused: bool,
    problem: String,
    last_renewal: String,
    usage: String,
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

#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage<'a> {
    csrf: &'a str,
    name: &'a str,
    ok: bool,
    unused: bool,
    problem: String,
    settings: Vec<(String, String)>,
    web: bool,
    notice: Option<String>,
    notice_ok: bool,
}

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

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An optional value as the page shows it (a dash when absent).
fn shown(v: Option<&str>) -> String {
    v.unwrap_or("—").to_owned()
}

fn problem(d: &ConnectionView) -> String {
    if let Some(e) = &d.health.last_error {
        return e.message.clone();
    }
    if d.token.signed_in { "Token expired".to_owned() } else { "No token yet".to_owned() }
}

fn usage(d: &ConnectionView) -> String {
    let Some(u) = &d.usage else { return "—".to_owned() };
    let mut s = format!("{} tokens, {} proxied, {} actions", u.tokens_handed_out, u.proxied_requests, u.actions);
    if let Some(info) = &u.salesforce_limit_info {
        s.push_str(&format!(" ({info})"));
    }
    s
}

/// `GET /`: the connections.
pub(crate) async fn index(State(state): State<BrokerState>, Extension(user): Extension<WebUser>) -> Response {
    let WebUser { session, key, .. } = user;
    let list = match state.store().connections().await {
        Ok(l) => l,
        Err(e) => return store_down(&e),
    };
    let mut rows = Vec::new();
    for c in list.iter().filter(|c| key.allows(c.name.as_str(), Scope::Admin)) {
        let d = api::view(&state, c).await;
        rows.push(Row {
            name: c.name.as_str().to_owned(),
            method: shown(d.method.as_deref()),
            ok: d.health.ok == Some(true),
            unused: d.health.ok.is_none(),
            problem: problem(&d),
            last_renewal: shown(d.token.issued_at.as_deref()),
            usage: usage(&d),
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

async fn render_detail(state: &BrokerState, csrf: &str, name: &str, notice: Option<(String, bool)>) -> Response {
    let stored = match state.store().connection(&ConnectionId::new(name)).await {
        Ok(Some(s)) => s,
        Ok(None) => return message(StatusCode::NOT_FOUND, "Not found", &format!("No connection named {name}."), None),
        Err(e) => return store_down(&e),
    };
    let d = api::view(state, &stored).await;
    let mut settings = Vec::new();
    if let Some(obj) = d.settings.as_object() {
        for (k, v) in obj {
            settings.push((k.replace('_', " "), text(v)));
        }
    }
    settings.push(("signed in".into(), d.token.signed_in.to_string()));
    settings.push(("last renewal".into(), shown(d.token.issued_at.as_deref())));
    settings.push(("token expires".into(), shown(d.token.expires_at.as_deref())));
    settings.push(("API usage".into(), usage(&d)));
    let (notice, notice_ok) = match notice {
        Some((n, ok)) => (Some(n), ok),
        None => (None, true),
    };
    html(
        StatusCode::OK,
        &DetailPage {
            csrf,
            name,
            ok: d.health.ok == Some(true),
            unused: d.health.ok.is_none(),
            problem: problem(&d),
            settings,
            web: stored.spec.method == Some(Method::Web),
            notice,
            notice_ok,
        },
    )
}

/// `GET /connections/{name}`.
pub(crate) async fn detail(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = may(&user.key, &name) {
        return r;
    }
    render_detail(&state, &user.session.csrf, &name, None).await
}

/// `POST /connections/{name}/test`.
pub(crate) async fn test(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = posted_for(&user, &form, &name) {
        return r;
    }
    let notice = match api::test(&state, &name).await {
        Ok(t) if t.ok => (format!("Test passed: {}", t.detail), true),
        Ok(t) => (format!("Test failed: {}", t.detail), false),
        Err(e) => (format!("Test failed: {}", e.message), false),
    };
    state.audit(&user.actor(), &name, AuditAction::ConnectionTested, Some(notice.0.clone())).await;
    render_detail(&state, &user.session.csrf, &name, Some(notice)).await
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
            scopes: k.capabilities.to_strings().join(", "),
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

fn list_field(form: &HashMap<String, String>, name: &str) -> Vec<String> {
    form.get(name)
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
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
