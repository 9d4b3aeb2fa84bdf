//! [`TokenCache`]: one per connection. Hands out the current token; renews it before it expires
//! (inside a buffer, with jitter) and after a 401; runs one renewal at a time per process (all
//! callers await the same load) and, through the store's lease, per connection across
//! processes. A renewal re-reads the store after taking the lease, because another holder may
//! have just renewed, and stores the new token set by compare-and-swap before handing it out.
//!
//! Salesforce sends no `expires_in`, so the expiry is learned: from `expires_in` when present,
//! else introspection (when configured), else the configured session timeout, else
//! [`DEFAULT_SESSION_LIFETIME`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use rand::Rng;

use crate::backoff::{Backoff, Jitter};
use crate::clock::Clock;
use crate::error::{Action, AuthError, OAuthErrorKind};
use crate::flows::random_urlsafe;
use crate::identity::{AnyToken, IdentityClient};
use crate::secret::AccessToken;
use crate::source::{AuthMethod, TokenProvider, TokenSource};
use crate::store::{CasOutcome, ConnectionId, LeaseHolder, StoredTokens, TokenStore};
use crate::token::{LifetimeSource, Token, TokenSet};

/// Assumed access-token lifetime when nothing better is known: 15 minutes, the shortest session
/// timeout Salesforce offers, so a token is never used past its life on any org.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Renew this long before expiry. Defaults to 5 minutes (at most half the token's lifetime).
pub const DEFAULT_RENEW_BUFFER: Duration = Duration::from_secs(5 * 60);
/// Up to this much extra, random per token, so replicas do not renew in lockstep. 60 seconds.
pub const DEFAULT_RENEW_JITTER: Duration = Duration::from_secs(60);
/// Longest a token request may take. 30 seconds.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a renewal lease lasts if its holder dies. 60 seconds (longer than a load).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);
/// How long to wait for another holder's lease. 45 seconds.
pub const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(45);
/// Retries after "token request is already being processed". 4.
pub const DEFAULT_BUSY_RETRIES: u32 = 4;
/// First backoff after "token request is already being processed", doubled each time. 500 ms.
pub const DEFAULT_BUSY_BACKOFF: Duration = Duration::from_millis(500);
/// After a failed background renewal, wait this long before the next one. 15 seconds.
pub const BACKGROUND_RETRY_AFTER: Duration = Duration::from_secs(15);
/// After a renewal fails in a way only a person can fix (`invalid_grant`, `invalid_client`, an
/// inactive or frozen user…), callers get that error without a new attempt for this long,
/// doubled after each further failure up to [`FAILURE_BACKOFF_MAX`]. 30 seconds.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between attempts of a failing connection. 15 minutes.
pub const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// The schedule of [`FAILURE_BACKOFF`]: doubling to [`FAILURE_BACKOFF_MAX`], not randomised (it
/// only decides when this process tries again, nothing is sent in lockstep with others).
const FAILURE_SCHEDULE: Backoff =
    Backoff { jitter: Jitter::None, max_retries: None, ..Backoff::exponential(FAILURE_BACKOFF, FAILURE_BACKOFF_MAX) };
/// Waits for another holder's renewal get up to this much extra, in percent, so that waiting
/// processes do not all look at the store at once.
const BUSY_JITTER_PERCENT: u32 = 25;
/// While backing off, the store is looked at this often for a token another process obtained
/// (a re-authorization through another replica). 5 seconds.
pub const FAILURE_STORE_RECHECK: Duration = Duration::from_secs(5);

/// Settings of a [`TokenCache`]; every default is a named constant above.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Renew this long before expiry (at most half the token's lifetime). Defaults to
    /// [`DEFAULT_RENEW_BUFFER`], 5 minutes.
    pub renew_buffer: Duration,
    /// Up to this much extra buffer, random per token. Defaults to [`DEFAULT_RENEW_JITTER`], 60 seconds.
    pub renew_jitter: Duration,
    /// Longest a token request may take. Defaults to [`DEFAULT_LOAD_TIMEOUT`], 30 seconds.
    pub load_timeout: Duration,
    /// Life of a renewal lease whose holder dies. Defaults to [`DEFAULT_LEASE_TTL`], 60 seconds.
    pub lease_ttl: Duration,
    /// How long to wait for another holder's lease. Defaults to [`DEFAULT_LEASE_WAIT`], 45 seconds.
    pub lease_wait: Duration,
    /// Retries after Salesforce's "token request is already being processed". Defaults to
    /// [`DEFAULT_BUSY_RETRIES`], 4.
    pub busy_retries: u32,
    /// First wait before such a retry, doubled each time. Defaults to [`DEFAULT_BUSY_BACKOFF`], 500 ms.
    pub busy_backoff: Duration,
    /// The org's or app's session timeout, when known.
    pub session_timeout: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            renew_buffer: DEFAULT_RENEW_BUFFER,
            renew_jitter: DEFAULT_RENEW_JITTER,
            load_timeout: DEFAULT_LOAD_TIMEOUT,
            lease_ttl: DEFAULT_LEASE_TTL,
            lease_wait: DEFAULT_LEASE_WAIT,
            busy_retries: DEFAULT_BUSY_RETRIES,
            busy_backoff: DEFAULT_BUSY_BACKOFF,
            session_timeout: None,
        }
    }
}

/// Counters of one cache.
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    waits: AtomicU64,
    renewals: AtomicU64,
    adopted: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of a cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Calls answered from memory.
    pub hits: u64,
    /// Calls that joined a load already in flight.
    pub waits: u64,
    /// Token requests that succeeded.
    pub renewals: u64,
    /// Renewals avoided because the store already held a newer token (another process's).
    pub adopted: u64,
    /// Loads that failed.
    pub failures: u64,
}

/// A remembered non-transient failure.
#[derive(Debug, Clone)]
struct Failed {
    error: AuthError,
    until: SystemTime,
    attempts: u32,
    store_checked_at: SystemTime,
}

#[derive(Debug)]
struct Cached {
    token: Token,
    renew_at: SystemTime,
    expires_at: Option<SystemTime>,
}

type SharedLoad = Shared<BoxFuture<'static, Result<Arc<Cached>, AuthError>>>;

/// A cheap-clone handle; clones share one cache.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionId,
    source: Arc<dyn TokenSource>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    introspector: Option<IdentityClient>,
    config: CacheConfig,
    holder: LeaseHolder,
    // The token handed out and when to renew it.
    current: RwLock<Option<Arc<Cached>>>,
    // The load in flight, which every caller needing a token awaits.
    inflight: Mutex<Option<SharedLoad>>,
    // Tokens reported stale (401): never adopted again from the store.
    rejected: Mutex<VecDeque<AccessToken>>,
    // Earliest time a background renewal may start after one failed.
    retry_after: Mutex<Option<SystemTime>>,
    // The last failure only a person can fix, and until when it is answered without a new attempt.
    failed: Mutex<Option<Failed>>,
    counters: Counters,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("connection", &self.inner.connection)
            .field("method", &self.inner.source.method())
            .field("stats", &self.stats())
            .finish()
    }
}

impl TokenCache {
    /// A cache for `connection` that renews through `source` and keeps tokens in `store`.
    pub fn new(
        connection: ConnectionId,
        source: Arc<dyn TokenSource>,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        config: CacheConfig,
    ) -> Self {
        Self::build(connection, source, store, clock, config, None)
    }

    /// Learns each new token's expiry from the introspection endpoint (needs the app's secret).
    pub fn with_introspection(self, client: IdentityClient) -> Self {
        let i = &self.inner;
        Self::build(
            i.connection.clone(),
            i.source.clone(),
            i.store.clone(),
            i.clock.clone(),
            i.config.clone(),
            Some(client),
        )
    }

    fn build(
        connection: ConnectionId,
        source: Arc<dyn TokenSource>,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        config: CacheConfig,
        introspector: Option<IdentityClient>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                connection,
                source,
                store,
                clock,
                introspector,
                config,
                holder: LeaseHolder(random_urlsafe(12)),
                current: RwLock::new(None),
                inflight: Mutex::new(None),
                rejected: Mutex::new(VecDeque::new()),
                retry_after: Mutex::new(None),
                failed: Mutex::new(None),
                counters: Counters::default(),
            }),
        }
    }

    /// The connection this cache serves.
    pub fn connection(&self) -> &ConnectionId {
        &self.inner.connection
    }

    /// A valid token: from memory when fresh, else after the (single) renewal.
    pub async fn get_token(&self) -> Result<Token, AuthError> {
        let now = self.inner.clock.now();
        if let Some(c) = self.inner.current() {
            if now < c.renew_at {
                self.inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(c.token.clone());
            }
            if c.expires_at.is_none_or(|e| now < e) {
                // Due but still valid: renew in the background, keep handing out this one.
                self.inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                if self.inner.retry_after.lock().is_none_or(|t| now >= t) {
                    // The load runs in its own task; nobody waits for it here.
                    drop(self.inner.start_load(false));
                }
                return Ok(c.token.clone());
            }
        }
        if let Some(answer) = self.inner.remembered_failure(now).await {
            return answer;
        }
        let load = self.inner.start_load(true);
        load.await.map(|c| c.token.clone())
    }

    /// Forgets a remembered failure, so the next call tries again at once (after the
    /// connection was fixed).
    pub fn reset_backoff(&self) {
        *self.inner.failed.lock() = None;
    }

    /// The token held in memory now, without renewing (`None` while a renewal is due or running).
    pub fn peek(&self) -> Option<Token> {
        self.inner.current().map(|c| c.token.clone())
    }

    /// Drops `stale` if (and only if) it is still the current token, so a late 401 for an old
    /// token never evicts a fresh one. The store's copy is not adopted again.
    pub fn invalidate(&self, stale: &AccessToken) {
        {
            let mut rejected = self.inner.rejected.lock();
            if !rejected.contains(stale) {
                if rejected.len() == 8 {
                    rejected.pop_front();
                }
                rejected.push_back(stale.clone());
            }
        }
        let mut current = self.inner.current.write();
        if current.as_ref().is_some_and(|c| &c.token.access_token == stale) {
            tracing::debug!(connection = %self.inner.connection, token = %stale.fingerprint(), "token invalidated");
            *current = None;
        }
    }

    /// Stores a token set obtained by a sign-in (web server, device…) as this connection's
    /// current one, replacing whatever the store held.
    pub async fn adopt(&self, set: TokenSet) -> Result<(), AuthError> {
        let set = self.inner.with_expiry(set).await;
        for _ in 0..8 {
            let stored = self.inner.store.load(&self.inner.connection).await?;
            if let CasOutcome::Swapped { .. } =
                self.inner.store.compare_and_swap(&self.inner.connection, stored.map(|s| s.version), &set).await?
            {
                self.inner.publish(self.inner.cached(&set));
                *self.inner.failed.lock() = None;
                return Ok(());
            }
        }
        Err(AuthError::Internal("the token store kept changing while saving the new token".to_owned()))
    }

    /// The token set the store holds now (for diagnostics).
    pub async fn stored(&self) -> Result<Option<StoredTokens>, AuthError> {
        Ok(self.inner.store.load(&self.inner.connection).await?)
    }

    /// A snapshot of this cache's counters (shared by all clones).
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            renewals: c.renewals.load(Ordering::Relaxed),
            adopted: c.adopted.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }
}

impl TokenProvider for TokenCache {
    fn token(&self) -> BoxFuture<'_, Result<Token, AuthError>> {
        Box::pin(self.get_token())
    }
    fn invalidate(&self, stale: &AccessToken) {
        TokenCache::invalidate(self, stale);
    }
}

impl Inner {
    /// While a non-transient failure is remembered: the token another process stored meanwhile
    /// (looked for every [`FAILURE_STORE_RECHECK`]), else the remembered error. `None` when no
    /// failure is remembered or its backoff is over.
    async fn remembered_failure(&self, now: SystemTime) -> Option<Result<Token, AuthError>> {
        let failed = self.failed.lock().clone()?;
        if now >= failed.until {
            return None;
        }
        if now >= failed.store_checked_at + FAILURE_STORE_RECHECK {
            if let Some(f) = self.failed.lock().as_mut() {
                f.store_checked_at = now;
            }
            if let Ok(stored) = self.store.load(&self.connection).await
                && let Some(c) = self.adoptable(stored.as_ref())
            {
                self.publish(Arc::clone(&c));
                *self.failed.lock() = None;
                return Some(Ok(c.token.clone()));
            }
        }
        let retry_in_secs = failed.until.duration_since(now).unwrap_or_default().as_secs().max(1);
        Some(Err(AuthError::BackingOff { last: Box::new(failed.error.root().clone()), retry_in_secs }))
    }

    fn current(&self) -> Option<Arc<Cached>> {
        self.current.read().clone()
    }

    fn publish(&self, cached: Arc<Cached>) {
        *self.current.write() = Some(cached);
    }

    /// Joins the load in flight or starts one. The load runs in its own task, so it finishes
    /// (and releases its lease) even if every caller gives up.
    fn start_load(self: &Arc<Self>, waiting: bool) -> SharedLoad {
        let mut inflight = self.inflight.lock();
        if let Some(load) = inflight.as_ref() {
            if waiting {
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
            }
            return load.clone();
        }
        let inner = Arc::clone(self);
        let task = tokio::spawn(async move {
            let result = inner.renew().await;
            match &result {
                Ok(c) => {
                    inner.publish(Arc::clone(c));
                    *inner.failed.lock() = None;
                }
                Err(e) => {
                    inner.counters.failures.fetch_add(1, Ordering::Relaxed);
                    let now = inner.clock.now();
                    let mut retry_at = now + BACKGROUND_RETRY_AFTER;
                    if matches!(e.action(), Action::Reauthorize | Action::FixConfiguration) {
                        let mut failed = inner.failed.lock();
                        let attempts = failed.as_ref().map_or(0, |f| f.attempts) + 1;
                        let wait = FAILURE_SCHEDULE.delay(attempts - 1);
                        retry_at = retry_at.max(now + wait);
                        *failed = Some(Failed { error: e.clone(), until: now + wait, attempts, store_checked_at: now });
                    }
                    *inner.retry_after.lock() = Some(retry_at);
                    tracing::warn!(connection = %inner.connection, error = %e, "token renewal failed");
                }
            }
            *inner.inflight.lock() = None;
            result
        });
        let load = async move { task.await.unwrap_or_else(|e| Err(AuthError::Internal(format!("renewal task: {e}")))) }
            .boxed()
            .shared();
        *inflight = Some(load.clone());
        load
    }

    async fn renew(&self) -> Result<Arc<Cached>, AuthError> {
        // A load that finished just before this one started may have left a fresh token.
        if let Some(c) = self.current()
            && self.clock.now() < c.renew_at
        {
            return Ok(c);
        }
        let lease = self
            .store
            .acquire_lease(&self.connection, &self.holder, self.config.lease_ttl, self.config.lease_wait)
            .await?
            .ok_or(AuthError::LeaseTimeout(self.config.lease_wait))?;
        let result = self.renew_under_lease().await;
        if let Err(e) = self.store.release_lease(&lease).await {
            tracing::warn!(connection = %self.connection, error = %e, "could not release the renewal lease");
        }
        result
    }

    async fn renew_under_lease(&self) -> Result<Arc<Cached>, AuthError> {
        let mut stored = self.store.load(&self.connection).await?;
        if let Some(c) = self.adoptable(stored.as_ref()) {
            return Ok(c);
        }
        // Someone else renewing this very token is waited for on this schedule.
        let mut busy = Backoff {
            jitter: Jitter::Extra { percent: BUSY_JITTER_PERCENT },
            max_retries: Some(self.config.busy_retries),
            ..Backoff::exponential(self.config.busy_backoff, Duration::MAX)
        }
        .start(self.clock.clone());
        let set = loop {
            let current = stored.as_ref().map(|s| &s.set);
            let fetched = tokio::time::timeout(self.config.load_timeout, self.source.fetch(current))
                .await
                .map_err(|_| AuthError::LoadTimeout(self.config.load_timeout))?;
            match fetched {
                Ok(set) => break set,
                Err(e) if e.oauth_kind() == Some(OAuthErrorKind::TokenRequestInProgress) => {
                    // Someone else is renewing this very token: never send a second refresh
                    // while theirs runs. Wait, then take their result from the store if it
                    // arrived there.
                    if busy.wait(None).await.is_err() {
                        return Err(e);
                    }
                    stored = self.store.load(&self.connection).await?;
                    if let Some(c) = self.adoptable(stored.as_ref()) {
                        return Ok(c);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        if self.source.method() == AuthMethod::StaticToken && self.rejected.lock().contains(&set.access_token) {
            return Err(AuthError::StaticTokenRejected);
        }
        let set = self.with_expiry(set).await;
        self.counters.renewals.fetch_add(1, Ordering::Relaxed);
        let used_refresh = stored.as_ref().and_then(|s| s.set.refresh_token.clone());
        let mut expected = stored.as_ref().map(|s| s.version);
        // The new set (with a rotated refresh token, if any) is stored before it is handed out.
        // A conflict means the lease ran out while renewing. If the writer in between did not
        // replace the refresh token this renewal used, the new set still supersedes theirs;
        // otherwise two refreshes raced and only the store's copy is kept.
        for _ in 0..2 {
            match self.store.compare_and_swap(&self.connection, expected, &set).await? {
                CasOutcome::Swapped { .. } => break,
                CasOutcome::Conflict { current } => {
                    let same_refresh =
                        current.as_ref().map(|c| c.set.refresh_token.clone()) == Some(used_refresh.clone());
                    if same_refresh && expected != current.as_ref().map(|c| c.version) {
                        expected = current.map(|c| c.version);
                        continue;
                    }
                    tracing::error!(
                        connection = %self.connection,
                        "another process renewed this connection at the same time (lease expired?); \
                         the new token is used but not stored"
                    );
                    break;
                }
            }
        }
        Ok(self.cached(&set))
    }

    /// The stored set, if another holder renewed it and it is still good.
    fn adoptable(&self, stored: Option<&StoredTokens>) -> Option<Arc<Cached>> {
        let set = &stored?.set;
        if self.rejected.lock().contains(&set.access_token) {
            return None;
        }
        let cached = self.cached(set);
        (self.clock.now() < cached.renew_at).then(|| {
            self.counters.adopted.fetch_add(1, Ordering::Relaxed);
            cached
        })
    }

    fn cached(&self, set: &TokenSet) -> Arc<Cached> {
        let renew_at = match set.expires_at {
            None => SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 8),
            Some(expires_at) => {
                let lifetime = expires_at.duration_since(set.issued_at).unwrap_or_default();
                let jitter_ms = self.config.renew_jitter.as_millis() as u64;
                let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms));
                let buffer = (self.config.renew_buffer + jitter).min(lifetime / 2);
                expires_at - buffer
            }
        };
        Arc::new(Cached { token: set.token(), renew_at, expires_at: set.expires_at })
    }

    /// Fills in `expires_at` when the response had no `expires_in`. The lifetime is counted from
    /// the moment the token arrived, on this machine's clock: `issued_at` is the server's clock,
    /// and a skew between the two must not make a new token look expired (or live too long).
    async fn with_expiry(&self, mut set: TokenSet) -> TokenSet {
        if set.expires_at.is_some() || set.lifetime_source != LifetimeSource::Unknown {
            return set;
        }
        let received = self.clock.now();
        if let Some(client) = &self.introspector {
            match client.introspect(AnyToken::Access(&set.access_token)).await {
                Ok(i) if i.active && i.expires_at().is_some() => {
                    // `exp` is server time too: keep the remaining lifetime it implies.
                    let exp = i.expires_at().unwrap_or(set.issued_at);
                    set.expires_at = Some(received + exp.duration_since(set.issued_at).unwrap_or_default());
                    set.lifetime_source = LifetimeSource::Introspection;
                    return set;
                }
                Ok(_) => tracing::warn!(connection = %self.connection, "introspection gave no expiry for a new token"),
                Err(e) => tracing::warn!(connection = %self.connection, error = %e, "introspection failed"),
            }
        }
        let (lifetime, source) = match self.config.session_timeout {
            Some(t) => (t, LifetimeSource::Configured),
            None => (DEFAULT_SESSION_LIFETIME, LifetimeSource::Default),
        };
        set.expires_at = Some(received + lifetime);
        set.lifetime_source = source;
        set
    }
}
