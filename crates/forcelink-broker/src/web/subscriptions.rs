//! Event subscriptions on the page: each one's connection, topic, receiver, state (active or
//! paused, and what its consumer last reported), lag (deliveries waiting), checkpoint and last
//! delivery. Created and changed through the API or `forcelink subscription` (the page lists).

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::access::WebUser;
use crate::events::{self as api};
use crate::page::{html, store_down};
use crate::state::BrokerState;

struct SubRow {
    id: String,
    connection: String,
    topic: String,
    url: String,
    state: String,
    phase: String,
    error: Option<String>,
    lag: u64,
    delivered: u64,
    failed: u64,
    checkpoint: String,
    last: String,
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage<'a> {
    csrf: &'a str,
    subs: Vec<SubRow>,
}

/// `GET /subscriptions`.
pub(crate) async fn subscriptions_page(
    State(state): State<BrokerState>,
    Extension(user): Extension<WebUser>,
) -> Response {
    let subs = match api::visible(&state, &user.key).await {
        Ok(s) => s,
        Err(e) => return store_down(&e.message),
    };
    let mut rows = Vec::new();
    for sub in &subs {
        let v = match api::view(&state, sub).await {
            Ok(v) => v,
            Err(e) => return store_down(&e.message),
        };
        let consumer = v.consumer.clone().unwrap_or_default();
        rows.push(SubRow {
            id: v.id,
            connection: v.connection,
            topic: v.topic,
            url: v.webhook.url,
            state: v.state,
            phase: if consumer.phase.is_empty() { "waiting for a consumer".to_owned() } else { consumer.phase },
            error: consumer.error,
            lag: v.lag,
            delivered: v.delivered,
            failed: v.failed,
            checkpoint: v.checkpoint.unwrap_or_else(|| "none yet".to_owned()),
            last: v
                .last_delivery
                .map(|d| format!("{}: {} {}", d.event_type, d.state, d.delivered_at.unwrap_or(d.created_at)))
                .unwrap_or_else(|| "none yet".to_owned()),
        });
    }
    html(StatusCode::OK, &SubscriptionsPage { csrf: &user.session.csrf, subs: rows })
}
