//! forcelink-broker: the HTTP API, proxy, actions and the web page behind `forcelink serve`.
//! Workflow engines and services ask the broker for a connection's token by name, or send
//! their Salesforce requests through it, instead of each holding secrets and renewing tokens.
//!
//! - [`state`]: [`BrokerState`] (cheap-clone handle): the store, one [`forcelink_auth::TokenCache`]
//!   per connection in memory over the shared store, API-key and session caches, counters.
//! - [`access`]: API keys (`Authorization: Bearer flk_…`) checked against scope and connection.
//! - [`api`]: HTTP API v1 — connections CRUD (secrets write-only), test, token, health.
//! - [`proxy`]: `ANY /v1/connections/{name}/sf/{*path}` → the instance, streaming both ways.
//! - [`actions`]: `POST /v1/connections/{name}/actions/{action}` through forcelink-client.
//! - [`web`]: the server-rendered page (askama): sign-in, connections, Authorize (web-server flow).
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`openapi`]: `/v1/openapi.json`, built from the route table in [`routes`].
//! - [`audit`]: token hand-outs counted in memory and written to the audit log in batches.
//! - [`error`]: [`ApiError`], the JSON error every endpoint answers with.
//!
//! [`router`] builds the axum router for a state; [`serve`] runs it on a listener until the
//! shutdown future resolves, then writes the pending audit entries.

pub mod access;
pub mod actions;
pub mod api;
pub mod audit;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod routes;
pub mod state;
pub mod time;
pub mod web;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use error::ApiError;
pub use state::{BrokerConfig, BrokerState, Limits};

/// Largest JSON or form body the API and the page accept. 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest a request may take until its response starts (a proxied body may stream longer). 60 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The broker's routes over `state`.
pub fn router(state: BrokerState) -> Router {
    let limits = state.limits().clone();
    routes::build(&state)
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// Answers 503 when a handler has not produced a response within the request timeout.
async fn timeout(State(state): State<BrokerState>, request: Request, next: Next) -> Response {
    let limit = state.limits().request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout(limit).into_response(),
    }
}

/// Serves `state` on `listener` until `shutdown` resolves; requests in flight finish first.
/// Writes the audit entries still pending before it returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: BrokerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = state.spawn_audit_flusher();
    let app = router(state.clone());
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    flusher.abort();
    state.flush_audit().await;
    result
}
