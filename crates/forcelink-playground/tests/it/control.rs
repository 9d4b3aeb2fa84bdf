//! The control API: access, reset, stats, clock, session expiry, user revocation, faults.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn control_api_requires_the_control_key() {
    let pg = spawn_playground().await;
    let url = format!("{}/stats", pg.info.control_url);
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("control key"));
    let resp = http().get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = http().get(&url).header("x-playground-key", &pg.info.control_key).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn control_api_rejects_malformed_bodies_with_a_message() {
    let pg = spawn_playground().await;
    for (path, body) in
        [("/clock", "{"), ("/faults", r#"{"path_prefix":"/x","kind":"explode"}"#), ("/settings", r#"{"nope":1}"#)]
    {
        let resp = http()
            .request(
                if path == "/settings" { reqwest::Method::PATCH } else { reqwest::Method::POST },
                format!("{}{path}", pg.info.control_url),
            )
            .bearer_auth(&pg.info.control_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, b) = status_json(resp).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert!(b["message"].as_str().unwrap().contains("invalid JSON body"), "{b}");
    }
}

#[tokio::test]
async fn stats_count_token_requests_by_grant_app_and_user() {
    let pg = spawn_playground().await;
    client_credentials(&pg).await;
    client_credentials(&pg).await;
    password_token(&pg).await;
    post_form(&pg.login_token_url(), &[("grant_type", "password"), ("client_id", DEFAULT_CLIENT)]).await;
    let s = pg.control.stats().await;
    assert_eq!(s["token_requests"]["by_grant"]["client_credentials"], 2);
    assert_eq!(s["token_requests"]["by_grant"]["password"], 2);
    assert_eq!(s["token_requests"]["total"], 4);
    assert_eq!(s["tokens_issued"]["total"], 3);
    assert_eq!(s["tokens_issued"]["by_client_id"][DEFAULT_CLIENT], 3);
    assert_eq!(s["tokens_issued"]["by_username"][ADMIN], 3);
    assert_eq!(s["token_errors"]["by_error"]["invalid_client"], 1);
}

#[tokio::test]
async fn reset_forgets_tokens_and_counters() {
    let pg = spawn_playground().await;
    let token = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    pg.control.advance_clock(60).await;
    pg.control.reset().await;
    assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::UNAUTHORIZED);
    let s = pg.control.stats().await;
    assert_eq!(s["token_requests"]["total"], 0);
    assert_eq!(pg.control.clock().await["offset_ms"], 0);
}

#[tokio::test]
async fn expire_sessions_and_revoke_user_tokens() {
    let pg = spawn_playground().await;
    let a = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(pg.control.expire_sessions().await["expired"], 1);
    assert_eq!(api_status(pg.instance_url(), &a).await, StatusCode::UNAUTHORIZED);
    let b = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(pg.instance_url(), &b).await, StatusCode::OK);
    let r = pg.control.revoke_user_tokens(ADMIN).await;
    assert!(r["revoked_access_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(api_status(pg.instance_url(), &b).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn clock_moves_forward_by_the_requested_amount() {
    let pg = spawn_playground().await;
    let shifted = pg.control.advance_clock(3600).await;
    assert_eq!(shifted["offset_ms"], 3_600_000);
    // Tokens issued now carry the shifted time.
    let body = client_credentials(&pg).await;
    let issued: i64 = body["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(issued >= shifted["now_ms"].as_i64().unwrap());
}

async fn cc_request(
    pg: &forcelink_test_support::PlaygroundHandle,
    client: &reqwest::Client,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(pg.instance_token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", pg.info.client.client_id.as_str()),
            ("client_secret", pg.info.client.client_secret.as_str()),
        ])
        .send()
        .await
}

#[tokio::test]
async fn status_faults_answer_the_next_n_matching_requests() {
    let pg = spawn_playground().await;
    pg.control
        .add_fault(json!({"path_prefix": "/services/oauth2/token", "count": 2, "kind": "status", "status": 503,
            "body": "{\"error\":\"temporarily_unavailable\"}"}))
        .await;
    // A non-matching path is untouched.
    let resp = http().get(format!("{}/services/data/", pg.instance_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for _ in 0..2 {
        let (s, b) = status_json(cc_request(&pg, &http()).await.unwrap()).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["error"], "temporarily_unavailable");
    }
    assert_eq!(cc_request(&pg, &http()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn status_faults_can_send_retry_after() {
    let pg = spawn_playground().await;
    pg.control
        .add_fault(
            json!({"path_prefix": "/services/oauth2/token", "kind": "status", "status": 503, "retry_after_seconds": 7}),
        )
        .await;
    let resp = cc_request(&pg, &http()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    let resp = cc_request(&pg, &http()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn html_fault_serves_a_maintenance_page() {
    let pg = spawn_playground().await;
    pg.control.add_fault(json!({"path_prefix": "/services/oauth2/token", "kind": "html"})).await;
    let resp = cc_request(&pg, &http()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("<html>"));
}

#[tokio::test]
async fn truncate_fault_cuts_the_json_body() {
    let pg = spawn_playground().await;
    pg.control.add_fault(json!({"path_prefix": "/services/oauth2/token", "kind": "truncate"})).await;
    let resp = cc_request(&pg, &http()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("{\"access_token\""), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "a truncated body is not valid JSON");
}

#[tokio::test]
async fn drop_fault_closes_the_connection_without_an_answer() {
    let pg = spawn_playground().await;
    pg.control.add_fault(json!({"path_prefix": "/services/oauth2/token", "kind": "drop"})).await;
    let err = cc_request(&pg, &http()).await.expect_err("the connection is dropped");
    assert!(!err.is_status(), "{err}");
    assert_eq!(cc_request(&pg, &http()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn delay_fault_holds_the_answer() {
    let pg = spawn_playground().await;
    pg.control.add_fault(json!({"path_prefix": "/services/oauth2/token", "kind": "delay", "delay_ms": 30000})).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let err = cc_request(&pg, &impatient).await.expect_err("answer is delayed past the client timeout");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(cc_request(&pg, &http()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn faults_can_be_listed_and_cleared() {
    let pg = spawn_playground().await;
    pg.control.add_fault(json!({"path_prefix": "/services/oauth2/token", "count": 5, "kind": "drop"})).await;
    let list: Value =
        forcelink_test_support::get_json(&format!("{}/faults", pg.info.control_url), &pg.info.control_key).await;
    assert_eq!(list["faults"][0]["count"], 5);
    assert_eq!(list["faults"][0]["kind"], "drop");
    pg.control.clear_faults().await;
    assert_eq!(cc_request(&pg, &http()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn shutdown_closes_both_hosts() {
    let pg = spawn_playground().await;
    let (login, instance) = (pg.info.login_url.clone(), pg.info.instance_url.clone());
    assert!(http().get(format!("{instance}/services/data/")).send().await.is_ok());
    pg.shutdown().await;
    for base in [login, instance] {
        assert!(http().get(format!("{base}/services/data/")).send().await.is_err(), "{base} still answers");
    }
}

#[tokio::test]
async fn unknown_exception_preset_answers_salesforces_500() {
    let pg = spawn_playground().await;
    let armed = pg
        .control
        .add_fault(json!({"path_prefix": "/services/data", "kind": "status", "preset": "unknown_exception"}))
        .await;
    assert_eq!(armed["status"], 500, "{armed}");
    assert_eq!(armed["preset"], "unknown_exception");
    let resp = http().get(format!("{}/services/data/v59.0/limits", pg.instance_url())).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.headers()["content-type"], "application/json;charset=UTF-8");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "UNKNOWN_EXCEPTION", "{body}");
    let message = body[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("An unexpected error occurred. Please include this ErrorId if you contact support: "),
        "{message}"
    );
    // An unknown preset is refused when armed.
    let resp = http()
        .post(format!("{}/faults", pg.info.control_url))
        .bearer_auth(&pg.info.control_key)
        .body(r#"{"path_prefix":"/","kind":"status","preset":"nope"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn maintenance_page_on_every_path_of_the_login_host() {
    let pg = spawn_playground().await;
    pg.control.add_fault(json!({"path_prefix": "/", "count": 3, "kind": "html"})).await;
    for (method, url) in [
        (reqwest::Method::POST, format!("{}/services/Soap/u/59.0", pg.login_url())),
        (reqwest::Method::POST, pg.login_token_url()),
        (reqwest::Method::GET, format!("{}/some/unknown/page", pg.login_url())),
    ] {
        let resp = http().request(method, &url).send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE, "{url}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{url}");
        assert!(resp.text().await.unwrap().contains("maintenance"), "{url}");
    }
    // Used up: the login host answers normally again.
    let resp = http().get(format!("{}/.well-known/openid-configuration", pg.login_url())).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
}
