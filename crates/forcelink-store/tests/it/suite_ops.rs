//! The suite's second half, run on every backend by `store_suite!`: connection health
//! (compare-and-swap with its deliveries), work leases, webhooks, the delivery outbox and
//! ephemeral records.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::{Clock, ManualClock};
use forcelink_store::ephemeral::MAX_EPHEMERAL_VALUE_LEN;
use forcelink_store::outbox::{DeliveryCounts, WebhookSecret};
use forcelink_store::{
    ConnectionHealth, ConnectionState, ConnectionStore, Delivery, DeliveryFilter, DeliveryOutcome, DeliveryState,
    EphemeralKind, HealthWrite, NewDelivery, PutMode, WebhookRecord,
};
use futures_util::future::join_all;

use crate::suite::{connection, spec_with_secrets};

/// Stores keep milliseconds: start on a whole one so times compare equal after a round trip.
pub fn whole_millis(clock: &ManualClock) {
    let ms = clock.now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
    clock.set(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
}

pub fn new_delivery(id: &str, target: &str, at: SystemTime) -> NewDelivery {
    NewDelivery {
        id: id.to_owned(),
        target: target.to_owned(),
        event_type: "connection.unhealthy".into(),
        connection: "acme".into(),
        body: format!("{{\"id\":\"{id}\"}}"),
        created_at: at,
    }
}

pub fn webhook(id: &str, secret: &str, at: SystemTime) -> WebhookRecord {
    WebhookRecord {
        id: id.to_owned(),
        url: "https://hooks.example.com/forcelink".into(),
        events: vec!["connection.*".into(), "limits.near".into()],
        connections: vec!["*".into()],
        secret: WebhookSecret::new(secret),
        created_by: "api-key:suite".into(),
        created_at: at,
    }
}

pub fn ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.id.as_str()).collect()
}

pub async fn of_target(store: &dyn ConnectionStore, target: &str) -> Vec<Delivery> {
    store.deliveries(&DeliveryFilter { target: Some(target.into()), ..DeliveryFilter::default() }).await.unwrap()
}

pub async fn health_is_written_by_compare_and_swap_with_its_deliveries(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let (c, other) = (connection("health"), connection("health-other"));
    let target = format!("wh_{c}");
    assert!(store.health(&c).await.unwrap().is_none());

    let mut first = ConnectionHealth::unknown(c.clone(), clock.now());
    first.state = ConnectionState::Unhealthy;
    first.reason = Some("the token endpoint answered 503".into());
    first.checked_at = Some(clock.now());
    let d1 = new_delivery("msg_1", &target, clock.now());
    assert_eq!(store.write_health(&first, None, &[d1]).await.unwrap(), HealthWrite::Written(1));
    let mut expected = first.clone();
    expected.version = 1;
    assert_eq!(store.health(&c).await.unwrap(), Some(expected.clone()));
    assert_eq!(ids(&of_target(&*store, &target).await), ["msg_1"], "written with the record");

    // A second creator loses, sees the record as it is, and enqueues nothing.
    let mut second = first.clone();
    second.state = ConnectionState::Healthy;
    let d2 = new_delivery("msg_2", &target, clock.now());
    let lost = store.write_health(&second, None, std::slice::from_ref(&d2)).await.unwrap();
    assert_eq!(lost, HealthWrite::Conflict(Some(Box::new(expected.clone()))));
    assert_eq!(store.write_health(&second, Some(7), std::slice::from_ref(&d2)).await.unwrap(), lost, "stale version");
    assert_eq!(ids(&of_target(&*store, &target).await), ["msg_1"], "a conflict enqueues nothing");
    assert_eq!(store.health(&c).await.unwrap().unwrap().state, ConnectionState::Unhealthy);

    // The current version wins and moves on.
    assert_eq!(store.write_health(&second, Some(1), &[d2]).await.unwrap(), HealthWrite::Written(2));
    let now = store.health(&c).await.unwrap().unwrap();
    assert_eq!((now.version, now.state), (2, ConnectionState::Healthy));
    assert_eq!(ids(&of_target(&*store, &target).await), ["msg_2", "msg_1"]);
    assert_eq!(store.write_health(&second, Some(2), &[]).await.unwrap(), HealthWrite::Written(3));

    // No record yet, and the writer expected one.
    let other_health = ConnectionHealth::unknown(other.clone(), clock.now());
    assert_eq!(store.write_health(&other_health, Some(1), &[]).await.unwrap(), HealthWrite::Conflict(None));
    assert_eq!(store.write_health(&other_health, None, &[]).await.unwrap(), HealthWrite::Written(1));
    let listed: Vec<_> = store
        .healths()
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.connection == c || h.connection == other)
        .map(|h| (h.connection.as_str().to_owned(), h.version))
        .collect();
    let mut want = vec![(c.as_str().to_owned(), 3), (other.as_str().to_owned(), 1)];
    want.sort();
    assert_eq!(listed, want, "by name");

    // Removing a connection removes its record, not the others'.
    store.put_connection(&c, &spec_with_secrets("cs", "pw", "env:K"), PutMode::Create).await.unwrap();
    assert!(store.remove_connection(&c).await.unwrap());
    assert!(store.health(&c).await.unwrap().is_none());
    assert!(store.health(&other).await.unwrap().is_some());
}

pub async fn work_leases_keep_other_holders_out_until_they_end(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    let name = format!("health-checks-{}", connection("lease"));
    let ttl = Duration::from_secs(60);
    assert!(store.try_work_lease(&name, "replica-a", ttl).await.unwrap());
    assert!(!store.try_work_lease(&name, "replica-b", ttl).await.unwrap(), "held by a");
    assert!(store.try_work_lease(&format!("{name}-other"), "replica-b", ttl).await.unwrap(), "another lease");
    clock.advance(Duration::from_secs(30));
    assert!(store.try_work_lease(&name, "replica-a", ttl).await.unwrap(), "the holder extends");
    clock.advance(Duration::from_secs(40));
    assert!(!store.try_work_lease(&name, "replica-b", ttl).await.unwrap(), "extended to 90 s");
    clock.advance(Duration::from_secs(21));
    assert!(store.try_work_lease(&name, "replica-b", ttl).await.unwrap(), "ended: b takes it");
    assert!(!store.try_work_lease(&name, "replica-a", ttl).await.unwrap());
    store.release_work_lease(&name, "replica-a").await.unwrap();
    assert!(!store.try_work_lease(&name, "replica-a", ttl).await.unwrap(), "a cannot release b's lease");
    store.release_work_lease(&name, "replica-b").await.unwrap();
    assert!(store.try_work_lease(&name, "replica-a", ttl).await.unwrap(), "released");
}

pub async fn webhooks_are_stored_listed_and_deleted_with_their_pending_deliveries(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let suffix = connection("wh");
    let (id1, id2) = (format!("wh_one_{suffix}"), format!("wh_two_{suffix}"));
    let one = webhook(&id1, "whsec_b25lLXNlY3JldC1vbmU=", clock.now());
    store.put_webhook(&one).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let two = webhook(&id2, "whsec_dHdvLXNlY3JldC10d28=", clock.now());
    store.put_webhook(&two).await.unwrap();
    assert_eq!(store.webhook(&id1).await.unwrap(), Some(one.clone()));
    assert_eq!(store.webhook(&id1).await.unwrap().unwrap().secret.secret(), "whsec_b25lLXNlY3JldC1vbmU=");
    assert!(store.webhook(&format!("wh_none_{suffix}")).await.unwrap().is_none());
    let err = store.put_webhook(&webhook(&id1, "whsec_other", clock.now())).await.unwrap_err();
    assert!(err.to_string().contains(&id1), "{err}");
    assert_eq!(store.webhook(&id1).await.unwrap().unwrap().secret, one.secret, "the first one is kept");
    let listed: Vec<_> = store.webhooks().await.unwrap().into_iter().filter(|h| h.id == id1 || h.id == id2).collect();
    assert_eq!(listed, [one.clone(), two.clone()], "oldest first");

    // One delivered, one failed and one pending to the first; one pending to the second.
    let at = clock.now();
    let batch = [
        new_delivery("d_ok", &id1, at),
        new_delivery("d_fail", &id1, at),
        new_delivery("d_wait", &id1, at),
        new_delivery("d_two", &id2, at),
    ];
    assert_eq!(store.enqueue_deliveries(&batch).await.unwrap(), 4);
    let claimed = store.claim_deliveries("sender", at, 2, Duration::from_secs(30)).await.unwrap();
    assert_eq!(ids(&claimed), ["d_ok", "d_fail"]);
    let ok = DeliveryOutcome::Delivered { at, status: 200 };
    assert!(store.finish_delivery(claimed[0].seq, "sender", &ok).await.unwrap());
    let failed = DeliveryOutcome::Failed { at, status: Some(410), error: "gone".into() };
    assert!(store.finish_delivery(claimed[1].seq, "sender", &failed).await.unwrap());

    assert!(store.delete_webhook(&id1).await.unwrap());
    assert!(store.webhook(&id1).await.unwrap().is_none());
    assert_eq!(ids(&of_target(&*store, &id1).await), ["d_fail", "d_ok"], "the pending one went, the rest stay");
    assert_eq!(ids(&of_target(&*store, &id2).await), ["d_two"]);
    assert!(!store.delete_webhook(&id1).await.unwrap());
    assert_eq!(store.webhooks().await.unwrap().into_iter().filter(|h| h.id == id1).count(), 0);
}

pub async fn the_outbox_enqueues_once_and_claims_oldest_first_one_holder_at_a_time(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    whole_millis(&clock);
    let target = format!("wh_{}", connection("claim"));
    let at = clock.now();
    let batch: Vec<_> = ["a", "b", "c"].iter().map(|id| new_delivery(id, &target, at)).collect();
    assert_eq!(store.enqueue_deliveries(&batch).await.unwrap(), 3);
    let again = [new_delivery("b", &target, at), new_delivery("d", &target, at)];
    assert_eq!(store.enqueue_deliveries(&again).await.unwrap(), 1, "(target, id) is enqueued once");
    assert_eq!(store.enqueue_deliveries(&[]).await.unwrap(), 0);
    let later = new_delivery("later", &target, at + Duration::from_secs(3600));
    assert_eq!(store.enqueue_deliveries(std::slice::from_ref(&later)).await.unwrap(), 1);

    let listed = of_target(&*store, &target).await;
    assert_eq!(ids(&listed), ["later", "d", "c", "b", "a"], "newest first");
    let a = listed.last().unwrap();
    assert_eq!((a.state, a.attempts, a.next_attempt_at, a.created_at), (DeliveryState::Pending, 0, at, at));
    assert_eq!((a.last_attempt_at, a.last_status, &a.last_error, a.delivered_at), (None, None, &None, None));
    assert_eq!(
        (a.body.as_str(), a.event_type.as_str(), a.connection.as_str()),
        ("{\"id\":\"a\"}", "connection.unhealthy", "acme")
    );

    let lease = Duration::from_secs(30);
    let first = store.claim_deliveries("one", at, 2, lease).await.unwrap();
    assert_eq!(ids(&first), ["a", "b"], "oldest first");
    assert!(first[0].seq < first[1].seq);
    assert_eq!(first[0].attempts, 0, "a claim is not an attempt");
    let second = store.claim_deliveries("two", at, 10, lease).await.unwrap();
    assert_eq!(ids(&second), ["c", "d"], "claimed rows are skipped; a future one is not due");
    assert!(store.claim_deliveries("three", at, 10, lease).await.unwrap().is_empty());

    // A holder that died: its claims end with the lease, and another takes the rows.
    clock.advance(lease + Duration::from_secs(1));
    let now = clock.now();
    let third = store.claim_deliveries("three", now, 10, lease).await.unwrap();
    assert_eq!(ids(&third), ["a", "b", "c", "d"]);
    let ok = DeliveryOutcome::Delivered { at: now, status: 204 };
    assert!(!store.finish_delivery(third[0].seq, "one", &ok).await.unwrap(), "no longer one's claim");
    assert!(store.finish_delivery(third[0].seq, "three", &ok).await.unwrap());
    assert!(!store.finish_delivery(third[0].seq, "three", &ok).await.unwrap(), "finished already");
    assert!(!store.finish_delivery(i64::MAX, "three", &ok).await.unwrap(), "no such row");
    assert_eq!(of_target(&*store, &target).await.iter().find(|d| d.id == "a").unwrap().attempts, 1);
}

pub async fn concurrent_claimers_never_share_a_delivery(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    let target = format!("wh_{}", connection("race"));
    let at = clock.now();
    let batch: Vec<_> = (0..40).map(|i| new_delivery(&format!("m{i:02}"), &target, at)).collect();
    assert_eq!(store.enqueue_deliveries(&batch).await.unwrap(), 40);
    let claims = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_deliveries(&format!("c{i}"), at, 3, Duration::from_secs(30)).await })
    });
    let mut seen: Vec<i64> = Vec::new();
    for claimed in join_all(claims).await {
        let claimed = claimed.unwrap().unwrap();
        assert!(claimed.windows(2).all(|w| w[0].seq < w[1].seq), "each claim is in seq order");
        seen.extend(claimed.iter().map(|d| d.seq));
    }
    let n = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n, "a row went to two claimers");
    assert_eq!(n, 24, "8 claimers × 3 of 40 due rows");
}

pub async fn outcomes_counts_filters_retries_and_purges(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    whole_millis(&clock);
    let target = format!("wh_{}", connection("outcomes"));
    let t0 = clock.now();
    let batch: Vec<_> = ["x", "y", "z"].iter().map(|id| new_delivery(id, &target, t0)).collect();
    store.enqueue_deliveries(&batch).await.unwrap();
    // Another target's, due only tomorrow (so never claimed here).
    let tomorrow = t0 + Duration::from_secs(86_400);
    store.enqueue_deliveries(&[new_delivery("elsewhere", "wh_other", tomorrow)]).await.unwrap();
    let claimed = store.claim_deliveries("s", t0, 3, Duration::from_secs(30)).await.unwrap();
    assert_eq!(ids(&claimed), ["x", "y", "z"]);
    let (x, y, z) = (claimed[0].seq, claimed[1].seq, claimed[2].seq);

    clock.advance(Duration::from_secs(1));
    let t1 = clock.now();
    let retry_at = t1 + Duration::from_secs(60);
    assert!(store.finish_delivery(x, "s", &DeliveryOutcome::Delivered { at: t1, status: 200 }).await.unwrap());
    let retry =
        DeliveryOutcome::Retry { at: t1, status: Some(503), error: "HTTP 503".into(), next_attempt_at: retry_at };
    assert!(store.finish_delivery(y, "s", &retry).await.unwrap());
    let fail = DeliveryOutcome::Failed { at: t1, status: None, error: "connection refused".into() };
    assert!(store.finish_delivery(z, "s", &fail).await.unwrap());

    let all = of_target(&*store, &target).await;
    let get = |id: &str| all.iter().find(|d| d.id == id).unwrap().clone();
    let dx = get("x");
    assert_eq!(
        (dx.state, dx.attempts, dx.last_attempt_at, dx.last_status),
        (DeliveryState::Delivered, 1, Some(t1), Some(200))
    );
    assert_eq!((dx.delivered_at, dx.last_error), (Some(t1), None));
    let dy = get("y");
    assert_eq!(
        (dy.state, dy.attempts, dy.next_attempt_at, dy.last_status),
        (DeliveryState::Pending, 1, retry_at, Some(503))
    );
    assert_eq!((dy.last_error.as_deref(), dy.delivered_at), (Some("HTTP 503"), None));
    let dz = get("z");
    assert_eq!((dz.state, dz.attempts, dz.last_status), (DeliveryState::Failed, 1, None));
    assert_eq!(dz.last_error.as_deref(), Some("connection refused"));

    // The retry is due at its time, not before; a claim keeps the attempts.
    assert!(store.claim_deliveries("s", clock.now(), 10, Duration::from_secs(30)).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(60));
    let again = store.claim_deliveries("s2", clock.now(), 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(ids(&again), ["y"]);
    assert_eq!(again[0].attempts, 1);

    assert_eq!(store.delivery_counts(&target).await.unwrap(), DeliveryCounts { pending: 1, delivered: 1, failed: 1 });
    assert_eq!(store.delivery_counts("wh_nobody").await.unwrap(), DeliveryCounts::default());
    let filter =
        |state: Option<DeliveryState>, limit: usize| DeliveryFilter { target: Some(target.clone()), state, limit };
    assert_eq!(ids(&store.deliveries(&filter(Some(DeliveryState::Failed), 0)).await.unwrap()), ["z"]);
    assert_eq!(ids(&store.deliveries(&filter(Some(DeliveryState::Delivered), 0)).await.unwrap()), ["x"]);
    assert_eq!(ids(&store.deliveries(&filter(None, 2)).await.unwrap()), ["z", "y"], "newest first, limited");
    let any_target = store.deliveries(&DeliveryFilter::default()).await.unwrap();
    assert!(ids(&any_target).contains(&"elsewhere") && any_target.len() >= 4);

    // Only a failed delivery is retried: pending again, due now, its attempts kept.
    assert!(!store.retry_delivery(x).await.unwrap(), "delivered");
    assert!(!store.retry_delivery(y).await.unwrap(), "pending");
    assert!(store.retry_delivery(z).await.unwrap());
    let dz = store.deliveries(&filter(None, 0)).await.unwrap().into_iter().find(|d| d.id == "z").unwrap();
    assert_eq!((dz.state, dz.attempts, dz.next_attempt_at), (DeliveryState::Pending, 1, clock.now()));
    assert!(!store.retry_delivery(z).await.unwrap(), "pending now");
    assert_eq!(ids(&store.claim_deliveries("s3", clock.now(), 10, Duration::from_secs(30)).await.unwrap()), ["z"]);

    // Purging removes finished rows enqueued before the time; pending ones stay.
    let fail = DeliveryOutcome::Failed { at: clock.now(), status: Some(400), error: "bad request".into() };
    assert!(store.finish_delivery(z, "s3", &fail).await.unwrap());
    assert_eq!(store.purge_deliveries(t0).await.unwrap(), 0, "nothing enqueued before t0");
    let newer = new_delivery("newer", &target, clock.now());
    store.enqueue_deliveries(&[newer]).await.unwrap();
    let newer_seq = store.claim_deliveries("s4", clock.now(), 10, Duration::from_secs(30)).await.unwrap()[0].seq;
    store.finish_delivery(newer_seq, "s4", &DeliveryOutcome::Delivered { at: clock.now(), status: 200 }).await.unwrap();
    assert_eq!(store.purge_deliveries(clock.now()).await.unwrap(), 2, "x (delivered) and z (failed)");
    assert_eq!(ids(&of_target(&*store, &target).await), ["newer", "y"]);
    assert_eq!(store.delivery_counts(&target).await.unwrap(), DeliveryCounts { pending: 1, delivered: 1, failed: 0 });
}

pub async fn ephemeral_records_expire_and_are_taken_once(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    let key = format!("cookie-{}", connection("eph"));
    let kind = EphemeralKind::WebSession;
    let in_a_minute = clock.now() + Duration::from_secs(60);
    assert!(store.ephemeral(kind, &key).await.unwrap().is_none());
    store.put_ephemeral(kind, &key, b"session one", in_a_minute).await.unwrap();
    assert_eq!(store.ephemeral(kind, &key).await.unwrap().as_deref(), Some(&b"session one"[..]));
    assert!(store.ephemeral(EphemeralKind::OAuthState, &key).await.unwrap().is_none(), "kinds are apart");
    assert!(store.ephemeral(kind, &format!("{key}x")).await.unwrap().is_none());
    store.put_ephemeral(kind, &key, b"session two", in_a_minute).await.unwrap();
    assert_eq!(store.ephemeral(kind, &key).await.unwrap().as_deref(), Some(&b"session two"[..]), "replaced");

    assert_eq!(store.take_ephemeral(kind, &key).await.unwrap().as_deref(), Some(&b"session two"[..]));
    assert!(store.take_ephemeral(kind, &key).await.unwrap().is_none(), "taken once");
    assert!(store.ephemeral(kind, &key).await.unwrap().is_none());

    // Expired: never returned, taken or deleted.
    let state = format!("state-{key}");
    store
        .put_ephemeral(EphemeralKind::OAuthState, &state, b"verifier", clock.now() + Duration::from_secs(10))
        .await
        .unwrap();
    let link = format!("link-{key}");
    store
        .put_ephemeral(EphemeralKind::ConnectSession, &link, b"link", clock.now() + Duration::from_secs(10))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    assert!(store.ephemeral(EphemeralKind::OAuthState, &state).await.unwrap().is_none());
    assert!(store.take_ephemeral(EphemeralKind::OAuthState, &state).await.unwrap().is_none());
    assert!(!store.delete_ephemeral(EphemeralKind::ConnectSession, &link).await.unwrap());

    store.put_ephemeral(kind, &key, b"three", clock.now() + Duration::from_secs(60)).await.unwrap();
    assert!(store.delete_ephemeral(kind, &key).await.unwrap());
    assert!(store.ephemeral(kind, &key).await.unwrap().is_none());
    assert!(!store.delete_ephemeral(kind, &key).await.unwrap());

    // Concurrent takers: one winner.
    store.put_ephemeral(kind, &key, b"once", clock.now() + Duration::from_secs(60)).await.unwrap();
    let takers = (0..8).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move { store.take_ephemeral(kind, &key).await })
    });
    let won = join_all(takers).await.into_iter().filter(|r| r.as_ref().unwrap().as_ref().unwrap().is_some()).count();
    assert_eq!(won, 1);

    // Too large a value is refused, naming the limit; the largest allowed is kept.
    let err = store.put_ephemeral(kind, &key, &vec![7; MAX_EPHEMERAL_VALUE_LEN + 1], in_a_minute).await.unwrap_err();
    assert!(err.to_string().contains(&MAX_EPHEMERAL_VALUE_LEN.to_string()), "{err}");
    assert!(store.ephemeral(kind, &key).await.unwrap().is_none());
    let largest = vec![7; MAX_EPHEMERAL_VALUE_LEN];
    store.put_ephemeral(kind, &key, &largest, clock.now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.ephemeral(kind, &key).await.unwrap(), Some(largest));
}
