//! HTTP API v1: connections (create, list, show, replace, delete with revoke), test, token
//! hand-out, and the health endpoints. Secrets are write-only: answers show `[stored]`.

use forcelink_store::AuditAction;
use forcelink_store::Scope;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use forcelink_auth::ConnectionId;
use forcelink_store::connection::{SECRET_FIELDS, validate_name};
use forcelink_store::{ConnectionSpec, PutMode, PutOutcome, SecretRef, StoredConnection};
use serde_json::Value;

use crate::access::Caller;
use crate::body::{
    ChecksView, ConnectionList, ConnectionView, Deleted, HealthView, LastError, LimitView, NoteView, Revoked, Status,
    TestAnswer, TokenAnswer, TokenState, Usage,
};
use crate::error::ErrorResponse;
use crate::notify::{self, Event};
use crate::state::BrokerState;
use crate::time::rfc3339;

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Json<Status> {
    Json(Status { status: "ok".into(), message: None })
}

/// `GET /readyz`: the store answers too.
pub(crate) async fn readyz(State(state): State<BrokerState>) -> Response {
    match state.store().api_key("readiness-probe").await {
        Ok(_) => Json(Status { status: "ready".into(), message: None }).into_response(),
        Err(e) => {
            // Like every 5xx: the detail in the log, not in the answer.
            tracing::warn!("readiness: the store: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Status { status: "unavailable".into(), message: Some("the store does not answer".into()) }),
            )
                .into_response()
        }
    }
}

/// Parses a JSON body, or says what is wrong with it.
pub(crate) fn parse_json(body: &Bytes) -> Result<Value, ErrorResponse> {
    if body.is_empty() {
        return Err(ErrorResponse::bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ErrorResponse::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// A connection definition from the API or the page: `name` plus forcelink's field names.
/// Secret fields take values only: `env:` and `file:` references would let a caller read the
/// broker's environment and files into a request to a server of its choosing.
pub(crate) fn spec_from_json(
    mut value: Value,
    name_in_path: Option<&str>,
) -> Result<(String, ConnectionSpec), ErrorResponse> {
    let Some(obj) = value.as_object_mut() else {
        return Err(ErrorResponse::bad_request("the connection must be a JSON object"));
    };
    let body_name = match obj.remove("name") {
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ErrorResponse::bad_request("`name` must be a string")),
        None => None,
    };
    let name = match (name_in_path, body_name) {
        (Some(p), Some(b)) if p != b => {
            return Err(ErrorResponse::bad_request(format!("the body names {b:?} but the path names {p:?}")));
        }
        (Some(p), _) => p.to_owned(),
        (None, Some(b)) => b,
        (None, None) => return Err(ErrorResponse::bad_request("the connection needs a `name`")),
    };
    validate_name(&name).map_err(|e| ErrorResponse::bad_request(e.0))?;
    // Empty strings (unfilled form fields) mean "not set".
    obj.retain(|_, v| !matches!(v, Value::String(s) if s.trim().is_empty()) && !v.is_null());
    for field in SECRET_FIELDS {
        if let Some(Value::String(s)) = obj.get(field)
            && !SecretRef::parse(s).is_value()
        {
            return Err(ErrorResponse::bad_request(format!(
                "{field}: the broker takes secret values only, not env:/file: references"
            )));
        }
    }
    let spec: ConnectionSpec = serde_json::from_value(value)
        .map_err(|e| ErrorResponse::bad_request(format!("not a connection definition: {e}")))?;
    Ok((name, spec))
}

/// Checks that the settings make a usable connection whose every URL obeys the host rule
/// (https Salesforce hosts, or the origins the operator allowed with `--allow-origin`).
pub(crate) fn validate(state: &BrokerState, name: &str, spec: &ConnectionSpec) -> Result<(), ErrorResponse> {
    spec.validate(name, state.transport().policy()).map(|_| ()).map_err(|e| ErrorResponse::bad_request(e.0))
}

/// What the API shows of a connection (no secret).
pub(crate) async fn view(state: &BrokerState, stored: &StoredConnection) -> ConnectionView {
    let name = stored.name.as_str();
    let tokens = state.store().load(&stored.name).await.ok().flatten();
    let now = state.now();
    let token = match &tokens {
        Some(t) => TokenState {
            signed_in: true,
            issued_at: Some(rfc3339(t.set.issued_at)),
            expires_at: t.set.expires_at.map(rfc3339),
            expired: Some(t.set.expires_at.is_some_and(|e| e <= now)),
            has_refresh_token: Some(t.set.refresh_token.is_some()),
            instance_url: Some(t.set.instance_url.as_str().trim_end_matches('/').to_owned()),
        },
        None => TokenState {
            signed_in: false,
            issued_at: None,
            expires_at: None,
            expired: None,
            has_refresh_token: None,
            instance_url: None,
        },
    };
    let entry = state.live_entry(name);
    let health = entry.as_ref().map(|e| e.health()).unwrap_or_default();
    let usage = entry.as_ref().map(|e| Usage {
        tokens_handed_out: e.counters.tokens.get(),
        proxied_requests: e.counters.proxied.get(),
        actions: e.counters.actions.get(),
        salesforce_limit_info: health.limit_info.clone(),
    });
    // Green: the last observation succeeded, or (nothing observed yet) a valid token is stored;
    // null: never used and no token yet.
    let ok = health.ok().or_else(|| tokens.as_ref().map(|t| t.set.expires_at.is_none_or(|e| e > now)));
    let record = match state.store().health(&stored.name).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(connection = name, "reading the connection's state: {e}");
            None
        }
    };
    let limit = |l: &forcelink_store::LimitUsage| LimitView {
        name: l.name.clone(),
        max: l.max,
        remaining: l.remaining,
        used_percent: (l.used_fraction() * 1000.0).round() / 10.0,
    };
    let checks = match &record {
        Some(r) => ChecksView {
            checked_at: r.checked_at.map(rfc3339),
            last_used: r.last_used.map(rfc3339),
            token_expires_at: r.token_expires_at.map(rfc3339),
            approvals_used: r.approvals_used,
            approvals_max: forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP as u32,
            daily_api_requests: r.daily_api().map(limit),
            limits: r.limits.iter().map(limit).collect(),
            recent: r
                .notes
                .iter()
                .map(|n| NoteView { at: rfc3339(n.at), kind: n.kind.clone(), ok: n.ok, detail: n.detail.clone() })
                .collect(),
        },
        None => ChecksView {
            approvals_max: forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP as u32,
            ..ChecksView::default()
        },
    };
    ConnectionView {
        state: record.as_ref().map(|r| r.state).unwrap_or_default().into(),
        state_reason: record.as_ref().and_then(|r| r.reason.clone()),
        fix: record.as_ref().and_then(|r| r.fix.clone()),
        state_since: record.as_ref().map(|r| rfc3339(r.since)),
        checks,
        name: name.to_owned(),
        method: stored.spec.method.map(|m| m.as_str().to_owned()),
        environment: stored.spec.environment.map(|e| e.as_str().to_owned()),
        settings: stored.spec.redacted(),
        created_at: rfc3339(stored.created_at),
        updated_at: rfc3339(stored.updated_at),
        token,
        health: HealthView {
            ok,
            last_ok: health.last_ok.map(rfc3339),
            last_error: health.last_error.as_ref().map(|(at, m)| LastError { at: rfc3339(*at), message: m.clone() }),
        },
        usage,
    }
}

async fn stored(state: &BrokerState, name: &str) -> Result<StoredConnection, ErrorResponse> {
    state
        .store()
        .connection(&ConnectionId::new(name))
        .await?
        .ok_or_else(|| ErrorResponse::not_found(format!("no connection named {name:?}")))
}

/// `GET /v1/connections`: the connections the key administers.
pub(crate) async fn list_connections(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ConnectionList>, ErrorResponse> {
    let mut connections = Vec::new();
    for c in state.store().connections().await? {
        if caller.key.allows(c.name.as_str(), Scope::Admin) {
            connections.push(view(&state, &c).await);
        }
    }
    Ok(Json(ConnectionList { connections }))
}

/// Creates a connection (the page and the API share this).
pub(crate) async fn create(
    state: &BrokerState,
    actor: &str,
    name: &str,
    spec: &ConnectionSpec,
) -> Result<(), ErrorResponse> {
    validate(state, name, spec)?;
    match state.store().put_connection(&ConnectionId::new(name), spec, PutMode::Create).await? {
        PutOutcome::AlreadyExists => {
            Err(ErrorResponse::conflict(format!("a connection named {name:?} exists; replace it with PUT")))
        }
        _ => {
            state.evict(name);
            state.audit(actor, name, AuditAction::ConnectionCreated, None).await;
            let method = spec.method.map(|m| m.as_str());
            notify::emit(state, name, &[Event::new("connection.created", serde_json::json!({ "method": method }))])
                .await;
            Ok(())
        }
    }
}

/// `POST /v1/connections`.
pub(crate) async fn create_connection(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let (name, spec) = spec_from_json(parse_json(&body)?, None)?;
    caller.require(&state, Scope::Admin, &name)?;
    create(&state, &caller.actor(), &name, &spec).await?;
    let created = stored(&state, &name).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &created).await)).into_response())
}

/// `GET /v1/connections/{name}`.
pub(crate) async fn get_connection(
    State(state): State<BrokerState>,
    Extension(_caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<ConnectionView>, ErrorResponse> {
    let c = stored(&state, &name).await?;
    Ok(Json(view(&state, &c).await))
}

/// `PUT /v1/connections/{name}`: replaces the settings; secret fields left out keep their
/// stored values (they cannot be read back to be sent again).
pub(crate) async fn replace_connection(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ConnectionView>, ErrorResponse> {
    let (name, submitted) = spec_from_json(parse_json(&body)?, Some(&name))?;
    submitted.check_urls(&name, state.transport().policy()).map_err(|e| ErrorResponse::bad_request(e.0))?;
    let old = state.store().connection(&ConnectionId::new(&name)).await?;
    // Secrets left out keep their stored values, unless the edit moves the connection to
    // another endpoint: then every secret must come again (they never follow a new host).
    let (spec, changed) = match &old {
        Some(old) => old.spec.apply_edit(submitted).map_err(|e| {
            ErrorResponse::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "secrets_required",
                format!("connection {name:?}: {e}"),
            )
        })?,
        None => (submitted, Vec::new()),
    };
    validate(&state, &name, &spec)?;
    // The new settings take effect at once: the old token set is revoked where it came from
    // (best effort) and forgotten before the new settings are saved.
    if let Some(old) = &old
        && !changed.is_empty()
    {
        drop_tokens(&state, old).await?;
    }
    let outcome = state.store().put_connection(&ConnectionId::new(&name), &spec, PutMode::Upsert).await?;
    state.evict(&name);
    let (action, detail, event) = if outcome == PutOutcome::Created {
        let method = spec.method.map(|m| m.as_str());
        (
            AuditAction::ConnectionCreated,
            None,
            Event::new("connection.created", serde_json::json!({ "method": method })),
        )
    } else {
        let list = if changed.is_empty() { "none".to_owned() } else { changed.join(", ") };
        let event = Event::new("connection.updated", serde_json::json!({ "changed": changed }));
        (AuditAction::ConnectionUpdated, Some(format!("changed: {list}")), event)
    };
    state.audit(&caller.actor(), &name, action, detail).await;
    notify::emit(&state, &name, &[event]).await;
    let c = stored(&state, &name).await?;
    Ok(Json(view(&state, &c).await))
}

pub(crate) use crate::body::DeleteQuery;
pub(crate) use crate::body::TokenQuery;

/// Revokes a connection's tokens at Salesforce (the refresh token when there is one, which
/// ends its access tokens too) then deletes it. Returns whether the revocation succeeded.
pub(crate) async fn delete(
    state: &BrokerState,
    actor: &str,
    name: &str,
    revoke: bool,
) -> Result<Deleted, ErrorResponse> {
    let c = stored(state, name).await?;
    let mut revoked = None;
    if revoke && let Some(tokens) = state.store().load(&c.name).await? {
        revoked = Some(match revoke_tokens(state, &c, &tokens.set).await {
            Ok(done) => Revoked::Done(done),
            Err(error) => Revoked::Failed { error },
        });
    }
    state.store().remove_connection(&c.name).await?;
    state.evict(name);
    let shown = serde_json::to_value(&revoked).unwrap_or_default();
    state.audit(actor, name, AuditAction::ConnectionDeleted, revoke.then(|| format!("revoked: {shown}"))).await;
    notify::emit(state, name, &[Event::new("connection.deleted", serde_json::json!({ "revoked": shown }))]).await;
    Ok(Deleted { deleted: name.to_owned(), revoked })
}

/// Revokes a token set at the server that issued it (never at a host the settings name now).
async fn revoke_tokens(
    state: &BrokerState,
    c: &StoredConnection,
    set: &forcelink_auth::TokenSet,
) -> Result<bool, String> {
    let connection = c.spec.resolve(c.name.as_str()).map_err(|e| e.0)?;
    connection.revoke(state.transport(), state.secrets(), set).await.map_err(|e| e.to_string())
}

/// Revokes (best effort) and forgets the stored token set of `old`, after its settings changed.
async fn drop_tokens(state: &BrokerState, old: &StoredConnection) -> Result<(), ErrorResponse> {
    if let Some(tokens) = state.store().load(&old.name).await? {
        if let Err(message) = revoke_tokens(state, old, &tokens.set).await {
            tracing::warn!(connection = %old.name, "the old tokens could not be revoked: {message}");
        }
        state.store().remove(&old.name).await?;
    }
    Ok(())
}

/// `DELETE /v1/connections/{name}[?revoke=false]`.
pub(crate) async fn delete_connection(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Json<Deleted>, ErrorResponse> {
    Ok(Json(delete(&state, &caller.actor(), &name, q.revoke.unwrap_or(true)).await?))
}

/// Gets a token and calls the REST API's resource list with it.
pub(crate) async fn test(state: &BrokerState, name: &str) -> Result<TestAnswer, ErrorResponse> {
    let entry = state.entry(name).await?;
    // A person (an admin key) asks: a remembered failure is tried again now, so a fix made at
    // the org (a user unfrozen, an app re-enabled) shows at once.
    entry.cache.reset_backoff();
    // A token the org refuses is invalidated and the test runs once more with a new one, so
    // the answer (and the connection's state) says why a token cannot be had, not just "401".
    for attempt in 0..2 {
        let issued = match state.token_or_cause(&entry).await {
            Ok(i) => i,
            Err((e, cause)) => {
                record_token_failure(state, name, &cause).await;
                return Err(e);
            }
        };
        let base = issued.token.instance_url.as_str().trim_end_matches('/').to_owned();
        let url = format!("{base}/services/data/v{}/", entry.connection.api_version);
        let result = state
            .proxy_http()
            .get(&url)
            .bearer_auth(issued.token.access_token.secret())
            .timeout(state.limits().request_timeout)
            .send()
            .await;
        let (ok, detail) = match result {
            Ok(resp) if resp.status().is_success() => {
                (true, format!("the REST API answered HTTP {}", resp.status().as_u16()))
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                if status == 401 {
                    entry.cache.invalidate(&issued.token.access_token);
                    if attempt == 0 {
                        continue;
                    }
                }
                (false, format!("the REST API answered HTTP {status}"))
            }
            Err(e) => (false, format!("could not reach {base}: {e}")),
        };
        if ok {
            entry.record_ok(state.now());
        } else {
            entry.record_error(state.now(), detail.clone());
        }
        record_test(state, name, ok, &detail).await;
        return Ok(TestAnswer {
            ok,
            detail,
            instance_url: base,
            api_version: entry.connection.api_version.clone(),
            token_issued_at: rfc3339(issued.issued_at),
        });
    }
    Err(ErrorResponse::upstream(format!("connection {name:?}: the org refused two tokens in a row")))
}

/// A test that could not get a token: the connection's state follows the cause.
async fn record_token_failure(state: &BrokerState, name: &str, cause: &forcelink_auth::AuthError) {
    let verdict = crate::monitor::verdict_auth(cause);
    let fresh = !matches!(cause, forcelink_auth::AuthError::BackingOff { .. });
    let result = crate::monitor::update(state, name, |h, now| {
        h.note(forcelink_store::HealthNote {
            at: now,
            kind: "renewal".into(),
            ok: false,
            detail: verdict.reason.clone(),
        });
        let mut events = crate::monitor::transition(h, &verdict, now);
        // A renewal failure is news with the change of state it causes; the same failure
        // again (a person testing once more) is not.
        if fresh && !events.is_empty() {
            events.push(crate::monitor::renewal_failed(&verdict));
        }
        Some(events)
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(connection = name, "recording a test: {}", e.message);
    }
}

/// A test is a check: it moves the connection's state like a background check.
async fn record_test(state: &BrokerState, name: &str, ok: bool, detail: &str) {
    let verdict = if ok {
        crate::monitor::Verdict::healthy(format!("tested: {detail}"))
    } else {
        crate::monitor::Verdict {
            state: forcelink_store::ConnectionState::Unhealthy,
            reason: format!("tested: {detail}"),
            fix: Some("check the connection's org and its user's access to the REST API".to_owned()),
        }
    };
    let result = crate::monitor::update(state, name, |h, now| {
        h.note(forcelink_store::HealthNote { at: now, kind: "check".into(), ok, detail: detail.to_owned() });
        h.last_used = Some(now);
        Some(crate::monitor::transition(h, &verdict, now))
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(connection = name, "recording a test: {}", e.message);
    }
}

/// `POST /v1/connections/{name}/test`.
pub(crate) async fn test_connection(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ErrorResponse> {
    let result = test(&state, &name).await?;
    state.audit(&caller.actor(), &name, AuditAction::ConnectionTested, Some(format!("ok: {}", result.ok))).await;
    let status = if result.ok { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    Ok((status, Json(result)).into_response())
}

/// `GET /v1/connections/{name}/token`: `{access_token, instance_url, token_type, issued_at,
/// expires_at, fingerprint}` ([`TokenAnswer`]); every hand-out is audited.
pub(crate) async fn get_token(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ErrorResponse> {
    let entry = state.entry(&name).await?;
    if let Some(rejected) = q.rejected.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        state.report_rejected(&entry, &caller.actor(), rejected)?;
    }
    let issued = state.token(&entry).await?;
    entry.counters.tokens.inc();
    state.audit_handout(&caller.actor(), &name, &issued.fingerprint);
    let body = TokenAnswer {
        access_token: issued.token.access_token.secret().to_owned(),
        instance_url: issued.token.instance_url.as_str().trim_end_matches('/').to_owned(),
        token_type: "Bearer".to_owned(),
        issued_at: rfc3339(issued.issued_at),
        expires_at: issued.token.expires_at.map(rfc3339),
        fingerprint: issued.fingerprint.clone(),
    };
    // A token must not be kept by caches between the broker and its caller.
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
