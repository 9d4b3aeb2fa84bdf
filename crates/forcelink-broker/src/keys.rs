//! API keys over the API and the page: create (the key text shown once), list (never secrets
//! or hashes), revoke. Only a key on every connection (`*`) with `admin` manages keys (the
//! route table says so), and a new key never gets more than its creator holds: its scopes
//! must be among the creator's (`*` only from a `*` key). A revoked key is forgotten by this
//! broker's verified-key cache at once; other replicas stop trusting it within
//! [`crate::state::KEY_CACHE_TTL`].

use std::collections::BTreeSet;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use forcelink_store::connection::validate_name;
use forcelink_store::{ApiKeyRecord, AuditAction, Scopes};
use serde::Deserialize;

use crate::access::Caller;
use crate::audit::NO_CONNECTION;
use crate::body::{ApiKeyList, ApiKeyView, CreatedApiKey, RevokedKey};
use crate::error::ErrorResponse;
use crate::state::BrokerState;
use crate::time::rfc3339;

/// Longest key name. 200 characters.
pub(crate) const MAX_KEY_NAME_CHARS: usize = 200;

/// `POST /v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    /// 1 to 200 printable characters (surrounding spaces are dropped).
    #[schema(pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$", max_length = 200)]
    pub name: String,
    /// Connection names, or `*` for every one.
    #[schema(min_items = 1, inline, value_type = Vec<ConnectionOrAll>)]
    pub connections: Vec<String>,
    /// Scope names (`token`, `proxy`, `actions`, `admin`, `mcp`) or `*`.
    #[schema(min_items = 1, value_type = Vec<ScopeName>)]
    pub scopes: Vec<String>,
    /// Reads only: `GET`/`HEAD`, and MCP tools that change nothing; never tokens. Default false.
    #[serde(default)]
    pub read_only: bool,
}

/// A connection name, or `*` for every connection.
#[derive(utoipa::ToSchema)]
#[schema(pattern = r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")]
#[allow(dead_code)]
struct ConnectionOrAll(String);

/// A scope, or `*` for all.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ScopeName {
    Token,
    Proxy,
    Actions,
    Admin,
    Mcp,
    #[serde(rename = "*")]
    All,
}

/// What a key shows of itself (no secret, no hash).
pub(crate) fn view(key: &ApiKeyRecord) -> ApiKeyView {
    ApiKeyView {
        id: key.id.clone(),
        name: key.label.clone(),
        connections: key.connections.clone(),
        scopes: key.capabilities.to_strings(),
        read_only: key.read_only,
        created_at: rfc3339(key.created_at),
        revoked_at: key.revoked_at.map(rfc3339),
    }
}

/// Whether `wanted` grants nothing beyond `held`.
fn within(wanted: &Scopes, held: &Scopes) -> bool {
    match (wanted, held) {
        (_, Scopes::All) => true,
        (Scopes::All, Scopes::Only(_)) => false,
        (Scopes::Only(w), Scopes::Only(h)) => w.is_subset(h),
    }
}

/// Checks a new key's definition against its creator; the key text and its record.
pub(crate) async fn create(
    state: &BrokerState,
    creator: &ApiKeyRecord,
    actor: &str,
    new: NewKey,
) -> Result<(String, ApiKeyRecord), ErrorResponse> {
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ErrorResponse::bad_request(format!(
            "`name` must be 1 to {MAX_KEY_NAME_CHARS} printable characters"
        )));
    }
    if new.connections.is_empty() {
        return Err(ErrorResponse::bad_request("`connections` must name at least one connection, or \"*\""));
    }
    let mut connections = BTreeSet::new();
    for c in &new.connections {
        let c = c.trim();
        if c != forcelink_store::apikey::ANY {
            validate_name(c).map_err(|e| ErrorResponse::bad_request(format!("connections: {}", e.0)))?;
        }
        connections.insert(c.to_owned());
    }
    if new.scopes.is_empty() {
        return Err(ErrorResponse::bad_request("`scopes` must name at least one scope, or \"*\""));
    }
    let scopes = Scopes::parse(&new.scopes).map_err(ErrorResponse::bad_request)?;
    if !within(&scopes, &creator.capabilities) {
        return Err(ErrorResponse::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a new key may hold only scopes its creator holds ({}); asked for {}",
                creator.capabilities.to_strings().join(", "),
                scopes.to_strings().join(", ")
            ),
        ));
    }
    // The creator is on every connection (the route requires it), so any connection list fits.
    if !creator.all_connections() && !connections.iter().all(|c| creator.allows_connection(c)) {
        return Err(ErrorResponse::forbidden("admin", Some("*")));
    }
    // A read-only creator cannot get this far (creating a key writes), so any key fits its creator.
    let connections: Vec<String> = connections.into_iter().collect();
    let (secret, mut record) = forcelink_store::apikey::generate(name, connections, scopes, state.now());
    record.read_only = new.read_only;
    state.store().put_api_key(&record).await?;
    let detail = format!(
        "key {} ({:?}): connections {}, scopes {}{}",
        record.id,
        record.label,
        record.connections.join(", "),
        record.capabilities.to_strings().join(", "),
        if record.read_only { ", read-only" } else { "" }
    );
    state.audit(actor, NO_CONNECTION, AuditAction::ApiKeyCreated, Some(detail)).await;
    Ok((secret.secret().to_owned(), record))
}

/// Revokes key `id`; `false` when there is no such key.
pub(crate) async fn revoke(state: &BrokerState, actor: &str, id: &str) -> Result<bool, ErrorResponse> {
    let found = state.store().revoke_api_key(id, state.now()).await?;
    // This broker stops trusting it now, not after the cache's lifetime.
    state.forget_key(id);
    if found {
        state.audit(actor, NO_CONNECTION, AuditAction::ApiKeyRevoked, Some(format!("key {id}"))).await;
    }
    Ok(found)
}

/// `POST /v1/api-keys {"name", "connections", "scopes", "read_only"?}` → 201 with `key`, shown once.
pub(crate) async fn create_key(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let value = crate::api::parse_json(&body)?;
    let new: NewKey = serde_json::from_value(value).map_err(|e| {
        ErrorResponse::bad_request(format!("not a key definition {{\"name\", \"connections\", \"scopes\"}}: {e}"))
    })?;
    let (text, record) = create(&state, &caller.key, &caller.actor(), new).await?;
    let body = CreatedApiKey { view: view(&record), key: text };
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `GET /v1/api-keys`.
pub(crate) async fn list_keys(
    State(state): State<BrokerState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Json<ApiKeyList>, ErrorResponse> {
    let keys = state.store().api_keys().await?;
    Ok(Json(ApiKeyList { api_keys: keys.iter().map(view).collect() }))
}

/// `DELETE /v1/api-keys/{id}`.
pub(crate) async fn revoke_key(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<RevokedKey>, ErrorResponse> {
    if revoke(&state, &caller.actor(), &id).await? {
        Ok(Json(RevokedKey { revoked: id }))
    } else {
        Err(ErrorResponse::not_found(format!("no API key with id {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forcelink_store::Scope;

    #[test]
    fn new_scopes_stay_within_the_creators() {
        let tp = Scopes::Only([Scope::Token, Scope::Proxy].into());
        assert!(within(&Scope::Token.into(), &tp));
        assert!(!within(&Scope::Admin.into(), &tp));
        assert!(!within(&Scopes::All, &tp));
        assert!(within(&Scopes::All, &Scopes::All));
    }
}
