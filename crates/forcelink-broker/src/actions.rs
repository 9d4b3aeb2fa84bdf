//! `POST /v1/connections/{name}/actions/{action}`: forcelink-client's actions (create, update,
//! activate, deactivate, freeze, unfreeze user, remove entitlements, reset password, upload
//! document) with JSON in and out, on the connection's token cache.

use forcelink_store::AuditAction;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use forcelink_client::ClientError;
use forcelink_client::actions::ActionName;

use crate::access::Caller;
use crate::api::parse_json;
use crate::body::ActionOutput;
use crate::error::ErrorResponse;
use crate::state::BrokerState;

/// A client error as the API answers it (the MCP tools share it).
pub(crate) fn client_error(connection: &str, e: ClientError) -> ErrorResponse {
    match e {
        ClientError::InvalidInput(m) => ErrorResponse::bad_request(m),
        ClientError::Auth(a) => ErrorResponse::auth(connection, &a),
        ClientError::Api { error, .. } if (400..500).contains(&error.status) && error.status != 401 => {
            ErrorResponse::new(
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
                "salesforce",
                format!("{}: {}", error.error_code, error.message),
            )
        }
        ClientError::InsufficientRights { .. } => {
            ErrorResponse::new(StatusCode::FORBIDDEN, "salesforce", e.to_string())
        }
        other => ErrorResponse::upstream(other.to_string()),
    }
}

/// The actions handler.
pub(crate) async fn run_action(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ActionOutput>, ErrorResponse> {
    let action: ActionName = action.parse().map_err(|e: ClientError| ErrorResponse::not_found(e.to_string()))?;
    let input = parse_json(&body)?;
    let entry = state.entry(&name).await?;
    let Some(client) = &entry.client else {
        return Err(ErrorResponse::conflict(format!(
            "connection {name:?} has an API version the client cannot use: {}",
            entry.connection.api_version
        )));
    };
    entry.counters.actions.inc();
    let result = forcelink_client::actions::run(client, action, input).await;
    let ok = result.is_ok();
    state
        .audit(&caller.actor(), &name, AuditAction::Action(action.as_str().to_owned()), Some(format!("ok: {ok}")))
        .await;
    result.map(|v| Json(ActionOutput(v))).map_err(|e| client_error(&name, e))
}
