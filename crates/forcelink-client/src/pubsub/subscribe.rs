//! [`Subscription`]: a Subscribe stream kept alive.
//!
//! - Flow control: asks for `batch_size` events (≤ 100) and tops up when half were delivered,
//!   so no more than `batch_size` are ever outstanding.
//! - Keep-alive watchdog: a stream silent for longer than `keepalive_timeout` is torn down and
//!   resubscribed (Salesforce's keep-alives sometimes never come; .NET client reports).
//! - Resubscription from the last replay id (an event's, or a keep-alive's `latest_replay_id`):
//!   after an auth error the exact token used is invalidated and a fresh one asked for, once
//!   per failure; dropped streams and retryable statuses back off exponentially, up to
//!   `max_resubscribes` in a row.
//! - A corrupted or invalid replay id ends the stream with its typed error: the caller
//!   decides where to start, the client never jumps to EARLIEST or LATEST on its own.
//! - Checkpoints: an event's replay id is given to the [`Checkpoint`] when the caller asks
//!   for the next event, i.e. after it handled this one, so a restart repeats at most the
//!   event being handled and loses none.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use forcelink_auth::secret::AccessToken;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::{Failure, classify};
use super::proto::{ConsumerEvent, FetchRequest, FetchResponse, ReplayPreset};
use super::{Event, MAX_RESUBSCRIBE_BACKOFF, PubSubClient, PubSubError, ReplayFrom, ReplayId};

/// Where a subscription's progress is saved (a file, a database row).
pub trait Checkpoint: Send + Sync + std::fmt::Debug {
    /// Saves `replay_id` as the point to resume after. An error stops the subscription.
    fn save<'a>(&'a self, replay_id: &'a ReplayId) -> BoxFuture<'a, Result<(), String>>;
}

/// Counters of one subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionStats {
    /// Subscribe calls made (the first one included).
    pub subscribes: u64,
    /// Events handed to the caller.
    pub events: u64,
    /// Empty responses (keep-alives) received.
    pub keepalives: u64,
    /// Times the watchdog tore down a silent stream.
    pub watchdog_fired: u64,
    /// Tokens invalidated after an auth error.
    pub renewals: u64,
    /// Most events requested and not yet received, as the client counted them.
    pub max_outstanding: u64,
}

#[derive(Debug, Default)]
struct Counters {
    subscribes: AtomicU64,
    events: AtomicU64,
    keepalives: AtomicU64,
    watchdog_fired: AtomicU64,
    renewals: AtomicU64,
    max_outstanding: AtomicU64,
}

/// A `Stream` of decoded events; ends after the first error it yields.
pub struct Subscription {
    stream: Pin<Box<dyn Stream<Item = Result<Event, PubSubError>> + Send>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("stats", &self.stats()).finish()
    }
}

impl Stream for Subscription {
    type Item = Result<Event, PubSubError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl Subscription {
    pub(crate) fn start(
        client: PubSubClient,
        topic: String,
        from: ReplayFrom,
        checkpoint: Option<Arc<dyn Checkpoint>>,
    ) -> Self {
        let counters = Arc::new(Counters::default());
        let state = State {
            client,
            topic,
            from,
            checkpoint,
            to_save: None,
            live: None,
            buffer: VecDeque::new(),
            failures: 0,
            renewed: false,
            counters: counters.clone(),
            done: false,
        };
        let stream = futures_util::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        });
        Self { stream: Box::pin(stream), counters }
    }

    /// Counters so far.
    pub fn stats(&self) -> SubscriptionStats {
        let c = &self.counters;
        SubscriptionStats {
            subscribes: c.subscribes.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            keepalives: c.keepalives.load(Ordering::Relaxed),
            watchdog_fired: c.watchdog_fired.load(Ordering::Relaxed),
            renewals: c.renewals.load(Ordering::Relaxed),
            max_outstanding: c.max_outstanding.load(Ordering::Relaxed),
        }
    }
}

struct Live {
    tx: mpsc::Sender<FetchRequest>,
    stream: tonic::Streaming<FetchResponse>,
    outstanding: i32,
    token: AccessToken,
}

struct State {
    client: PubSubClient,
    topic: String,
    /// Where the next (re)subscription starts: moves with every event and keep-alive.
    from: ReplayFrom,
    checkpoint: Option<Arc<dyn Checkpoint>>,
    /// The replay id of the event last handed out, saved when the caller comes back.
    to_save: Option<ReplayId>,
    live: Option<Live>,
    buffer: VecDeque<ConsumerEvent>,
    /// Failed resubscriptions since the last answer.
    failures: u32,
    /// A token was invalidated since the last answer: a second auth error is final.
    renewed: bool,
    counters: Arc<Counters>,
    done: bool,
}

impl State {
    async fn next(&mut self) -> Option<Result<Event, PubSubError>> {
        if self.done {
            return None;
        }
        if let Some(r) = self.to_save.take()
            && let Err(e) = self.save(&r).await
        {
            return self.fail(e);
        }
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                let replay = ReplayId(ev.replay_id.clone());
                return match self.client.decode(ev).await {
                    Ok(event) => {
                        self.from = ReplayFrom::After(replay.clone());
                        self.to_save = Some(replay);
                        self.counters.events.fetch_add(1, Ordering::Relaxed);
                        Some(Ok(event))
                    }
                    Err(e) => self.fail(e),
                };
            }
            if self.live.is_none() {
                match self.open().await {
                    Ok(live) => self.live = Some(live),
                    Err((failure, token)) => {
                        if let Some(e) = self.recover(failure, token).await {
                            return self.fail(e);
                        }
                        continue;
                    }
                }
            }
            let Some(live) = self.live.as_mut() else { continue };
            top_up(live, self.client.inner.batch_size, &self.counters).await;
            let timeout = self.client.inner.keepalive_timeout;
            let answer = tokio::time::timeout(timeout, live.stream.message()).await;
            let token = live.token.clone();
            match answer {
                Ok(Ok(Some(resp))) => {
                    self.failures = 0;
                    self.renewed = false;
                    live.outstanding = resp.pending_num_requested;
                    if resp.events.is_empty() {
                        self.counters.keepalives.fetch_add(1, Ordering::Relaxed);
                        if !resp.latest_replay_id.is_empty() {
                            // Everything before it was delivered: resume (and checkpoint) there.
                            let latest = ReplayId(resp.latest_replay_id);
                            self.from = ReplayFrom::After(latest.clone());
                            if let Err(e) = self.save(&latest).await {
                                return self.fail(e);
                            }
                        }
                    } else {
                        self.buffer.extend(resp.events);
                    }
                }
                Ok(Ok(None)) => {
                    self.live = None;
                    let e = PubSubError::Transport {
                        endpoint: self.client.inner.endpoint.clone(),
                        message: "the server ended the stream".into(),
                    };
                    if let Some(e) = self.recover(Failure::Retry(e), None).await {
                        return self.fail(e);
                    }
                }
                Ok(Err(status)) => {
                    self.live = None;
                    let failure = classify(&status, &self.client.inner.endpoint, self.resume_point());
                    if let Some(e) = self.recover(failure, Some(token)).await {
                        return self.fail(e);
                    }
                }
                Err(_) => {
                    self.live = None;
                    self.counters.watchdog_fired.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(topic = %self.topic, "no event or keep-alive in time: resubscribing");
                    let e = PubSubError::Silent { seconds: timeout.as_secs() };
                    if let Some(e) = self.recover(Failure::Retry(e), None).await {
                        return self.fail(e);
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: PubSubError) -> Option<Result<Event, PubSubError>> {
        self.done = true;
        self.live = None;
        Some(Err(e))
    }

    fn resume_point(&self) -> Option<&ReplayId> {
        match &self.from {
            ReplayFrom::After(r) => Some(r),
            _ => None,
        }
    }

    async fn save(&self, r: &ReplayId) -> Result<(), PubSubError> {
        match &self.checkpoint {
            Some(cp) => cp.save(r).await.map_err(PubSubError::Checkpoint),
            None => Ok(()),
        }
    }

    /// Decides what a failure means; `Some` ends the subscription with that error.
    async fn recover(&mut self, failure: Failure, token: Option<AccessToken>) -> Option<PubSubError> {
        match failure {
            Failure::Fatal(e) => Some(e),
            Failure::Auth(e) => {
                let Some(token) = token.filter(|_| !self.renewed) else { return Some(e) };
                // Exactly the token that failed; a concurrent renewal elsewhere is kept.
                tracing::debug!(token = %token.fingerprint(), "Pub/Sub auth error: renewing the token");
                self.client.inner.provider.invalidate(&token);
                self.counters.renewals.fetch_add(1, Ordering::Relaxed);
                self.renewed = true;
                None
            }
            Failure::Retry(e) => {
                self.failures += 1;
                let max = self.client.inner.max_resubscribes;
                if self.failures > max {
                    return Some(PubSubError::ResubscribeLimit { attempts: max, last: Box::new(e) });
                }
                let base = self.client.inner.backoff;
                let wait = base.saturating_mul(1 << (self.failures - 1).min(16)).min(MAX_RESUBSCRIBE_BACKOFF);
                tracing::debug!(error = %e, wait_ms = wait.as_millis() as u64, "resubscribing");
                tokio::time::sleep(wait).await;
                None
            }
        }
    }

    /// Opens a Subscribe stream from `self.from`.
    async fn open(&mut self) -> Result<Live, (Failure, Option<AccessToken>)> {
        let client = self.client.clone();
        let call = client.call().await.map_err(|e| (Failure::Fatal(e), None))?;
        let token = call.token.access_token.clone();
        let batch = client.inner.batch_size;
        let (preset, replay_id) = match &self.from {
            ReplayFrom::Latest => (ReplayPreset::Latest, Vec::new()),
            ReplayFrom::Earliest => (ReplayPreset::Earliest, Vec::new()),
            ReplayFrom::After(r) => (ReplayPreset::Custom, r.0.clone()),
        };
        let (tx, rx) = mpsc::channel(4);
        let first = FetchRequest {
            topic_name: self.topic.clone(),
            replay_preset: preset as i32,
            replay_id,
            num_requested: batch,
            auth_refresh: String::new(),
        };
        let _ = tx.send(first).await;
        let req = client.authorize(&call.token, ReceiverStream::new(rx)).map_err(|e| (Failure::Fatal(e), None))?;
        self.counters.subscribes.fetch_add(1, Ordering::Relaxed);
        self.counters.max_outstanding.fetch_max(batch as u64, Ordering::Relaxed);
        let mut grpc = call.grpc;
        match grpc.subscribe(req).await {
            Ok(resp) => Ok(Live { tx, stream: resp.into_inner(), outstanding: batch, token }),
            Err(status) => Err((classify(&status, &client.inner.endpoint, self.resume_point()), Some(token))),
        }
    }
}

/// Asks for more once half the batch arrived, keeping at most `batch` outstanding.
async fn top_up(live: &mut Live, batch: i32, counters: &Counters) {
    if live.outstanding > batch / 2 {
        return;
    }
    let more = batch - live.outstanding;
    let req = FetchRequest { num_requested: more, ..FetchRequest::default() };
    if live.tx.send(req).await.is_ok() {
        live.outstanding += more;
        counters.max_outstanding.fetch_max(live.outstanding as u64, Ordering::Relaxed);
    }
}
