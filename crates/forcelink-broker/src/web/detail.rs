//! One connection's page: what a person needs to judge it and act. Its org and user, the state
//! with its reason and fix, token expiry, approvals used of Salesforce's five and the daily API
//! usage as bars, the latest renewals, checks and errors (from the health record every replica
//! shares, and this broker's last error), its settings (secrets as `[stored]`) and its audit
//! trail; Test, Re-authorize and Delete.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use forcelink_auth::ConnectionId;
use forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP;
use forcelink_store::{AuditAction, Method};
use serde_json::Value;

use super::{Badge, Bar, may, posted_for, shown, usage};
use crate::access::WebUser;
use crate::api;
use crate::body::ConnectionView;
use crate::monitor::{APPROVALS_WARN, LIMIT_WARN_FRACTION};
use crate::page::{html, message, store_down};
use crate::state::BrokerState;
use crate::time::rfc3339;

/// How many audit entries the page shows (newest first). 20.
pub(crate) const AUDIT_ROWS: usize = 20;

/// A renewal, check, sign-in or error.
struct Note {
    at: String,
    kind: String,
    ok: bool,
    detail: String,
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage<'a> {
    csrf: &'a str,
    name: &'a str,
    badge: Badge,
    reason: Option<String>,
    fix: Option<String>,
    since: String,
    /// Org id, instance, user id, username.
    org: Vec<(&'static str, String)>,
    token_expires: String,
    token_expired: bool,
    approvals: Option<Bar>,
    approvals_max: u32,
    daily_api: Option<Bar>,
    checked_at: String,
    /// Other limits at or above the warning level: (name, bar).
    near_limits: Vec<(String, Bar)>,
    broker_usage: String,
    notes: Vec<Note>,
    settings: Vec<(String, String)>,
    audit: Vec<AuditRow>,
    web: bool,
    notice: Option<String>,
    notice_ok: bool,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The org and the user the connection's token belongs to, as far as the broker knows them.
async fn org_and_user(state: &BrokerState, id: &ConnectionId, d: &ConnectionView) -> Vec<(&'static str, String)> {
    let tokens = match state.store().load(id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(connection = id.as_str(), "reading the token set for the page: {e}");
            None
        }
    };
    let set = tokens.as_ref().map(|t| &t.set);
    let username = d.settings.get("username").and_then(Value::as_str);
    vec![
        ("Org id", shown(set.and_then(|s| s.org_id()))),
        ("Instance", shown(d.token.instance_url.as_deref())),
        ("User id", shown(set.and_then(|s| s.user_id()))),
        ("Username", shown(username)),
    ]
}

/// The health record's notes, and this broker's last error when the notes do not hold it.
fn notes(d: &ConnectionView) -> Vec<Note> {
    let mut notes: Vec<Note> = d
        .checks
        .recent
        .iter()
        .map(|n| Note { at: n.at.clone(), kind: n.kind.clone(), ok: n.ok, detail: n.detail.clone() })
        .collect();
    if let Some(e) = &d.health.last_error
        && !notes.iter().any(|n| !n.ok && n.at == e.at)
    {
        let error = Note { at: e.at.clone(), kind: "error".into(), ok: false, detail: e.message.clone() };
        // RFC 3339 in UTC with seconds sorts as text.
        let at = notes.iter().position(|n| n.at < error.at).unwrap_or(notes.len());
        notes.insert(at, error);
    }
    notes
}

async fn audit_rows(state: &BrokerState, id: &ConnectionId) -> Vec<AuditRow> {
    let entries = match state.store().audit(Some(id), AUDIT_ROWS).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(connection = id.as_str(), "reading the audit log for the page: {e}");
            Vec::new()
        }
    };
    entries
        .into_iter()
        .map(|e| AuditRow {
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action.as_str().into_owned(),
            detail: shown(e.detail.as_deref()),
        })
        .collect()
}

async fn render_detail(state: &BrokerState, csrf: &str, name: &str, notice: Option<(String, bool)>) -> Response {
    let id = ConnectionId::new(name);
    let stored = match state.store().connection(&id).await {
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
    settings.push(("last renewal".into(), shown(d.token.issued_at.as_deref())));
    let (notice, notice_ok) = match notice {
        Some((n, ok)) => (Some(n), ok),
        None => (None, true),
    };
    let max = MAX_APPROVALS_PER_USER_AND_APP as u32;
    let approvals_warn = f64::from(APPROVALS_WARN) / f64::from(max);
    let near_limits = d
        .checks
        .limits
        .iter()
        .filter(|l| l.name != "DailyApiRequests")
        .map(|l| (l.name.clone(), Bar::new(l.max - l.remaining, l.max, LIMIT_WARN_FRACTION)))
        .filter(|(_, bar)| bar.near)
        .collect();
    let badge = Badge::of(d.state);
    let page = DetailPage {
        csrf,
        name,
        badge,
        reason: d.state_reason.clone(),
        fix: d.fix.clone(),
        since: shown(d.state_since.as_deref()),
        org: org_and_user(state, &id, &d).await,
        token_expires: shown(d.token.expires_at.as_deref().or(d.checks.token_expires_at.as_deref())),
        token_expired: d.token.expired == Some(true),
        approvals: d.checks.approvals_used.map(|used| Bar::new(i64::from(used), i64::from(max), approvals_warn)),
        approvals_max: max,
        daily_api: Bar::daily_api(&d),
        checked_at: shown(d.checks.checked_at.as_deref()),
        near_limits,
        broker_usage: usage(&d),
        notes: notes(&d),
        settings,
        audit: audit_rows(state, &id).await,
        web: stored.spec.method == Some(Method::Web),
        notice,
        notice_ok,
    };
    html(StatusCode::OK, &page)
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
