//! forcelink-broker: the HTTP API, proxy, actions and the web page behind `forcelink serve`.
//! Workflow engines and services ask the broker for a connection's token by name, or send
//! their Salesforce requests through it, instead of each holding secrets and renewing tokens.
//!
//! [`router`] builds the axum router for a [`BrokerState`] (embed it in your own server, or
//! drive it in tests with `tower::ServiceExt::oneshot`); [`serve`] runs it on a listener until
//! the shutdown future resolves, then writes the pending audit entries:
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use forcelink_auth::{SystemClock, Transport, UrlPolicy};
//! use forcelink_broker::{BrokerConfig, BrokerState};
//! use forcelink_store::{MemoryConnectionStore, SecretResolver};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = Arc::new(SystemClock);
//! let store = Arc::new(MemoryConnectionStore::new(clock.clone()));
//! let transport = Transport::new(forcelink_auth::wire::default_http_client()?, clock, UrlPolicy::new());
//! let state = BrokerState::new(BrokerConfig::new(store, transport, SecretResolver::without_env()))?;
//!
//! let app: axum::Router = forcelink_broker::router(state);
//! let answer = app.oneshot(Request::get("/healthz").body(Body::empty())?).await?;
//! assert_eq!(answer.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! Parts (private modules; the public surface is re-exported here):
//!
//! - `state`: [`BrokerState`] (cheap-clone handle): the store, one [`forcelink_auth::TokenCache`]
//!   per connection in memory over the shared store, API-key and session caches, the counters;
//!   [`BrokerConfig`], [`Limits`] and their defaults.
//! - `routes`: the route table — method, path, access rule, documentation and handler of every
//!   route; the router and the OpenAPI document are both built from it.
//! - `access`: who may call what — API keys (`Authorization: Bearer flk_…`) checked against scope
//!   and connection, page sessions (cookie) — run before any body is read.
//! - `api`: HTTP API v1 — connections CRUD (secrets write-only), test, token, health.
//! - `proxy`: `ANY /v1/connections/{name}/sf/{*path}` → the instance, streaming both ways.
//! - `actions`: `POST /v1/connections/{name}/actions/{action}` through forcelink-client.
//! - `mcp`: `POST /mcp`, an MCP server (streamable HTTP, stateless, through the official `rmcp`
//!   SDK) whose tools, resources and prompts work on the key's connections: queries, describes,
//!   records, limits, the user-administration actions; results redacted, calls budgeted per key
//!   and audited (see docs/mcp.md).
//! - `keys`: API keys over the API and the page: create (shown once), list, revoke.
//! - `web`: the server-rendered page (askama): sign-in (`web`), the connections list
//!   (`web::connections`), a connection's detail with its state, bars and audit trail
//!   (`web::detail`), API keys (`web::keys`) and webhooks (`web::webhooks`); `page`: rendering and
//!   the message page it shares with `access`.
//! - `relay`: the event consumers' reports, the relay's defaults, the `Sforce-Call-Options` header.
//! - `metrics`: `/metrics` in the OpenMetrics text format (prometheus-client), read from
//!   `counters` (broker-wide and per-connection atomics, kept where they are counted).
//! - `openapi`: `/v1/openapi.json` built with utoipa from the routes' documentation it is given
//!   ([`openapi_document`]).
//! - `body`: the JSON bodies the API takes and answers, as types (the document's schemas).
//! - `monitor`: connection states (`healthy`, `unhealthy`, `reauthorization_required`,
//!   `unknown`) kept in the store, moved by token outcomes, checks and sign-ins, by
//!   compare-and-swap together with the webhooks they cause.
//! - `scheduler`: background checks (renewal before expiry, `/limits`, approvals), one replica per
//!   connection and interval through the store's work leases.
//! - `events`: Salesforce events relayed — subscriptions (`/v1/subscriptions`: one consumer per
//!   subscription across replicas, deliveries in order through the outbox, snapshot then
//!   stream, filters, echo suppression) and the server-sent event stream.
//! - `notify`: events as webhook deliveries in the store's outbox; `webhooks`: the webhooks API,
//!   Standard Webhooks signatures and the sender (at least once, retried for a day).
//! - `authorize`: the web-server flow of Authorize and connect links (pending state in the store,
//!   so any replica takes the callback); `connect`: connect links.
//! - `audit`: token hand-outs counted in memory and written to the audit log in batches.
//! - `error`: [`ErrorResponse`], the JSON error every endpoint answers with.
//! - `time` (RFC 3339 through jiff), `ids` (random session ids, CSRF tokens, request ids).

#![warn(missing_docs)]

mod access;
mod actions;
mod api;
mod audit;
mod authorize;
mod body;
mod connect;
mod counters;
mod error;
mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod keys;
mod mcp;
mod metrics;
mod monitor;
mod notify;
mod openapi;
mod page;
mod proxy;
mod relay;
mod routes;
mod scheduler;
mod state;
mod time;
mod web;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use error::ErrorResponse;
pub use events::admin::SubscriptionAdmin;
pub use mcp::DEFAULT_MCP_CALLS_PER_MINUTE;
pub use relay::{DEFAULT_CALL_CLIENT, DEFAULT_EVENT_LEASE, DEFAULT_EVENT_RETRY};
pub use state::{
    BrokerConfig, BrokerState, CONNECT_SESSION_TTL, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_HEALTH_INTERVAL,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PROXY_BODY_BYTES, DEFAULT_REPLAY_BUFFER_BYTES, Limits,
    REJECTED_REPORT_INTERVAL,
};

/// Largest JSON or form body the API and the page accept. 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest a request may take until its response starts (a proxied body may stream longer). 60 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The `Content-Security-Policy` of every answer: nothing but the page's own inline style and
/// same-origin forms; no script, no frames, no base URL tricks.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The broker's OpenAPI document (what `GET /v1/openapi.json` answers), as JSON.
pub fn openapi_document() -> serde_json::Value {
    routes::document()
}

/// The broker's routes over `state`.
pub fn router(state: BrokerState) -> Router {
    let limits = state.limits().clone();
    routes::build(&state)
        .fallback(not_found)
        // The MCP server's per-key call budgets live as long as the router.
        .layer(axum::Extension(mcp::CallBudget::new(limits.mcp_calls_per_minute)))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(answers))
        .with_state(state)
}

/// Unknown paths: the JSON error.
async fn not_found(uri: axum::http::Uri) -> ErrorResponse {
    ErrorResponse::not_found(format!("no such endpoint: {}; see /v1/openapi.json", uri.path()))
}

/// Whether `path` belongs to the JSON API (its errors are JSON whoever produced them). Proxied
/// answers are Salesforce's and pass as they are.
fn is_api(path: &str) -> bool {
    let proxied = path.starts_with("/v1/connections/") && path.split('/').nth(4) == Some("sf");
    !proxied && (path.starts_with("/v1/") || path == "/metrics" || path == "/healthz" || path == "/readyz")
}

/// Security headers on every answer; framework answers on API paths (wrong method, body too
/// large, wrong content type, …) rewritten as the documented JSON error.
async fn answers(request: Request, next: Next) -> Response {
    let api = is_api(request.uri().path());
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let status = response.status();
    if api && !is_json && (status.is_client_error() || status.is_server_error()) {
        let allow = response.headers().get(header::ALLOW).cloned();
        let (code, message) = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", format!("{method} is not allowed here; see /v1/openapi.json"))
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large".to_owned()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "send the body as application/json".to_owned())
            }
            StatusCode::NOT_FOUND => ("not_found", "not found; see /v1/openapi.json".to_owned()),
            s if s.is_server_error() => ("internal", "internal error".to_owned()),
            _ => ("bad_request", "the request is not valid; see /v1/openapi.json".to_owned()),
        };
        response = ErrorResponse::new(status, code, message).into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Answers 503 when a handler has not produced a response within the request timeout.
async fn timeout(State(state): State<BrokerState>, request: Request, next: Next) -> Response {
    let limit = state.limits().request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ErrorResponse::timeout(limit).into_response(),
    }
}

/// Serves `state` on `listener` until `shutdown` resolves; requests in flight finish first.
/// Writes the audit entries still pending before it returns.
///
/// HTTP/1.1 over hyper, one task per connection. At most [`Limits::max_connections`] are served
/// at once: the loop accepts only when a slot is free, so excess connections wait in the
/// kernel's listen backlog (and are refused by the kernel once that is full). A connection that
/// does not send a complete request head within [`Limits::header_read_timeout`] — idle
/// keep-alive time included — is closed, so slow or idle clients cannot hold the slots.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: BrokerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = state.spawn_audit_flusher();
    let background = if state.config().background { state.start_background() } else { Vec::new() };
    let app = router(state.clone());
    let limits = state.limits().clone();
    let max = u32::try_from(limits.max_connections.clamp(1, tokio::sync::Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
    let slots = Arc::new(tokio::sync::Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let header_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all connections done.
    let _ = slots.acquire_many(max).await;
    flusher.abort();
    for task in background {
        task.abort();
    }
    state.flush_audit().await;
    Ok(())
}

impl BrokerState {
    /// Starts the background work: the monitor of token outcomes, the connection checks (every
    /// [`BrokerConfig::health_interval`]), the webhook sender and the event subscriptions'
    /// consumers (one per subscription across replicas). [`serve`] calls it when
    /// [`BrokerConfig::background`] is set; abort the handles to stop them.
    pub fn start_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(rx) = self.take_observations() {
            tasks.push(tokio::spawn(monitor::run_observer(self.clone(), rx)));
        }
        tasks.push(tokio::spawn(scheduler::run(self.clone())));
        tasks.push(tokio::spawn(webhooks::sender::run(self.clone())));
        tasks.push(tokio::spawn(events::consumer::supervise(self.clone())));
        tasks
    }
}

/// How long the accept loop waits after an accept error (e.g. out of file descriptors). 100 ms.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
