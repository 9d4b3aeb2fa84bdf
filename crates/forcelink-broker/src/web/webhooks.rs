//! Webhooks on the page: the list (URL, events, connections, the last delivery, counts by
//! state, and the failed deliveries with a button that sends one again), add (the signing secret
//! shown once) and delete. The rules are the API's ([`crate::webhooks`]): the receiver's host
//! rule, the events and connections a key may name, and which webhooks a key sees.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use forcelink_store::{DeliveryFilter, DeliveryState};

use super::{checked, list_field, shown};
use crate::access::WebUser;
use crate::notify::EVENT_TYPES;
use crate::page::{html, message, store_down};
use crate::state::BrokerState;
use crate::webhooks::{self as api, DeliveryView, NewWebhook};

/// Failed deliveries shown per webhook (newest first). 10.
pub(crate) const FAILED_SHOWN: usize = 10;

struct LastDelivery {
    event_type: String,
    state: String,
    at: String,
    /// `HTTP 204`, or what went wrong.
    outcome: String,
}

struct FailedRow {
    seq: i64,
    event_type: String,
    connection: String,
    at: String,
    attempts: u32,
    error: String,
}

struct HookRow {
    id: String,
    url: String,
    events: String,
    connections: String,
    created: String,
    pending: u64,
    delivered: u64,
    failed: u64,
    last: Option<LastDelivery>,
    failures: Vec<FailedRow>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage<'a> {
    csrf: &'a str,
    hooks: Vec<HookRow>,
    /// (id, secret) of a webhook just added: the secret is shown this once.
    created: Option<(String, String)>,
    error: Option<String>,
    /// The form's values (kept when it comes back with an error).
    url: &'a str,
    events: &'a str,
    connections: &'a str,
    event_types: String,
}

/// What the form starts with: every event, every connection the key administers.
const DEFAULT_EVENTS: &str = "*";
const DEFAULT_CONNECTIONS: &str = "*";

fn outcome(d: &DeliveryView) -> String {
    match (&d.last_status, &d.last_error) {
        (_, Some(e)) => e.clone(),
        (Some(s), None) => format!("HTTP {s}"),
        (None, None) => "not tried yet".to_owned(),
    }
}

fn last_delivery(d: &DeliveryView) -> LastDelivery {
    let at = d.delivered_at.as_deref().or(d.last_attempt_at.as_deref()).unwrap_or(&d.created_at);
    LastDelivery { event_type: d.event_type.clone(), state: d.state.clone(), at: at.to_owned(), outcome: outcome(d) }
}

async fn row(state: &BrokerState, hook: &forcelink_store::WebhookRecord) -> Result<HookRow, Response> {
    let view = api::view(state, hook).await.map_err(|e| store_down(&e.message))?;
    let failures = if view.failed > 0 {
        let filter =
            DeliveryFilter { target: Some(hook.id.clone()), state: Some(DeliveryState::Failed), limit: FAILED_SHOWN };
        let failed = state.store().deliveries(&filter).await.map_err(|e| store_down(&e))?;
        failed
            .iter()
            .map(api::delivery_view)
            .map(|d| FailedRow {
                seq: d.seq,
                at: shown(d.last_attempt_at.as_deref()),
                error: outcome(&d),
                event_type: d.event_type,
                connection: d.connection,
                attempts: d.attempts,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(HookRow {
        id: view.id,
        url: view.url,
        events: view.events.join(", "),
        connections: view.connections.join(", "),
        created: view.created_at,
        pending: view.pending,
        delivered: view.delivered,
        failed: view.failed,
        last: view.last_delivery.as_ref().map(last_delivery),
        failures,
    })
}

/// The page with the webhooks `user` may see; `form` refills the add form.
async fn render(
    state: &BrokerState,
    user: &WebUser,
    status: StatusCode,
    created: Option<(String, String)>,
    error: Option<String>,
    form: &HashMap<String, String>,
) -> Response {
    let hooks = match api::visible(state, &user.key).await {
        Ok(h) => h,
        Err(e) => return store_down(&e.message),
    };
    let mut rows = Vec::new();
    for hook in &hooks {
        match row(state, hook).await {
            Ok(r) => rows.push(r),
            Err(r) => return r,
        }
    }
    let value = |k: &str, default: &'static str| form.get(k).map(String::as_str).unwrap_or(default).to_owned();
    let (url, events, connections) =
        (value("url", ""), value("events", DEFAULT_EVENTS), value("connections", DEFAULT_CONNECTIONS));
    let page = WebhooksPage {
        csrf: &user.session.csrf,
        hooks: rows,
        created,
        error,
        url: &url,
        events: &events,
        connections: &connections,
        event_types: EVENT_TYPES.join(", "),
    };
    html(status, &page)
}

/// `GET /webhooks`.
pub(crate) async fn webhooks_page(State(state): State<BrokerState>, Extension(user): Extension<WebUser>) -> Response {
    render(&state, &user, StatusCode::OK, None, None, &HashMap::new()).await
}

/// `POST /webhooks`: adds a webhook and shows its secret once.
pub(crate) async fn webhooks_create(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = checked(&user, form.get("csrf")) {
        return r;
    }
    let connections = list_field(&form, "connections");
    let new = NewWebhook {
        url: form.get("url").cloned().unwrap_or_default(),
        events: list_field(&form, "events"),
        connections: (!connections.is_empty()).then_some(connections),
    };
    match api::create(&state, &user.key, &user.actor(), new).await {
        Ok(hook) => {
            let created = Some((hook.id.clone(), hook.secret.secret().to_owned()));
            render(&state, &user, StatusCode::OK, created, None, &HashMap::new()).await
        }
        Err(e) => render(&state, &user, e.status, None, Some(e.message), &form).await,
    }
}

/// `POST /webhooks/{id}/delete`: deletes the webhook and its pending deliveries.
pub(crate) async fn webhooks_delete(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = checked(&user, form.get("csrf")) {
        return r;
    }
    match api::delete(&state, &user.key, &user.actor(), &id).await {
        Ok(()) => Redirect::to("/webhooks").into_response(),
        Err(e) => message(e.status, "Not deleted", &e.message, None),
    }
}

/// `POST /webhooks/{id}/deliveries/{seq}/retry`: a failed delivery is sent again now.
pub(crate) async fn webhooks_retry(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
    Path((id, seq)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = checked(&user, form.get("csrf")) {
        return r;
    }
    let Ok(seq) = seq.parse::<i64>() else {
        return message(StatusCode::NOT_FOUND, "Not found", &format!("No delivery {seq}."), None);
    };
    match api::retry(&state, &user.key, &id, seq).await {
        Ok(()) => Redirect::to("/webhooks").into_response(),
        Err(e) => message(e.status, "Not sent again", &e.message, None),
    }
}
