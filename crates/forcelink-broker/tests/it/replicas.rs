//! Three brokers (each with its own PostgreSQL connection, as separate replicas would have) on
//! one schema: 1,000 concurrent token requests on an expired token renew it exactly once.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use forcelink_auth::{Clock, ConnectionId, ManualClock, Transport, UrlPolicy};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::{ConnectionStore, MasterKey, PostgresStore, PutMode, SecretResolver};
use forcelink_test_support::spawn_playground;

use crate::{add_key, call, client_credentials};

fn postgres_url() -> String {
    #[allow(clippy::disallowed_methods)] // tests take the database from the environment
    std::env::var("FORCELINK_TEST_POSTGRES_URL")
        .expect("FORCELINK_TEST_POSTGRES_URL must point at a PostgreSQL database (scripts/test sets it)")
}

/// A schema of this test's own, dropped at the end.
pub(crate) struct PgSchema {
    pub(crate) url: String,
    name: String,
}

impl PgSchema {
    pub(crate) async fn new() -> Self {
        let name = format!("forcelink_broker_test_{}", std::process::id());
        let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).await.unwrap();
        let base = postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        Self { url: format!("{base}{sep}options=-csearch_path%3D{name}"), name }
    }

    pub(crate) async fn drop_schema(self) {
        let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)).await.unwrap();
    }
}

/// Three brokers, each with its own PostgreSQL connection to `schema`, sharing one `pg`
/// connection (client credentials to the playground) and a `token` key for it.
struct Replicas {
    stores: Vec<Arc<dyn ConnectionStore>>,
    states: Vec<BrokerState>,
    routers: Vec<axum::Router>,
    api_key: String,
}

async fn replicas(pg: &forcelink_test_support::PlaygroundHandle, schema: &PgSchema, clock: &ManualClock) -> Replicas {
    let key = MasterKey::generate();
    let mut stores: Vec<Arc<dyn ConnectionStore>> = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PostgresStore::connect(&schema.url, key.clone(), Arc::new(clock.clone())).await.unwrap()));
    }
    stores[0].put_connection(&ConnectionId::new("pg"), &client_credentials(pg), PutMode::Create).await.unwrap();
    let api_key = add_key(&*stores[0], &["pg"], &["token"]).await;
    let mut states = Vec::new();
    let mut routers = Vec::new();
    for store in &stores {
        let transport = Transport::new(
            forcelink_auth::wire::default_http_client().unwrap(),
            Arc::new(clock.clone()),
            UrlPolicy::new().allow_any_loopback(),
        );
        let state =
            BrokerState::new(BrokerConfig::new(store.clone(), transport, SecretResolver::without_env())).unwrap();
        routers.push(forcelink_broker::router(state.clone()));
        states.push(state);
    }
    Replicas { stores, states, routers, api_key }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_renew_an_expired_token_once_for_a_thousand_concurrent_requests() {
    let pg = spawn_playground().await;
    let schema = PgSchema::new().await;
    let clock = ManualClock::starting_now();
    let Replicas { stores, states: _, routers, api_key } = replicas(&pg, &schema, &clock).await;
    // Every replica holds the first token in memory.
    let (s, first) = call(&routers[0], "GET", "/v1/connections/pg/token", Some(&api_key), None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    for r in &routers[1..] {
        assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&api_key), None).await.1, first);
    }
    assert_eq!(pg.control.token_requests("client_credentials").await, 1);

    // Past its expiry for every replica (the playground's 2-hour session): 1,000 requests at once.
    clock.advance(Duration::from_secs(3 * 3600));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let router = routers[i % 3].clone();
        let key = api_key.clone();
        tasks.push(tokio::spawn(
            async move { call(&router, "GET", "/v1/connections/pg/token", Some(&key), None).await },
        ));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let (s, body) = tokio::time::timeout(Duration::from_secs(60), t).await.expect("bounded").unwrap();
        assert_eq!(s, StatusCode::OK, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every request got the one renewed token");
    assert!(!tokens.contains(first["access_token"].as_str().unwrap()));
    assert_eq!(pg.control.token_requests("client_credentials").await, 2, "exactly one renewal for the 1,000");
    drop(routers);
    drop(stores);
    schema.drop_schema().await;
}

/// Issue 22: the org ends every session; callers spread over three replicas report the token
/// Salesforce refused. One renewal for all of them; a late report changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_token_reported_by_a_thousand_callers_on_three_replicas_is_renewed_once() {
    let pg = spawn_playground().await;
    let schema = PgSchema::new().await;
    let clock = ManualClock::starting_now();
    let Replicas { stores, states, routers, api_key } = replicas(&pg, &schema, &clock).await;
    let (s, first) = call(&routers[0], "GET", "/v1/connections/pg/token", Some(&api_key), None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    for r in &routers[1..] {
        assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&api_key), None).await.1, first);
    }
    let dead = first["access_token"].as_str().unwrap().to_owned();
    let fingerprint = first["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 8, "{first}");
    assert!(!dead.contains(&fingerprint));
    // An admin's "revoke sessions": the token still looks valid to every broker.
    pg.control.expire_sessions().await;
    let refused = reqwest::Client::new()
        .get(format!("{}/services/data/v64.0/limits", pg.instance_url()))
        .bearer_auth(&dead)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(refused, 401);
    assert_eq!(pg.control.token_requests("client_credentials").await, 1);

    // Half report the token itself, half its fingerprint.
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let router = routers[i % 3].clone();
        let key = api_key.clone();
        let report = if i % 2 == 0 { dead.clone() } else { fingerprint.clone() };
        tasks.push(tokio::spawn(async move {
            let uri = format!("/v1/connections/pg/token?rejected={}", urlencode(&report));
            call(&router, "GET", &uri, Some(&key), None).await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let (s, body) = tokio::time::timeout(Duration::from_secs(60), t).await.expect("bounded").unwrap();
        assert_eq!(s, StatusCode::OK, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every caller got the one new token");
    let fresh = tokens.into_iter().next().unwrap();
    assert_ne!(fresh, dead);
    assert_eq!(pg.control.token_requests("client_credentials").await, 2, "exactly one renewal for the 1,000 reports");

    // A late report of the old token returns the current one, with no new request.
    for r in &routers {
        let (s, body) =
            call(r, "GET", &format!("/v1/connections/pg/token?rejected={fingerprint}"), Some(&api_key), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["access_token"], fresh.as_str());
    }
    assert_eq!(pg.control.token_requests("client_credentials").await, 2);

    // The same key reporting the fresh token moments later is bounded: if Salesforce refuses
    // the new token too, someone must look at the connection; the broker does not renew in a loop.
    let fresh_fp = forcelink_auth::secret::AccessToken::new(fresh.clone()).fingerprint();
    let uri = format!("/v1/connections/pg/token?rejected={fresh_fp}");
    let (s, body) = call(&routers[0], "GET", &uri, Some(&api_key), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert_eq!(pg.control.token_requests("client_credentials").await, 2, "no renewal inside the window");
    clock.advance(forcelink_broker::REJECTED_REPORT_INTERVAL + Duration::from_secs(1));
    let (s, body) = call(&routers[0], "GET", &uri, Some(&api_key), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_ne!(body["access_token"], fresh.as_str());
    assert_eq!(pg.control.token_requests("client_credentials").await, 3, "one more renewal after the window");

    // The reports are in the audit log.
    for state in &states {
        state.flush_audit().await;
    }
    let audit = stores[0].audit(Some(&ConnectionId::new("pg")), 100).await.unwrap();
    let reports: Vec<_> = audit.iter().filter(|e| e.action == "token.rejected").collect();
    assert!(reports.iter().any(|e| e.detail.as_deref().unwrap_or("").contains("renewed")), "{reports:?}");
    assert!(reports.iter().any(|e| e.detail.as_deref().unwrap_or("").contains("already replaced")), "{reports:?}");
    drop(routers);
    drop(states);
    drop(stores);
    schema.drop_schema().await;
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_key_is_refused_by_every_replica_within_a_second() {
    let pg = spawn_playground().await;
    let schema = PgSchema::new().await;
    let clock = ManualClock::starting_now();
    let Replicas { stores, states: _, routers, api_key } = replicas(&pg, &schema, &clock).await;
    let path = "/v1/connections/pg/token";
    // Every replica has verified the key and trusts it from memory.
    for r in &routers {
        assert_eq!(call(r, "GET", path, Some(&api_key), None).await.0, StatusCode::OK);
    }
    let id = api_key.strip_prefix("flk_").and_then(|rest| rest.split('_').next()).unwrap();
    assert!(stores[2].revoke_api_key(id, clock.now()).await.unwrap());

    clock.advance(Duration::from_secs(1));
    for r in &routers {
        assert_eq!(call(r, "GET", path, Some(&api_key), None).await.0, StatusCode::UNAUTHORIZED);
    }
    schema.drop_schema().await;
    pg.shutdown().await;
}
