//! `GET /v1/connections/{name}/events?topic=…`: a topic as server-sent events, for tools that
//! prefer to pull. Each event is `event: salesforce.event`, `id:` its replay id (base64) and
//! `data:` the same JSON a subscription delivers. A client that reconnects with `Last-Event-ID`
//! resumes right after that event (Salesforce keeps 72 hours); without it the stream starts at
//! `replay` (`latest`, the default, or `earliest`). Nothing is stored: the broker holds one
//! Pub/Sub stream per open request and ends it when the client goes away.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use forcelink_client::pubsub::{ReplayFrom, ReplayId};
use futures_util::StreamExt;
use serde::Deserialize;

use super::consumer::client_for;
use super::spec::{self, Filter};
use crate::access::Caller;
use crate::error::ErrorResponse;
use crate::state::BrokerState;

/// A comment line this often keeps proxies from closing a quiet stream. 15 s.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?topic=…&replay=latest|earliest&change_types=…&fields=…`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    pub topic: String,
    pub replay: Option<String>,
    /// Comma-separated change types.
    pub change_types: Option<String>,
    /// Comma-separated field names.
    pub fields: Option<String>,
}

fn list(raw: &Option<String>) -> Vec<String> {
    raw.as_deref().unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `GET /v1/connections/{name}/events`.
pub(crate) async fn stream(
    State(state): State<BrokerState>,
    Extension(_caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ErrorResponse> {
    let topic = q.topic.trim().to_owned();
    spec::check_topic(&topic)?;
    let filter = Filter { change_types: list(&q.change_types), fields: list(&q.fields) }.checked()?;
    let last = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("\u{0}").trim().to_owned());
    let from =
        match (last, q.replay.as_deref().map(str::trim)) {
            (Some(id), _) if !id.is_empty() => ReplayFrom::After(ReplayId::from_base64(&id).map_err(|_| {
                ErrorResponse::bad_request("Last-Event-ID is not a replay id this stream sent (base64)")
            })?),
            (_, None | Some("latest")) => ReplayFrom::Latest,
            (_, Some("earliest")) => ReplayFrom::Earliest,
            (_, Some(other)) => {
                return Err(ErrorResponse::bad_request(format!(
                    "replay: {:?} is not latest or earliest (resume with Last-Event-ID)",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
    let client = client_for(&state, &name).await.map_err(|f| ErrorResponse::conflict(f.message))?;
    // The topic must exist and be readable before the answer starts.
    let info = client
        .get_topic(&topic)
        .await
        .map_err(|e| ErrorResponse::upstream(format!("Pub/Sub refused the topic {topic}: {e}")))?;
    if !info.can_subscribe {
        return Err(ErrorResponse::forbidden("subscribe", Some(&topic)));
    }
    let subscription = client.subscribe(&topic, from);
    let connection = name.clone();
    let clock = state.clock().clone();
    let events = subscription.filter_map(move |item| {
        let out = match item {
            Ok(event) if filter.passes(&event) => {
                let body = spec::body("salesforce.event", clock.now(), spec::event_data(&topic, &event));
                Some(Ok::<_, Infallible>(
                    SseEvent::default().event("salesforce.event").id(event.replay_id.to_base64()).data(body),
                ))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::info!(connection = %connection, "event stream ended: {e}");
                let body = serde_json::json!({"error": e.to_string()}).to_string();
                Some(Ok(SseEvent::default().event("error").data(body)))
            }
        };
        std::future::ready(out)
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}
