//! [`BrokerState`]: what every handler shares. One [`TokenCache`] per connection lives in
//! memory over the shared store, so the hit path of a token request is a map lookup and the
//! cache's own read lock; renewals are single-flight across tasks, processes and replicas
//! through the store's lease.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use forcelink_auth::{AuthError, CacheConfig, Clock, ConnectionId, Token, TokenCache, TokenStore, Transport};
use forcelink_store::{
    ApiKeyRecord, AuditAction, AuditEntry, Connection, ConnectionSpec, ConnectionState, ConnectionStore, EphemeralKind,
    SecretResolver, StoredConnection,
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::audit::AuditBuffer;
use crate::error::ErrorResponse;
use crate::ids::random_id;

/// How long a verified API key is trusted without asking the store again (a revocation made
/// through another replica or the CLI takes effect within this). 1 s: one store read per key
/// and second is cheap, and a revoked key must stop working everywhere at once in human terms.
pub(crate) const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// How often a connection's settings are re-read from the store (changes made by another
/// replica or the CLI take effect within this). 30 s.
pub(crate) const CONNECTION_RECHECK: Duration = Duration::from_secs(30);
/// How long a web-page session lasts. 8 hours.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// How long an Authorize click may take to come back to `/oauth/callback`. 10 minutes.
pub(crate) const PENDING_AUTHORIZATION_TTL: Duration = Duration::from_secs(600);
/// How often each connection is checked in the background unless set. 5 minutes.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(300);
/// How long a connect link may wait to be opened. 15 minutes.
pub const CONNECT_SESSION_TTL: Duration = Duration::from_secs(900);
/// How often a connection's last use is written to the store at most (per replica). 5 minutes.
pub(crate) const LAST_USED_PRECISION: Duration = Duration::from_secs(300);
/// Observations of token outcomes waiting for the monitor; more are dropped (and sent again
/// on a later outcome). 1024.
const OBSERVATION_QUEUE: usize = 1024;
/// A proxied request body up to this size is buffered, so it can be sent again after a
/// renewal; larger ones stream and a 401 is returned as is. 64 KiB.
pub const DEFAULT_REPLAY_BUFFER_BYTES: usize = 64 * 1024;
/// Largest proxied request body. 100 MiB.
pub const DEFAULT_MAX_PROXY_BODY_BYTES: u64 = 100 * 1024 * 1024;
/// Longest wait for Salesforce to connect and start answering a proxied request. 30 s connect.
pub(crate) const PROXY_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A key may make a reported token be renewed at most once per connection in this interval
/// (`GET …/token?rejected=`); a report naming a token already replaced costs nothing. 5 s.
pub const REJECTED_REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// How often token hand-outs are written to the audit log. 1 s.
pub(crate) const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Longest a client may take to send a request's head (line and headers), counted from when
/// the broker starts waiting for it, idle keep-alive time included; then the connection is
/// closed. 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once; further ones wait in the listen backlog until one closes
/// (they are not accepted, so they cost the broker nothing). 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

pub(crate) use crate::counters::{ConnectionCounters, Metrics};
use crate::relay::{DEFAULT_CALL_CLIENT, DEFAULT_EVENT_LEASE, DEFAULT_EVENT_RETRY};

/// Size and time limits of requests and connections.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON or form body. See [`crate::DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// Longest wait for a response to start. See [`crate::DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// Largest proxied body buffered for a retry after a renewal. See [`DEFAULT_REPLAY_BUFFER_BYTES`].
    pub replay_buffer_bytes: usize,
    /// Largest proxied request body. See [`DEFAULT_MAX_PROXY_BODY_BYTES`].
    pub max_proxy_body_bytes: u64,
    /// See [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// MCP calls an API key may make per minute. See [`crate::DEFAULT_MCP_CALLS_PER_MINUTE`].
    pub mcp_calls_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: crate::DEFAULT_MAX_BODY_BYTES,
            request_timeout: crate::DEFAULT_REQUEST_TIMEOUT,
            replay_buffer_bytes: DEFAULT_REPLAY_BUFFER_BYTES,
            max_proxy_body_bytes: DEFAULT_MAX_PROXY_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            mcp_calls_per_minute: crate::DEFAULT_MCP_CALLS_PER_MINUTE,
        }
    }
}

/// What a broker is built from.
pub struct BrokerConfig {
    /// Connections, token sets, leases, API keys and the audit log (shared by replicas).
    pub store: Arc<dyn ConnectionStore>,
    /// HTTP client, clock and URL policy for token requests (the clock is the broker's clock).
    pub transport: Transport,
    /// Resolves `env:`/`file:` secret references of connections defined outside the broker.
    pub secrets: SecretResolver,
    /// The broker's address as browsers reach it (for the OAuth redirect URI); when `None`,
    /// taken from the `Host` header of the Authorize request.
    pub public_url: Option<Url>,
    /// Size and time limits. Defaults to [`Limits::default`].
    pub limits: Limits,
    /// How each connection's token cache renews. Defaults to [`CacheConfig::default`].
    pub cache: CacheConfig,
    /// How often each connection is checked in the background. Defaults to
    /// [`DEFAULT_HEALTH_INTERVAL`].
    pub health_interval: Duration,
    /// Whether [`crate::serve`] runs the background checks and webhook deliveries (default true;
    /// tests that drive them step by step turn it off).
    pub background: bool,
    /// How long a replica's lease on a subscription's consumer lasts without renewal: a dead
    /// holder's subscriptions move to another replica within this. Defaults to
    /// [`DEFAULT_EVENT_LEASE`](crate::DEFAULT_EVENT_LEASE).
    pub event_lease: Duration,
    /// The first pause before an event delivery the receiver refused is tried again (it doubles
    /// up to 5 minutes). Defaults to [`DEFAULT_EVENT_RETRY`](crate::DEFAULT_EVENT_RETRY).
    pub event_retry: Duration,
    /// The client id the broker names in `Sforce-Call-Options` on its Salesforce calls
    /// (`changeOrigin` of the changes it makes carries it: echo suppression). Defaults to
    /// [`DEFAULT_CALL_CLIENT`](crate::DEFAULT_CALL_CLIENT).
    pub call_client: String,
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("public_url", &self.public_url)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl BrokerConfig {
    /// A configuration with no public URL, default limits and default cache settings.
    pub fn new(store: Arc<dyn ConnectionStore>, transport: Transport, secrets: SecretResolver) -> Self {
        Self {
            store,
            transport,
            secrets,
            public_url: None,
            limits: Limits::default(),
            cache: CacheConfig::default(),
            health_interval: DEFAULT_HEALTH_INTERVAL,
            background: true,
            event_lease: DEFAULT_EVENT_LEASE,
            event_retry: DEFAULT_EVENT_RETRY,
            call_client: DEFAULT_CALL_CLIENT.to_owned(),
        }
    }
}

/// A cheap-clone handle; clones share one broker.
#[derive(Clone)]
pub struct BrokerState {
    inner: Arc<Inner>,
}

impl fmt::Debug for BrokerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerState").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

struct Inner {
    config: BrokerConfig,
    proxy_http: reqwest::Client,
    // Connection name → its cache and counters.
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    // SHA-256 of a presented key → its record and when it was verified.
    keys: RwLock<HashMap<String, (ApiKeyRecord, SystemTime)>>,
    audit: AuditBuffer,
    metrics: Metrics,
    // Token outcomes that may change a connection's state, for the monitor.
    observations: tokio::sync::mpsc::Sender<Observed>,
    // Taken once by whoever runs the monitor.
    observed: Mutex<Option<tokio::sync::mpsc::Receiver<Observed>>>,
    // Wakes the webhook sender when deliveries were enqueued here.
    outbox_wake: tokio::sync::Notify,
    // This process's name in work leases and delivery claims.
    holder: String,
    webhook_http: reqwest::Client,
    // Every connection's REST client shares this one (its pool and TLS roots): a client per
    // connection cost about 70 KB and a root-store parse each, 700 MB for 10,000 connections.
    api_http: reqwest::Client,
    // The event subscriptions' consumer reports on this replica.
    events: crate::relay::EventsState,
}

/// A signed-in web page user (kept in the store: any replica may serve the next request).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub key_id: String,
    pub csrf: String,
    #[serde(with = "crate::time::epoch_ms")]
    pub expires_at: SystemTime,
}

/// An Authorize click (or a connect link) waiting for Salesforce to redirect back, kept sealed
/// in the store under its OAuth `state` (the callback may reach another replica).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PendingAuthorization {
    pub connection: String,
    /// The settings the code is exchanged with (and, for a connect link, saved with).
    pub spec: ConnectionSpec,
    pub url: String,
    pub state: String,
    pub redirect_uri: String,
    pub verifier: String,
    pub actor: String,
    /// A connect link's `return_url`: the outcome goes there.
    pub return_url: Option<String>,
}

/// A token outcome that may change a connection's state.
#[derive(Debug)]
pub(crate) enum Observed {
    /// A token was handed out or used successfully.
    Ok { connection: String },
    /// Getting a token failed.
    Failed { connection: String, error: Box<AuthError> },
    /// The connection was used (written to the store at most every [`LAST_USED_PRECISION`]).
    Used { connection: String, at: SystemTime },
}

/// [`Entry::known`] values: what this replica believes the stored state is.
pub(crate) const KNOWN_NOTHING: u8 = 0;

/// The [`Entry::known`] value of a state.
pub(crate) fn known_code(state: ConnectionState) -> u8 {
    match state {
        ConnectionState::Healthy => 1,
        ConnectionState::Unhealthy => 2,
        ConnectionState::ReauthorizationRequired => 3,
        ConnectionState::Unknown => 4,
    }
}

/// The state of an error, as the monitor classifies it.
pub(crate) fn state_of(error: &AuthError) -> ConnectionState {
    match error.action() {
        forcelink_auth::Action::Reauthorize => ConnectionState::ReauthorizationRequired,
        _ => ConnectionState::Unhealthy,
    }
}

/// What the last token hand-out was, to report `issued_at` without reading the store per call.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub token: Token,
    pub issued_at: SystemTime,
    pub fingerprint: String,
}

/// The latest health observations of a connection on this broker.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    pub last_ok: Option<SystemTime>,
    pub last_error: Option<(SystemTime, String)>,
    /// The last `Sforce-Limit-Info` seen on a proxied answer (`api-usage=18/15000`).
    pub limit_info: Option<String>,
}

impl Health {
    /// Green when the last observation was a success.
    pub(crate) fn ok(&self) -> Option<bool> {
        match (&self.last_ok, &self.last_error) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(ok), Some((err, _))) => Some(ok >= err),
        }
    }
}

/// One connection's live parts.
#[derive(Debug)]
pub(crate) struct Entry {
    pub connection: Connection,
    pub cache: TokenCache,
    pub client: Option<forcelink_client::Client>,
    updated_at: SystemTime,
    // Seconds since the epoch when the settings were last compared with the store.
    checked_at: AtomicU64,
    // The last token handed out and when it was issued.
    issued: RwLock<Option<Issued>>,
    // Latest successes and failures.
    health: Mutex<Health>,
    /// What this replica believes the stored state is ([`known_code`]; [`KNOWN_NOTHING`] at first).
    pub known: AtomicU8,
    /// Seconds since the epoch when a use was last sent to the monitor.
    used_noted: AtomicU64,
    // Actor → when it last made a reported token be renewed; held while deciding on a report,
    // so concurrent reports of one token invalidate it once.
    reports: Mutex<HashMap<String, SystemTime>>,
    pub counters: ConnectionCounters,
}

impl Entry {
    pub(crate) fn health(&self) -> Health {
        self.health.lock().clone()
    }
    pub(crate) fn record_ok(&self, at: SystemTime) {
        self.health.lock().last_ok = Some(at);
    }
    pub(crate) fn record_error(&self, at: SystemTime, message: String) {
        self.health.lock().last_error = Some((at, message));
    }
    pub(crate) fn record_limit_info(&self, info: String) {
        self.health.lock().limit_info = Some(info);
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl BrokerState {
    /// A broker over `config`. Fails only when the proxy's HTTP client cannot be built (no TLS
    /// roots, for example).
    pub fn new(config: BrokerConfig) -> Result<Self, ErrorResponse> {
        // The proxy passes bodies through untouched: no decompression, no redirects.
        // Webhook deliveries: no redirects (a receiver cannot point the broker elsewhere), short
        // timeouts (a slow receiver is retried later).
        let webhook_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ErrorResponse::upstream(format!("building the webhook HTTP client: {e}")))?;
        // Salesforce calls name the broker in `Sforce-Call-Options` (unless a proxied caller
        // names itself): the changes it makes carry `client=<id>` in their `changeOrigin`, which
        // echo suppression recognises.
        let call_options =
            crate::relay::call_options_header(&config.call_client).map_err(ErrorResponse::bad_request)?;
        let api_http = reqwest::Client::builder()
            .timeout(forcelink_client::client::DEFAULT_REQUEST_TIMEOUT)
            .connect_timeout(forcelink_client::client::DEFAULT_CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .gzip(true)
            .default_headers(call_options.clone())
            .build()
            .map_err(|e| ErrorResponse::upstream(format!("building the REST HTTP client: {e}")))?;
        let (observations, observed) = tokio::sync::mpsc::channel(OBSERVATION_QUEUE);
        let proxy_http = reqwest::Client::builder()
            .no_gzip()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(PROXY_CONNECT_TIMEOUT)
            .default_headers(call_options)
            .build()
            .map_err(|e| ErrorResponse::upstream(format!("building the proxy's HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                proxy_http,
                api_http,
                entries: RwLock::new(HashMap::new()),
                keys: RwLock::new(HashMap::new()),
                audit: AuditBuffer::default(),
                metrics: Metrics::default(),
                observations,
                observed: Mutex::new(Some(observed)),
                outbox_wake: tokio::sync::Notify::new(),
                holder: format!("replica-{}", random_id(12)),
                webhook_http,
                events: crate::relay::EventsState::default(),
            }),
        })
    }

    /// The event subscriptions' consumer reports on this replica.
    pub(crate) fn events(&self) -> &crate::relay::EventsState {
        &self.inner.events
    }

    pub(crate) fn store(&self) -> &Arc<dyn ConnectionStore> {
        &self.inner.config.store
    }
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        self.inner.config.transport.clock()
    }
    pub(crate) fn now(&self) -> SystemTime {
        self.clock().now()
    }
    pub(crate) fn secrets(&self) -> &SecretResolver {
        &self.inner.config.secrets
    }
    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.config.transport
    }
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }
    pub(crate) fn public_url(&self) -> Option<&Url> {
        self.inner.config.public_url.as_ref()
    }
    pub(crate) fn proxy_http(&self) -> &reqwest::Client {
        &self.inner.proxy_http
    }
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }
    /// This process's name in work leases and delivery claims.
    /// This replica's name in leases, claims and consumer reports (`replica-` + random characters).
    pub fn replica_id(&self) -> &str {
        &self.inner.holder
    }

    pub(crate) fn holder(&self) -> &str {
        &self.inner.holder
    }
    pub(crate) fn webhook_http(&self) -> &reqwest::Client {
        &self.inner.webhook_http
    }
    /// Wakes the webhook sender (deliveries were enqueued).
    pub(crate) fn wake_outbox(&self) {
        self.inner.outbox_wake.notify_one();
    }
    /// Waits until [`BrokerState::wake_outbox`] is called.
    pub(crate) async fn outbox_woken(&self) {
        self.inner.outbox_wake.notified().await;
    }
    /// The receiving end of the observations, once (for the monitor).
    pub(crate) fn take_observations(&self) -> Option<tokio::sync::mpsc::Receiver<Observed>> {
        self.inner.observed.lock().take()
    }

    /// Tells the monitor about a token outcome when it may change what the store says of the
    /// connection: a success while this replica does not know the connection healthy, a failure
    /// of another state than known, and a use at most every [`LAST_USED_PRECISION`]. The hot
    /// path costs two atomic reads.
    fn observe(&self, entry: &Entry, result: Result<(), &AuthError>) {
        let now = self.now();
        let connection = entry.connection.name.as_str();
        let secs = crate::time::epoch(now);
        let noted = entry.used_noted.load(Ordering::Relaxed);
        if secs >= noted + LAST_USED_PRECISION.as_secs()
            && entry.used_noted.compare_exchange(noted, secs, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.send_observation(entry, Observed::Used { connection: connection.to_owned(), at: now }, None);
        }
        let (code, observed) = match result {
            Ok(()) => (known_code(ConnectionState::Healthy), Observed::Ok { connection: connection.to_owned() }),
            Err(e) => (
                known_code(state_of(e)),
                Observed::Failed { connection: connection.to_owned(), error: Box::new(e.clone()) },
            ),
        };
        let known = entry.known.load(Ordering::Relaxed);
        if known != code && entry.known.compare_exchange(known, code, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.send_observation(entry, observed, Some(known));
        }
    }

    fn send_observation(&self, entry: &Entry, observed: Observed, previous_known: Option<u8>) {
        if self.inner.observations.try_send(observed).is_err()
            && let Some(previous) = previous_known
        {
            // Full (or nobody listens): forget the belief so a later outcome tries again.
            entry.known.store(previous, Ordering::Relaxed);
        }
    }

    /// The record of a presented API key, from memory when verified within [`KEY_CACHE_TTL`].
    pub(crate) async fn verify_key(&self, presented: &str) -> Result<Option<ApiKeyRecord>, ErrorResponse> {
        let now = self.now();
        let digest = sha256_hex(presented);
        if let Some((record, at)) = self.inner.keys.read().get(&digest)
            && now.duration_since(*at).is_ok_and(|age| age < KEY_CACHE_TTL)
        {
            return Ok(Some(record.clone()));
        }
        let found = forcelink_store::apikey::verify(&**self.store(), presented, now).await?;
        let mut keys = self.inner.keys.write();
        match &found {
            Some(record) => {
                // Bounded: forget everything when a flood of distinct keys arrives.
                if keys.len() > 10_000 {
                    keys.clear();
                }
                keys.insert(digest, (record.clone(), now));
            }
            None => {
                keys.remove(&digest);
            }
        }
        Ok(found)
    }

    /// Forgets verified keys with this id (after a revocation through this broker).
    pub(crate) fn forget_key(&self, id: &str) {
        self.inner.keys.write().retain(|_, (r, _)| r.id != id);
    }

    /// The live entry of connection `name`, built from the store on first use and rebuilt when
    /// the stored settings changed.
    pub(crate) async fn entry(&self, name: &str) -> Result<Arc<Entry>, ErrorResponse> {
        let now = self.now();
        let existing = self.inner.entries.read().get(name).cloned();
        if let Some(entry) = existing {
            let checked = entry.checked_at.load(Ordering::Relaxed);
            let due = crate::time::epoch(now) >= checked + CONNECTION_RECHECK.as_secs();
            // One request per interval re-reads the store; the others keep using the entry.
            if !due
                || entry
                    .checked_at
                    .compare_exchange(checked, crate::time::epoch(now), Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return Ok(entry);
            }
            match self.store().connection(&ConnectionId::new(name)).await? {
                Some(stored) if stored.updated_at == entry.updated_at => return Ok(entry),
                Some(stored) => return self.install(stored),
                None => {
                    self.evict(name);
                    return Err(ErrorResponse::not_found(format!("no connection named {name:?}")));
                }
            }
        }
        let Some(stored) = self.store().connection(&ConnectionId::new(name)).await? else {
            return Err(ErrorResponse::not_found(format!("no connection named {name:?}")));
        };
        self.install(stored)
    }

    fn install(&self, stored: StoredConnection) -> Result<Arc<Entry>, ErrorResponse> {
        let name = stored.name.as_str().to_owned();
        let connection = stored
            .spec
            .resolve(&name)
            .map_err(|e| ErrorResponse::conflict(format!("connection {name:?} is incomplete: {}", e.0)))?;
        let transport = self.transport().clone();
        let store: Arc<dyn TokenStore> = self.store().clone();
        let cache = connection
            .token_cache(&transport, &self.inner.config.secrets, store, self.inner.config.cache.clone())
            .map_err(|e| ErrorResponse::conflict(format!("connection {name:?}: {e}")))?;
        let client = forcelink_client::ApiVersion::new(&connection.api_version).ok().and_then(|version| {
            forcelink_client::Client::builder(Arc::new(cache.clone()))
                .http_client(self.inner.api_http.clone())
                .url_policy(transport.policy().clone())
                .clock(self.clock().clone())
                .api_version(version)
                .build()
                .ok()
        });
        let entry = Arc::new(Entry {
            connection,
            cache,
            client,
            updated_at: stored.updated_at,
            checked_at: AtomicU64::new(crate::time::epoch(self.now())),
            issued: RwLock::new(None),
            health: Mutex::new(Health::default()),
            known: AtomicU8::new(KNOWN_NOTHING),
            used_noted: AtomicU64::new(0),
            reports: Mutex::new(HashMap::new()),
            counters: ConnectionCounters::default(),
        });
        let mut entries = self.inner.entries.write();
        // Another task may have built the same version meanwhile: keep one cache per connection.
        if let Some(current) = entries.get(&name)
            && current.updated_at == entry.updated_at
        {
            return Ok(current.clone());
        }
        entries.insert(name, entry.clone());
        Ok(entry)
    }

    /// Drops the live entry (after the connection changed or was removed through this broker).
    pub(crate) fn evict(&self, name: &str) {
        self.inner.entries.write().remove(name);
    }

    /// The live entries, for metrics and the page.
    pub(crate) fn entries(&self) -> Vec<(String, Arc<Entry>)> {
        let entries = self.inner.entries.read();
        let mut list: Vec<_> = entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The entry if it is live, without touching the store.
    pub(crate) fn live_entry(&self, name: &str) -> Option<Arc<Entry>> {
        self.inner.entries.read().get(name).cloned()
    }

    /// A valid token for the connection and when it was issued; recorded in the entry's health.
    pub(crate) async fn token(&self, entry: &Entry) -> Result<Issued, ErrorResponse> {
        self.token_or_cause(entry).await.map_err(|(e, _)| e)
    }

    /// [`BrokerState::token`], with the cause of a failure.
    pub(crate) async fn token_or_cause(&self, entry: &Entry) -> Result<Issued, (ErrorResponse, Box<AuthError>)> {
        let name = entry.connection.name.as_str();
        let token = match entry.cache.get_token().await {
            Ok(t) => t,
            Err(e) => {
                let err = ErrorResponse::auth(name, &e);
                entry.record_error(self.now(), err.message.clone());
                self.observe(entry, Err(&e));
                return Err((err, Box::new(e)));
            }
        };
        self.observe(entry, Ok(()));
        if let Some(issued) = entry.issued.read().as_ref()
            && issued.token.access_token == token.access_token
        {
            return Ok(issued.clone());
        }
        // A new token: learn its issue time from the store once.
        let issued_at = match entry.cache.stored().await {
            Ok(Some(s)) if s.set.access_token == token.access_token => s.set.issued_at,
            _ => self.now(),
        };
        let issued = Issued { fingerprint: token.access_token.fingerprint(), token, issued_at };
        *entry.issued.write() = Some(issued.clone());
        entry.record_ok(self.now());
        Ok(issued)
    }

    /// A caller says Salesforce refused `rejected` (an access token or its fingerprint). When it
    /// names the token this broker holds now, exactly that token is invalidated, so the next
    /// hand-out renews once for every caller (and, through the store's lease, every replica);
    /// when it names an older token, nothing happens (a late report never evicts a fresh
    /// token). A key makes a renewal happen at most once per connection per
    /// [`REJECTED_REPORT_INTERVAL`]. Reports are audited in batches.
    pub(crate) fn report_rejected(&self, entry: &Entry, actor: &str, rejected: &str) -> Result<(), ErrorResponse> {
        let now = self.now();
        let name = entry.connection.name.as_str();
        let mut reports = entry.reports.lock();
        let current = entry.cache.peek();
        let names_current = current.as_ref().is_some_and(|t| {
            rejected == t.access_token.fingerprint()
                || forcelink_auth::secret::secrets_equal(rejected, t.access_token.secret())
        });
        let outcome = match &current {
            Some(t) if names_current => {
                if let Some(last) = reports.get(actor)
                    && now.duration_since(*last).is_ok_and(|d| d < REJECTED_REPORT_INTERVAL)
                {
                    self.audit_report(actor, name, "refused: renewed moments ago");
                    return Err(ErrorResponse::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "too_many_requests",
                        format!(
                            "this key had connection {name:?} renewed less than {} s ago and Salesforce refuses the new token too; \
                             check the connection (`POST /v1/connections/{name}/test`) before reporting again",
                            REJECTED_REPORT_INTERVAL.as_secs()
                        ),
                    ));
                }
                if reports.len() > 10_000 {
                    reports.clear();
                }
                reports.insert(actor.to_owned(), now);
                entry.cache.invalidate(&t.access_token);
                "renewed"
            }
            Some(_) => "already replaced",
            None => "renewal under way",
        };
        drop(reports);
        self.audit_report(actor, name, outcome);
        Ok(())
    }

    fn audit_report(&self, actor: &str, connection: &str, outcome: &str) {
        self.inner.audit.add(crate::audit::Group {
            actor: actor.to_owned(),
            connection: connection.to_owned(),
            action: AuditAction::TokenRejected,
            detail: format!("reported rejected: {outcome}"),
        });
    }

    /// Counts a token hand-out for the audit log (written in batches by the flusher).
    pub(crate) fn audit_handout(&self, actor: &str, connection: &str, fingerprint: &str) {
        self.inner.audit.record(actor, connection, fingerprint);
    }

    /// Writes one audit entry now (changes are rarer than token hand-outs).
    pub(crate) async fn audit(&self, actor: &str, connection: &str, action: AuditAction, detail: Option<String>) {
        let entry = AuditEntry {
            at: self.now(),
            connection: ConnectionId::new(connection),
            actor: actor.to_owned(),
            action,
            detail,
        };
        if let Err(e) = self.store().append_audit(&entry).await {
            tracing::warn!(connection, action = %entry.action, "could not write the audit log: {e}");
        }
    }

    /// Counts a refused API key (401/403) for the audit log, grouped by `actor` and `reason`.
    pub(crate) fn audit_refusal(&self, actor: &str, reason: &str) {
        self.inner.audit.add(crate::audit::Group {
            actor: actor.to_owned(),
            connection: crate::audit::NO_CONNECTION.to_owned(),
            action: AuditAction::KeyRefused,
            detail: reason.to_owned(),
        });
    }

    /// Counts a proxied request for the audit log; `detail` holds no query value or body.
    pub(crate) fn audit_proxied(&self, actor: &str, connection: &str, detail: String) {
        self.inner.audit.add(crate::audit::Group {
            actor: actor.to_owned(),
            connection: connection.to_owned(),
            action: AuditAction::ProxyRequest,
            detail,
        });
    }

    /// Makes connection `name` ready now: builds its live entry and fetches a token, so the
    /// first hand-out comes from memory.
    pub async fn prepare(&self, name: &str) -> Result<(), ErrorResponse> {
        let entry = self.entry(name).await?;
        self.token(&entry).await.map(|_| ())
    }

    /// Writes the counted events to the audit log.
    pub async fn flush_audit(&self) {
        for drained in self.inner.audit.drain(self.now()) {
            if let Err(e) = self.store().append_audit(&drained.entry).await {
                tracing::warn!(connection = %drained.entry.connection, "could not write the audit log: {e}");
                // Keep the count for the next flush rather than losing it.
                self.inner.audit.restore(&drained);
            }
        }
    }

    /// Flushes the audit buffer every [`AUDIT_FLUSH_INTERVAL`] until aborted.
    pub(crate) fn spawn_audit_flusher(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                // tokio's timer, not the broker's clock: a test's manual clock must not spin this.
                tokio::time::sleep(AUDIT_FLUSH_INTERVAL).await;
                state.flush_audit().await;
            }
        })
    }

    /// Starts a web session for an admin key (kept in the store, so every replica knows it);
    /// returns the session id.
    pub(crate) async fn create_session(&self, key_id: &str) -> Result<(String, Session), ErrorResponse> {
        let now = self.now();
        let id = random_id(32);
        let session = Session { key_id: key_id.to_owned(), csrf: random_id(24), expires_at: now + SESSION_TTL };
        let value = serde_json::to_vec(&session).map_err(|e| ErrorResponse::upstream(e.to_string()))?;
        self.store().put_ephemeral(EphemeralKind::WebSession, &id, &value, session.expires_at).await?;
        Ok((id, session))
    }

    /// The session `id`, when it exists and has not expired.
    pub(crate) async fn session(&self, id: &str) -> Result<Option<Session>, ErrorResponse> {
        let Some(bytes) = self.store().ephemeral(EphemeralKind::WebSession, id).await? else { return Ok(None) };
        Ok(serde_json::from_slice::<Session>(&bytes).ok().filter(|s| s.expires_at > self.now()))
    }

    pub(crate) async fn end_session(&self, id: &str) {
        if let Err(e) = self.store().delete_ephemeral(EphemeralKind::WebSession, id).await {
            tracing::warn!("ending a web session: {e}");
        }
    }

    /// Keeps an authorization for its callback (sealed in the store under its `state`).
    pub(crate) async fn add_pending(&self, pending: &PendingAuthorization) -> Result<(), ErrorResponse> {
        let value = serde_json::to_vec(pending).map_err(|e| ErrorResponse::upstream(e.to_string()))?;
        let until = self.now() + PENDING_AUTHORIZATION_TTL;
        self.store().put_ephemeral(EphemeralKind::OAuthState, &pending.state, &value, until).await?;
        Ok(())
    }

    /// Takes the pending authorization for `state` (each can be used once, on any replica).
    pub(crate) async fn take_pending(&self, state: &str) -> Result<Option<PendingAuthorization>, ErrorResponse> {
        let Some(bytes) = self.store().take_ephemeral(EphemeralKind::OAuthState, state).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }
}
