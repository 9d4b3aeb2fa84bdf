//! Where secrets may go. An admin key scoped to one connection tries, by every sequence of
//! calls the API offers, to get a stored secret, a JWT assertion or a refresh token to a host of
//! its choosing: re-pointing each URL field of each auth method, with and without the operator
//! allowing that host, then asking for tokens and deleting with revoke. The attacker's server
//! must never be contacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use forcelink_auth::secret::{AccessToken, RefreshToken};
use forcelink_auth::token::{LifetimeSource, TokenSet};
use forcelink_auth::{ConnectionId, SystemClock, Transport, UrlPolicy};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::{ConnectionStore, MemoryConnectionStore, SecretResolver};
use serde_json::{Value, json};
use url::Url;

use crate::{add_key, call};

/// A server that only counts the connections it receives.
async fn attacker() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, hits)
}

fn origin(url: &str) -> String {
    Url::parse(url).unwrap().origin().ascii_serialization()
}

/// Every auth method's settings against the playground, with its secrets.
fn connections(pg: &forcelink_test_support::PlaygroundHandle) -> Vec<(&'static str, Value)> {
    let i = &pg.info;
    vec![
        (
            "cc",
            json!({"method": "client-credentials", "login_url": i.instance_url, "client_id": i.client.client_id,
                   "client_secret": i.client.client_secret}),
        ),
        (
            "pw",
            json!({"method": "password", "login_url": i.login_url, "client_id": i.client.client_id,
                   "client_secret": i.client.client_secret, "username": i.user.username, "password": i.user.password}),
        ),
        (
            "jwt",
            json!({"method": "jwt", "login_url": i.login_url, "client_id": i.client.client_id,
                   "username": i.user.username, "private_key": pg.jwt_private_key_pem()}),
        ),
        (
            "web",
            json!({"method": "web", "login_url": i.login_url, "client_id": i.client.client_id,
                   "client_secret": i.client.client_secret}),
        ),
        ("public", json!({"method": "web", "login_url": i.login_url, "client_id": i.client.client_id})),
        ("at", json!({"method": "access-token", "instance_url": i.instance_url, "access_token": "00Dfake!token"})),
    ]
}

/// A stored token set with a refresh token, issued by the playground.
fn signed_in(pg: &forcelink_test_support::PlaygroundHandle) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new("00Dstored!access"),
        instance_url: Url::parse(pg.instance_url()).unwrap(),
        identity_url: None,
        issued_at: forcelink_auth::Clock::now(&SystemClock),
        expires_at: None,
        lifetime_source: LifetimeSource::Unknown,
        refresh_token: Some(RefreshToken::new("5Aep-stored-refresh")),
        scope: None,
        token_type: "Bearer".into(),
        id_token: None,
        api_instance_url: None,
        issuer: Some(Url::parse(pg.login_url()).unwrap()),
    }
}

async fn broker(policy: UrlPolicy) -> (BrokerState, axum::Router, Arc<dyn ConnectionStore>) {
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryConnectionStore::new(Arc::new(SystemClock)));
    let transport = Transport::new(forcelink_auth::wire::default_http_client().unwrap(), Arc::new(SystemClock), policy);
    let state = BrokerState::new(BrokerConfig::new(store.clone(), transport, SecretResolver::without_env())).unwrap();
    let router = forcelink_broker::router(state.clone());
    (state, router, store)
}

#[tokio::test]
async fn a_connection_scoped_admin_key_cannot_send_any_secret_to_a_host_of_its_choosing() {
    let pg = forcelink_test_support::spawn_playground().await;
    let (evil, hits) = attacker().await;
    let playground_only = UrlPolicy::new()
        .allow_origin(&origin(pg.login_url()))
        .unwrap()
        .allow_origin(&origin(pg.instance_url()))
        .unwrap();
    // Twice: with the attacker's origin unknown to the operator (refused by the host rule),
    // and allowed by the operator (say, a staging org): then the edit rule must hold.
    for operator_allows_it in [false, true] {
        let policy = if operator_allows_it {
            playground_only.clone().allow_origin(&evil).unwrap()
        } else {
            playground_only.clone()
        };
        let (_state, router, store) = broker(policy).await;
        let root = add_key(&*store, &["*"], &["*"]).await;
        for (name, settings) in connections(&pg) {
            let mut body = settings.clone();
            body["name"] = json!(name);
            let (s, created) = call(&router, "POST", "/v1/connections", Some(&root), Some(&body.to_string())).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
            store.compare_and_swap(&ConnectionId::new(name), None, &signed_in(&pg)).await.unwrap();
            let key = add_key(&*store, &[name], &["admin", "token", "proxy", "actions"]).await;
            for field in ["login_url", "token_url", "audience", "instance_url", "pubsub_endpoint"] {
                // Only the URL (or the Pub/Sub API's host:port) changes; no secret is sent again.
                let mut edit = settings.clone();
                for secret in ["client_secret", "password", "private_key", "access_token"] {
                    edit.as_object_mut().unwrap().remove(secret);
                }
                edit[field] =
                    if field == "pubsub_endpoint" { json!(evil.trim_start_matches("http://")) } else { json!(evil) };
                let uri = format!("/v1/connections/{name}");
                let (s, answer) = call(&router, "PUT", &uri, Some(&key), Some(&edit.to_string())).await;
                let text = answer.to_string();
                if !operator_allows_it {
                    assert_eq!(s, StatusCode::BAD_REQUEST, "{name}.{field}: {answer}");
                    assert!(text.contains("--allow-origin") && text.contains(field), "{name}.{field}: {text}");
                } else if name == "public" {
                    // A public client has no secret to re-enter: the move is allowed, and the
                    // refresh token is revoked at the playground that issued it, then forgotten.
                    assert_eq!(s, StatusCode::OK, "{name}.{field}: {answer}");
                    assert!(store.load(&ConnectionId::new(name)).await.unwrap().is_none(), "tokens dropped");
                } else {
                    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}.{field}: {answer}");
                    assert_eq!(answer["error"]["code"], "secrets_required");
                }
                // Whatever the answer, ask for a token and delete with revoke.
                call(&router, "GET", &format!("/v1/connections/{name}/token"), Some(&key), None).await;
                call(&router, "POST", &format!("/v1/connections/{name}/test"), Some(&key), None).await;
            }
            let (s, deleted) = call(&router, "DELETE", &format!("/v1/connections/{name}"), Some(&key), None).await;
            assert_eq!(s, StatusCode::OK, "{name}: {deleted}");
            // A new connection straight at the attacker is refused unless the operator allows it.
            let mut direct = settings.clone();
            direct["name"] = json!(format!("{name}-direct"));
            direct[if name == "at" { "instance_url" } else { "login_url" }] = json!(evil);
            let (s, _) = call(&router, "POST", "/v1/connections", Some(&root), Some(&direct.to_string())).await;
            assert_eq!(s == StatusCode::CREATED, operator_allows_it, "{name}: direct creation");
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the attacker's server was contacted");
}

#[tokio::test]
async fn an_edit_takes_effect_at_once_and_the_old_token_is_dropped() {
    let pg = forcelink_test_support::spawn_playground().await;
    let policy = UrlPolicy::new().allow_any_loopback();
    let (_state, router, store) = broker(policy).await;
    let root = add_key(&*store, &["*"], &["*"]).await;
    let body =
        json!({"name": "at", "method": "access-token", "instance_url": pg.instance_url(), "access_token": "first"});
    assert_eq!(
        call(&router, "POST", "/v1/connections", Some(&root), Some(&body.to_string())).await.0,
        StatusCode::CREATED
    );
    let (_, first) = call(&router, "GET", "/v1/connections/at/token", Some(&root), None).await;
    assert_eq!(first["access_token"], "first");
    let edit = json!({"method": "access-token", "instance_url": pg.instance_url(), "access_token": "second"});
    let (s, answer) = call(&router, "PUT", "/v1/connections/at", Some(&root), Some(&edit.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let (_, second) = call(&router, "GET", "/v1/connections/at/token", Some(&root), None).await;
    assert_eq!(second["access_token"], "second", "the new token is used at once");
    // The edit is audited with the names of the changed fields, never their values.
    let audit = store.audit(Some(&ConnectionId::new("at")), 10).await.unwrap();
    let edit = audit.iter().find(|e| e.action == "connection.updated").unwrap();
    let detail = edit.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("access_token") && !detail.contains("second"), "{detail}");

    // Moving the endpoint with every secret given again is allowed, and drops the old tokens.
    let cc = json!({"name": "cc", "method": "client-credentials", "login_url": pg.instance_url(),
                    "client_id": pg.info.client.client_id, "client_secret": pg.info.client.client_secret});
    assert_eq!(
        call(&router, "POST", "/v1/connections", Some(&root), Some(&cc.to_string())).await.0,
        StatusCode::CREATED
    );
    let (_, before) = call(&router, "GET", "/v1/connections/cc/token", Some(&root), None).await;
    let moved = json!({"method": "client-credentials", "login_url": pg.login_url(),
                       "client_id": pg.info.client.client_id, "client_secret": pg.info.client.client_secret});
    let (s, answer) = call(&router, "PUT", "/v1/connections/cc", Some(&root), Some(&moved.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let (_, after) = call(&router, "GET", "/v1/connections/cc/token", Some(&root), None).await;
    assert_ne!(before["access_token"], after["access_token"], "a new token from the new endpoint");
    assert_eq!(pg.control.token_requests("client_credentials").await, 2);
}

#[tokio::test]
async fn twenty_token_requests_on_a_failing_connection_reach_salesforce_at_most_three_times() {
    let pg = forcelink_test_support::spawn_playground().await;
    let (_state, router, store) = broker(UrlPolicy::new().allow_any_loopback()).await;
    let root = add_key(&*store, &["*"], &["*"]).await;
    let wrong = json!({"name": "bad", "method": "client-credentials", "login_url": pg.instance_url(),
                       "client_id": pg.info.client.client_id, "client_secret": "not-the-secret"});
    assert_eq!(
        call(&router, "POST", "/v1/connections", Some(&root), Some(&wrong.to_string())).await.0,
        StatusCode::CREATED
    );
    for _ in 0..20 {
        let (s, body) = call(&router, "GET", "/v1/connections/bad/token", Some(&root), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "token_unavailable");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("invalid_client") || message.contains("client"), "the fix is named: {message}");
    }
    let attempts = pg.control.token_requests("client_credentials").await;
    assert!((1..=3).contains(&attempts), "{attempts} attempts at Salesforce for 20 requests");
    // Fixing the connection ends the wait at once.
    let fixed = json!({"method": "client-credentials", "login_url": pg.instance_url(),
                       "client_id": pg.info.client.client_id, "client_secret": pg.info.client.client_secret});
    assert_eq!(
        call(&router, "PUT", "/v1/connections/bad", Some(&root), Some(&fixed.to_string())).await.0,
        StatusCode::OK
    );
    assert_eq!(call(&router, "GET", "/v1/connections/bad/token", Some(&root), None).await.0, StatusCode::OK);
}
