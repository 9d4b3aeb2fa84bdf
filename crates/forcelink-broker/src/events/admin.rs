//! [`SubscriptionAdmin`]: event subscriptions managed by whoever holds the store (the CLI's
//! `forcelink subscription`), with the API's rules and answers, on every connection.

use std::time::SystemTime;

use forcelink_store::{ApiKeyRecord, Scopes};
use serde_json::Value;

use super::NewSubscription;
use crate::error::ErrorResponse;
use crate::state::BrokerState;

/// Event subscriptions as the store's operator manages them: the same checks and answers as
/// `/v1/subscriptions` (bodies as JSON), audited as the given actor.
#[derive(Debug, Clone)]
pub struct SubscriptionAdmin {
    state: BrokerState,
    actor: String,
    operator: ApiKeyRecord,
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl SubscriptionAdmin {
    /// Over `state`'s store; changes are audited as `actor` (e.g. `cli:alice`).
    pub fn new(state: BrokerState, actor: impl Into<String>) -> Self {
        let operator = ApiKeyRecord {
            id: "store-operator".into(),
            secret_hash: String::new(),
            label: "the store's operator".into(),
            connections: vec!["*".into()],
            capabilities: Scopes::All,
            read_only: false,
            created_at: SystemTime::UNIX_EPOCH,
            revoked_at: None,
        };
        Self { state, actor: actor.into(), operator }
    }

    /// Creates a subscription from the API's JSON body; the API's answer (with the secret).
    pub async fn create(&self, body: Value) -> Result<Value, ErrorResponse> {
        let new: NewSubscription =
            serde_json::from_value(body).map_err(|e| ErrorResponse::bad_request(format!("not a subscription: {e}")))?;
        let sub = super::create(&self.state, &self.operator, &self.actor, new).await?;
        Ok(to_json(&super::created(&self.state, &sub).await?))
    }

    /// Every subscription, as `GET /v1/subscriptions` answers.
    pub async fn list(&self) -> Result<Value, ErrorResponse> {
        Ok(to_json(&super::list(&self.state, &self.operator).await?))
    }

    /// One subscription, as `GET /v1/subscriptions/{id}` answers.
    pub async fn get(&self, id: &str) -> Result<Value, ErrorResponse> {
        let sub = super::visible_one(&self.state, &self.operator, id).await?;
        Ok(to_json(&super::view(&self.state, &sub).await?))
    }

    /// Pauses (`true`) or resumes a subscription; its view.
    pub async fn set_paused(&self, id: &str, paused: bool) -> Result<Value, ErrorResponse> {
        let sub = super::set_paused(&self.state, &self.operator, &self.actor, id, paused).await?;
        Ok(to_json(&super::view(&self.state, &sub).await?))
    }

    /// Deletes a subscription, its pending deliveries and its checkpoints.
    pub async fn delete(&self, id: &str) -> Result<(), ErrorResponse> {
        super::delete(&self.state, &self.operator, &self.actor, id).await
    }
}
