//! `forcelink events subscribe|publish|topics` end to end against a playground.

use forcelink_test_support::spawn_playground;
use serde_json::Value;

use crate::home::signed_in;

fn ndjson(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[tokio::test]
async fn subscribe_prints_change_events_as_ndjson_and_resumes_from_a_printed_replay_id() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let endpoint = pg.info.pubsub_endpoint.clone();
    let a = home
        .run(&["sobject", "create", "Account", "Name=Acme", "BillingCity=Lyon"])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    home.run(&["sobject", "update", "Account", &a, "Phone=+33 1"]).await.ok();
    let ran = home
        .run(&[
            "events",
            "subscribe",
            "/data/AccountChangeEvent",
            "--replay",
            "earliest",
            "--count",
            "2",
            "--pubsub-endpoint",
            &endpoint,
        ])
        .await
        .ok();
    let events = ndjson(&ran.stdout);
    assert_eq!(events.len(), 2, "{}", ran.stdout);
    assert_eq!(events[0]["header"]["changeType"], "CREATE");
    assert_eq!(events[0]["header"]["recordIds"][0], a.as_str());
    assert_eq!(events[0]["payload"]["Name"], "Acme");
    assert_eq!(events[0]["payload"]["BillingAddress"]["City"], "Lyon");
    assert_eq!(events[1]["header"]["changeType"], "UPDATE");
    let changed: Vec<&str> =
        events[1]["header"]["changedFields"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(changed.contains(&"Phone"), "{changed:?}");
    assert!(!events[0]["schema_id"].as_str().unwrap().is_empty());

    // From the first event's replay id: only the second one.
    let first = events[0]["replay_id"].as_str().unwrap();
    let ran = home
        .run(&[
            "events",
            "subscribe",
            "/data/AccountChangeEvent",
            "--replay",
            first,
            "--count",
            "1",
            "--pubsub-endpoint",
            &endpoint,
        ])
        .await
        .ok();
    assert_eq!(ndjson(&ran.stdout)[0]["replay_id"], events[1]["replay_id"]);
    pg.shutdown().await;
}

#[tokio::test]
async fn publish_then_subscribe_and_list_topics() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let endpoint = pg.info.pubsub_endpoint.clone();
    let topic = "/event/Forcelink_Notice__e";
    let published = home
        .json(&[
            "events",
            "publish",
            topic,
            "--data",
            r#"{"Message__c": "hello", "Level__c": 3}"#,
            "--pubsub-endpoint",
            &endpoint,
        ])
        .await;
    assert!(!published["replay_id"].as_str().unwrap().is_empty(), "{published}");
    let ran = home
        .run(&["events", "subscribe", topic, "--replay", "earliest", "--count", "1", "--pubsub-endpoint", &endpoint])
        .await
        .ok();
    let events = ndjson(&ran.stdout);
    assert_eq!(events[0]["payload"]["Message__c"], "hello");
    assert_eq!(events[0]["event_id"], published["correlation_key"]);

    let topics = home.json(&["events", "topics", "--pubsub-endpoint", &endpoint]).await;
    let names: Vec<&str> = topics["topics"].as_array().unwrap().iter().filter_map(|t| t["topic"].as_str()).collect();
    for t in ["/data/ChangeEvents", "/data/AccountChangeEvent", "/data/Invoice__ChangeEvent"] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
    pg.shutdown().await;
}

#[tokio::test]
async fn bad_input_and_a_corrupted_replay_id_fail_with_what_to_do() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let endpoint = pg.info.pubsub_endpoint.clone();
    let ran = home
        .run(&[
            "events",
            "subscribe",
            "/data/AccountChangeEvent",
            "--replay",
            "not base64!",
            "--pubsub-endpoint",
            &endpoint,
        ])
        .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let ran = home
        .run(&["events", "publish", "/event/Forcelink_Notice__e", "--data", "[1]", "--pubsub-endpoint", &endpoint])
        .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    // Three bytes cannot be a replay id: Salesforce calls it corrupted; the CLI says what to do.
    let ran = home
        .run(&["events", "subscribe", "/data/AccountChangeEvent", "--replay", "AQID", "--pubsub-endpoint", &endpoint])
        .await;
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("corrupted") && ran.stderr.contains("--replay earliest"), "{}", ran.stderr);
    pg.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_resumes_after_the_last_printed_event_without_loss_or_repeat() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let endpoint = pg.info.pubsub_endpoint.clone();
    let topic = "/data/AccountChangeEvent";
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        ids.push(
            home.run(&["sobject", "create", "Account", &format!("Name={name}")]).await.ok().stdout.trim().to_owned(),
        );
    }
    let subscribe = |extra: &[&str]| {
        let mut args = vec!["events", "subscribe", topic, "--checkpoint", "sync", "--pubsub-endpoint", &endpoint];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let home = &home;
        async move { home.run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    let record = |e: &Value| e["header"]["recordIds"][0].as_str().unwrap().to_owned();

    // No checkpoint yet: --replay says where to start.
    let first = ndjson(&run(subscribe(&["--replay", "earliest", "--count", "2"])).await.ok().stdout);
    assert_eq!(first.iter().map(record).collect::<Vec<_>>(), ids[..2]);
    let listed = home.json(&["events", "checkpoints", "list"]).await;
    assert_eq!(listed["checkpoints"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["checkpoints"][0]["name"], "sync");
    assert_eq!(listed["checkpoints"][0]["topic"], topic);
    assert_eq!(listed["checkpoints"][0]["replay_id"], first[1]["replay_id"], "the last printed event is saved");

    // Resumed: exactly the third event.
    let second = ndjson(&run(subscribe(&["--count", "1"])).await.ok().stdout);
    assert_eq!(second.iter().map(record).collect::<Vec<_>>(), ids[2..]);
    // And after it, only what comes next.
    let fourth = home.run(&["sobject", "create", "Account", "Name=Four"]).await.ok().stdout.trim().to_owned();
    let third = ndjson(&run(subscribe(&["--count", "1"])).await.ok().stdout);
    assert_eq!(third.iter().map(record).collect::<Vec<_>>(), [fourth]);

    // --replay with a saved checkpoint is refused unless the checkpoint is reset.
    let refused = run(subscribe(&["--replay", "earliest", "--count", "1"])).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--reset-checkpoint"), "{}", refused.stderr);
    let reset =
        ndjson(&run(subscribe(&["--replay", "earliest", "--count", "1", "--reset-checkpoint"])).await.ok().stdout);
    assert_eq!(record(&reset[0]), ids[0]);
    let listed = home.json(&["events", "checkpoints", "list", "-c", "org"]).await;
    assert_eq!(listed["checkpoints"][0]["replay_id"], reset[0]["replay_id"]);

    // Bad names are usage errors; deleting works once.
    let bad =
        home.run(&["events", "subscribe", topic, "--checkpoint", "no spaces", "--pubsub-endpoint", &endpoint]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("checkpoint name"), "{}", bad.stderr);
    let lone_reset =
        home.run(&["events", "subscribe", topic, "--reset-checkpoint", "--pubsub-endpoint", &endpoint]).await;
    assert_eq!(lone_reset.code, 2, "{}", lone_reset.stderr);
    home.run(&["events", "checkpoints", "delete", "sync", topic]).await.ok();
    let again = home.run(&["events", "checkpoints", "delete", "sync", topic]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert_eq!(home.json(&["events", "checkpoints", "list"]).await["checkpoints"], serde_json::json!([]));
    pg.shutdown().await;
}

#[tokio::test]
async fn the_connection_s_pubsub_endpoint_is_checked_when_saved_and_used_without_the_flag() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let endpoint = pg.info.pubsub_endpoint.clone();
    let add = |name: &str, value: &str| {
        [
            "connection",
            "add",
            name,
            "--method",
            "client-credentials",
            "--login-url",
            pg.instance_url(),
            "--client-id",
            &pg.info.client.client_id,
            "--client-secret",
            "env:CS",
            "--pubsub-endpoint",
            value,
        ]
        .map(str::to_owned)
    };
    let run = |args: [String; 13]| {
        let home = &home;
        async move { home.run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    for (value, says) in
        [("no-port", "host:port"), ("http://127.0.0.1:1", "host:port"), ("pubsub.evil.example:7443", "--allow-origin")]
    {
        let refused = run(add("bad", value)).await;
        assert_eq!(refused.code, 2, "{value}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("pubsub_endpoint") && refused.stderr.contains(says),
            "{value}: {}",
            refused.stderr
        );
    }
    assert_eq!(home.run(&["connection", "show", "bad"]).await.code, 4, "nothing saved");
    run(add("ev", &endpoint)).await.ok();
    let shown = home.json(&["connection", "show", "ev"]).await;
    assert!(shown.to_string().contains(&format!("\"pubsub_endpoint\":\"{endpoint}\"")), "{shown}");

    // No --pubsub-endpoint: the connection's is used.
    let topic = "/event/Forcelink_Notice__e";
    let published = home.json(&["events", "publish", "-c", "ev", topic, "--data", r#"{"Message__c": "stored"}"#]).await;
    let ran = home.run(&["events", "subscribe", "-c", "ev", topic, "--replay", "earliest", "--count", "1"]).await.ok();
    let events = ndjson(&ran.stdout);
    assert_eq!(events[0]["payload"]["Message__c"], "stored");
    assert_eq!(events[0]["replay_id"], published["replay_id"]);

    // A connection without one goes to Salesforce's, which a playground (http) connection may
    // not send its token to in clear: refused before any connection is made.
    let ran = home.run(&["events", "subscribe", topic, "--count", "1"]).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("api.pubsub.salesforce.com"), "{}", ran.stderr);
    // A bad flag value is a usage error.
    let ran = home.run(&["events", "subscribe", "-c", "ev", topic, "--pubsub-endpoint", "nope"]).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    pg.shutdown().await;
}

/// Salesforce lists platform events in describeGlobal (objects named `…__e`); `events topics`
/// turns them into `/event/…` topics (unit-tested in `commands::events`), confirmed with GetTopic.
#[tokio::test]
async fn topics_lists_the_playground_s_platform_event() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let endpoint = pg.info.pubsub_endpoint.clone();
    let topics = home.json(&["events", "topics", "--pubsub-endpoint", &endpoint]).await;
    let notice = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "/event/Forcelink_Notice__e")
        .unwrap_or_else(|| panic!("/event/Forcelink_Notice__e missing from {topics}"));
    assert_eq!((notice["can_subscribe"].clone(), notice["can_publish"].clone()), (true.into(), true.into()));
    pg.shutdown().await;
}
