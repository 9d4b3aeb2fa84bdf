//! `open_store`: locations, key sources, refusing the wrong key, and schema migrations.

use std::sync::Arc;

use forcelink_auth::ManualClock;
use forcelink_auth::store::ConnectionId;
use forcelink_store::{CheckpointKey, KeySource, MasterKey, OpenError, PutMode, StoreLocation, open_store};

use crate::backends::PgSchema;
use crate::suite::{spec_with_secrets, token_set};

fn clock() -> ManualClock {
    ManualClock::starting_now()
}

#[tokio::test]
async fn sqlite_store_with_a_key_file_is_created_reopened_and_refuses_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::parse(&format!("sqlite:{}", dir.path().join("data/store.db").display()));
    let key_file = dir.path().join("keys/master.key");
    let source = KeySource::File(key_file.clone());
    let name = ConnectionId::new("prod");
    let spec = spec_with_secrets("cs", "pw", "env:KEY");
    {
        let store = open_store(&location, &source, Arc::new(clock())).await.unwrap();
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let key = MasterKey::load(&key_file).unwrap();

    let store = open_store(&location, &source, Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
    drop(store);
    // The same key given as base64 opens it too.
    let store = open_store(&location, &KeySource::Base64(key.to_base64()), Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
    drop(store);

    let wrong = MasterKey::generate();
    let err = open_store(&location, &KeySource::Base64(wrong.to_base64()), Arc::new(clock())).await.unwrap_err();
    assert!(matches!(err, OpenError::Key(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&key.id_hex()) && text.contains(&wrong.id_hex()), "both key ids named: {text}");
    assert!(text.contains("FORCELINK_MASTER_KEY") && text.contains("key file"), "says what to do: {text}");
    assert!(!text.contains(&key.to_base64()) && !text.contains(&wrong.to_base64()), "no key in: {text}");
    // A missing key file for an existing store is not created with a key that cannot open it.
    let other_path = dir.path().join("keys/other.key");
    let err = open_store(&location, &KeySource::File(other_path.clone()), Arc::new(clock())).await.unwrap_err();
    assert!(matches!(err, OpenError::Key(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not exist") && text.contains(&key.id_hex()), "{text}");
    assert!(!other_path.exists());
    let store = open_store(&location, &source, Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
}

#[tokio::test]
async fn bad_base64_keys_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::Sqlite(dir.path().join("store.db"));
    let err = open_store(&location, &KeySource::Base64("c2VjcmV0LWJ1dC1zaG9ydA==".into()), Arc::new(clock()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("32") && !text.contains("c2VjcmV0LWJ1dC1zaG9ydA"), "{text}");
    assert!(!location_exists(&location), "nothing created for a bad key");
}

fn location_exists(location: &StoreLocation) -> bool {
    match location {
        StoreLocation::Sqlite(p) => p.exists(),
        StoreLocation::Postgres(_) => true,
    }
}

/// The schema forcelink wrote before connections, audit log and API keys existed (version 1).
const SQLITE_SCHEMA_V1: &str = "
CREATE TABLE token_sets (connection TEXT PRIMARY KEY, version INTEGER NOT NULL, sealed BLOB NOT NULL,
    updated_at_ms INTEGER NOT NULL);
CREATE TABLE leases (connection TEXT PRIMARY KEY, holder TEXT NOT NULL, fence INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL);
CREATE TABLE fences (id INTEGER PRIMARY KEY CHECK (id = 1), next INTEGER NOT NULL);
INSERT INTO fences (id, next) VALUES (1, 7);
CREATE TABLE approvals (username TEXT NOT NULL, client_id TEXT NOT NULL, connection TEXT NOT NULL,
    approved_at_ms INTEGER NOT NULL, PRIMARY KEY (username, client_id, connection));
PRAGMA user_version = 1;
";

#[tokio::test]
async fn sqlite_schema_1_is_migrated_keeping_its_token_sets() {
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let key = MasterKey::generate();
    let name = ConnectionId::new("from-v1");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(SQLITE_SCHEMA_V1).unwrap();
        let sealed = forcelink_store::codec::seal(&key, &name, &token_set("00D!v1-access", Some("5Aep-v1"), &c));
        db.execute(
            "INSERT INTO token_sets (connection, version, sealed, updated_at_ms) VALUES (?1, 4, ?2, 0)",
            rusqlite::params![name.as_str(), sealed],
        )
        .unwrap();
    }
    // A v1 store records no key id; the sealed rows name theirs, so a wrong key is still refused.
    let wrong = MasterKey::generate();
    let err =
        open_store(&StoreLocation::Sqlite(path.clone()), &KeySource::Base64(wrong.to_base64()), Arc::new(c.clone()))
            .await
            .unwrap_err();
    assert!(err.to_string().contains(&key.id_hex()), "{err}");
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 1, "a refused open changes nothing");

    let store =
        open_store(&StoreLocation::Sqlite(path.clone()), &KeySource::Base64(key.to_base64()), Arc::new(c.clone()))
            .await
            .unwrap();
    let loaded = store.load(&name).await.unwrap().unwrap();
    assert_eq!(loaded.version, 4);
    assert_eq!(loaded.set.access_token.secret(), "00D!v1-access");
    assert!(store.connections().await.unwrap().is_empty());
    store.put_connection(&name, &spec_with_secrets("cs", "pw", "env:K"), PutMode::Create).await.unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 6, "migrated through every step to the current version");
    let recorded: String = db.query_row("SELECT value FROM meta WHERE key = 'key_id'", [], |r| r.get(0)).unwrap();
    assert_eq!(recorded, key.id_hex());
    let lease = store
        .acquire_lease(
            &name,
            &forcelink_auth::store::LeaseHolder("h".into()),
            std::time::Duration::from_secs(5),
            std::time::Duration::ZERO,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.fence, 8, "the fence sequence carries on");
}

#[tokio::test]
async fn postgres_store_refuses_another_key_naming_both() {
    let schema = PgSchema::new().await;
    let location = StoreLocation::parse(&schema.url);
    assert!(matches!(location, StoreLocation::Postgres(_)));
    let key = MasterKey::generate();
    let name = ConnectionId::new("prod");
    let spec = spec_with_secrets("cs", "pw", "env:KEY");
    {
        let store = open_store(&location, &KeySource::Base64(key.to_base64()), Arc::new(clock())).await.unwrap();
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
    }
    let wrong = MasterKey::generate();
    let err = open_store(&location, &KeySource::Base64(wrong.to_base64()), Arc::new(clock())).await.unwrap_err();
    assert!(matches!(err, OpenError::Key(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&key.id_hex()) && text.contains(&wrong.id_hex()), "{text}");
    assert!(!text.contains(&key.to_base64()) && !text.contains(&wrong.to_base64()), "{text}");
    let store = open_store(&location, &KeySource::Base64(key.to_base64()), Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
}

#[tokio::test]
async fn postgres_url_passwords_stay_out_of_errors() {
    let location = StoreLocation::parse("postgres://forcelink:pg-hunter2@127.0.0.1:1/nowhere");
    let err = open_store(&location, &KeySource::Base64(MasterKey::generate().to_base64()), Arc::new(clock()))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::Postgres(_)), "{err:?}");
    assert!(!err.to_string().contains("pg-hunter2") && !format!("{err:?}").contains("pg-hunter2"), "{err}");
}

/// The tables forcelink created before connections, audit log and API keys existed (version 1).
const POSTGRES_SCHEMA_V1: &str = "
CREATE TABLE forcelink_token_sets (connection TEXT PRIMARY KEY, version BIGINT NOT NULL, sealed BYTEA NOT NULL,
    updated_at_ms BIGINT NOT NULL);
CREATE TABLE forcelink_leases (connection TEXT PRIMARY KEY, holder TEXT NOT NULL, fence BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL);
CREATE SEQUENCE forcelink_fence;
CREATE TABLE forcelink_approvals (username TEXT NOT NULL, client_id TEXT NOT NULL, connection TEXT NOT NULL,
    approved_at_ms BIGINT NOT NULL, PRIMARY KEY (username, client_id, connection));
";

#[tokio::test]
async fn postgres_schema_1_is_migrated_keeping_its_token_sets() {
    let c = clock();
    let schema = PgSchema::new().await;
    let key = MasterKey::generate();
    let name = ConnectionId::new("from-v1");
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(POSTGRES_SCHEMA_V1).await.unwrap();
    let sealed = forcelink_store::codec::seal(&key, &name, &token_set("00D!v1-access", Some("5Aep-v1"), &c));
    client
        .execute(
            "INSERT INTO forcelink_token_sets (connection, version, sealed, updated_at_ms) VALUES ($1, 3, $2, 0)",
            &[&name.as_str(), &sealed],
        )
        .await
        .unwrap();

    let location = StoreLocation::Postgres(schema.url.clone());
    let wrong = MasterKey::generate();
    let err = open_store(&location, &KeySource::Base64(wrong.to_base64()), Arc::new(c.clone())).await.unwrap_err();
    assert!(err.to_string().contains(&key.id_hex()), "{err}");
    let meta: bool = client.query_one("SELECT to_regclass('forcelink_meta') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!meta, "a refused open changes nothing");

    let store = open_store(&location, &KeySource::Base64(key.to_base64()), Arc::new(c.clone())).await.unwrap();
    let loaded = store.load(&name).await.unwrap().unwrap();
    assert_eq!(loaded.version, 3);
    assert_eq!(loaded.set.refresh_token.as_ref().unwrap().secret(), "5Aep-v1");
    store.put_connection(&name, &spec_with_secrets("cs", "pw", "env:K"), PutMode::Create).await.unwrap();
    let rows: Vec<(String, String)> = client
        .query("SELECT key, value FROM forcelink_meta ORDER BY key", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [("key_id".to_owned(), key.id_hex()), ("schema_version".to_owned(), "6".to_owned())]);
}

#[tokio::test]
async fn postgres_schema_newer_than_this_code_is_refused_clearly() {
    let schema = PgSchema::new().await;
    let location = StoreLocation::Postgres(schema.url.clone());
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    drop(open_store(&location, &key, Arc::new(clock())).await.unwrap());
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.execute("UPDATE forcelink_meta SET value = '99' WHERE key = 'schema_version'", &[]).await.unwrap();
    let err = open_store(&location, &key, Arc::new(clock())).await.unwrap_err();
    assert!(err.to_string().contains("newer than this forcelink"), "{err}");
}

/// A version 3 store: what this code creates, minus the checkpoints table, at version 3, with a
/// connection in it; opening it again adds the table and keeps the connection.
#[tokio::test]
async fn sqlite_schema_3_gains_checkpoints_keeping_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::Sqlite(dir.path().join("v3.db"));
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    let name = ConnectionId::new("from-v3");
    let spec = spec_with_secrets("cs", "pw", "env:K");
    let path = dir.path().join("v3.db");
    {
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
    }
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("DROP TABLE checkpoints; PRAGMA user_version = 3;").unwrap();
    drop(db);

    let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
    let cp = CheckpointKey::new("sync", &name, "/data/AccountChangeEvent").unwrap();
    store.save_checkpoint(&cp, &5u64.to_be_bytes()).await.unwrap();
    assert_eq!(store.checkpoint(&cp).await.unwrap().unwrap().replay_id, 5u64.to_be_bytes());
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
}

#[tokio::test]
async fn postgres_schema_3_gains_checkpoints_keeping_its_connections() {
    let schema = PgSchema::new().await;
    let location = StoreLocation::Postgres(schema.url.clone());
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    let name = ConnectionId::new("from-v3");
    let spec = spec_with_secrets("cs", "pw", "env:K");
    {
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE forcelink_checkpoints; UPDATE forcelink_meta SET value = '3' WHERE key = 'schema_version';",
        )
        .await
        .unwrap();

    let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
    let cp = CheckpointKey::new("sync", &name, "/data/AccountChangeEvent").unwrap();
    store.save_checkpoint(&cp, &5u64.to_be_bytes()).await.unwrap();
    assert_eq!(store.checkpoint(&cp).await.unwrap().unwrap().replay_id, 5u64.to_be_bytes());
    let version: String =
        client.query_one("SELECT value FROM forcelink_meta WHERE key = 'schema_version'", &[]).await.unwrap().get(0);
    assert_eq!(version, "6");
}

/// What a version 5 store can do that a version 4 one could not: a health record (with its
/// delivery), a webhook, an ephemeral record, a work lease.
async fn uses_the_version_5_tables(store: &dyn forcelink_store::ConnectionStore, name: &ConnectionId) {
    use std::time::Duration;

    use forcelink_auth::Clock;
    use forcelink_store::{ConnectionHealth, EphemeralKind, HealthWrite};

    let now = forcelink_auth::SystemClock.now();
    let health = ConnectionHealth::unknown(name.clone(), now);
    let delivery = crate::suite_ops::new_delivery("msg_v5", "wh_v5", now);
    assert_eq!(store.write_health(&health, None, &[delivery]).await.unwrap(), HealthWrite::Written(1));
    assert_eq!(store.delivery_counts("wh_v5").await.unwrap().pending, 1);
    store.put_webhook(&crate::suite_ops::webhook("wh_v5", "whsec_djU=", now)).await.unwrap();
    assert_eq!(store.webhook("wh_v5").await.unwrap().unwrap().secret.secret(), "whsec_djU=");
    store.put_ephemeral(EphemeralKind::ConnectSession, "link", b"v5", now + Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.take_ephemeral(EphemeralKind::ConnectSession, "link").await.unwrap().unwrap(), b"v5");
    assert!(store.try_work_lease("checks", "me", Duration::from_secs(5)).await.unwrap());
}

/// A version 4 store (no health, lease, webhook, outbox or ephemeral tables) gains them on open
/// and keeps its connections.
#[tokio::test]
async fn sqlite_schema_4_gains_health_webhooks_outbox_and_ephemeral_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    let location = StoreLocation::Sqlite(path.clone());
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    let name = ConnectionId::new("from-v4");
    let spec = spec_with_secrets("cs", "pw", "env:K");
    {
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
    }
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "DROP TABLE connection_health; DROP TABLE work_leases; DROP TABLE webhooks; DROP TABLE outbox;
         DROP TABLE ephemeral; PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(db);

    let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
    uses_the_version_5_tables(&*store, &name).await;
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
}

#[tokio::test]
async fn postgres_schema_4_gains_health_webhooks_outbox_and_ephemeral_tables() {
    let schema = PgSchema::new().await;
    let location = StoreLocation::Postgres(schema.url.clone());
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    let name = ConnectionId::new("from-v4");
    let spec = spec_with_secrets("cs", "pw", "env:K");
    {
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE forcelink_connection_health, forcelink_work_leases, forcelink_webhooks, forcelink_outbox,
                        forcelink_ephemeral;
             UPDATE forcelink_meta SET value = '4' WHERE key = 'schema_version';",
        )
        .await
        .unwrap();

    let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
    assert_eq!(store.connection(&name).await.unwrap().unwrap().spec, spec);
    uses_the_version_5_tables(&*store, &name).await;
    let version: String =
        client.query_one("SELECT value FROM forcelink_meta WHERE key = 'schema_version'", &[]).await.unwrap().get(0);
    assert_eq!(version, "6");
}

/// What a version 6 store can do that a version 5 one could not: a subscription, and its queued
/// rows (enqueued before the upgrade) kept from the webhook sender for its consumer.
async fn uses_the_version_6_tables(store: &dyn forcelink_store::ConnectionStore, queued_target: &str) {
    use std::time::Duration;

    use forcelink_auth::Clock;

    let now = forcelink_auth::SystemClock.now();
    let sub = crate::suite_subscriptions::subscription("sub_v6", "whsec_djY=", now);
    store.put_subscription(&sub).await.unwrap();
    assert_eq!(store.subscription("sub_v6").await.unwrap().unwrap().secret.secret(), "whsec_djY=");
    let claimed = store.claim_deliveries("sender", now, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(crate::suite_ops::ids(&claimed), ["for_hook"], "the ordered row is left out");
    let ordered = store.claim_target_deliveries(queued_target, "consumer", now, 10, Duration::from_secs(30)).await;
    assert_eq!(crate::suite_ops::ids(&ordered.unwrap()), ["for_sub"]);
}

/// Rows enqueued in a version 5 store: one for a webhook, one for an ordered target.
async fn enqueue_before_the_upgrade(store: &dyn forcelink_store::ConnectionStore, queued_target: &str) {
    use forcelink_auth::Clock;

    let at = forcelink_auth::SystemClock.now() - std::time::Duration::from_secs(60);
    let rows = [
        crate::suite_ops::new_delivery("for_sub", queued_target, at),
        crate::suite_ops::new_delivery("for_hook", "wh_v5", at),
    ];
    assert_eq!(store.enqueue_deliveries(&rows).await.unwrap(), 2);
}

/// A version 5 store (no subscriptions, the outbox indexed by due time only) gains the
/// subscriptions table and the outbox's new indexes on open, keeping its queued rows.
#[tokio::test]
async fn sqlite_schema_5_gains_subscriptions_and_keeps_its_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    let location = StoreLocation::Sqlite(path.clone());
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    {
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        enqueue_before_the_upgrade(&*store, "sub_v5").await;
    }
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "DROP TABLE subscriptions; DROP INDEX outbox_by_target; DROP INDEX outbox_due_unordered;
         CREATE INDEX outbox_due ON outbox (state, next_attempt_ms, seq); PRAGMA user_version = 5;",
    )
    .unwrap();
    drop(db);

    let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
    uses_the_version_6_tables(&*store, "sub_v5").await;
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
    let mut stmt = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox'").unwrap();
    let indexes: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(indexes.iter().any(|i| i == "outbox_by_target"), "{indexes:?}");
    assert!(indexes.iter().any(|i| i == "outbox_due_unordered"), "{indexes:?}");
    assert!(!indexes.iter().any(|i| i == "outbox_due"), "replaced: {indexes:?}");
}

/// The claims' queries are served by the outbox's indexes, not by a scan of the table (so they
/// stay fast however many rows other targets have queued).
#[tokio::test]
async fn sqlite_outbox_claims_and_counts_use_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    drop(
        open_store(
            &StoreLocation::Sqlite(path.clone()),
            &KeySource::Base64(MasterKey::generate().to_base64()),
            Arc::new(clock()),
        )
        .await
        .unwrap(),
    );
    let db = rusqlite::Connection::open(&path).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows: Vec<String> = stmt.query_map([], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
        rows.join("; ")
    };
    let ordered = plan(
        "SELECT seq FROM outbox WHERE target = 'sub_1' AND state = 'pending'
           AND (claim_until_ms IS NULL OR claim_until_ms <= 0 OR claim_holder = 'h') ORDER BY seq LIMIT 10",
    );
    assert!(ordered.contains("outbox_by_target") && !ordered.contains("TEMP B-TREE"), "{ordered}");
    let counts = plan("SELECT state, count(*) FROM outbox WHERE target = 'sub_1' GROUP BY state");
    assert!(counts.contains("COVERING INDEX outbox_by_target"), "{counts}");
    let due = plan(
        "SELECT seq FROM outbox WHERE state = 'pending' AND next_attempt_ms <= 0 AND substr(target, 1, 4) <> 'sub_'
           AND (claim_until_ms IS NULL OR claim_until_ms <= 0) ORDER BY seq LIMIT 10",
    );
    assert!(due.contains("outbox_due_unordered"), "{due}");
}

#[tokio::test]
async fn postgres_schema_5_gains_subscriptions_and_keeps_its_outbox() {
    let schema = PgSchema::new().await;
    let location = StoreLocation::Postgres(schema.url.clone());
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    {
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        enqueue_before_the_upgrade(&*store, "sub_v5").await;
    }
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE forcelink_subscriptions; DROP INDEX forcelink_outbox_by_target, forcelink_outbox_due_unordered;
             CREATE INDEX forcelink_outbox_due ON forcelink_outbox (state, next_attempt_ms, seq);
             UPDATE forcelink_meta SET value = '5' WHERE key = 'schema_version';",
        )
        .await
        .unwrap();

    let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
    uses_the_version_6_tables(&*store, "sub_v5").await;
    let version: String =
        client.query_one("SELECT value FROM forcelink_meta WHERE key = 'schema_version'", &[]).await.unwrap().get(0);
    assert_eq!(version, "6");
    let indexes: Vec<String> = client
        .query("SELECT indexname::text FROM pg_indexes WHERE tablename = 'forcelink_outbox' AND schemaname = current_schema()", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(indexes.iter().any(|i| i == "forcelink_outbox_by_target"), "{indexes:?}");
    assert!(indexes.iter().any(|i| i == "forcelink_outbox_due_unordered"), "{indexes:?}");
    assert!(!indexes.iter().any(|i| i == "forcelink_outbox_due"), "replaced: {indexes:?}");
}
