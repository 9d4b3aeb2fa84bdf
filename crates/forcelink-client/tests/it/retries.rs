//! Retries and renewal against the playground's fault injection, with a manual clock: 503s and
//! dropped connections are retried for idempotent requests (honouring Retry-After), never for a
//! create; a 401 renews exactly the token used, once.

use std::time::Duration;

use forcelink_auth::{Clock, TokenProvider};
use forcelink_client::{BodyKind, Client, ClientError};
use serde_json::{Value, json};

use crate::common::*;

const QUERY: &str = "/services/data/v64.0/query";
const ACCOUNTS: &str = "/services/data/v64.0/sobjects/Account";

async fn faults_left(pg: &PlaygroundHandle) -> Value {
    let url = format!("{}/faults", pg.info.control_url);
    let resp = reqwest::Client::new().get(url).bearer_auth(&pg.info.control_key).send().await.unwrap();
    resp.json::<Value>().await.unwrap()["faults"].clone()
}

async fn count_named(client: &Client, name: &str) -> u64 {
    client.query(format!("SELECT COUNT() FROM Account WHERE Name = '{name}'")).send().await.unwrap().total_size
}

#[tokio::test]
async fn injected_503s_are_retried_with_backoff() {
    let pg = spawn_playground().await;
    let (client, clock) = admin_client(&pg);
    pg.control
        .add_fault(json!({"path_prefix": QUERY, "count": 2, "kind": "status", "status": 503,
        "body": "[{\"errorCode\":\"SERVER_UNAVAILABLE\",\"message\":\"busy\"}]"}))
        .await;
    let start = clock.now();
    let page = client.query("SELECT Id FROM User").send().await.unwrap();
    assert!(page.total_size > 0);
    assert_eq!(client.stats().retries, 2);
    // Equal jitter: at least half of 500 ms, then half of 1 s.
    assert!(elapsed(&clock, start) >= Duration::from_millis(750), "{:?}", elapsed(&clock, start));
    assert_eq!(faults_left(&pg).await, json!([]));
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_too_long_one_ends_the_request() {
    let pg = spawn_playground().await;
    let (client, clock) = admin_client(&pg);
    pg.control
        .add_fault(json!({"path_prefix": QUERY, "kind": "status", "status": 503, "retry_after_seconds": 7}))
        .await;
    let start = clock.now();
    client.query("SELECT Id FROM Account").send().await.unwrap();
    assert!(elapsed(&clock, start) >= Duration::from_secs(7));
    pg.control
        .add_fault(json!({"path_prefix": QUERY, "kind": "status", "status": 429, "retry_after_seconds": 3600}))
        .await;
    let err = client.query("SELECT Id FROM Account").send().await.unwrap_err();
    assert!(matches!(err, ClientError::RetryAfterTooLong { seconds: 3600, .. }), "{err:?}");
}

#[tokio::test]
async fn retries_give_up_after_the_limit_with_the_last_error() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    pg.control.add_fault(json!({"path_prefix": QUERY, "count": 10, "kind": "html"})).await;
    let err = client.query("SELECT Id FROM Account").send().await.unwrap_err();
    assert!(matches!(err, ClientError::UnexpectedResponse { status: 503, kind: BodyKind::Html, .. }), "{err:?}");
    assert_eq!(client.stats().retries, u64::from(forcelink_auth::backoff::DEFAULT_MAX_RETRIES));
    assert_eq!(faults_left(&pg).await[0]["count"], 10 - 1 - forcelink_auth::backoff::DEFAULT_MAX_RETRIES);
}

#[tokio::test]
async fn dropped_connections_are_retried_for_reads() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    pg.control.add_fault(json!({"path_prefix": QUERY, "kind": "drop"})).await;
    client.query("SELECT Id FROM Account").send().await.unwrap();
    assert_eq!(client.stats().retries, 1);
}

#[tokio::test]
async fn an_injected_failure_on_create_is_not_retried() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let accounts = client.sobject("Account").unwrap();
    client.limits().send().await.unwrap(); // a token first: the fault must hit the create itself
    pg.control.add_fault(json!({"path_prefix": ACCOUNTS, "count": 2, "kind": "status", "status": 503})).await;
    let err = accounts.create(&json!({"Name": "Once Only"})).send().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(faults_left(&pg).await[0]["count"], 1, "the create was sent exactly once");
    pg.control.clear_faults().await;

    // A connection dropped after the request was sent: Salesforce may have created the record,
    // so the client reports it instead of creating a second one.
    pg.control.add_fault(json!({"path_prefix": ACCOUNTS, "count": 2, "kind": "drop"})).await;
    let err = accounts.create(&json!({"Name": "Once Only"})).send().await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert_eq!(faults_left(&pg).await[0]["count"], 1);
    pg.control.clear_faults().await;
    assert_eq!(client.stats().retries, 0);
    assert_eq!(count_named(&client, "Once Only").await, 0);
}

#[tokio::test]
async fn a_401_invalidates_exactly_the_token_used_and_retries_once() {
    let pg = spawn_playground().await;
    let provider = Recording::new(admin_provider(&pg));
    let client = client_over(provider.clone(), &forcelink_auth::ManualClock::starting_now());
    client.limits().send().await.unwrap();
    let first = provider.handed_out()[0].clone();
    pg.control.expire_sessions().await;
    client.limits().send().await.unwrap();
    assert_eq!(provider.invalidated(), vec![first.clone()]);
    let handed = provider.handed_out();
    assert_eq!(handed.len(), 3);
    assert_eq!(handed[1], first, "the stale token was used once");
    assert_ne!(handed[2], first, "then a new one");
    assert_eq!(client.stats().renewals, 1);
    assert_eq!(pg.control.token_requests("client_credentials").await, 2);
}

#[tokio::test]
async fn a_token_refused_twice_is_an_error_not_a_loop() {
    let pg = spawn_playground().await;
    let client = Client::builder(FixedToken::at(pg.instance_url()))
        .url_policy(forcelink_auth::UrlPolicy::new().allow_any_loopback())
        .build()
        .unwrap();
    let err = client.limits().send().await.unwrap_err();
    assert_eq!(err.error_code(), Some("INVALID_SESSION_ID"));
    assert_eq!(err.action(), forcelink_client::Action::Reauthorize);
    assert_eq!(client.stats().requests, 2, "one renewal attempt, then the error");
}

#[tokio::test]
async fn tokens_go_only_to_urls_the_policy_allows() {
    let provider = FixedToken::at("http://salesforce.example.com");
    let client = Client::builder(provider.clone())
        .url_policy(forcelink_auth::UrlPolicy::new().allow_any_loopback())
        .build()
        .unwrap();
    let err = client.limits().send().await.unwrap_err();
    assert!(matches!(err, ClientError::Auth(forcelink_auth::AuthError::InsecureUrl { .. })), "{err:?}");
    assert_eq!(client.stats().requests, 0);
    let t = provider.token().await.unwrap();
    assert!(!format!("{err}").contains(t.access_token.secret()));
}
