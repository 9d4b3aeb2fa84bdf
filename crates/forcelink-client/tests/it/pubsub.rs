//! The Pub/Sub client against the playground: decoding, bitmaps, resubscription after drops
//! and auth errors (with checkpoints), typed replay errors, the watchdog, flow control,
//! publishing, and where tokens may go.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use forcelink_auth::{AuthError, TokenProvider};
use forcelink_client::Client;
use forcelink_client::pubsub::{
    Checkpoint, Event, PubSubClient, PubSubError, PublishEvent, ReplayFrom, ReplayId, Subscription,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::common::{FixedToken, PlaygroundHandle, Recording, admin_provider, client_over, spawn_playground};

/// A client for the playground's Pub/Sub port, quick to resubscribe.
fn pubsub(pg: &PlaygroundHandle, provider: Arc<dyn TokenProvider>) -> forcelink_client::pubsub::PubSubClientBuilder {
    PubSubClient::builder(provider)
        .url_policy(forcelink_auth::UrlPolicy::new().allow_any_loopback())
        .endpoint(pg.info.pubsub_endpoint.clone())
        .resubscribe_backoff(Duration::from_millis(1))
}

fn rest(pg: &PlaygroundHandle) -> Client {
    client_over(Arc::new(admin_provider(pg)), &forcelink_auth::ManualClock::starting_now())
}

async fn create_account(client: &Client, body: Value) -> String {
    client.sobject("Account").unwrap().create(&body).send().await.unwrap().id.to_string()
}

async fn control(pg: &PlaygroundHandle, method: reqwest::Method, path: &str, body: Value) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/pubsub{path}", pg.info.control_url))
        .bearer_auth(&pg.info.control_key);
    if !body.is_null() {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn arm(pg: &PlaygroundHandle, kind: &str) {
    control(pg, reqwest::Method::POST, "/faults", json!({"kind": kind})).await;
}

async fn next(sub: &mut Subscription) -> Event {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream is open")
        .expect("no error")
}

/// Checkpoints in memory, in the order they were saved.
#[derive(Debug, Default)]
struct Saved(Mutex<Vec<ReplayId>>);

impl Checkpoint for Saved {
    fn save<'a>(&'a self, replay_id: &'a ReplayId) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0.lock().unwrap().push(replay_id.clone());
            Ok(())
        })
    }
}

#[tokio::test]
async fn change_events_decode_with_field_names_and_expanded_bitmaps() {
    let pg = spawn_playground().await;
    let rest = rest(&pg);
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg))).build().unwrap();
    let mut sub = ps.subscribe("/data/AccountChangeEvent", ReplayFrom::Earliest);
    let id = create_account(&rest, json!({"Name": "Acme", "BillingCity": "Lyon"})).await;
    let created = next(&mut sub).await;
    let header = created.header.clone().expect("a change event has a header");
    assert_eq!(header.entity_name, "Account");
    assert_eq!(header.change_type, "CREATE");
    assert_eq!(header.record_ids, vec![id.clone()]);
    assert_eq!(created.payload["Name"], "Acme");
    assert_eq!(created.payload["BillingAddress"]["City"], "Lyon");
    assert!(!created.payload.contains_key("ChangeEventHeader"));

    rest.sobject("Account")
        .unwrap()
        .update(&id, &json!({"Phone": "+33 1", "BillingCity": "Paris", "Website": null}))
        .unwrap()
        .send()
        .await
        .unwrap();
    let updated = next(&mut sub).await;
    let header = updated.header.unwrap();
    assert_eq!(header.change_type, "UPDATE");
    for f in ["Phone", "Website", "LastModifiedDate", "BillingAddress.City"] {
        assert!(header.changed_fields.contains(&f.to_owned()), "{f} in {:?}", header.changed_fields);
    }
    assert!(!header.changed_fields.contains(&"Name".to_owned()));
    assert_eq!(header.nulled_fields, vec!["Website".to_owned()]);
    assert_eq!(updated.schema_id, created.schema_id, "one schema per object");
    pg.shutdown().await;
}

#[tokio::test]
async fn a_dropped_stream_resumes_from_the_checkpoint_without_losing_or_repeating() {
    let pg = spawn_playground().await;
    let rest = rest(&pg);
    let saved = Arc::new(Saved::default());
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg))).batch_size(2).build().unwrap();
    let mut sub = ps.subscribe_with_checkpoint("/data/AccountChangeEvent", ReplayFrom::Earliest, saved.clone());
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_account(&rest, json!({"Name": format!("A{i}")})).await);
    }
    let mut seen = Vec::new();
    seen.push(next(&mut sub).await);
    arm(&pg, "drop_stream").await;
    for i in 3..6 {
        ids.push(create_account(&rest, json!({"Name": format!("A{i}")})).await);
    }
    while seen.len() < 6 {
        seen.push(next(&mut sub).await);
    }
    let got: Vec<String> = seen.iter().map(|e| e.header.as_ref().unwrap().record_ids[0].clone()).collect();
    assert_eq!(got, ids, "every event once, in order");
    assert!(sub.stats().subscribes >= 2, "{:?}", sub.stats());
    // Each handled event was checkpointed before the next one was handed out.
    let checkpoints = saved.0.lock().unwrap().clone();
    for e in &seen[..5] {
        assert!(checkpoints.contains(&e.replay_id), "{:?} not checkpointed", e.replay_id);
    }
    assert!(!checkpoints.contains(&seen[5].replay_id), "the event being handled is not checkpointed yet");

    // A new subscription from the last checkpoint gets only what came after.
    let last = checkpoints.last().unwrap().clone();
    let mut resumed = ps.subscribe("/data/AccountChangeEvent", ReplayFrom::After(last));
    let id = create_account(&rest, json!({"Name": "after"})).await;
    let first = next(&mut resumed).await;
    assert_eq!(first.header.unwrap().record_ids[0], *ids.last().unwrap(), "the unhandled event comes again");
    assert_eq!(next(&mut resumed).await.header.unwrap().record_ids, vec![id]);
    pg.shutdown().await;
}

#[tokio::test]
async fn an_auth_error_mid_stream_invalidates_exactly_that_token_and_resumes() {
    let pg = spawn_playground().await;
    let rest = rest(&pg);
    let provider = Recording::new(admin_provider(&pg));
    let ps = pubsub(&pg, provider.clone()).build().unwrap();
    let mut sub = ps.subscribe("/data/AccountChangeEvent", ReplayFrom::Earliest);
    let a = create_account(&rest, json!({"Name": "before"})).await;
    assert_eq!(next(&mut sub).await.header.unwrap().record_ids, vec![a]);
    arm(&pg, "auth_error").await;
    let b = create_account(&rest, json!({"Name": "after"})).await;
    let e = next(&mut sub).await;
    assert_eq!(e.header.unwrap().record_ids, vec![b], "resumed after the last event, nothing repeated");
    let handed = provider.handed_out();
    assert_eq!(provider.invalidated(), vec![handed[0].clone()], "exactly the refused token");
    assert_ne!(handed.last().unwrap().secret(), handed[0].secret(), "a fresh token was used");
    assert_eq!(sub.stats().renewals, 1);
    pg.shutdown().await;
}

#[tokio::test]
async fn a_corrupted_replay_id_is_a_typed_error_not_a_silent_jump() {
    let pg = spawn_playground().await;
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg))).build().unwrap();
    let bad = ReplayId::from_bytes(vec![1, 2, 3]);
    let mut sub = ps.subscribe("/data/AccountChangeEvent", ReplayFrom::After(bad.clone()));
    match sub.next().await {
        Some(Err(PubSubError::CorruptedReplayId { replay_id, error_code, .. })) => {
            assert_eq!(replay_id, bad);
            assert_eq!(error_code, "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted");
        }
        other => panic!("expected CorruptedReplayId, got {other:?}"),
    }
    assert!(sub.next().await.is_none(), "the stream ends after the error");
    assert_eq!(sub.stats().subscribes, 1, "no retry from elsewhere");

    arm(&pg, "corrupted_replay_id").await;
    let mut sub = ps.subscribe("/data/AccountChangeEvent", ReplayFrom::Latest);
    assert!(matches!(sub.next().await, Some(Err(PubSubError::CorruptedReplayId { .. }))));
    pg.shutdown().await;
}

#[tokio::test]
async fn the_watchdog_tears_down_a_silent_stream_and_gives_up_after_the_limit() {
    let pg = spawn_playground().await;
    // The playground's keep-alive interval (270 s) is far beyond the watchdog's.
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg)))
        .keepalive_timeout(Duration::from_millis(100))
        .max_resubscribes(2)
        .build()
        .unwrap();
    let mut sub = ps.subscribe("/event/Forcelink_Notice__e", ReplayFrom::Latest);
    match tokio::time::timeout(Duration::from_secs(20), sub.next()).await.unwrap() {
        Some(Err(PubSubError::ResubscribeLimit { attempts: 2, last })) => {
            assert!(matches!(*last, PubSubError::Silent { .. }), "{last}");
        }
        other => panic!("expected the resubscribe limit, got {other:?}"),
    }
    let stats = sub.stats();
    assert_eq!(stats.watchdog_fired, 3);
    assert_eq!(stats.subscribes, 3);
    pg.shutdown().await;
}

/// Reports every checkpoint on a channel, so a test can wait for one.
#[derive(Debug)]
struct Notifying(tokio::sync::mpsc::UnboundedSender<ReplayId>);

impl Checkpoint for Notifying {
    fn save<'a>(&'a self, replay_id: &'a ReplayId) -> BoxFuture<'a, Result<(), String>> {
        let _ = self.0.send(replay_id.clone());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn keepalives_keep_the_watchdog_quiet_and_move_the_checkpoint() {
    let pg = spawn_playground().await;
    control(&pg, reqwest::Method::PATCH, "/settings", json!({"keepalive_ms": 20})).await;
    let rest = rest(&pg);
    create_account(&rest, json!({"Name": "x"})).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg))).keepalive_timeout(Duration::from_secs(10)).build().unwrap();
    let topic = "/event/Forcelink_Notice__e";
    let mut sub = ps.subscribe_with_checkpoint(topic, ReplayFrom::Latest, Arc::new(Notifying(tx)));
    let reader = tokio::spawn(async move {
        let e = next(&mut sub).await;
        (e, sub)
    });
    // No event yet: the checkpoint moves with the keep-alive's latest replay id.
    let from_keepalive = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert_eq!(from_keepalive.as_bytes().len(), 8);
    let data = json!({"Message__c": "hi"}).as_object().unwrap().clone();
    ps.publish(topic, vec![PublishEvent { correlation_key: None, data }]).await.unwrap();
    let (e, sub) = reader.await.unwrap();
    assert_eq!(e.payload["Message__c"], "hi");
    assert!(sub.stats().keepalives >= 1);
    assert_eq!(sub.stats().watchdog_fired, 0);
    pg.shutdown().await;
}

#[tokio::test]
async fn flow_control_never_exceeds_100_outstanding() {
    let pg = spawn_playground().await;
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg))).build().unwrap();
    let topic = "/event/Forcelink_Notice__e";
    for chunk in 0..3 {
        let events = (0..100)
            .map(|i| PublishEvent {
                correlation_key: Some(format!("{chunk}-{i}")),
                data: json!({"Message__c": format!("{chunk}-{i}")}).as_object().unwrap().clone(),
            })
            .collect();
        let results = ps.publish(topic, events).await.unwrap();
        assert!(results.iter().all(|r| r.result.is_ok()));
    }
    let mut sub = ps.subscribe(topic, ReplayFrom::Earliest);
    for i in 0..300 {
        let e = next(&mut sub).await;
        assert_eq!(e.payload["Message__c"], format!("{}-{}", i / 100, i % 100));
    }
    let stats = control(&pg, reqwest::Method::GET, "/stats", Value::Null).await;
    assert!(stats["max_outstanding"].as_i64().unwrap() <= 100, "{stats}");
    assert_eq!(stats["clamped_requests"], 0, "the client never asked beyond 100");
    assert!(sub.stats().max_outstanding <= 100);
    pg.shutdown().await;
}

#[tokio::test]
async fn publish_and_publish_stream_return_outcomes_by_correlation_key() {
    let pg = spawn_playground().await;
    let ps = pubsub(&pg, Arc::new(admin_provider(&pg))).build().unwrap();
    let topic = "/event/Forcelink_Notice__e";
    let info = ps.get_topic(topic).await.unwrap();
    assert!(info.can_publish);
    let data = |m: &str| json!({"Message__c": m, "Level__c": 2.5}).as_object().unwrap().clone();
    let results =
        ps.publish(topic, vec![PublishEvent { correlation_key: Some("k1".into()), data: data("one") }]).await.unwrap();
    assert_eq!(results[0].correlation_key, "k1");
    let first = results[0].result.clone().unwrap();

    let mut stream = ps.publish_stream(topic).await.unwrap();
    let keys = stream.send(vec![PublishEvent { correlation_key: None, data: data("two") }]).await.unwrap();
    let outcomes = stream.next().await.unwrap().unwrap();
    assert_eq!(outcomes[0].correlation_key, keys[0]);
    assert!(outcomes[0].result.is_ok());

    let mut sub = ps.subscribe(topic, ReplayFrom::After(first));
    let e = next(&mut sub).await;
    assert_eq!(e.payload["Message__c"], "two");
    assert_eq!(e.payload["Level__c"], 2.5);
    assert_eq!(e.event_id, keys[0]);

    let err = ps
        .publish(
            topic,
            vec![PublishEvent { correlation_key: None, data: json!({"Nope__c": 1}).as_object().unwrap().clone() }],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PubSubError::InvalidInput(_)), "{err}");
    pg.shutdown().await;
}

#[tokio::test]
async fn tokens_go_only_where_the_url_policy_allows() {
    let pg = spawn_playground().await;
    // An instance URL in clear on a public host: refused before anything is sent.
    let ps = pubsub(&pg, FixedToken::at("http://evil.example")).build().unwrap();
    let err = ps.get_topic("/data/AccountChangeEvent").await.unwrap_err();
    assert!(matches!(err, PubSubError::Auth(AuthError::InsecureUrl { .. })), "{err}");
    // A loopback instance but an endpoint on a public host in clear: refused too.
    let ps = PubSubClient::builder(Arc::new(admin_provider(&pg)))
        .url_policy(forcelink_auth::UrlPolicy::new().allow_any_loopback())
        .endpoint("pubsub.evil.example:7443")
        .build()
        .unwrap();
    let mut sub = ps.subscribe("/data/AccountChangeEvent", ReplayFrom::Latest);
    assert!(matches!(sub.next().await, Some(Err(PubSubError::Auth(AuthError::InsecureUrl { .. })))));
    assert!(PubSubClient::builder(Arc::new(admin_provider(&pg))).endpoint("no-port").build().is_err());
    assert!(PubSubClient::builder(Arc::new(admin_provider(&pg))).batch_size(101).build().is_err());
    pg.shutdown().await;
}
