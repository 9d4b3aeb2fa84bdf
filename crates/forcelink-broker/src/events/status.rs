//! How a consumer run went: [`Failed`] (what went wrong and what to do) and the consumer's
//! report, written to the store where the API and the page read it.

use forcelink_auth::error::StoreError;
use forcelink_client::pubsub::PubSubError;

use super::spec::Report;
use crate::state::BrokerState;

/// Why a consumer run failed.
pub(crate) struct Failed {
    pub message: String,
    pub fix: Option<String>,
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed { message: format!("the store failed: {e}"), fix: Some("check the store; the consumer retries".into()) }
    }
}

impl From<crate::error::ErrorResponse> for Failed {
    fn from(e: crate::error::ErrorResponse) -> Self {
        Failed { message: e.message, fix: None }
    }
}

pub(crate) fn pubsub_failure(e: &PubSubError) -> Failed {
    let fix = match e {
        PubSubError::CorruptedReplayId { .. } | PubSubError::ReplayIdInvalid { .. } => {
            "the stored position is no longer in Salesforce's 72-hour window: delete the subscription and create it \
             again (replay earliest re-reads everything kept)"
        }
        PubSubError::Unauthorized { .. } | PubSubError::Auth(_) => {
            "the connection cannot get a token Salesforce accepts: test or re-authorize the connection"
        }
        _ => "the consumer retries with a growing pause",
    };
    Failed { message: format!("Pub/Sub: {e}"), fix: Some(fix.to_owned()) }
}

/// Updates this replica's report of subscription `id`.
pub(crate) async fn report(state: &BrokerState, id: &str, change: impl FnOnce(&mut Report)) {
    let r = state.events().update(id, |r| {
        change(r);
        r.holder = state.holder().to_owned();
    });
    let text = serde_json::to_string(&r).unwrap_or_default();
    if let Err(e) = state.store().set_subscription_status(id, &text, state.now()).await {
        tracing::warn!(subscription = %id, "writing the consumer's report: {e}");
    }
}
