//! Nothing secret is stored in the clear: token sets, connection specs (client secret, password,
//! security token, private key), API key secrets, webhook and subscription secrets, ephemeral values and the raw
//! keys of ephemeral records are absent from the SQLite files and from
//! every `forcelink_%` PostgreSQL table, in text and in hex (how bytea shows).

use std::sync::Arc;

use forcelink_auth::store::ConnectionId;
use forcelink_auth::{Clock, ManualClock};
use forcelink_store::ephemeral::key_hash;
use forcelink_store::{
    ApiKeySecret, ConnectionSpec, ConnectionStore, EphemeralKind, MasterKey, PostgresStore, PutMode, SqliteStore,
    apikey,
};

use crate::backends::PgSchema;
use crate::suite::token_set;

const ACCESS: &str = "00D!plain-access-token";
const REFRESH: &str = "5Aep-plain-refresh-token";
const ID_TOKEN: &str = "eyJ.id.token";
const CLIENT_SECRET: &str = "cs-plain-client-secret-0451";
const PASSWORD: &str = "pw-plain-password-0452";
const SECURITY_TOKEN: &str = "st-plain-security-token-0453";
const KEY_BODY: &str = "MIIplainPrivateKeyBody0454";
const API_KEY_LABEL: &str = "label-in-the-clear-0455";
const WEBHOOK_ID: &str = "wh_in_the_clear_0456";
const WEBHOOK_SECRET: &str = "whsec_cGxhaW4td2ViaG9vay1zZWNyZXQ0NTc=";
const SUBSCRIPTION_ID: &str = "sub_in_the_clear_0460";
const SUBSCRIPTION_SECRET: &str = "whsec_cGxhaW4tc3Vic2NyaXB0aW9uLXNlY3JldDQ2MQ==";
const EPHEMERAL_KEY: &str = "session-cookie-plain-0458";
const EPHEMERAL_VALUE: &str = "pkce-verifier-plain-0459";

/// Stores one of everything secret; returns the API key's text and id.
async fn store_secrets(
    store: &dyn ConnectionStore,
    name: &ConnectionId,
    clock: &ManualClock,
) -> (ApiKeySecret, String) {
    store.compare_and_swap(name, None, &token_set(ACCESS, Some(REFRESH), clock)).await.unwrap();
    let mut spec = ConnectionSpec::default();
    for (field, value) in [
        ("method", "password".to_owned()),
        ("client_id", "3MVG9-at-rest".to_owned()),
        ("client_secret", CLIENT_SECRET.to_owned()),
        ("username", "at-rest@example.com".to_owned()),
        ("password", PASSWORD.to_owned()),
        ("security_token", SECURITY_TOKEN.to_owned()),
        ("private_key", format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n")),
    ] {
        spec.set_field(field, &value).unwrap();
    }
    store.put_connection(name, &spec, PutMode::Create).await.unwrap();
    let (key, record) =
        apikey::generate(API_KEY_LABEL, vec![name.to_string()], forcelink_store::Scope::Token.into(), clock.now());
    store.put_api_key(&record).await.unwrap();
    store.put_webhook(&crate::suite_ops::webhook(WEBHOOK_ID, WEBHOOK_SECRET, clock.now())).await.unwrap();
    let sub = crate::suite_subscriptions::subscription(SUBSCRIPTION_ID, SUBSCRIPTION_SECRET, clock.now());
    store.put_subscription(&sub).await.unwrap();
    let until = clock.now() + std::time::Duration::from_secs(600);
    store.put_ephemeral(EphemeralKind::OAuthState, EPHEMERAL_KEY, EPHEMERAL_VALUE.as_bytes(), until).await.unwrap();
    // Everything reads back (so it was all written).
    assert_eq!(store.webhook(WEBHOOK_ID).await.unwrap().unwrap().secret.secret(), WEBHOOK_SECRET);
    assert_eq!(store.subscription(SUBSCRIPTION_ID).await.unwrap().unwrap().secret.secret(), SUBSCRIPTION_SECRET);
    let value = store.ephemeral(EphemeralKind::OAuthState, EPHEMERAL_KEY).await.unwrap().unwrap();
    assert_eq!(value, EPHEMERAL_VALUE.as_bytes());
    assert_eq!(store.connection(name).await.unwrap().unwrap().spec, spec);
    assert!(apikey::verify(store, key.secret(), clock.now()).await.unwrap().is_some());
    (key, record.id)
}

fn secrets(api_key: &ApiKeySecret) -> Vec<String> {
    let api_secret = apikey::parse(api_key.secret()).unwrap().1.to_owned();
    [ACCESS, REFRESH, ID_TOKEN, CLIENT_SECRET, PASSWORD, SECURITY_TOKEN, KEY_BODY, EPHEMERAL_VALUE, EPHEMERAL_KEY]
        .into_iter()
        .map(str::to_owned)
        // The webhook secret, whole and without its prefix.
        .chain([api_key.secret().to_owned(), api_secret, WEBHOOK_SECRET.to_owned(), WEBHOOK_SECRET[6..].to_owned()])
        // The subscription's secret, likewise.
        .chain([SUBSCRIPTION_SECRET.to_owned(), SUBSCRIPTION_SECRET[6..].to_owned()])
        .collect()
}

fn hex(s: &str) -> String {
    hex::encode(s)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn sqlite_files_hold_no_plaintext_secret() {
    let c = ManualClock::starting_now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path, MasterKey::generate(), Arc::new(c.clone())).unwrap();
    let (api_key, api_key_id) = store_secrets(&store, &ConnectionId::new("at-rest"), &c).await;
    drop(store);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    // The search finds what is stored in the clear (so it would find a secret there too).
    assert!(contains(&bytes, api_key_id.as_bytes()) && contains(&bytes, API_KEY_LABEL.as_bytes()));
    assert!(contains(&bytes, WEBHOOK_ID.as_bytes()) && contains(&bytes, key_hash(EPHEMERAL_KEY).as_bytes()));
    assert!(contains(&bytes, SUBSCRIPTION_ID.as_bytes()), "the subscription row was written");
    for s in secrets(&api_key) {
        assert!(!contains(&bytes, s.as_bytes()), "{s} found in the database files");
    }
}

#[tokio::test]
async fn postgres_tables_hold_no_plaintext_secret() {
    let c = ManualClock::starting_now();
    let schema = PgSchema::new().await;
    let store = PostgresStore::connect(&schema.url, MasterKey::generate(), Arc::new(c.clone())).await.unwrap();
    let (api_key, api_key_id) = store_secrets(&store, &ConnectionId::new("at-rest"), &c).await;

    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name LIKE 'forcelink\\_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for expected in [
        "forcelink_api_keys",
        "forcelink_connections",
        "forcelink_ephemeral",
        "forcelink_meta",
        "forcelink_subscriptions",
        "forcelink_token_sets",
        "forcelink_webhooks",
    ] {
        assert!(tables.iter().any(|t| t == expected), "{expected} in {tables:?}");
    }
    let mut dump = String::new();
    for table in &tables {
        // JSON text of every row; bytea columns come out as `\x` hex.
        for row in client.query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[]).await.unwrap() {
            dump.push_str(row.get::<_, &str>(0));
            dump.push('\n');
        }
    }
    assert!(dump.contains(&api_key_id) && dump.contains(API_KEY_LABEL), "the dump holds the clear columns");
    assert!(dump.contains(WEBHOOK_ID) && dump.contains(&key_hash(EPHEMERAL_KEY)), "and the webhook id, the key hash");
    assert!(dump.contains(SUBSCRIPTION_ID), "and the subscription id");
    assert!(dump.contains("\\\\x"), "the dump shows bytea as hex");
    for s in secrets(&api_key) {
        assert!(!dump.contains(&s), "{s} found in the tables");
        assert!(!dump.contains(&hex(&s)), "{s} found hex-encoded in the tables");
    }
}
