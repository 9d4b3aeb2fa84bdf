//! One consumer per subscription across replicas. Every replica looks at the subscriptions every
//! [`SUPERVISE_EVERY`]; for one that is not paused and has no consumer here, it tries the store's
//! work lease `sub:{id}` ([`BrokerConfig::event_lease`](crate::BrokerConfig)). The holder runs the
//! consumer and renews the lease at a third of its length; a holder that dies stops renewing, and
//! another replica takes the lease when it ends and resumes from the stored position.
//!
//! The consumer reads the topic through the connection's Pub/Sub client (resubscribing with a
//! fresh token, keep-alive watchdog: [`forcelink_client::pubsub`]), from its position (the
//! checkpoint named by the subscription id) or, the first time, from the subscription's `replay`.
//! Each event that passes the filter (and echo suppression) is written to the outbox before the
//! next is read, and the position is saved when the next is asked for (and at keep-alives):
//! after a crash the events since the last saved position are read again and enqueued again
//! under the same ids, which the outbox ignores. Nothing is lost and the receiver de-duplicates
//! what a crash between the two writes repeats. Deliveries run beside it ([`super::deliver`]),
//! so a receiver that is down only makes the outbox grow (in the store, not in memory).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::store::ConnectionId;
use forcelink_client::pubsub::{Checkpoint, PubSubClient, ReplayFrom, ReplayId};
use forcelink_store::{CheckpointKey, NewDelivery, SubscriptionRecord};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, watch};

use super::spec::{self, Replay, Spec};
use super::status::{Failed, pubsub_failure, report};
use super::{deliver, snapshot};
use crate::state::BrokerState;

/// How often a replica looks for subscriptions without a consumer. 1 s.
pub(crate) const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// The first pause after a consumer failed; doubles to [`MAX_RESTART_PAUSE`].
const FIRST_RESTART_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between consumer restarts. 60 s.
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(60);
/// How often a running consumer re-reads its subscription (paused? deleted?). 1 s.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// The lease name of a subscription's consumer.
pub(crate) fn lease_name(id: &str) -> String {
    format!("sub:{id}")
}

/// Runs consumers for the subscriptions this replica holds, until the broker stops.
pub(crate) async fn supervise(state: BrokerState) {
    // Dropped with this task (the broker stopping, or a test killing it): the consumers too.
    let mut running: HashMap<String, AbortOnDrop> = HashMap::new();
    loop {
        running.retain(|_, task| task.0.as_ref().is_some_and(|t| !t.is_finished()));
        match state.store().subscriptions().await {
            Ok(subs) => {
                for sub in subs {
                    if sub.paused || running.contains_key(&sub.id) {
                        continue;
                    }
                    let lease = state.config().event_lease;
                    match state.store().try_work_lease(&lease_name(&sub.id), state.holder(), lease).await {
                        Ok(true) => {
                            let id = sub.id.clone();
                            running.insert(id.clone(), AbortOnDrop(Some(tokio::spawn(hold(state.clone(), id)))));
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(subscription = %sub.id, "taking a consumer lease: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("reading subscriptions: {e}"),
        }
        tokio::time::sleep(SUPERVISE_EVERY).await;
    }
}

/// While this replica holds the lease of subscription `id`: runs its consumer and deliveries,
/// restarting the consumer after failures; returns when the lease is lost or the subscription
/// is paused or deleted (and then lets the lease go).
async fn hold(state: BrokerState, id: String) {
    let lease = state.config().event_lease;
    let name = lease_name(&id);
    let wake = Arc::new(Notify::new());
    let stop = Arc::new(Notify::new());
    let mut deliveries =
        AbortOnDrop(Some(tokio::spawn(deliver::run(state.clone(), id.clone(), wake.clone(), stop.clone()))));
    let mut renew = tokio::time::interval(lease / 3);
    renew.tick().await;
    let mut pause = FIRST_RESTART_PAUSE;
    'run: loop {
        let consumer = consume(&state, &id, &wake);
        tokio::pin!(consumer);
        let ended = loop {
            tokio::select! {
                ended = &mut consumer => break ended,
                _ = renew.tick() => {
                    if !matches!(state.store().try_work_lease(&name, state.holder(), lease).await, Ok(true)) {
                        tracing::info!(subscription = %id, "consumer lease lost: stopping here");
                        break 'run;
                    }
                }
            }
        };
        match ended {
            Ok(Ended::Gone) => {
                report(&state, &id, |r| r.phase = "stopped".into()).await;
                break;
            }
            Ok(Ended::Streamed) => pause = FIRST_RESTART_PAUSE,
            Err(e) => {
                tracing::warn!(subscription = %id, "consumer: {}", e.message);
                report(&state, &id, |r| {
                    r.phase = "retrying".into();
                    r.error = Some(e.message.clone());
                    r.fix = e.fix.clone();
                })
                .await;
            }
        }
        // Keep the lease through the pause.
        let until = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                _ = renew.tick() => {
                    if !matches!(state.store().try_work_lease(&name, state.holder(), lease).await, Ok(true)) {
                        break 'run;
                    }
                }
            }
        }
        pause = (pause * 2).min(MAX_RESTART_PAUSE);
    }
    stop.notify_one();
    if let Some(d) = deliveries.0.take() {
        let _ = d.await;
    }
    let _ = state.store().release_work_lease(&name, state.holder()).await;
}

/// How a consumer run ended without an error.
enum Ended {
    /// The subscription was paused or deleted.
    Gone,
    /// The stream ended on its own; start again.
    Streamed,
}

/// The subscription's position checkpoint: the id names it.
pub(crate) fn position_key(sub: &SubscriptionRecord, spec: &Spec) -> Result<CheckpointKey, Failed> {
    CheckpointKey::new(&sub.id, &ConnectionId::new(&sub.connection), &spec.topic)
        .map_err(|e| Failed { message: e.0, fix: None })
}

/// Saves the position in the store; tells the snapshot the position is known.
#[derive(Debug)]
struct SavePosition {
    state: BrokerState,
    key: CheckpointKey,
    saved: watch::Sender<bool>,
}

impl Checkpoint for SavePosition {
    fn save<'a>(&'a self, replay_id: &'a ReplayId) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.state.store().save_checkpoint(&self.key, replay_id.as_bytes()).await.map_err(|e| e.to_string())?;
            self.saved.send_replace(true);
            Ok(())
        })
    }
}

/// The Pub/Sub client of a connection, on the broker's token cache.
pub(crate) async fn client_for(state: &BrokerState, connection: &str) -> Result<PubSubClient, Failed> {
    let entry = state.entry(connection).await?;
    PubSubClient::builder(Arc::new(entry.cache.clone()))
        .endpoint(entry.connection.pubsub_endpoint_or_default())
        .url_policy(state.transport().policy().clone())
        .clock(state.clock().clone())
        .build()
        .map_err(|e| pubsub_failure(&e))
}

/// One consumer run.
async fn consume(state: &BrokerState, id: &str, wake: &Arc<Notify>) -> Result<Ended, Failed> {
    let Some(sub) = state.store().subscription(id).await? else { return Ok(Ended::Gone) };
    if sub.paused {
        return Ok(Ended::Gone);
    }
    let spec = Spec::parse(&sub.spec)?;
    let client = client_for(state, &sub.connection).await?;
    let key = position_key(&sub, &spec)?;
    let stored = state.store().checkpoint(&key).await?;
    let from = match &stored {
        Some(c) => ReplayFrom::After(ReplayId::from_bytes(c.replay_id.clone())),
        None => match spec.replay {
            Replay::Latest => ReplayFrom::Latest,
            Replay::Earliest => ReplayFrom::Earliest,
        },
    };
    let (saved_tx, saved_rx) = watch::channel(stored.is_some());
    let hook = Arc::new(SavePosition { state: state.clone(), key, saved: saved_tx });
    let mut stream = client.subscribe_with_checkpoint(&spec.topic, from, hook);
    report(state, id, |r| {
        r.phase = if spec.snapshot.is_some() && !spec.snapshot_enqueued { "snapshot" } else { "streaming" }.into();
        r.error = None;
        r.fix = None;
    })
    .await;
    // The snapshot runs once the stream's position is saved, so no change between the two is lost.
    let snapshot_task = (spec.snapshot.is_some() && !spec.snapshot_enqueued)
        .then(|| tokio::spawn(snapshot::run(state.clone(), sub.clone(), saved_rx, wake.clone())));
    let _abort_snapshot = AbortOnDrop(snapshot_task);
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    let client_id = state.config().call_client.clone();
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(event)) => {
                    let now = state.now();
                    let keep = spec.filter.passes(&event) && !(spec.echo_suppression && spec::made_by(&event, &client_id));
                    if keep {
                        let delivery = NewDelivery {
                            id: spec::event_id(&sub.connection, &spec.topic, &event.replay_id),
                            target: sub.id.clone(),
                            event_type: "salesforce.event".to_owned(),
                            connection: sub.connection.clone(),
                            body: spec::body("salesforce.event", now, spec::event_data(&spec.topic, &event)),
                            created_at: now,
                        };
                        state.store().enqueue_deliveries(std::slice::from_ref(&delivery)).await?;
                        wake.notify_one();
                    }
                    state.events().note(id, keep, now);
                    state.metrics().events_received.inc();
                    if !keep {
                        state.metrics().events_skipped.inc();
                    }
                }
                Some(Err(e)) => return Err(pubsub_failure(&e)),
                None => return Ok(Ended::Streamed),
            },
            _ = recheck.tick() => {
                match state.store().subscription(id).await? {
                    Some(s) if !s.paused => {}
                    _ => return Ok(Ended::Gone),
                }
                if state.events().take_dirty(id) {
                    report(state, id, |_| {}).await;
                }
            }
        }
    }
}

/// Aborts a task when dropped (a consumer run that ends takes its snapshot with it; a stopped
/// supervisor its consumers; a consumer its deliveries).
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}
