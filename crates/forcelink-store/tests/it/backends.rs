//! The suite on every backend, plus what only persistent backends promise: encryption at rest
//! and one renewal across store instances (processes) sharing a database.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::store::TokenStore;
use forcelink_auth::{AppCredentials, CacheConfig, Endpoints, ManualClock, TokenCache, Transport, UrlPolicy};
use forcelink_store::{ConnectionStore, MasterKey, MemoryConnectionStore, PostgresStore, SqliteStore};
use futures_util::future::join_all;
use url::Url;

use crate::store_suite;
use crate::suite::connection;

fn clock() -> ManualClock {
    ManualClock::starting_now()
}

/// The PostgreSQL URL the test command provides (`scripts/test` sets a local default).
pub fn postgres_url() -> String {
    #[allow(clippy::disallowed_methods)] // tests take the database from the environment
    std::env::var("FORCELINK_TEST_POSTGRES_URL")
        .expect("FORCELINK_TEST_POSTGRES_URL must point at a PostgreSQL database (scripts/test sets it)")
}

/// A schema of its own in the test database, dropped when this is dropped: every test gets an
/// empty store (its own master key id, schema version and tables) in one shared server.
pub struct PgSchema {
    pub url: String,
    name: String,
}

impl PgSchema {
    pub async fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("forcelink_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).await.unwrap();
        let base = postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        Self { url: format!("{base}{sep}options=-csearch_path%3D{name}"), name }
    }
}

impl Drop for PgSchema {
    #[allow(clippy::print_stderr)] // a leftover schema is worth a line in the test output
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await: a thread with its own runtime runs the statement.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                // Bounded: a session of this test still holding a lock (its task cannot run while
                // this thread blocks the test's runtime) must not hang the test.
                client.batch_execute(&format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE")).await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.name);
        }
    }
}

/// What a test's store needs kept alive until the test ends.
#[allow(dead_code)] // held only to be dropped
pub enum Keep {
    Nothing,
    Dir(tempfile::TempDir),
    Schema(PgSchema),
}

async fn memory() -> (Arc<dyn ConnectionStore>, ManualClock, Keep) {
    let c = clock();
    (Arc::new(MemoryConnectionStore::new(Arc::new(c.clone()))), c, Keep::Nothing)
}

async fn sqlite() -> (Arc<dyn ConnectionStore>, ManualClock, Keep) {
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    (Arc::new(SqliteStore::open(&path, MasterKey::generate(), Arc::new(c.clone())).unwrap()), c, Keep::Dir(dir))
}

async fn postgres() -> (Arc<dyn ConnectionStore>, ManualClock, Keep) {
    let c = clock();
    let schema = PgSchema::new().await;
    let store = PostgresStore::connect(&schema.url, MasterKey::generate(), Arc::new(c.clone())).await.unwrap();
    (Arc::new(store), c, Keep::Schema(schema))
}

store_suite!(memory_backend, memory());
store_suite!(sqlite_backend, sqlite());
store_suite!(postgres_backend, postgres());

#[tokio::test]
async fn sqlite_opened_by_a_newer_version_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let conn = rusqlite_like_open(&path);
        drop(conn);
    }
    let err = SqliteStore::open(&path, MasterKey::generate(), Arc::new(clock())).unwrap_err();
    assert!(err.to_string().contains("newer than this forcelink"), "{err}");
}

/// Creates a database whose schema version is ahead of this code.
fn rusqlite_like_open(path: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(path, MasterKey::generate(), Arc::new(clock())).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    store
}

/// `n` caches, each on its own store instance (as separate processes would be), all sharing
/// one database; 1,000 callers on an expired token → the playground counts one token request.
async fn one_renewal_across_instances(stores: Vec<Arc<dyn TokenStore>>, clock: ManualClock) {
    let pg = forcelink_test_support::spawn_playground().await;
    let conn = connection("flight");
    let caches: Vec<TokenCache> = stores
        .into_iter()
        .map(|store| {
            let transport = Transport::new(
                forcelink_auth::wire::default_http_client().unwrap(),
                Arc::new(clock.clone()),
                UrlPolicy::new().allow_any_loopback(),
            );
            let app =
                AppCredentials::new(&pg.info.client.client_id, Some(ClientSecret::new(&pg.info.client.client_secret)));
            let endpoints = Endpoints::salesforce(&Url::parse(pg.instance_url()).unwrap());
            let source = ClientCredentials::new(transport, endpoints, app).unwrap();
            TokenCache::new(conn.clone(), Arc::new(source), store, Arc::new(clock.clone()), CacheConfig::default())
        })
        .collect();
    let first = caches[0].get_token().await.unwrap();
    for c in &caches[1..] {
        assert_eq!(c.get_token().await.unwrap().access_token, first.access_token, "others adopt the stored token");
    }
    assert_eq!(pg.control.token_requests("client_credentials").await, 1);
    clock.advance(forcelink_auth::cache::DEFAULT_SESSION_LIFETIME + Duration::from_secs(1));
    let n = caches.len();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let cache = caches[i % n].clone();
            tokio::spawn(async move { cache.get_token().await })
        })
        .collect();
    let tokens: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(pg.control.token_requests("client_credentials").await, 2, "one renewal across {n} instances");
    assert!(tokens.iter().all(|t| t.access_token == tokens[0].access_token));
    assert_ne!(tokens[0].access_token, first.access_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_on_one_sqlite_file_renew_once() {
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let key = MasterKey::generate();
    let stores: Vec<Arc<dyn TokenStore>> =
        (0..4).map(|_| Arc::new(SqliteStore::open(&path, key.clone(), Arc::new(c.clone())).unwrap()) as _).collect();
    one_renewal_across_instances(stores, c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgres_renew_once() {
    let c = clock();
    let key = MasterKey::generate();
    let schema = PgSchema::new().await;
    let mut stores: Vec<Arc<dyn TokenStore>> = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PostgresStore::connect(&schema.url, key.clone(), Arc::new(c.clone())).await.unwrap()));
    }
    one_renewal_across_instances(stores, c).await;
}

/// Several store instances on one database (as separate processes or replicas would be): their
/// concurrent claims never hand one delivery to two of them, and together they claim every due
/// one; of concurrent takers of an ephemeral record, exactly one gets it.
async fn claims_and_takes_across_instances(stores: Vec<Arc<dyn ConnectionStore>>, clock: ManualClock) {
    use forcelink_auth::Clock;
    use forcelink_store::EphemeralKind;

    let target = format!("wh_{}", connection("instances"));
    let now = clock.now();
    let batch: Vec<_> = (0..60).map(|i| crate::suite_ops::new_delivery(&format!("m{i:02}"), &target, now)).collect();
    assert_eq!(stores[0].enqueue_deliveries(&batch).await.unwrap(), 60);
    let claimers = stores.iter().enumerate().flat_map(|(s, store)| {
        (0..3).map(move |t| {
            let store = store.clone();
            tokio::spawn(async move {
                let holder = format!("instance-{s}-task-{t}");
                let mut got = Vec::new();
                // Bounded: 60 rows, at least one per round until they are all claimed.
                for _ in 0..61 {
                    let claimed = store.claim_deliveries(&holder, now, 2, Duration::from_secs(60)).await.unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    got.extend(claimed.into_iter().map(|d| d.seq));
                }
                got
            })
        })
    });
    let mut seqs: Vec<i64> =
        join_all(claimers.collect::<Vec<_>>()).await.into_iter().flat_map(Result::unwrap).collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a delivery was claimed by two instances");
    assert_eq!(n, 60, "every due delivery was claimed");

    let kind = EphemeralKind::OAuthState;
    for round in 0..5 {
        let key = format!("state-{target}-{round}");
        stores[0].put_ephemeral(kind, &key, b"verifier", now + Duration::from_secs(60)).await.unwrap();
        let takers = stores.iter().flat_map(|store| {
            (0..3).map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.take_ephemeral(kind, &key).await.unwrap() })
            })
        });
        let winners: Vec<_> =
            join_all(takers.collect::<Vec<_>>()).await.into_iter().filter_map(Result::unwrap).collect();
        assert_eq!(winners, [b"verifier".to_vec()], "round {round}: one taker wins");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_sqlite_file_never_share_a_claim_or_a_take() {
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let key = MasterKey::generate();
    let stores: Vec<Arc<dyn ConnectionStore>> =
        (0..3).map(|_| Arc::new(SqliteStore::open(&path, key.clone(), Arc::new(c.clone())).unwrap()) as _).collect();
    claims_and_takes_across_instances(stores, c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgres_never_share_a_claim_or_a_take() {
    let c = clock();
    let key = MasterKey::generate();
    let schema = PgSchema::new().await;
    let mut stores: Vec<Arc<dyn ConnectionStore>> = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PostgresStore::connect(&schema.url, key.clone(), Arc::new(c.clone())).await.unwrap()));
    }
    claims_and_takes_across_instances(stores, c).await;
}
