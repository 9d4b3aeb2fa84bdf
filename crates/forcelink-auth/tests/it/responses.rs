//! Robust responses: HTML, empty, truncated bodies, unknown fields, bad signatures and
//! insecure instance URLs from a token endpoint.

use forcelink_auth::error::BodyKind;
use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::wire::identity_signature;
use forcelink_auth::{AuthError, Endpoints, TokenSource};
use url::Url;

use crate::common::*;

async fn fetch_from(answer: Canned) -> (Result<forcelink_auth::TokenSet, AuthError>, Vec<String>) {
    let (base, seen) = canned_server(vec![answer]).await;
    let clock = TestClock::new();
    let source = ClientCredentials::new(transport(&clock), Endpoints::salesforce(&base), default_app()).unwrap();
    let r = source.fetch(None).await;
    let seen = seen.lock().unwrap().clone();
    (r, seen)
}

fn json(status: u16, body: &str) -> Canned {
    Canned { status, content_type: "application/json;charset=UTF-8", body: body.to_owned() }
}

fn signed_body(extra: &str, secret: &str) -> String {
    let id = "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA";
    let issued_at = "1700000000000";
    let sig = identity_signature(&ClientSecret::new(secret), id, issued_at);
    format!(
        r#"{{"access_token":"00D000000000001!AQ0secret","instance_url":"https://acme.my.salesforce.com","id":"{id}","token_type":"Bearer","issued_at":"{issued_at}","signature":"{sig}"{extra}}}"#
    )
}

#[tokio::test]
async fn unknown_fields_are_tolerated_and_the_signature_checked() {
    let (r, seen) = fetch_from(json(
        200,
        &signed_body(r#","api_instance_url":"https://api.salesforce.com","sfdc_new":1"#, DEFAULT_SECRET),
    ))
    .await;
    let set = r.unwrap();
    assert_eq!(set.instance_url.as_str(), "https://acme.my.salesforce.com/");
    assert_eq!(set.api_instance_url.as_deref(), Some("https://api.salesforce.com"));
    assert_eq!(set.issued_at, std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_000));
    assert!(seen[0].contains("grant_type=client_credentials"), "{seen:?}");

    let (r, _) = fetch_from(json(200, &signed_body("", "another secret"))).await;
    assert!(matches!(r, Err(AuthError::SignatureMismatch)), "{r:?}");
}

#[tokio::test]
async fn html_empty_and_truncated_bodies_become_typed_errors() {
    let (r, _) = fetch_from(Canned {
        status: 503,
        content_type: "text/html",
        body: "<html><body>Maintenance</body></html>".into(),
    })
    .await;
    let err = r.unwrap_err();
    assert!(matches!(&err, AuthError::UnexpectedResponse { status: 503, kind: BodyKind::Html, .. }), "{err:?}");
    assert_eq!(err.action(), forcelink_auth::Action::Retry);
    assert!(err.to_string().contains("Maintenance"), "the excerpt helps: {err}");

    let (r, _) = fetch_from(json(200, "")).await;
    assert!(matches!(r, Err(AuthError::UnexpectedResponse { kind: BodyKind::Empty, .. })), "{r:?}");

    let truncated = &signed_body("", DEFAULT_SECRET)[..60];
    let (r, _) = fetch_from(json(200, truncated)).await;
    let err = r.unwrap_err();
    assert!(matches!(&err, AuthError::UnexpectedResponse { kind: BodyKind::Malformed, .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("AQ0secret"), "a truncated token must not leak into the error: {text}");

    let (r, _) = fetch_from(json(200, r#"{"token_type":"Bearer"}"#)).await;
    assert!(
        matches!(r, Err(AuthError::UnexpectedResponse { kind: BodyKind::MissingField("access_token"), .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_insecure_instance_url_in_a_response_is_refused() {
    let body =
        signed_body("", DEFAULT_SECRET).replace("https://acme.my.salesforce.com", "http://acme.my.salesforce.com");
    let (r, _) = fetch_from(json(200, &body)).await;
    assert!(matches!(r, Err(AuthError::InsecureUrl { .. })), "{r:?}");
}

#[tokio::test]
async fn tokens_are_never_sent_over_plain_http_to_a_remote_host() {
    let clock = TestClock::new();
    let endpoints = Endpoints::salesforce(&Url::parse("http://acme.my.salesforce.com").unwrap());
    let err = ClientCredentials::new(transport(&clock), endpoints, default_app()).unwrap_err();
    assert!(matches!(err, AuthError::InsecureUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn an_instance_url_on_a_foreign_https_host_in_a_response_is_refused_naming_the_rule() {
    // The token endpoint is allowed (here: any loopback); the instance it names is not a
    // Salesforce host, so no token would ever be sent there.
    let body = signed_body("", DEFAULT_SECRET).replace("https://acme.my.salesforce.com", "https://evil.example");
    let (r, _) = fetch_from(json(200, &body)).await;
    let err = r.unwrap_err();
    assert!(matches!(err, AuthError::InsecureUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("--allow-origin") && err.to_string().contains("instance_url"), "{err}");
}
