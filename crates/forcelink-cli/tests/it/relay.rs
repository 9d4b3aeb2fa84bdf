//! The broker relays Salesforce events, as processes: `forcelink subscription create` saves a
//! subscription, `forcelink serve` delivers the playground's change events to a receiver, is
//! killed with SIGKILL mid-stream, and after a restart on the same store every change arrives
//! (de-duplicated by `webhook-id`, signed per Standard Webhooks); `subscription
//! list|show|pause|resume|delete` report and change it.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

use std::collections::HashSet;

use forcelink_test_support::spawn_playground;
use serde_json::{Value, json};

use crate::broker::{Broker, admin_key, api, eventually};
use crate::home::{Home, Org, login_client_credentials};
use crate::keepalive::signed_by;
use crate::tinyhttp::{Received, Receiver};

/// Records changed, from the accepted deliveries (each `webhook-id` once).
fn changed_records(received: &[Received]) -> (HashSet<String>, usize) {
    let mut ids = HashSet::new();
    let mut records = HashSet::new();
    for d in received.iter().filter(|d| d.answered == 204) {
        if !ids.insert(d.headers.get("webhook-id").cloned().unwrap_or_default()) {
            continue;
        }
        let v: Value = serde_json::from_str(&d.body).unwrap();
        for r in v["data"]["change"]["record_ids"].as_array().unwrap() {
            records.insert(r.as_str().unwrap().to_owned());
        }
    }
    (records, ids.len())
}

async fn create_accounts(home: &Home, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let ran = home.run(&["sobject", "create", "Account", &format!("Name={prefix}-{i}")]).await.ok();
        ids.push(ran.stdout.trim().to_owned());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_survives_a_killed_broker_and_the_cli_manages_it() {
    let pg = spawn_playground().await;
    let control = reqwest::Client::new()
        .patch(format!("{}/pubsub/settings", pg.info.control_url))
        .bearer_auth(&pg.info.control_key)
        .json(&json!({"keepalive_ms": 100}))
        .send()
        .await
        .unwrap();
    assert!(control.status().is_success());
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    home.set_env("FORCELINK_CONNECTION", "org");
    login_client_credentials(&home, &org, "org").await;
    home.run(&[
        "connection",
        "add",
        "ev",
        "--method",
        "client-credentials",
        "--login-url",
        &org.instance_url,
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:CS",
        "--pubsub-endpoint",
        &pg.info.pubsub_endpoint,
    ])
    .await
    .ok();
    let receiver = Receiver::start(204).await;
    let admin = admin_key(&home).await;

    // Refused before anything is saved: a receiver the host rule does not allow.
    let refused = home
        .run(&[
            "subscription",
            "create",
            "--connection",
            "ev",
            "--topic",
            "/data/AccountChangeEvent",
            "--url",
            &receiver.url,
        ])
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--allow-origin"), "{}", refused.stderr);

    let created = home
        .json(&[
            "--allow-origin",
            &receiver.origin,
            "subscription",
            "create",
            "--connection",
            "ev",
            "--topic",
            "/data/AccountChangeEvent",
            "--url",
            &receiver.url,
        ])
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let listed = home.json(&["subscription", "list"]).await;
    assert_eq!(listed["subscriptions"][0]["id"], id.as_str(), "{listed}");
    assert!(!listed.to_string().contains(&secret), "the secret is printed once only");

    let allow = ["--allow-origin", receiver.origin.as_str(), "--event-lease", "3s"];
    let broker = Broker::start(&home, &allow).await;
    eventually("the consumer's first position", || async {
        let (_, v) = api(&broker.base, "GET", &format!("/v1/subscriptions/{id}"), &admin, None).await;
        v["position"].is_string().then_some(())
    })
    .await;
    let mut created_ids = create_accounts(&home, "before", 10).await;
    eventually("the first changes delivered", || async {
        (changed_records(&receiver.received()).0.len() >= 10).then_some(())
    })
    .await;

    broker.kill().await;
    created_ids.extend(create_accounts(&home, "while-down", 10).await);
    let restarted = Broker::start(&home, &allow).await;
    created_ids.extend(create_accounts(&home, "after", 10).await);
    let (records, unique) = eventually("every change after the restart", || async {
        let (records, unique) = changed_records(&receiver.received());
        (records.len() >= 30).then_some((records, unique))
    })
    .await;
    assert_eq!(records, created_ids.iter().cloned().collect::<HashSet<_>>(), "none lost across the kill");
    assert_eq!(unique, 30, "one event per change");
    for d in receiver.received() {
        assert!(signed_by(&secret, &d), "a valid Standard Webhooks signature: {:?}", d.headers);
    }

    // The CLI reads what the broker did, and pauses, resumes and deletes.
    let shown = eventually("no lag", || async {
        let v = home.json(&["subscription", "show", &id]).await;
        (v["lag"] == 0 && v["delivered"] == 30).then_some(v)
    })
    .await;
    assert!(shown["checkpoint"].is_string(), "{shown}");
    let human = home.run(&["subscription", "show", &id]).await.ok().stdout;
    assert!(human.contains("lag          0 waiting (30 delivered, 0 failed)"), "{human}");
    assert_eq!(home.json(&["subscription", "pause", &id]).await["state"], "paused");
    assert_eq!(home.json(&["subscription", "resume", &id]).await["state"], "active");
    home.run(&["subscription", "delete", &id]).await.ok();
    let gone = home.run(&["subscription", "show", &id]).await;
    assert_eq!(gone.code, 4, "{gone:?}");
    drop(restarted);
}
