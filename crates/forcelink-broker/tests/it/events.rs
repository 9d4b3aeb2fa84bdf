//! The broker relays Salesforce events: subscriptions deliver a topic's change events to a
//! receiver (signed, verified with the `standardwebhooks` PyPI package), exactly once after
//! de-duplication by `webhook-id` while the receiver fails, in order per record, across a crash,
//! with snapshot then stream, filters and echo suppression; the SSE stream resumes with
//! `Last-Event-ID`; the API's rules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use forcelink_auth::{ConnectionId, SystemClock};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::{ConnectionStore, MasterKey, PutMode, SecretResolver, SqliteStore};
use forcelink_test_support::PlaygroundHandle;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{add_key, add_read_only_key, client_credentials, harness, transport};

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    pub(crate) fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

/// A receiver on 127.0.0.1 that answers 500 to every `fail_every`-th attempt (0: never).
#[derive(Clone)]
pub(crate) struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub attempts: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
    fail_every: usize,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let n = r.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if r.fail_every > 0 && n % r.fail_every == 0 {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let headers =
        headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
    r.received.lock().push(Received { headers, body });
    StatusCode::NO_CONTENT
}

pub(crate) async fn receiver(fail_every: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = Receiver {
        url: format!("http://{}/events", listener.local_addr().unwrap()),
        received: Arc::default(),
        attempts: Arc::default(),
        refused: Arc::default(),
        fail_every,
    };
    let app = axum::Router::new().route("/events", axum::routing::post(receive)).with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

impl Receiver {
    /// The deliveries with duplicates (same `webhook-id`) left out, in the order they first came.
    pub(crate) fn unique(&self) -> Vec<Received> {
        let mut seen = HashSet::new();
        self.received.lock().iter().filter(|d| seen.insert(d.id().to_owned())).cloned().collect()
    }
}

/// Polls `done` every 20 ms until it holds or `secs` have passed (then fails with `what`).
pub(crate) async fn eventually_for(secs: u64, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn api(base: &str, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Verifies deliveries with the `standardwebhooks` package; how many it accepted.
pub(crate) fn verify_with_standardwebhooks(secret: &str, deliveries: &[Received]) -> usize {
    let list: Vec<Value> = deliveries.iter().map(|d| json!({"headers": d.headers, "body": d.body})).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("deliveries.json");
    std::fs::write(&input, serde_json::to_vec(&json!({"secret": secret, "deliveries": list})).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
data = json.load(open(sys.argv[1]))
wh = Webhook(data["secret"])
n = 0
for d in data["deliveries"]:
    wh.verify(d["body"], d["headers"])
    n += 1
print(n)
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
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// The `ev` connection: client credentials to the playground, its Pub/Sub endpoint set.
pub(crate) async fn add_event_connection(store: &dyn ConnectionStore, pg: &PlaygroundHandle) {
    let mut spec = client_credentials(pg);
    spec.pubsub_endpoint = Some(pg.info.pubsub_endpoint.clone());
    store.put_connection(&ConnectionId::new("ev"), &spec, PutMode::Create).await.unwrap();
}

/// Sets the playground's Pub/Sub keep-alive interval (a quiet stream's position is known at the
/// first keep-alive).
pub(crate) async fn pubsub_keepalive(pg: &PlaygroundHandle, ms: u64) {
    let resp = reqwest::Client::new()
        .patch(format!("{}/pubsub/settings", pg.info.control_url))
        .bearer_auth(&pg.info.control_key)
        .json(&json!({"keepalive_ms": ms}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

/// Talks to the playground's REST API directly (as another client would).
pub(crate) struct Org {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Org {
    pub(crate) async fn new(pg: &PlaygroundHandle) -> Org {
        let resp: Value = reqwest::Client::new()
            .post(pg.instance_token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", pg.info.client.client_id.as_str()),
                ("client_secret", pg.info.client.client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Org {
            base: format!("{}/services/data/v66.0", pg.instance_url()),
            token: resp["access_token"].as_str().unwrap().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn collections(&self, method: reqwest::Method, records: Vec<Value>) -> Vec<String> {
        let mut ids = Vec::new();
        for chunk in records.chunks(200) {
            let resp = self
                .http
                .request(method.clone(), format!("{}/composite/sobjects", self.base))
                .bearer_auth(&self.token)
                .json(&json!({"allOrNone": true, "records": chunk}))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            let results: Vec<Value> = resp.json().await.unwrap();
            for r in results {
                assert_eq!(r["success"], true, "{r}");
                ids.push(r["id"].as_str().unwrap().to_owned());
            }
        }
        ids
    }

    /// Creates Accounts named `names`; their ids.
    pub(crate) async fn create_accounts(&self, names: &[String]) -> Vec<String> {
        let records = names.iter().map(|n| json!({"attributes": {"type": "Account"}, "Name": n})).collect();
        self.collections(reqwest::Method::POST, records).await
    }

    /// Sets `field` of each record.
    pub(crate) async fn update_accounts(&self, updates: &[(String, &str, String)]) {
        let records =
            updates.iter().map(|(id, f, v)| json!({"attributes": {"type": "Account"}, "id": id, *f: v})).collect();
        self.collections(reqwest::Method::PATCH, records).await;
    }

    /// `Id → Name` of every Account.
    pub(crate) async fn account_names(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut url = format!("{}/query?q=SELECT+Id,Name+FROM+Account", self.base);
        loop {
            let page: Value = self.http.get(&url).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap();
            for r in page["records"].as_array().unwrap() {
                out.insert(r["Id"].as_str().unwrap().to_owned(), r["Name"].as_str().unwrap_or_default().to_owned());
            }
            match page["nextRecordsUrl"].as_str() {
                Some(next) => url = format!("{}{next}", self.base.split("/services").next().unwrap()),
                None => return out,
            }
        }
    }
}

/// A broker config for event tests: short lease and retry pause.
pub(crate) fn event_config(store: Arc<dyn ConnectionStore>, base: &str) -> BrokerConfig {
    let mut config = BrokerConfig::new(store, transport(), SecretResolver::without_env());
    config.public_url = Some(url::Url::parse(base).unwrap());
    config.event_lease = Duration::from_secs(3);
    config.event_retry = Duration::from_millis(10);
    config
}

/// Serves a broker with background work on a free port; base URL, state and the tasks to abort
/// to stop it dead (as a killed process would).
pub(crate) async fn start_broker(
    store: Arc<dyn ConnectionStore>,
) -> (String, BrokerState, Vec<tokio::task::JoinHandle<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = event_config(store, &base);
    // Background work is started here (not by serve) so the test can abort it.
    config.background = false;
    let state = BrokerState::new(config).unwrap();
    let mut tasks = state.start_background();
    let served = state.clone();
    tasks.push(tokio::spawn(async move {
        forcelink_broker::serve(listener, served, std::future::pending()).await.unwrap();
    }));
    (base, state, tasks)
}

pub(crate) async fn subscribe(base: &str, key: &str, body: Value) -> (String, String) {
    let (s, created) = api(base, "POST", "/v1/subscriptions", key, Some(body)).await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    (created["id"].as_str().unwrap().to_owned(), secret)
}

/// Waits until the subscription's consumer has saved its position (the stream is open).
pub(crate) async fn wait_for_position(base: &str, key: &str, id: &str) {
    eventually_for(20, "the consumer's first position", async || {
        let (_, v) = api(base, "GET", &format!("/v1/subscriptions/{id}"), key, None).await;
        v["position"].is_string()
    })
    .await;
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_reach_a_failing_receiver_once_each_in_order_per_record() {
    let h = harness().await;
    add_event_connection(&*h.store, &h.pg).await;
    pubsub_keepalive(&h.pg, 50).await;
    let (base, _state, _tasks) = start_broker(h.store.clone()).await;
    let r = receiver(10).await;
    let (id, secret) = subscribe(
        &base,
        &h.admin,
        json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}}),
    )
    .await;
    wait_for_position(&base, &h.admin, &id).await;

    // 500 creates, then 500 updates of the same records: 1,000 changes.
    let org = Org::new(&h.pg).await;
    let ids = org.create_accounts(&names("relay", 500)).await;
    let updates: Vec<(String, &str, String)> =
        ids.iter().enumerate().map(|(i, id)| (id.clone(), "Industry", format!("Industry {i}"))).collect();
    org.update_accounts(&updates).await;

    eventually_for(120, "1,000 distinct events at the receiver", async || r.unique().len() >= 1000).await;
    let unique = r.unique();
    assert_eq!(unique.len(), 1000, "exactly the changes made, once each");
    assert!(r.refused.load(Ordering::SeqCst) >= 100, "the receiver refused one attempt in ten");
    // Every change of every record, in commit order per record.
    let mut per_record: HashMap<String, Vec<String>> = HashMap::new();
    for d in &unique {
        let v = d.json();
        assert_eq!(v["type"], "salesforce.event", "{v}");
        assert_eq!(v["data"]["topic"], "/data/AccountChangeEvent");
        let change = &v["data"]["change"];
        assert_eq!(change["entity"], "Account", "{v}");
        for rid in change["record_ids"].as_array().unwrap() {
            per_record
                .entry(rid.as_str().unwrap().to_owned())
                .or_default()
                .push(change["type"].as_str().unwrap().into());
        }
    }
    assert_eq!(per_record.len(), 500);
    for id in &ids {
        assert_eq!(per_record[id], ["CREATE", "UPDATE"], "{id}");
    }
    let industry = unique.iter().find(|d| d.json()["data"]["change"]["type"] == "UPDATE").unwrap().json();
    assert!(
        industry["data"]["change"]["changed_fields"].as_array().unwrap().contains(&json!("Industry")),
        "{industry}"
    );
    // A second copy of an event carries the same id, so de-duplication by id is exact.
    assert_eq!(verify_with_standardwebhooks(&secret, &unique), 1000);

    // The checkpoint is the last accepted event's replay id; nothing waits.
    let last = unique.last().unwrap().json()["data"]["replay_id"].as_str().unwrap().to_owned();
    eventually_for(10, "the checkpoint at the last event", async || {
        let (_, v) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
        v["checkpoint"] == json!(last) && v["lag"] == 0
    })
    .await;
    let (_, v) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
    assert_eq!(v["delivered"], 1000, "{v}");
    assert_eq!(v["consumer"]["phase"], "streaming", "{v}");
    // The replica's metrics count the same.
    let metrics = reqwest::Client::new().get(format!("{base}/metrics")).bearer_auth(&h.admin).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("forcelink_events_total{outcome=\"delivered\"} 1000"), "{text}");
    assert!(text.contains("forcelink_events_total{outcome=\"received\"} 1000"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_stream_resumes_after_restart_and_loses_nothing() {
    let pg = forcelink_test_support::spawn_playground().await;
    pubsub_keepalive(&pg, 50).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let key = MasterKey::generate();
    let open = || -> Arc<dyn ConnectionStore> {
        Arc::new(SqliteStore::open(&path, key.clone(), Arc::new(SystemClock)).unwrap())
    };
    let store = open();
    add_event_connection(&*store, &pg).await;
    let admin = add_key(&*store, &["*"], &["*"]).await;
    let (base, _state, tasks) = start_broker(store.clone()).await;
    let r = receiver(0).await;
    let (id, _) = subscribe(
        &base,
        &admin,
        json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}}),
    )
    .await;
    wait_for_position(&base, &admin, &id).await;
    let org = Org::new(&pg).await;
    let mut created = org.create_accounts(&names("before", 100)).await;
    eventually_for(30, "some events delivered", async || !r.unique().is_empty()).await;
    // Killed mid-stream: every task stops where it is, nothing is flushed or released.
    for t in &tasks {
        t.abort();
    }
    // Changes while no broker runs.
    created.extend(org.create_accounts(&names("while-down", 100)).await);

    let (base2, _state2, _tasks2) = start_broker(open()).await;
    created.extend(org.create_accounts(&names("after", 100)).await);
    eventually_for(60, "all 300 creates delivered", async || r.unique().len() >= 300).await;
    let delivered: HashSet<String> = r
        .unique()
        .iter()
        .flat_map(|d| {
            d.json()["data"]["change"]["record_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let want: HashSet<String> = created.into_iter().collect();
    assert_eq!(delivered, want, "every change once, none lost across the kill");
    assert_eq!(r.unique().len(), 300);
    let (s, v) = api(&base2, "GET", &format!("/v1/subscriptions/{id}"), &admin, None).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_stream_misses_no_write_made_during_the_snapshot() {
    let h = harness().await;
    add_event_connection(&*h.store, &h.pg).await;
    pubsub_keepalive(&h.pg, 50).await;
    let org = Org::new(&h.pg).await;
    let ids = org.create_accounts(&names("snap", 300)).await;
    let (base, _state, _tasks) = start_broker(h.store.clone()).await;
    let r = receiver(0).await;
    let (id, secret) = subscribe(
        &base,
        &h.admin,
        json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url},
               "snapshot": "SELECT Id, Name FROM Account"}),
    )
    .await;
    // Writes while the snapshot runs: renames of the first 100, and 20 new records.
    let renames: Vec<(String, &str, String)> =
        ids.iter().take(100).enumerate().map(|(i, id)| (id.clone(), "Name", format!("renamed-{i}"))).collect();
    for chunk in renames.chunks(10) {
        org.update_accounts(chunk).await;
    }
    org.create_accounts(&names("during", 20)).await;

    let truth = org.account_names().await;
    // The receiver's view: snapshot rows, then the changes applied in order.
    let view = async || {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut stream_started = false;
        for d in r.unique() {
            let v = d.json();
            match v["type"].as_str().unwrap() {
                "salesforce.snapshot" => {
                    assert!(!stream_started, "a snapshot row after a streamed event");
                    let rec = &v["data"]["record"];
                    seen.insert(rec["Id"].as_str().unwrap().into(), rec["Name"].as_str().unwrap_or_default().into());
                }
                _ => {
                    stream_started = true;
                    let name = v["data"]["event"]["Name"].as_str();
                    for rid in v["data"]["change"]["record_ids"].as_array().unwrap() {
                        if let Some(n) = name {
                            seen.insert(rid.as_str().unwrap().into(), n.into());
                        }
                    }
                }
            }
        }
        seen
    };
    eventually_for(60, "the receiver's view to match the org", async || view().await == truth).await;
    let all = r.unique();
    assert!(all.iter().filter(|d| d.json()["type"] == "salesforce.snapshot").count() >= 300);
    assert_eq!(verify_with_standardwebhooks(&secret, &all), all.len());
    let (_, v) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
    assert!(v["consumer"]["snapshot_rows"].as_u64().unwrap() >= 300, "{v}");
    assert!(v["consumer"]["snapshot_job"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_echo_suppression_leave_out_exactly_what_they_name() {
    let h = harness().await;
    add_event_connection(&*h.store, &h.pg).await;
    pubsub_keepalive(&h.pg, 50).await;
    let (base, _state, _tasks) = start_broker(h.store.clone()).await;
    let (all, filtered, no_echo) = (receiver(0).await, receiver(0).await, receiver(0).await);
    let topic = "/data/AccountChangeEvent";
    let (a, _) =
        subscribe(&base, &h.admin, json!({"connection": "ev", "topic": topic, "webhook": {"url": all.url}})).await;
    let (f, _) = subscribe(
        &base,
        &h.admin,
        json!({"connection": "ev", "topic": topic, "webhook": {"url": filtered.url},
               "filter": {"change_types": ["UPDATE"], "fields": ["Industry"]}}),
    )
    .await;
    let (e, _) = subscribe(
        &base,
        &h.admin,
        json!({"connection": "ev", "topic": topic, "webhook": {"url": no_echo.url}, "echo_suppression": true}),
    )
    .await;
    for id in [&a, &f, &e] {
        wait_for_position(&base, &h.admin, id).await;
    }
    let org = Org::new(&h.pg).await;
    let ids = org.create_accounts(&["filtered".to_owned()]).await;
    org.update_accounts(&[(ids[0].clone(), "Name", "renamed".into())]).await;
    org.update_accounts(&[(ids[0].clone(), "Industry", "Energy".into())]).await;
    // A write through the broker's proxy: the broker names itself in Sforce-Call-Options.
    let proxied = reqwest::Client::new()
        .patch(format!("{base}/v1/connections/ev/sf/services/data/v66.0/sobjects/Account/{}", ids[0]))
        .bearer_auth(&h.admin)
        .json(&json!({"Description": "written back by a workflow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status().as_u16(), 204);

    eventually_for(30, "four changes at the unfiltered receiver", async || all.unique().len() >= 4).await;
    let kinds = |r: &Receiver| -> Vec<String> {
        r.unique().iter().map(|d| d.json()["data"]["change"]["type"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(kinds(&all), ["CREATE", "UPDATE", "UPDATE", "UPDATE"]);
    let echo = all.unique()[3].json();
    assert!(echo["data"]["change"]["origin"].as_str().unwrap().ends_with(";client=forcelink-broker"), "{echo}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while filtered.unique().is_empty() || no_echo.unique().len() < 3 {
        if tokio::time::Instant::now() > deadline {
            let (_, v) = api(&base, "GET", "/v1/subscriptions", &h.admin, None).await;
            panic!(
                "timed out: filtered={} no_echo={} all={} {v:#}",
                filtered.unique().len(),
                no_echo.unique().len(),
                all.unique().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let anything else that might come arrive: the unfiltered receiver had all four.
    let filtered_events = filtered.unique();
    assert_eq!(filtered_events.len(), 1, "only the Industry update");
    assert!(
        filtered_events[0].json()["data"]["change"]["changed_fields"].as_array().unwrap().contains(&json!("Industry"))
    );
    assert_eq!(kinds(&no_echo), ["CREATE", "UPDATE", "UPDATE"], "the broker's own write left out");
    // The filtered consumer counts what it skipped (its report is written within a second).
    eventually_for(10, "the skipped count in the report", async || {
        let (_, v) = api(&base, "GET", &format!("/v1/subscriptions/{f}"), &h.admin, None).await;
        v["filter"]["change_types"] == json!(["UPDATE"]) && v["consumer"]["skipped"].as_u64() >= Some(3)
    })
    .await;

    // A transaction too large for change events gives an overflow event: delivered as such,
    // through the UPDATE-only filter too (a lost change is never hidden).
    let resp = reqwest::Client::new()
        .patch(format!("{}/pubsub/settings", h.pg.info.control_url))
        .bearer_auth(&h.pg.info.control_key)
        .json(&json!({"overflow_threshold": 2}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    org.create_accounts(&names("bulk", 5)).await;
    eventually_for(30, "the overflow event through the filter", async || {
        filtered.unique().iter().any(|d| d.json()["data"]["change"]["type"] == "GAP_OVERFLOW")
    })
    .await;
    let overflow =
        filtered.unique().into_iter().find(|d| d.json()["data"]["change"]["type"] == "GAP_OVERFLOW").unwrap();
    assert_eq!(overflow.json()["data"]["change"]["gap"], true);
    assert!(filtered.unique().iter().all(|d| d.json()["data"]["change"]["type"] != "CREATE"), "creates stay filtered");
}

/// Reads SSE events (`id`, `data`) from a streaming response until `n` arrived.
async fn read_sse(resp: &mut reqwest::Response, n: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let chunk =
            tokio::time::timeout_at(deadline, resp.chunk()).await.expect("SSE events in time").unwrap().unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if let Some(id) = id {
                out.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_after_the_last_event_id() {
    let h = harness().await;
    add_event_connection(&*h.store, &h.pg).await;
    pubsub_keepalive(&h.pg, 50).await;
    let (base, _state, _tasks) = start_broker(h.store.clone()).await;
    let reader = add_read_only_key(&*h.store, &["ev"], &["events"]).await;
    // A fresh playground: `earliest` is exactly this test's changes (and no race with the
    // stream's start).
    let url = format!("{base}/v1/connections/ev/events?topic=/data/AccountChangeEvent&replay=earliest");
    let mut first = reqwest::Client::new().get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    assert!(first.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let org = Org::new(&h.pg).await;
    org.create_accounts(&names("sse-a", 3)).await;
    let got = read_sse(&mut first, 3).await;
    let last_id = got[2].0.clone();
    drop(first);
    org.create_accounts(&names("sse-b", 2)).await;
    let mut again =
        reqwest::Client::new().get(&url).bearer_auth(&reader).header("last-event-id", &last_id).send().await.unwrap();
    let rest = read_sse(&mut again, 2).await;
    let names_of = |events: &[(String, Value)]| -> Vec<String> {
        events.iter().map(|(_, v)| v["data"]["event"]["Name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names_of(&got), names("sse-a", 3));
    assert_eq!(names_of(&rest), names("sse-b", 2), "resumed right after the last event seen");
    assert!(rest.iter().all(|(id, v)| v["data"]["replay_id"] == json!(id)));

    // Refusals: no key, a key without `events`, a bad topic, a bad Last-Event-ID.
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(reqwest::Client::new().get(&url).send().await.unwrap()), 401);
    assert_eq!(status(reqwest::Client::new().get(&url).bearer_auth(&h.token_key).send().await.unwrap()), 403);
    let bad = format!("{base}/v1/connections/ev/events?topic=Account");
    assert_eq!(status(reqwest::Client::new().get(&bad).bearer_auth(&reader).send().await.unwrap()), 400);
    let r = reqwest::Client::new().get(&url).bearer_auth(&reader).header("last-event-id", "not base64!").send().await;
    assert_eq!(status(r.unwrap()), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriptions_api_checks_scope_input_and_the_host_rule_and_pauses() {
    let h = harness().await;
    add_event_connection(&*h.store, &h.pg).await;
    pubsub_keepalive(&h.pg, 50).await;
    let (base, _state, _tasks) = start_broker(h.store.clone()).await;
    let r = receiver(0).await;
    let good = json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}});
    // Scope `events` on the connection is needed; a read-only key lists but does not create.
    let (s, _) = api(&base, "POST", "/v1/subscriptions", &h.token_key, Some(good.clone())).await;
    assert_eq!(s, 403);
    let other = add_key(&*h.store, &["pg"], &["events"]).await;
    let (s, v) = api(&base, "POST", "/v1/subscriptions", &other, Some(good.clone())).await;
    assert_eq!(s, 403, "{v}");
    let reader = add_read_only_key(&*h.store, &["ev"], &["events"]).await;
    let (s, _) = api(&base, "POST", "/v1/subscriptions", &reader, Some(good.clone())).await;
    assert_eq!(s, 403);
    // Input is checked before anything is saved.
    for (bad, says) in [
        (json!({"connection": "ev", "topic": "Account", "webhook": {"url": r.url}}), "topic"),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": "http://10.0.0.1/x"}}),
            "https",
        ),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": "https://u:p@example.com/"}}),
            "credentials",
        ),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": format!("{base}/hook")}}),
            "this broker",
        ),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}, "filter": {"change_types": ["MERGE"]}}),
            "change type",
        ),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}, "snapshot": "DELETE Account"}),
            "SOQL",
        ),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}, "replay": "yesterday"}),
            "subscription",
        ),
        (
            json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}, "extra": 1}),
            "subscription",
        ),
    ] {
        let (s, v) = api(&base, "POST", "/v1/subscriptions", &h.admin, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} → {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{bad} → {v}");
    }
    let (s, v) = api(
        &base,
        "POST",
        "/v1/subscriptions",
        &h.admin,
        Some(json!({"connection": "nope", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}})),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let (_, v) = api(&base, "GET", "/v1/subscriptions", &h.admin, None).await;
    assert_eq!(v["subscriptions"], json!([]), "nothing saved by refused calls");

    let (id, secret) = subscribe(&base, &h.admin, good).await;
    wait_for_position(&base, &h.admin, &id).await;
    let (s, v) = api(&base, "GET", "/v1/subscriptions", &reader, None).await;
    assert_eq!(s, 200);
    let listed = v.to_string();
    assert!(listed.contains(&id) && !listed.contains(&secret), "the secret is shown once only: {listed}");
    // Another connection's key does not see it.
    let (s, _) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &other, None).await;
    assert_eq!(s, 404);

    // Paused: nothing is delivered; resumed: what happened meanwhile arrives.
    let (s, v) = api(&base, "POST", &format!("/v1/subscriptions/{id}/pause"), &h.admin, None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("paused")));
    let org = Org::new(&h.pg).await;
    // The consumer notices the pause within a second and stops.
    eventually_for(10, "the consumer to stop", async || {
        let (_, v) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
        v["consumer"]["phase"] == "stopped"
    })
    .await;
    org.create_accounts(&names("paused", 2)).await;
    let (_, v) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
    assert_eq!((v["lag"].as_u64(), v["delivered"].as_u64()), (Some(0), Some(0)), "read while paused: {v}");
    assert!(r.unique().is_empty(), "delivered while paused");
    let (s, _) = api(&base, "POST", &format!("/v1/subscriptions/{id}/resume"), &h.admin, None).await;
    assert_eq!(s, 200);
    eventually_for(20, "the changes made while paused", async || r.unique().len() >= 2).await;

    let (s, v) = api(&base, "GET", &format!("/v1/subscriptions/{id}/deliveries"), &h.admin, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 2, "{v}");
    let (s, _) = api(&base, "DELETE", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
    assert_eq!(s, 200);
    let (s, _) = api(&base, "GET", &format!("/v1/subscriptions/{id}"), &h.admin, None).await;
    assert_eq!(s, 404);
    // The audit log has the story.
    let entries = h.store.audit(None, 100).await.unwrap();
    let actions: Vec<String> = entries.iter().map(|e| e.action.to_string()).collect();
    assert!(actions.contains(&"subscription.created".to_owned()), "{actions:?}");
    assert!(actions.iter().filter(|a| *a == "subscription.changed").count() >= 3, "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriptions_page_lists_state_lag_and_checkpoint_to_those_who_may_see_them() {
    let h = harness().await;
    add_event_connection(&*h.store, &h.pg).await;
    pubsub_keepalive(&h.pg, 50).await;
    let (base, _state, _tasks) = start_broker(h.store.clone()).await;
    let r = receiver(0).await;
    let (id, secret) = subscribe(
        &base,
        &h.admin,
        json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}}),
    )
    .await;
    wait_for_position(&base, &h.admin, &id).await;
    Org::new(&h.pg).await.create_accounts(&names("page", 3)).await;
    eventually_for(20, "three deliveries", async || r.unique().len() >= 3).await;
    let session = crate::web::sign_in(&base, &h.admin).await.unwrap();
    let html = async || crate::web::page(&base, "/subscriptions", &session).await.1;
    eventually_for(10, "the page to show the checkpoint", async || !html().await.contains("none yet")).await;
    let shown = html().await;
    assert!(shown.contains(&format!("data-subscription=\"{id}\"")), "{shown}");
    assert!(shown.contains("data-lag=\"0\"") && shown.contains("3 delivered"), "{shown}");
    assert!(shown.contains("/data/AccountChangeEvent") && shown.contains("data-state=\"active\""), "{shown}");
    assert!(shown.contains("<a href=\"/subscriptions\">Subscriptions</a>"), "a nav link");
    assert!(!shown.contains(&secret), "never the secret");
    // A key for another connection sees none of it.
    let other = add_key(&*h.store, &["pg"], &["*"]).await;
    let theirs = crate::web::sign_in(&base, &other).await.unwrap();
    let (status, html) = crate::web::page(&base, "/subscriptions", &theirs).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No subscriptions yet") && !html.contains(&id), "{html}");
}
