//! The broker end to end: in-process routers (`oneshot`) and servers on real sockets, against
//! an in-process playground.
//!
//! - `api`: API keys (401/403), token hand-out and its audit, connections CRUD with write-only
//!   secrets, bad JSON, health, metrics, the OpenAPI document.
//! - `events`: event subscriptions (ordered, at least once, exactly once after de-duplication,
//!   across a kill, snapshot then stream, filters, echo suppression), the SSE stream, the API.
//! - `events_replicas`: three brokers on PostgreSQL run one consumer; killing it moves it.
//! - `keepalive`: connection states and their webhooks (verified with `standardwebhooks`), at
//!   least once to a failing receiver, the webhook host rule, connect links.
//! - `keys`: API keys over the API: who manages them, what a new key may hold, revocation.
//! - `limits`: connection limits over raw sockets: auth before body, header timeout, cap.
//! - `mcp`: the MCP server driven by the official MCP Python SDK: every tool, resources,
//!   prompts, refusals, the call budget, no secret in any result, the audit log.
//! - `proxy`: paths, header handling, streaming, renewal-and-retry on 401.
//! - `web`: sign-in, CSRF, the web-server flow through the playground's pages, the state on the
//!   pages, the webhooks page.
//! - `heal`: `forcelink_client::BrokerTokens` reports a refused token and carries on.
//! - `hostrule`: no sequence of calls sends a secret to a host the operator did not allow; edits take effect.
//! - `replicas`: three brokers on one PostgreSQL schema renew an expired token once.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

mod api;
mod events;
mod events_replicas;
mod heal;
mod hostrule;
mod keepalive;
mod keys;
mod limits;
mod mcp;
mod proxy;
mod replicas;
mod web;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use forcelink_auth::{ConnectionId, SystemClock, Transport, UrlPolicy};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::{
    ConnectionSpec, ConnectionStore, Environment, MemoryConnectionStore, Method, PutMode, SecretResolver,
};
use forcelink_test_support::{PlaygroundHandle, spawn_playground};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A broker over a memory store with a `pg` connection (client credentials to the playground)
/// and keys of several scopes.
#[allow(missing_debug_implementations)] // a test fixture holding servers
pub struct Harness {
    pub pg: PlaygroundHandle,
    pub store: Arc<dyn ConnectionStore>,
    pub state: BrokerState,
    pub router: Router,
    /// `*` connections, every scope.
    pub admin: String,
    /// `pg` only, `token` only.
    pub token_key: String,
    /// `pg` only, `proxy` only.
    pub proxy_key: String,
    /// `other` only, every scope.
    pub other_key: String,
}

pub fn client_credentials(pg: &PlaygroundHandle) -> ConnectionSpec {
    ConnectionSpec {
        method: Some(Method::ClientCredentials),
        environment: Some(Environment::Custom),
        login_url: Some(pg.instance_url().to_owned()),
        client_id: Some(pg.info.client.client_id.clone()),
        client_secret: Some(pg.info.client.client_secret.clone()),
        ..ConnectionSpec::default()
    }
}

pub async fn add_key(store: &dyn ConnectionStore, connections: &[&str], scopes: &[&str]) -> String {
    let (key, record) = forcelink_store::apikey::generate(
        "test",
        connections.iter().map(|s| s.to_string()).collect(),
        forcelink_store::Scopes::parse(scopes).unwrap(),
        forcelink_auth::Clock::now(&SystemClock),
    );
    store.put_api_key(&record).await.unwrap();
    key.secret().to_owned()
}

/// [`add_key`] for a read-only key.
pub async fn add_read_only_key(store: &dyn ConnectionStore, connections: &[&str], scopes: &[&str]) -> String {
    let (key, mut record) = forcelink_store::apikey::generate(
        "reader",
        connections.iter().map(|s| s.to_string()).collect(),
        forcelink_store::Scopes::parse(scopes).unwrap(),
        forcelink_auth::Clock::now(&SystemClock),
    );
    record.read_only = true;
    store.put_api_key(&record).await.unwrap();
    key.secret().to_owned()
}

pub fn transport() -> Transport {
    Transport::new(
        forcelink_auth::wire::default_http_client().unwrap(),
        Arc::new(SystemClock),
        UrlPolicy::new().allow_any_loopback(),
    )
}

pub async fn harness() -> Harness {
    let pg = spawn_playground().await;
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryConnectionStore::new(Arc::new(SystemClock)));
    store.put_connection(&ConnectionId::new("pg"), &client_credentials(&pg), PutMode::Create).await.unwrap();
    let admin = add_key(&*store, &["*"], &["*"]).await;
    let token_key = add_key(&*store, &["pg"], &["token"]).await;
    let proxy_key = add_key(&*store, &["pg"], &["proxy"]).await;
    let other_key = add_key(&*store, &["other"], &["*"]).await;
    let state = BrokerState::new(BrokerConfig::new(store.clone(), transport(), SecretResolver::without_env())).unwrap();
    let router = forcelink_broker::router(state.clone());
    Harness { pg, store, state, router, admin, token_key, proxy_key, other_key }
}

impl Harness {
    /// A new key with the `proxy` scope on `connection` only.
    pub async fn proxy_key_for(&self, connection: &str) -> String {
        add_key(&*self.store, &[connection], &["proxy"]).await
    }
}

/// One request through the router; the body parsed as JSON (`Null` when it is not JSON).
pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(body.map(|b| Body::from(b.to_owned())).unwrap_or_else(Body::empty)).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Serves the state on a free loopback port; the base URL and the server task.
pub async fn serve(state: BrokerState) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        forcelink_broker::serve(listener, state, std::future::pending()).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

/// Serves a broker over the harness's store on a free loopback port, with that address as its
/// public URL (the OAuth redirect URI comes from it); the base URL, the state and the task.
pub async fn serve_public(h: &Harness) -> (String, BrokerState, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = BrokerConfig::new(h.store.clone(), transport(), SecretResolver::without_env());
    config.public_url = Some(url::Url::parse(&base).unwrap());
    let state = BrokerState::new(config).unwrap();
    let served = state.clone();
    let task = tokio::spawn(async move {
        forcelink_broker::serve(listener, served, std::future::pending()).await.unwrap();
    });
    (base, state, task)
}
