//! Events about connections, as webhook deliveries. An event is `{"type", "timestamp", "data":
//! {"connection", …}}` (the Standard Webhooks payload shape); each webhook that wants it
//! ([`forcelink_store::WebhookRecord::wants`]) gets its own delivery in the store's outbox, with
//! a message id (`msg_…`) that stays the same on every attempt. Nothing here sends: the sender
//! ([`crate::webhooks`]) does, at least once.
//!
//! Event types: `connection.created`, `connection.updated`, `connection.deleted`,
//! `connection.unhealthy`, `connection.recovered`, `connection.reauthorization_required`,
//! `token.renewal_failed`, `approvals.near_limit`, `limits.near`.

use std::time::SystemTime;

use forcelink_store::NewDelivery;
use serde_json::{Map, Value, json};

use crate::error::ErrorResponse;
use crate::ids::random_id;
use crate::state::BrokerState;

/// Every event type the broker sends.
pub(crate) const EVENT_TYPES: [&str; 9] = [
    "connection.created",
    "connection.updated",
    "connection.deleted",
    "connection.unhealthy",
    "connection.recovered",
    "connection.reauthorization_required",
    "token.renewal_failed",
    "approvals.near_limit",
    "limits.near",
];

/// An event to send: its type and its `data` (the connection is added).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub kind: &'static str,
    pub data: Map<String, Value>,
}

impl Event {
    pub(crate) fn new(kind: &'static str, data: Value) -> Self {
        let data = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Self { kind, data }
    }
}

/// Whether `pattern` names event types: an exact type, `*`, or `prefix.*` of a known type.
pub(crate) fn valid_pattern(pattern: &str) -> bool {
    pattern == "*"
        || EVENT_TYPES.contains(&pattern)
        || pattern.strip_suffix(".*").is_some_and(|pre| EVENT_TYPES.iter().any(|t| t.split('.').next() == Some(pre)))
}

/// The body of one event.
pub(crate) fn body(event: &Event, connection: &str, at: SystemTime) -> String {
    let mut data = Map::new();
    data.insert("connection".to_owned(), Value::String(connection.to_owned()));
    for (k, v) in &event.data {
        data.insert(k.clone(), v.clone());
    }
    json!({ "type": event.kind, "timestamp": crate::time::rfc3339_millis(at), "data": data }).to_string()
}

/// The deliveries of `events` about `connection`: one per (event, webhook that wants it).
pub(crate) async fn deliveries(
    state: &BrokerState,
    connection: &str,
    events: &[Event],
) -> Result<Vec<NewDelivery>, ErrorResponse> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let hooks = state.store().webhooks().await?;
    let at = state.now();
    let mut out = Vec::new();
    for event in events {
        let body = body(event, connection, at);
        for hook in hooks.iter().filter(|h| h.wants(event.kind, connection)) {
            out.push(NewDelivery {
                id: format!("msg_{}", random_id(18)),
                target: hook.id.clone(),
                event_type: event.kind.to_owned(),
                connection: connection.to_owned(),
                body: body.clone(),
                created_at: at,
            });
        }
    }
    Ok(out)
}

/// Enqueues `events` about `connection` for every webhook that wants them and wakes the sender.
/// A store failure is logged: the change the event reports has already happened.
pub(crate) async fn emit(state: &BrokerState, connection: &str, events: &[Event]) {
    let result = match deliveries(state, connection, events).await {
        Ok(list) if list.is_empty() => return,
        Ok(list) => state.store().enqueue_deliveries(&list).await.map_err(ErrorResponse::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => state.wake_outbox(),
        Err(e) => tracing::warn!(connection, "could not enqueue webhook deliveries: {}", e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_known_types_or_families() {
        for ok in ["*", "connection.*", "token.*", "limits.near", "connection.recovered"] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in ["", "connection", "nothing.*", "connection.exploded", "*.*", "connection.**"] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn a_body_has_the_type_the_time_and_the_connection_first() {
        let e = Event::new("limits.near", json!({"limit": "DailyApiRequests", "used": 12001, "max": 15000}));
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_250);
        let v: Value = serde_json::from_str(&body(&e, "acme", at)).unwrap();
        assert_eq!(v["type"], "limits.near");
        assert_eq!(v["timestamp"], "2025-12-06T05:46:40.250Z");
        assert_eq!(v["data"]["connection"], "acme");
        assert_eq!(v["data"]["used"], 12001);
    }
}
