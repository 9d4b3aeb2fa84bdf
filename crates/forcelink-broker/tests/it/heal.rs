//! Embedders on the broker: `forcelink_client::BrokerTokens` takes tokens from a served broker,
//! and when Salesforce refuses one (the org ended every session) the client reports it with
//! `?rejected=` and carries on with the one renewed token.

use std::sync::Arc;

use forcelink_auth::UrlPolicy;
use forcelink_client::{BrokerTokens, Client};

use crate::{harness, serve};

#[tokio::test]
async fn a_client_on_broker_tokens_heals_after_the_org_ends_its_sessions() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    let provider = Arc::new(
        BrokerTokens::new(&base, "pg", h.token_key.clone()).unwrap().url_policy(UrlPolicy::new().allow_any_loopback()),
    );
    let client = Client::builder(provider.clone()).url_policy(UrlPolicy::new().allow_any_loopback()).build().unwrap();
    client.limits().send().await.unwrap();
    assert_eq!(h.pg.control.token_requests("client_credentials").await, 1);
    h.pg.control.expire_sessions().await;
    // Refused with 401 INVALID_SESSION_ID, reported to the broker, renewed once, sent again.
    client.limits().send().await.unwrap();
    client.limits().send().await.unwrap();
    assert_eq!(h.pg.control.token_requests("client_credentials").await, 2);
    h.state.flush_audit().await;
    let audit = h.store.audit(Some(&forcelink_auth::ConnectionId::new("pg")), 20).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "token.rejected" && e.detail.as_deref().unwrap_or("").contains("renewed")),
        "{audit:?}"
    );

    // The API key never travels in clear off loopback.
    let err = BrokerTokens::new("http://broker.example.com", "pg", "flk_x").unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
}
