//! The concurrent-approval cap (wire reference §5): five approvals (refresh tokens) per user and
//! connected app; a sixth revokes the oldest and the access tokens issued with it.

use forcelink_test_support::PlaygroundHandle;
use reqwest::StatusCode;
use serde_json::Value;

use crate::authorize::{
    CALLBACK, authorize_as, code_flow_tokens, code_params, exchange_code, open_authorize, refresh, submit_consent,
    submit_login,
};
use crate::common::{self, ADMIN, DEFAULT_CLIENT, STANDARD_PASSWORD, STANDARD_USER, assert_oauth_error};

/// The warning the consent page shows when allowing would evict the oldest approval.
const EVICTION_WARNING: &str = "revokes the oldest approval";

/// (access token, refresh token) of one approval.
#[derive(Debug, Clone)]
struct Approval {
    access: String,
    refresh: String,
}

/// One web-server-flow approval with a refresh token for `username` on the default app.
async fn approve(pg: &PlaygroundHandle, username: &str, password: &str) -> Approval {
    let body = code_flow_tokens(pg, username, password, "api refresh_token").await;
    Approval {
        access: body["access_token"].as_str().expect("access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
    }
}

/// `count` of the stats' approvals entry for (username, client id); 0 when absent.
async fn approvals_count(pg: &PlaygroundHandle, username: &str, client_id: &str) -> u64 {
    let stats = pg.control.stats().await;
    let list = stats["approvals"].as_array().unwrap_or_else(|| panic!("approvals list in {stats}"));
    list.iter()
        .find(|a| a["username"] == username && a["client_id"] == client_id)
        .map(|a| a["count"].as_u64().unwrap())
        .unwrap_or(0)
}

async fn assert_refresh_revoked(pg: &PlaygroundHandle, refresh_token: &str) {
    let (status, body) = refresh(pg, refresh_token).await;
    assert_oauth_error(status, &body, "invalid_grant", "expired access/refresh token");
}

async fn assert_refresh_works(pg: &PlaygroundHandle, refresh_token: &str) -> Value {
    let (status, body) = refresh(pg, refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn sixth_approval_revokes_the_oldest() {
    let pg = common::spawn_playground().await;
    let mut approvals = Vec::new();
    for _ in 0..5 {
        approvals.push(approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await);
    }
    // Five is the cap, not over it: all five still work.
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 5);
    assert_refresh_works(&pg, &approvals[0].refresh).await;
    assert_eq!(common::api_status(pg.instance_url(), &approvals[0].access).await, StatusCode::OK);

    approvals.push(approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await);

    let oldest = &approvals[0];
    assert_refresh_revoked(&pg, &oldest.refresh).await;
    assert_eq!(
        common::api_status(pg.instance_url(), &oldest.access).await,
        StatusCode::UNAUTHORIZED,
        "the oldest approval's access tokens go with it"
    );
    for (i, a) in approvals.iter().enumerate().skip(1) {
        assert_eq!(common::api_status(pg.instance_url(), &a.access).await, StatusCode::OK, "approval {i}");
        let renewed = assert_refresh_works(&pg, &a.refresh).await;
        assert!(renewed.get("refresh_token").is_none(), "no rotation on the default app: {renewed}");
    }
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 5);
}

#[tokio::test]
async fn the_access_token_renewed_from_an_evicted_approval_dies_too() {
    let pg = common::spawn_playground().await;
    let first = approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await;
    let renewed = assert_refresh_works(&pg, &first.refresh).await;
    let renewed_access = renewed["access_token"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await;
    }
    assert_eq!(common::api_status(pg.instance_url(), &first.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(common::api_status(pg.instance_url(), &renewed_access).await, StatusCode::UNAUTHORIZED);
    assert_refresh_revoked(&pg, &first.refresh).await;
}

#[tokio::test]
async fn eviction_goes_oldest_first() {
    let pg = common::spawn_playground().await;
    let mut approvals = Vec::new();
    for _ in 0..7 {
        approvals.push(approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await);
    }
    assert_refresh_revoked(&pg, &approvals[0].refresh).await;
    assert_refresh_revoked(&pg, &approvals[1].refresh).await;
    for a in &approvals[2..] {
        assert_refresh_works(&pg, &a.refresh).await;
    }
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 5);
}

#[tokio::test]
async fn approvals_are_counted_per_user() {
    let pg = common::spawn_playground().await;
    let admin = approve(&pg, ADMIN, &pg.info.user.password).await;
    for _ in 0..6 {
        approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await;
    }
    // Another user's sixth approval does not touch the admin's.
    assert_refresh_works(&pg, &admin.refresh).await;
    assert_eq!(approvals_count(&pg, ADMIN, DEFAULT_CLIENT).await, 1);
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 5);
}

#[tokio::test]
async fn grants_without_refresh_scope_are_not_approvals() {
    let pg = common::spawn_playground().await;
    let first = approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await;
    for _ in 0..6 {
        let body = code_flow_tokens(&pg, STANDARD_USER, STANDARD_PASSWORD, "api").await;
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 1);
    assert_refresh_works(&pg, &first.refresh).await;
}

#[tokio::test]
async fn consent_page_warns_before_evicting_an_approval() {
    let pg = common::spawn_playground().await;
    let mut approvals = Vec::new();
    for _ in 0..4 {
        approvals.push(approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await);
    }
    let with_consent = code_params("api refresh_token", &[("prompt", "consent")]);

    // Four approvals: a fifth evicts nothing, so no warning.
    let login = open_authorize(&pg, &with_consent, None).await;
    let consent = submit_login(&pg, &login.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(consent.is_consent_page(), "{}", consent.body);
    assert!(!consent.body.contains(EVICTION_WARNING), "{}", consent.body);
    let cookie = consent.session_cookie().unwrap();
    let done = submit_consent(&pg, &consent.pending(), "allow").await;
    let (status, body) = exchange_code(&pg, &done.redirect_params()["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 5);

    // Five: the page warns, with the count.
    let consent = open_authorize(&pg, &with_consent, Some(&cookie)).await;
    assert!(consent.is_consent_page(), "{}", consent.body);
    assert!(consent.body.contains(EVICTION_WARNING), "{}", consent.body);
    assert!(consent.body.contains("approved this app 5 times"), "{}", consent.body);

    // Denying there revokes nothing.
    let denied = submit_consent(&pg, &consent.pending(), "deny").await;
    assert_eq!(denied.redirect_params()["error"], "access_denied");
    assert_refresh_works(&pg, &approvals[0].refresh).await;
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 5);

    // A grant that brings no refresh token evicts nothing either: no warning.
    let no_refresh = code_params("api", &[("prompt", "consent")]);
    let consent = open_authorize(&pg, &no_refresh, Some(&cookie)).await;
    assert!(consent.is_consent_page(), "{}", consent.body);
    assert!(!consent.body.contains(EVICTION_WARNING), "{}", consent.body);

    // Allowing at the warning evicts the oldest.
    let consent = open_authorize(&pg, &with_consent, Some(&cookie)).await;
    let done = submit_consent(&pg, &consent.pending(), "allow").await;
    let (status, body) = exchange_code(&pg, &done.redirect_params()["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_refresh_revoked(&pg, &approvals[0].refresh).await;
    assert_refresh_works(&pg, &approvals[1].refresh).await;
}

#[tokio::test]
async fn revoking_a_users_tokens_kills_their_refresh_tokens() {
    let pg = common::spawn_playground().await;
    let done = authorize_as(&pg, &code_params("api refresh_token", &[]), STANDARD_USER, STANDARD_PASSWORD).await;
    let (status, body) = exchange_code(&pg, &done.redirect.redirect_params()["code"], CALLBACK, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = Approval {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    };
    let second = approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await;
    let admin = approve(&pg, ADMIN, &pg.info.user.password).await;
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 2);

    let revoked = pg.control.revoke_user_tokens(STANDARD_USER).await;
    assert_eq!(revoked["revoked_approvals"], 2, "{revoked}");
    assert!(revoked["revoked_access_tokens"].as_u64().is_some_and(|n| n >= 2), "{revoked}");

    for a in [&first, &second] {
        assert_refresh_revoked(&pg, &a.refresh).await;
        assert_eq!(common::api_status(pg.instance_url(), &a.access).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(approvals_count(&pg, STANDARD_USER, DEFAULT_CLIENT).await, 0);

    // Other users keep theirs.
    assert_refresh_works(&pg, &admin.refresh).await;
    assert_eq!(common::api_status(pg.instance_url(), &admin.access).await, StatusCode::OK);

    // The browser session and the consent are gone too: login and consent pages again.
    let page = open_authorize(&pg, &code_params("api", &[]), Some(&done.cookie)).await;
    assert!(page.is_login_page(), "{}", page.body);
    let consent = submit_login(&pg, &page.pending(), STANDARD_USER, STANDARD_PASSWORD).await;
    assert!(consent.is_consent_page(), "{}", consent.body);

    // A new approval works normally.
    let fresh = approve(&pg, STANDARD_USER, STANDARD_PASSWORD).await;
    assert_refresh_works(&pg, &fresh.refresh).await;
}
