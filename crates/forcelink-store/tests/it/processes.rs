//! Real operating-system processes sharing one store: single flight across processes (SQLite
//! and PostgreSQL), and a writer killed with SIGKILL mid-stream leaving a sound SQLite file.
//!
//! Children re-run this test binary on one `#[ignore]`d entry-point test, told what to do by
//! `FORCELINK_TEST_CHILD*` variables; they report on stdout lines starting with [`MARK`] and
//! start together when the parent writes a line to their stdin. Every wait is bounded.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::store::{CasOutcome, ConnectionId, TokenStore};
use forcelink_auth::{AppCredentials, CacheConfig, Clock, Endpoints, ManualClock, TokenCache, Transport, UrlPolicy};
use forcelink_store::{KeySource, MasterKey, SqliteStore, StoreLocation, open_store};
use futures_util::future::join_all;
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use url::Url;

use crate::backends::PgSchema;
use crate::suite::token_set;

/// Prefix of the lines children write for the parent (libtest writes its own lines too).
const MARK: &str = "forcelink-child:";
/// Longest wait for any one child event (start-up includes running the test binary).
const CHILD_WAIT: Duration = Duration::from_secs(60);
/// Callers per child asking for the token at once.
const CALLERS_PER_CHILD: usize = 25;

#[allow(clippy::disallowed_methods)] // a child process takes its orders from its environment
fn child_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn order(name: &str) -> String {
    child_env(name).unwrap_or_else(|| panic!("{name} must be set for a child process"))
}

/// Writes one line for the parent at once (stdout is a pipe: flush each line).
fn report(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK} {line}").unwrap();
    out.flush().unwrap();
}

fn fingerprint(token: &str) -> String {
    hex::encode(&sha2::Sha256::digest(token.as_bytes())[..8])
}

/// Starts this test binary running only `entry`, with `env` set.
fn spawn_child(entry: &str, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", entry, "--nocapture", "--include-ignored"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd.spawn().unwrap()
}

/// The next line this child reports (its [`MARK`] removed), within [`CHILD_WAIT`].
async fn next_report(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    loop {
        let line = tokio::time::timeout(CHILD_WAIT, lines.next_line())
            .await
            .expect("the child reported in time")
            .unwrap()
            .expect("the child ended before reporting");
        if let Some(rest) = line.strip_prefix(MARK) {
            return rest.trim().to_owned();
        }
    }
}

async fn wait_success(child: &mut Child) {
    let status = tokio::time::timeout(CHILD_WAIT, child.wait()).await.expect("the child exited in time").unwrap();
    assert!(status.success(), "child failed: {status}");
}

/// `n` processes each build a `TokenCache` over the store at `location` and, released together,
/// ask for an expired token with [`CALLERS_PER_CHILD`] callers each: one token request in all.
async fn one_renewal_across_processes(location: StoreLocation, n: usize) {
    let clock = ManualClock::starting_now();
    let key = MasterKey::generate();
    let source = KeySource::Base64(key.to_base64());
    let conn = ConnectionId::new("flight");
    let store = open_store(&location, &source, Arc::new(clock.clone())).await.unwrap();
    // A token set that expired an hour ago.
    let mut expired = token_set("00D!expired-access", None, &clock);
    expired.issued_at = clock.now() - Duration::from_secs(7200);
    expired.expires_at = Some(clock.now() - Duration::from_secs(3600));
    assert!(matches!(store.compare_and_swap(&conn, None, &expired).await.unwrap(), CasOutcome::Swapped { .. }));

    let pg = forcelink_test_support::spawn_playground().await;
    let location_text = match &location {
        StoreLocation::Sqlite(p) => format!("sqlite:{}", p.display()),
        StoreLocation::Postgres(url) => url.clone(),
    };
    let env = [
        ("FORCELINK_TEST_CHILD", "renew".to_owned()),
        ("FORCELINK_TEST_CHILD_STORE", location_text),
        ("FORCELINK_TEST_CHILD_KEY", key.to_base64()),
        ("FORCELINK_TEST_CHILD_CONNECTION", conn.as_str().to_owned()),
        ("FORCELINK_TEST_CHILD_INSTANCE_URL", pg.instance_url().to_owned()),
        ("FORCELINK_TEST_CHILD_CLIENT_ID", pg.info.client.client_id.clone()),
        ("FORCELINK_TEST_CHILD_CLIENT_SECRET", pg.info.client.client_secret.clone()),
    ];
    let mut children: Vec<Child> = (0..n).map(|_| spawn_child("processes::child_renews_a_token", &env)).collect();
    let mut outputs: Vec<_> = children.iter_mut().map(|c| BufReader::new(c.stdout.take().unwrap()).lines()).collect();
    for out in &mut outputs {
        assert_eq!(next_report(out).await, "ready");
    }
    // Everyone is ready: release them together.
    for child in &mut children {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        stdin.flush().await.unwrap();
    }
    let mut fingerprints = Vec::new();
    for out in &mut outputs {
        let line = next_report(out).await;
        fingerprints
            .push(line.strip_prefix("token ").unwrap_or_else(|| panic!("unexpected report {line:?}")).to_owned());
    }
    for child in &mut children {
        wait_success(child).await;
    }
    assert_eq!(pg.control.token_requests("client_credentials").await, 1, "one token request across {n} processes");
    assert!(fingerprints.iter().all(|f| *f == fingerprints[0]), "every process got the same token: {fingerprints:?}");
    let stored = store.load(&conn).await.unwrap().unwrap();
    assert_eq!(fingerprint(stored.set.access_token.secret()), fingerprints[0]);
    assert_ne!(stored.set.access_token.secret(), "00D!expired-access");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_one_sqlite_file_renew_once() {
    let dir = tempfile::tempdir().unwrap();
    one_renewal_across_processes(StoreLocation::Sqlite(dir.path().join("shared.db")), 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_postgres_renew_once() {
    let schema = PgSchema::new().await;
    one_renewal_across_processes(StoreLocation::Postgres(schema.url.clone()), 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process entry point, run by processes::*_renew_once"]
async fn child_renews_a_token() {
    if child_env("FORCELINK_TEST_CHILD").as_deref() != Some("renew") {
        return;
    }
    let clock = ManualClock::starting_now();
    let location = StoreLocation::parse(&order("FORCELINK_TEST_CHILD_STORE"));
    let key = KeySource::Base64(order("FORCELINK_TEST_CHILD_KEY"));
    let store = open_store(&location, &key, Arc::new(clock.clone())).await.unwrap();
    let transport = Transport::new(
        forcelink_auth::wire::default_http_client().unwrap(),
        Arc::new(clock.clone()),
        UrlPolicy::new().allow_any_loopback(),
    );
    let app = AppCredentials::new(
        order("FORCELINK_TEST_CHILD_CLIENT_ID"),
        Some(ClientSecret::new(order("FORCELINK_TEST_CHILD_CLIENT_SECRET"))),
    );
    let endpoints = Endpoints::salesforce(&Url::parse(&order("FORCELINK_TEST_CHILD_INSTANCE_URL")).unwrap());
    let source = ClientCredentials::new(transport, endpoints, app).unwrap();
    let cache = TokenCache::new(
        ConnectionId::new(order("FORCELINK_TEST_CHILD_CONNECTION")),
        Arc::new(source),
        store,
        Arc::new(clock),
        CacheConfig::default(),
    );
    report("ready");
    let mut go = String::new();
    tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut go)).await.unwrap().unwrap();
    let callers = (0..CALLERS_PER_CHILD).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_token().await })
    });
    let tokens: Vec<String> =
        join_all(callers).await.into_iter().map(|r| r.unwrap().unwrap().access_token.secret().to_owned()).collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token within the process");
    report(&format!("token {}", fingerprint(&tokens[0])));
}

/// Most writes a crash-test child makes if nobody stops it.
const WRITER_MAX_WRITES: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_write_leaves_a_sound_sqlite_file() {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let key = MasterKey::generate();
    let conn = ConnectionId::new("crash");
    let env = [
        ("FORCELINK_TEST_CHILD", "write".to_owned()),
        ("FORCELINK_TEST_CHILD_STORE", path.display().to_string()),
        ("FORCELINK_TEST_CHILD_KEY", key.to_base64()),
        ("FORCELINK_TEST_CHILD_CONNECTION", conn.as_str().to_owned()),
    ];
    // A few rounds, each child carrying on from what the last one left.
    for round in 0..3 {
        let kill_after = rand::thread_rng().gen_range(20..=200);
        let mut child = spawn_child("processes::child_writes_token_sets", &env);
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last_reported = 0;
        for _ in 0..kill_after {
            let line = next_report(&mut out).await;
            last_reported = line.strip_prefix("wrote ").and_then(|v| v.parse::<u64>().ok()).expect("a write report");
        }
        // SIGKILL: no destructor, no flush, wherever the child happens to be.
        child.start_kill().unwrap();
        let status = tokio::time::timeout(CHILD_WAIT, child.wait()).await.unwrap().unwrap();
        assert!(!status.success(), "round {round}: the child was killed, not finished");

        let db = rusqlite::Connection::open(&path).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(db);
        let store = SqliteStore::open(&path, key.clone(), Arc::new(ManualClock::starting_now())).unwrap();
        let loaded = store.load(&conn).await.unwrap().expect("a token set survives");
        // A complete set the child wrote: this report's or a later one the kill cut off from
        // reporting; its parts all belong to the same write.
        assert!(loaded.version >= last_reported, "round {round}: {} < {last_reported}", loaded.version);
        assert_eq!(loaded.set.access_token.secret(), format!("00D!crash-{}", loaded.version));
        assert_eq!(loaded.set.refresh_token.unwrap().secret(), format!("5Aep-crash-{}", loaded.version));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process entry point, run by processes::a_writer_killed_mid_write_leaves_a_sound_sqlite_file"]
async fn child_writes_token_sets() {
    if child_env("FORCELINK_TEST_CHILD").as_deref() != Some("write") {
        return;
    }
    let clock = ManualClock::starting_now();
    let location = StoreLocation::parse(&order("FORCELINK_TEST_CHILD_STORE"));
    let key = KeySource::Base64(order("FORCELINK_TEST_CHILD_KEY"));
    let store = open_store(&location, &key, Arc::new(clock.clone())).await.unwrap();
    let conn = ConnectionId::new(order("FORCELINK_TEST_CHILD_CONNECTION"));
    for _ in 0..WRITER_MAX_WRITES {
        let current = store.load(&conn).await.unwrap().map(|s| s.version);
        let next = current.unwrap_or(0) + 1;
        let set = token_set(&format!("00D!crash-{next}"), Some(&format!("5Aep-crash-{next}")), &clock);
        match store.compare_and_swap(&conn, current, &set).await.unwrap() {
            CasOutcome::Swapped { version } => {
                assert_eq!(version, next);
                report(&format!("wrote {version}"));
            }
            CasOutcome::Conflict { .. } => panic!("no other writer exists"),
        }
    }
}
