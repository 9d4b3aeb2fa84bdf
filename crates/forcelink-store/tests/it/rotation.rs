//! Master key rotation on SQLite and PostgreSQL: everything re-sealed in one transaction, the old
//! key refused afterwards, and a rotation interrupted at any point recovered on open.

use std::path::Path;
use std::sync::Arc;

use forcelink_auth::store::{CasOutcome, ConnectionId};
use forcelink_auth::{Clock, ManualClock};
use forcelink_store::open::pending_key_path;
use forcelink_store::{
    ConnectionStore, KeySource, MasterKey, OpenError, PutMode, StoreLocation, apikey, open_store, rotate_key,
};

use crate::backends::PgSchema;
use crate::suite::{spec_with_secrets, token_set};

fn clock() -> ManualClock {
    ManualClock::starting_now()
}

/// What a store holds before a rotation, to compare after it.
struct Contents {
    specs: Vec<(ConnectionId, forcelink_store::ConnectionSpec)>,
    tokens: Vec<(ConnectionId, String, u64)>,
    api_key: forcelink_store::ApiKeySecret,
}

async fn fill(store: &dyn ConnectionStore, c: &ManualClock) -> Contents {
    let mut specs = Vec::new();
    for (i, name) in ["alpha", "beta"].into_iter().enumerate() {
        let name = ConnectionId::new(name);
        let spec = spec_with_secrets(&format!("cs-{i}"), &format!("pw-{i}"), "env:KEY");
        store.put_connection(&name, &spec, PutMode::Create).await.unwrap();
        specs.push((name, spec));
    }
    let mut tokens = Vec::new();
    // A token set without a stored spec (a connection from the config file) is re-sealed too.
    for name in ["alpha", "beta", "from-config"] {
        let name = ConnectionId::new(name);
        let access = format!("00D!{name}-access");
        let CasOutcome::Swapped { version } =
            store.compare_and_swap(&name, None, &token_set(&access, Some("5Aep-r"), c)).await.unwrap()
        else {
            panic!("fresh slot")
        };
        tokens.push((name, access, version));
    }
    let (api_key, record) = apikey::generate("engine", vec!["*".into()], forcelink_store::Scope::Token.into(), c.now());
    store.put_api_key(&record).await.unwrap();
    // Webhook and subscription secrets and ephemeral values are sealed too.
    store.put_webhook(&crate::suite_ops::webhook("wh_rotated", "whsec_cm90YXRlZA==", c.now())).await.unwrap();
    let sub = crate::suite_subscriptions::subscription("sub_rotated", "whsec_c3Vicm90YXRlZA==", c.now());
    store.put_subscription(&sub).await.unwrap();
    let until = c.now() + std::time::Duration::from_secs(3600);
    store.put_ephemeral(forcelink_store::EphemeralKind::OAuthState, "state-rotated", b"verifier", until).await.unwrap();
    Contents { specs, tokens, api_key }
}

/// Everything is readable, and token set versions moved on by `bumped`.
async fn assert_holds(store: &dyn ConnectionStore, contents: &Contents, c: &ManualClock, bumped: u64) {
    for (name, spec) in &contents.specs {
        assert_eq!(&store.connection(name).await.unwrap().unwrap().spec, spec);
    }
    assert_eq!(store.connections().await.unwrap().len(), contents.specs.len());
    for (name, access, version) in &contents.tokens {
        let loaded = store.load(name).await.unwrap().unwrap();
        assert_eq!(loaded.set.access_token.secret(), access);
        assert_eq!(loaded.version, version + bumped);
    }
    assert!(apikey::verify(store, contents.api_key.secret(), c.now()).await.unwrap().is_some());
    assert_eq!(store.webhook("wh_rotated").await.unwrap().unwrap().secret.secret(), "whsec_cm90YXRlZA==");
    let sub = store.subscription("sub_rotated").await.unwrap().unwrap();
    assert_eq!(sub.secret.secret(), "whsec_c3Vicm90YXRlZA==");
    let kind = forcelink_store::EphemeralKind::OAuthState;
    assert_eq!(store.ephemeral(kind, "state-rotated").await.unwrap().as_deref(), Some(&b"verifier"[..]));
}

fn assert_refused(err: OpenError, store_key: &str, given: &str) {
    assert!(matches!(err, OpenError::Key(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(store_key) && text.contains(given), "names both key ids: {text}");
}

async fn rotation_with_a_key_file(location: StoreLocation, dir: &Path) {
    let c = clock();
    let key_file = dir.join("master.key");
    let source = KeySource::File(key_file.clone());
    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    let contents = fill(&*store, &c).await;
    let old = MasterKey::load(&key_file).unwrap();

    let report = rotate_key(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_eq!(report.old_key_id, old.id_hex());
    assert_ne!(report.new_key_id, old.id_hex());
    assert_eq!((report.token_sets, report.connections), (3, 2));
    assert!(report.new_key_base64.is_none(), "the key file holds the new key");
    let new = MasterKey::load(&key_file).unwrap();
    assert_eq!(new.id_hex(), report.new_key_id);
    assert!(!pending_key_path(&key_file).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // A process that opened the store before the rotation can no longer write sealed values.
    let (name, _, version) = &contents.tokens[0];
    let err = store.compare_and_swap(name, Some(*version), &token_set("00D!stale", None, &c)).await.unwrap_err();
    assert!(err.to_string().contains("rotated"), "{err}");
    let err = store.put_connection(name, &spec_with_secrets("x", "y", "z"), PutMode::Upsert).await.unwrap_err();
    assert!(err.to_string().contains("rotated"), "{err}");
    drop(store);

    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 1).await;
    drop(store);
    let err = open_store(&location, &KeySource::Base64(old.to_base64()), Arc::new(c.clone())).await.unwrap_err();
    assert_refused(err, &new.id_hex(), &old.id_hex());
}

async fn rotation_with_a_base64_key(location: StoreLocation) {
    let c = clock();
    let old = MasterKey::generate();
    let source = KeySource::Base64(old.to_base64());
    let contents = fill(&*open_store(&location, &source, Arc::new(c.clone())).await.unwrap(), &c).await;

    let report = rotate_key(&location, &source, Arc::new(c.clone())).await.unwrap();
    let new_text = report.new_key_base64.clone().expect("the new key is handed back once");
    assert!(!format!("{report:?}").contains(new_text.secret()), "Debug hides the new key");
    let new = MasterKey::from_base64(new_text.secret()).unwrap();
    assert_eq!(new.id_hex(), report.new_key_id);

    let err = open_store(&location, &source, Arc::new(c.clone())).await.unwrap_err();
    assert_refused(err, &new.id_hex(), &old.id_hex());
    let store =
        open_store(&location, &KeySource::Base64(new_text.secret().to_owned()), Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 1).await;
}

/// The process stopped after the database commit, before renaming `<file>.new`: the key file
/// still holds the old key, `.new` the store's. Opening finishes the rename.
async fn crash_after_commit_is_finished_on_open(location: StoreLocation, dir: &Path) {
    let c = clock();
    let key_file = dir.join("master.key");
    let source = KeySource::File(key_file.clone());
    let contents = fill(&*open_store(&location, &source, Arc::new(c.clone())).await.unwrap(), &c).await;
    let old = MasterKey::load(&key_file).unwrap();
    let report = rotate_key(&location, &source, Arc::new(c.clone())).await.unwrap();
    // Put the files back as they were between the commit and the rename.
    std::fs::rename(&key_file, pending_key_path(&key_file)).unwrap();
    old.write_new_file(&key_file).unwrap();

    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 1).await;
    assert_eq!(MasterKey::load(&key_file).unwrap().id_hex(), report.new_key_id);
    assert!(!pending_key_path(&key_file).exists());
}

/// The process stopped after writing `<file>.new`, before the commit: the store is still under
/// the old key. The stray file is left alone (a rotation could be running) and the next rotation
/// replaces it.
async fn crash_before_commit_keeps_the_old_key(location: StoreLocation, dir: &Path) {
    let c = clock();
    let key_file = dir.join("master.key");
    let source = KeySource::File(key_file.clone());
    let contents = fill(&*open_store(&location, &source, Arc::new(c.clone())).await.unwrap(), &c).await;
    let old = MasterKey::load(&key_file).unwrap();
    let stray = MasterKey::generate();
    stray.write_new_file(&pending_key_path(&key_file)).unwrap();

    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 0).await;
    assert_eq!(MasterKey::load(&key_file).unwrap().id_hex(), old.id_hex());
    assert!(pending_key_path(&key_file).exists());
    drop(store);

    let report = rotate_key(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_eq!(report.old_key_id, old.id_hex());
    assert_ne!(report.new_key_id, stray.id_hex());
    assert!(!pending_key_path(&key_file).exists());
    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 1).await;
}

/// Declares the rotation tests for one backend: `$location` is an async expression giving
/// `(StoreLocation, what to keep alive)`.
macro_rules! rotation_tests {
    ($backend:ident, $location:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn rotation_with_a_key_file_reseals_everything_and_refuses_the_old_key() {
                let dir = tempfile::tempdir().unwrap();
                let (location, _keep) = $location(dir.path()).await;
                rotation_with_a_key_file(location, dir.path()).await
            }
            #[tokio::test]
            async fn rotation_with_a_base64_key_hands_back_the_new_key_once() {
                let dir = tempfile::tempdir().unwrap();
                let (location, _keep) = $location(dir.path()).await;
                rotation_with_a_base64_key(location).await
            }
            #[tokio::test]
            async fn rotation_interrupted_after_commit_is_finished_on_open() {
                let dir = tempfile::tempdir().unwrap();
                let (location, _keep) = $location(dir.path()).await;
                crash_after_commit_is_finished_on_open(location, dir.path()).await
            }
            #[tokio::test]
            async fn rotation_interrupted_before_commit_keeps_the_old_key() {
                let dir = tempfile::tempdir().unwrap();
                let (location, _keep) = $location(dir.path()).await;
                crash_before_commit_keeps_the_old_key(location, dir.path()).await
            }
        }
    };
}

async fn sqlite_location(dir: &Path) -> (StoreLocation, ()) {
    (StoreLocation::Sqlite(dir.join("store.db")), ())
}

async fn postgres_location(_dir: &Path) -> (StoreLocation, PgSchema) {
    let schema = PgSchema::new().await;
    (StoreLocation::Postgres(schema.url.clone()), schema)
}

rotation_tests!(sqlite, sqlite_location);
rotation_tests!(postgres, postgres_location);

#[tokio::test]
async fn a_row_the_key_cannot_open_stops_the_rotation_and_changes_nothing() {
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let location = StoreLocation::Sqlite(path.clone());
    let key_file = dir.path().join("master.key");
    let source = KeySource::File(key_file.clone());
    let contents = fill(&*open_store(&location, &source, Arc::new(c.clone())).await.unwrap(), &c).await;
    // A row sealed with a key the store does not know (e.g. copied in from another store).
    let foreign = ConnectionId::new("foreign");
    let sealed = forcelink_store::codec::seal(&MasterKey::generate(), &foreign, &token_set("00D!f", None, &c));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO token_sets (connection, version, sealed, updated_at_ms) VALUES ('foreign', 1, ?1, 0)",
            [sealed],
        )
        .unwrap();
    let old_id = MasterKey::load(&key_file).unwrap().id_hex();

    let err = rotate_key(&location, &source, Arc::new(c.clone())).await.unwrap_err().to_string();
    assert!(err.contains("foreign") && err.contains("nothing was changed"), "{err}");
    assert_eq!(MasterKey::load(&key_file).unwrap().id_hex(), old_id);
    assert!(!pending_key_path(&key_file).exists(), "no new key written for a rotation that did not happen");
    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 0).await;
}

#[tokio::test]
async fn a_half_written_pending_key_is_ignored_on_open() {
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::Sqlite(dir.path().join("store.db"));
    let key_file = dir.path().join("master.key");
    let source = KeySource::File(key_file.clone());
    let contents = fill(&*open_store(&location, &source, Arc::new(c.clone())).await.unwrap(), &c).await;
    // What a crash while writing `<file>.new` (before the commit) leaves.
    let half = &MasterKey::generate().to_base64()[..20];
    MasterKey::generate().write_new_file(&pending_key_path(&key_file)).unwrap();
    std::fs::write(pending_key_path(&key_file), half).unwrap();

    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 0).await;
    drop(store);
    rotate_key(&location, &source, Arc::new(c.clone())).await.unwrap();
    let store = open_store(&location, &source, Arc::new(c.clone())).await.unwrap();
    assert_holds(&*store, &contents, &c, 1).await;
}

#[tokio::test]
async fn rotating_a_key_file_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::Sqlite(dir.path().join("store.db"));
    let missing = dir.path().join("missing.key");
    let err = rotate_key(&location, &KeySource::File(missing.clone()), Arc::new(clock())).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists() && !location_exists(&location));
}

fn location_exists(location: &StoreLocation) -> bool {
    matches!(location, StoreLocation::Sqlite(p) if p.exists())
}
