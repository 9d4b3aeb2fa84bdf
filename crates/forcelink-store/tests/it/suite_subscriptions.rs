//! The suite's part on event subscriptions, run on every backend by `store_suite!`: the records
//! (secret, pause, spec and status written apart, deletion with their pending deliveries) and
//! the outbox's ordered targets (left out of the webhook sender's claims, claimed in order by
//! their consumer).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::{Clock, ManualClock};
use forcelink_store::outbox::WebhookSecret;
use forcelink_store::subscription::MAX_SUBSCRIPTION_TEXT_LEN;
use forcelink_store::{ConnectionStore, DeliveryOutcome, DeliveryState, SubscriptionRecord};

use crate::suite::connection;
use crate::suite_ops::{ids, new_delivery, of_target, whole_millis};

/// A fresh subscription id (backends that share a database between tests need unique ones).
fn sub_id(tag: &str) -> String {
    format!("sub_{}", connection(tag).as_str().replace('-', "_"))
}

pub fn subscription(id: &str, secret: &str, at: SystemTime) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.to_owned(),
        connection: "acme".into(),
        url: "https://events.example.com/receiver".into(),
        secret: WebhookSecret::new(secret),
        spec: r#"{"topic":"/data/AccountChangeEvent","replay":"latest"}"#.into(),
        paused: false,
        status: None,
        status_at: None,
        created_by: "api-key:suite".into(),
        created_at: at,
    }
}

pub async fn subscriptions_round_trip_with_their_secret_and_refuse_a_taken_id(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let (id1, id2) = (sub_id("sub-one"), sub_id("sub-two"));
    let one = subscription(&id1, "whsec_c3ViLW9uZS1zZWNyZXQ=", clock.now());
    store.put_subscription(&one).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let mut two = subscription(&id2, "whsec_c3ViLXR3by1zZWNyZXQ=", clock.now());
    two.paused = true;
    two.status = Some(r#"{"state":"created"}"#.into());
    two.status_at = Some(clock.now());
    store.put_subscription(&two).await.unwrap();

    assert_eq!(store.subscription(&id1).await.unwrap().unwrap(), one);
    assert_eq!(store.subscription(&id2).await.unwrap().unwrap(), two);
    assert_eq!(store.subscription(&id1).await.unwrap().unwrap().secret.secret(), "whsec_c3ViLW9uZS1zZWNyZXQ=");
    let listed: Vec<String> =
        store.subscriptions().await.unwrap().into_iter().map(|s| s.id).filter(|i| *i == id1 || *i == id2).collect();
    assert_eq!(listed, [id1.clone(), id2.clone()], "oldest first");
    assert!(store.subscription("sub_unknown").await.unwrap().is_none());

    let err = store.put_subscription(&subscription(&id1, "whsec_other", clock.now())).await.unwrap_err();
    assert!(err.to_string().contains(&id1), "{err}");
    assert!(!err.to_string().contains("whsec_"), "no secret in errors: {err}");
    assert_eq!(store.subscription(&id1).await.unwrap().unwrap().secret, one.secret, "the first one is kept");

    let mut big = subscription(&sub_id("sub-big"), "whsec_Ymln", clock.now());
    big.spec = "x".repeat(MAX_SUBSCRIPTION_TEXT_LEN + 1);
    let err = store.put_subscription(&big).await.unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(store.subscription(&big.id).await.unwrap().is_none(), "nothing written");
}

pub async fn pausing_and_resuming_a_subscription_changes_only_that(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let id = sub_id("sub-pause");
    let sub = subscription(&id, "whsec_cGF1c2U=", clock.now());
    store.put_subscription(&sub).await.unwrap();
    assert!(store.set_subscription_paused(&id, true).await.unwrap());
    let paused = store.subscription(&id).await.unwrap().unwrap();
    assert!(paused.paused);
    assert_eq!(SubscriptionRecord { paused: false, ..paused }, sub, "nothing else changed");
    assert!(store.set_subscription_paused(&id, false).await.unwrap());
    assert_eq!(store.subscription(&id).await.unwrap().unwrap(), sub);
    assert!(!store.set_subscription_paused("sub_unknown", true).await.unwrap());
}

pub async fn a_subscriptions_spec_and_status_are_written_apart(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    whole_millis(&clock);
    let id = sub_id("sub-apart");
    store.put_subscription(&subscription(&id, "whsec_YXBhcnQ=", clock.now())).await.unwrap();
    clock.advance(Duration::from_secs(5));
    let status_at = clock.now();
    assert!(store.set_subscription_status(&id, r#"{"state":"running","events":3}"#, status_at).await.unwrap());
    // The API changes the spec and pauses while the consumer reports: neither undoes the other.
    assert!(store.set_subscription_spec(&id, r#"{"topic":"/data/ContactChangeEvent"}"#).await.unwrap());
    assert!(store.set_subscription_paused(&id, true).await.unwrap());
    let s = store.subscription(&id).await.unwrap().unwrap();
    assert_eq!(s.spec, r#"{"topic":"/data/ContactChangeEvent"}"#);
    assert_eq!((s.status.as_deref(), s.status_at), (Some(r#"{"state":"running","events":3}"#), Some(status_at)));
    assert!(s.paused);
    clock.advance(Duration::from_secs(5));
    assert!(store.set_subscription_status(&id, r#"{"state":"paused"}"#, clock.now()).await.unwrap());
    let s = store.subscription(&id).await.unwrap().unwrap();
    assert_eq!(s.spec, r#"{"topic":"/data/ContactChangeEvent"}"#, "a status write keeps the spec");
    assert_eq!((s.status.as_deref(), s.status_at, s.paused), (Some(r#"{"state":"paused"}"#), Some(clock.now()), true));

    assert!(!store.set_subscription_spec("sub_unknown", "{}").await.unwrap());
    assert!(!store.set_subscription_status("sub_unknown", "{}", clock.now()).await.unwrap());
    let too_long = "x".repeat(MAX_SUBSCRIPTION_TEXT_LEN + 1);
    assert!(store.set_subscription_spec(&id, &too_long).await.is_err());
    assert!(store.set_subscription_status(&id, &too_long, clock.now()).await.is_err());
    let s = store.subscription(&id).await.unwrap().unwrap();
    assert_eq!(
        (s.spec.as_str(), s.status.as_deref()),
        (r#"{"topic":"/data/ContactChangeEvent"}"#, Some(r#"{"state":"paused"}"#)),
        "refused texts change nothing"
    );
}

pub async fn deleting_a_subscription_removes_the_pending_deliveries_of_its_targets_only(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let id = sub_id("sub-del");
    let snapshot = format!("{id}.snapshot");
    let longer = format!("{id}0"); // shares the id as a prefix, but is another subscription's
    let other = sub_id("sub-keep");
    let hook = format!("wh_{}", connection("del-hook"));
    store.put_subscription(&subscription(&id, "whsec_ZGVs", clock.now())).await.unwrap();
    let at = clock.now();
    let rows: Vec<_> = [
        ("e1", id.as_str()),
        ("e2", id.as_str()),
        ("s1", snapshot.as_str()),
        ("l1", longer.as_str()),
        ("o1", other.as_str()),
        ("h1", hook.as_str()),
    ]
    .iter()
    .map(|(m, t)| new_delivery(m, t, at))
    .collect();
    assert_eq!(store.enqueue_deliveries(&rows).await.unwrap(), 6);
    // One of the subscription's rows was delivered already: it stays until purged.
    let claimed = store.claim_target_deliveries(&id, "consumer", at, 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(ids(&claimed), ["e1"]);
    let ok = DeliveryOutcome::Delivered { at, status: 200 };
    assert!(store.finish_delivery(claimed[0].seq, "consumer", &ok).await.unwrap());

    assert!(store.delete_subscription(&id).await.unwrap());
    assert!(store.subscription(&id).await.unwrap().is_none());
    let left = of_target(&*store, &id).await;
    assert_eq!(ids(&left), ["e1"], "the pending one went, the delivered one stays");
    assert_eq!(left[0].state, DeliveryState::Delivered);
    assert!(of_target(&*store, &snapshot).await.is_empty(), "the snapshot phase's rows went too");
    assert_eq!(ids(&of_target(&*store, &longer).await), ["l1"]);
    assert_eq!(ids(&of_target(&*store, &other).await), ["o1"]);
    assert_eq!(ids(&of_target(&*store, &hook).await), ["h1"]);
    assert!(!store.delete_subscription(&id).await.unwrap(), "unknown now");
}

pub async fn the_webhook_sender_never_claims_ordered_targets(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    whole_millis(&clock);
    let id = sub_id("sub-skip");
    let hook = format!("wh_{}", connection("skip-hook"));
    let at = clock.now();
    let rows = [
        new_delivery("s1", &id, at),
        new_delivery("h1", &hook, at),
        new_delivery("s2", &format!("{id}.snapshot"), at),
        new_delivery("h2", &hook, at),
    ];
    store.enqueue_deliveries(&rows).await.unwrap();
    let claimed = store.claim_deliveries("sender", at, 100, Duration::from_secs(30)).await.unwrap();
    let mine: Vec<_> = claimed.iter().filter(|d| d.target == hook || d.target.starts_with(&id)).collect();
    assert_eq!(mine.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["h1", "h2"]);
    assert!(claimed.iter().all(|d| !d.target.starts_with("sub_")), "no ordered target claimed: {claimed:?}");
    // The subscription's rows are still free for its consumer.
    let ordered = store.claim_target_deliveries(&id, "consumer", at, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(ids(&ordered), ["s1"]);
}

pub async fn ordered_claims_go_by_seq_due_or_not_and_respect_another_holders_claim(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let id = sub_id("sub-order");
    let at = clock.now();
    let hour = Duration::from_secs(3600);
    // Enqueued in this order; "c" is due only in an hour, another target's row sits in between.
    let rows = [
        new_delivery("a", &id, at),
        new_delivery("b", &id, at),
        new_delivery("x", &format!("{id}.snapshot"), at),
        new_delivery("c", &id, at + hour),
        new_delivery("d", &id, at),
    ];
    store.enqueue_deliveries(&rows).await.unwrap();
    let lease = Duration::from_secs(30);

    let first = store.claim_target_deliveries(&id, "one", at, 2, lease).await.unwrap();
    assert_eq!(ids(&first), ["a", "b"], "in seq order, up to the limit");
    assert!(first.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(first[0].attempts, 0, "a claim is not an attempt");
    let again = store.claim_target_deliveries(&id, "one", at, 10, lease).await.unwrap();
    assert_eq!(ids(&again), ["a", "b", "c", "d"], "its own claims again, and the rest, due or not");
    assert_eq!(again[2].next_attempt_at, at + hour);
    assert!(
        store.claim_target_deliveries(&id, "two", at, 10, lease).await.unwrap().is_empty(),
        "one's claims are live"
    );

    // `one` sends "a"; its retry of "b" keeps "b" pending (and first in line).
    let ok = DeliveryOutcome::Delivered { at, status: 200 };
    assert!(store.finish_delivery(again[0].seq, "one", &ok).await.unwrap());
    let retry = DeliveryOutcome::Retry { at, status: Some(503), error: "busy".into(), next_attempt_at: at + hour };
    assert!(store.finish_delivery(again[1].seq, "one", &retry).await.unwrap());
    assert!(!store.finish_delivery(again[2].seq, "two", &ok).await.unwrap(), "not two's claim");

    // `one` died: its claims end with the lease, and `two` takes the pending rows in order.
    clock.advance(lease + Duration::from_secs(1));
    let now = clock.now();
    let taken = store.claim_target_deliveries(&id, "two", now, 10, lease).await.unwrap();
    assert_eq!(ids(&taken), ["b", "c", "d"], "the delivered row is not claimed again");
    assert_eq!(taken[0].attempts, 1);
    assert!(!store.finish_delivery(taken[1].seq, "one", &ok).await.unwrap(), "no longer one's");
    assert!(store.finish_delivery(taken[1].seq, "two", &ok).await.unwrap());
    let counts = store.delivery_counts(&id).await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (2, 2, 0));
    assert_eq!(ids(&store.claim_target_deliveries(&id, "two", now, 10, lease).await.unwrap()), ["b", "d"]);
    assert!(store.claim_target_deliveries("sub_nothing_here", "two", now, 10, lease).await.unwrap().is_empty());
}
