//! [`ErrorResponse`]: every failure the API answers, as `{"error": {"code", "message"}}` with the
//! HTTP status that says what the caller should do.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use forcelink_auth::AuthError;
use forcelink_auth::error::StoreError;

/// An error answer. `message` never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ErrorResponse {
    /// The HTTP status: 4xx when the caller must change something, 5xx when retrying may help.
    pub status: StatusCode,
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`, `bad_request`, …
    pub code: &'static str,
    /// What went wrong and what to do, for people (5xx answers show a generic text instead).
    pub message: String,
}

impl ErrorResponse {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API key as `Authorization: Bearer flk_…` (create one with `forcelink apikey create`)",
        )
    }
    pub(crate) fn forbidden(capability: &str, connection: Option<&str>) -> Self {
        let what = match connection {
            Some(c) => format!("the API key may not use `{capability}` on connection {c:?}"),
            None => format!("the API key lacks the `{capability}` scope"),
        };
        Self::new(StatusCode::FORBIDDEN, "forbidden", what)
    }
    /// A read-only key asked to do `what` (something that writes, or a token, which can).
    pub(crate) fn read_only(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "read_only",
            format!("the API key is read-only and may not {what}; use a key made without --read-only"),
        )
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub(crate) fn timeout(limit: Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("no answer within {} s; try again", limit.as_secs()),
        )
    }
    pub(crate) fn store(e: &StoreError) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", format!("the store: {e}"))
    }
    /// A token could not be obtained: sign-in problems are 409 (someone must act), the rest 502.
    pub(crate) fn auth(connection: &str, e: &AuthError) -> Self {
        let status = match e.action() {
            forcelink_auth::Action::Reauthorize | forcelink_auth::Action::FixConfiguration => StatusCode::CONFLICT,
            _ => StatusCode::BAD_GATEWAY,
        };
        Self::new(status, "token_unavailable", format!("connection {connection:?}: {e}"))
    }
    pub(crate) fn upstream(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "upstream", message)
    }
}

impl From<StoreError> for ErrorResponse {
    fn from(e: StoreError) -> Self {
        ErrorResponse::store(&e)
    }
}

/// A new request id for a 5xx answer and its log line.
fn request_id() -> String {
    crate::ids::random_id(9)
}

/// The generic text of a 5xx answer; the detail is logged under the same request id.
fn generic(id: &str) -> String {
    format!("internal error (request id {id}; the details are in the broker's log)")
}

/// A 500 answer for an unexpected failure: `detail` goes to the log only.
pub(crate) fn internal(detail: &str) -> Response {
    ErrorResponse::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail).into_response()
}

impl IntoResponse for ErrorResponse {
    /// 4xx answers say what to do; 5xx answers keep their `code` but say only "internal error"
    /// with a request id, the detail (store, network, Salesforce texts) going to the log.
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() {
            let id = request_id();
            tracing::warn!(request_id = %id, status = self.status.as_u16(), code = self.code, "{}", self.message);
            generic(&id)
        } else {
            self.message
        };
        let body = serde_json::json!({ "error": { "code": self.code, "message": message } });
        (self.status, Json(body)).into_response()
    }
}
