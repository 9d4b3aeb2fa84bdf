//! A subscription's deliveries, in order. Its consumer's replica claims the subscription's
//! outbox rows oldest first and POSTs them one at a time (Standard Webhooks signed): the next
//! row goes only after the receiver accepted this one, so the events of a record arrive in the
//! order Salesforce committed them. A refused row is tried again after a pause that starts at
//! [`BrokerConfig::event_retry`](crate::BrokerConfig) and doubles to [`MAX_RETRY_PAUSE`], so a
//! receiver that comes back after an hour gets everything within minutes; a row refused for
//! [`RETRY_FOR`] (Salesforce keeps events 72 hours) is marked failed and the rest go on.
//!
//! Snapshot rows (target `{id}.snapshot`) go first; streamed events (target `{id}`) wait until
//! every snapshot row is in the outbox and delivered. The checkpoint shown as the
//! subscription's (`{id}.acked`) advances only after the receiver's 2xx.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;
use forcelink_client::pubsub::ReplayId;
use forcelink_store::{CheckpointKey, Delivery, DeliveryOutcome, SubscriptionRecord};
use tokio::sync::Notify;

use super::spec::Spec;
use crate::state::BrokerState;
use crate::webhooks::sender::{PostError, post};

/// Rows claimed at once. 64.
const BATCH: usize = 64;
/// Longest pause between attempts of one row. 5 minutes.
pub(crate) const MAX_RETRY_PAUSE: Duration = Duration::from_secs(300);
/// A row is retried this long after it was enqueued, then failed. 72 hours.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(72 * 3600);
/// The longest wait for new rows when nothing wakes the loop. 1 s.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The outbox target of a subscription's snapshot rows.
pub(crate) fn snapshot_target(id: &str) -> String {
    format!("{id}.snapshot")
}

/// The checkpoint name of what the receiver accepted.
pub(crate) fn acked_name(id: &str) -> String {
    format!("{id}.acked")
}

/// The pause after attempt `attempts` (1-based) of a row.
pub(crate) fn pause(first: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    first.saturating_mul(factor).min(MAX_RETRY_PAUSE)
}

/// Delivers `sub`'s rows until it is paused or deleted or `stop` is notified; `wake` is notified
/// when rows were enqueued.
pub(crate) async fn run(state: BrokerState, id: String, wake: Arc<Notify>, stop: Arc<Notify>) {
    loop {
        let outcome = tokio::select! {
            r = step(&state, &id) => r,
            () = stop.notified() => return,
        };
        match outcome {
            Ok(Step::Sent) => continue,
            Ok(Step::Gone) => return,
            Ok(Step::WaitUntil(at)) => {
                let wait = at.duration_since(state.now()).unwrap_or_default().min(IDLE_POLL);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = wake.notified() => {}
                    () = stop.notified() => return,
                }
            }
            Err(e) => {
                tracing::warn!(subscription = %id, "event deliveries: {e}");
                tokio::select! {
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    () = stop.notified() => return,
                }
            }
        }
    }
}

enum Step {
    /// Something was sent (or failed for good): look again at once.
    Sent,
    /// Nothing to send before this time.
    WaitUntil(SystemTime),
    /// The subscription is paused or deleted.
    Gone,
}

async fn step(state: &BrokerState, id: &str) -> Result<Step, StoreError> {
    let Some(sub) = state.store().subscription(id).await? else { return Ok(Step::Gone) };
    if sub.paused {
        return Ok(Step::Gone);
    }
    let spec = match Spec::parse(&sub.spec) {
        Ok(s) => s,
        Err(e) => return Err(StoreError::Corrupt(e.message)),
    };
    let now = state.now();
    let idle = Step::WaitUntil(now + IDLE_POLL);
    // Claims last as long as the consumer's lease: only its holder delivers, and the rows a dead
    // holder claimed are free for the next one as soon as the work is.
    let claim = state.config().event_lease;
    let target = if spec.snapshot.is_some() {
        let snap = snapshot_target(id);
        let rows = state.store().claim_target_deliveries(&snap, state.holder(), now, BATCH, claim).await?;
        if !rows.is_empty() {
            return send_in_order(state, &sub, &spec, rows).await;
        }
        if !spec.snapshot_enqueued {
            // Stream events wait for the whole snapshot.
            return Ok(idle);
        }
        id.to_owned()
    } else {
        id.to_owned()
    };
    let rows = state.store().claim_target_deliveries(&target, state.holder(), now, BATCH, claim).await?;
    if rows.is_empty() {
        return Ok(idle);
    }
    send_in_order(state, &sub, &spec, rows).await
}

/// Sends `rows` in order, stopping at the first that is not yet due or is refused.
async fn send_in_order(
    state: &BrokerState,
    sub: &SubscriptionRecord,
    spec: &Spec,
    rows: Vec<Delivery>,
) -> Result<Step, StoreError> {
    let first_pause = state.config().event_retry;
    for d in rows {
        let now = state.now();
        if d.next_attempt_at > now {
            return Ok(Step::WaitUntil(d.next_attempt_at));
        }
        let outcome = match post(state, &sub.url, sub.secret.secret(), &d).await {
            Ok(status) => DeliveryOutcome::Delivered { at: state.now(), status },
            Err(PostError::Damaged(error)) => DeliveryOutcome::Failed { at: now, status: None, error },
            Err(PostError::Refused { status, error }) => {
                let at = state.now();
                let next = at + pause(first_pause, d.attempts + 1);
                if next > d.created_at + RETRY_FOR {
                    DeliveryOutcome::Failed { at, status, error: format!("{error}; retried for 72 hours, given up") }
                } else {
                    DeliveryOutcome::Retry { at, status, error, next_attempt_at: next }
                }
            }
        };
        if !state.store().finish_delivery(d.seq, state.holder(), &outcome).await? {
            // The claim lapsed (this replica stalled): whoever holds it now goes on.
            return Ok(Step::Sent);
        }
        match outcome {
            DeliveryOutcome::Delivered { .. } => {
                state.metrics().events_delivered.inc();
                if d.target == sub.id
                    && let Some(replay) = replay_of(&d.body)
                {
                    let key =
                        CheckpointKey::new(&acked_name(&sub.id), &ConnectionId::new(&sub.connection), &spec.topic)
                            .map_err(|e| StoreError::Corrupt(e.0))?;
                    state.store().save_checkpoint(&key, replay.as_bytes()).await?;
                }
            }
            DeliveryOutcome::Retry { next_attempt_at, .. } => return Ok(Step::WaitUntil(next_attempt_at)),
            DeliveryOutcome::Failed { .. } => {}
        }
    }
    Ok(Step::Sent)
}

/// The replay id in a `salesforce.event` body.
fn replay_of(body: &str) -> Option<ReplayId> {
    #[derive(serde::Deserialize)]
    struct Body {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        replay_id: String,
    }
    let b: Body = serde_json::from_str(body).ok()?;
    ReplayId::from_base64(&b.data.replay_id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_the_first_and_stop_at_five_minutes() {
        let first = Duration::from_secs(1);
        assert_eq!(pause(first, 1), Duration::from_secs(1));
        assert_eq!(pause(first, 2), Duration::from_secs(2));
        assert_eq!(pause(first, 5), Duration::from_secs(16));
        assert_eq!(pause(first, 40), MAX_RETRY_PAUSE);
    }

    #[test]
    fn the_replay_id_is_read_from_an_event_body() {
        let body =
            r#"{"type":"salesforce.event","timestamp":"x","data":{"topic":"/data/X","replay_id":"AAAAAAAAAAk="}}"#;
        assert_eq!(replay_of(body).unwrap().as_bytes(), &[0, 0, 0, 0, 0, 0, 0, 9]);
        assert!(replay_of(r#"{"type":"salesforce.snapshot","data":{}}"#).is_none());
    }
}
