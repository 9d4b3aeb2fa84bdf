//! What someone with write access to the database but without the master key can do to API
//! keys: nothing. A planted row (the hash of a secret they chose, every connection, every
//! capability) and a widened or un-revoked row do not verify; a warning names the key's id and
//! nothing else. The same bodies run on SQLite and PostgreSQL (`integrity_suite!`), each with a
//! raw handle on its database to play the attacker. Also: migration from schema 2 signs the rows
//! already there, and the files and directories a SQLite store creates are private.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forcelink_auth::{Clock, ManualClock};
use forcelink_store::{
    ApiKeyRecord, ApiKeySecret, ConnectionStore, KeySource, MasterKey, PostgresStore, Scope, Scopes, SqliteStore,
    StoreLocation, apikey, open_store, rotate_key,
};

use crate::backends::{Keep, PgSchema};

/// The attacker's handle: plain SQL on the store's database, outside forcelink.
pub enum Raw {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Raw {
    /// The API-key table's name in this backend.
    fn api_keys(&self) -> &'static str {
        match self {
            Raw::Sqlite(_) => "api_keys",
            Raw::Postgres(_) => "forcelink_api_keys",
        }
    }

    /// Runs `sql`, with `{api_keys}` replaced by the table's name.
    async fn exec(&self, sql: &str) {
        let sql = sql.replace("{api_keys}", self.api_keys());
        match self {
            Raw::Sqlite(path) => {
                let db = rusqlite::Connection::open(path).unwrap();
                db.busy_timeout(Duration::from_secs(10)).unwrap();
                db.execute_batch(&sql).unwrap();
            }
            Raw::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                let task = tokio::spawn(connection);
                client.batch_execute(&sql).await.unwrap();
                drop(client);
                task.await.unwrap().unwrap();
            }
        }
    }
}

/// SQL text literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The INSERT an attacker would write: a key for every connection with every capability, whose
/// secret they know, with `mac` as its MAC column (SQL text: `NULL` or a literal).
fn planted_row(record: &ApiKeyRecord, mac: &str) -> String {
    let created = record.created_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!(
        "INSERT INTO {{api_keys}} (id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms, mac)
         VALUES ({}, {}, 'ops', '[\"*\"]', '[\"*\"]', {created}, NULL, {mac})",
        lit(&record.id),
        lit(&record.secret_hash),
    )
}

/// Captures what `tracing` writes on this thread while the guard lives.
struct Captured {
    text: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Captured {
    fn start() -> Self {
        let text = Arc::new(Mutex::new(Vec::new()));
        let sink = text.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        Self { text, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn key_for(label: &str, connections: &[&str], scopes: Scopes, clock: &ManualClock) -> (ApiKeySecret, ApiKeyRecord) {
    apikey::generate(label, connections.iter().map(|c| (*c).to_owned()).collect(), scopes, clock.now())
}

pub async fn a_planted_api_key_row_is_treated_as_absent(store: Arc<dyn ConnectionStore>, clock: ManualClock, raw: Raw) {
    let (genuine, genuine_record) = key_for("engine", &["prod"], Scope::Token.into(), &clock);
    store.put_api_key(&genuine_record).await.unwrap();
    assert!(apikey::verify(&*store, genuine.secret(), clock.now()).await.unwrap().is_some());

    let log = Captured::start();
    // Without a MAC, then with the genuine row's MAC (valid, but for other values).
    let genuine_mac = format!(
        "(SELECT mac FROM {{api_keys}} WHERE id = {})",
        lit(&genuine_record.id) // a subquery: the attacker copies it
    );
    for mac in ["NULL".to_owned(), genuine_mac, lit(&"0".repeat(64))] {
        let (planted, record) = key_for("ops", &["*"], Scopes::All, &clock);
        raw.exec(&planted_row(&record, &mac)).await;
        assert!(apikey::verify(&*store, planted.secret(), clock.now()).await.unwrap().is_none(), "mac {mac}");
        assert!(store.api_key(&record.id).await.unwrap().is_none(), "mac {mac}");
        assert!(!store.api_keys().await.unwrap().iter().any(|k| k.id == record.id), "not listed either");
        // Revoking it reports an unknown key and does not sign it on the way.
        assert!(!store.revoke_api_key(&record.id, clock.now()).await.unwrap());
        assert!(store.api_key(&record.id).await.unwrap().is_none());
        let text = log.text();
        assert!(text.contains("WARN") && text.contains(&record.id), "the warning names the key: {text}");
        assert!(!text.contains(&record.secret_hash), "never the hash: {text}");
    }
    // The genuine key is untouched by all this.
    let ok = apikey::verify(&*store, genuine.secret(), clock.now()).await.unwrap().expect("genuine key verifies");
    assert_eq!(ok.id, genuine_record.id);
    assert!(!log.text().contains(&genuine_record.id), "a genuine key raises no warning");
    assert_eq!(store.api_keys().await.unwrap().iter().filter(|k| k.id == genuine_record.id).count(), 1);
}

pub async fn a_tampered_api_key_row_is_treated_as_absent(
    store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
    raw: Raw,
) {
    let (key, record) = key_for("engine", &["prod"], Scope::Token.into(), &clock);
    store.put_api_key(&record).await.unwrap();
    let id = lit(&record.id);
    let verifies = || async { apikey::verify(&*store, key.secret(), clock.now()).await.unwrap().is_some() };
    assert!(verifies().await);

    // Each change alone voids the row; putting the value back restores it (the MAC covers values).
    let changes = [
        ("connections", r#"'["*"]'"#, r#"'["prod"]'"#),
        ("capabilities", r#"'["*"]'"#, r#"'["token"]'"#),
        ("label", "'renamed'", "'engine'"),
    ];
    for (column, widened, original) in changes {
        raw.exec(&format!("UPDATE {{api_keys}} SET {column} = {widened} WHERE id = {id}")).await;
        assert!(!verifies().await, "{column} changed outside forcelink");
        raw.exec(&format!("UPDATE {{api_keys}} SET {column} = {original} WHERE id = {id}")).await;
        assert!(verifies().await, "{column} restored");
    }
    raw.exec(&format!("UPDATE {{api_keys}} SET created_at_ms = created_at_ms + 1 WHERE id = {id}")).await;
    assert!(!verifies().await, "created_at changed");
    raw.exec(&format!("UPDATE {{api_keys}} SET created_at_ms = created_at_ms - 1 WHERE id = {id}")).await;
    assert!(verifies().await);

    // A revocation cannot be undone by clearing the column.
    clock.advance(Duration::from_secs(1));
    assert!(store.revoke_api_key(&record.id, clock.now()).await.unwrap());
    assert!(!verifies().await, "revoked");
    assert!(store.api_key(&record.id).await.unwrap().unwrap().revoked_at.is_some(), "revocation is signed");
    raw.exec(&format!("UPDATE {{api_keys}} SET revoked_at_ms = NULL WHERE id = {id}")).await;
    assert!(!verifies().await, "un-revoked outside forcelink: still refused");
    assert!(store.api_key(&record.id).await.unwrap().is_none());

    // A read-only key cannot be made writable by dropping the marker from its stored list.
    let (key, mut record) = key_for("reader", &["prod"], Scope::Mcp.into(), &clock);
    record.read_only = true;
    store.put_api_key(&record).await.unwrap();
    let id = lit(&record.id);
    let read_only = || async { apikey::verify(&*store, key.secret(), clock.now()).await.unwrap().map(|r| r.read_only) };
    assert_eq!(read_only().await, Some(true));
    raw.exec(&format!(r#"UPDATE {{api_keys}} SET capabilities = '["mcp"]' WHERE id = {id}"#)).await;
    assert_eq!(read_only().await, None, "the read-only marker removed outside forcelink");
    raw.exec(&format!(r#"UPDATE {{api_keys}} SET capabilities = '["mcp","!read-only"]' WHERE id = {id}"#)).await;
    assert_eq!(read_only().await, Some(true), "marker restored");
}

pub async fn rotation_re_signs_api_keys_and_keeps_planted_rows_out(
    _store: Arc<dyn ConnectionStore>,
    clock: ManualClock,
    raw: Raw,
) {
    // The suite's store has a random key; rotation needs a key source, so this test makes a
    // store of its own on the same backend, with a key file.
    let dir = tempfile::tempdir().unwrap();
    let source = KeySource::File(dir.path().join("master.key"));
    let mut _schema = None;
    let location = match raw {
        Raw::Sqlite(_) => StoreLocation::Sqlite(dir.path().join("rotated.db")),
        Raw::Postgres(_) => {
            let schema = PgSchema::new().await;
            let location = StoreLocation::Postgres(schema.url.clone());
            _schema = Some(schema);
            location
        }
    };
    let raw = match &location {
        StoreLocation::Sqlite(p) => Raw::Sqlite(p.clone()),
        StoreLocation::Postgres(u) => Raw::Postgres(u.clone()),
    };
    let store = open_store(&location, &source, Arc::new(clock.clone())).await.unwrap();
    let (key, record) = key_for("engine", &["prod"], Scope::Token.into(), &clock);
    store.put_api_key(&record).await.unwrap();
    let (planted, planted_record) = key_for("ops", &["*"], Scopes::All, &clock);
    raw.exec(&planted_row(&planted_record, "NULL")).await;

    let report = rotate_key(&location, &source, Arc::new(clock.clone())).await.unwrap();
    assert_eq!(report.api_keys, 1, "the genuine key is re-signed, the planted one is not");
    // The process that opened the store before the rotation cannot sign new keys any more.
    let (_, late) = key_for("late", &["prod"], Scope::Token.into(), &clock);
    let err = store.put_api_key(&late).await.unwrap_err();
    assert!(err.to_string().contains("rotated"), "{err}");
    drop(store);

    let store = open_store(&location, &source, Arc::new(clock.clone())).await.unwrap();
    assert!(apikey::verify(&*store, key.secret(), clock.now()).await.unwrap().is_some(), "re-signed");
    assert!(apikey::verify(&*store, planted.secret(), clock.now()).await.unwrap().is_none(), "not blessed");
}

/// Declares the integrity tests for one backend: `$make` is an async expression giving
/// `(Arc<dyn ConnectionStore>, ManualClock, what to keep alive, Raw)`.
#[macro_export]
macro_rules! integrity_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn a_planted_api_key_row_is_treated_as_absent() {
                let (s, c, _keep, raw) = $make.await;
                $crate::integrity::a_planted_api_key_row_is_treated_as_absent(s, c, raw).await
            }
            #[tokio::test]
            async fn a_tampered_api_key_row_is_treated_as_absent() {
                let (s, c, _keep, raw) = $make.await;
                $crate::integrity::a_tampered_api_key_row_is_treated_as_absent(s, c, raw).await
            }
            #[tokio::test]
            async fn rotation_re_signs_api_keys_and_keeps_planted_rows_out() {
                let (s, c, _keep, raw) = $make.await;
                $crate::integrity::rotation_re_signs_api_keys_and_keeps_planted_rows_out(s, c, raw).await
            }
        }
    };
}

async fn sqlite() -> (Arc<dyn ConnectionStore>, ManualClock, Keep, Raw) {
    let c = ManualClock::starting_now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path, MasterKey::generate(), Arc::new(c.clone())).unwrap();
    (Arc::new(store), c, Keep::Dir(dir), Raw::Sqlite(path))
}

async fn postgres() -> (Arc<dyn ConnectionStore>, ManualClock, Keep, Raw) {
    let c = ManualClock::starting_now();
    let schema = PgSchema::new().await;
    let store = PostgresStore::connect(&schema.url, MasterKey::generate(), Arc::new(c.clone())).await.unwrap();
    let raw = Raw::Postgres(schema.url.clone());
    (Arc::new(store), c, Keep::Schema(schema), raw)
}

integrity_suite!(sqlite_integrity, sqlite());
integrity_suite!(postgres_integrity, postgres());

/// An `api_keys` row as schema version 2 kept it (no MAC), for the migration tests.
fn v2_row(record: &ApiKeyRecord) -> String {
    let created = record.created_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!(
        "INSERT INTO {{api_keys}} (id, secret_hash, label, connections, capabilities, created_at_ms, revoked_at_ms)
         VALUES ({}, {}, 'from v2', '[\"prod\"]', '[\"token\"]', {created}, NULL)",
        lit(&record.id),
        lit(&record.secret_hash),
    )
}

#[tokio::test]
async fn sqlite_schema_2_api_keys_are_signed_by_the_migration() {
    let c = ManualClock::starting_now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let key = MasterKey::generate();
    let (secret, record) = key_for("from v2", &["prod"], Scope::Token.into(), &c);
    // A version 2 store: what this code creates, minus the MAC column, at user_version 2.
    drop(SqliteStore::open(&path, key.clone(), Arc::new(c.clone())).unwrap());
    let raw = Raw::Sqlite(path.clone());
    raw.exec(
        "DROP TABLE api_keys; CREATE TABLE api_keys (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL,
              label TEXT NOT NULL, connections TEXT NOT NULL, capabilities TEXT NOT NULL,
              created_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER); PRAGMA user_version = 2;",
    )
    .await;
    raw.exec(&v2_row(&record)).await;

    let store = SqliteStore::open(&path, key, Arc::new(c.clone())).unwrap();
    let ok = apikey::verify(&store, secret.secret(), c.now()).await.unwrap().expect("signed at migration");
    assert_eq!(ok.label, "from v2");
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
    let unsigned: i64 = db.query_row("SELECT count(*) FROM api_keys WHERE mac IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(unsigned, 0);
}

#[tokio::test]
async fn postgres_schema_2_api_keys_are_signed_by_the_migration() {
    let c = ManualClock::starting_now();
    let schema = PgSchema::new().await;
    let key = MasterKey::generate();
    let (secret, record) = key_for("from v2", &["prod"], Scope::Token.into(), &c);
    drop(PostgresStore::connect(&schema.url, key.clone(), Arc::new(c.clone())).await.unwrap());
    let raw = Raw::Postgres(schema.url.clone());
    raw.exec(
        "ALTER TABLE forcelink_api_keys DROP COLUMN mac;
         UPDATE forcelink_meta SET value = '2' WHERE key = 'schema_version';",
    )
    .await;
    raw.exec(&v2_row(&record)).await;

    let store = PostgresStore::connect(&schema.url, key, Arc::new(c.clone())).await.unwrap();
    let ok = apikey::verify(&store, secret.secret(), c.now()).await.unwrap().expect("signed at migration");
    assert_eq!(ok.label, "from v2");
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let version: String =
        client.query_one("SELECT value FROM forcelink_meta WHERE key = 'schema_version'", &[]).await.unwrap().get(0);
    assert_eq!(version, "6");
    let unsigned: i64 =
        client.query_one("SELECT count(*) FROM forcelink_api_keys WHERE mac IS NULL", &[]).await.unwrap().get(0);
    assert_eq!(unsigned, 0);
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_store_and_its_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let c = ManualClock::starting_now();
    let dir = tempfile::tempdir().unwrap();
    // Two levels the store creates, inside a directory it did not create (left as it was).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("data/forcelink/store.db");
    let store = SqliteStore::open(&path, MasterKey::generate(), Arc::new(c.clone())).unwrap();
    // A write, so the WAL and its index exist while the store is open.
    let (_, record) = key_for("engine", &["prod"], Scope::Token.into(), &c);
    store.put_api_key(&record).await.unwrap();
    let wal = path.with_file_name("store.db-wal");
    let shm = path.with_file_name("store.db-shm");
    assert!(wal.exists() && shm.exists(), "WAL mode keeps both files while open");
    assert_eq!(mode(&path), 0o600, "store.db");
    assert_eq!(mode(&wal), 0o600, "store.db-wal");
    assert_eq!(mode(&shm), 0o600, "store.db-shm");
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("data/forcelink")), 0o700);
    assert_eq!(mode(dir.path()), 0o755, "an existing directory is not changed");

    // The same through open_store with a key file in a directory of its own.
    let location = StoreLocation::Sqlite(dir.path().join("other/store.db"));
    let key_file = dir.path().join("keys/master.key");
    drop(open_store(&location, &KeySource::File(key_file.clone()), Arc::new(c.clone())).await.unwrap());
    assert_eq!(mode(&dir.path().join("other/store.db")), 0o600);
    assert_eq!(mode(&dir.path().join("other")), 0o700);
    assert_eq!(mode(&dir.path().join("keys")), 0o700);
    assert_eq!(mode(&key_file), 0o600);

    // An existing store file others can read still opens, with a warning saying what to run.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = Captured::start();
    drop(SqliteStore::open(&path, MasterKey::generate(), Arc::new(c.clone())).unwrap_err());
    let text = log.text();
    assert!(text.contains("WARN") && text.contains("chmod 600") && text.contains("644"), "{text}");
}
