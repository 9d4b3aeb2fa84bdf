//! [`MemoryConnectionStore`]: everything in process memory, for tests and in-process use. Token
//! sets, leases and approvals are forcelink-auth's [`MemoryStore`] (by delegation); this adds
//! connections, the audit log, API keys and checkpoints, and remembers which leases and approvals belong to
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
use crate::registry::{ApiKeyRecord, AuditEntry, ConnectionStore, PutMode, PutOutcome, StoredConnection};

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
}
