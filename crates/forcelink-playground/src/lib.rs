//! forcelink-playground: an offline, stateful, Salesforce-compatible org.
//!
//! It answers like Salesforce on the wire (see the shared wire reference and the recorded
//! fixtures) so forcelink, and any other Salesforce client, can be tried and tested without a
//! Salesforce account or a network. It shares no types with forcelink's client crates, so a
//! client bug cannot be "confirmed" by an emulator built from the same structs.
//!
//! Start one on any free ports and ask it for a token, as a client would:
//!
//! ```
//! use forcelink_playground::{Playground, PlaygroundConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let keys = tempfile::tempdir()?;
//! let playground = Playground::start(PlaygroundConfig::new(keys.path())).await?;
//! let info = playground.info();
//! let token: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}/services/oauth2/token", info.instance_url))
//!     .form(&[
//!         ("grant_type", "client_credentials"),
//!         ("client_id", info.client.client_id.as_str()),
//!         ("client_secret", info.client.client_secret.as_str()),
//!     ])
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(token["instance_url"], info.instance_url.as_str());
//! playground.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Layout (lower modules first; none depends on one above it):
//! - [`clock`], [`ids`] (18-character Salesforce ids), [`error`], `civil` (date arithmetic),
//!   `jwt` (RS256 compact JWS), [`keys`] (JWT key pair, signing key, TLS).
//! - `schema`: sObject metadata (standard objects from `seed/standard-objects.toml`,
//!   seed-declared custom ones); [`seed`]: the seed file (org, users, apps) and the default.
//! - `call`: the API version and caller of a REST call; `host`: which host answered.
//! - `store`: what the REST API keeps (SQLite records, usage, query locators, Bulk jobs);
//!   `events`: the event bus (change events, platform events); `faults`: fault injection.
//! - `state`: the shared org handle: users, apps, tokens, approvals, codes, device grants,
//!   counters, and the store and bus above.
//! - `oauth`: the token endpoint and every grant; authorize with login/consent pages and the
//!   device page; revoke, introspect, userinfo, identity URL, discovery, keys.
//! - `data`: the REST API under `/services/data/` (versions, sObjects, describe, CRUD, SOQL,
//!   search, composite, limits, Bulk 2.0) and the data generator.
//! - `pubsub`: the Pub/Sub API (gRPC) on its own port: replay, flow control, keep-alives, faults.
//! - `soap`: the SOAP API's `login()` and `logout()` (partner and enterprise endpoints).
//! - `control`: the `/__playground/` control API (with its Pub/Sub part).
//! - `server`: accept loops for the two hosts (login host and My Domain instance host).

#![warn(missing_docs)]

mod call;
mod civil;
pub mod clock;
mod control;
mod data;
pub mod error;
mod events;
mod faults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod host;
pub mod ids;
mod jwt;
pub mod keys;
mod oauth;
mod pubsub;
mod schema;
pub mod seed;
mod server;
mod soap;
mod state;
mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::call::LATEST_API_VERSION;
pub use crate::clock::{Clock, SystemClock};
pub use crate::error::PlaygroundError;
pub use crate::keys::KeyMaterial;
pub use crate::seed::Seed;

use crate::host::{Host, HostKind};
use crate::oauth::{authorize, identity, token};
use crate::state::Shared;

/// How to start a playground. [`PlaygroundConfig::new`] gives the zero-config defaults.
#[derive(Debug, Clone)]
pub struct PlaygroundConfig {
    /// The org: users, connected apps, custom objects. Defaults to the built-in seed.
    pub seed: Seed,
    /// Address both hosts bind. Defaults to 127.0.0.1.
    pub bind: IpAddr,
    /// Port of the login host (`login.salesforce.com` stand-in); 0 = any free port.
    pub login_port: u16,
    /// Port of the instance / My Domain host; 0 = any free port.
    pub instance_port: u16,
    /// Port of the Pub/Sub API (gRPC); 0 = any free port.
    pub pubsub_port: u16,
    /// Serve both hosts over HTTPS with a CA generated for this run.
    pub tls: bool,
    /// Where keys (and, with TLS, the CA certificate) are kept between runs.
    pub key_dir: PathBuf,
    /// The control API key; a random one when `None`.
    pub control_key: Option<String>,
    /// Wall clock; the control API shifts playground time relative to it.
    pub clock: Arc<dyn Clock>,
    /// Keep records in this SQLite file (kept between runs); in memory when `None`.
    pub data_file: Option<PathBuf>,
    /// Records to generate at start, on top of the seed's `[generate]` section.
    pub generate: Vec<(String, u64)>,
}

/// Parses a generator spec such as `Account=1000000,Contact=200000`.
pub fn parse_generate_spec(spec: &str) -> Result<Vec<(String, u64)>, PlaygroundError> {
    data::generate::parse_spec(spec).map_err(|message| PlaygroundError::Data { message })
}

impl PlaygroundConfig {
    /// Built-in seed, any free ports on 127.0.0.1, plain HTTP, keys in `key_dir`.
    pub fn new(key_dir: impl Into<PathBuf>) -> Self {
        Self {
            seed: Seed::builtin(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            login_port: 0,
            instance_port: 0,
            pubsub_port: 0,
            tls: false,
            key_dir: key_dir.into(),
            control_key: None,
            clock: Arc::new(SystemClock),
            data_file: None,
            generate: Vec::new(),
        }
    }
}

/// Everything a client needs to connect; written by `--info-file` in exactly this shape.
/// `Debug` redacts the control key, client secret, password and security token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlaygroundInfo {
    /// Base URL of the login host (`login.salesforce.com` stand-in).
    pub login_url: String,
    /// Base URL of the instance / My Domain host.
    pub instance_url: String,
    /// Base URL of the control API (`{instance_url}/__playground`).
    pub control_url: String,
    /// The control API key.
    pub control_key: String,
    /// The first connected app's credentials.
    pub client: ClientInfo,
    /// The first user's credentials.
    pub user: UserInfo,
    /// The JWT-bearer key pair of the default app.
    pub jwt: JwtInfo,
    /// The CA certificate (PEM file) to trust, when serving TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<String>,
    /// Where the Pub/Sub API (gRPC) listens, as `host:port`: HTTP/2 in clear, or TLS with
    /// ALPN `h2` when the other hosts serve HTTPS. Empty in info files of older playgrounds.
    #[serde(default)]
    pub pubsub_endpoint: String,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
/// A connected app's client id and secret. `Debug` redacts the secret.
pub struct ClientInfo {
    /// The consumer key.
    pub client_id: String,
    /// The consumer secret.
    pub client_secret: String,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
/// A user's sign-in credentials. `Debug` redacts the password and security token.
pub struct UserInfo {
    /// Email-shaped username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Security token (the password grant takes password + token).
    pub security_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
/// Where the default app's JWT-bearer key pair is on disk.
pub struct JwtInfo {
    /// The private key (PEM) that signs assertions.
    pub private_key_path: String,
    /// The certificate (PEM) the app trusts.
    pub certificate_path: String,
}

const REDACTED: &str = "[redacted]";

impl std::fmt::Debug for PlaygroundInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaygroundInfo")
            .field("login_url", &self.login_url)
            .field("instance_url", &self.instance_url)
            .field("control_url", &self.control_url)
            .field("control_key", &REDACTED)
            .field("client", &self.client)
            .field("user", &self.user)
            .field("jwt", &self.jwt)
            .field("ca_path", &self.ca_path)
            .field("pubsub_endpoint", &self.pubsub_endpoint)
            .finish()
    }
}

impl std::fmt::Debug for ClientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInfo").field("client_id", &self.client_id).field("client_secret", &REDACTED).finish()
    }
}

impl std::fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserInfo")
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("security_token", &REDACTED)
            .finish()
    }
}

impl PlaygroundInfo {
    /// Writes the info JSON atomically (a temporary file renamed into place), so a reader
    /// never sees half of it.
    pub fn write_to(&self, path: &Path) -> Result<(), PlaygroundError> {
        let err = |source| PlaygroundError::InfoFile { path: path.display().to_string(), source };
        let json = serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, json + "\n").map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// A running playground. Dropping it stops both hosts.
#[derive(Debug)]
pub struct Playground {
    info: PlaygroundInfo,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The org, so stopping can tell Bulk workers to give up.
    pg: Shared,
}

impl Playground {
    /// Binds both hosts and starts serving; returns once both listen.
    pub async fn start(config: PlaygroundConfig) -> Result<Self, PlaygroundError> {
        // Absolute, so the paths in the info file work from any directory.
        let key_dir = std::path::absolute(&config.key_dir)
            .map_err(|e| PlaygroundError::keys(format!("cannot resolve {}: {e}", config.key_dir.display())))?;
        let keys = KeyMaterial::load_or_create(&key_dir)?;
        let bind = |port| async move {
            let addr = SocketAddr::new(config.bind, port);
            TcpListener::bind(addr).await.map_err(|source| PlaygroundError::Bind { addr: addr.to_string(), source })
        };
        let login_listener = bind(config.login_port).await?;
        let instance_listener = bind(config.instance_port).await?;
        let pubsub_listener = bind(config.pubsub_port).await?;
        let local = |l: &TcpListener| l.local_addr().map_err(|e| PlaygroundError::Bind { addr: "?".into(), source: e });
        let (login_addr, instance_addr) = (local(&login_listener)?, local(&instance_listener)?);
        let pubsub_addr = local(&pubsub_listener)?;

        let host_name = match config.bind {
            IpAddr::V4(a) if a.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(a) if a.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        let (tls, pubsub_tls, ca_path) = if config.tls {
            let material = keys::TlsMaterial::generate(host_name.trim_matches(|c| c == '[' || c == ']'))?;
            let ca_path = key_dir.join(format!("tls-ca-{}.pem", login_addr.port()));
            std::fs::write(&ca_path, &material.ca_pem)
                .map_err(|e| PlaygroundError::keys(format!("cannot write {}: {e}", ca_path.display())))?;
            // gRPC needs HTTP/2, which TLS clients only speak when ALPN agreed on it.
            let mut h2 = (*material.server_config).clone();
            h2.alpn_protocols = vec![b"h2".to_vec()];
            let pubsub_tls = tokio_rustls::TlsAcceptor::from(Arc::new(h2));
            (Some(tokio_rustls::TlsAcceptor::from(material.server_config)), Some(pubsub_tls), Some(ca_path))
        } else {
            (None, None, None)
        };
        let scheme = if config.tls { "https" } else { "http" };
        let login_url = format!("{scheme}://{host_name}:{}", login_addr.port());
        let instance_url = format!("{scheme}://{host_name}:{}", instance_addr.port());
        let control_key = config.control_key.clone().unwrap_or_else(|| state::random_chars(32));

        let seed = config.seed.clone();
        let (first_user, first_app) = (seed.users[0].clone(), seed.connected_apps[0].clone());
        let info = PlaygroundInfo {
            login_url: login_url.clone(),
            instance_url: instance_url.clone(),
            control_url: format!("{instance_url}/__playground"),
            control_key: control_key.clone(),
            client: ClientInfo { client_id: first_app.client_id, client_secret: first_app.client_secret },
            user: UserInfo {
                username: first_user.username,
                password: first_user.password,
                security_token: first_user.security_token,
            },
            jwt: JwtInfo {
                private_key_path: keys.client_private_key_path.display().to_string(),
                certificate_path: keys.client_certificate_path.display().to_string(),
            },
            ca_path: ca_path.map(|p| p.display().to_string()),
            pubsub_endpoint: format!("{host_name}:{}", pubsub_addr.port()),
        };
        let data = open_data(&seed, &config)?;
        let pg = Shared::new(
            seed,
            keys,
            clock::ShiftedClock::new(config.clock.clone()),
            login_url.clone(),
            instance_url.clone(),
            control_key,
            data,
        )?;
        {
            let db = pg.data.store.lock();
            pg.sync_users_from_db(&db);
        }
        data::bulk::resume(&pg).map_err(|message| PlaygroundError::Data { message })?;
        let (shutdown, rx) = watch::channel(false);
        let hosts = [
            (login_listener, Host { kind: HostKind::Login, base_url: login_url }),
            (instance_listener, Host { kind: HostKind::Instance, base_url: instance_url }),
        ];
        let mut tasks: Vec<JoinHandle<()>> = hosts
            .into_iter()
            .map(|(listener, host)| {
                let router = router(pg.clone(), host);
                tokio::spawn(server::serve(listener, router, pg.clone(), tls.clone(), rx.clone()))
            })
            .collect();
        let pubsub = pubsub::PubSubService { pg: pg.clone() };
        tasks.push(tokio::spawn(pubsub::serve(pubsub_listener, pubsub, pubsub_tls, rx.clone())));
        Ok(Self { info, shutdown, tasks, pg })
    }

    /// URLs and credentials of this playground.
    pub fn info(&self) -> &PlaygroundInfo {
        &self.info
    }

    /// Serves until [`Playground::shutdown`] is called elsewhere or the task is cancelled.
    pub async fn wait(&mut self) {
        for t in &mut self.tasks {
            let _ = t.await;
        }
    }

    /// Stops accepting, closes connections and waits for both hosts to stop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.pg.data.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.pg.data.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        // The CA belongs to this run only.
        if let Some(ca) = &self.info.ca_path {
            let _ = std::fs::remove_file(ca);
        }
    }
}

/// Opens the record store, fills a new one with the org's records and generates any requested
/// records.
fn open_data(seed: &Seed, config: &PlaygroundConfig) -> Result<store::DataState, PlaygroundError> {
    let err = |message: String| PlaygroundError::Data { message };
    let schema = seed.schema().map_err(|message| PlaygroundError::Seed { message })?;
    data::rules::check_conditions(&schema, config.clock.now_ms())
        .map_err(|message| PlaygroundError::Seed { message })?;
    let store = store::Store::open(schema, config.data_file.as_deref()).map_err(err)?;
    let now = config.clock.now_ms();
    {
        let mut db = store.lock();
        let org_id = seed.org.id.clone().unwrap_or_else(|| ids::mint("00D", 1));
        data::orgdata::populate(&mut db, seed, &org_id, now).map_err(err)?;
        let mut spec: Vec<(String, u64)> = seed.generate.iter().map(|(k, v)| (k.clone(), *v)).collect();
        spec.extend(config.generate.iter().cloned());
        data::generate::generate(&mut db, &spec, now, &ids::mint("005", 1)).map_err(err)?;
    }
    Ok(store::DataState::new(store, now))
}

fn router(pg: Shared, host: Host) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token::token_endpoint))
        .route("/services/oauth2/authorize", get(authorize::authorize).post(authorize::authorize))
        .route("/services/oauth2/authorize/login", post(authorize::login_submit))
        .route("/services/oauth2/authorize/consent", post(authorize::consent_submit))
        .route("/services/oauth2/revoke", get(identity::revoke).post(identity::revoke))
        .route("/services/oauth2/introspect", post(identity::introspect))
        .route("/services/oauth2/userinfo", get(identity::userinfo).post(identity::userinfo))
        .route("/id/keys", get(identity::keys))
        .route("/id/{org}/{user}", get(identity::identity).post(identity::identity))
        .route("/.well-known/openid-configuration", get(identity::openid_configuration))
        .route("/services/auth/idp/oidc/logout", get(authorize::oidc_logout).post(authorize::oidc_logout))
        .route("/.well-known/auth-configuration", get(identity::auth_configuration))
        .route("/setup/connect", get(authorize::device_page).post(authorize::device_submit))
        .route("/services/Soap/{kind}/{version}", post(soap::endpoint))
        .route("/services/Soap/{kind}/{version}/{org}", post(soap::endpoint_with_org))
        .route("/services/data", get(data::versions))
        .route("/services/data/", get(data::versions))
        .route("/services/data/{*rest}", axum::routing::any(data::api))
        .nest("/__playground", control::router())
        .layer(axum::Extension(host))
        .with_state(pg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_debug_redacts_secrets() {
        let info = PlaygroundInfo {
            login_url: "http://127.0.0.1:1".into(),
            instance_url: "http://127.0.0.1:2".into(),
            control_url: "http://127.0.0.1:2/__playground".into(),
            control_key: "control-key-value".into(),
            client: ClientInfo { client_id: "id".into(), client_secret: "client-secret-value".into() },
            user: UserInfo {
                username: "u@example.com".into(),
                password: "password-value".into(),
                security_token: "token-value".into(),
            },
            jwt: JwtInfo { private_key_path: "k".into(), certificate_path: "c".into() },
            ca_path: None,
            pubsub_endpoint: "127.0.0.1:3".into(),
        };
        let shown = format!("{info:?}");
        for secret in ["control-key-value", "client-secret-value", "password-value", "token-value"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("u@example.com"));
    }
}
