//! Connections that keep themselves alive: states moved by tests and token outcomes, webhooks
//! (signed per Standard Webhooks, verified with the `standardwebhooks` PyPI package), at least
//! once to a receiver that fails then recovers, the webhook host rule, connect links.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use forcelink_auth::{ManualClock, Transport, UrlPolicy};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::SecretResolver;
use forcelink_test_support::browser::no_redirect_client as http;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{Harness, harness, serve_public};

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

/// A webhook receiver on 127.0.0.1 that answers 500 to the next `fail` deliveries, then 204.
#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    fail: Arc<AtomicUsize>,
    attempts: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    if r.fail.load(Ordering::SeqCst) > 0 {
        r.fail.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let headers =
        headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
    r.received.lock().push(Received { headers, body });
    StatusCode::NO_CONTENT
}

async fn receiver(fail: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = Receiver {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        received: Arc::default(),
        fail: Arc::new(AtomicUsize::new(fail)),
        attempts: Arc::default(),
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

impl Receiver {
    fn types(&self) -> Vec<String> {
        self.received
            .lock()
            .iter()
            .map(|d| serde_json::from_str::<Value>(&d.body).unwrap()["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Polls `done` every 20 ms until it holds or 20 s have passed (then fails with `what`).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn api(base: &str, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn add_webhook(base: &str, key: &str, url: &str, events: Value) -> String {
    let (s, created) = api(base, "POST", "/v1/webhooks", key, Some(json!({"url": url, "events": events}))).await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    secret
}

/// Verifies every delivery with the `standardwebhooks` package (a receiver we did not write);
/// the event types it accepted, in order.
fn verify_with_standardwebhooks(secret: &str, deliveries: &[Received]) -> Vec<String> {
    let list: Vec<Value> = deliveries.iter().map(|d| json!({"headers": d.headers, "body": d.body})).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("deliveries.json");
    std::fs::write(&input, serde_json::to_vec(&json!({"secret": secret, "deliveries": list})).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
data = json.load(open(sys.argv[1]))
wh = Webhook(data["secret"])
for d in data["deliveries"]:
    payload = wh.verify(d["body"], d["headers"])
    print(payload["type"])
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&input)
        .output()
        .unwrap_or_else(|e| panic!("python3 could not be started ({e}); run scripts/python-tools-setup"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "standardwebhooks refused a delivery (or is not installed: run scripts/python-tools-setup)\n{stderr}"
    );
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

async fn state_of(base: &str, key: &str, name: &str) -> Value {
    let (s, v) = api(base, "GET", &format!("/v1/connections/{name}"), key, None).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// An access token from the playground (client credentials), for an `access_token` connection.
async fn playground_token(h: &Harness) -> String {
    let resp: Value = reqwest::Client::new()
        .post(h.pg.instance_token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", h.pg.info.client.client_id.as_str()),
            ("client_secret", h.pg.info.client.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_state_change_sends_one_signed_webhook_that_standardwebhooks_verifies() {
    let h = harness().await;
    let (base, _state, _server) = serve_public(&h).await;
    let r = receiver(0).await;
    let secret = add_webhook(&base, &h.admin, &r.url, json!(["*"])).await;

    // created: a connection whose token cannot be renewed (a pasted access token).
    let token = playground_token(&h).await;
    let body =
        json!({"name": "pasted", "method": "access-token", "access_token": token, "instance_url": h.pg.instance_url()});
    let (s, v) = api(&base, "POST", "/v1/connections", &h.admin, Some(body)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "unknown", "{v}");
    // unknown → healthy: a test that works (no event: nothing was wrong).
    let (s, v) = api(&base, "POST", "/v1/connections/pasted/test", &h.admin, None).await;
    assert_eq!(s, 200, "{v}");
    let v = state_of(&base, &h.admin, "pasted").await;
    assert_eq!(v["state"], "healthy", "{v}");
    assert!(v["checks"]["last_used"].is_string(), "{v}");

    // healthy → reauthorization_required: the org ends the session; a static token cannot be renewed.
    h.pg.control.expire_sessions().await;
    let (s, v) = api(&base, "POST", "/v1/connections/pasted/test", &h.admin, None).await;
    assert_eq!(s, 409, "{v}");
    let v = state_of(&base, &h.admin, "pasted").await;
    assert_eq!(v["state"], "reauthorization_required", "{v}");
    assert!(v["fix"].as_str().unwrap().contains("new access token"), "{v}");
    assert!(v["state_since"].is_string(), "{v}");
    // The same failure again is not news.
    let (s, _) = api(&base, "POST", "/v1/connections/pasted/test", &h.admin, None).await;
    assert_eq!(s, 409);

    // healthy → unhealthy → recovered: the run-as user of `pg` is frozen, then unfrozen.
    let (s, v) = api(&base, "POST", "/v1/connections/pg/test", &h.admin, None).await;
    assert_eq!(s, 200, "{v}");
    h.pg.control.set_user(&h.pg.info.user.username, json!({"frozen": true})).await;
    h.pg.control.expire_sessions().await;
    let (s, v) = api(&base, "POST", "/v1/connections/pg/test", &h.admin, None).await;
    assert_eq!(s, 409, "{v}");
    let v = state_of(&base, &h.admin, "pg").await;
    assert_eq!(v["state"], "unhealthy", "{v}");
    assert!(v["fix"].as_str().unwrap().contains("unfreeze"), "{v}");
    h.pg.control.set_user(&h.pg.info.user.username, json!({"frozen": false})).await;
    // A test is a person asking: the remembered failure is tried again at once.
    let (s, v) = api(&base, "POST", "/v1/connections/pg/test", &h.admin, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(state_of(&base, &h.admin, "pg").await["state"], "healthy");

    let (s, _) = api(&base, "DELETE", "/v1/connections/pasted?revoke=false", &h.admin, None).await;
    assert_eq!(s, 200);

    let expected = [
        "connection.created",
        "connection.reauthorization_required",
        "token.renewal_failed",
        "connection.unhealthy",
        "token.renewal_failed",
        "connection.recovered",
        "connection.deleted",
    ];
    eventually("every event at the receiver", || r.received.lock().len() >= expected.len()).await;
    let deliveries = r.received.lock().clone();
    let mut verified = verify_with_standardwebhooks(&secret, &deliveries);
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    verified.sort();
    want.sort();
    assert_eq!(verified, want, "exactly one event per change");
    // The body names the connection and the state change; ids are unique.
    for d in &deliveries {
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
        assert!(v["data"]["connection"].is_string(), "{v}");
        assert!(!d.body.contains(&token), "a token in a webhook body");
    }
    let unhealthy = deliveries.iter().find(|d| d.body.contains("\"connection.unhealthy\"")).unwrap();
    let v: Value = serde_json::from_str(&unhealthy.body).unwrap();
    assert_eq!((v["data"]["connection"].as_str(), v["data"]["previous_state"].as_str()), (Some("pg"), Some("healthy")));
    let mut ids: Vec<&String> = deliveries.iter().map(|d| &d.headers["webhook-id"]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), deliveries.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_then_recovers_gets_the_event_with_the_same_id() {
    let h = harness().await;
    let clock = ManualClock::starting_now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let transport = Transport::new(
        forcelink_auth::wire::default_http_client().unwrap(),
        Arc::new(clock.clone()),
        UrlPolicy::new().allow_any_loopback(),
    );
    let mut config = BrokerConfig::new(h.store.clone(), transport, SecretResolver::without_env());
    config.public_url = Some(url::Url::parse(&base).unwrap());
    let state = BrokerState::new(config).unwrap();
    tokio::spawn(async move { forcelink_broker::serve(listener, state, std::future::pending()).await.unwrap() });

    let r = receiver(3).await;
    let secret = add_webhook(&base, &h.admin, &r.url, json!(["connection.*"])).await;
    let body = json!({"name": "cc2", "method": "client-credentials", "environment": "custom",
        "login_url": h.pg.login_url(), "client_id": h.pg.info.client.client_id, "client_secret": h.pg.info.client.client_secret});
    let (s, v) = api(&base, "POST", "/v1/connections", &h.admin, Some(body)).await;
    assert_eq!(s, 201, "{v}");
    // Each failure is retried later on the broker's clock: move it on until the receiver has it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while r.received.lock().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        // Small steps: the signed timestamp must stay within the receiver library's 5 minutes.
        clock.advance(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(r.attempts.load(Ordering::SeqCst), 4, "three failures, then the delivery");
    let got = r.received.lock().clone();
    assert_eq!(verify_with_standardwebhooks(&secret, &got), ["connection.created"]);
    // The outbox shows it delivered after four attempts, under the id the receiver saw.
    let (_, hooks) = api(&base, "GET", "/v1/webhooks", &h.admin, None).await;
    let hook = &hooks["webhooks"][0];
    let (_, list) =
        api(&base, "GET", &format!("/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap()), &h.admin, None).await;
    let d = &list["deliveries"][0];
    assert_eq!((d["state"].as_str(), d["attempts"].as_u64()), (Some("delivered"), Some(4)), "{list}");
    assert_eq!(d["id"].as_str(), Some(got[0].headers["webhook-id"].as_str()));
    assert_eq!(d["last_status"], 204);
    assert_eq!((hook["delivered"].as_u64(), hook["pending"].as_u64()), (Some(1), Some(0)), "{hooks}");
}

#[tokio::test]
async fn webhook_urls_obey_the_host_rule_and_keys_stay_within_their_connections() {
    let h = harness().await;
    let (base, _state, _server) = serve_public(&h).await;
    let admin = &h.admin;
    let refused = |s: u16, v: &Value, needle: &str| {
        assert_eq!(s, 400, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{needle} in {v}");
    };
    let (s, v) =
        api(&base, "POST", "/v1/webhooks", admin, Some(json!({"url": "http://example.com/h", "events": ["*"]}))).await;
    refused(s, &v, "https");
    let own = format!("{base}/v1/connections");
    let (s, v) = api(&base, "POST", "/v1/webhooks", admin, Some(json!({"url": own, "events": ["*"]}))).await;
    refused(s, &v, "this broker");
    let port = base.rsplit(':').next().unwrap();
    let (s, v) = api(
        &base,
        "POST",
        "/v1/webhooks",
        admin,
        Some(json!({"url": format!("http://localhost:{port}/x"), "events": ["*"]})),
    )
    .await;
    refused(s, &v, "this broker");
    let (s, v) =
        api(&base, "POST", "/v1/webhooks", admin, Some(json!({"url": "https://u:p@example.com/h", "events": ["*"]})))
            .await;
    refused(s, &v, "credentials");
    let (s, v) = api(
        &base,
        "POST",
        "/v1/webhooks",
        admin,
        Some(json!({"url": "https://example.com/h", "events": ["connection.exploded"]})),
    )
    .await;
    refused(s, &v, "not an event type");
    let (s, v) = api(
        &base,
        "POST",
        "/v1/webhooks",
        admin,
        Some(json!({"url": "https://example.com/h", "events": ["*"], "extra": 1})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // A key for `other` only: not every connection, not `pg`, and it sees no one else's webhook.
    let (s, v) = api(
        &base,
        "POST",
        "/v1/webhooks",
        &h.other_key,
        Some(json!({"url": "https://example.com/h", "events": ["*"]})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = api(
        &base,
        "POST",
        "/v1/webhooks",
        &h.other_key,
        Some(json!({"url": "https://example.com/h", "events": ["*"], "connections": ["pg"]})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, mine) = api(
        &base,
        "POST",
        "/v1/webhooks",
        &h.other_key,
        Some(json!({"url": "https://example.com/o", "events": ["*"], "connections": ["other"]})),
    )
    .await;
    assert_eq!(s, 201, "{mine}");
    let (s, all) =
        api(&base, "POST", "/v1/webhooks", admin, Some(json!({"url": "https://example.com/a", "events": ["*"]}))).await;
    assert_eq!(s, 201, "{all}");
    let (_, seen) = api(&base, "GET", "/v1/webhooks", &h.other_key, None).await;
    let ids: Vec<&str> = seen["webhooks"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine["id"].as_str().unwrap()]);
    let (s, _) =
        api(&base, "DELETE", &format!("/v1/webhooks/{}", all["id"].as_str().unwrap()), &h.other_key, None).await;
    assert_eq!(s, 404, "another key's webhook is not even revealed");
    // The secret is shown once: never in a list.
    let (_, listed) = api(&base, "GET", "/v1/webhooks", admin, None).await;
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    // A token-only key cannot manage webhooks at all.
    let (s, _) = api(&base, "GET", "/v1/webhooks", &h.token_key, None).await;
    assert_eq!(s, 403);
}

/// The target of a page that moves on by itself.
fn refresh_target(html: &str) -> Option<String> {
    let start = html.find("content=\"0;url=")? + "content=\"0;url=".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_link_signs_a_new_connection_in_once_and_returns_with_the_outcome() {
    let h = harness().await;
    let (base, _state, _server) = serve_public(&h).await;
    let r = receiver(0).await;
    add_webhook(&base, &h.admin, &r.url, json!(["connection.*"])).await;
    let link = |return_url: &str| {
        json!({"connection": "linked", "environment": "custom", "login_url": h.pg.login_url(),
            "client_id": h.pg.info.client.client_id, "client_secret": h.pg.info.client.client_secret,
            "return_url": return_url})
    };
    // return_url must be an allowed origin or the broker's own; Salesforce Sites are not enough.
    let (s, v) = api(&base, "POST", "/v1/connect-sessions", &h.admin, Some(link("https://evil.example.com/cb"))).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api(&base, "POST", "/v1/connect-sessions", &h.admin, Some(link("https://x.my.site.com/cb"))).await;
    assert_eq!(s, 400, "{v}");
    // Only a key that administers the connection makes links for it.
    let (s, _) = api(&base, "POST", "/v1/connect-sessions", &h.other_key, Some(link(&format!("{base}/")))).await;
    assert_eq!(s, 403);
    let return_url = format!("{base}/done?tool=n8n");
    let (s, made) = api(&base, "POST", "/v1/connect-sessions", &h.admin, Some(link(&return_url))).await;
    assert_eq!(s, 201, "{made}");
    let url = made["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{base}/connect/")) && made["expires_at"].is_string(), "{made}");
    assert!(!url.contains(&h.pg.info.client.client_secret));

    // Opening it shows what it does and spends nothing; Continue spends it.
    let page = http().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("linked") && !page.contains(&h.pg.info.client.client_secret), "{page}");
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200, "a GET does not use the link up");
    let go = http().post(&url).send().await.unwrap().text().await.unwrap();
    let authorize = refresh_target(&go).unwrap_or_else(|| panic!("no onward page: {go}"));
    assert!(authorize.starts_with(h.pg.login_url()) && authorize.contains("code_challenge_method=S256"), "{authorize}");
    assert_eq!(http().post(&url).send().await.unwrap().status(), 404, "a link works once");
    assert_eq!(http().get(&url).send().await.unwrap().status(), 404);

    let callback = forcelink_test_support::browser::sign_in(
        &h.pg,
        &authorize,
        &h.pg.info.user.username,
        &h.pg.info.user.password,
        forcelink_test_support::browser::Decision::Allow,
    )
    .await;
    let done = http().get(&callback).send().await.unwrap().text().await.unwrap();
    let back = refresh_target(&done).unwrap_or_else(|| panic!("no way back: {done}"));
    assert_eq!(back, format!("{base}/done?tool=n8n&connection=linked&status=success"));
    let v = state_of(&base, &h.admin, "linked").await;
    assert_eq!(v["state"], "healthy", "{v}");
    assert_eq!(v["token"]["has_refresh_token"], true, "{v}");
    assert_eq!(v["checks"]["approvals_used"], 1, "the approval is counted: {v}");
    let (s, _) = api(&base, "GET", "/v1/connections/linked/token", &h.admin, None).await;
    assert_eq!(s, 200);
    eventually("connection.created", || r.types().contains(&"connection.created".to_owned())).await;
    // Junk tokens are not looked up; a denied consent goes back with the error.
    assert_eq!(http().get(format!("{base}/connect/x")).send().await.unwrap().status(), 404);
    let (_, made) = api(&base, "POST", "/v1/connect-sessions", &h.admin, Some(link(&return_url))).await;
    let go = http().post(made["url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let authorize = url::Url::parse(&refresh_target(&go).unwrap()).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    // What the org sends back when the person clicks Deny.
    let callback = format!("{base}/oauth/callback?error=access_denied&error_description=end-user+denied&state={state}");
    let done = http().get(&callback).send().await.unwrap().text().await.unwrap();
    let back = refresh_target(&done).unwrap();
    assert!(back.contains("connection=linked&status=error&error=access_denied"), "{back}");
}
