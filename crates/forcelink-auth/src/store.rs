//! The [`TokenStore`] port: where token sets live between processes, with compare-and-swap
//! writes, a renewal lease (cross-process single flight) and the approval ledger. This crate
//! ships [`MemoryStore`]; forcelink-store adds SQLite and PostgreSQL adapters.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::token::TokenSet;

/// A connection's name (its nickname), the key of everything stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(String);

impl ConnectionId {
    /// The connection named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored token set and its version (bumped by every successful write).
#[derive(Debug, Clone)]
pub struct StoredTokens {
    /// The token set.
    pub set: TokenSet,
    /// The version to pass as `expected` to [`TokenStore::compare_and_swap`].
    pub version: u64,
}

/// Result of [`TokenStore::compare_and_swap`].
#[derive(Debug, Clone)]
pub enum CasOutcome {
    /// Written.
    Swapped {
        /// The new version.
        version: u64,
    },
    /// Someone wrote first; this is what the store holds now.
    Conflict {
        /// The stored set and its version (`None`: nothing stored).
        current: Option<Box<StoredTokens>>,
    },
}

/// Who holds a lease: one per cache instance (process, replica).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseHolder(pub String);

/// A held renewal lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The connection whose renewal it guards.
    pub connection: ConnectionId,
    /// Who holds it.
    pub holder: LeaseHolder,
    /// Increases with every grant: a fencing number adapters may check on write.
    pub fence: u64,
    /// When it lapses if not released (its holder may have died).
    pub expires_at: SystemTime,
}

/// One OAuth approval (a refresh token issued to a user for a connected app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The user (username when known, else the 18-character user id).
    pub user: String,
    /// The connected app's consumer key.
    pub client_id: String,
    /// The connection that holds the refresh token.
    pub connection: ConnectionId,
    /// When the user approved.
    pub approved_at: SystemTime,
}

/// Where token sets, renewal leases and approvals live between processes. Adapters: this
/// crate's [`MemoryStore`]; SQLite and PostgreSQL in forcelink-store.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The stored token set of `connection` and its version; `None` when nothing is stored.
    fn load<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredTokens>, StoreError>>;

    /// Writes `set` only if the stored version is still `expected` (`None`: nothing stored).
    fn compare_and_swap<'a>(
        &'a self,
        connection: &'a ConnectionId,
        expected: Option<u64>,
        set: &'a TokenSet,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>>;

    /// Deletes the stored token set of `connection` (nothing stored is fine).
    fn remove<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes the renewal lease for `ttl`, waiting up to `wait` while another holder has it.
    /// `Ok(None)` when the wait ran out.
    fn acquire_lease<'a>(
        &'a self,
        connection: &'a ConnectionId,
        holder: &'a LeaseHolder,
        ttl: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>>;

    /// Gives `lease` back early, so a waiting holder can take it at once.
    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records an approval; returns every approval of that (user, client id), oldest first.
    fn record_approval<'a>(&'a self, approval: &'a Approval) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>>;

    /// Every approval of (user, client id), oldest first.
    fn approvals<'a>(&'a self, user: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>>;

    /// Forgets the approval held by `connection` for (user, client id).
    fn remove_approval<'a>(
        &'a self,
        user: &'a str,
        client_id: &'a str,
        connection: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

#[derive(Debug, Default)]
struct MemoryState {
    tokens: HashMap<ConnectionId, StoredTokens>,
    leases: HashMap<ConnectionId, Lease>,
    approvals: HashMap<(String, String), Vec<Approval>>,
    next_fence: u64,
}

/// An in-process store. Several caches sharing one `MemoryStore` behave like processes sharing
/// a database.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    // Guards every table of the store.
    state: Arc<Mutex<MemoryState>>,
    released: Arc<Notify>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// An empty store; leases expire by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { state: Arc::default(), released: Arc::new(Notify::new()), clock }
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, MemoryState> {
        self.state.lock()
    }

    fn try_lease(&self, connection: &ConnectionId, holder: &LeaseHolder, ttl: Duration) -> Option<Lease> {
        let now = self.clock.now();
        let mut st = self.state();
        if let Some(l) = st.leases.get(connection)
            && l.expires_at > now
            && &l.holder != holder
        {
            return None;
        }
        st.next_fence += 1;
        let lease = Lease {
            connection: connection.clone(),
            holder: holder.clone(),
            fence: st.next_fence,
            expires_at: now + ttl,
        };
        st.leases.insert(connection.clone(), lease.clone());
        Some(lease)
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<Option<StoredTokens>, StoreError>> {
        Box::pin(async move { Ok(self.state().tokens.get(connection).cloned()) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        connection: &'a ConnectionId,
        expected: Option<u64>,
        set: &'a TokenSet,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let current = st.tokens.get(connection);
            if current.map(|c| c.version) != expected {
                return Ok(CasOutcome::Conflict { current: current.cloned().map(Box::new) });
            }
            let version = expected.unwrap_or(0) + 1;
            st.tokens.insert(connection.clone(), StoredTokens { set: set.clone(), version });
            Ok(CasOutcome::Swapped { version })
        })
    }

    fn remove<'a>(&'a self, connection: &'a ConnectionId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.state().tokens.remove(connection);
            Ok(())
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        connection: &'a ConnectionId,
        holder: &'a LeaseHolder,
        ttl: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                // Register for the wake-up before trying, so a release in between is not missed.
                let released = self.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if let Some(lease) = self.try_lease(connection, holder, ttl) {
                    return Ok(Some(lease));
                }
                if tokio::time::timeout_at(deadline, released).await.is_err() {
                    return Ok(self.try_lease(connection, holder, ttl));
                }
            }
        })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            {
                let mut st = self.state();
                if st.leases.get(&lease.connection).is_some_and(|l| l.fence == lease.fence) {
                    st.leases.remove(&lease.connection);
                }
            }
            self.released.notify_waiters();
            Ok(())
        })
    }

    fn record_approval<'a>(&'a self, approval: &'a Approval) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        Box::pin(async move {
            let mut st = self.state();
            let list = st.approvals.entry((approval.user.clone(), approval.client_id.clone())).or_default();
            list.push(approval.clone());
            list.sort_by_key(|a| a.approved_at);
            Ok(list.clone())
        })
    }

    fn approvals<'a>(&'a self, user: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<Vec<Approval>, StoreError>> {
        Box::pin(async move {
            Ok(self.state().approvals.get(&(user.to_owned(), client_id.to_owned())).cloned().unwrap_or_default())
        })
    }

    fn remove_approval<'a>(
        &'a self,
        user: &'a str,
        client_id: &'a str,
        connection: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(list) = self.state().approvals.get_mut(&(user.to_owned(), client_id.to_owned()))
                && let Some(pos) = list.iter().position(|a| &a.connection == connection)
            {
                list.remove(pos);
            }
            Ok(())
        })
    }
}
