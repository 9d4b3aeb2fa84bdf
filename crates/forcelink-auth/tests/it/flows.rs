//! Every auth method against the playground: success and the documented failures.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::flows::asset::{ActorToken, AssetTokenExchange};
use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::device::DeviceFlow;
use forcelink_auth::flows::jwt_bearer::JwtBearer;
use forcelink_auth::flows::loopback::LoopbackRedirect;
use forcelink_auth::flows::refresh::RefreshTokenSource;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::flows::user_agent::UserAgentFlow;
use forcelink_auth::flows::web_server::WebServerFlow;
use forcelink_auth::identity::{AnyToken, IdentityClient};
use forcelink_auth::secret::{AccessToken, ClientSecret, PrivateKeyPem};
use forcelink_auth::token::LifetimeSource;
use forcelink_auth::{
    Action, AppCredentials, AuthError, ClientAuth, Endpoints, OAuthErrorKind, TokenProvider, TokenSource, UrlPolicy,
};
use reqwest::StatusCode;
use url::Url;

use crate::common::*;

fn kind(r: Result<impl std::fmt::Debug, AuthError>) -> OAuthErrorKind {
    let e = r.expect_err("expected an OAuth error");
    e.oauth_kind().unwrap_or_else(|| panic!("not an OAuth error: {e:?}"))
}

async fn client_credentials_source(
    pg: &forcelink_test_support::PlaygroundHandle,
    clock: &TestClock,
) -> ClientCredentials {
    ClientCredentials::new(transport(clock), instance_endpoints(pg), default_app()).unwrap()
}

#[tokio::test]
async fn client_credentials_with_body_and_basic_auth() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    for auth in [ClientAuth::Body, ClientAuth::Basic] {
        let source =
            ClientCredentials::new(transport(&clock), instance_endpoints(&pg), default_app().with_client_auth(auth))
                .unwrap();
        let set = source.fetch(None).await.unwrap();
        assert_eq!(set.instance_url.as_str().trim_end_matches('/'), pg.instance_url());
        assert!(set.access_token.secret().contains('!'), "Salesforce session ids look like <org>!<opaque>");
        assert_eq!(set.org_id().map(str::len), Some(18));
        assert!(set.refresh_token.is_none());
        assert_eq!(set.lifetime_source, LifetimeSource::Unknown, "Salesforce sends no expires_in");
        assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
    }
    assert_eq!(token_requests(&pg, "client_credentials").await, 2);
}

#[tokio::test]
async fn client_credentials_refuses_login_and_test_hosts_up_front() {
    let clock = TestClock::new();
    for host in ["https://login.salesforce.com", "https://test.salesforce.com"] {
        let endpoints = Endpoints::salesforce(&Url::parse(host).unwrap());
        let err = ClientCredentials::new(transport(&clock), endpoints, default_app()).unwrap_err();
        assert!(matches!(err, AuthError::Config(_)), "{err:?}");
        assert!(err.to_string().contains("My Domain"), "{err}");
    }
}

#[tokio::test]
async fn client_credentials_failures_are_classified_with_fixes() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    // The playground's login host plays login.salesforce.com.
    let source = ClientCredentials::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
    let err = source.fetch(None).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::WrongDomain), "{err:?}");
    assert!(err.to_string().contains("My Domain"), "{err}");

    let no_run_as = AppCredentials::new(NO_RUN_AS_CLIENT, Some(ClientSecret::new(NO_RUN_AS_SECRET)));
    let source = ClientCredentials::new(transport(&clock), instance_endpoints(&pg), no_run_as).unwrap();
    let err = source.fetch(None).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::NoClientCredentialsUser));
    assert!(err.to_string().contains("Run As"), "{err}");
    assert_eq!(err.action(), Action::FixConfiguration);

    let wrong_secret = AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new("not-the-secret")));
    let source = ClientCredentials::new(transport(&clock), instance_endpoints(&pg), wrong_secret).unwrap();
    assert_eq!(kind(source.fetch(None).await), OAuthErrorKind::InvalidClientCredentials);

    let unknown = AppCredentials::new("3MVG9unknown", Some(ClientSecret::new("x")));
    let source = ClientCredentials::new(transport(&clock), instance_endpoints(&pg), unknown).unwrap();
    assert_eq!(kind(source.fetch(None).await), OAuthErrorKind::InvalidClientId);
}

#[tokio::test]
async fn static_token_serves_until_salesforce_refuses_it() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let set = client_credentials_source(&pg, &clock).await.fetch(None).await.unwrap();
    let static_token =
        StaticToken::new(&UrlPolicy::new().allow_any_loopback(), pg.instance_url(), set.access_token.clone()).unwrap();
    let token = static_token.token().await.unwrap();
    assert_eq!(api_status(&token.instance_url, &token.access_token).await, StatusCode::OK);
    static_token.invalidate(&AccessToken::new("some other token"));
    assert!(static_token.token().await.is_ok(), "a different token's 401 changes nothing");
    static_token.invalidate(&set.access_token);
    let err = static_token.token().await.unwrap_err();
    assert!(matches!(err, AuthError::StaticTokenRejected), "{err:?}");
    assert_eq!(err.action(), Action::Reauthorize);

    let err =
        StaticToken::new(&UrlPolicy::new().allow_any_loopback(), "http://acme.my.salesforce.com", set.access_token)
            .unwrap_err();
    assert!(matches!(err, AuthError::InsecureUrl { .. }), "{err:?}");
}

fn jwt_source(
    pg: &forcelink_test_support::PlaygroundHandle,
    clock: &TestClock,
    user: &str,
    audiences: Vec<String>,
) -> JwtBearer {
    let key = PrivateKeyPem::new(pg.jwt_private_key_pem());
    JwtBearer::new(transport(clock), login_endpoints(pg), DEFAULT_CLIENT, user, &key, audiences).unwrap()
}

#[tokio::test]
async fn jwt_bearer_signs_a_valid_assertion() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let source = jwt_source(&pg, &clock, ADMIN, vec![pg.login_url().to_owned()]);
    let set = source.fetch(None).await.unwrap();
    assert!(set.refresh_token.is_none(), "JWT bearer never yields a refresh token");
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
    // exp is at most three minutes ahead.
    let assertion = source.assertion(pg.login_url()).unwrap();
    let payload = assertion.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let now = clock.get().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp > now && exp <= now + 180, "exp {exp}, now {now}");
    assert_eq!(claims["iss"], DEFAULT_CLIENT);
    assert_eq!(claims["sub"], ADMIN);
}

#[tokio::test]
async fn jwt_bearer_falls_back_through_audiences_and_remembers_the_one_that_worked() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let source = jwt_source(&pg, &clock, ADMIN, vec!["https://wrong.example.com".into(), pg.login_url().to_owned()]);
    source.fetch(None).await.unwrap();
    assert_eq!(source.current_audience(), pg.login_url());
    assert_eq!(token_requests(&pg, "urn:ietf:params:oauth:grant-type:jwt-bearer").await, 2);
    source.fetch(None).await.unwrap();
    assert_eq!(
        token_requests(&pg, "urn:ietf:params:oauth:grant-type:jwt-bearer").await,
        3,
        "the good audience goes first"
    );

    let only_wrong = jwt_source(&pg, &clock, ADMIN, vec!["https://wrong.example.com".into()]);
    let err = only_wrong.fetch(None).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::InvalidAudience));
    assert!(err.to_string().contains("audience"), "{err}");
}

#[tokio::test]
async fn jwt_bearer_failures() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    // A user who never approved the app and whose profile is not pre-authorized.
    let source = jwt_source(&pg, &clock, STANDARD_USER, vec![pg.login_url().to_owned()]);
    assert_eq!(kind(source.fetch(None).await), OAuthErrorKind::UserNotApproved);
    // A key that does not match the app's certificate.
    let other = forcelink_auth::keys::generate_jwt_key_pair("other", 30, clock.get()).unwrap();
    let source = JwtBearer::new(
        transport(&clock),
        login_endpoints(&pg),
        DEFAULT_CLIENT,
        ADMIN,
        &other.private_key_pem,
        vec![pg.login_url().to_owned()],
    )
    .unwrap();
    assert_eq!(kind(source.fetch(None).await), OAuthErrorKind::InvalidAssertion);
    // Not a key at all.
    let err = JwtBearer::new(
        transport(&clock),
        login_endpoints(&pg),
        DEFAULT_CLIENT,
        ADMIN,
        &PrivateKeyPem::new("-----BEGIN NOTHING-----"),
        vec![pg.login_url().to_owned()],
    )
    .unwrap_err();
    assert!(matches!(err, AuthError::Key(_)), "{err:?}");
}

#[tokio::test]
async fn generated_key_and_certificate_work_for_jwt_bearer() {
    let clock = TestClock::new();
    let pair = forcelink_auth::keys::generate_jwt_key_pair("forcelink test", 365, clock.get()).unwrap();
    assert!(pair.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // The certificate parses as X.509 and names the common name.
    use x509_cert::der::DecodePem;
    let cert = x509_cert::Certificate::from_pem(pair.certificate_pem.as_bytes()).unwrap();
    assert!(cert.tbs_certificate.subject.to_string().contains("forcelink test"));
    let c = clock.clone();
    let cert_pem = pair.certificate_pem.clone();
    let pg = forcelink_test_support::spawn_playground_with(move |config| {
        config.clock = Arc::new(c);
        config.seed.connected_apps[0].certificate = Some(cert_pem);
    })
    .await;
    let source = JwtBearer::new(
        transport(&clock),
        login_endpoints(&pg),
        DEFAULT_CLIENT,
        ADMIN,
        &pair.private_key_pem,
        vec![pg.login_url().to_owned()],
    )
    .unwrap();
    let set = source.fetch(None).await.unwrap();
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
}

#[tokio::test]
async fn web_server_flow_with_pkce_and_a_loopback_redirect() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let listener = LoopbackRedirect::bind("127.0.0.1:0".parse().unwrap(), "/callback").await.unwrap();
    let flow =
        WebServerFlow::new(transport(&clock), login_endpoints(&pg), default_app(), listener.redirect_uri().clone())
            .unwrap()
            .with_scope("api refresh_token");
    let request = flow.authorization_request();
    let q = params(&request.url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"], request.state);
    let waiter = {
        let request = request.clone();
        tokio::spawn(async move { listener.wait_for_code(&request).await })
    };
    let redirect = sign_in(&pg, &request.url, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
    // The browser follows the redirect to the loopback listener.
    let page = http().get(redirect).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("You can close this window"));
    let code = waiter.await.unwrap().unwrap();
    let set = flow.exchange(&request, &code).await.unwrap();
    assert!(set.refresh_token.is_some(), "refresh_token scope yields a refresh token");
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
    // A code works once.
    assert_eq!(kind(flow.exchange(&request, &code).await), OAuthErrorKind::ExpiredAuthorizationCode);

    // Refresh with it: a new access token, the same refresh token kept.
    let refresh = RefreshTokenSource::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
    let renewed = refresh.fetch(Some(&set)).await.unwrap();
    assert_ne!(renewed.access_token, set.access_token);
    assert_eq!(renewed.refresh_token, set.refresh_token);
    assert_eq!(api_status(&renewed.instance_url, &renewed.access_token).await, StatusCode::OK);
    // Revoked refresh token: re-authorize.
    let identity = IdentityClient::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
    identity.revoke(AnyToken::Refresh(set.refresh_token.as_ref().unwrap())).await.unwrap();
    let err = refresh.fetch(Some(&set)).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::ExpiredToken));
    assert_eq!(err.action(), Action::Reauthorize);
    assert!(matches!(refresh.fetch(None).await, Err(AuthError::NoRefreshToken)));
}

#[tokio::test]
async fn web_server_callback_state_and_denial() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let listener = LoopbackRedirect::bind("127.0.0.1:0".parse().unwrap(), "/callback").await.unwrap();
    let redirect_uri = listener.redirect_uri().clone();
    let flow =
        WebServerFlow::new(transport(&clock), login_endpoints(&pg), default_app(), redirect_uri.clone()).unwrap();
    let request = flow.authorization_request();
    let waiter = {
        let request = request.clone();
        tokio::spawn(async move { listener.wait_for_code(&request).await })
    };
    // Another path is ignored; a forged callback with the wrong state ends the wait.
    let other = redirect_uri.join("/favicon.ico").unwrap();
    assert_eq!(http().get(other).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let mut forged = redirect_uri.clone();
    forged.set_query(Some("code=attacker&state=wrong"));
    assert_eq!(http().get(forged).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!(matches!(waiter.await.unwrap(), Err(AuthError::StateMismatch)));

    // The user clicks Deny.
    let request = flow.authorization_request();
    let redirect = sign_in(&pg, &request.url, STANDARD_USER, STANDARD_PASSWORD, Decision::Deny).await;
    let err = request.code_from_callback(&redirect).unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::AccessDenied), "{err:?}");
}

#[tokio::test]
async fn device_flow_polls_until_approved() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let flow = DeviceFlow::new(transport(&clock), login_endpoints(&pg), default_app())
        .unwrap()
        .with_scope("api refresh_token");
    let auth = flow.start().await.unwrap();
    assert!(!auth.user_code.is_empty() && auth.verification_uri.contains("/setup/connect"), "{auth:?}");
    // Not approved yet: pending (after waiting one interval).
    clock.advance(auth.interval);
    assert!(flow.poll_once(&auth).await.unwrap().is_none());
    // Polling again at once: slow down.
    assert_eq!(kind(flow.poll_once(&auth).await), OAuthErrorKind::SlowDown);
    approve_device(&pg, &auth.user_code, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
    // The loop waits the (slowed) interval on the shared clock, then gets the tokens.
    let set = flow.poll(&auth).await.unwrap();
    assert!(set.refresh_token.is_some());
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
}

#[tokio::test]
async fn device_flow_denied_and_expired() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let flow = DeviceFlow::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
    let auth = flow.start().await.unwrap();
    approve_device(&pg, &auth.user_code, STANDARD_USER, STANDARD_PASSWORD, Decision::Deny).await;
    assert_eq!(kind(flow.poll(&auth).await), OAuthErrorKind::AccessDenied);

    let auth = flow.start().await.unwrap();
    clock.advance(Duration::from_secs(3600));
    assert!(matches!(flow.poll_once(&auth).await, Err(AuthError::DeviceCodeExpired)));
    assert!(matches!(flow.poll(&auth).await, Err(AuthError::DeviceCodeExpired)));
}

#[tokio::test]
async fn username_password_appends_the_security_token() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let source = password_source(&pg, &clock, ADMIN, ADMIN_PASSWORD, Some(ADMIN_TOKEN));
    let set = source.fetch(None).await.unwrap();
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
    let without_token = password_source(&pg, &clock, ADMIN, ADMIN_PASSWORD, None);
    let err = without_token.fetch(None).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::AuthenticationFailure));
    assert!(err.to_string().contains("security token"), "{err}");
}

#[tokio::test]
async fn user_agent_flow_reads_the_fragment() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let redirect_uri = Url::parse("http://127.0.0.1:9/callback").unwrap();
    let flow = UserAgentFlow::new(transport(&clock), login_endpoints(&pg), DEFAULT_CLIENT, redirect_uri).unwrap();
    let (url, state) = flow.authorization_url();
    assert_eq!(params(&url)["response_type"], "token");
    let redirect = sign_in(&pg, &url, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
    assert!(redirect.fragment().is_some_and(|f| f.contains("access_token=")), "token in the fragment");
    let set = flow.parse_redirect(&redirect, &state).unwrap();
    assert!(set.identity_url.is_some());
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
    assert!(matches!(flow.parse_redirect(&redirect, "other-state"), Err(AuthError::StateMismatch)));
}

#[tokio::test]
async fn asset_token_exchange_returns_a_short_lived_jwt() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let subject = client_credentials_source(&pg, &clock).await.fetch(None).await.unwrap();
    let subject = Arc::new(
        StaticToken::new(&UrlPolicy::new().allow_any_loopback(), pg.instance_url(), subject.access_token).unwrap(),
    );
    let mut claims = serde_json::Map::new();
    claims.insert("did".into(), "device-42".into());
    claims.insert("Name".into(), "Thermostat".into());
    let exchange = AssetTokenExchange::new(
        transport(&clock),
        instance_endpoints(&pg),
        default_app(),
        subject,
        Some(ActorToken::unsigned(claims)),
    )
    .unwrap();
    let set = exchange.fetch(None).await.unwrap();
    assert_eq!(set.access_token.secret().split('.').count(), 3, "an asset token is a JWT");
    assert_eq!(set.lifetime_source, LifetimeSource::ExpiresIn);
    let lifetime = set.expires_at.unwrap().duration_since(clock.get()).unwrap();
    assert!(lifetime > Duration::ZERO && lifetime <= Duration::from_secs(3600), "{lifetime:?}");
    use base64::Engine;
    let payload = set.access_token.secret().split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["act"]["did"], "device-42", "{claims}");
}

#[tokio::test]
async fn revoke_introspect_userinfo_and_identity() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let set = client_credentials_source(&pg, &clock).await.fetch(None).await.unwrap();
    let identity = IdentityClient::new(transport(&clock), instance_endpoints(&pg), default_app()).unwrap();
    let info = identity.introspect(AnyToken::Access(&set.access_token)).await.unwrap();
    assert!(info.active);
    assert_eq!(info.client_id.as_deref(), Some(DEFAULT_CLIENT));
    assert!(info.expires_at().unwrap() > clock.get());

    let token = set.token();
    let user = identity.userinfo(&token).await.unwrap();
    assert_eq!(user.preferred_username.as_deref(), Some(ADMIN));
    assert_eq!(user.user_id.as_deref(), set.user_id());
    let id = identity.identity(&token, set.identity_url.as_ref().unwrap()).await.unwrap();
    assert_eq!(id.username, ADMIN);
    assert_eq!(Some(id.organization_id.as_str()), set.org_id());

    identity.revoke(AnyToken::Access(&set.access_token)).await.unwrap();
    assert!(!identity.introspect(AnyToken::Access(&set.access_token)).await.unwrap().active);
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::UNAUTHORIZED);
    // Revoking an unknown token is an error the caller can read.
    let err = identity.revoke(AnyToken::Access(&AccessToken::new("00Dxx!nope"))).await.unwrap_err();
    assert!(err.oauth().is_some(), "{err:?}");
}

struct RecordCode(std::sync::Mutex<Option<String>>);

impl forcelink_auth::flows::device::DeviceCodeDisplay for RecordCode {
    fn show(&self, authorization: &forcelink_auth::flows::device::DeviceAuthorization) {
        *self.0.lock().unwrap() = Some(authorization.user_code.clone());
    }
}

#[tokio::test]
async fn device_flow_shows_the_code_through_the_delegate_then_polls() {
    let (clock, mut sleeps) = TestClock::gated();
    let pg = playground(&clock).await;
    let flow = DeviceFlow::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();
    let display = Arc::new(RecordCode(std::sync::Mutex::new(None)));
    let run = {
        let display = display.clone();
        tokio::spawn(async move { flow.authorize(display.as_ref()).await })
    };
    // First wait of one interval: the code is on screen; the user has not acted yet.
    let (_, resume) = sleeps.recv().await.unwrap();
    let user_code = display.0.lock().unwrap().clone().expect("the delegate saw the code");
    resume.send(()).unwrap();
    // Second wait: the first poll was pending. Now the user approves.
    let (_, resume) = sleeps.recv().await.unwrap();
    approve_device(&pg, &user_code, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
    resume.send(()).unwrap();
    let set = run.await.unwrap().unwrap();
    assert_eq!(api_status(&set.instance_url, &set.access_token).await, StatusCode::OK);
    assert_eq!(token_requests(&pg, "device").await, 2, "one pending poll, one successful poll");
}

#[tokio::test]
async fn inactive_and_frozen_users_are_told_apart_from_bad_passwords() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let source =
        password_source(&pg, &clock, "fran.frozen@playground.forcelink.dev", "Frozen1!", Some("PLAYGROUNDTOKEN0004"));
    let err = source.fetch(None).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::InactiveUser), "{err:?}");
    assert!(err.to_string().contains("unfreeze"), "{err}");
}
