//! Salesforce's device flow (wire reference §1.6): both the start and the polls go to
//! `/services/oauth2/token`; the user approves on `/setup/connect`.

use forcelink_test_support::PlaygroundHandle;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;

use crate::authorize::{assert_signature, refresh};
use crate::common::{self, ADMIN, DEFAULT_CLIENT, STANDARD_PASSWORD, STANDARD_USER, assert_oauth_error, hidden_input};

/// A device-flow start as the sf CLI sends it (form-urlencoded).
async fn start(pg: &PlaygroundHandle, scope: &str) -> Value {
    let (status, body) = common::post_form(
        &pg.login_token_url(),
        &[("response_type", "device_code"), ("client_id", DEFAULT_CLIENT), ("scope", scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// One poll with the device code.
async fn poll(pg: &PlaygroundHandle, device_code: &str) -> (StatusCode, Value) {
    common::post_form(
        &pg.login_token_url(),
        &[("grant_type", "device"), ("client_id", DEFAULT_CLIENT), ("code", device_code)],
    )
    .await
}

/// Waits one polling interval on the playground clock, then polls.
async fn poll_after_interval(pg: &PlaygroundHandle, start: &Value) -> (StatusCode, Value) {
    pg.control.advance_clock(start["interval"].as_i64().unwrap()).await;
    poll(pg, start["device_code"].as_str().unwrap()).await
}

fn assert_pending(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "authorization_pending", "{body}");
}

/// A page as the browser sees it: status, headers, HTML.
async fn page(req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, String) {
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

/// Submits the verification page: user code plus login.
async fn connect(pg: &PlaygroundHandle, user_code: &str, username: &str, password: &str) -> (StatusCode, String) {
    let (status, _, body) = page(common::http().post(format!("{}/setup/connect", pg.login_url())).form(&[
        ("pending", ""),
        ("user_code", user_code),
        ("username", username),
        ("password", password),
    ]))
    .await;
    (status, body)
}

/// Answers the consent page that follows a successful connect.
async fn decide(pg: &PlaygroundHandle, consent_html: &str, decision: &str) -> (StatusCode, String) {
    let pending = hidden_input(consent_html, "pending").expect("consent form");
    let (status, _, body) = page(
        common::http()
            .post(format!("{}/services/oauth2/authorize/consent", pg.login_url()))
            .form(&[("pending", pending.as_str()), ("decision", decision)]),
    )
    .await;
    (status, body)
}

/// Connects and approves as `username`.
async fn approve(pg: &PlaygroundHandle, user_code: &str, username: &str, password: &str) {
    let (status, consent) = connect(pg, user_code, username, password).await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    assert!(consent.contains("Allow access?"), "{consent}");
    let (status, done) = decide(pg, &consent, "allow").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("connected"), "{done}");
}

/// A multipart/form-data body built by hand (reqwest's `multipart` feature is off).
fn multipart(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

async fn post_multipart(url: &str, boundary: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = common::http()
        .post(url)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(multipart(boundary, fields))
        .send()
        .await
        .unwrap();
    common::status_json(resp).await
}

#[tokio::test]
async fn device_flow_end_to_end() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api refresh_token").await;
    let device_code = started["device_code"].as_str().expect("device_code").to_owned();
    let user_code = started["user_code"].as_str().expect("user_code").to_owned();
    assert!(!device_code.is_empty() && !user_code.is_empty());
    assert_ne!(device_code, user_code);
    assert_eq!(started["verification_uri"], format!("{}/setup/connect", pg.login_url()));
    assert!(started["interval"].as_i64().is_some_and(|i| i > 0), "interval in seconds: {started}");
    assert!(started.get("expires_in").is_none(), "Salesforce sends no expires_in: {started}");

    // Not approved yet: 400 authorization_pending, with no description.
    let (status, body) = poll(&pg, &device_code).await;
    assert_pending(status, &body);
    assert!(body.get("error_description").is_none(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");

    // The verification page is a form asking for the code and a login.
    let verification = format!("{}?user_code={user_code}", started["verification_uri"].as_str().unwrap());
    let (status, headers, html) = page(common::http().get(&verification)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(html.contains("action=\"/setup/connect\""), "{html}");
    assert_eq!(hidden_input(&html, "user_code").as_deref(), Some(user_code.as_str()), "code prefilled: {html}");
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""), "{html}");
    let (_, _, blank) = page(common::http().get(started["verification_uri"].as_str().unwrap())).await;
    assert!(blank.contains("name=\"user_code\""), "{blank}");

    // Connect: login, then consent naming the user and the scopes.
    let (status, consent) = connect(&pg, &user_code, STANDARD_USER, STANDARD_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    assert!(consent.contains("Allow access?") && consent.contains(STANDARD_USER), "{consent}");
    assert!(consent.contains("<li>refresh_token</li>"), "{consent}");

    // Still pending while the consent page is open.
    let (status, body) = poll_after_interval(&pg, &started).await;
    assert_pending(status, &body);

    let (status, done) = decide(&pg, &consent, "allow").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("connected"), "{done}");

    let (status, token) = poll_after_interval(&pg, &started).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    for key in ["access_token", "refresh_token", "signature", "instance_url", "id", "issued_at"] {
        assert!(token[key].as_str().is_some_and(|v| !v.is_empty()), "{key} in {token}");
    }
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "api refresh_token");
    assert_eq!(token["instance_url"], pg.instance_url());
    assert!(token.get("expires_in").is_none(), "{token}");
    let fields =
        token.as_object().unwrap().iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect();
    assert_signature(&fields, &pg.info.client.client_secret);

    let access = token["access_token"].as_str().unwrap();
    assert_eq!(common::api_status(pg.instance_url(), access).await, StatusCode::OK);
    let (_, info) = common::status_json(
        common::http().get(token["id"].as_str().unwrap()).bearer_auth(access).send().await.unwrap(),
    )
    .await;
    assert_eq!(info["username"], STANDARD_USER, "the token acts for the user who connected: {info}");
    let (status, renewed) = refresh(&pg, token["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");

    // The device code is spent.
    let (status, body) = poll_after_interval(&pg, &started).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn device_flow_accepts_multipart_form_data() {
    let pg = common::spawn_playground().await;
    // Lowercase letters and digits, like curl's and Node form-data's boundaries.
    let boundary = "------------------------3f9c2a7b1e0d4c58";
    let (status, started) = post_multipart(
        &pg.login_token_url(),
        boundary,
        &[("response_type", "device_code"), ("client_id", DEFAULT_CLIENT), ("scope", "refresh_token web api")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let device_code = started["device_code"].as_str().expect("device_code").to_owned();
    assert!(started["user_code"].is_string() && started["verification_uri"].is_string(), "{started}");
    assert!(started["interval"].is_i64(), "{started}");
    assert!(started.get("expires_in").is_none());

    let poll_fields = [("grant_type", "device"), ("client_id", DEFAULT_CLIENT), ("code", device_code.as_str())];
    let (status, body) = post_multipart(&pg.login_token_url(), boundary, &poll_fields).await;
    assert_pending(status, &body);

    approve(&pg, started["user_code"].as_str().unwrap(), STANDARD_USER, STANDARD_PASSWORD).await;
    pg.control.advance_clock(started["interval"].as_i64().unwrap()).await;
    let (status, token) = post_multipart(&pg.login_token_url(), boundary, &poll_fields).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert!(token["refresh_token"].is_string(), "{token}");
    assert_eq!(token["scope"], "refresh_token web api");
}

#[tokio::test]
async fn device_start_accepts_a_mixed_case_multipart_boundary() {
    let pg = common::spawn_playground().await;
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let (status, started) = post_multipart(
        &pg.login_token_url(),
        boundary,
        &[("response_type", "device_code"), ("client_id", DEFAULT_CLIENT), ("scope", "api")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert!(started["device_code"].is_string(), "{started}");
}

#[tokio::test]
async fn polling_faster_than_the_interval_gets_slow_down() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api").await;
    let device_code = started["device_code"].as_str().unwrap();
    let interval = started["interval"].as_i64().unwrap();

    let (status, body) = poll(&pg, device_code).await;
    assert_pending(status, &body);
    let (status, body) = poll(&pg, device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "slow_down", "{body}");

    // RFC 8628 §3.5: after slow_down the interval grows by 5 seconds for all later polls.
    pg.control.advance_clock(interval + 5).await;
    let (status, body) = poll(&pg, device_code).await;
    assert_pending(status, &body);

    // Polling at the new interval keeps the answer at authorization_pending.
    for _ in 0..3 {
        pg.control.advance_clock(interval + 5).await;
        let (status, body) = poll(&pg, device_code).await;
        assert_pending(status, &body);
    }
}

#[tokio::test]
async fn denying_the_device_is_access_denied() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api refresh_token").await;
    let (status, consent) =
        connect(&pg, started["user_code"].as_str().unwrap(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    let (_, denied) = decide(&pg, &consent, "deny").await;
    assert!(denied.contains("Access denied"), "{denied}");

    let (status, body) = poll_after_interval(&pg, &started).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "access_denied", "{body}");
    assert!(body.get("access_token").is_none());

    // The user code cannot be used again after the denial.
    let (status, page) = connect(&pg, started["user_code"].as_str().unwrap(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(page.contains("invalid or has expired"), "{page}");
}

#[tokio::test]
async fn device_code_expires_after_ten_minutes() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api").await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();

    // Nine minutes in: still pending, and the user can still connect.
    pg.control.advance_clock(9 * 60).await;
    let (status, body) = poll(&pg, device_code).await;
    assert_pending(status, &body);

    pg.control.advance_clock(2 * 60).await;
    let (status, body) = poll(&pg, device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "expired_token", "{body}");

    // The verification page no longer takes the code.
    let (status, page) = connect(&pg, user_code, STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(page.contains("invalid or has expired"), "{page}");
    assert!(!page.contains("Allow access?"));
}

#[tokio::test]
async fn approval_after_expiry_issues_nothing() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api").await;
    // The consent page is open when the code expires.
    let (_, consent) = connect(&pg, started["user_code"].as_str().unwrap(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(consent.contains("Allow access?"), "{consent}");
    pg.control.advance_clock(11 * 60).await;
    let (status, page) = decide(&pg, &consent, "allow").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(!page.contains("connected"), "{page}");
    let (status, body) = poll(&pg, started["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "expired_token", "{body}");
}

#[tokio::test]
async fn wrong_user_code_or_password_shows_an_error() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api").await;
    let user_code = started["user_code"].as_str().unwrap();

    let (status, page) = connect(&pg, "NOTACODE", STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(page.contains("That code is invalid or has expired."), "{page}");
    assert!(page.contains("action=\"/setup/connect\""), "the form is shown again: {page}");
    assert!(!page.contains("Allow access?"));

    let (status, page) = connect(&pg, user_code, STANDARD_USER, "wrong password").await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(page.contains("Please check your username and password"), "{page}");
    assert_eq!(hidden_input(&page, "user_code").as_deref(), Some(user_code), "code kept: {page}");

    // Neither attempt approved anything; the right details still work.
    let (status, body) = poll(&pg, started["device_code"].as_str().unwrap()).await;
    assert_pending(status, &body);
    approve(&pg, &user_code.to_ascii_lowercase(), STANDARD_USER, STANDARD_PASSWORD).await;
    let (status, token) = poll_after_interval(&pg, &started).await;
    assert_eq!(status, StatusCode::OK, "{token}");
}

#[tokio::test]
async fn device_flow_always_asks_for_consent_and_without_refresh_scope_issues_no_refresh_token() {
    let pg = common::spawn_playground().await;
    let started = start(&pg, "api").await;
    // Even the pre-approved admin confirms on the page which device is connected.
    approve(&pg, started["user_code"].as_str().unwrap(), ADMIN, &pg.info.user.password).await;
    let (status, token) = poll_after_interval(&pg, &started).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["scope"], "api");
    assert!(token.get("refresh_token").is_none(), "{token}");
}

#[tokio::test]
async fn device_start_errors() {
    let pg = common::spawn_playground().await;
    let (status, body) = common::post_form(
        &pg.login_token_url(),
        &[("response_type", "device_code"), ("client_id", "3MVG9no.such.app"), ("scope", "api")],
    )
    .await;
    assert_oauth_error(status, &body, "invalid_client_id", "client identifier invalid");

    let (status, body) = poll(&pg, "not-a-device-code").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}
