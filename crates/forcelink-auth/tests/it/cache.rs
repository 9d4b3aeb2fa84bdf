//! The token cache: single flight (in a process and across processes sharing a store), exact
//! invalidation, proactive renewal, learned expiry, rotation safety, and the "already being
//! processed" answer. Time is the shared test clock; nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::cache::DEFAULT_SESSION_LIFETIME;
use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::refresh::RefreshTokenSource;
use forcelink_auth::flows::web_server::WebServerFlow;
use forcelink_auth::identity::IdentityClient;
use forcelink_auth::secret::AccessToken;
use forcelink_auth::token::{LifetimeSource, TokenSet};
use forcelink_auth::{
    AppCredentials, AuthError, CacheConfig, ConnectionId, MemoryStore, OAuthErrorKind, TokenCache, TokenSource,
    TokenStore,
};
use forcelink_test_support::PlaygroundHandle;
use futures_util::future::join_all;
use reqwest::StatusCode;
use url::Url;

use crate::common::*;

fn store(clock: &TestClock) -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(Arc::new(clock.clone())))
}

fn cc_cache(pg: &PlaygroundHandle, clock: &TestClock, store: Arc<MemoryStore>, config: CacheConfig) -> TokenCache {
    let source = ClientCredentials::new(transport(clock), instance_endpoints(pg), default_app()).unwrap();
    TokenCache::new(ConnectionId::new("acme"), Arc::new(source), store, Arc::new(clock.clone()), config)
}

const CC: &str = "client_credentials";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_on_an_expired_token_cause_one_token_request() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let cache = cc_cache(&pg, &clock, store(&clock), CacheConfig::default());
    let first = cache.get_token().await.unwrap();
    assert_eq!(token_requests(&pg, CC).await, 1);
    clock.advance(DEFAULT_SESSION_LIFETIME + Duration::from_secs(1));

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get_token().await })
        })
        .collect();
    let tokens: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(token_requests(&pg, CC).await, 2, "exactly one renewal for 1,000 callers");
    assert!(tokens.iter().all(|t| t.access_token == tokens[0].access_token));
    assert_ne!(tokens[0].access_token, first.access_token);
    let stats = cache.stats();
    assert_eq!(stats.renewals, 2);
    assert_eq!(stats.failures, 0);
    assert_eq!(api_status(&tokens[0].instance_url, &tokens[0].access_token).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_store_renew_once() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let shared = store(&clock);
    // Two caches on one store behave like two processes on one database.
    let a = cc_cache(&pg, &clock, shared.clone(), CacheConfig::default());
    let b = cc_cache(&pg, &clock, shared.clone(), CacheConfig::default());
    let first = a.get_token().await.unwrap();
    let from_b = b.get_token().await.unwrap();
    assert_eq!(first.access_token, from_b.access_token, "b adopts what a stored");
    assert_eq!(token_requests(&pg, CC).await, 1);

    clock.advance(DEFAULT_SESSION_LIFETIME + Duration::from_secs(1));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { cache.get_token().await })
        })
        .collect();
    let tokens: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(token_requests(&pg, CC).await, 2, "one renewal across both processes");
    assert!(tokens.iter().all(|t| t.access_token == tokens[0].access_token));
    assert_eq!(a.stats().renewals + b.stats().renewals, 2);
    assert!(a.stats().adopted + b.stats().adopted >= 2);
}

#[tokio::test]
async fn a_late_401_for_an_old_token_does_not_evict_a_fresh_one() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let cache = cc_cache(&pg, &clock, store(&clock), CacheConfig::default());
    let old = cache.get_token().await.unwrap();
    cache.invalidate(&old.access_token);
    let fresh = cache.get_token().await.unwrap();
    assert_ne!(fresh.access_token, old.access_token, "an invalidated token is not taken back from the store");
    assert_eq!(token_requests(&pg, CC).await, 2);
    // A slow request that used the old token reports its 401 now.
    cache.invalidate(&old.access_token);
    assert_eq!(cache.get_token().await.unwrap().access_token, fresh.access_token);
    assert_eq!(token_requests(&pg, CC).await, 2, "no renewal for a stale report");
    // An unrelated token changes nothing either.
    cache.invalidate(&AccessToken::new("00D!unrelated"));
    assert_eq!(cache.get_token().await.unwrap().access_token, fresh.access_token);
}

#[tokio::test]
async fn a_token_inside_the_buffer_is_renewed_in_the_background() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let config = CacheConfig { session_timeout: Some(Duration::from_secs(3600)), ..CacheConfig::default() };
    let cache = cc_cache(&pg, &clock, store(&clock), config);
    let first = cache.get_token().await.unwrap();
    let expires_at = first.expires_at.unwrap();
    assert_eq!(cache.stored().await.unwrap().unwrap().set.lifetime_source, LifetimeSource::Configured);
    // Well before the buffer: served from memory.
    clock.advance(Duration::from_secs(1800));
    assert_eq!(cache.get_token().await.unwrap().access_token, first.access_token);
    assert_eq!(cache.stats().renewals, 1);
    // Two minutes before expiry (inside the 5-minute buffer): the valid token is still handed
    // out at once while one renewal runs.
    clock.set_to(expires_at - Duration::from_secs(120));
    assert_eq!(cache.get_token().await.unwrap().access_token, first.access_token);
    let mut renewed = None;
    for _ in 0..10_000 {
        let t = cache.get_token().await.unwrap();
        if t.access_token != first.access_token {
            renewed = Some(t);
            break;
        }
        tokio::task::yield_now().await;
    }
    let renewed = renewed.expect("the background renewal finished");
    assert_eq!(token_requests(&pg, CC).await, 2);
    assert!(renewed.expires_at.unwrap() > expires_at);
}

#[tokio::test]
async fn expiry_comes_from_introspection_then_configuration_then_the_default() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    // Introspection: the playground's session timeout for this app is the org's 2 hours.
    let identity = IdentityClient::new(transport(&clock), instance_endpoints(&pg), default_app()).unwrap();
    let cache = cc_cache(&pg, &clock, store(&clock), CacheConfig::default()).with_introspection(identity);
    cache.get_token().await.unwrap();
    let set = cache.stored().await.unwrap().unwrap().set;
    assert_eq!(set.lifetime_source, LifetimeSource::Introspection);
    let lifetime = set.expires_at.unwrap().duration_since(clock.get()).unwrap();
    assert!(lifetime.abs_diff(Duration::from_secs(7200)) <= Duration::from_secs(1), "{lifetime:?}");

    let config = CacheConfig { session_timeout: Some(Duration::from_secs(900)), ..CacheConfig::default() };
    let cache = cc_cache(&pg, &clock, store(&clock), config);
    cache.get_token().await.unwrap();
    let set = cache.stored().await.unwrap().unwrap().set;
    assert_eq!(set.lifetime_source, LifetimeSource::Configured);
    // Counted from arrival on this machine's clock (which the test holds still).
    assert_eq!(set.expires_at.unwrap(), clock.get() + Duration::from_secs(900));

    let cache = cc_cache(&pg, &clock, store(&clock), CacheConfig::default());
    cache.get_token().await.unwrap();
    let set = cache.stored().await.unwrap().unwrap().set;
    assert_eq!(set.lifetime_source, LifetimeSource::Default);
    assert_eq!(set.expires_at.unwrap(), clock.get() + DEFAULT_SESSION_LIFETIME);
}

#[tokio::test]
async fn a_failed_renewal_is_a_typed_error_and_counted() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let no_run_as =
        AppCredentials::new(NO_RUN_AS_CLIENT, Some(forcelink_auth::secret::ClientSecret::new(NO_RUN_AS_SECRET)));
    let source = ClientCredentials::new(transport(&clock), instance_endpoints(&pg), no_run_as).unwrap();
    let cache = TokenCache::new(
        ConnectionId::new("broken"),
        Arc::new(source),
        store(&clock),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    let err = cache.get_token().await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::NoClientCredentialsUser));
    assert_eq!(cache.stats().failures, 1);
}

#[tokio::test]
async fn a_connection_only_a_person_can_fix_is_not_hammered() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let wrong_secret =
        AppCredentials::new(default_app().client_id, Some(forcelink_auth::secret::ClientSecret::new("not-the-secret")));
    let source = ClientCredentials::new(transport(&clock), instance_endpoints(&pg), wrong_secret).unwrap();
    let store = store(&clock);
    let cache = TokenCache::new(
        ConnectionId::new("failing"),
        Arc::new(source),
        store.clone(),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    for _ in 0..20 {
        let err = cache.get_token().await.unwrap_err();
        assert_eq!(err.action(), forcelink_auth::Action::FixConfiguration, "{err}");
        assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::InvalidClientCredentials), "the fix stays visible: {err}");
    }
    assert_eq!(token_requests(&pg, CC).await, 1, "20 callers, one attempt at Salesforce");
    let remembered = cache.get_token().await.unwrap_err().to_string();
    assert!(remembered.contains("next attempt is in"), "{remembered}");

    // After the backoff one more attempt is made; the wait then doubles.
    clock.advance(forcelink_auth::cache::FAILURE_BACKOFF + Duration::from_secs(1));
    for _ in 0..20 {
        cache.get_token().await.unwrap_err();
    }
    assert_eq!(token_requests(&pg, CC).await, 2);
    clock.advance(forcelink_auth::cache::FAILURE_BACKOFF + Duration::from_secs(1));
    cache.get_token().await.unwrap_err();
    assert_eq!(token_requests(&pg, CC).await, 2, "the second wait is twice as long");

    // A token stored by someone else (a re-authorization through another process) ends the wait.
    let good = cc_cache(&pg, &clock, store.clone(), CacheConfig::default());
    let other = TokenCache::new(
        ConnectionId::new("failing"),
        Arc::new(ClientCredentials::new(transport(&clock), instance_endpoints(&pg), default_app()).unwrap()),
        store,
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    drop(good);
    let fresh = other.get_token().await.unwrap();
    clock.advance(forcelink_auth::cache::FAILURE_STORE_RECHECK);
    assert_eq!(cache.get_token().await.unwrap().access_token, fresh.access_token);
    // And an explicit reset (the connection was edited) lets the next call try at once.
    cache.reset_backoff();
}

#[tokio::test]
async fn a_static_token_is_served_from_memory_until_refused() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let set = ClientCredentials::new(transport(&clock), instance_endpoints(&pg), default_app())
        .unwrap()
        .fetch(None)
        .await
        .unwrap();
    let source = forcelink_auth::flows::static_token::StaticToken::new(
        &forcelink_auth::UrlPolicy::new().allow_any_loopback(),
        pg.instance_url(),
        set.access_token.clone(),
    )
    .unwrap();
    let cache = TokenCache::new(
        ConnectionId::new("static"),
        Arc::new(source),
        store(&clock),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    for _ in 0..3 {
        assert_eq!(cache.get_token().await.unwrap().access_token, set.access_token);
        clock.advance(Duration::from_secs(24 * 3600));
    }
    assert_eq!(cache.stats().renewals, 1, "a static token is loaded once, never renewed on a timer");
    cache.invalidate(&set.access_token);
    assert!(matches!(cache.get_token().await, Err(AuthError::StaticTokenRejected)));
}

#[tokio::test(start_paused = true)]
async fn a_token_request_that_hangs_times_out() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let clock = TestClock::new();
    let endpoints = forcelink_auth::Endpoints::salesforce(&Url::parse(&format!("http://{addr}")).unwrap());
    let source = ClientCredentials::new(transport(&clock), endpoints, default_app()).unwrap();
    let config = CacheConfig { load_timeout: Duration::from_secs(5), ..CacheConfig::default() };
    let cache =
        TokenCache::new(ConnectionId::new("hang"), Arc::new(source), store(&clock), Arc::new(clock.clone()), config);
    let err = cache.get_token().await.unwrap_err();
    assert!(matches!(err, AuthError::LoadTimeout(d) if d == Duration::from_secs(5)), "{err:?}");
}

/// Signs in through the rotating app (PKCE, rotation on) and returns the token set.
async fn rotating_sign_in(pg: &PlaygroundHandle, clock: &TestClock) -> TokenSet {
    let redirect = Url::parse("http://127.0.0.1:9/callback").unwrap();
    let flow = WebServerFlow::new(transport(clock), login_endpoints(pg), rotating_app(), redirect)
        .unwrap()
        .with_scope("api refresh_token");
    let request = flow.authorization_request();
    let callback = sign_in(pg, &request.url, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
    let code = request.code_from_callback(&callback).unwrap();
    flow.exchange(&request, &code).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rotation_a_refresh_token_is_never_used_twice() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let initial = rotating_sign_in(&pg, &clock).await;
    let original_refresh = initial.refresh_token.clone().unwrap();
    let shared = store(&clock);
    let source = Arc::new(RefreshTokenSource::new(transport(&clock), login_endpoints(&pg), rotating_app()).unwrap());
    let a = TokenCache::new(
        ConnectionId::new("rot"),
        source.clone(),
        shared.clone(),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    let b = TokenCache::new(
        ConnectionId::new("rot"),
        source,
        shared.clone(),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    a.adopt(initial).await.unwrap();

    let mut refresh_tokens = vec![original_refresh.clone()];
    for round in 1..=3u64 {
        clock.advance(Duration::from_secs(901)); // the rotating app's sessions last 15 minutes
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { cache.get_token().await })
            })
            .collect();
        for r in join_all(tasks).await {
            let t = r.unwrap().unwrap();
            assert_eq!(api_status(&t.instance_url, &t.access_token).await, StatusCode::OK);
        }
        assert_eq!(token_requests(&pg, "refresh_token").await, round, "one refresh per round");
        let stored = shared.load(&ConnectionId::new("rot")).await.unwrap().unwrap().set;
        let rt = stored.refresh_token.unwrap();
        assert!(!refresh_tokens.contains(&rt), "each refresh stored a new refresh token");
        refresh_tokens.push(rt);
    }
    let stats = pg.control.stats().await;
    assert!(stats["token_errors"]["by_error"]["invalid_grant"].is_null(), "no refresh token was reused: {stats}");
}

#[tokio::test]
async fn a_busy_answer_waits_rereads_the_store_and_retries() {
    let (clock, mut sleeps) = TestClock::gated();
    let pg = playground(&clock).await;
    // A non-rotating sign-in whose refresh token another client is refreshing right now.
    let redirect = Url::parse("http://127.0.0.1:9/callback").unwrap();
    let flow = WebServerFlow::new(transport(&clock), login_endpoints(&pg), default_app(), redirect)
        .unwrap()
        .with_scope("api refresh_token");
    let request = flow.authorization_request();
    let callback = sign_in(&pg, &request.url, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
    let initial = flow.exchange(&request, &request.code_from_callback(&callback).unwrap()).await.unwrap();
    let refresh_token = initial.refresh_token.clone().unwrap();

    pg.control.settings(serde_json::json!({"reject_concurrent_refresh": true, "hold_refreshes": true})).await;
    let other = {
        let source = RefreshTokenSource::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
        let set = initial.clone();
        tokio::spawn(async move { source.fetch(Some(&set)).await })
    };
    // Wait until the playground holds the other client's refresh.
    while token_requests(&pg, "refresh_token").await < 1 {
        tokio::task::yield_now().await;
    }

    let source = RefreshTokenSource::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
    let cache = TokenCache::new(
        ConnectionId::new("busy"),
        Arc::new(source),
        store(&clock),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    cache.adopt(initial).await.unwrap();
    clock.advance(DEFAULT_SESSION_LIFETIME + Duration::from_secs(1));
    let getter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_token().await })
    };
    // The cache's refresh was refused as "already being processed": it backs off (a sleep on
    // the clock) instead of sending another refresh.
    let (backoff, resume) = sleeps.recv().await.unwrap();
    assert!(backoff >= forcelink_auth::cache::DEFAULT_BUSY_BACKOFF, "{backoff:?}");
    assert_eq!(token_requests(&pg, "refresh_token").await, 2);
    assert_eq!(pg.control.stats().await["token_errors"]["by_error"]["invalid_grant"], 1);
    // The other client's refresh completes; then the cache retries.
    pg.control.settings(serde_json::json!({"hold_refreshes": false})).await;
    other.await.unwrap().unwrap();
    resume.send(()).unwrap();
    let token = getter.await.unwrap().unwrap();
    assert_eq!(api_status(&token.instance_url, &token.access_token).await, StatusCode::OK);
    assert_eq!(token_requests(&pg, "refresh_token").await, 3);
    let stored = cache.stored().await.unwrap().unwrap().set;
    assert_eq!(stored.refresh_token.as_ref(), Some(&refresh_token), "no rotation: the refresh token is kept");
}

#[tokio::test]
async fn a_server_clock_behind_ours_does_not_make_new_tokens_look_expired() {
    // The playground runs on the real clock; this machine's clock is 20 minutes ahead.
    let pg = forcelink_test_support::spawn_playground().await;
    let clock = TestClock::new();
    clock.advance(Duration::from_secs(20 * 60));
    let cache = cc_cache(&pg, &clock, store(&clock), CacheConfig::default());
    let first = cache.get_token().await.unwrap();
    assert!(first.expires_at.unwrap() > clock.get() + Duration::from_secs(14 * 60), "lifetime counted from arrival");
    assert_eq!(cache.get_token().await.unwrap().access_token, first.access_token);
    assert_eq!(pg.control.token_requests(CC).await, 1, "served from memory, not renewed again");
}
