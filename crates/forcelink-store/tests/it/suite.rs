//! The behaviour every store must have, written once: token sets, leases and approvals
//! (`TokenStore`), then connections, the audit log, API keys and checkpoints (`ConnectionStore`);
//! health, work leases, webhooks, the outbox and ephemeral records are in `suite_ops`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::secret::{AccessToken, IdToken, RefreshToken};
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, LeaseHolder, TokenStore};
use forcelink_auth::token::{LifetimeSource, TokenSet};
use forcelink_auth::{Clock, ManualClock};
use forcelink_store::{
    ApiKeyRecord, AuditEntry, CheckpointKey, ConnectionSpec, ConnectionStore, PutMode, PutOutcome, apikey,
};
use url::Url;

/// A fresh, unique connection name (backends that share a database between tests need it).
pub fn connection(tag: &str) -> ConnectionId {
    ConnectionId::new(format!("{tag}-{}", rand_suffix()))
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn token_set(access: &str, refresh: Option<&str>, clock: &ManualClock) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        instance_url: Url::parse("https://acme.my.salesforce.com").unwrap(),
        identity_url: Some(
            Url::parse("https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA").unwrap(),
        ),
        issued_at: clock.now(),
        expires_at: Some(clock.now() + Duration::from_secs(7200)),
        lifetime_source: LifetimeSource::Introspection,
        refresh_token: refresh.map(RefreshToken::new),
        scope: Some("api refresh_token".into()),
        token_type: "Bearer".into(),
        id_token: Some(IdToken::new("eyJ.id.token")),
        api_instance_url: Some("https://api.salesforce.com".into()),
        issuer: Some(Url::parse("https://login.salesforce.com").unwrap()),
    }
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()
}

pub async fn round_trip_and_compare_and_swap(store: Arc<dyn TokenStore>, clock: ManualClock) {
    let c = connection("cas");
    assert!(store.load(&c).await.unwrap().is_none());
    let first = token_set("00D!first-access", Some("5Aep-first-refresh"), &clock);
    let CasOutcome::Swapped { version: v1 } = store.compare_and_swap(&c, None, &first).await.unwrap() else {
        panic!("insert into an empty slot")
    };
    let loaded = store.load(&c).await.unwrap().unwrap();
    assert_eq!(loaded.version, v1);
    let s = &loaded.set;
    assert_eq!(s.access_token, first.access_token);
    assert_eq!(s.refresh_token, first.refresh_token);
    assert_eq!(s.instance_url, first.instance_url);
    assert_eq!(s.identity_url, first.identity_url);
    assert_eq!(millis(s.issued_at), millis(first.issued_at));
    assert_eq!(s.expires_at.map(millis), first.expires_at.map(millis));
    assert_eq!(s.lifetime_source, LifetimeSource::Introspection);
    assert_eq!(s.scope, first.scope);
    assert_eq!(s.id_token, first.id_token);
    assert_eq!(s.api_instance_url, first.api_instance_url);

    // A second insert loses; an update with a stale version loses; the current version wins.
    let second = token_set("00D!second-access", Some("5Aep-second-refresh"), &clock);
    let CasOutcome::Conflict { current } = store.compare_and_swap(&c, None, &second).await.unwrap() else {
        panic!("insert over an existing row must conflict")
    };
    assert_eq!(current.unwrap().set.access_token, first.access_token);
    let CasOutcome::Swapped { version: v2 } = store.compare_and_swap(&c, Some(v1), &second).await.unwrap() else {
        panic!("update at the current version")
    };
    assert!(v2 > v1);
    let third = token_set("00D!third-access", None, &clock);
    let CasOutcome::Conflict { current } = store.compare_and_swap(&c, Some(v1), &third).await.unwrap() else {
        panic!("update at a stale version must conflict")
    };
    assert_eq!(current.unwrap().set.access_token, second.access_token);
    assert_eq!(store.load(&c).await.unwrap().unwrap().set.access_token, second.access_token);

    store.remove(&c).await.unwrap();
    assert!(store.load(&c).await.unwrap().is_none());
}

pub async fn lease_is_exclusive_until_released_or_expired(store: Arc<dyn TokenStore>, clock: ManualClock) {
    let c = connection("lease");
    let (a, b) = (LeaseHolder("process-a".into()), LeaseHolder("process-b".into()));
    let ttl = Duration::from_secs(60);
    let la = store.acquire_lease(&c, &a, ttl, Duration::ZERO).await.unwrap().expect("free lease");
    assert!(store.acquire_lease(&c, &b, ttl, Duration::ZERO).await.unwrap().is_none(), "held by a");
    // Another connection's lease is independent.
    let other = connection("lease-other");
    assert!(store.acquire_lease(&other, &b, ttl, Duration::ZERO).await.unwrap().is_some());
    store.release_lease(&la).await.unwrap();
    let lb = store.acquire_lease(&c, &b, ttl, Duration::ZERO).await.unwrap().expect("released");
    assert!(lb.fence > la.fence, "fences increase");
    // a's stale release does not free b's lease.
    store.release_lease(&la).await.unwrap();
    assert!(store.acquire_lease(&c, &a, ttl, Duration::ZERO).await.unwrap().is_none());
    // A holder that died: its lease expires.
    clock.advance(ttl + Duration::from_secs(1));
    let la2 = store.acquire_lease(&c, &a, ttl, Duration::ZERO).await.unwrap().expect("expired lease is free");
    assert!(la2.fence > lb.fence);
}

pub async fn a_waiting_holder_gets_the_lease_when_it_is_released(store: Arc<dyn TokenStore>, _clock: ManualClock) {
    let c = connection("wait");
    let ttl = Duration::from_secs(60);
    let la = store.acquire_lease(&c, &LeaseHolder("a".into()), ttl, Duration::ZERO).await.unwrap().unwrap();
    let waiter = {
        let store = store.clone();
        let c = c.clone();
        tokio::spawn(
            async move { store.acquire_lease(&c, &LeaseHolder("b".into()), ttl, Duration::from_secs(30)).await },
        )
    };
    tokio::task::yield_now().await;
    store.release_lease(&la).await.unwrap();
    let lb = waiter.await.unwrap().unwrap().expect("the waiter gets the lease after the release");
    assert_eq!(lb.holder, LeaseHolder("b".into()));
}

pub async fn approvals_are_listed_oldest_first(store: Arc<dyn TokenStore>, clock: ManualClock) {
    let user = format!("sam-{}@example.com", connection("u"));
    let client = "3MVG9client";
    for i in 0..3 {
        let a = Approval {
            user: user.clone(),
            client_id: client.into(),
            connection: ConnectionId::new(format!("conn-{i}")),
            approved_at: clock.now(),
        };
        let all = store.record_approval(&a).await.unwrap();
        assert_eq!(all.len(), i + 1);
        clock.advance(Duration::from_secs(10));
    }
    let all = store.approvals(&user, client).await.unwrap();
    let names: Vec<_> = all.iter().map(|a| a.connection.as_str().to_owned()).collect();
    assert_eq!(names, ["conn-0", "conn-1", "conn-2"]);
    assert!(store.approvals(&user, "another-app").await.unwrap().is_empty());
    store.remove_approval(&user, client, &ConnectionId::new("conn-1")).await.unwrap();
    let names: Vec<_> =
        store.approvals(&user, client).await.unwrap().iter().map(|a| a.connection.as_str().to_owned()).collect();
    assert_eq!(names, ["conn-0", "conn-2"]);
}

/// Declares the suite's tests for one backend: `$make` is an async expression giving
/// `(Arc<dyn ConnectionStore>, ManualClock, what to keep alive until the test ends)`.
#[macro_export]
macro_rules! store_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn round_trip_and_compare_and_swap() {
                let (s, c, _keep) = $make.await;
                $crate::suite::round_trip_and_compare_and_swap(s, c).await
            }
            #[tokio::test]
            async fn lease_is_exclusive_until_released_or_expired() {
                let (s, c, _keep) = $make.await;
                $crate::suite::lease_is_exclusive_until_released_or_expired(s, c).await
            }
            #[tokio::test]
            async fn a_waiting_holder_gets_the_lease_when_it_is_released() {
                let (s, c, _keep) = $make.await;
                $crate::suite::a_waiting_holder_gets_the_lease_when_it_is_released(s, c).await
            }
            #[tokio::test]
            async fn approvals_are_listed_oldest_first() {
                let (s, c, _keep) = $make.await;
                $crate::suite::approvals_are_listed_oldest_first(s, c).await
            }
            #[tokio::test]
            async fn connections_are_created_replaced_and_listed_by_name() {
                let (s, c, _keep) = $make.await;
                $crate::suite::connections_are_created_replaced_and_listed_by_name(s, c).await
            }
            #[tokio::test]
            async fn removing_a_connection_removes_its_tokens_lease_and_approvals() {
                let (s, c, _keep) = $make.await;
                $crate::suite::removing_a_connection_removes_its_tokens_lease_and_approvals(s, c).await
            }
            #[tokio::test]
            async fn audit_is_newest_first_filtered_and_limited() {
                let (s, c, _keep) = $make.await;
                $crate::suite::audit_is_newest_first_filtered_and_limited(s, c).await
            }
            #[tokio::test]
            async fn api_keys_are_stored_listed_and_revoked() {
                let (s, c, _keep) = $make.await;
                $crate::suite::api_keys_are_stored_listed_and_revoked(s, c).await
            }
            #[tokio::test]
            async fn api_keys_verify_their_secret_and_refuse_revoked() {
                let (s, c, _keep) = $make.await;
                $crate::suite::api_keys_verify_their_secret_and_refuse_revoked(s, c).await
            }
            #[tokio::test]
            async fn checkpoints_are_saved_replaced_listed_and_deleted() {
                let (s, c, _keep) = $make.await;
                $crate::suite::checkpoints_are_saved_replaced_listed_and_deleted(s, c).await
            }
            #[tokio::test]
            async fn health_is_written_by_compare_and_swap_with_its_deliveries() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::health_is_written_by_compare_and_swap_with_its_deliveries(s, c).await
            }
            #[tokio::test]
            async fn work_leases_keep_other_holders_out_until_they_end() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::work_leases_keep_other_holders_out_until_they_end(s, c).await
            }
            #[tokio::test]
            async fn webhooks_are_stored_listed_and_deleted_with_their_pending_deliveries() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::webhooks_are_stored_listed_and_deleted_with_their_pending_deliveries(s, c).await
            }
            #[tokio::test]
            async fn the_outbox_enqueues_once_and_claims_oldest_first_one_holder_at_a_time() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::the_outbox_enqueues_once_and_claims_oldest_first_one_holder_at_a_time(s, c).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_claimers_never_share_a_delivery() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::concurrent_claimers_never_share_a_delivery(s, c).await
            }
            #[tokio::test]
            async fn outcomes_counts_filters_retries_and_purges() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::outcomes_counts_filters_retries_and_purges(s, c).await
            }
            #[tokio::test]
            async fn subscriptions_round_trip_with_their_secret_and_refuse_a_taken_id() {
                let (s, c, _keep) = $make.await;
                $crate::suite_subscriptions::subscriptions_round_trip_with_their_secret_and_refuse_a_taken_id(s, c)
                    .await
            }
            #[tokio::test]
            async fn pausing_and_resuming_a_subscription_changes_only_that() {
                let (s, c, _keep) = $make.await;
                $crate::suite_subscriptions::pausing_and_resuming_a_subscription_changes_only_that(s, c).await
            }
            #[tokio::test]
            async fn a_subscriptions_spec_and_status_are_written_apart() {
                let (s, c, _keep) = $make.await;
                $crate::suite_subscriptions::a_subscriptions_spec_and_status_are_written_apart(s, c).await
            }
            #[tokio::test]
            async fn deleting_a_subscription_removes_the_pending_deliveries_of_its_targets_only() {
                let (s, c, _keep) = $make.await;
                $crate::suite_subscriptions::deleting_a_subscription_removes_the_pending_deliveries_of_its_targets_only(
                    s, c,
                )
                .await
            }
            #[tokio::test]
            async fn the_webhook_sender_never_claims_ordered_targets() {
                let (s, c, _keep) = $make.await;
                $crate::suite_subscriptions::the_webhook_sender_never_claims_ordered_targets(s, c).await
            }
            #[tokio::test]
            async fn ordered_claims_go_by_seq_due_or_not_and_respect_another_holders_claim() {
                let (s, c, _keep) = $make.await;
                $crate::suite_subscriptions::ordered_claims_go_by_seq_due_or_not_and_respect_another_holders_claim(s, c)
                    .await
            }
            #[tokio::test]
            async fn ephemeral_records_expire_and_are_taken_once() {
                let (s, c, _keep) = $make.await;
                $crate::suite_ops::ephemeral_records_expire_and_are_taken_once(s, c).await
            }
        }
    };
}

/// A spec holding a secret value in each secret field that has one.
pub fn spec_with_secrets(client_secret: &str, password: &str, private_key: &str) -> ConnectionSpec {
    let mut s = ConnectionSpec::default();
    for (field, value) in [
        ("environment", "sandbox"),
        ("method", "password"),
        ("client_id", "3MVG9-suite-client"),
        ("client_secret", client_secret),
        ("username", "integration@acme.example"),
        ("password", password),
        ("private_key", private_key),
        ("api_version", "62.0"),
    ] {
        s.set_field(field, value).unwrap();
    }
    s
}

pub async fn connections_are_created_replaced_and_listed_by_name(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    let b = connection("crud-b");
    let a = ConnectionId::new(format!("crud-a{}", &b.as_str()["crud-b".len()..]));
    assert!(store.connection(&b).await.unwrap().is_none());
    let first = spec_with_secrets("cs-1", "pw-1", "-----BEGIN PRIVATE KEY-----\nk1\n-----END PRIVATE KEY-----\n");
    assert_eq!(store.put_connection(&b, &first, PutMode::Create).await.unwrap(), PutOutcome::Created);
    let created_at = clock.now();
    clock.advance(Duration::from_secs(5));

    // Create refuses a taken name and changes nothing.
    let second = spec_with_secrets("cs-2", "pw-2", "env:KEY");
    assert_eq!(store.put_connection(&b, &second, PutMode::Create).await.unwrap(), PutOutcome::AlreadyExists);
    let stored = store.connection(&b).await.unwrap().unwrap();
    assert_eq!(stored.name, b);
    assert_eq!(stored.spec, first);
    assert_eq!(millis(stored.created_at), millis(created_at));
    assert_eq!(millis(stored.updated_at), millis(created_at));

    // Upsert replaces the whole spec and keeps the creation time.
    assert_eq!(store.put_connection(&b, &second, PutMode::Upsert).await.unwrap(), PutOutcome::Replaced);
    let stored = store.connection(&b).await.unwrap().unwrap();
    assert_eq!(stored.spec, second);
    assert_eq!(millis(stored.created_at), millis(created_at));
    assert_eq!(millis(stored.updated_at), millis(clock.now()));

    // Upsert of a new name creates it; the list is sorted by name.
    assert_eq!(store.put_connection(&a, &first, PutMode::Upsert).await.unwrap(), PutOutcome::Created);
    let all = store.connections().await.unwrap();
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let ours: Vec<&str> = names.iter().copied().filter(|n| *n == a.as_str() || *n == b.as_str()).collect();
    assert_eq!(ours, [a.as_str(), b.as_str()]);
    assert_eq!(all.iter().find(|c| c.name == a).unwrap().spec, first);
}

pub async fn removing_a_connection_removes_its_tokens_lease_and_approvals(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
) {
    let c = connection("rm");
    let kept = connection("rm-kept");
    let user = format!("user-{c}@example.com");
    let spec = spec_with_secrets("cs", "pw", "env:K");
    for name in [&c, &kept] {
        store.put_connection(name, &spec, PutMode::Create).await.unwrap();
        store.compare_and_swap(name, None, &token_set("00D!access", Some("5Aep-refresh"), &clock)).await.unwrap();
        let approval = Approval {
            user: user.clone(),
            client_id: "3MVG9app".into(),
            connection: name.clone(),
            approved_at: clock.now(),
        };
        store.record_approval(&approval).await.unwrap();
    }
    let ttl = Duration::from_secs(60);
    store.acquire_lease(&c, &LeaseHolder("dying".into()), ttl, Duration::ZERO).await.unwrap().expect("free lease");

    assert!(store.remove_connection(&c).await.unwrap());
    assert!(store.connection(&c).await.unwrap().is_none());
    assert!(store.load(&c).await.unwrap().is_none(), "token set removed");
    let left: Vec<ConnectionId> =
        store.approvals(&user, "3MVG9app").await.unwrap().into_iter().map(|a| a.connection).collect();
    assert_eq!(left, std::slice::from_ref(&kept), "only the other connection's approval is left");
    assert!(
        store.acquire_lease(&c, &LeaseHolder("other".into()), ttl, Duration::ZERO).await.unwrap().is_some(),
        "lease removed"
    );
    // The other connection is untouched; removing again reports nothing to remove.
    assert!(store.connection(&kept).await.unwrap().is_some());
    assert!(store.load(&kept).await.unwrap().is_some());
    assert!(!store.remove_connection(&c).await.unwrap());
}

pub async fn audit_is_newest_first_filtered_and_limited(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    // Stores keep milliseconds: start on a whole one so entries compare equal after a round trip.
    clock.set(SystemTime::UNIX_EPOCH + Duration::from_millis(millis(clock.now()) as u64));
    let (a, b) = (connection("audit-a"), connection("audit-b"));
    let entry = |c: &ConnectionId, action: &str| AuditEntry {
        at: clock.now(),
        connection: c.clone(),
        actor: "cli:sam@host".into(),
        action: forcelink_store::AuditAction::parse(action),
        detail: Some(format!("{action} detail")),
    };
    store.append_audit(&entry(&a, "connection.created")).await.unwrap();
    clock.advance(Duration::from_secs(1));
    store.append_audit(&entry(&b, "connection.created")).await.unwrap();
    clock.advance(Duration::from_secs(1));
    store.append_audit(&entry(&a, "login")).await.unwrap();
    // Same instant: the later append is the newer entry.
    store.append_audit(&entry(&a, "token.issued")).await.unwrap();
    let mut no_detail = entry(&b, "logout");
    no_detail.detail = None;
    clock.advance(Duration::from_secs(1));
    store.append_audit(&no_detail).await.unwrap();

    let of_a: Vec<String> =
        store.audit(Some(&a), 10).await.unwrap().into_iter().map(|e| e.action.to_string()).collect();
    assert_eq!(of_a, ["token.issued", "login", "connection.created"]);
    let of_b = store.audit(Some(&b), 10).await.unwrap();
    assert_eq!(of_b.len(), 2);
    assert_eq!(of_b[0], no_detail);
    assert_eq!(store.audit(Some(&a), 2).await.unwrap().len(), 2);
    let newest = store.audit(None, 1).await.unwrap();
    assert_eq!(newest, [no_detail], "unfiltered, newest first");
    let all = store.audit(None, 1000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at));
    let first = all.iter().find(|e| e.connection == a && e.action == "connection.created").unwrap();
    assert_eq!(first.detail.as_deref(), Some("connection.created detail"));
    assert_eq!(first.actor, "cli:sam@host");
}

pub fn api_key_record(id: &str, clock: &ManualClock) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.to_owned(),
        secret_hash: "ab".repeat(32),
        label: "workflow engine".into(),
        connections: vec!["prod".into(), "sandbox".into()],
        capabilities: forcelink_store::Scopes::parse(&["token", "proxy"]).unwrap(),
        read_only: false,
        created_at: clock.now(),
        revoked_at: None,
    }
}

pub async fn api_keys_are_stored_listed_and_revoked(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    let suffix = connection("k");
    let (id1, id2) = (format!("one-{suffix}"), format!("two-{suffix}"));
    let one = api_key_record(&id1, &clock);
    store.put_api_key(&one).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let mut two = api_key_record(&id2, &clock);
    two.read_only = true;
    store.put_api_key(&two).await.unwrap();
    let got = store.api_key(&id1).await.unwrap().unwrap();
    assert_eq!(got.id, one.id);
    assert_eq!(got.secret_hash, one.secret_hash);
    assert_eq!(got.label, one.label);
    assert_eq!(got.connections, one.connections);
    assert_eq!(got.capabilities, one.capabilities);
    assert_eq!(millis(got.created_at), millis(one.created_at));
    assert!(got.revoked_at.is_none());
    assert!(!got.read_only);
    // A read-only key reads back read-only, with the same scopes.
    let got_two = store.api_key(&id2).await.unwrap().unwrap();
    assert!(got_two.read_only);
    assert_eq!(got_two.capabilities, two.capabilities);
    assert!(store.api_key(&format!("none-{suffix}")).await.unwrap().is_none());

    // A duplicate id is refused and the stored key is unchanged.
    let mut dup = api_key_record(&id1, &clock);
    dup.label = "impostor".into();
    let err = store.put_api_key(&dup).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(store.api_key(&id1).await.unwrap().unwrap().label, "workflow engine");

    let listed: Vec<String> =
        store.api_keys().await.unwrap().into_iter().map(|k| k.id).filter(|id| *id == id1 || *id == id2).collect();
    assert_eq!(listed, [id1.clone(), id2.clone()], "oldest first");

    clock.advance(Duration::from_secs(1));
    let revoked_at = clock.now();
    assert!(store.revoke_api_key(&id1, revoked_at).await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(store.revoke_api_key(&id1, clock.now()).await.unwrap(), "revoking again is fine");
    let got = store.api_key(&id1).await.unwrap().unwrap();
    assert_eq!(got.revoked_at.map(millis), Some(millis(revoked_at)), "the first revocation time is kept");
    assert!(store.api_key(&id2).await.unwrap().unwrap().revoked_at.is_none());
    // Revoking re-signs the row; a read-only key stays read-only.
    assert!(store.revoke_api_key(&id2, clock.now()).await.unwrap());
    let got_two = store.api_key(&id2).await.unwrap().unwrap();
    assert!(got_two.read_only && got_two.revoked_at.is_some());
    assert!(!store.revoke_api_key(&format!("none-{suffix}"), clock.now()).await.unwrap());
}

pub async fn api_keys_verify_their_secret_and_refuse_revoked(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    let caps = forcelink_store::Scopes::from(forcelink_store::Scope::Token);
    let (key, record) = apikey::generate("engine", vec!["prod".into()], caps.clone(), clock.now());
    store.put_api_key(&record).await.unwrap();
    let stored = store.api_key(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, record.secret_hash);
    assert!(!stored.secret_hash.contains(apikey::parse(key.secret()).unwrap().1));

    let ok = apikey::verify(&*store, key.secret(), clock.now()).await.unwrap().expect("the right key verifies");
    assert_eq!(ok.id, record.id);
    assert!(ok.allows("prod", forcelink_store::Scope::Token) && !ok.allows("other", forcelink_store::Scope::Token));

    // The same id with another secret, a key never stored, and text that is not a key at all.
    let (other, other_record) = apikey::generate("engine", vec![], caps.clone(), clock.now());
    let forged = format!("flk_{}_{}", record.id, apikey::parse(other.secret()).unwrap().1);
    assert!(apikey::verify(&*store, &forged, clock.now()).await.unwrap().is_none(), "wrong secret");
    assert!(apikey::verify(&*store, other.secret(), clock.now()).await.unwrap().is_none(), "unknown id");
    let mut truncated = key.secret().to_owned();
    truncated.pop();
    for malformed in ["", "Bearer x", "flk_", truncated.as_str(), &key.secret().replace('_', "-")] {
        assert!(apikey::verify(&*store, malformed, clock.now()).await.unwrap().is_none(), "{malformed:?}");
    }
    // The same id cannot be stored twice, even with another secret.
    let mut clash = other_record;
    clash.id = record.id.clone();
    assert!(store.put_api_key(&clash).await.is_err());
    assert!(apikey::verify(&*store, key.secret(), clock.now()).await.unwrap().is_some());

    assert!(store.revoke_api_key(&record.id, clock.now()).await.unwrap());
    assert!(apikey::verify(&*store, key.secret(), clock.now()).await.unwrap().is_none(), "revoked");
}

pub async fn checkpoints_are_saved_replaced_listed_and_deleted(store: Arc<dyn ConnectionStore>, clock: ManualClock) {
    // Stores keep milliseconds: start on a whole one so times compare equal after a round trip.
    clock.set(SystemTime::UNIX_EPOCH + Duration::from_millis(millis(clock.now()) as u64));
    let (a, b) = (connection("cp-a"), connection("cp-b"));
    let key = |name: &str, c: &ConnectionId, topic: &str| CheckpointKey::new(name, c, topic).unwrap();
    let orders = key("orders", &a, "/data/AccountChangeEvent");
    assert!(store.checkpoint(&orders).await.unwrap().is_none());
    assert!(!store.delete_checkpoint(&orders).await.unwrap(), "nothing to delete yet");

    let first = 7u64.to_be_bytes();
    store.save_checkpoint(&orders, &first).await.unwrap();
    let saved_at = clock.now();
    let got = store.checkpoint(&orders).await.unwrap().unwrap();
    assert_eq!((&got.key, got.replay_id.as_slice(), got.updated_at), (&orders, &first[..], saved_at));

    // Saving again replaces the replay id and the time.
    clock.advance(Duration::from_secs(3));
    let second = 9u64.to_be_bytes();
    store.save_checkpoint(&orders, &second).await.unwrap();
    let got = store.checkpoint(&orders).await.unwrap().unwrap();
    assert_eq!((got.replay_id.as_slice(), got.updated_at), (&second[..], clock.now()));

    // Each part of the key makes another checkpoint.
    let others = [
        key("orders", &a, "/event/Forcelink_Notice__e"),
        key("billing", &a, "/data/AccountChangeEvent"),
        key("orders", &b, "/data/AccountChangeEvent"),
    ];
    for (i, k) in others.iter().enumerate() {
        store.save_checkpoint(k, &[i as u8 + 1]).await.unwrap();
    }
    assert_eq!(store.checkpoint(&orders).await.unwrap().unwrap().replay_id, second);
    assert_eq!(store.checkpoint(&others[1]).await.unwrap().unwrap().replay_id, [2]);

    // Listed by connection, name, topic; filtered by connection.
    let of_a: Vec<(String, String)> = store
        .checkpoints(Some(&a))
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.key.name().to_owned(), c.key.topic().to_owned()))
        .collect();
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect::<Vec<_>>();
    assert_eq!(
        of_a,
        pairs(&[
            ("billing", "/data/AccountChangeEvent"),
            ("orders", "/data/AccountChangeEvent"),
            ("orders", "/event/Forcelink_Notice__e")
        ])
    );
    let all: Vec<CheckpointKey> = store
        .checkpoints(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .filter(|k| k.connection() == &a || k.connection() == &b)
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    assert_eq!(all.len(), 4);

    // A replay id that cannot be one is refused; the saved one stays.
    assert!(store.save_checkpoint(&orders, &[]).await.is_err());
    assert!(store.save_checkpoint(&orders, &[0; 65]).await.is_err());
    assert_eq!(store.checkpoint(&orders).await.unwrap().unwrap().replay_id, second);

    assert!(store.delete_checkpoint(&orders).await.unwrap());
    assert!(store.checkpoint(&orders).await.unwrap().is_none());
    assert!(!store.delete_checkpoint(&orders).await.unwrap());
    assert_eq!(store.checkpoints(Some(&a)).await.unwrap().len(), 2);

    // Removing a connection removes its checkpoints, not the others'.
    store.put_connection(&a, &spec_with_secrets("cs", "pw", "env:K"), PutMode::Create).await.unwrap();
    assert!(store.remove_connection(&a).await.unwrap());
    assert!(store.checkpoints(Some(&a)).await.unwrap().is_empty());
    assert_eq!(store.checkpoint(&others[2]).await.unwrap().unwrap().replay_id, [3]);
}
