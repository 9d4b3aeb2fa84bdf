//! The Pub/Sub part of the control API, under `/__playground/pubsub/`:
//!
//! | method & path | what it does |
//! |---|---|
//! | `GET /stats` | subscribe calls, open streams, most events outstanding on a stream, published/delivered |
//! | `GET /settings`, `PATCH /settings` | `{"keepalive_ms": n, "overflow_threshold": n}`: the keep-alive interval (default 270 s), the changes one transaction may make before overflow events (default 100,000) |
//! | `GET /faults`, `POST /faults`, `DELETE /faults` | list, arm (`{"kind", "count", "delay_ms"}`), clear |
//!
//! Fault kinds: `corrupted_replay_id` (the next Subscribe is refused with
//! `…fetch.replayid.corrupted`), `auth_error` (an open stream ends with `…service.auth.error`
//! and its token is revoked), `drop_stream` (an open stream ends with `UNAVAILABLE`), `delay`
//! (the next responses wait `delay_ms`), `gap` (the next `count` change events are published as
//! gap events: `GAP_CREATE`…, header only).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{check, parse, problem};
use crate::events::{ArmedFault, FaultKind};
use crate::state::Shared;

/// Keep-alive intervals below this would turn streams into busy loops.
const MIN_KEEPALIVE_MS: u64 = 10;

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/stats", get(stats))
        .route("/settings", get(settings).patch(update_settings))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
}

async fn stats(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let st = pg.events.state();
    let mut body = serde_json::to_value(&st.stats).unwrap_or_default();
    body["retained_events"] = json!(st.events.len());
    body["latest_replay_id"] = json!(st.last_replay);
    Json(body).into_response()
}

fn settings_body(pg: &Shared) -> serde_json::Value {
    let st = pg.events.state();
    json!({"keepalive_ms": st.keepalive.as_millis() as u64, "overflow_threshold": st.overflow_threshold})
}

async fn settings(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    Json(settings_body(&pg)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    keepalive_ms: Option<u64>,
    overflow_threshold: Option<u64>,
}

async fn update_settings(State(pg): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let patch: SettingsPatch = match parse(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if patch.keepalive_ms.is_some_and(|ms| ms < MIN_KEEPALIVE_MS) {
        return problem(StatusCode::BAD_REQUEST, &format!("keepalive_ms must be at least {MIN_KEEPALIVE_MS}"));
    }
    if patch.overflow_threshold == Some(0) {
        return problem(StatusCode::BAD_REQUEST, "overflow_threshold must be at least 1");
    }
    if let Some(n) = patch.overflow_threshold {
        pg.events.state().overflow_threshold = n;
    }
    if let Some(ms) = patch.keepalive_ms {
        pg.events.state().keepalive = Duration::from_millis(ms);
        // Streams re-read the interval when they wake.
        pg.events.wake_all();
    }
    Json(settings_body(&pg)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    kind: FaultKind,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    delay_ms: u64,
}

fn one() -> u32 {
    1
}

async fn list_faults(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    Json(json!({"faults": pg.events.state().faults.clone()})).into_response()
}

async fn add_fault(State(pg): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let spec: FaultSpec = match parse(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if spec.count == 0 {
        return problem(StatusCode::BAD_REQUEST, "count must be at least 1");
    }
    if spec.kind == FaultKind::Delay && spec.delay_ms == 0 {
        return problem(StatusCode::BAD_REQUEST, "a delay fault needs delay_ms > 0");
    }
    pg.events.state().faults.push(ArmedFault { kind: spec.kind, remaining: spec.count, delay_ms: spec.delay_ms });
    pg.events.wake_all();
    (StatusCode::CREATED, Json(json!({"armed": spec.kind, "count": spec.count}))).into_response()
}

async fn clear_faults(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    pg.events.state().faults.clear();
    Json(json!({"cleared": true})).into_response()
}
