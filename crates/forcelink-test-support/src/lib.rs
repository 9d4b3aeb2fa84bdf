//! forcelink-test-support: helpers for forcelink's integration tests (never for production).
//!
//! - [`spawn_playground`] / [`spawn_playground_with`]: a playground org on `127.0.0.1:0`,
//!   stopped when the handle drops.
//! - [`ControlClient`]: the playground's `/__playground/` control API.
//! - [`fixture`]: a recorded Salesforce response from `../shared/fixtures/salesforce/`.
//! - [`spawn_oidc_provider`] (module [`oidc`]): a real OpenID Connect provider (`oidc-provider` on Node) on
//!   `127.0.0.1:0` for standard OAuth flows; needs `scripts/oidc-provider-setup` first.
//! - [`browser`]: a person at the playground's pages: [`browser::sign_in`] through login and
//!   consent, [`browser::approve_device`], [`browser::hidden_input`] and a no-redirect client.

pub mod browser;
pub mod oidc;
pub use oidc::{OidcProviderHandle, OidcProviderOptions, spawn_oidc_provider};

use std::path::PathBuf;

use forcelink_playground::{Playground, PlaygroundConfig, PlaygroundInfo};
use serde_json::Value;

pub use forcelink_playground::{PlaygroundInfo as Info, Seed};

/// `GET url` with `Authorization: Bearer {bearer}`, answered as JSON (a test helper: panics on
/// a transport error or a body that is not JSON; the status is the caller's to check elsewhere).
pub async fn get_json(url: &str, bearer: &str) -> Value {
    browser::no_redirect_client()
        .get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .expect("a GET request")
        .json()
        .await
        .expect("a JSON body")
}

/// Keys are generated once and reused by every test process (RSA generation is slow); the
/// playground creates the directory atomically, so concurrent test processes agree on one set.
pub fn shared_key_dir() -> PathBuf {
    std::env::temp_dir().join("forcelink-test-keys-v1")
}

/// A running playground plus what tests need to reach it.
#[derive(Debug)]
pub struct PlaygroundHandle {
    pub info: PlaygroundInfo,
    pub control: ControlClient,
    playground: Option<Playground>,
}

impl PlaygroundHandle {
    pub fn login_url(&self) -> &str {
        &self.info.login_url
    }
    pub fn instance_url(&self) -> &str {
        &self.info.instance_url
    }
    /// `{login_url}/services/oauth2/token`.
    pub fn login_token_url(&self) -> String {
        format!("{}/services/oauth2/token", self.info.login_url)
    }
    /// `{instance_url}/services/oauth2/token` (the My Domain token endpoint).
    pub fn instance_token_url(&self) -> String {
        format!("{}/services/oauth2/token", self.info.instance_url)
    }
    /// The default app's JWT signing key (PKCS#8 PEM).
    pub fn jwt_private_key_pem(&self) -> String {
        std::fs::read_to_string(&self.info.jwt.private_key_path).expect("read the playground JWT key")
    }
    /// Stops the playground and waits until both hosts are closed.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.playground.take() {
            p.shutdown().await;
        }
    }
}

/// Starts a playground with the built-in seed on free loopback ports.
pub async fn spawn_playground() -> PlaygroundHandle {
    spawn_playground_with(|_| {}).await
}

/// Starts a playground after `configure` adjusts the default configuration.
pub async fn spawn_playground_with(configure: impl FnOnce(&mut PlaygroundConfig)) -> PlaygroundHandle {
    let mut config = PlaygroundConfig::new(shared_key_dir());
    configure(&mut config);
    let playground = Playground::start(config).await.expect("start the playground");
    let info = playground.info().clone();
    let control = ControlClient::new(&info);
    let mut started = STARTED_ORIGINS.lock();
    let pubsub = format!("http://{}", info.pubsub_endpoint);
    for url in [&info.login_url, &info.instance_url, &pubsub] {
        if let Ok(u) = url::Url::parse(url) {
            started.push(u.origin().ascii_serialization());
        }
    }
    PlaygroundHandle { info, control, playground: Some(playground) }
}

// The login and instance origins of every playground this test process started.
static STARTED_ORIGINS: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

/// The origins (login and instance URL, Pub/Sub endpoint) of the playgrounds this test process started: what a
/// test allows explicitly (`--allow-origin`, `FORCELINK_ALLOW_ORIGINS`) so forcelink sends
/// credentials to them — and to nothing else on loopback.
pub fn started_origins() -> Vec<String> {
    STARTED_ORIGINS.lock().clone()
}

/// A client for `/__playground/`. Panics on transport errors and non-2xx answers: tests that
/// probe the control API's own errors use a plain HTTP client instead.
#[derive(Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient").field("base", &self.base).field("key", &"[redacted]").finish()
    }
}

impl ControlClient {
    pub fn new(info: &PlaygroundInfo) -> Self {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &info.ca_path {
            let pem = std::fs::read(ca).expect("read the playground CA");
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"));
        }
        Self {
            http: builder.build().expect("HTTP client"),
            base: info.control_url.clone(),
            key: info.control_key.clone(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path} -> {status}: {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("control API answers JSON") }
    }

    pub async fn reset(&self) {
        self.call(reqwest::Method::POST, "/reset", None).await;
    }
    pub async fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/stats", None).await
    }
    /// Token requests so far for one grant type (e.g. `refresh_token`).
    pub async fn token_requests(&self, grant: &str) -> u64 {
        self.stats().await["token_requests"]["by_grant"][grant].as_u64().unwrap_or(0)
    }
    pub async fn expire_sessions(&self) -> Value {
        self.call(reqwest::Method::POST, "/sessions/expire", None).await
    }
    pub async fn revoke_user_tokens(&self, username: &str) -> Value {
        self.call(reqwest::Method::POST, &format!("/users/{username}/revoke-tokens"), None).await
    }
    pub async fn set_user(&self, username: &str, patch: Value) -> Value {
        self.call(reqwest::Method::PATCH, &format!("/users/{username}"), Some(patch)).await
    }
    /// Moves playground time forward.
    pub async fn advance_clock(&self, seconds: i64) -> Value {
        self.call(reqwest::Method::POST, "/clock", Some(serde_json::json!({"advance_seconds": seconds}))).await
    }
    pub async fn clock(&self) -> Value {
        self.call(reqwest::Method::GET, "/clock", None).await
    }
    /// Arms a fault, e.g. `{"path_prefix": "/services/oauth2/token", "count": 1, "kind": "drop"}`.
    pub async fn add_fault(&self, fault: Value) -> Value {
        self.call(reqwest::Method::POST, "/faults", Some(fault)).await
    }
    pub async fn clear_faults(&self) {
        self.call(reqwest::Method::DELETE, "/faults", None).await;
    }
    pub async fn settings(&self, patch: Value) -> Value {
        self.call(reqwest::Method::PATCH, "/settings", Some(patch)).await
    }
}

/// The shared fixtures directory: `FORCELINK_FIXTURES` if set, else `../shared/fixtures/salesforce`
/// found by walking up from this crate.
pub fn fixtures_dir() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // test support: an override for unusual checkouts
    if let Ok(dir) = std::env::var("FORCELINK_FIXTURES") {
        return PathBuf::from(dir);
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared/fixtures/salesforce");
        if candidate.is_dir() {
            return candidate;
        }
        let sibling = dir.join("../shared/fixtures/salesforce");
        if sibling.is_dir() {
            return sibling;
        }
        if !dir.pop() {
            panic!("shared/fixtures/salesforce not found above {}; set FORCELINK_FIXTURES", env!("CARGO_MANIFEST_DIR"));
        }
    }
}

/// A recorded fixture, e.g. `fixture("oauth/token_password_success")`.
pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}
