//! The standard flows against a real, independent OAuth server (oidc-provider), so forcelink
//! is not only proven against its own emulator.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::refresh::RefreshTokenSource;
use forcelink_auth::flows::web_server::{Prompt, WebServerFlow};
use forcelink_auth::identity::{AnyToken, IdentityClient};
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::token::LifetimeSource;
use forcelink_auth::{
    AppCredentials, CacheConfig, ClientAuth, ConnectionId, Endpoints, MemoryStore, TokenCache, TokenSource,
};
use forcelink_test_support::oidc::{OidcProviderHandle, OidcProviderOptions, spawn_oidc_provider};
use futures_util::future::join_all;
use url::Url;

use crate::common::*;

fn endpoints(op: &OidcProviderHandle) -> Endpoints {
    let u = |s: &str| Url::parse(s).unwrap();
    Endpoints {
        authorize: u(op.authorization_endpoint()),
        token: u(op.token_endpoint()),
        revoke: u(op.revocation_endpoint()),
        introspect: u(op.introspection_endpoint()),
        userinfo: u(op.userinfo_endpoint()),
    }
}

fn app(op: &OidcProviderHandle, auth: ClientAuth) -> AppCredentials {
    AppCredentials::new(op.client_id(), Some(ClientSecret::new(op.client_secret()))).with_client_auth(auth)
}

#[tokio::test]
async fn client_credentials_introspect_and_revoke() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let clock = TestClock::new();
    for auth in [ClientAuth::Body, ClientAuth::Basic] {
        let source =
            ClientCredentials::new(transport(&clock), endpoints(&op), app(&op, auth)).unwrap().with_scope("api");
        let set = source.fetch(None).await.unwrap();
        assert_eq!(set.lifetime_source, LifetimeSource::ExpiresIn, "this server sends expires_in");
        assert!(set.expires_at.unwrap() > clock.get());
        assert_eq!(
            set.instance_url.origin(),
            Url::parse(op.issuer()).unwrap().origin(),
            "no instance_url: the server's origin"
        );

        let identity = IdentityClient::new(transport(&clock), endpoints(&op), app(&op, auth)).unwrap();
        let info = identity.introspect(AnyToken::Access(&set.access_token)).await.unwrap();
        assert!(info.active);
        assert_eq!(info.client_id.as_deref(), Some(op.client_id()));
        assert!(info.exp.is_some());
        identity.revoke(AnyToken::Access(&set.access_token)).await.unwrap();
        assert!(!identity.introspect(AnyToken::Access(&set.access_token)).await.unwrap().active);
    }
    let wrong = AppCredentials::new(op.client_id(), Some(ClientSecret::new("wrong")));
    let err = ClientCredentials::new(transport(&clock), endpoints(&op), wrong).unwrap().fetch(None).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(forcelink_auth::OAuthErrorKind::InvalidClientCredentials), "{err:?}");
}

async fn code_flow(op: &OidcProviderHandle, clock: &TestClock) -> forcelink_auth::TokenSet {
    let flow = WebServerFlow::new(
        transport(clock),
        endpoints(op),
        app(op, ClientAuth::Basic),
        Url::parse("http://127.0.0.1:1717/callback").unwrap(),
    )
    .unwrap()
    .with_scope("openid offline_access api")
    .with_prompt(Prompt::Consent);
    let request = flow.authorization_request();
    let callback = op.complete_authorization(request.url.as_str(), "ada").await;
    let code = request.code_from_callback(&callback).unwrap();
    let set = flow.exchange(&request, &code).await.unwrap();
    assert!(set.refresh_token.is_some() && set.id_token.is_some());
    set
}

#[tokio::test]
async fn authorization_code_with_pkce_refresh_and_userinfo() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let clock = TestClock::new();
    let set = code_flow(&op, &clock).await;
    let identity = IdentityClient::new(transport(&clock), endpoints(&op), app(&op, ClientAuth::Body)).unwrap();
    let user = identity.userinfo(&set.token()).await.unwrap();
    assert_eq!(user.sub, "ada");
    let refresh = RefreshTokenSource::new(transport(&clock), endpoints(&op), app(&op, ClientAuth::Body)).unwrap();
    let renewed = refresh.fetch(Some(&set)).await.unwrap();
    assert_ne!(renewed.access_token, set.access_token);
    assert!(identity.introspect(AnyToken::Access(&renewed.access_token)).await.unwrap().active);
    identity.revoke(AnyToken::Refresh(renewed.refresh_token.as_ref().unwrap())).await.unwrap();
    let err = refresh.fetch(Some(&renewed)).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(forcelink_auth::OAuthErrorKind::ExpiredToken), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_never_reuses_a_rotated_refresh_token() {
    // With rotation, reusing a consumed refresh token revokes the whole grant: any double
    // refresh by the cache would make later rounds fail.
    let op = spawn_oidc_provider(OidcProviderOptions { rotate_refresh_tokens: true, ..Default::default() }).await;
    let clock = TestClock::new();
    let set = code_flow(&op, &clock).await;
    let store = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    let source =
        Arc::new(RefreshTokenSource::new(transport(&clock), endpoints(&op), app(&op, ClientAuth::Body)).unwrap());
    let a = TokenCache::new(
        ConnectionId::new("op"),
        source.clone(),
        store.clone(),
        Arc::new(clock.clone()),
        CacheConfig::default(),
    );
    let b = TokenCache::new(ConnectionId::new("op"), source, store, Arc::new(clock.clone()), CacheConfig::default());
    a.adopt(set).await.unwrap();
    let identity = IdentityClient::new(transport(&clock), endpoints(&op), app(&op, ClientAuth::Body)).unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(2 * 3600));
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let c = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { c.get_token().await })
            })
            .collect();
        let tokens: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert!(tokens.iter().all(|t| t.access_token == tokens[0].access_token));
        assert!(!seen.contains(&tokens[0].access_token));
        assert!(identity.introspect(AnyToken::Access(&tokens[0].access_token)).await.unwrap().active);
        seen.push(tokens[0].access_token.clone());
    }
    assert_eq!(a.stats().renewals + b.stats().renewals, 3);
}
