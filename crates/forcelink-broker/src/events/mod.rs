//! The broker relays Salesforce events: subscriptions (`/v1/subscriptions`, scope `events`)
//! deliver a connection's Pub/Sub topic to a receiver as Standard Webhooks, at least once, in
//! order, with a `webhook-id` that is the same for every delivery of one event; and
//! `GET /v1/connections/{name}/events` streams a topic as server-sent events.
//!
//! - `admin`: [`crate::SubscriptionAdmin`], the same for the CLI.
//! - `spec`: what a subscription is (kept as JSON in the store), filters, bodies and ids.
//! - `consumer`: one consumer per subscription across replicas (a work lease in the store).
//! - `deliver`: the subscription's outbox rows, sent one after another.
//! - `snapshot`: a Bulk 2.0 query's rows first, then the stream, nothing lost between.
//! - `sse`: the event stream for tools that pull.
//! - `status`: how a consumer run went, and its report in the store.

pub(crate) mod admin;
pub(crate) mod consumer;
pub(crate) mod deliver;
pub(crate) mod snapshot;
pub(crate) mod spec;
pub(crate) mod sse;
pub(crate) mod status;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use forcelink_auth::store::ConnectionId;
use forcelink_store::connection::validate_name;
use forcelink_store::{
    ApiKeyRecord, AuditAction, CheckpointKey, DeliveryFilter, Scope, SubscriptionRecord, WebhookSecret,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Caller;
use crate::error::ErrorResponse;
use crate::ids::random_id;
use crate::state::BrokerState;
use crate::time::rfc3339;
use crate::webhooks::{DeliveryList, DeliveryView, delivery_view};
use spec::{Filter, Replay, Report, Spec};

/// `webhook` of a new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiverBody {
    /// Where events are POSTed: https, or an origin allowed with `--allow-origin`.
    #[schema(max_length = 2000, format = "uri")]
    pub url: String,
}

/// `POST /v1/subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSubscription {
    /// The connection whose events are relayed.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub connection: String,
    /// `/data/AccountChangeEvent`, `/data/ChangeEvents` or `/event/Name__e`.
    #[schema(pattern = "^/(data|event)/[A-Za-z0-9_]{1,80}$")]
    pub topic: String,
    /// Where the first read starts: `latest` (default) or `earliest` (the 72 hours Salesforce keeps).
    #[serde(default)]
    pub replay: Option<Replay>,
    /// Which events to deliver.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Where to deliver.
    pub webhook: ReceiverBody,
    /// A SOQL query whose rows are delivered (`salesforce.snapshot`) before the stream.
    #[serde(default)]
    #[schema(
        max_length = 10000,
        pattern = "^[Ss][Ee][Ll][Ee][Cc][Tt] [^\\n]* [Ff][Rr][Oo][Mm] [A-Za-z_][A-Za-z0-9_]*( [^\\n]*)?$"
    )]
    pub snapshot: Option<String>,
    /// Skip changes this broker made (its `Sforce-Call-Options` client id in `changeOrigin`).
    #[serde(default)]
    pub echo_suppression: Option<bool>,
}

/// Where a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ReceiverView {
    pub url: String,
}

/// A subscription (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct SubscriptionView {
    pub id: String,
    pub connection: String,
    pub topic: String,
    pub replay: Replay,
    pub filter: Filter,
    pub snapshot: Option<String>,
    pub echo_suppression: bool,
    pub webhook: ReceiverView,
    /// `active` or `paused`.
    pub state: String,
    /// Events and snapshot rows waiting for the receiver.
    pub lag: u64,
    pub delivered: u64,
    pub failed: u64,
    /// The replay id (base64) of the last event the receiver accepted.
    pub checkpoint: Option<String>,
    /// The replay id (base64) the consumer has read up to.
    pub position: Option<String>,
    pub last_delivery: Option<DeliveryView>,
    /// What the consumer last reported, and when (RFC 3339).
    pub consumer: Option<Report>,
    pub consumer_reported_at: Option<String>,
    pub created_at: String,
}

/// `POST /v1/subscriptions`: the subscription and its signing secret (shown this once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedSubscription {
    pub id: String,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library).
    pub secret: String,
    pub subscription: SubscriptionView,
}

/// `GET /v1/subscriptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

/// `DELETE /v1/subscriptions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct DeletedSubscription {
    pub deleted: String,
}

/// The subscription as the API shows it.
pub(crate) async fn view(state: &BrokerState, sub: &SubscriptionRecord) -> Result<SubscriptionView, ErrorResponse> {
    let spec = Spec::parse(&sub.spec)?;
    let store = state.store();
    let stream = store.delivery_counts(&sub.id).await?;
    let snap = store.delivery_counts(&deliver::snapshot_target(&sub.id)).await?;
    let mut last = None;
    for target in [sub.id.clone(), deliver::snapshot_target(&sub.id)] {
        let filter = DeliveryFilter { target: Some(target), state: None, limit: 1 };
        if let Some(d) = store.deliveries(&filter).await?.first()
            && last.as_ref().is_none_or(|l: &DeliveryView| d.seq > l.seq)
        {
            last = Some(delivery_view(d));
        }
    }
    let connection = ConnectionId::new(&sub.connection);
    let replay_of = |name: &str| CheckpointKey::new(name, &connection, &spec.topic).ok();
    let mut checkpoint = None;
    if let Some(key) = replay_of(&deliver::acked_name(&sub.id)) {
        checkpoint = store
            .checkpoint(&key)
            .await?
            .map(|c| forcelink_client::pubsub::ReplayId::from_bytes(c.replay_id).to_base64());
    }
    let mut position = None;
    if let Some(key) = replay_of(&sub.id) {
        position = store
            .checkpoint(&key)
            .await?
            .map(|c| forcelink_client::pubsub::ReplayId::from_bytes(c.replay_id).to_base64());
    }
    Ok(SubscriptionView {
        id: sub.id.clone(),
        connection: sub.connection.clone(),
        topic: spec.topic,
        replay: spec.replay,
        filter: spec.filter,
        snapshot: spec.snapshot,
        echo_suppression: spec.echo_suppression,
        webhook: ReceiverView { url: sub.url.clone() },
        state: if sub.paused { "paused" } else { "active" }.to_owned(),
        lag: stream.pending + snap.pending,
        delivered: stream.delivered + snap.delivered,
        failed: stream.failed + snap.failed,
        checkpoint,
        position,
        last_delivery: last,
        consumer: sub.status.as_deref().and_then(|s| serde_json::from_str(s).ok()),
        consumer_reported_at: sub.status_at.map(rfc3339),
        created_at: rfc3339(sub.created_at),
    })
}

/// Whether the key may see and change a subscription.
fn may_use(key: &ApiKeyRecord, sub: &SubscriptionRecord) -> bool {
    key.allows(&sub.connection, Scope::Events)
}

/// Checks a new subscription and saves it for `actor`; the record (with its secret).
pub(crate) async fn create(
    state: &BrokerState,
    key: &ApiKeyRecord,
    actor: &str,
    new: NewSubscription,
) -> Result<SubscriptionRecord, ErrorResponse> {
    let connection = new.connection.trim().to_owned();
    validate_name(&connection).map_err(|e| ErrorResponse::bad_request(format!("connection: {}", e.0)))?;
    if !key.allows(&connection, Scope::Events) {
        return Err(ErrorResponse::forbidden(Scope::Events.as_str(), Some(&connection)));
    }
    if state.store().connection(&ConnectionId::new(&connection)).await?.is_none() {
        return Err(ErrorResponse::not_found(format!("no connection named {connection:?}")));
    }
    let topic = new.topic.trim().to_owned();
    spec::check_topic(&topic)?;
    let url = crate::webhooks::check_url(state, &new.webhook.url)?;
    let filter = new.filter.unwrap_or_default().checked()?;
    let snapshot = new.snapshot.as_deref().map(snapshot::check_query).transpose()?;
    let spec = Spec {
        topic: topic.clone(),
        replay: new.replay.unwrap_or_default(),
        filter,
        snapshot,
        snapshot_enqueued: false,
        echo_suppression: new.echo_suppression.unwrap_or(false),
    };
    let sub = SubscriptionRecord {
        id: format!("sub_{}", random_id(12)),
        connection: connection.clone(),
        url: url.to_string(),
        secret: WebhookSecret::new(crate::webhooks::sign::new_secret()),
        spec: spec.to_text(),
        paused: false,
        status: None,
        status_at: None,
        created_by: actor.to_owned(),
        created_at: state.now(),
    };
    state.store().put_subscription(&sub).await?;
    let detail = format!("{} {topic} → {}", sub.id, url.origin().ascii_serialization());
    state.audit(actor, &connection, AuditAction::SubscriptionCreated, Some(detail)).await;
    Ok(sub)
}

/// `POST /v1/subscriptions`.
pub(crate) async fn create_subscription(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let new: NewSubscription = serde_json::from_value(crate::api::parse_json(&body)?)
        .map_err(|e| ErrorResponse::bad_request(format!("not a subscription: {e}")))?;
    let sub = create(&state, &caller.key, &caller.actor(), new).await?;
    let answer = created(&state, &sub).await?;
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

/// The answer to a creation: the id, the secret (this once) and the view.
pub(crate) async fn created(
    state: &BrokerState,
    sub: &SubscriptionRecord,
) -> Result<CreatedSubscription, ErrorResponse> {
    Ok(CreatedSubscription {
        id: sub.id.clone(),
        secret: sub.secret.secret().to_owned(),
        subscription: view(state, sub).await?,
    })
}

/// Every subscription the key may see, as the API lists them.
pub(crate) async fn list(state: &BrokerState, key: &ApiKeyRecord) -> Result<SubscriptionList, ErrorResponse> {
    let mut subscriptions = Vec::new();
    for sub in visible(state, key).await? {
        subscriptions.push(view(state, &sub).await?);
    }
    Ok(SubscriptionList { subscriptions })
}

/// The subscriptions the key may see.
pub(crate) async fn visible(state: &BrokerState, key: &ApiKeyRecord) -> Result<Vec<SubscriptionRecord>, ErrorResponse> {
    Ok(state.store().subscriptions().await?.into_iter().filter(|s| may_use(key, s)).collect())
}

/// `GET /v1/subscriptions`.
pub(crate) async fn list_subscriptions(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<SubscriptionList>, ErrorResponse> {
    Ok(Json(list(&state, &caller.key).await?))
}

/// The subscription `id` when the key may use it (404 otherwise: its existence is not revealed).
pub(crate) async fn visible_one(
    state: &BrokerState,
    key: &ApiKeyRecord,
    id: &str,
) -> Result<SubscriptionRecord, ErrorResponse> {
    match state.store().subscription(id).await? {
        Some(s) if may_use(key, &s) => Ok(s),
        _ => Err(ErrorResponse::not_found(format!("no subscription with id {id:?}"))),
    }
}

/// `GET /v1/subscriptions/{id}`.
pub(crate) async fn get_subscription(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ErrorResponse> {
    let sub = visible_one(&state, &caller.key, &id).await?;
    Ok(Json(view(&state, &sub).await?))
}

/// Pauses or resumes a subscription the key may use.
pub(crate) async fn set_paused(
    state: &BrokerState,
    key: &ApiKeyRecord,
    actor: &str,
    id: &str,
    paused: bool,
) -> Result<SubscriptionRecord, ErrorResponse> {
    let sub = visible_one(state, key, id).await?;
    state.store().set_subscription_paused(&sub.id, paused).await?;
    let what = if paused { "paused" } else { "resumed" };
    state.audit(actor, &sub.connection, AuditAction::SubscriptionChanged, Some(format!("{} {what}", sub.id))).await;
    Ok(SubscriptionRecord { paused, ..sub })
}

/// `POST /v1/subscriptions/{id}/pause`.
pub(crate) async fn pause_subscription(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ErrorResponse> {
    let sub = set_paused(&state, &caller.key, &caller.actor(), &id, true).await?;
    Ok(Json(view(&state, &sub).await?))
}

/// `POST /v1/subscriptions/{id}/resume`.
pub(crate) async fn resume_subscription(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ErrorResponse> {
    let sub = set_paused(&state, &caller.key, &caller.actor(), &id, false).await?;
    Ok(Json(view(&state, &sub).await?))
}

/// Deletes a subscription the key may use, its pending deliveries and its checkpoints.
pub(crate) async fn delete(
    state: &BrokerState,
    key: &ApiKeyRecord,
    actor: &str,
    id: &str,
) -> Result<(), ErrorResponse> {
    let sub = visible_one(state, key, id).await?;
    state.store().delete_subscription(&sub.id).await?;
    if let Ok(spec) = Spec::parse(&sub.spec) {
        let connection = ConnectionId::new(&sub.connection);
        for name in [sub.id.clone(), deliver::acked_name(&sub.id)] {
            if let Ok(k) = CheckpointKey::new(&name, &connection, &spec.topic) {
                state.store().delete_checkpoint(&k).await?;
            }
        }
    }
    state.audit(actor, &sub.connection, AuditAction::SubscriptionChanged, Some(format!("{} deleted", sub.id))).await;
    Ok(())
}

/// `DELETE /v1/subscriptions/{id}`.
pub(crate) async fn delete_subscription(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DeletedSubscription>, ErrorResponse> {
    delete(&state, &caller.key, &caller.actor(), &id).await?;
    Ok(Json(DeletedSubscription { deleted: id }))
}

/// `GET /v1/subscriptions/{id}/deliveries`: the latest deliveries (snapshot rows and events),
/// newest first.
pub(crate) async fn list_deliveries(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, ErrorResponse> {
    let sub = visible_one(&state, &caller.key, &id).await?;
    let mut deliveries = Vec::new();
    for target in [sub.id.clone(), deliver::snapshot_target(&sub.id)] {
        let filter = DeliveryFilter { target: Some(target), state: None, limit: 100 };
        deliveries.extend(state.store().deliveries(&filter).await?);
    }
    deliveries.sort_by_key(|d| std::cmp::Reverse(d.seq));
    deliveries.truncate(100);
    Ok(Json(DeliveryList { deliveries: deliveries.iter().map(delivery_view).collect() }))
}
