//! The web-server (authorization code) and user-agent flows through
//! `/services/oauth2/authorize`, driven the way a browser drives them: login page, consent page,
//! redirect to the callback (wire reference §1.3, §1.8, §3).
//!
//! The helpers marked `pub(crate)` are shared with `approvals.rs`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use forcelink_test_support::PlaygroundHandle;
use hmac::{Hmac, Mac};
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::common::{
    self, ADMIN, ADMIN_APPROVED_CLIENT, DEFAULT_CLIENT, FROZEN_USER, INACTIVE_USER, PUBLIC_CLIENT, STANDARD_PASSWORD,
    STANDARD_USER, assert_oauth_error, hidden_input, location_params,
};

/// A registered callback of the default app (`http://127.0.0.1:*/callback`). Nothing listens
/// on it: the test client does not follow redirects.
pub(crate) const CALLBACK: &str = "http://127.0.0.1:9/callback";
/// Another URI matching the same registered pattern.
const OTHER_CALLBACK: &str = "http://127.0.0.1:10/callback";
/// Seed passwords of users common.rs has no constant for.
const FROZEN_PASSWORD: &str = "Frozen1!";
const INACTIVE_PASSWORD: &str = "Inactive1!";
/// Text of the login page's failure message (Salesforce's wording).
const LOGIN_FAILED: &str = "Please check your username and password";

/// A page (or redirect) as the browser sees it.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) async fn read(resp: Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        Self { status, headers, body }
    }

    /// The `Location` of a 302 (panics when this is not a redirect).
    pub(crate) fn location(&self) -> String {
        assert_eq!(self.status, StatusCode::FOUND, "expected a redirect, got: {}", self.body);
        self.headers.get(header::LOCATION).expect("a Location header").to_str().unwrap().to_owned()
    }

    /// The parameters of the redirect (query or fragment).
    pub(crate) fn redirect_params(&self) -> HashMap<String, String> {
        location_params(&self.location())
    }

    /// The hidden `pending` field of a login or consent form.
    pub(crate) fn pending(&self) -> String {
        hidden_input(&self.body, "pending").unwrap_or_else(|| panic!("no pending field in: {}", self.body))
    }

    pub(crate) fn is_html(&self) -> bool {
        self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
    }

    pub(crate) fn is_login_page(&self) -> bool {
        self.is_html()
            && self.body.contains("action=\"/services/oauth2/authorize/login\"")
            && self.body.contains("name=\"password\"")
    }

    pub(crate) fn is_consent_page(&self) -> bool {
        self.is_html()
            && self.body.contains("Allow access?")
            && self.body.contains("/services/oauth2/authorize/consent")
    }

    /// `playground_sid=…` from `Set-Cookie`, ready to send back as `Cookie`.
    pub(crate) fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.trim().starts_with("playground_sid="))
            .map(|pair| pair.trim().to_owned())
    }
}

/// `{login_url}/services/oauth2/authorize?…`.
pub(crate) fn authorize_url(pg: &PlaygroundHandle, params: &[(&str, &str)]) -> Url {
    Url::parse_with_params(&format!("{}/services/oauth2/authorize", pg.login_url()), params).unwrap()
}

/// Opens the authorize URL like a browser, with an optional `Cookie` header.
pub(crate) async fn open_authorize(pg: &PlaygroundHandle, params: &[(&str, &str)], cookie: Option<&str>) -> Page {
    let mut req = common::http().get(authorize_url(pg, params));
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    Page::read(req.send().await.unwrap()).await
}

/// Submits the login form.
pub(crate) async fn submit_login(pg: &PlaygroundHandle, pending: &str, username: &str, password: &str) -> Page {
    let resp = common::http()
        .post(format!("{}/services/oauth2/authorize/login", pg.login_url()))
        .form(&[("pending", pending), ("username", username), ("password", password), ("action", "login")])
        .send()
        .await
        .unwrap();
    Page::read(resp).await
}

/// Submits the consent form with `decision` = `allow` or `deny`.
pub(crate) async fn submit_consent(pg: &PlaygroundHandle, pending: &str, decision: &str) -> Page {
    let resp = common::http()
        .post(format!("{}/services/oauth2/authorize/consent", pg.login_url()))
        .form(&[("pending", pending), ("decision", decision)])
        .send()
        .await
        .unwrap();
    Page::read(resp).await
}

/// The end of a browser authorization.
#[derive(Debug)]
pub(crate) struct Authorized {
    /// The final redirect to the callback.
    pub(crate) redirect: Page,
    /// Whether a consent page was shown (and allowed).
    pub(crate) consent_shown: bool,
    /// The browser session cookie set at login.
    pub(crate) cookie: String,
}

/// Opens the authorize URL, logs in, allows consent when asked, and returns the redirect.
pub(crate) async fn authorize_as(
    pg: &PlaygroundHandle,
    params: &[(&str, &str)],
    username: &str,
    password: &str,
) -> Authorized {
    let login = open_authorize(pg, params, None).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert!(login.is_login_page(), "{}", login.body);
    let after = submit_login(pg, &login.pending(), username, password).await;
    let cookie = after.session_cookie().expect("login sets the browser session cookie");
    if after.status == StatusCode::FOUND {
        return Authorized { redirect: after, consent_shown: false, cookie };
    }
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    assert!(after.is_consent_page(), "{}", after.body);
    let redirect = submit_consent(pg, &after.pending(), "allow").await;
    Authorized { redirect, consent_shown: true, cookie }
}

/// The default app's code-flow parameters plus `extra`.
pub(crate) fn code_params<'a>(scope: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![("response_type", "code"), ("client_id", DEFAULT_CLIENT), ("redirect_uri", CALLBACK)];
    if !scope.is_empty() {
        p.push(("scope", scope));
    }
    p.extend_from_slice(extra);
    p
}

/// `grant_type=authorization_code` for the default app (with its secret) plus `extra`.
pub(crate) async fn exchange_code(
    pg: &PlaygroundHandle,
    code: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", pg.info.client.client_id.as_str()),
        ("client_secret", pg.info.client.client_secret.as_str()),
        ("redirect_uri", redirect_uri),
    ];
    form.extend_from_slice(extra);
    common::post_form(&pg.login_token_url(), &form).await
}

/// A refresh of the default app's `refresh_token`.
pub(crate) async fn refresh(pg: &PlaygroundHandle, refresh_token: &str) -> (StatusCode, Value) {
    common::post_form(
        &pg.login_token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &pg.info.client.client_id),
            ("client_secret", &pg.info.client.client_secret),
        ],
    )
    .await
}

/// One full web-server flow for the default app: browser login (and consent when asked), then
/// the code exchange. Returns the token response.
pub(crate) async fn code_flow_tokens(pg: &PlaygroundHandle, username: &str, password: &str, scope: &str) -> Value {
    let done = authorize_as(pg, &code_params(scope, &[]), username, password).await;
    let params = done.redirect.redirect_params();
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {params:?}"));
    let (status, body) = exchange_code(pg, code, CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Checks `signature = base64(HMAC-SHA256(client_secret, id ‖ issued_at))` (wire reference §2).
pub(crate) fn assert_signature(fields: &HashMap<String, String>, client_secret: &str) {
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).unwrap();
    mac.update(fields["id"].as_bytes());
    mac.update(fields["issued_at"].as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(fields["signature"], expected, "{fields:?}");
}

/// A token response's string fields, for checks shared with the user-agent fragment.
fn string_fields(body: &Value) -> HashMap<String, String> {
    body.as_object().unwrap().iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect()
}

/// The user id (last segment) of an identity URL.
fn user_id_of(identity_url: &str) -> &str {
    identity_url.rsplit('/').next().unwrap()
}

fn pkce_pair(verifier: &str) -> (String, String) {
    (verifier.to_owned(), URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
}

// ---------------------------------------------------------------------------------------------
// The web-server flow, end to end.

#[tokio::test]
async fn code_flow_with_login_and_consent_issues_tokens() {
    let pg = common::spawn_playground().await;
    let params = code_params("api refresh_token openid", &[("state", "st-42/x y"), ("nonce", "n-0S6_WzA2Mj")]);

    let login = open_authorize(&pg, &params, None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.is_login_page(), "{}", login.body);
    assert!(login.body.contains("forcelink Playground"), "org name on the login page");
    let pending = login.pending();
    assert!(!pending.is_empty());

    let consent = submit_login(&pg, &pending, STANDARD_USER, STANDARD_PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(consent.is_consent_page(), "{}", consent.body);
    assert!(consent.body.contains("forcelink Default"), "app name on the consent page");
    assert!(consent.body.contains(STANDARD_USER), "username on the consent page");
    for scope in ["api", "refresh_token", "openid"] {
        assert!(consent.body.contains(&format!("<li>{scope}</li>")), "scope {scope} listed: {}", consent.body);
    }
    assert!(!consent.body.contains("revokes the oldest approval"), "no eviction warning for a first approval");
    let cookie = consent.headers.get(header::SET_COOKIE).expect("session cookie").to_str().unwrap();
    assert!(cookie.starts_with("playground_sid="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    let redirect = submit_consent(&pg, &consent.pending(), "allow").await;
    let location = redirect.location();
    assert!(location.starts_with(&format!("{CALLBACK}?")), "code in the query: {location}");
    let cb = redirect.redirect_params();
    assert_eq!(cb["state"], "st-42/x y", "state comes back unchanged");
    assert!(!cb["code"].is_empty());
    assert!(!cb.contains_key("access_token") && !cb.contains_key("error"), "{cb:?}");

    let before_ms = pg.control.clock().await["now_ms"].as_i64().unwrap();
    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let org15 = body["id"].as_str().unwrap().split('/').nth_back(1).unwrap()[..15].to_owned();
    assert!(body["access_token"].as_str().unwrap().starts_with(&format!("{org15}!")), "{body}");
    assert!(body["refresh_token"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    assert_eq!(body["instance_url"], pg.instance_url());
    assert!(body["id"].as_str().unwrap().starts_with(&format!("{}/id/00D", pg.login_url())), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api refresh_token openid");
    assert!(body.get("expires_in").is_none(), "Salesforce sends no expires_in: {body}");
    let issued_at: i64 = body["issued_at"].as_str().expect("issued_at is a string").parse().unwrap();
    assert!(issued_at >= before_ms && issued_at < before_ms + 60_000, "{issued_at} vs {before_ms}");
    let fields = string_fields(&body);
    assert_signature(&fields, &pg.info.client.client_secret);

    let id_token = body["id_token"].as_str().expect("id_token with openid");
    let claims = common::jwt_claims(id_token);
    assert_eq!(claims["aud"], DEFAULT_CLIENT);
    assert_eq!(claims["sub"], user_id_of(&fields["id"]));
    assert_eq!(claims["preferred_username"], STANDARD_USER);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");

    assert_eq!(common::api_status(pg.instance_url(), &fields["access_token"]).await, StatusCode::OK);
    let (status, renewed) = refresh(&pg, &fields["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(user_id_of(renewed["id"].as_str().unwrap()), user_id_of(&fields["id"]));
}

#[tokio::test]
async fn pre_approved_admin_gets_no_consent_page() {
    let pg = common::spawn_playground().await;
    assert_eq!(pg.info.user.username, ADMIN);
    let params = code_params("api", &[("state", "s1")]);
    let login = open_authorize(&pg, &params, None).await;
    let redirect = submit_login(&pg, &login.pending(), ADMIN, &pg.info.user.password).await;
    assert_eq!(redirect.status, StatusCode::FOUND, "no consent page: {}", redirect.body);
    assert!(redirect.session_cookie().is_some());
    let cb = redirect.redirect_params();
    assert_eq!(cb["state"], "s1");

    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api");
    assert!(body.get("refresh_token").is_none(), "no refresh_token without its scope: {body}");
    assert!(body.get("id_token").is_none(), "no id_token without openid: {body}");
    assert!(body.get("expires_in").is_none(), "{body}");
    assert_signature(&string_fields(&body), &pg.info.client.client_secret);
}

// ---------------------------------------------------------------------------------------------
// PKCE.

#[tokio::test]
async fn pkce_s256_code_exchange_succeeds() {
    let pg = common::spawn_playground().await;
    let (verifier, challenge) = pkce_pair("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more-entropy");
    let params = code_params("api refresh_token", &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
    let done = authorize_as(&pg, &params, STANDARD_USER, STANDARD_PASSWORD).await;
    let cb = done.redirect.redirect_params();
    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[("code_verifier", &verifier)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn pkce_public_client_needs_no_secret() {
    let pg = common::spawn_playground().await;
    let (verifier, challenge) = pkce_pair("public-client-verifier-0123456789-0123456789-0123456789");
    // jsforce sends `code_challenge` without a method: S256 is assumed.
    let params = [
        ("response_type", "code"),
        ("client_id", PUBLIC_CLIENT),
        ("redirect_uri", CALLBACK),
        ("scope", "api refresh_token"),
        ("code_challenge", challenge.as_str()),
    ];
    let done = authorize_as(&pg, &params, STANDARD_USER, STANDARD_PASSWORD).await;
    let cb = done.redirect.redirect_params();
    let (status, body) = common::post_form(
        &pg.login_token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &cb["code"]),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn pkce_verifier_mismatch_is_invalid_request() {
    let pg = common::spawn_playground().await;
    let (_, challenge) = pkce_pair("the-right-verifier-0123456789-0123456789-0123456789-abc");
    let params = code_params("api", &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
    let done = authorize_as(&pg, &params, STANDARD_USER, STANDARD_PASSWORD).await;
    let cb = done.redirect.redirect_params();
    let wrong = "a-wrong-verifier-0123456789-0123456789-0123456789-0123456";
    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[("code_verifier", wrong)]).await;
    assert_oauth_error(status, &body, "invalid_request", "invalid code verifier");
    // The challenge itself is not a verifier either.
    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[("code_verifier", &challenge)]).await;
    assert_oauth_error(status, &body, "invalid_request", "invalid code verifier");
}

#[tokio::test]
async fn pkce_challenge_without_verifier_is_invalid_grant() {
    let pg = common::spawn_playground().await;
    let (_, challenge) = pkce_pair("verifier-never-sent-0123456789-0123456789-0123456789-x");
    let params = code_params("api", &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
    let done = authorize_as(&pg, &params, STANDARD_USER, STANDARD_PASSWORD).await;
    let cb = done.redirect.redirect_params();
    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn pkce_required_app_without_challenge_redirects_with_invalid_request() {
    let pg = common::spawn_playground().await;
    let params =
        [("response_type", "code"), ("client_id", PUBLIC_CLIENT), ("redirect_uri", CALLBACK), ("state", "pkce-state")];
    let page = open_authorize(&pg, &params, None).await;
    let location = page.location();
    assert!(location.starts_with(&format!("{CALLBACK}?")), "{location}");
    let cb = page.redirect_params();
    assert_eq!(cb["error"], "invalid_request", "{cb:?}");
    assert_eq!(cb["state"], "pkce-state");
    assert!(!cb.contains_key("code"));
}

// ---------------------------------------------------------------------------------------------
// Authorization codes at the token endpoint.

#[tokio::test]
async fn code_cannot_be_redeemed_twice() {
    let pg = common::spawn_playground().await;
    let done = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let code = done.redirect.redirect_params()["code"].clone();
    let (status, body) = exchange_code(&pg, &code, CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = exchange_code(&pg, &code, CALLBACK, &[]).await;
    assert_oauth_error(status, &body, "invalid_grant", "expired authorization code");
}

#[tokio::test]
async fn reused_code_stays_expired_after_another_code_is_issued() {
    let pg = common::spawn_playground().await;
    let first = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let code = first.redirect.redirect_params()["code"].clone();
    let (status, body) = exchange_code(&pg, &code, CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A second authorization issues a new code.
    let second = open_authorize(&pg, &code_params("api", &[]), Some(&first.cookie)).await;
    assert!(second.redirect_params().contains_key("code"));
    let (status, body) = exchange_code(&pg, &code, CALLBACK, &[]).await;
    assert_oauth_error(status, &body, "invalid_grant", "expired authorization code");
}

#[tokio::test]
async fn code_expires_after_fifteen_minutes() {
    let pg = common::spawn_playground().await;
    // Still good after 14 minutes…
    let done = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let fresh = done.redirect.redirect_params()["code"].clone();
    pg.control.advance_clock(14 * 60).await;
    let (status, body) = exchange_code(&pg, &fresh, CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // …but not after 16.
    let again = open_authorize(&pg, &code_params("api", &[]), Some(&done.cookie)).await;
    let stale = again.redirect_params()["code"].clone();
    pg.control.advance_clock(16 * 60).await;
    let (status, body) = exchange_code(&pg, &stale, CALLBACK, &[]).await;
    assert_oauth_error(status, &body, "invalid_grant", "expired authorization code");
}

#[tokio::test]
async fn token_request_with_another_redirect_uri_is_redirect_uri_mismatch() {
    let pg = common::spawn_playground().await;
    let done = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let code = done.redirect.redirect_params()["code"].clone();

    // Registered for the app, but not the one the code was issued for.
    let (status, body) = exchange_code(&pg, &code, OTHER_CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "redirect_uri_mismatch", "{body}");

    // Missing altogether.
    let (status, body) = common::post_form(
        &pg.login_token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &pg.info.client.client_id),
            ("client_secret", &pg.info.client.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "redirect_uri_mismatch", "{body}");

    // The mismatch did not burn the code.
    let (status, body) = exchange_code(&pg, &code, CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn code_exchange_needs_the_client_secret() {
    let pg = common::spawn_playground().await;
    let done = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let code = done.redirect.redirect_params()["code"].clone();
    let (status, body) = common::post_form(
        &pg.login_token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", DEFAULT_CLIENT),
            ("client_secret", "not-the-secret"),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await;
    assert_oauth_error(status, &body, "invalid_client", "invalid client credentials");
}

// ---------------------------------------------------------------------------------------------
// Errors at the authorize endpoint.

#[tokio::test]
async fn unknown_client_id_shows_an_error_page_without_redirect() {
    let pg = common::spawn_playground().await;
    let params =
        [("response_type", "code"), ("client_id", "3MVG9no.such.app"), ("redirect_uri", CALLBACK), ("state", "s")];
    let page = open_authorize(&pg, &params, None).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.headers.get(header::LOCATION).is_none(), "never redirect for an unknown client");
    assert!(page.is_html(), "{:?}", page.headers);
    assert!(page.body.contains("invalid_client_id"), "{}", page.body);
    assert!(page.body.contains("client identifier invalid"), "{}", page.body);
}

#[tokio::test]
async fn unregistered_redirect_uri_shows_an_error_page() {
    let pg = common::spawn_playground().await;
    for redirect_uri in ["https://evil.example/callback", "http://127.0.0.1:9/callback/extra", ""] {
        let params =
            [("response_type", "code"), ("client_id", DEFAULT_CLIENT), ("redirect_uri", redirect_uri), ("state", "s")];
        let page = open_authorize(&pg, &params, None).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{redirect_uri:?}");
        assert!(page.headers.get(header::LOCATION).is_none(), "{redirect_uri:?}");
        assert!(page.is_html());
        assert!(page.body.contains("redirect_uri_mismatch"), "{}", page.body);
    }
}

#[tokio::test]
async fn unsupported_response_type_redirects_with_error() {
    let pg = common::spawn_playground().await;
    let params = [
        ("response_type", "id_token"),
        ("client_id", DEFAULT_CLIENT),
        ("redirect_uri", CALLBACK),
        ("state", "rt-state"),
    ];
    let page = open_authorize(&pg, &params, None).await;
    assert!(page.location().starts_with(&format!("{CALLBACK}?")));
    let cb = page.redirect_params();
    assert_eq!(cb["error"], "unsupported_response_type", "{cb:?}");
    assert_eq!(cb["state"], "rt-state");
}

#[tokio::test]
async fn scope_the_app_does_not_allow_redirects_with_invalid_scope() {
    let pg = common::spawn_playground().await;
    let params = code_params("api chatter_api", &[("state", "sc")]);
    let page = open_authorize(&pg, &params, None).await;
    let cb = page.redirect_params();
    assert_eq!(cb["error"], "invalid_scope", "{cb:?}");
    assert_eq!(cb["state"], "sc");
}

#[tokio::test]
async fn deny_on_consent_redirects_with_access_denied_and_state() {
    let pg = common::spawn_playground().await;
    let params = code_params("api refresh_token", &[("state", "deny-me")]);
    let login = open_authorize(&pg, &params, None).await;
    let consent = submit_login(&pg, &login.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(consent.is_consent_page(), "{}", consent.body);
    let redirect = submit_consent(&pg, &consent.pending(), "deny").await;
    assert!(redirect.location().starts_with(&format!("{CALLBACK}?")));
    let cb = redirect.redirect_params();
    assert_eq!(cb["error"], "access_denied", "{cb:?}");
    assert_eq!(cb["state"], "deny-me");
    assert!(!cb.contains_key("code"));

    // Denying recorded no approval: the next authorization asks again.
    let again = open_authorize(&pg, &params, Some(&consent.session_cookie().unwrap())).await;
    assert!(again.is_consent_page(), "{}", again.body);
    // The consent form cannot be submitted twice.
    let replay = submit_consent(&pg, &consent.pending(), "allow").await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.headers.get(header::LOCATION).is_none());
}

// ---------------------------------------------------------------------------------------------
// Login page.

#[tokio::test]
async fn wrong_password_rerenders_the_login_page_with_an_error() {
    let pg = common::spawn_playground().await;
    let login = open_authorize(&pg, &code_params("api", &[("state", "pw")]), None).await;
    let pending = login.pending();
    let failed = submit_login(&pg, &pending, STANDARD_USER, "not-the-password").await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    assert!(failed.headers.get(header::LOCATION).is_none(), "no redirect on a failed login");
    assert!(failed.session_cookie().is_none(), "no session for a failed login");
    assert!(failed.is_login_page(), "{}", failed.body);
    assert!(failed.body.contains(LOGIN_FAILED), "{}", failed.body);
    assert!(failed.body.contains(&format!("value=\"{STANDARD_USER}\"")), "username kept: {}", failed.body);

    // An unknown user gets the same message (no user enumeration).
    let unknown = submit_login(&pg, &pending, "nobody@playground.forcelink.dev", "x").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains(LOGIN_FAILED), "{}", unknown.body);

    // The same form can be retried with the right password.
    let retried = submit_login(&pg, &failed.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(retried.is_consent_page(), "{}", retried.body);
}

#[tokio::test]
async fn frozen_and_inactive_users_cannot_log_in() {
    let pg = common::spawn_playground().await;
    for (username, password, says) in
        [(FROZEN_USER, FROZEN_PASSWORD, "frozen"), (INACTIVE_USER, INACTIVE_PASSWORD, "inactive")]
    {
        let login = open_authorize(&pg, &code_params("api", &[]), None).await;
        let refused = submit_login(&pg, &login.pending(), username, password).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{username}: {}", refused.body);
        assert!(refused.headers.get(header::LOCATION).is_none(), "{username}");
        assert!(refused.session_cookie().is_none(), "{username}");
        assert!(refused.is_login_page());
        assert!(refused.body.contains(says), "{username}: {}", refused.body);
    }
}

#[tokio::test]
async fn session_cookie_skips_the_login_page() {
    let pg = common::spawn_playground().await;
    let first = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(first.consent_shown);
    let (_, first_tokens) = exchange_code(&pg, &first.redirect.redirect_params()["code"], CALLBACK, &[]).await;

    // Without the cookie: the login page.
    let anonymous = open_authorize(&pg, &code_params("api", &[("state", "again")]), None).await;
    assert!(anonymous.is_login_page(), "{}", anonymous.body);

    // With it: straight back to the callback (already approved).
    let second = open_authorize(&pg, &code_params("api", &[("state", "again")]), Some(&first.cookie)).await;
    let cb = second.redirect_params();
    assert_eq!(cb["state"], "again");
    let (status, body) = exchange_code(&pg, &cb["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], first_tokens["id"], "the same user");

    // The cookie among others, as browsers send it.
    let mixed = format!("theme=dark; {}; other=1", first.cookie);
    let third = open_authorize(&pg, &code_params("api", &[]), Some(&mixed)).await;
    assert!(third.redirect_params().contains_key("code"));

    // A made-up session id is no session.
    let forged = open_authorize(&pg, &code_params("api", &[]), Some("playground_sid=forged")).await;
    assert!(forged.is_login_page(), "{}", forged.body);
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_despite_a_session() {
    let pg = common::spawn_playground().await;
    let first = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let page = open_authorize(&pg, &code_params("api", &[("prompt", "login")]), Some(&first.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get(header::LOCATION).is_none());
    assert!(page.is_login_page(), "{}", page.body);
    // Logging in as someone else on that page works.
    let as_admin = submit_login(&pg, &page.pending(), ADMIN, &pg.info.user.password).await;
    let (status, body) = exchange_code(&pg, &as_admin.redirect_params()["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, info) = common::status_json(
        common::http()
            .get(body["id"].as_str().unwrap())
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["username"], ADMIN, "{info}");
}

#[tokio::test]
async fn prompt_consent_asks_again_even_when_approved() {
    let pg = common::spawn_playground().await;
    let first = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let page = open_authorize(&pg, &code_params("api", &[("prompt", "consent")]), Some(&first.cookie)).await;
    assert!(page.is_consent_page(), "{}", page.body);
    // A pre-approved admin is asked too when the client insists.
    let admin = open_authorize(&pg, &code_params("api", &[("prompt", "consent")]), None).await;
    let consent = submit_login(&pg, &admin.pending(), ADMIN, &pg.info.user.password).await;
    assert!(consent.is_consent_page(), "{}", consent.body);
}

#[tokio::test]
async fn immediate_without_approval_is_immediate_unsuccessful() {
    let pg = common::spawn_playground().await;
    // No session at all.
    let page = open_authorize(&pg, &code_params("api", &[("immediate", "true"), ("state", "imm")]), None).await;
    let cb = page.redirect_params();
    assert_eq!(cb["error"], "immediate_unsuccessful", "{cb:?}");
    assert_eq!(cb["state"], "imm");

    // A session, but the user never approved the app (denied on the consent page).
    let login = open_authorize(&pg, &code_params("api", &[]), None).await;
    let consent = submit_login(&pg, &login.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    let cookie = consent.session_cookie().unwrap();
    submit_consent(&pg, &consent.pending(), "deny").await;
    let page = open_authorize(&pg, &code_params("api", &[("immediate", "true")]), Some(&cookie)).await;
    assert_eq!(page.redirect_params()["error"], "immediate_unsuccessful");

    // Once approved, immediate=true succeeds without any page.
    let approved = authorize_as(&pg, &code_params("api", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let page = open_authorize(&pg, &code_params("api", &[("immediate", "true")]), Some(&approved.cookie)).await;
    assert!(page.redirect_params().contains_key("code"), "{:?}", page.redirect_params());
}

#[tokio::test]
async fn admin_approved_app_refuses_users_who_are_not_pre_approved() {
    let pg = common::spawn_playground().await;
    let params = [
        ("response_type", "code"),
        ("client_id", ADMIN_APPROVED_CLIENT),
        ("redirect_uri", CALLBACK),
        ("scope", "api refresh_token"),
        ("state", "aa"),
    ];
    let login = open_authorize(&pg, &params, None).await;
    let refused = submit_login(&pg, &login.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    let cb = refused.redirect_params();
    assert_eq!(cb["error"], "access_denied", "{cb:?}");
    assert_eq!(cb["state"], "aa");
    assert!(!cb.contains_key("code"));

    // The admin's profile is pre-approved: a code, no consent page.
    let login = open_authorize(&pg, &params, None).await;
    let allowed = submit_login(&pg, &login.pending(), ADMIN, &pg.info.user.password).await;
    assert!(allowed.redirect_params().contains_key("code"), "{}", allowed.body);
}

// ---------------------------------------------------------------------------------------------
// User-agent flow.

#[tokio::test]
async fn user_agent_flow_returns_the_token_in_the_fragment() {
    let pg = common::spawn_playground().await;
    let params = [
        ("response_type", "token"),
        ("client_id", DEFAULT_CLIENT),
        ("redirect_uri", CALLBACK),
        ("scope", "api refresh_token"),
        ("state", "ua-state"),
    ];
    let done = authorize_as(&pg, &params, STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(done.consent_shown);
    let location = done.redirect.location();
    let (base, fragment) = location.split_once('#').expect("token in the fragment");
    assert_eq!(base, CALLBACK, "nothing in the query: {location}");
    assert!(!fragment.is_empty());
    let f = done.redirect.redirect_params();
    for key in ["access_token", "refresh_token", "instance_url", "id", "issued_at", "signature", "token_type", "state"]
    {
        assert!(f.get(key).is_some_and(|v| !v.is_empty()), "{key} missing in {f:?}");
    }
    assert!(!f.contains_key("code") && !f.contains_key("expires_in"), "{f:?}");
    assert_eq!(f["token_type"], "Bearer");
    assert_eq!(f["state"], "ua-state");
    assert_eq!(f["instance_url"], pg.instance_url());
    assert!(f["issued_at"].parse::<i64>().is_ok(), "{f:?}");
    assert_signature(&f, &pg.info.client.client_secret);

    assert_eq!(common::api_status(&f["instance_url"], &f["access_token"]).await, StatusCode::OK);
    assert_eq!(common::api_status(pg.login_url(), &f["access_token"]).await, StatusCode::UNAUTHORIZED);
    let (_, renewed) = refresh(&pg, &f["refresh_token"]).await;
    assert!(renewed["access_token"].is_string(), "{renewed}");
}

#[tokio::test]
async fn user_agent_errors_come_back_in_the_fragment() {
    let pg = common::spawn_playground().await;
    let params =
        [("response_type", "token"), ("client_id", DEFAULT_CLIENT), ("redirect_uri", CALLBACK), ("state", "ua-deny")];
    let login = open_authorize(&pg, &params, None).await;
    let consent = submit_login(&pg, &login.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    let denied = submit_consent(&pg, &consent.pending(), "deny").await;
    let location = denied.location();
    assert!(location.starts_with(&format!("{CALLBACK}#")), "{location}");
    let f = denied.redirect_params();
    assert_eq!(f["error"], "access_denied");
    assert_eq!(f["state"], "ua-deny");
}
