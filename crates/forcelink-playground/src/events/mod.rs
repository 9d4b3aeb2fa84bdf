//! The event bus behind the Pub/Sub API: Change Data Capture for record writes and platform
//! events. The record code appends to it; the gRPC service (`pubsub`) and the control API read
//! and arm it.
//!
//! - [`EventBus`]: retained events in replay order (72 h on the playground clock), the wake-up
//!   signal for open streams, settings, faults and counters.
//! - `schemas`: the Avro schema of each topic (one per sObject's change events, one per platform
//!   event) with stable schema ids; `cdc`: record changes → change events.
//!
//! Topics: `/data/ChangeEvents` (every object), `/data/<Object>ChangeEvent`
//! (`/data/Invoice__ChangeEvent` for `Invoice__c`) and `/event/<Name>__e`.

mod avro;
pub(crate) mod cdc;
pub(crate) mod schemas;

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

pub(crate) use cdc::{Change, ChangeKind, api_origin, emit};

use schemas::Catalog;

/// Salesforce keeps events for 72 hours (Pub/Sub API guide, "Event Message Durability").
pub(crate) const RETENTION_MS: i64 = 72 * 60 * 60 * 1000;
/// At most this many events are kept, whatever their age, so memory stays bounded under load.
pub(crate) const MAX_RETAINED_EVENTS: usize = 1_000_000;
/// Keep-alive interval: Salesforce sends an empty `FetchResponse` "within 270 seconds".
/// Settable through `PATCH /__playground/pubsub/settings` (`keepalive_ms`).
pub(crate) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(270);
/// Changes one transaction may make before the rest become overflow events: Salesforce's
/// 100,000 (CDC guide, "Overflow Events"). Settable (`overflow_threshold`) so tests can use less.
pub(crate) const DEFAULT_OVERFLOW_THRESHOLD: u64 = 100_000;

/// Which events a topic carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topic {
    /// `/data/ChangeEvents`.
    AllChanges,
    /// `/data/<Object>ChangeEvent`, by sObject index.
    Changes(usize),
    /// `/event/<Name>__e`.
    Platform(String),
}

/// One retained event.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub(crate) replay: u64,
    pub(crate) at_ms: i64,
    /// sObject index of a change event; `None` for a platform event.
    pub(crate) object: Option<usize>,
    /// Topic name of a platform event.
    pub(crate) platform_topic: Option<String>,
    pub(crate) schema_id: String,
    pub(crate) id: String,
    pub(crate) payload: Vec<u8>,
}

impl StoredEvent {
    fn on(&self, topic: &Topic) -> bool {
        match topic {
            Topic::AllChanges => self.object.is_some(),
            Topic::Changes(o) => self.object == Some(*o),
            Topic::Platform(t) => self.platform_topic.as_deref() == Some(t),
        }
    }
}

/// A fault armed through the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// The next Subscribe is refused with `…fetch.replayid.corrupted`.
    CorruptedReplayId,
    /// An open stream ends with `…service.auth.error`; its token is revoked.
    AuthError,
    /// An open stream ends abruptly (`UNAVAILABLE`).
    DropStream,
    /// The next responses are held back by `delay_ms`.
    Delay,
    /// The next change events are published as gap events (`GAP_CREATE`…): header only.
    Gap,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ArmedFault {
    pub(crate) kind: FaultKind,
    pub(crate) remaining: u32,
    pub(crate) delay_ms: u64,
}

/// Counters the control API reports.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct BusStats {
    pub(crate) subscribe_calls: u64,
    pub(crate) open_streams: u64,
    /// The most events any stream had requested and not yet received.
    pub(crate) max_outstanding: i32,
    pub(crate) events_published: u64,
    pub(crate) events_delivered: u64,
    /// Requests whose `num_requested` would have exceeded the Pub/Sub service's `MAX_OUTSTANDING`.
    pub(crate) clamped_requests: u64,
}

#[derive(Debug)]
pub(crate) struct BusState {
    pub(crate) events: VecDeque<Arc<StoredEvent>>,
    /// The last replay id handed out (0: none yet).
    pub(crate) last_replay: u64,
    pub(crate) commit_number: i64,
    pub(crate) keepalive: Duration,
    /// Changes per transaction before overflow events ([`DEFAULT_OVERFLOW_THRESHOLD`]).
    pub(crate) overflow_threshold: u64,
    pub(crate) faults: Vec<ArmedFault>,
    pub(crate) stats: BusStats,
}

/// Events, settings and faults of the Pub/Sub API; a cheap-clone handle.
#[derive(Debug, Clone)]
pub(crate) struct EventBus(Arc<BusInner>);

#[derive(Debug)]
pub(crate) struct BusInner {
    pub(crate) catalog: Catalog,
    /// Guards the retained events, settings, faults and counters; never held across `.await`.
    state: Mutex<BusState>,
    /// Bumped on every new event and armed fault: open streams wake up and look.
    wake: tokio::sync::watch::Sender<u64>,
}

impl std::ops::Deref for EventBus {
    type Target = BusInner;
    fn deref(&self) -> &BusInner {
        &self.0
    }
}

impl EventBus {
    pub(crate) fn new(catalog: Catalog) -> Self {
        let (wake, _) = tokio::sync::watch::channel(0);
        Self(Arc::new(BusInner {
            catalog,
            state: Mutex::new(BusState {
                events: VecDeque::new(),
                last_replay: 0,
                commit_number: 0,
                keepalive: DEFAULT_KEEPALIVE,
                overflow_threshold: DEFAULT_OVERFLOW_THRESHOLD,
                faults: Vec::new(),
                stats: BusStats::default(),
            }),
            wake,
        }))
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, BusState> {
        self.0.state.lock()
    }

    pub(crate) fn subscribe_wake(&self) -> tokio::sync::watch::Receiver<u64> {
        self.wake.subscribe()
    }

    pub(crate) fn wake_all(&self) {
        self.wake.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The topic a name stands for, if this org has it.
    pub(crate) fn topic(&self, name: &str) -> Option<Topic> {
        if name == "/data/ChangeEvents" {
            return Some(Topic::AllChanges);
        }
        if let Some(o) = self.catalog.change_topics.get(name) {
            return Some(Topic::Changes(*o));
        }
        self.catalog.platform.contains_key(name).then(|| Topic::Platform(name.to_owned()))
    }

    /// Appends events (already encoded) and wakes the streams; returns their replay ids.
    pub(crate) fn append(&self, now_ms: i64, events: Vec<NewEvent>) -> Vec<u64> {
        let mut ids = Vec::with_capacity(events.len());
        {
            let mut st = self.state();
            for e in events {
                st.last_replay += 1;
                let replay = st.last_replay;
                ids.push(replay);
                st.events.push_back(Arc::new(StoredEvent {
                    replay,
                    at_ms: now_ms,
                    object: e.object,
                    platform_topic: e.platform_topic,
                    schema_id: e.schema_id,
                    id: e.id,
                    payload: e.payload,
                }));
                st.stats.events_published += 1;
            }
            while st.events.len() > MAX_RETAINED_EVENTS {
                st.events.pop_front();
            }
        }
        self.wake_all();
        ids
    }

    /// Up to `n` events on `topic` after replay id `cursor`, dropping expired ones first.
    pub(crate) fn after(&self, cursor: u64, topic: &Topic, n: usize, now_ms: i64) -> Vec<Arc<StoredEvent>> {
        let mut st = self.state();
        st.prune(now_ms);
        let start = st.events.partition_point(|e| e.replay <= cursor);
        st.events.range(start..).filter(|e| e.on(topic)).take(n).cloned().collect()
    }

    /// The position a keep-alive may report to a stream of `topic` at `cursor`: the bus's latest
    /// replay id when no event of the topic waits after `cursor` (read under one lock, so an
    /// event published meanwhile is never skipped), `None` when one does (deliver it first).
    pub(crate) fn quiet_position(&self, cursor: u64, topic: &Topic) -> Option<u64> {
        let st = self.state();
        let start = st.events.partition_point(|e| e.replay <= cursor);
        if st.events.range(start..).any(|e| e.on(topic)) { None } else { Some(st.last_replay.max(cursor)) }
    }

    /// Takes one armed fault of `kind`, if any.
    pub(crate) fn take_fault(&self, kind: FaultKind) -> Option<ArmedFault> {
        let mut st = self.state();
        let i = st.faults.iter().position(|f| f.kind == kind && f.remaining > 0)?;
        st.faults[i].remaining -= 1;
        let f = st.faults[i].clone();
        if st.faults[i].remaining == 0 {
            st.faults.remove(i);
        }
        Some(f)
    }

    /// Back to the seed: no events, default settings, no faults.
    pub(crate) fn reset(&self) {
        {
            let mut st = self.state();
            st.events.clear();
            st.keepalive = DEFAULT_KEEPALIVE;
            st.overflow_threshold = DEFAULT_OVERFLOW_THRESHOLD;
            st.faults.clear();
            st.stats = BusStats { open_streams: st.stats.open_streams, ..BusStats::default() };
        }
        self.wake_all();
    }
}

impl BusState {
    /// Drops events older than the retention window.
    pub(crate) fn prune(&mut self, now_ms: i64) {
        while self.events.front().is_some_and(|e| e.at_ms < now_ms.saturating_sub(RETENTION_MS)) {
            self.events.pop_front();
        }
    }

    /// The replay id just before the oldest retained event (where EARLIEST starts).
    pub(crate) fn earliest_cursor(&self) -> u64 {
        self.events.front().map_or(self.last_replay, |e| e.replay - 1)
    }
}

/// An event to append.
#[derive(Debug)]
pub(crate) struct NewEvent {
    pub(crate) object: Option<usize>,
    pub(crate) platform_topic: Option<String>,
    pub(crate) schema_id: String,
    pub(crate) id: String,
    pub(crate) payload: Vec<u8>,
}

/// Replay ids on the wire: 8-byte big-endian integers.
pub(crate) fn replay_bytes(replay: u64) -> Vec<u8> {
    replay.to_be_bytes().to_vec()
}

/// A random UUID (version 4) as text, for event ids, rpc ids and transaction keys.
pub(crate) fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
