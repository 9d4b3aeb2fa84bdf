//! Refresh-token grants: plain, rotating (with family revocation on reuse), and Salesforce's
//! rejection of concurrent refreshes of one token.

use forcelink_test_support::PlaygroundHandle;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

async fn admin_refresh_token(pg: &PlaygroundHandle) -> (String, String) {
    let secret = pg.info.client.client_secret.clone();
    let t = web_server_token(pg, DEFAULT_CLIENT, Some(&secret), ADMIN, "Playground1!", "api refresh_token").await;
    (t["access_token"].as_str().unwrap().to_owned(), t["refresh_token"].as_str().unwrap().to_owned())
}

/// A refresh of the default app's token running in its own task.
fn spawn_refresh(
    pg: &PlaygroundHandle,
    secret: &str,
    refresh_token: &str,
) -> tokio::task::JoinHandle<(StatusCode, serde_json::Value)> {
    let (url, rt, secret) = (pg.login_token_url(), refresh_token.to_owned(), secret.to_owned());
    tokio::spawn(async move {
        post_form(
            &url,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", DEFAULT_CLIENT),
                ("client_secret", &secret),
                ("refresh_token", &rt),
            ],
        )
        .await
    })
}

/// Waits (without sleeping) until the playground has `n` refreshes in flight.
async fn until_in_flight(pg: &PlaygroundHandle, n: u64) {
    for _ in 0..2000 {
        if pg.control.stats().await["refreshes_in_flight"] == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never saw {n} refreshes in flight");
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_refresh_token() {
    let pg = spawn_playground().await;
    let secret = pg.info.client.client_secret.clone();
    let (first_access, rt) = admin_refresh_token(&pg).await;
    for _ in 0..2 {
        let (s, b) = refresh(&pg, DEFAULT_CLIENT, &secret, &rt).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(b.get("refresh_token").is_none(), "no rotation: no new refresh token");
        assert!(b.get("expires_in").is_none());
        assert_ne!(b["access_token"], first_access.as_str());
        assert_eq!(api_status(pg.instance_url(), b["access_token"].as_str().unwrap()).await, StatusCode::OK);
    }
    // The earlier access token is still valid: a refresh does not revoke siblings.
    assert_eq!(api_status(pg.instance_url(), &first_access).await, StatusCode::OK);
    assert_eq!(pg.control.token_requests("refresh_token").await, 2);
}

#[tokio::test]
async fn refresh_needs_the_client_secret_and_a_known_token() {
    let pg = spawn_playground().await;
    let (_, rt) = admin_refresh_token(&pg).await;
    let (s, b) = refresh(&pg, DEFAULT_CLIENT, "wrong", &rt).await;
    assert_oauth_error(s, &b, "invalid_client", "invalid client credentials");
    let (s, b) = refresh(&pg, DEFAULT_CLIENT, &pg.info.client.client_secret, "5Aep861unknown").await;
    assert_oauth_error(s, &b, "invalid_grant", "expired access/refresh token");
    // A refresh token of one app cannot be used by another.
    let (s, b) = refresh(&pg, ROTATING_CLIENT, ROTATING_SECRET, &rt).await;
    assert_oauth_error(s, &b, "invalid_grant", "expired access/refresh token");
}

#[tokio::test]
async fn refresh_for_a_frozen_user_fails() {
    let pg = spawn_playground().await;
    let (_, rt) = admin_refresh_token(&pg).await;
    pg.control.set_user(ADMIN, json!({"frozen": true})).await;
    let (s, b) = refresh(&pg, DEFAULT_CLIENT, &pg.info.client.client_secret, &rt).await;
    assert_oauth_error(s, &b, "inactive_user", "user is frozen");
}

#[tokio::test]
async fn rotation_issues_a_new_refresh_token_and_reuse_revokes_the_family() {
    let pg = spawn_playground().await;
    let t =
        web_server_token(&pg, ROTATING_CLIENT, Some(ROTATING_SECRET), ADMIN, "Playground1!", "api refresh_token").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    let (s, b) = refresh(&pg, ROTATING_CLIENT, ROTATING_SECRET, &rt1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rt2 = b["refresh_token"].as_str().expect("rotation returns a new refresh token").to_owned();
    assert_ne!(rt1, rt2);
    let access2 = b["access_token"].as_str().unwrap().to_owned();
    let (s, b) = refresh(&pg, ROTATING_CLIENT, ROTATING_SECRET, &rt2).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rt3 = b["refresh_token"].as_str().unwrap().to_owned();

    // Reusing a rotated token fails and revokes the whole family, including the newest.
    let (s, b) = refresh(&pg, ROTATING_CLIENT, ROTATING_SECRET, &rt1).await;
    assert_oauth_error(s, &b, "invalid_grant", "expired access/refresh token");
    let (s, b) = refresh(&pg, ROTATING_CLIENT, ROTATING_SECRET, &rt3).await;
    assert_oauth_error(s, &b, "invalid_grant", "expired access/refresh token");
    assert_eq!(api_status(pg.instance_url(), &access2).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rotating_app_session_timeout_is_its_own() {
    let pg = spawn_playground().await;
    let t =
        web_server_token(&pg, ROTATING_CLIENT, Some(ROTATING_SECRET), ADMIN, "Playground1!", "api refresh_token").await;
    let access = t["access_token"].as_str().unwrap();
    pg.control.advance_clock(899).await;
    assert_eq!(api_status(pg.instance_url(), access).await, StatusCode::OK);
    pg.control.advance_clock(1).await;
    assert_eq!(api_status(pg.instance_url(), access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_second_concurrent_refresh_of_one_token_is_rejected() {
    let pg = spawn_playground().await;
    let secret = pg.info.client.client_secret.clone();
    let (_, rt) = admin_refresh_token(&pg).await;
    pg.control.settings(json!({"hold_refreshes": true})).await;
    let first = spawn_refresh(&pg, &secret, &rt);
    until_in_flight(&pg, 1).await;
    let (s, b) = refresh(&pg, DEFAULT_CLIENT, &secret, &rt).await;
    assert_oauth_error(s, &b, "invalid_grant", "Token request is already being processed");
    pg.control.settings(json!({"hold_refreshes": false})).await;
    let (s, b) = first.await.unwrap();
    assert_eq!(s, StatusCode::OK, "{b}");
    until_in_flight(&pg, 0).await;
    // Once the first finished, the token refreshes again.
    let (s, _) = refresh(&pg, DEFAULT_CLIENT, &secret, &rt).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refresh_rejection_can_be_switched_off() {
    let pg = spawn_playground().await;
    let secret = pg.info.client.client_secret.clone();
    let (_, rt) = admin_refresh_token(&pg).await;
    pg.control.settings(json!({"hold_refreshes": true, "reject_concurrent_refresh": false})).await;
    let (a, b) = (spawn_refresh(&pg, &secret, &rt), spawn_refresh(&pg, &secret, &rt));
    // Both are held at once: neither was rejected.
    for _ in 0..2000 {
        let stats = pg.control.stats().await;
        if stats["token_requests"]["by_grant"]["refresh_token"] == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    pg.control.settings(json!({"hold_refreshes": false})).await;
    assert_eq!(a.await.unwrap().0, StatusCode::OK);
    assert_eq!(b.await.unwrap().0, StatusCode::OK);
    assert_eq!(pg.control.stats().await["tokens_issued"]["by_grant"]["refresh_token"], 2);
}
