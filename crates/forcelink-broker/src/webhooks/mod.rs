//! Webhooks: `POST /v1/webhooks {"url", "events", "connections"}` → `201 {"id", "secret"}` (the
//! secret shown once), list, delete, and each webhook's deliveries (failed ones retried by hand).
//! Events go to a webhook only for connections its creator administers.
//!
//! The host rule for receivers: an `https` URL, or an origin the operator allowed with
//! `--allow-origin` — never the broker itself (a delivery must not call the broker's own API),
//! and never with credentials in the URL (webhook URLs are stored in clear).
//!
//! - `sign`: Standard Webhooks secrets and signatures.
//! - `sender`: the outbox's sender (claims, attempts, retries for a day).

pub(crate) mod sender;
pub(crate) mod sign;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use forcelink_store::connection::validate_name;
use forcelink_store::outbox::MAX_WEBHOOK_URL_LEN;
use forcelink_store::{
    ApiKeyRecord, AuditAction, Delivery, DeliveryFilter, DeliveryState, Scope, WebhookRecord, WebhookSecret,
};
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::access::Caller;
use crate::audit::NO_CONNECTION;
use crate::error::ErrorResponse;
use crate::ids::random_id;
use crate::notify::valid_pattern;
use crate::state::BrokerState;
use crate::time::rfc3339;

/// Most event patterns or connections one webhook names. 50.
pub(crate) const MAX_LIST: usize = 50;

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// Where deliveries are POSTed: https, or an origin allowed with `--allow-origin`.
    #[schema(max_length = 2000, format = "uri")]
    pub url: String,
    /// Event types (`connection.unhealthy`), families (`connection.*`) or `*`.
    #[schema(schema_with = event_patterns_schema)]
    pub events: Vec<String>,
    /// Connection names, or `*` for all (the default); each must be administered by the key.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub connections: Option<Vec<String>>,
}

/// The documented `events` list: 1 to 50 of the event types, their families (`connection.*`) or
/// `*` — exactly what [`valid_pattern`] accepts.
fn event_patterns_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let mut patterns: Vec<String> = vec!["*".to_owned()];
    for t in crate::notify::EVENT_TYPES {
        let family = format!("{}.*", t.split('.').next().unwrap_or(t));
        if !patterns.contains(&family) {
            patterns.push(family);
        }
        patterns.push(t.to_owned());
    }
    debug_assert!(patterns.iter().all(|p| valid_pattern(p)));
    let item = ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).enum_values(Some(patterns));
    ArrayBuilder::new().items(item).min_items(Some(1)).max_items(Some(MAX_LIST)).build()
}

/// A webhook (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub connections: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Deliveries waiting, accepted and given up on.
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// The latest delivery, when there was one.
    pub last_delivery: Option<DeliveryView>,
}

/// `POST /v1/webhooks`: the new webhook and its signing secret (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedWebhook {
    pub id: String,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library).
    pub secret: String,
    pub webhook: WebhookView,
}

/// `GET /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// `DELETE /v1/webhooks/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct DeletedWebhook {
    pub deleted: String,
}

/// One delivery of an event to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// Its place in the outbox (retry it with this).
    pub seq: i64,
    /// The `webhook-id` header: the same on every attempt.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub connection: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

/// `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

/// `?state=pending|delivered|failed&limit=N`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQuery {
    pub state: Option<String>,
    pub limit: Option<usize>,
}

/// `POST /v1/webhooks/{id}/deliveries/{seq}/retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct RetriedDelivery {
    pub seq: i64,
    pub state: String,
}

pub(crate) fn delivery_view(d: &Delivery) -> DeliveryView {
    DeliveryView {
        seq: d.seq,
        id: d.id.clone(),
        event_type: d.event_type.clone(),
        connection: d.connection.clone(),
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        created_at: rfc3339(d.created_at),
        next_attempt_at: (d.state == DeliveryState::Pending).then(|| rfc3339(d.next_attempt_at)),
        last_attempt_at: d.last_attempt_at.map(rfc3339),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        delivered_at: d.delivered_at.map(rfc3339),
    }
}

/// The webhook as the API shows it, with its delivery counts and latest delivery.
pub(crate) async fn view(state: &BrokerState, hook: &WebhookRecord) -> Result<WebhookView, ErrorResponse> {
    let counts = state.store().delivery_counts(&hook.id).await?;
    let filter = DeliveryFilter { target: Some(hook.id.clone()), state: None, limit: 1 };
    let last = state.store().deliveries(&filter).await?.first().map(delivery_view);
    Ok(WebhookView {
        id: hook.id.clone(),
        url: hook.url.clone(),
        events: hook.events.clone(),
        connections: hook.connections.clone(),
        created_at: rfc3339(hook.created_at),
        pending: counts.pending,
        delivered: counts.delivered,
        failed: counts.failed,
        last_delivery: last,
    })
}

/// Whether two hosts name the same machine as far as the broker can tell (loopback names).
fn same_host(a: &str, b: &str) -> bool {
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1") || h.starts_with("127.");
    a.eq_ignore_ascii_case(b) || (loopback(a) && loopback(b))
}

/// Checks a receiver URL against the host rule; the parsed URL.
pub(crate) fn check_url(state: &BrokerState, raw: &str) -> Result<Url, ErrorResponse> {
    let raw = raw.trim();
    if raw.len() > MAX_WEBHOOK_URL_LEN {
        return Err(ErrorResponse::bad_request(format!("`url` is longer than {MAX_WEBHOOK_URL_LEN} bytes")));
    }
    let url = Url::parse(raw).map_err(|e| ErrorResponse::bad_request(format!("`url` is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ErrorResponse::bad_request(
            "`url` must not hold credentials (webhook URLs are stored in clear); verify deliveries by their signature instead",
        ));
    }
    let host = url.host_str().unwrap_or("");
    let origin = url.origin().ascii_serialization();
    // An origin the operator allowed (the host rule's list; tests allow any loopback origin).
    let allowed = state.transport().policy().check("webhook URL", &url).is_ok();
    match url.scheme() {
        "https" if !host.is_empty() => {}
        "http" if allowed => {}
        _ => {
            return Err(ErrorResponse::bad_request(format!(
                "`url` must be https, or an origin the operator allowed (--allow-origin); {origin} is neither"
            )));
        }
    }
    if let Some(me) = state.public_url()
        && same_host(host, me.host_str().unwrap_or(""))
        && url.port_or_known_default() == me.port_or_known_default()
    {
        return Err(ErrorResponse::bad_request("`url` points at this broker; deliveries must go to another service"));
    }
    Ok(url)
}

/// Whether the key may see or change a webhook: every connection it names is the key's.
fn may_see(key: &ApiKeyRecord, hook: &WebhookRecord) -> bool {
    key.all_connections() || hook.connections.iter().all(|c| c != "*" && key.allows(c, Scope::Admin))
}

/// Creates a webhook for `creator`; the record (with its secret).
pub(crate) async fn create(
    state: &BrokerState,
    creator: &ApiKeyRecord,
    actor: &str,
    new: NewWebhook,
) -> Result<WebhookRecord, ErrorResponse> {
    let url = check_url(state, &new.url)?;
    if new.events.is_empty() || new.events.len() > MAX_LIST {
        return Err(ErrorResponse::bad_request(format!("`events` must name 1 to {MAX_LIST} event types")));
    }
    let mut events: Vec<String> = Vec::new();
    for e in &new.events {
        let e = e.trim();
        if !valid_pattern(e) {
            return Err(ErrorResponse::bad_request(format!(
                "events: {e:?} is not an event type, a family like `connection.*`, or `*`; the types are {}",
                crate::notify::EVENT_TYPES.join(", ")
            )));
        }
        if !events.iter().any(|x| x == e) {
            events.push(e.to_owned());
        }
    }
    let wanted = new.connections.unwrap_or_else(|| vec!["*".to_owned()]);
    if wanted.is_empty() || wanted.len() > MAX_LIST {
        return Err(ErrorResponse::bad_request(format!(
            "`connections` must name 1 to {MAX_LIST} connections, or \"*\""
        )));
    }
    let mut connections: Vec<String> = Vec::new();
    for c in &wanted {
        let c = c.trim();
        if c == "*" {
            if !creator.all_connections() {
                return Err(ErrorResponse::forbidden("admin", Some("*")));
            }
        } else {
            validate_name(c).map_err(|e| ErrorResponse::bad_request(format!("connections: {}", e.0)))?;
            if !creator.allows(c, Scope::Admin) {
                return Err(ErrorResponse::forbidden("admin", Some(c)));
            }
        }
        if !connections.iter().any(|x| x == c) {
            connections.push(c.to_owned());
        }
    }
    let hook = WebhookRecord {
        id: format!("wh_{}", random_id(12)),
        url: url.to_string(),
        events,
        connections,
        secret: WebhookSecret::new(sign::new_secret()),
        created_by: actor.to_owned(),
        created_at: state.now(),
    };
    state.store().put_webhook(&hook).await?;
    let detail = format!("{} → {}", hook.id, url.origin().ascii_serialization());
    state.audit(actor, NO_CONNECTION, AuditAction::WebhookCreated, Some(detail)).await;
    Ok(hook)
}

/// `POST /v1/webhooks`.
pub(crate) async fn create_webhook(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let new: NewWebhook = serde_json::from_value(crate::api::parse_json(&body)?)
        .map_err(|e| ErrorResponse::bad_request(format!("not a webhook definition: {e}")))?;
    let hook = create(&state, &caller.key, &caller.actor(), new).await?;
    let answer = CreatedWebhook {
        id: hook.id.clone(),
        secret: hook.secret.secret().to_owned(),
        webhook: view(&state, &hook).await?,
    };
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

/// The webhooks the key may see.
pub(crate) async fn visible(state: &BrokerState, key: &ApiKeyRecord) -> Result<Vec<WebhookRecord>, ErrorResponse> {
    Ok(state.store().webhooks().await?.into_iter().filter(|h| may_see(key, h)).collect())
}

/// `GET /v1/webhooks`.
pub(crate) async fn list_webhooks(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<WebhookList>, ErrorResponse> {
    let mut webhooks = Vec::new();
    for hook in visible(&state, &caller.key).await? {
        webhooks.push(view(&state, &hook).await?);
    }
    Ok(Json(WebhookList { webhooks }))
}

/// The webhook `id` when the key may see it (404 otherwise: its existence is not revealed).
async fn visible_one(state: &BrokerState, key: &ApiKeyRecord, id: &str) -> Result<WebhookRecord, ErrorResponse> {
    match state.store().webhook(id).await? {
        Some(h) if may_see(key, &h) => Ok(h),
        _ => Err(ErrorResponse::not_found(format!("no webhook with id {id:?}"))),
    }
}

/// Deletes a webhook the key may see.
pub(crate) async fn delete(
    state: &BrokerState,
    key: &ApiKeyRecord,
    actor: &str,
    id: &str,
) -> Result<(), ErrorResponse> {
    let hook = visible_one(state, key, id).await?;
    state.store().delete_webhook(&hook.id).await?;
    state.audit(actor, NO_CONNECTION, AuditAction::WebhookDeleted, Some(hook.id.clone())).await;
    Ok(())
}

/// `DELETE /v1/webhooks/{id}`.
pub(crate) async fn delete_webhook(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DeletedWebhook>, ErrorResponse> {
    delete(&state, &caller.key, &caller.actor(), &id).await?;
    Ok(Json(DeletedWebhook { deleted: id }))
}

/// `GET /v1/webhooks/{id}/deliveries[?state=failed][&limit=N]`: newest first.
pub(crate) async fn list_deliveries(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ErrorResponse> {
    let hook = visible_one(&state, &caller.key, &id).await?;
    let wanted =
        match q.state.as_deref() {
            None => None,
            Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
                ErrorResponse::bad_request(format!("state: {s:?} is not pending, delivered or failed"))
            })?),
        };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ErrorResponse::bad_request("limit: 1 to 1000"));
    }
    let filter = DeliveryFilter { target: Some(hook.id), state: wanted, limit };
    let deliveries = state.store().deliveries(&filter).await?.iter().map(delivery_view).collect();
    Ok(Json(DeliveryList { deliveries }))
}

/// Sets the failed delivery `seq` of a webhook the key may see pending again, due now (the API
/// and the page).
pub(crate) async fn retry(state: &BrokerState, key: &ApiKeyRecord, id: &str, seq: i64) -> Result<(), ErrorResponse> {
    let hook = visible_one(state, key, id).await?;
    let filter = DeliveryFilter { target: Some(hook.id.clone()), state: Some(DeliveryState::Failed), limit: 1000 };
    if !state.store().deliveries(&filter).await?.iter().any(|d| d.seq == seq)
        || !state.store().retry_delivery(seq).await?
    {
        return Err(ErrorResponse::conflict(format!("webhook {id} has no failed delivery {seq}")));
    }
    state.wake_outbox();
    Ok(())
}

/// `POST /v1/webhooks/{id}/deliveries/{seq}/retry`: a failed delivery is tried again now.
pub(crate) async fn retry_delivery(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path((id, seq)): Path<(String, i64)>,
) -> Result<Json<RetriedDelivery>, ErrorResponse> {
    retry(&state, &caller.key, &id, seq).await?;
    Ok(Json(RetriedDelivery { seq, state: "pending".to_owned() }))
}
