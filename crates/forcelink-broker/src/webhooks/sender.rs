//! The webhook sender: claims due deliveries from the store's outbox (a claim lasts
//! [`CLAIM_LEASE`]; a sender that dies loses its claims when they lapse, and another sends those
//! rows again), POSTs each signed to its webhook, and records the outcome: delivered on 2xx;
//! otherwise tried again on [`RETRY_BACKOFF`] until [`RETRY_FOR`] after the event, then failed
//! (visible in the API and on the page, and retried by hand). At least once: a receiver must
//! de-duplicate by `webhook-id`, which is the same on every attempt.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use forcelink_auth::backoff::{Backoff, Jitter};
use forcelink_store::{Delivery, DeliveryOutcome, WebhookRecord};
use futures_util::StreamExt;

use super::sign::signature;
use crate::state::BrokerState;

/// How long a claim on a delivery lasts. 60 s: longer than one attempt (15 s timeout).
pub(crate) const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// Deliveries are retried for this long after the event. 24 hours.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// The wait before attempt n+1: 5 s doubling to 1 hour, equal jitter (so about 17 attempts in a day).
pub(crate) const RETRY_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(5),
    max_delay: Duration::from_secs(3600),
    jitter: Jitter::Equal,
    max_retries: None,
    budget: Some(RETRY_FOR),
    max_retry_after: Duration::from_secs(3600),
};
/// Deliveries claimed at once. 64.
const CLAIM_BATCH: usize = 64;
/// Deliveries sent at once by one replica. 16.
const CONCURRENT_SENDS: usize = 16;
/// Longest error text kept with a delivery. 300 characters.
const MAX_ERROR_CHARS: usize = 300;
/// The wait between looks at the outbox when nothing wakes the sender. 1 s.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Sends due deliveries until the broker stops.
pub(crate) async fn run(state: BrokerState) {
    loop {
        match send_due(&state).await {
            // More may be due at once: go on without waiting.
            Ok(n) if n >= CLAIM_BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!("webhook deliveries: {e}"),
        }
        // Woken by a local enqueue, or a look every second (deliveries enqueued by other
        // replicas, retries coming due).
        let _ = tokio::time::timeout(IDLE_POLL, state.outbox_woken()).await;
    }
}

/// Claims and sends one batch of due deliveries; how many were claimed.
pub(crate) async fn send_due(state: &BrokerState) -> Result<usize, forcelink_auth::error::StoreError> {
    let claimed = state.store().claim_deliveries(state.holder(), state.now(), CLAIM_BATCH, CLAIM_LEASE).await?;
    let n = claimed.len();
    if n == 0 {
        return Ok(0);
    }
    let mut hooks: HashMap<String, Option<WebhookRecord>> = HashMap::new();
    for d in &claimed {
        if !hooks.contains_key(&d.target) {
            hooks.insert(d.target.clone(), state.store().webhook(&d.target).await?);
        }
    }
    futures_util::stream::iter(claimed)
        .map(|d| {
            let hook = hooks.get(&d.target).cloned().flatten();
            async move {
                let outcome = attempt(state, hook.as_ref(), &d).await;
                if let Err(e) = state.store().finish_delivery(d.seq, state.holder(), &outcome).await {
                    tracing::warn!(delivery = %d.id, "recording a delivery attempt: {e}");
                }
            }
        })
        .buffer_unordered(CONCURRENT_SENDS)
        .collect::<Vec<()>>()
        .await;
    Ok(n)
}

/// When to try `d` again after a failed attempt, or `None` when its day is over.
pub(crate) fn next_attempt(d: &Delivery, at: SystemTime) -> Option<SystemTime> {
    let next = at + RETRY_BACKOFF.delay(d.attempts);
    (next <= d.created_at + RETRY_FOR).then_some(next)
}

fn clip(text: String) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        text
    } else {
        text.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…"
    }
}

/// One attempt.
async fn attempt(state: &BrokerState, hook: Option<&WebhookRecord>, d: &Delivery) -> DeliveryOutcome {
    let at = state.now();
    let Some(hook) = hook else {
        return DeliveryOutcome::Failed { at, status: None, error: "the webhook was deleted".to_owned() };
    };
    let (status, error) = match post(state, &hook.url, hook.secret.secret(), d).await {
        Ok(status) => return DeliveryOutcome::Delivered { at, status },
        Err(PostError::Refused { status, error }) => (status, error),
        Err(PostError::Damaged(error)) => return DeliveryOutcome::Failed { at, status: None, error },
    };
    let retry_delivery = Delivery { attempts: d.attempts, ..d.clone() };
    match next_attempt(&retry_delivery, at) {
        Some(next_attempt_at) => DeliveryOutcome::Retry { at, status, error, next_attempt_at },
        None => DeliveryOutcome::Failed { at, status, error: format!("{error}; retried for a day, given up") },
    }
}

/// Why a POST did not deliver.
pub(crate) enum PostError {
    /// The receiver answered non-2xx (`status`) or could not be reached; worth retrying.
    Refused { status: Option<u16>, error: String },
    /// The secret cannot sign; never worth retrying.
    Damaged(String),
}

/// POSTs `d` to `url`, signed with `secret` (Standard Webhooks headers): the 2xx status, or why not.
pub(crate) async fn post(state: &BrokerState, url: &str, secret: &str, d: &Delivery) -> Result<u16, PostError> {
    let timestamp = crate::time::epoch(state.now());
    let Some(sig) = signature(secret, &d.id, timestamp, &d.body) else {
        return Err(PostError::Damaged("the signing secret is damaged".to_owned()));
    };
    let result = state
        .webhook_http()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sig)
        .header("user-agent", concat!("forcelink-broker/", env!("CARGO_PKG_VERSION")))
        .body(d.body.clone())
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
        Ok(resp) => Err(PostError::Refused {
            status: Some(resp.status().as_u16()),
            error: format!("the receiver answered HTTP {}", resp.status().as_u16()),
        }),
        // reqwest's text names the URL without its query; a receiver URL holds no secret.
        Err(e) => Err(PostError::Refused { status: None, error: clip(format!("could not deliver: {e}")) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forcelink_store::DeliveryState;

    fn delivery(attempts: u32) -> Delivery {
        Delivery {
            seq: 1,
            id: "msg_1".into(),
            target: "wh_1".into(),
            event_type: "connection.created".into(),
            connection: "acme".into(),
            body: "{}".into(),
            created_at: SystemTime::UNIX_EPOCH,
            state: DeliveryState::Pending,
            attempts,
            next_attempt_at: SystemTime::UNIX_EPOCH,
            last_attempt_at: None,
            last_status: None,
            last_error: None,
            delivered_at: None,
        }
    }

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        let start = SystemTime::UNIX_EPOCH;
        let first = next_attempt(&delivery(0), start).unwrap();
        let wait = first.duration_since(start).unwrap();
        assert!(wait >= Duration::from_millis(2500) && wait <= Duration::from_secs(5), "{wait:?}");
        let later = next_attempt(&delivery(12), start).unwrap().duration_since(start).unwrap();
        assert!(later >= Duration::from_secs(1800) && later <= Duration::from_secs(3600), "{later:?}");
        assert_eq!(next_attempt(&delivery(3), start + RETRY_FOR - Duration::from_secs(1)), None);
    }
}
