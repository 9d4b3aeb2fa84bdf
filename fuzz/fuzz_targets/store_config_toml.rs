//! The config file (`config.toml`) as the CLI reads it: connections in forcelink's field names,
//! allowed origins and the store location. Any text is refused with a message or read; every
//! connection read survives a JSON round trip unchanged and validates without a panic; a
//! PostgreSQL store URL's password never shows in the location's text or in a parse error.
#![no_main]

use std::collections::BTreeMap;

use forcelink_auth::UrlPolicy;
use forcelink_store::pgconnect::PgTarget;
use forcelink_store::{ConnectionSpec, StoreLocation};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// The config file's shape (the CLI's `settings::ConfigFile`; the CLI is a binary crate).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ConfigFile {
    store: Option<String>,
    default_connection: Option<String>,
    #[serde(default)]
    allow_origins: Vec<String>,
    #[serde(default)]
    insecure_hosts: Option<Vec<String>>,
    #[serde(default)]
    connections: BTreeMap<String, ConnectionSpec>,
}

/// Fixed words of the store's PostgreSQL messages: a "password" equal to one of them shows
/// because the message says it, not because the URL leaked.
const MESSAGE_WORDS: &str = "not a PostgreSQL URL tokio-postgres understands; write it as \
    postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=MODE is not a TLS mode; use disable, prefer, require, \
    verify-ca or verify-full";

fn check_store(text: &str) {
    let location = StoreLocation::parse(text);
    let StoreLocation::Postgres(url) = &location else { return };
    let Some(password) = url::Url::parse(url).ok().and_then(|u| u.password().map(str::to_owned)) else { return };
    let decoded = percent_encoding::percent_decode_str(&password).decode_utf8_lossy().into_owned();
    for secret in [&password, &decoded] {
        if secret.len() < 6 || MESSAGE_WORDS.contains(secret.as_str()) || url.matches(secret.as_str()).count() != 1 {
            continue;
        }
        let shown = format!("{location} {location:?}");
        assert!(!shown.contains(secret.as_str()), "the location shows its password: {shown}");
        match PgTarget::parse(url) {
            Ok(target) => assert!(!format!("{target:?}").contains(secret.as_str()), "{target:?}"),
            Err(e) => assert!(!e.to_string().contains(secret.as_str()), "the error shows the password: {e}"),
        }
    }
}

fuzz_target!(|text: &str| {
    let Ok(config) = toml::from_str::<ConfigFile>(text) else { return };
    if let Some(store) = &config.store {
        check_store(store);
    }
    let mut policy = UrlPolicy::new();
    for origin in &config.allow_origins {
        if let Ok(p) = policy.clone().allow_origin(origin) {
            policy = p;
        }
    }
    for (name, spec) in &config.connections {
        let json = serde_json::to_value(spec).expect("a spec is JSON");
        let back: ConnectionSpec = serde_json::from_value(json.clone()).expect("its JSON reads back");
        assert!(back == *spec, "the JSON round trip changed {json}");
        let _ = spec.validate(name, &policy);
    }
});
