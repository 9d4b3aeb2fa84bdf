//! Inputs found while fuzzing the token-response decoder (`fuzz/fuzz_targets/auth_token_response.rs`),
//! kept as regression tests (issue 23).

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::identity::Introspection;
use forcelink_auth::token::LifetimeSource;
use forcelink_auth::{Endpoints, TokenSource};

use crate::common::*;

/// A lifetime past what the clock can hold (`now + expires_in` overflowed and panicked) is no
/// lifetime: the token is taken, its expiry unknown (the cache then uses the session timeout).
#[tokio::test]
async fn issue_23_a_lifetime_beyond_the_clock_is_unknown_not_a_panic() {
    for expires_in in ["18446744073709551615", "\"9999999999999999999\"", "9223372036854775807"] {
        let body = format!(
            r#"{{"access_token":"00D000000000001!AQ0token","instance_url":"https://acme.my.salesforce.com","expires_in":{expires_in}}}"#
        );
        let answer = Canned { status: 200, content_type: "application/json", body };
        let (base, _) = canned_server(vec![answer]).await;
        let clock = TestClock::new();
        let source = ClientCredentials::new(transport(&clock), Endpoints::salesforce(&base), default_app()).unwrap();
        let set = source.fetch(None).await.unwrap();
        assert_eq!((set.expires_at, set.lifetime_source), (None, LifetimeSource::Unknown), "{expires_in}");
    }
    // A usual lifetime still counts.
    let body = r#"{"access_token":"00D000000000001!AQ0token","instance_url":"https://acme.my.salesforce.com","expires_in":7200}"#;
    let (base, _) =
        canned_server(vec![Canned { status: 200, content_type: "application/json", body: body.into() }]).await;
    let clock = TestClock::new();
    let source = ClientCredentials::new(transport(&clock), Endpoints::salesforce(&base), default_app()).unwrap();
    let set = source.fetch(None).await.unwrap();
    assert_eq!(set.lifetime_source, LifetimeSource::ExpiresIn);
    assert!(set.expires_at.is_some());
}

/// The same for an introspection answer's `exp`.
#[test]
fn issue_23_an_introspected_expiry_beyond_the_clock_is_unknown() {
    let far: Introspection = serde_json::from_str(r#"{"active":true,"exp":18446744073709551615}"#).unwrap();
    assert_eq!(far.expires_at(), None);
    let usual: Introspection = serde_json::from_str(r#"{"active":true,"exp":1700000000}"#).unwrap();
    assert_eq!(usual.expires_at(), Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)));
}
