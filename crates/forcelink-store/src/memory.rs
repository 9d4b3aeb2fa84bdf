//! [`MemoryConnectionStore`]: everything in process memory, for tests and in-process use. Token
//! sets, leases and approvals are forcelink-auth's [`MemoryStore`] (by delegation); this adds
//! connections, the audit log, API keys, checkpoints, webhooks, subscriptions and the outbox, and remembers which leases and approvals belong to
//! which connection so removing a connection removes them too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::Clock;
use forcelink_auth::MemoryStore;
use forcelink_auth::error::StoreError;
use forcelink_auth::store::{Approval, CasOutcome, ConnectionId, Lease, LeaseHolder, StoredTokens, TokenStore};
use forcelink_auth::token::TokenSet;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, MutexGuard};

use crate::checkpoint::{CheckpointKey, StoredCheckpoint, check_replay_id};
use crate::connection::ConnectionSpec;
use crate::ephemeral::{EphemeralKind, check_value, key_hash};
use crate::health::{ConnectionHealth, HealthWrite};
use crate::outbox::{
    Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, DeliveryState, NewDelivery, WebhookRecord,
};
use crate::registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};
use crate::rows::{check_subscription, subscription_exists};
use crate::subscription::{SubscriptionRecord, check_text, is_ordered_target};

#[derive(Debug, Default)]
struct State {
    connections: BTreeMap<ConnectionId, StoredConnection>,
    /// In the order appended.
    audit: Vec<AuditEntry>,
    api_keys: BTreeMap<String, ApiKeyRecord>,
    /// The last lease granted per connection (releasing it frees the connection's lease).
    leases: HashMap<ConnectionId, Lease>,
    /// The (user, client id) pairs holding an approval per connection.
    approvals: HashMap<ConnectionId, BTreeSet<(String, String)>>,
    /// Ordered as the databases list them: connection, name, topic.
    checkpoints: BTreeMap<CheckpointKey, StoredCheckpoint>,
    healths: BTreeMap<ConnectionId, ConnectionHealth>,
    /// Lease name → (holder, until).
    work_leases: HashMap<String, (String, SystemTime)>,
    webhooks: Vec<WebhookRecord>,
    /// Oldest first.
    subscriptions: Vec<SubscriptionRecord>,
    /// By `seq`, with the claim (holder, until) of each.
    deliveries: BTreeMap<i64, (Delivery, Option<(String, SystemTime)>)>,
    next_seq: i64,
    /// (kind, key hash) → (value, expires at).
    ephemeral: HashMap<(EphemeralKind, String), (Vec<u8>, SystemTime)>,
}

/// A cheap-clone handle; clones share one store.
#[derive(Debug, Clone)]
pub struct MemoryConnectionStore {
    tokens: MemoryStore,
    // Guards connections, the audit log, API keys and the lease/approval bookkeeping.
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

impl MemoryConnectionStore {
    /// An empty store on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { tokens: MemoryStore::new(clock.clone()), state: Arc::default(), clock }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Applies `change` to the subscription `id`; false when unknown.
    fn update_subscription(&self, id: &str, change: impl FnOnce(&mut SubscriptionRecord)) -> bool {
        self.state().subscriptions.iter_mut().find(|s| s.id == id).map(change).is_some()
    }
}

impl TokenStore for MemoryConnectionStore {
    fn load<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredTokens>, StoreError>> {
        self.tokens.load(connection)
    }

    fn compare_and_swap<'a>(
        &'a self,
        connection: &'a ConnectionId,
        expected: Option<u64>,
        set: &'a TokenSet,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        self.tokens.compare_and_swap(connection, expected, set)
    }

    fn remove<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<(), StoreError>> {
        self.tokens.remove(connection)
    }

    fn acquire_lease<'a>(
        &'a self,
        connection: &'a ConnectionId,
        holder: &'a LeaseHolder,
        ttl: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            let lease = self.tokens.acquire_lease(connection, holder, ttl, wait).await?;
            if let Some(l) = &lease {
                self.state().leases.insert(connection.clone(), l.clone());
            }
            Ok(lease)
        })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        self.tokens.release_lease(lease)
    }

    fn record_approval<'a>(&'a self, approval: &'a Approval) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        self.state()
            .approvals
            .entry(approval.connection.clone())
            .or_default()
            .insert((approval.user.clone(), approval.client_id.clone()));
        self.tokens.record_approval(approval)
    }

    fn approvals<'a>(&'a self, user: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        self.tokens.approvals(user, client_id)
    }

    fn remove_approval<'a>(
        &'a self,
        user: &'a str,
        client_id: &'a str,
        connection: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(pairs) = self.state().approvals.get_mut(connection) {
            pairs.remove(&(user.to_owned(), client_id.to_owned()));
        }
        self.tokens.remove_approval(user, client_id, connection)
    }
}

impl ConnectionStore for MemoryConnectionStore {
    fn put_connection<'a>(
        &'a self,
        name: &'a ConnectionId,
        spec: &'a ConnectionSpec,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<PutOutcome, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut st = self.state();
            let outcome = match (st.connections.get_mut(name), mode) {
                (Some(_), PutMode::Create) => PutOutcome::AlreadyExists,
                (Some(existing), PutMode::Upsert) => {
                    existing.spec = spec.clone();
                    existing.updated_at = now;
                    PutOutcome::Replaced
                }
                (None, _) => {
                    let stored =
                        StoredConnection { name: name.clone(), spec: spec.clone(), created_at: now, updated_at: now };
                    st.connections.insert(name.clone(), stored);
                    PutOutcome::Created
                }
            };
            Ok(outcome)
        })
    }

    fn connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredConnection>, StoreError>> {
        Box::pin(async move { Ok(self.state().connections.get(name).cloned()) })
    }

    fn connections(&self) -> BoxFuture<'_, Result<Vec<StoredConnection>, StoreError>> {
        Box::pin(async move { Ok(self.state().connections.values().cloned().collect()) })
    }

    fn remove_connection<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            // Not one atomic step as in the databases: nothing else shares this process's memory
            // store across a crash, and each part is removed even if another failed.
            let (existed, lease, approvals) = {
                let mut st = self.state();
                st.checkpoints.retain(|k, _| k.connection() != name);
                st.healths.remove(name);
                (st.connections.remove(name).is_some(), st.leases.remove(name), st.approvals.remove(name))
            };
            self.tokens.remove(name).await?;
            if let Some(lease) = lease {
                self.tokens.release_lease(&lease).await?;
            }
            for (user, client_id) in approvals.unwrap_or_default() {
                self.tokens.remove_approval(&user, &client_id, name).await?;
            }
            Ok(existed)
        })
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.state().audit.push(entry.clone());
            Ok(())
        })
    }

    fn audit<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(async move {
            let st = self.state();
            let mut out: Vec<AuditEntry> =
                st.audit.iter().rev().filter(|e| connection.is_none_or(|c| &e.connection == c)).cloned().collect();
            // Stable: entries with the same time stay newest-appended first.
            out.sort_by_key(|e| std::cmp::Reverse(e.at));
            out.truncate(limit);
            Ok(out)
        })
    }

    fn put_api_key<'a>(&'a self, key: &'a ApiKeyRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            if st.api_keys.contains_key(&key.id) {
                return Err(crate::rows::api_key_exists(&key.id));
            }
            st.api_keys.insert(key.id.clone(), key.clone());
            Ok(())
        })
    }

    fn api_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move { Ok(self.state().api_keys.get(id).cloned()) })
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let mut keys: Vec<ApiKeyRecord> = self.state().api_keys.values().cloned().collect();
            keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
            Ok(keys)
        })
    }

    fn revoke_api_key<'a>(&'a self, id: &'a str, at: SystemTime) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.state().api_keys.get_mut(id).map(|k| k.revoked_at.get_or_insert(at)).is_some()) })
    }

    fn save_checkpoint<'a>(
        &'a self,
        key: &'a CheckpointKey,
        replay_id: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_replay_id(replay_id)?;
            let saved =
                StoredCheckpoint { key: key.clone(), replay_id: replay_id.to_vec(), updated_at: self.clock.now() };
            self.state().checkpoints.insert(key.clone(), saved);
            Ok(())
        })
    }

    fn checkpoint<'a>(&'a self, key: &'a CheckpointKey) -> BoxFuture<'a, Result<Option<StoredCheckpoint>, StoreError>> {
        Box::pin(async move { Ok(self.state().checkpoints.get(key).cloned()) })
    }

    fn checkpoints<'a>(
        &'a self,
        connection: Option<&'a ConnectionId>,
    ) -> BoxFuture<'a, Result<Vec<StoredCheckpoint>, StoreError>> {
        Box::pin(async move {
            let st = self.state();
            Ok(st
                .checkpoints
                .values()
                .filter(|c| connection.is_none_or(|n| c.key.connection() == n))
                .cloned()
                .collect())
        })
    }

    fn delete_checkpoint<'a>(&'a self, key: &'a CheckpointKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.state().checkpoints.remove(key).is_some()) })
    }

    fn write_health<'a>(
        &'a self,
        health: &'a ConnectionHealth,
        expected: Option<u64>,
        deliveries: &'a [NewDelivery],
    ) -> BoxFuture<'a, Result<HealthWrite, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let current = st.healths.get(&health.connection);
            if current.map(|h| h.version) != expected {
                return Ok(HealthWrite::Conflict(current.cloned().map(Box::new)));
            }
            let version = expected.unwrap_or(0) + 1;
            let mut saved = health.clone();
            saved.version = version;
            st.healths.insert(health.connection.clone(), saved);
            enqueue(&mut st, deliveries);
            Ok(HealthWrite::Written(version))
        })
    }

    fn health<'a>(&'a self, name: &'a ConnectionId) -> BoxFuture<'a, Result<Option<ConnectionHealth>, StoreError>> {
        Box::pin(async move { Ok(self.state().healths.get(name).cloned()) })
    }

    fn healths(&self) -> BoxFuture<'_, Result<Vec<ConnectionHealth>, StoreError>> {
        Box::pin(async move { Ok(self.state().healths.values().cloned().collect()) })
    }

    fn try_work_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut st = self.state();
            match st.work_leases.get(name) {
                Some((h, until)) if h != holder && *until > now => Ok(false),
                _ => {
                    st.work_leases.insert(name.to_owned(), (holder.to_owned(), now + ttl));
                    Ok(true)
                }
            }
        })
    }

    fn release_work_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            if st.work_leases.get(name).is_some_and(|(h, _)| h == holder) {
                st.work_leases.remove(name);
            }
            Ok(())
        })
    }

    fn put_webhook<'a>(&'a self, hook: &'a WebhookRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            if st.webhooks.iter().any(|h| h.id == hook.id) {
                return Err(StoreError::Unavailable(format!("a webhook with id {} exists", hook.id)));
            }
            st.webhooks.push(hook.clone());
            Ok(())
        })
    }

    fn webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<WebhookRecord>, StoreError>> {
        Box::pin(async move { Ok(self.state().webhooks.iter().find(|h| h.id == id).cloned()) })
    }

    fn webhooks(&self) -> BoxFuture<'_, Result<Vec<WebhookRecord>, StoreError>> {
        Box::pin(async move { Ok(self.state().webhooks.clone()) })
    }

    fn delete_webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let before = st.webhooks.len();
            st.webhooks.retain(|h| h.id != id);
            st.deliveries.retain(|_, (d, _)| !(d.target == id && d.state == DeliveryState::Pending));
            Ok(st.webhooks.len() < before)
        })
    }

    fn enqueue_deliveries<'a>(&'a self, deliveries: &'a [NewDelivery]) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move { Ok(enqueue(&mut self.state(), deliveries)) })
    }

    fn claim_deliveries<'a>(
        &'a self,
        holder: &'a str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let mut out = Vec::new();
            for (d, claim) in st.deliveries.values_mut() {
                if out.len() >= limit {
                    break;
                }
                let free = claim.as_ref().is_none_or(|(_, until)| *until <= now);
                if d.state == DeliveryState::Pending
                    && d.next_attempt_at <= now
                    && free
                    && !is_ordered_target(&d.target)
                {
                    *claim = Some((holder.to_owned(), now + lease));
                    out.push(d.clone());
                }
            }
            Ok(out)
        })
    }

    fn finish_delivery<'a>(
        &'a self,
        seq: i64,
        holder: &'a str,
        outcome: &'a DeliveryOutcome,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let Some((d, claim)) = st.deliveries.get_mut(&seq) else { return Ok(false) };
            if claim.as_ref().is_none_or(|(h, _)| h != holder) || d.state != DeliveryState::Pending {
                return Ok(false);
            }
            *claim = None;
            d.attempts += 1;
            match outcome {
                DeliveryOutcome::Delivered { at, status } => {
                    d.state = DeliveryState::Delivered;
                    d.last_attempt_at = Some(*at);
                    d.last_status = Some(*status);
                    d.last_error = None;
                    d.delivered_at = Some(*at);
                }
                DeliveryOutcome::Retry { at, status, error, next_attempt_at } => {
                    d.last_attempt_at = Some(*at);
                    d.last_status = *status;
                    d.last_error = Some(error.clone());
                    d.next_attempt_at = *next_attempt_at;
                }
                DeliveryOutcome::Failed { at, status, error } => {
                    d.state = DeliveryState::Failed;
                    d.last_attempt_at = Some(*at);
                    d.last_status = *status;
                    d.last_error = Some(error.clone());
                }
            }
            Ok(true)
        })
    }

    fn deliveries<'a>(&'a self, filter: &'a DeliveryFilter) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(async move {
            let st = self.state();
            Ok(st
                .deliveries
                .values()
                .rev()
                .map(|(d, _)| d)
                .filter(|d| filter.target.as_ref().is_none_or(|t| &d.target == t))
                .filter(|d| filter.state.is_none_or(|s| d.state == s))
                .take(filter.effective_limit())
                .cloned()
                .collect())
        })
    }

    fn delivery_counts<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<DeliveryCounts, StoreError>> {
        Box::pin(async move {
            let st = self.state();
            let mut counts = DeliveryCounts::default();
            for (d, _) in st.deliveries.values().filter(|(d, _)| d.target == target) {
                match d.state {
                    DeliveryState::Pending => counts.pending += 1,
                    DeliveryState::Delivered => counts.delivered += 1,
                    DeliveryState::Failed => counts.failed += 1,
                }
            }
            Ok(counts)
        })
    }

    fn retry_delivery<'a>(&'a self, seq: i64) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut st = self.state();
            match st.deliveries.get_mut(&seq) {
                Some((d, claim)) if d.state == DeliveryState::Failed => {
                    d.state = DeliveryState::Pending;
                    d.next_attempt_at = now;
                    *claim = None;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    fn purge_deliveries(&self, before: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let n = st.deliveries.len();
            st.deliveries.retain(|_, (d, _)| d.state == DeliveryState::Pending || d.created_at >= before);
            Ok((n - st.deliveries.len()) as u64)
        })
    }

    fn claim_target_deliveries<'a>(
        &'a self,
        target: &'a str,
        holder: &'a str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let mut out = Vec::new();
            for (d, claim) in st.deliveries.values_mut() {
                if out.len() >= limit {
                    break;
                }
                let free = claim.as_ref().is_none_or(|(h, until)| *until <= now || h == holder);
                if d.target == target && d.state == DeliveryState::Pending && free {
                    *claim = Some((holder.to_owned(), now + lease));
                    out.push(d.clone());
                }
            }
            Ok(out)
        })
    }

    fn put_subscription<'a>(&'a self, sub: &'a SubscriptionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_subscription(sub)?;
            let mut st = self.state();
            if st.subscriptions.iter().any(|s| s.id == sub.id) {
                return Err(subscription_exists(&sub.id));
            }
            st.subscriptions.push(sub.clone());
            Ok(())
        })
    }

    fn subscription<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SubscriptionRecord>, StoreError>> {
        Box::pin(async move { Ok(self.state().subscriptions.iter().find(|s| s.id == id).cloned()) })
    }

    fn subscriptions(&self) -> BoxFuture<'_, Result<Vec<SubscriptionRecord>, StoreError>> {
        Box::pin(async move { Ok(self.state().subscriptions.clone()) })
    }

    fn set_subscription_paused<'a>(&'a self, id: &'a str, paused: bool) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.update_subscription(id, |s| s.paused = paused)) })
    }

    fn set_subscription_spec<'a>(&'a self, id: &'a str, spec: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            check_text("spec", spec)?;
            Ok(self.update_subscription(id, |s| s.spec = spec.to_owned()))
        })
    }

    fn set_subscription_status<'a>(
        &'a self,
        id: &'a str,
        status: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            check_text("status", status)?;
            Ok(self.update_subscription(id, |s| {
                s.status = Some(status.to_owned());
                s.status_at = Some(at);
            }))
        })
    }

    fn delete_subscription<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let before = st.subscriptions.len();
            st.subscriptions.retain(|s| s.id != id);
            let of_it = |t: &str| t == id || t.strip_prefix(id).is_some_and(|rest| rest.starts_with('.'));
            st.deliveries.retain(|_, (d, _)| !(of_it(&d.target) && d.state == DeliveryState::Pending));
            Ok(st.subscriptions.len() < before)
        })
    }

    fn put_ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
        value: &'a [u8],
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_value(value)?;
            let now = self.clock.now();
            let mut st = self.state();
            st.ephemeral.retain(|_, (_, until)| *until > now);
            st.ephemeral.insert((kind, key_hash(key)), (value.to_vec(), expires_at));
            Ok(())
        })
    }

    fn ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let st = self.state();
            Ok(st.ephemeral.get(&(kind, key_hash(key))).filter(|(_, until)| *until > now).map(|(v, _)| v.clone()))
        })
    }

    fn take_ephemeral<'a>(
        &'a self,
        kind: EphemeralKind,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut st = self.state();
            Ok(st.ephemeral.remove(&(kind, key_hash(key))).filter(|(_, until)| *until > now).map(|(v, _)| v))
        })
    }

    fn delete_ephemeral<'a>(&'a self, kind: EphemeralKind, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut st = self.state();
            Ok(st.ephemeral.remove(&(kind, key_hash(key))).is_some_and(|(_, until)| until > now))
        })
    }
}

/// Adds the deliveries whose (target, id) is new; returns how many.
fn enqueue(st: &mut State, deliveries: &[NewDelivery]) -> usize {
    let mut added = 0;
    for n in deliveries {
        if st.deliveries.values().any(|(d, _)| d.target == n.target && d.id == n.id) {
            continue;
        }
        st.next_seq += 1;
        let seq = st.next_seq;
        st.deliveries.insert(
            seq,
            (
                Delivery {
                    seq,
                    id: n.id.clone(),
                    target: n.target.clone(),
                    event_type: n.event_type.clone(),
                    connection: n.connection.clone(),
                    body: n.body.clone(),
                    created_at: n.created_at,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at: n.created_at,
                    last_attempt_at: None,
                    last_status: None,
                    last_error: None,
                    delivered_at: None,
                },
                None,
            ),
        );
        added += 1;
    }
    added
}
