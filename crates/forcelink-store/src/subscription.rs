//! Event subscriptions: the broker relays a connection's Salesforce events (a Pub/Sub topic) to a
//! receiver. A [`SubscriptionRecord`] holds where events go (a URL under the host rule), the
//! signing secret (`whsec_…`, sealed at rest like a webhook's), whether it is paused, and the
//! broker's own description of it (`spec`: topic, replay start, filter, snapshot query, echo
//! suppression) as JSON text the store keeps without reading. The consumer's latest status
//! (`status`, JSON too) is written apart from the rest, so pausing from the API and reporting
//! from the consumer never overwrite each other.
//!
//! A subscription's events wait in the outbox (see [`crate::outbox`]) under targets that start
//! with [`ORDERED_TARGET_PREFIX`]: the subscription id for streamed events, and the id with a
//! suffix for other phases (the broker uses `.snapshot`). Those rows are never claimed by
//! [`claim_deliveries`](crate::ConnectionStore::claim_deliveries) (the webhook sender's, which
//! sends in parallel); the subscription's consumer claims them in order with
//! [`claim_target_deliveries`](crate::ConnectionStore::claim_target_deliveries).

use std::fmt;
use std::time::SystemTime;

use crate::outbox::WebhookSecret;

/// Outbox targets that start with this are delivered in order by their subscription's consumer,
/// never by the webhook sender. `sub_`.
pub const ORDERED_TARGET_PREFIX: &str = "sub_";

/// Longest `spec` or `status` text accepted. 16 KiB.
pub const MAX_SUBSCRIPTION_TEXT_LEN: usize = 16 * 1024;

/// Whether `target` is an ordered (subscription) outbox target.
pub fn is_ordered_target(target: &str) -> bool {
    target.starts_with(ORDERED_TARGET_PREFIX)
}

/// A subscription as the store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// `sub_` and random characters.
    pub id: String,
    /// The connection whose events are relayed.
    pub connection: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The signing secret (sealed in the databases).
    pub secret: WebhookSecret,
    /// The broker's description (JSON, at most [`MAX_SUBSCRIPTION_TEXT_LEN`] bytes, no secret).
    pub spec: String,
    /// Paused: no consumer runs and nothing is delivered until resumed.
    pub paused: bool,
    /// The consumer's latest report (JSON, at most [`MAX_SUBSCRIPTION_TEXT_LEN`] bytes), when
    /// one was written.
    pub status: Option<String>,
    /// When the status was written.
    pub status_at: Option<SystemTime>,
    /// Who created it (an audit actor).
    pub created_by: String,
    /// When.
    pub created_at: SystemTime,
}

impl fmt::Debug for SubscriptionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionRecord")
            .field("id", &self.id)
            .field("connection", &self.connection)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("spec", &self.spec)
            .field("paused", &self.paused)
            .field("status", &self.status)
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// Refuses a `spec` or `status` text over [`MAX_SUBSCRIPTION_TEXT_LEN`] before it reaches a
/// database.
pub fn check_text(what: &str, text: &str) -> Result<(), forcelink_auth::error::StoreError> {
    if text.len() > MAX_SUBSCRIPTION_TEXT_LEN {
        return Err(forcelink_auth::error::StoreError::Unavailable(format!(
            "a subscription {what} of {} bytes exceeds the {MAX_SUBSCRIPTION_TEXT_LEN}-byte limit",
            text.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_never_shows_in_debug_and_ordered_targets_are_recognised() {
        let r = SubscriptionRecord {
            id: "sub_1".into(),
            connection: "acme".into(),
            url: "https://example.com/h".into(),
            secret: WebhookSecret::new("whsec_c2VjcmV0"),
            spec: "{}".into(),
            paused: false,
            status: None,
            status_at: None,
            created_by: "t".into(),
            created_at: SystemTime::UNIX_EPOCH,
        };
        let text = format!("{r:?}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(is_ordered_target("sub_1") && is_ordered_target("sub_1.snapshot"));
        assert!(!is_ordered_target("wh_1"));
        assert!(check_text("spec", &"x".repeat(MAX_SUBSCRIPTION_TEXT_LEN)).is_ok());
        assert!(check_text("spec", &"x".repeat(MAX_SUBSCRIPTION_TEXT_LEN + 1)).is_err());
    }
}
