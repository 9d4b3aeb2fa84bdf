//! Token-endpoint grants that need no browser: client credentials, JWT bearer, password,
//! token exchange; request encodings real clients use; session expiry.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

fn assert_salesforce_token_shape(body: &serde_json::Value, secret: &str) {
    let token = body["access_token"].as_str().unwrap();
    let (org, opaque) = token.split_once('!').expect("access token is <org id>!<opaque>");
    assert!(org.starts_with("00D") && org.len() == 15, "{token}");
    assert!(!opaque.is_empty());
    assert!(body.get("expires_in").is_none(), "Salesforce sends no expires_in: {body}");
    assert_eq!(body["token_type"], "Bearer");
    let issued_at = body["issued_at"].as_str().expect("issued_at is a string");
    assert!(issued_at.len() == 13 && issued_at.bytes().all(|b| b.is_ascii_digit()), "{issued_at}");
    let id = body["id"].as_str().unwrap();
    let parts: Vec<&str> = id.rsplitn(3, '/').collect();
    assert_eq!(parts[1].len(), 18, "org id in {id}");
    assert_eq!(&parts[1][..15], org, "token org prefix matches the id URL");
    assert!(parts[0].starts_with("005") && parts[0].len() == 18, "{id}");
    // signature = base64(HMAC-SHA256(client_secret, id + issued_at))
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    assert_eq!(body["signature"], STANDARD.encode(mac.finalize().into_bytes()));
}

#[tokio::test]
async fn client_credentials_on_my_domain_returns_a_salesforce_shaped_token() {
    let pg = spawn_playground().await;
    let body = client_credentials(&pg).await;
    assert_salesforce_token_shape(&body, &pg.info.client.client_secret);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    assert_eq!(body["instance_url"], pg.info.instance_url);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(api_status(pg.instance_url(), token).await, StatusCode::OK);
    // A client that ignores instance_url and calls the login host fails, as on Salesforce.
    assert_eq!(api_status(pg.login_url(), token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn client_credentials_accepts_http_basic_client_authentication() {
    let pg = spawn_playground().await;
    let resp = http()
        .post(pg.instance_token_url())
        .basic_auth(&pg.info.client.client_id, Some(&pg.info.client.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_salesforce_token_shape(&body, &pg.info.client.client_secret);
}

#[tokio::test]
async fn client_credentials_on_the_login_host_is_refused() {
    let pg = spawn_playground().await;
    let (status, body) = client_credentials_grant(&pg, &pg.login_token_url()).await;
    assert_oauth_error(status, &body, "invalid_grant", "request not supported on this domain");
}

#[tokio::test]
async fn client_credentials_without_run_as_user_is_refused() {
    let pg = spawn_playground().await;
    let (status, body) = post_form(
        &pg.instance_token_url(),
        &[("grant_type", "client_credentials"), ("client_id", NO_RUN_AS_CLIENT), ("client_secret", NO_RUN_AS_SECRET)],
    )
    .await;
    assert_oauth_error(status, &body, "invalid_grant", "no client credentials user enabled");
}

#[tokio::test]
async fn wrong_client_secret_and_unknown_client_are_distinct_errors() {
    let pg = spawn_playground().await;
    let (status, body) = post_form(
        &pg.instance_token_url(),
        &[("grant_type", "client_credentials"), ("client_id", &pg.info.client.client_id), ("client_secret", "nope")],
    )
    .await;
    assert_oauth_error(status, &body, "invalid_client", "invalid client credentials");
    let (status, body) = post_form(
        &pg.instance_token_url(),
        &[("grant_type", "client_credentials"), ("client_id", "3MVG9unknown"), ("client_secret", "x")],
    )
    .await;
    assert_oauth_error(status, &body, "invalid_client_id", "client identifier invalid");
}

#[tokio::test]
async fn client_credentials_for_a_frozen_run_as_user_is_refused() {
    let pg = spawn_playground().await;
    pg.control.set_user(ADMIN, json!({"frozen": true})).await;
    let (status, body) = client_credentials_grant(&pg, &pg.instance_token_url()).await;
    assert_oauth_error(status, &body, "inactive_user", "user is frozen");
}

#[tokio::test]
async fn json_bodies_and_unknown_grants_are_unsupported_grant_type() {
    let pg = spawn_playground().await;
    let resp = http()
        .post(pg.login_token_url())
        .json(&json!({"grant_type": "client_credentials", "client_id": pg.info.client.client_id}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_oauth_error(status, &body, "unsupported_grant_type", "grant type not supported");
    let (status, body) = post_form(&pg.login_token_url(), &[("grant_type", "magic")]).await;
    assert_oauth_error(status, &body, "unsupported_grant_type", "grant type not supported");
    let (status, body) = post_form(&pg.login_token_url(), &[]).await;
    assert_oauth_error(status, &body, "unsupported_grant_type", "grant type not supported");
}

#[tokio::test]
async fn chunked_token_requests_without_content_length_are_accepted() {
    let pg = spawn_playground().await;
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        pg.info.client.client_id, pg.info.client.client_secret
    );
    let chunks: Vec<Result<String, std::io::Error>> =
        form.as_bytes().chunks(7).map(|c| Ok(String::from_utf8(c.to_vec()).unwrap())).collect();
    let resp = http()
        .post(pg.instance_token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn token_endpoint_answers_with_a_trailing_slash_too() {
    let pg = spawn_playground().await;
    let (status, body) = post_form(
        &format!("{}/", pg.instance_token_url()),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &pg.info.client.client_id),
            ("client_secret", &pg.info.client.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn jwt_grant(url: &str, assertion: &str) -> (StatusCode, serde_json::Value) {
    post_form(url, &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)]).await
}

fn claims(pg: &forcelink_test_support::PlaygroundHandle, sub: &str, aud: &str) -> serde_json::Value {
    // What simple-salesforce sends: exp as a string of digits, no iat or jti.
    json!({"iss": pg.info.client.client_id, "sub": sub, "aud": aud, "exp": (unix_now() + 180).to_string()})
}

#[tokio::test]
async fn jwt_bearer_accepts_every_salesforce_audience_on_both_hosts() {
    let pg = spawn_playground().await;
    let key = pg.jwt_private_key_pem();
    let audiences = [
        "https://login.salesforce.com".to_owned(),
        "https://test.salesforce.com".to_owned(),
        pg.info.login_url.clone(),
        pg.info.instance_url.clone(),
    ];
    for aud in &audiences {
        for url in [pg.login_token_url(), pg.instance_token_url()] {
            let assertion = sign_jwt(&key, &claims(&pg, ADMIN, aud));
            let (status, body) = jwt_grant(&url, &assertion).await;
            assert_eq!(status, StatusCode::OK, "aud {aud} at {url}: {body}");
            assert!(body.get("refresh_token").is_none(), "JWT bearer never issues a refresh token");
            assert_salesforce_token_shape(&body, &pg.info.client.client_secret);
        }
    }
    // Numeric exp is accepted too, and so is the sf CLI's millisecond exp (far future).
    let mut c = claims(&pg, ADMIN, "https://login.salesforce.com");
    c["exp"] = json!((unix_now() + 300) * 1000);
    let (status, body) = jwt_grant(&pg.login_token_url(), &sign_jwt(&key, &c)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn jwt_bearer_failures_have_salesforce_errors() {
    let pg = spawn_playground().await;
    let key = pg.jwt_private_key_pem();
    let url = pg.login_token_url();

    let (s, b) = jwt_grant(&url, &sign_jwt(&key, &claims(&pg, ADMIN, "https://example.com"))).await;
    assert_oauth_error(s, &b, "invalid_grant", "Audience validation failed");

    let mut expired = claims(&pg, ADMIN, "https://login.salesforce.com");
    expired["exp"] = json!(unix_now() - 10);
    let (s, b) = jwt_grant(&url, &sign_jwt(&key, &expired)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"], "invalid_grant", "{b}");

    // Signature over different claims: tamper with the payload after signing.
    let good = sign_jwt(&key, &claims(&pg, ADMIN, "https://login.salesforce.com"));
    let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(claims(&pg, STANDARD_USER, "https://login.salesforce.com").to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let (s, b) = jwt_grant(&url, &forged).await;
    assert_oauth_error(s, &b, "invalid_grant", "invalid assertion");

    let (s, b) = jwt_grant(&url, "not-a-jwt").await;
    assert_oauth_error(s, &b, "invalid_grant", "invalid assertion");

    let mut unknown_app = claims(&pg, ADMIN, "https://login.salesforce.com");
    unknown_app["iss"] = json!("3MVG9unknown");
    let (s, b) = jwt_grant(&url, &sign_jwt(&key, &unknown_app)).await;
    assert_oauth_error(s, &b, "invalid_client_id", "client identifier invalid");

    // Not pre-approved and never approved; and an unknown username looks the same.
    for sub in [STANDARD_USER, "nobody@playground.forcelink.dev"] {
        let (s, b) = jwt_grant(&url, &sign_jwt(&key, &claims(&pg, sub, "https://login.salesforce.com"))).await;
        assert_oauth_error(s, &b, "invalid_grant", "user hasn't approved this consumer");
    }

    let (s, b) = jwt_grant(&url, &sign_jwt(&key, &claims(&pg, FROZEN_USER, "https://login.salesforce.com"))).await;
    assert_oauth_error(s, &b, "inactive_user", "user is frozen");
}

#[tokio::test]
async fn jwt_bearer_on_an_admin_approved_app_refuses_users_outside_its_profiles() {
    let pg = spawn_playground().await;
    let key = pg.jwt_private_key_pem();
    let mut c = claims(&pg, STANDARD_USER, "https://login.salesforce.com");
    c["iss"] = json!(ADMIN_APPROVED_CLIENT);
    let (s, b) = jwt_grant(&pg.login_token_url(), &sign_jwt(&key, &c)).await;
    assert_oauth_error(s, &b, "invalid_app_access", "user is not admin approved to access this app");
    c["sub"] = json!(ADMIN);
    let (s, b) = jwt_grant(&pg.login_token_url(), &sign_jwt(&key, &c)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn jwt_bearer_works_after_the_user_approved_the_app_once() {
    let pg = spawn_playground().await;
    let key = pg.jwt_private_key_pem();
    let c = claims(&pg, STANDARD_USER, "https://login.salesforce.com");
    let (s, _) = jwt_grant(&pg.login_token_url(), &sign_jwt(&key, &c)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    web_server_token(&pg, DEFAULT_CLIENT, Some(&pg.info.client.client_secret), STANDARD_USER, STANDARD_PASSWORD, "api")
        .await;
    let (s, b) = jwt_grant(&pg.login_token_url(), &sign_jwt(&key, &c)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn password_grant_needs_password_plus_security_token() {
    let pg = spawn_playground().await;
    let body = password_token(&pg).await;
    assert_salesforce_token_shape(&body, &pg.info.client.client_secret);
    assert!(body.get("refresh_token").is_none());
    for password in [pg.info.user.password.clone(), format!("{}WRONGTOKEN", pg.info.user.password)] {
        let (s, b) = password_grant(&pg, &pg.info.user.username, &password).await;
        assert_oauth_error(s, &b, "invalid_grant", "authentication failure");
    }
}

#[tokio::test]
async fn password_grant_refuses_inactive_and_frozen_users() {
    let pg = spawn_playground().await;
    for (user, password, description) in [
        (INACTIVE_USER, "Inactive1!PLAYGROUNDTOKEN0005", "user is inactive"),
        (FROZEN_USER, "Frozen1!PLAYGROUNDTOKEN0004", "user is frozen"),
    ] {
        let (s, b) = password_grant(&pg, user, password).await;
        assert_oauth_error(s, &b, "inactive_user", description);
    }
}

#[tokio::test]
async fn tokens_stop_working_when_the_user_is_frozen_or_deactivated() {
    let pg = spawn_playground().await;
    let token = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::OK);
    pg.control.set_user(ADMIN, json!({"frozen": true})).await;
    assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::UNAUTHORIZED);
    pg.control.set_user(ADMIN, json!({"frozen": false, "active": false})).await;
    assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::UNAUTHORIZED);
    pg.control.set_user(ADMIN, json!({"active": true})).await;
    assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::OK);
}

#[tokio::test]
async fn access_tokens_expire_after_the_session_timeout() {
    let pg = spawn_playground().await;
    let token = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    pg.control.advance_clock(7199).await;
    assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::OK);
    pg.control.advance_clock(2).await;
    let resp = http().get(format!("{}/services/data/", pg.instance_url())).bearer_auth(&token).send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]));
}

#[tokio::test]
async fn token_exchange_returns_a_signed_asset_token_with_expires_in() {
    let pg = spawn_playground().await;
    let subject = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    let actor = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"did":"device-42","Name":"Sensor 42"}"#)
    );
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("client_id", pg.info.client.client_id.as_str()),
        ("client_secret", pg.info.client.client_secret.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("subject_token", subject.as_str()),
        ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ("actor_token", actor.as_str()),
    ];
    let (status, body) = post_form(&pg.login_token_url(), &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:jwt");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 60);
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["act"]["did"], "device-42");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
    crate::identity::assert_signed_by_playground(&pg, body["access_token"].as_str().unwrap()).await;

    let mut bad = form;
    bad[4] = ("subject_token", "00D000000000000!nope");
    let (s, b) = post_form(&pg.login_token_url(), &bad).await;
    assert_oauth_error(s, &b, "invalid_grant", "invalid subject token");
}
