//! The control API under `/__playground/`, for tests and demos. Every call needs the control
//! key: `Authorization: Bearer <control_key>` or `X-Playground-Key: <control_key>`.
//!
//! | method & path | what it does |
//! |---|---|
//! | `POST /reset` | back to the seed: tokens, approvals, codes, faults, stats, settings, clock |
//! | `GET /stats` | token requests by grant, tokens issued by grant/app/user, errors, approvals |
//! | `POST /sessions/expire` | every access token expires now |
//! | `POST /users/{username}/revoke-tokens` | revokes the user's tokens and approvals |
//! | `PATCH /users/{username}` | `{"active": bool, "frozen": bool}`, as an administrator in Setup (change events) |
//! | `POST /records/undelete` | `{"ids": [...]}`: restores records from the recycle bin (`records`) |
//! | `GET /clock`, `POST /clock` | read, or shift with `{"advance_seconds": n}` / `{"advance_ms": n}` |
//! | `GET/POST/DELETE /faults` | list, arm (`{"path_prefix","count","kind",…}`), clear faults |
//! | `GET/PATCH /settings` | `reject_concurrent_refresh`, `hold_refreshes`, `daily_api_requests`, `bulk_rows_per_second` |
//! | `/pubsub/…` | the Pub/Sub API's stats, keep-alive interval and faults (`pubsub`) |

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

mod pubsub;
mod records;

use crate::faults::Fault;
use crate::oauth::secrets_equal;
use crate::state::Shared;

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/reset", post(reset))
        .route("/stats", get(stats))
        .route("/sessions/expire", post(expire_sessions))
        .route("/users/{username}/revoke-tokens", post(revoke_user_tokens))
        .route("/users/{username}", axum::routing::patch(update_user))
        .route("/clock", get(clock).post(shift_clock))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/settings", get(settings).patch(update_settings))
        .nest("/pubsub", pubsub::router())
        .nest("/records", records::router())
}

pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": status.canonical_reason().unwrap_or("error"), "message": message}))).into_response()
}

pub(crate) fn check(pg: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let header_key = headers.get("x-playground-key").and_then(|v| v.to_str().ok());
    match bearer.or(header_key) {
        Some(k) if secrets_equal(k.trim(), &pg.control_key) => Ok(()),
        Some(_) => Err(problem(StatusCode::UNAUTHORIZED, "wrong control key")),
        None => Err(problem(
            StatusCode::UNAUTHORIZED,
            "the control API needs the control key: Authorization: Bearer <control_key>",
        )),
    }
}

/// Parses a JSON body, turning bad input into a 400 that says what is wrong.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| problem(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

async fn reset(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    pg.reset();
    Json(json!({"reset": true})).into_response()
}

async fn stats(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let now = pg.now_ms();
    let rt = pg.rt();
    let s = &rt.stats;
    let mut approvals = std::collections::BTreeMap::<(String, String), u64>::new();
    for f in rt.families.values().filter(|f| !f.revoked) {
        let key = (rt.users[f.user].username.clone(), pg.apps[f.app].seed.client_id.clone());
        *approvals.entry(key).or_default() += 1;
    }
    let approvals: Vec<_> = approvals
        .into_iter()
        .map(|((username, client_id), count)| json!({"username": username, "client_id": client_id, "count": count}))
        .collect();
    Json(json!({
        "token_requests": {"total": s.token_requests.values().sum::<u64>(), "by_grant": s.token_requests},
        "tokens_issued": {
            "total": s.tokens_issued.values().sum::<u64>(),
            "by_grant": s.tokens_issued,
            "by_client_id": s.tokens_issued_by_client,
            "by_username": s.tokens_issued_by_user,
        },
        "token_errors": {"total": s.token_errors.values().sum::<u64>(), "by_error": s.token_errors},
        "approvals": approvals,
        "refreshes_in_flight": rt.refreshing.len(),
        "live_access_tokens": rt.access_tokens.values().filter(|t| now < t.expires_ms).count(),
        "api_requests": s.api_requests,
    }))
    .into_response()
}

async fn expire_sessions(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let now = pg.now_ms();
    let mut rt = pg.rt();
    let mut n = 0;
    for t in rt.access_tokens.values_mut().filter(|t| t.expires_ms > now) {
        t.expires_ms = now;
        n += 1;
    }
    Json(json!({"expired": n})).into_response()
}

async fn revoke_user_tokens(State(pg): State<Shared>, headers: HeaderMap, Path(username): Path<String>) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let mut rt = pg.rt();
    let Some(user) = rt.user_by_name(&username) else {
        return problem(StatusCode::NOT_FOUND, &format!("no user {username:?}"));
    };
    let tokens = rt.access_tokens.values().filter(|t| t.user == user).count();
    let approvals = rt.families.values().filter(|f| f.user == user && !f.revoked).count();
    rt.revoke_user(user);
    Json(json!({"revoked_access_tokens": tokens, "revoked_approvals": approvals})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    active: Option<bool>,
    frozen: Option<bool>,
}

async fn update_user(
    State(pg): State<Shared>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: bytes::Bytes,
) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let patch: UserPatch = match parse(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = {
        let rt = pg.rt();
        let Some(user) = rt.user_by_name(&username) else {
            return problem(StatusCode::NOT_FOUND, &format!("no user {username:?}"));
        };
        rt.users[user].id.clone()
    };
    // The records first (an UPDATE change event for each that changes), then the logins.
    if let Err(e) = crate::data::admin::set_user_flags(&pg, &id, patch.active, patch.frozen) {
        return problem(StatusCode::BAD_REQUEST, &e.message);
    }
    let mut rt = pg.rt();
    let Some(u) = rt.users.iter_mut().find(|u| u.id == id) else {
        return problem(StatusCode::NOT_FOUND, &format!("no user {username:?}"));
    };
    if let Some(a) = patch.active {
        u.active = a;
    }
    if let Some(f) = patch.frozen {
        u.frozen = f;
    }
    Json(json!({"username": u.username, "id": u.id, "active": u.active, "frozen": u.frozen})).into_response()
}

async fn clock(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    Json(json!({"now_ms": pg.now_ms(), "offset_ms": pg.clock.offset_ms()})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockShift {
    advance_seconds: Option<i64>,
    advance_ms: Option<i64>,
}

async fn shift_clock(State(pg): State<Shared>, headers: HeaderMap, body: bytes::Bytes) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let shift: ClockShift = match parse(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ms = shift.advance_ms.unwrap_or(0).saturating_add(shift.advance_seconds.unwrap_or(0).saturating_mul(1000));
    if ms == 0 {
        return problem(StatusCode::BAD_REQUEST, "give advance_seconds or advance_ms (non-zero)");
    }
    pg.clock.advance_ms(ms);
    Json(json!({"now_ms": pg.now_ms(), "offset_ms": pg.clock.offset_ms()})).into_response()
}

async fn list_faults(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    Json(json!({"faults": pg.rt().faults})).into_response()
}

async fn add_fault(State(pg): State<Shared>, headers: HeaderMap, body: bytes::Bytes) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let fault: Fault = match parse(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !fault.path_prefix.starts_with('/') {
        return problem(StatusCode::BAD_REQUEST, "path_prefix must start with /");
    }
    if fault.count == 0 {
        return problem(StatusCode::BAD_REQUEST, "count must be at least 1");
    }
    pg.rt().faults.push(fault.clone());
    (StatusCode::CREATED, Json(fault)).into_response()
}

async fn clear_faults(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    pg.rt().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn settings(State(pg): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    Json(pg.rt().settings.clone()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    reject_concurrent_refresh: Option<bool>,
    hold_refreshes: Option<bool>,
    daily_api_requests: Option<u64>,
    bulk_rows_per_second: Option<u64>,
}

async fn update_settings(State(pg): State<Shared>, headers: HeaderMap, body: bytes::Bytes) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let patch: SettingsPatch = match parse(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let settings = {
        let mut rt = pg.rt();
        if let Some(v) = patch.reject_concurrent_refresh {
            rt.settings.reject_concurrent_refresh = v;
        }
        if let Some(v) = patch.hold_refreshes {
            rt.settings.hold_refreshes = v;
        }
        if let Some(v) = patch.daily_api_requests {
            rt.settings.daily_api_requests = v;
        }
        if let Some(v) = patch.bulk_rows_per_second {
            rt.settings.bulk_rows_per_second = v;
        }
        rt.settings.clone()
    };
    pg.refresh_hold.send_replace(settings.hold_refreshes);
    Json(settings).into_response()
}
