//! Three brokers on one PostgreSQL schema run one consumer per subscription; killing the
//! replica that runs it moves consumption to another, and the receiver misses nothing.

use std::collections::HashSet;
use std::sync::Arc;

use forcelink_auth::SystemClock;
use forcelink_store::{ConnectionStore, MasterKey, PostgresStore};
use serde_json::{Value, json};

use crate::add_key;
use crate::events::{
    Org, add_event_connection, api, eventually_for, pubsub_keepalive, receiver, start_broker, subscribe,
    wait_for_position,
};
use crate::replicas::PgSchema;

fn record_ids(r: &crate::events::Receiver) -> HashSet<String> {
    r.unique()
        .iter()
        .flat_map(|d| {
            let v: Value = d.json();
            v["data"]["change"]["record_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_one_consumer_and_killing_it_moves_consumption() {
    let pg = forcelink_test_support::spawn_playground().await;
    pubsub_keepalive(&pg, 50).await;
    let schema = PgSchema::new().await;
    let key = MasterKey::generate();
    let mut stores: Vec<Arc<dyn ConnectionStore>> = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PostgresStore::connect(&schema.url, key.clone(), Arc::new(SystemClock)).await.unwrap()));
    }
    add_event_connection(&*stores[0], &pg).await;
    let admin = add_key(&*stores[0], &["*"], &["*"]).await;
    let mut brokers = Vec::new();
    for store in &stores {
        brokers.push(start_broker(store.clone()).await);
    }
    let r = receiver(0).await;
    let (id, _) = subscribe(
        &brokers[0].0,
        &admin,
        json!({"connection": "ev", "topic": "/data/AccountChangeEvent", "webhook": {"url": r.url}}),
    )
    .await;
    wait_for_position(&brokers[1].0, &admin, &id).await;
    let org = Org::new(&pg).await;
    let mut created = org.create_accounts(&(0..50).map(|i| format!("first-{i}")).collect::<Vec<_>>()).await;
    eventually_for(30, "the first 50 changes", async || record_ids(&r).len() >= 50).await;

    // Exactly one replica runs the consumer: one Pub/Sub stream is open at the playground.
    let (_, v) = api(&brokers[2].0, "GET", &format!("/v1/subscriptions/{id}"), &admin, None).await;
    let holder = v["consumer"]["holder"].as_str().unwrap().to_owned();
    let stats = reqwest::Client::new()
        .get(format!("{}/pubsub/stats", pg.info.control_url))
        .bearer_auth(&pg.info.control_key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(stats["open_streams"], 1, "one consumer across three replicas: {stats}");

    // Kill the holder (its tasks stop where they are; its lease is never released).
    let victim =
        brokers.iter().position(|(_, state, _)| state.replica_id() == holder).expect("the holder is a replica");
    for t in &brokers[victim].2 {
        t.abort();
    }
    created.extend(org.create_accounts(&(0..50).map(|i| format!("second-{i}")).collect::<Vec<_>>()).await);
    // Within the lease (3 s) another replica takes over and delivers the rest.
    eventually_for(30, "all 100 changes after the kill", async || record_ids(&r).len() >= 100).await;
    assert_eq!(record_ids(&r), created.into_iter().collect::<HashSet<_>>());
    let alive = (victim + 1) % 3;
    let (_, v) = api(&brokers[alive].0, "GET", &format!("/v1/subscriptions/{id}"), &admin, None).await;
    assert_ne!(v["consumer"]["holder"].as_str().unwrap(), holder, "{v}");
    for (i, b) in brokers.iter().enumerate() {
        if i != victim {
            for t in &b.2 {
                t.abort();
            }
        }
    }
    schema.drop_schema().await;
}
