//! The five-approvals budget, against the playground's real cap.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::approvals::{ApprovalBudget, ApprovalOutlook};
use forcelink_auth::flows::refresh::RefreshTokenSource;
use forcelink_auth::flows::web_server::WebServerFlow;
use forcelink_auth::store::Approval;
use forcelink_auth::{ConnectionId, MemoryStore, OAuthErrorKind, TokenSource};
use url::Url;

use crate::common::*;

#[tokio::test]
async fn a_sixth_approval_is_announced_and_reports_the_evicted_connection() {
    let clock = TestClock::new();
    let pg = playground(&clock).await;
    let store = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    let budget = ApprovalBudget::new(store);
    let flow = WebServerFlow::new(
        transport(&clock),
        login_endpoints(&pg),
        default_app(),
        Url::parse("http://127.0.0.1:9/callback").unwrap(),
    )
    .unwrap()
    .with_scope("api refresh_token");
    let refresh = RefreshTokenSource::new(transport(&clock), login_endpoints(&pg), default_app()).unwrap();

    let mut sets = Vec::new();
    for i in 0..6 {
        let connection = ConnectionId::new(format!("conn-{i}"));
        let outlook = budget.before_approval(STANDARD_USER, DEFAULT_CLIENT, &connection).await.unwrap();
        if i < 5 {
            assert_eq!(outlook, ApprovalOutlook::Fits { used: i });
        } else {
            let ApprovalOutlook::WouldEvict { oldest } = outlook else { panic!("{outlook:?}") };
            assert_eq!(oldest.connection, ConnectionId::new("conn-0"));
        }
        let request = flow.authorization_request();
        let callback = sign_in(&pg, &request.url, STANDARD_USER, STANDARD_PASSWORD, Decision::Allow).await;
        let set = flow.exchange(&request, &request.code_from_callback(&callback).unwrap()).await.unwrap();
        let evicted = budget
            .record(Approval {
                user: STANDARD_USER.to_owned(),
                client_id: DEFAULT_CLIENT.to_owned(),
                connection: connection.clone(),
                approved_at: clock.get(),
            })
            .await
            .unwrap();
        if i < 5 {
            assert!(evicted.is_empty());
        } else {
            assert_eq!(evicted.len(), 1);
            assert_eq!(evicted[0].connection, ConnectionId::new("conn-0"));
        }
        sets.push(set);
        clock.advance(Duration::from_secs(1));
    }
    // Salesforce (the playground) revoked exactly the connection the budget named.
    let err = refresh.fetch(Some(&sets[0])).await.unwrap_err();
    assert_eq!(err.oauth_kind(), Some(OAuthErrorKind::ExpiredToken));
    refresh.fetch(Some(&sets[1])).await.unwrap();
    // Re-authorizing an existing connection does not count twice.
    let outlook = budget.before_approval(STANDARD_USER, DEFAULT_CLIENT, &ConnectionId::new("conn-3")).await.unwrap();
    assert_eq!(outlook, ApprovalOutlook::Fits { used: 4 });
}
