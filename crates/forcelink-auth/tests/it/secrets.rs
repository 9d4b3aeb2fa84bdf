//! No secret in any `Debug` or error text.

use std::sync::Arc;

use forcelink_auth::flows::jwt_bearer::JwtBearer;
use forcelink_auth::flows::password::UsernamePassword;
use forcelink_auth::flows::web_server::WebServerFlow;
use forcelink_auth::secret::*;
use forcelink_auth::{AppCredentials, ConnectionId, MemoryStore, TokenCache, TokenSource};
use url::Url;

use crate::common::*;

#[test]
fn secret_types_print_redacted() {
    let values: Vec<(String, String)> = vec![
        (format!("{:?} {}", AccessToken::new("S3CRET-a"), AccessToken::new("S3CRET-a")), "S3CRET-a".into()),
        (format!("{:?} {}", RefreshToken::new("S3CRET-b"), RefreshToken::new("S3CRET-b")), "S3CRET-b".into()),
        (format!("{:?} {}", ClientSecret::new("S3CRET-c"), ClientSecret::new("S3CRET-c")), "S3CRET-c".into()),
        (format!("{:?}", Password::new("S3CRET-d")), "S3CRET-d".into()),
        (format!("{:?}", SecurityToken::new("S3CRET-e")), "S3CRET-e".into()),
        (format!("{:?}", PrivateKeyPem::new("S3CRET-f")), "S3CRET-f".into()),
        (format!("{:?}", PkceCodeVerifier::new("S3CRET-g")), "S3CRET-g".into()),
        (format!("{:?}", AuthorizationCode::new("S3CRET-h")), "S3CRET-h".into()),
        (format!("{:?}", DeviceCode::new("S3CRET-i")), "S3CRET-i".into()),
        (format!("{:?}", IdToken::new("S3CRET-j")), "S3CRET-j".into()),
    ];
    for (printed, secret) in values {
        assert!(!printed.contains(&secret), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
    }
}

#[tokio::test]
async fn flows_caches_and_errors_print_no_secret() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let key = PrivateKeyPem::new(pg.jwt_private_key_pem());
    let jwt = JwtBearer::new(
        transport(&clock),
        login_endpoints(&pg),
        DEFAULT_CLIENT,
        ADMIN,
        &key,
        vec![pg.login_url().into()],
    )
    .unwrap();
    let password = password_source(&pg, &clock, ADMIN, ADMIN_PASSWORD, Some(ADMIN_TOKEN));
    let set = password.fetch(None).await.unwrap();
    let web = WebServerFlow::new(
        transport(&clock),
        login_endpoints(&pg),
        default_app(),
        Url::parse("http://127.0.0.1:9/callback").unwrap(),
    )
    .unwrap();
    let request = web.authorization_request();
    let cache = TokenCache::new(
        ConnectionId::new("c"),
        Arc::new(jwt),
        Arc::new(MemoryStore::new(Arc::new(clock.clone()))),
        Arc::new(clock.clone()),
        Default::default(),
    );
    let token = cache.get_token().await.unwrap();
    // A failing grant: the error echoes nothing secret.
    let wrong = UsernamePassword::new(
        transport(&clock),
        login_endpoints(&pg),
        AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new(DEFAULT_SECRET))),
        ADMIN,
        Password::new("wrong-password-S3CRET"),
        None,
    )
    .unwrap();
    let err = wrong.fetch(None).await.unwrap_err();

    let printed = format!(
        "{set:?} {:?} {password:?} {web:?} {request:?} {cache:?} {token:?} {err:?} {err} {:?}",
        default_app(),
        transport(&clock)
    );
    for secret in [
        set.access_token.secret(),
        token.access_token.secret(),
        DEFAULT_SECRET,
        ADMIN_PASSWORD,
        ADMIN_TOKEN,
        "wrong-password-S3CRET",
        request.verifier().secret(),
        "BEGIN PRIVATE KEY",
    ] {
        assert!(!printed.contains(secret), "leaked {secret:?} in {printed}");
    }
}
