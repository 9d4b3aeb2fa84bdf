//! Settings: where the config file, the store and the master key are, and every connection the
//! sources define. Sources, later ones winning field by field: the store (connections added
//! with the CLI or the broker), the config file, `FORCELINK_CONNECTIONS__NAME__FIELD`
//! variables, then the command's own flags.
//!
//! Paths follow the XDG base directories: config `$XDG_CONFIG_HOME/forcelink/config.toml`
//! (`~/.config/…`), data `$XDG_DATA_HOME/forcelink/` (`~/.local/share/…`) holding `store.db`
//! and `master.key`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use forcelink_auth::{ConnectionId, SystemClock, Transport, UrlPolicy};
use forcelink_store::connection::validate_name;
use forcelink_store::{ConnectionSpec, ConnectionStore, KeySource, SecretResolver, StoreLocation};
use serde::Deserialize;

use crate::failure::Failure;

/// The process environment, read once (the only place that reads it).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Arc<HashMap<String, String>>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: Arc::new(
                std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect(),
            ),
        }
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub fn resolver(&self) -> SecretResolver {
        let vars = self.vars.clone();
        SecretResolver::new(move |name| vars.get(name).cloned())
    }
    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Store location: a SQLite path, or `postgres://…`.
    pub store: Option<String>,
    /// Used when a command names no connection.
    pub default_connection: Option<String>,
    /// Origins (`scheme://host:port`) that may receive secrets and tokens besides https
    /// Salesforce hosts, e.g. a playground: `allow_origins = ["http://127.0.0.1:8411"]`.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Replaced by `allow_origins` (exact origins, not hosts): kept only to say so.
    #[serde(default)]
    pub insecure_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionSpec>,
}

/// Global options every command shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Print one JSON document `{"status": 0, "result": …}` (errors: `{"status": N, "error": …}`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Config file [env: FORCELINK_CONFIG] (default: $XDG_CONFIG_HOME/forcelink/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store: a SQLite file or postgres://… [env: FORCELINK_STORE] (default:
    /// $XDG_DATA_HOME/forcelink/store.db).
    #[arg(long, global = true, value_name = "LOCATION")]
    pub store: Option<String>,
    /// Also send secrets and tokens to this origin (scheme://host:port, e.g. a playground's
    /// http://127.0.0.1:8411); repeatable [env: FORCELINK_ALLOW_ORIGINS, comma-separated; config:
    /// allow_origins]. Without it only https Salesforce hosts receive them.
    #[arg(long = "allow-origin", global = true, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Env,
    /// `$XDG_DATA_HOME/forcelink`: the default store, master key and generated keys.
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub config: Arc<ConfigFile>,
    env_connections: Arc<BTreeMap<String, ConnectionSpec>>,
    pub store_location: StoreLocation,
    pub key_source: KeySource,
    /// Where secrets and tokens may go: https Salesforce hosts and the allowed origins.
    policy: UrlPolicy,
}

/// Where a connection's settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Store,
    ConfigFile,
    Environment,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Store => "store",
            Origin::ConfigFile => "config file",
            Origin::Environment => "environment",
        }
    }
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, env: Env) -> Result<Settings, Failure> {
        let data_dir = env
            .get("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| env.home().map(|h| h.join(".local/share")))
            .map(|d| d.join("forcelink"))
            .ok_or_else(|| Failure::config("neither XDG_DATA_HOME nor HOME is set; set one, or pass --store"))?;
        let (config_path, explicit) = match (&global.config, env.get("FORCELINK_CONFIG")) {
            (Some(p), _) => (p.clone(), true),
            (None, Some(p)) => (PathBuf::from(p), true),
            (None, None) => {
                let dir = env
                    .get("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| env.home().map(|h| h.join(".config")))
                    .unwrap_or_else(|| data_dir.clone());
                (dir.join("forcelink/config.toml"), false)
            }
        };
        let config = read_config(&config_path, explicit)?;
        if config.insecure_hosts.is_some() {
            return Err(Failure::config(format!(
                "{}: insecure_hosts is no longer read (it allowed whole hosts over plain http)",
                config_path.display()
            ))
            .with_fix("list exact origins instead: allow_origins = [\"http://HOST:PORT\"]"));
        }
        let from_env = env.get("FORCELINK_ALLOW_ORIGINS").unwrap_or_default();
        let origins = config
            .allow_origins
            .iter()
            .map(String::as_str)
            .chain(from_env.split([',', ' ', '\n']).map(str::trim).filter(|o| !o.is_empty()))
            .chain(global.allow_origin.iter().map(String::as_str));
        let mut policy = UrlPolicy::new();
        for origin in origins {
            policy = policy.allow_origin(origin).map_err(|e| {
                Failure::config(format!("{e}")).with_fix(
                    "fix the --allow-origin flag, FORCELINK_ALLOW_ORIGINS or allow_origins in the config file",
                )
            })?;
        }
        let env_connections = ConnectionSpec::from_env_vars(env.vars.iter()).map_err(|e| {
            Failure::config(format!("{e}")).with_fix("fix or unset the FORCELINK_CONNECTIONS__… variable")
        })?;
        let store_text = global
            .store
            .clone()
            .or_else(|| env.get("FORCELINK_STORE").map(str::to_owned))
            .or_else(|| config.store.clone());
        let store_location = match store_text {
            Some(t) => StoreLocation::parse(&t),
            None => StoreLocation::Sqlite(data_dir.join("store.db")),
        };
        let key_source = match env.get("FORCELINK_MASTER_KEY") {
            Some(k) => KeySource::Base64(k.to_owned()),
            None => KeySource::File(
                env.get("FORCELINK_MASTER_KEY_FILE").map(PathBuf::from).unwrap_or_else(|| data_dir.join("master.key")),
            ),
        };
        Ok(Settings {
            env,
            data_dir,
            config_path,
            config: Arc::new(config),
            env_connections: Arc::new(env_connections),
            store_location,
            key_source,
            policy,
        })
    }

    pub async fn open_store(&self) -> Result<Arc<dyn ConnectionStore>, Failure> {
        forcelink_store::open_store(&self.store_location, &self.key_source, Arc::new(SystemClock))
            .await
            .map_err(Failure::from_open)
    }

    /// Where secrets and tokens may go (https Salesforce hosts, and the allowed origins).
    pub fn url_policy(&self) -> UrlPolicy {
        self.policy.clone()
    }

    pub fn transport(&self) -> Result<Transport, Failure> {
        let http = forcelink_auth::wire::default_http_client().map_err(Failure::from_auth)?;
        Ok(Transport::new(http, Arc::new(SystemClock), self.url_policy()))
    }

    /// The connection a command names, or the default one.
    pub fn connection_name(&self, given: Option<&str>) -> Result<ConnectionId, Failure> {
        let name = given
            .map(str::to_owned)
            .or_else(|| self.env.get("FORCELINK_CONNECTION").map(str::to_owned))
            .or_else(|| self.config.default_connection.clone())
            .ok_or_else(|| {
                Failure::usage("no connection given")
                    .with_fix("name one (see `forcelink connection list`), or set FORCELINK_CONNECTION or default_connection in the config file")
            })?;
        validate_name(&name).map_err(|e| Failure::config(e.0))?;
        Ok(ConnectionId::new(name))
    }

    /// The connection's settings merged from every source, with the sources that define it.
    pub async fn spec(
        &self,
        store: &dyn ConnectionStore,
        name: &ConnectionId,
    ) -> Result<Option<(ConnectionSpec, Vec<Origin>)>, Failure> {
        let mut origins = Vec::new();
        let mut spec = ConnectionSpec::default();
        if let Some(stored) = store.connection(name).await.map_err(Failure::from_store)? {
            spec = stored.spec;
            origins.push(Origin::Store);
        }
        if let Some(s) = self.config.connections.get(name.as_str()) {
            spec = spec.overlay(s);
            origins.push(Origin::ConfigFile);
        }
        if let Some(s) = self.env_connections.get(name.as_str()) {
            spec = spec.overlay(s);
            origins.push(Origin::Environment);
        }
        Ok((!origins.is_empty()).then_some((spec, origins)))
    }

    /// Every connection name any source defines, with its origins.
    pub async fn all_names(&self, store: &dyn ConnectionStore) -> Result<BTreeMap<String, Vec<Origin>>, Failure> {
        let mut out: BTreeMap<String, Vec<Origin>> = BTreeMap::new();
        for c in store.connections().await.map_err(Failure::from_store)? {
            out.entry(c.name.as_str().to_owned()).or_default().push(Origin::Store);
        }
        for n in self.config.connections.keys() {
            out.entry(n.clone()).or_default().push(Origin::ConfigFile);
        }
        for n in self.env_connections.keys() {
            out.entry(n.clone()).or_default().push(Origin::Environment);
        }
        Ok(out)
    }

    /// "unknown connection" with the names that do exist.
    pub async fn unknown(&self, store: &dyn ConnectionStore, name: &ConnectionId) -> Failure {
        let known = self.all_names(store).await.map(|m| m.into_keys().collect::<Vec<_>>()).unwrap_or_default();
        let fix = if known.is_empty() {
            "add one with `forcelink connection add NAME --method …` or `forcelink login …`".to_owned()
        } else {
            format!("known connections: {}", known.join(", "))
        };
        Failure::not_found(format!("no connection named {name}")).with_fix(fix)
    }
}

fn read_config(path: &Path, explicit: bool) -> Result<ConfigFile, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(ConfigFile::default()),
        Err(e) => {
            return Err(Failure::config(format!("cannot read the config file {}: {e}", path.display())));
        }
    };
    let config: ConfigFile = toml::from_str(&text).map_err(|e| {
        Failure::config(format!("the config file {} is not valid: {}", path.display(), e.to_string().trim_end()))
            .with_fix("fix the file (nothing was changed)")
    })?;
    for name in config.connections.keys() {
        validate_name(name).map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
    }
    Ok(config)
}
