//! Webhooks and their durable outbox. A [`WebhookRecord`] says where events go (an https URL, or
//! an origin the operator allows) and holds the signing secret (`whsec_…`, sealed at rest). An
//! event to deliver is a [`NewDelivery`] row, written in the store before anyone tries to send
//! it, so deliveries survive restarts and crashes; a sender [claims](crate::ConnectionStore::claim_deliveries)
//! due rows under a lease (a sender that dies mid-delivery loses its claim when the lease ends,
//! and another sends the row again: at least once), then [finishes](crate::ConnectionStore::finish_delivery)
//! each as delivered, to retry at a later time, or failed.

use std::fmt;
use std::time::SystemTime;

/// Longest webhook URL accepted. 2,000 bytes.
pub const MAX_WEBHOOK_URL_LEN: usize = 2000;
/// Longest delivery body. 256 KiB.
pub const MAX_DELIVERY_BODY_LEN: usize = 256 * 1024;

/// A webhook's signing secret (`whsec_` + base64): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret. Read it only where deliveries are signed or the secret is shown once.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A webhook endpoint: where events go and which.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// `wh_` and random characters.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Event type patterns: `connection.created`, `connection.*`, `*`…
    pub events: Vec<String>,
    /// Connection names, or `*` for all.
    pub connections: Vec<String>,
    /// The signing secret, `whsec_` + base64 of the key bytes (sealed in the databases).
    pub secret: WebhookSecret,
    /// Who created it (an audit actor).
    pub created_by: String,
    /// When.
    pub created_at: SystemTime,
}

impl fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("connections", &self.connections)
            .field("secret", &"[redacted]")
            .field("created_by", &self.created_by)
            .finish()
    }
}

impl WebhookRecord {
    /// Whether an event of `event_type` about `connection` goes to this webhook: a pattern is an
    /// exact type, `*`, or a prefix ending in `.*` (`connection.*`).
    pub fn wants(&self, event_type: &str, connection: &str) -> bool {
        let type_ok = self.events.iter().any(|p| {
            p == "*"
                || p == event_type
                || p.strip_suffix(".*")
                    .is_some_and(|pre| event_type.strip_prefix(pre).is_some_and(|rest| rest.starts_with('.')))
        });
        type_ok && self.connections.iter().any(|c| c == "*" || c == connection)
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not yet accepted by the receiver; sent when due.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up on (kept failing for the whole retry period, or the webhook refused for good).
    Failed,
}

impl DeliveryState {
    /// `pending`, `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A message to deliver, as it enters the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The message id (`webhook-id`), the same on every attempt; with `target`, the row's key: a
    /// second enqueue of the same pair is ignored (so producers may enqueue idempotently).
    pub id: String,
    /// Who receives it: a webhook id (`wh_…`), or another sender's target id.
    pub target: String,
    /// The event type, e.g. `connection.unhealthy`.
    pub event_type: String,
    /// The connection it concerns (`-` for none).
    pub connection: String,
    /// The JSON body to POST, at most [`MAX_DELIVERY_BODY_LEN`] bytes (no secret, no token).
    pub body: String,
    /// When the event happened (and when the first attempt is due).
    pub created_at: SystemTime,
}

/// A delivery as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its place in the outbox: increases with every enqueue (claims go oldest first).
    pub seq: i64,
    /// The message id (`webhook-id`).
    pub id: String,
    /// The receiving webhook (or other target).
    pub target: String,
    /// The event type.
    pub event_type: String,
    /// The connection it concerns.
    pub connection: String,
    /// The JSON body.
    pub body: String,
    /// When it was enqueued.
    pub created_at: SystemTime,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending rows).
    pub next_attempt_at: SystemTime,
    /// When the last attempt was made.
    pub last_attempt_at: Option<SystemTime>,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub last_status: Option<u16>,
    /// What went wrong on the last attempt (no secret).
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub delivered_at: Option<SystemTime>,
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx at `at`.
    Delivered {
        /// When.
        at: SystemTime,
        /// The status.
        status: u16,
    },
    /// It failed; try again at `next_attempt_at`.
    Retry {
        /// When the attempt was made.
        at: SystemTime,
        /// The status, when the receiver answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt_at: SystemTime,
    },
    /// It failed and will not be tried again.
    Failed {
        /// When the attempt was made.
        at: SystemTime,
        /// The status, when the receiver answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this target's.
    pub target: Option<String>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// At most this many (newest first); 0 means 100.
    pub limit: usize,
}

impl DeliveryFilter {
    /// The limit, with 0 meaning 100.
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 { 100 } else { self.limit }
    }
}

/// The counts of a target's deliveries by state, and its latest delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting to be sent or sent again.
    pub pending: u64,
    /// Accepted by the receiver.
    pub delivered: u64,
    /// Given up on.
    pub failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &[&str], connections: &[&str]) -> WebhookRecord {
        WebhookRecord {
            id: "wh_1".into(),
            url: "https://example.com/h".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            connections: connections.iter().map(|s| s.to_string()).collect(),
            secret: WebhookSecret::new("whsec_c2VjcmV0".to_owned()),
            created_by: "t".into(),
            created_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn patterns_match_exact_types_prefixes_and_everything() {
        let h = hook(&["connection.*", "limits.near"], &["acme"]);
        assert!(h.wants("connection.created", "acme"));
        assert!(h.wants("connection.reauthorization_required", "acme"));
        assert!(h.wants("limits.near", "acme"));
        assert!(!h.wants("token.renewal_failed", "acme"));
        assert!(!h.wants("connectionx.created", "acme"));
        assert!(!h.wants("connection.created", "other"));
        assert!(hook(&["*"], &["*"]).wants("approvals.near_limit", "any"));
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let text = format!("{:?}", hook(&["*"], &["*"]));
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }
}
