//! The behaviour every `TokenStore` must have, written once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::secret::{AccessToken, IdToken, RefreshToken};
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, LeaseHolder, TokenStore};
use forcelink_auth::token::{LifetimeSource, TokenSet};
use forcelink_auth::{Clock, ManualClock};
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
/// `(Arc<dyn TokenStore>, ManualClock)`.
#[macro_export]
macro_rules! store_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn round_trip_and_compare_and_swap() {
                let (s, c) = $make.await;
                $crate::suite::round_trip_and_compare_and_swap(s, c).await
            }
            #[tokio::test]
            async fn lease_is_exclusive_until_released_or_expired() {
                let (s, c) = $make.await;
                $crate::suite::lease_is_exclusive_until_released_or_expired(s, c).await
            }
            #[tokio::test]
            async fn a_waiting_holder_gets_the_lease_when_it_is_released() {
                let (s, c) = $make.await;
                $crate::suite::a_waiting_holder_gets_the_lease_when_it_is_released(s, c).await
            }
            #[tokio::test]
            async fn approvals_are_listed_oldest_first() {
                let (s, c) = $make.await;
                $crate::suite::approvals_are_listed_oldest_first(s, c).await
            }
        }
    };
}
