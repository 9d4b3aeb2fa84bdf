//! `forcelink serve [--bind ADDR] [--public-url URL] [--max-connections N] [--health-interval
//! DURATION] [--mcp-rate-limit N] [--playground] [--info-file FILE]`: the broker, with its
//! background work (connection checks every `--health-interval`, webhook deliveries) and its MCP
//! server. With `--playground` it also starts an embedded playground
//! org with generated data, in a throwaway store creates a working `playground` connection
//! (client credentials) and an admin API key, and prints where to click.
//!
//! The tour's store and the playground's keys live in private temporary directories (mode
//! 0700, removed on exit), and the key files the playground loads are checked to be ours and
//! not readable by group or others. `--info-file` writes the broker URL, the admin key and the
//! playground's own info object as JSON (mode 0600, through a temporary file and a rename, so a
//! reader never sees half of it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::{ConnectionId, SystemClock};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_playground::{Playground, PlaygroundConfig, PlaygroundInfo};
use forcelink_store::{
    ConnectionSpec, ConnectionStore, Environment, KeySource, MasterKey, Method, PutMode, StoreLocation,
};
use serde_json::json;
use url::Url;

use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

/// Where the broker listens unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:7878";
/// Records the embedded playground generates, so the proxy has data to show.
pub const PLAYGROUND_DATA: &str = "Account=200,Contact=500";
/// The connection `--playground` creates.
pub const PLAYGROUND_CONNECTION: &str = "playground";
/// `--health-interval` unless given: forcelink-broker's `DEFAULT_HEALTH_INTERVAL`, 5 minutes.
pub const DEFAULT_HEALTH_INTERVAL_TEXT: &str = "5m";
/// The shortest `--health-interval`: checks more often than this would spend the org's API
/// requests (each check of a connection in use reads `/limits`) for nothing. 1 s.
pub const MIN_HEALTH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// The broker's URL as browsers reach it (the OAuth redirect URI is URL/oauth/callback);
    /// required when --bind is not a loopback address; default http://<bind address>.
    #[arg(long, value_name = "URL")]
    public_url: Option<Url>,
    /// Most connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = forcelink_broker::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// How often each connection is checked in the background (renewal before expiry, the org's
    /// limits, approvals used), once across all replicas on one store: a number and a unit,
    /// e.g. 30s, 5m, 1h; at least 1s.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_HEALTH_INTERVAL_TEXT, value_parser = health_interval)]
    health_interval: Duration,
    /// How long a replica's hold on an event subscription's consumer lasts without renewal: when
    /// a replica dies, its subscriptions move to another within this (at least 3s).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = event_lease)]
    event_lease: Duration,
    /// MCP calls (tools/call, resources/read) each API key may make per minute on this broker.
    #[arg(long, value_name = "N", default_value_t = forcelink_broker::DEFAULT_MCP_CALLS_PER_MINUTE)]
    mcp_rate_limit: u32,
    /// With --playground: write {"broker_url", "admin_key", "playground": {…}} to FILE (mode 0600).
    #[arg(long, value_name = "FILE", requires = "playground")]
    info_file: Option<PathBuf>,
    /// Also start an embedded playground org with data, a `playground` connection to it and an
    /// admin API key, in a throwaway store (the one-command tour).
    #[arg(long)]
    playground: bool,
}

/// `--health-interval`: a duration of at least [`MIN_HEALTH_INTERVAL`].
fn health_interval(text: &str) -> Result<Duration, String> {
    let interval = super::parse_duration(text)?;
    if interval < MIN_HEALTH_INTERVAL {
        return Err(format!(
            "{text:?} is shorter than 1s; checks that often would spend the org's API requests for nothing"
        ));
    }
    Ok(interval)
}

/// `--event-lease`: a duration of at least 3 s (renewed every third of it).
fn event_lease(text: &str) -> Result<Duration, String> {
    let lease = super::parse_duration(text)?;
    if lease < Duration::from_secs(3) {
        return Err(format!("{text:?} is shorter than 3s; the lease is renewed every third of it"));
    }
    Ok(lease)
}

/// A duration as people write it (`5m`, `1h 30m`).
fn friendly(d: Duration) -> String {
    jiff::SignedDuration::try_from(d).map(|d| format!("{d:#}")).unwrap_or_else(|_| format!("{d:?}"))
}

#[allow(clippy::disallowed_methods)] // the binary reads the wall clock for key timestamps
fn now() -> SystemTime {
    SystemTime::now()
}

/// The embedded playground and its throwaway directories (removed when dropped).
struct Tour {
    playground: Playground,
    info: PlaygroundInfo,
    _store_dir: tempfile::TempDir,
    _key_dir: tempfile::TempDir,
    admin_key: String,
}

/// A new directory only this user can enter (0700), removed when the handle is dropped.
fn private_dir(prefix: &str) -> Result<tempfile::TempDir, Failure> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Failure::failed(format!("creating a private temporary directory: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Failure::failed(format!("restricting {}: {e}", dir.path().display())))?;
    }
    Ok(dir)
}

/// Refuses key files in `dir` that another user owns or that group or others can read.
fn check_key_files(dir: &std::path::Path) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?.uid();
        let entries = std::fs::read_dir(dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.contains("key") || !name.ends_with(".pem") {
                continue;
            }
            let meta = entry.metadata().map_err(|e| Failure::failed(format!("{name}: {e}")))?;
            if meta.uid() != owner || meta.mode() & 0o077 != 0 {
                return Err(Failure::failed(format!(
                    "{} must belong to this user and not be readable by group or others (mode {:o})",
                    entry.path().display(),
                    meta.mode() & 0o777
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `value` to `path` with mode 0600, atomically (a temporary file in the same directory,
/// then a rename).
fn write_private_json(path: &std::path::Path, value: &serde_json::Value) -> Result<(), Failure> {
    use std::io::Write;
    let fail = |e: std::io::Error| Failure::failed(format!("writing {}: {e}", path.display()));
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // tempfile creates the file with mode 0600 and a name nobody can guess.
    let mut tmp = tempfile::Builder::new().prefix(".forcelink-info").tempfile_in(&parent).map_err(fail)?;
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::failed(format!("info file: {e}")))?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

async fn start_tour() -> Result<(Tour, Arc<dyn ConnectionStore>, StoreLocation), Failure> {
    let key_dir = private_dir("forcelink-playground-keys-")?;
    let store_dir = private_dir("forcelink-serve-")?;
    let mut config = PlaygroundConfig::new(key_dir.path());
    config.login_port = 0;
    config.instance_port = 0;
    config.generate = forcelink_playground::parse_generate_spec(PLAYGROUND_DATA)
        .map_err(|e| Failure::failed(format!("playground data: {e}")))?;
    let playground =
        Playground::start(config).await.map_err(|e| Failure::failed(format!("starting the playground: {e}")))?;
    let info = playground.info().clone();
    check_key_files(key_dir.path())?;
    let location = StoreLocation::Sqlite(store_dir.path().join("store.db"));
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    let store =
        forcelink_store::open_store(&location, &key, Arc::new(SystemClock)).await.map_err(Failure::from_open)?;
    let spec = ConnectionSpec {
        method: Some(Method::ClientCredentials),
        environment: Some(Environment::Custom),
        login_url: Some(info.instance_url.clone()),
        client_id: Some(info.client.client_id.clone()),
        client_secret: Some(info.client.client_secret.clone()),
        pubsub_endpoint: Some(info.pubsub_endpoint.clone()),
        ..ConnectionSpec::default()
    };
    store
        .put_connection(&ConnectionId::new(PLAYGROUND_CONNECTION), &spec, PutMode::Upsert)
        .await
        .map_err(Failure::from_store)?;
    let all = vec![forcelink_store::apikey::ANY.to_owned()];
    let (key, record) = forcelink_store::apikey::generate("playground admin", all, forcelink_store::Scopes::All, now());
    store.put_api_key(&record).await.map_err(Failure::from_store)?;
    let tour = Tour { playground, info, _store_dir: store_dir, _key_dir: key_dir, admin_key: key.secret().to_owned() };
    Ok((tour, store, location))
}

pub async fn run(settings: &Settings, args: ServeArgs, json_mode: bool) -> Result<Outcome, Failure> {
    if args.public_url.is_none() && !args.bind.ip().is_loopback() {
        return Err(Failure::usage(format!(
            "--bind {} is not a loopback address: give the URL browsers reach the broker at with --public-url \
             (it becomes the OAuth redirect URI URL/oauth/callback)",
            args.bind
        )));
    }
    if args.max_connections == 0 {
        return Err(Failure::usage("--max-connections must be at least 1"));
    }
    if args.mcp_rate_limit == 0 {
        return Err(Failure::usage("--mcp-rate-limit must be at least 1"));
    }
    let (tour, store, location) = if args.playground {
        let (tour, store, location) = start_tour().await?;
        (Some(tour), store, location)
    } else {
        (None, settings.open_store().await?, settings.store_location.clone())
    };
    let mut transport = settings.transport()?;
    if let Some(tour) = &tour {
        // Exactly the embedded playground's origins may receive its credentials: its two hosts
        // and its Pub/Sub API (h2c, or TLS under --tls like the instance).
        let mut policy = settings.url_policy();
        let scheme = url::Url::parse(&tour.info.instance_url).map(|u| u.scheme().to_owned()).unwrap_or_default();
        let pubsub = format!("{scheme}://{}", tour.info.pubsub_endpoint);
        for url in [&tour.info.login_url, &tour.info.instance_url, &pubsub] {
            let origin = url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
            policy = policy.allow_origin(&origin).map_err(Failure::from_auth)?;
        }
        transport = forcelink_auth::Transport::new(
            forcelink_auth::wire::default_http_client().map_err(Failure::from_auth)?,
            transport.clock().clone(),
            policy,
        );
    }
    let listener = tokio::net::TcpListener::bind(args.bind).await.map_err(|e| {
        Failure::failed(format!("cannot listen on {}: {e}", args.bind)).with_fix("choose another address with --bind")
    })?;
    let addr = listener.local_addr().map_err(|e| Failure::failed(format!("listening: {e}")))?;
    let public_url = match &args.public_url {
        Some(u) => u.clone(),
        None => Url::parse(&format!("http://{addr}/")).map_err(|e| Failure::failed(format!("public URL: {e}")))?,
    };
    let mut config = BrokerConfig::new(store, transport, settings.env.resolver());
    config.public_url = Some(public_url.clone());
    config.limits.max_connections = args.max_connections;
    config.health_interval = args.health_interval;
    config.limits.mcp_calls_per_minute = args.mcp_rate_limit;
    config.event_lease = args.event_lease;
    let state = BrokerState::new(config).map_err(|e| Failure::failed(e.message))?;
    if tour.is_some() {
        // The tour's connection is ready when the summary says so: its first token is fetched now.
        state.prepare(PLAYGROUND_CONNECTION).await.map_err(|e| Failure::failed(e.message))?;
    }
    let base = public_url.as_str().trim_end_matches('/').to_owned();
    if let (Some(path), Some(t)) = (&args.info_file, &tour) {
        let info = json!({
            "broker_url": base,
            "admin_key": t.admin_key,
            "playground": serde_json::to_value(&t.info).unwrap_or_default(),
        });
        write_private_json(path, &info)?;
    }
    // Installed before the summary says `ready`, so a signal right after it stops the broker
    // gracefully.
    let stop = crate::stop_signal();
    let listening = Listening { base: &base, addr, health_interval: args.health_interval };
    crate::output::outcome(json_mode, summary(&listening, &location, tour.as_ref()));
    let served = forcelink_broker::serve(listener, state, stop).await;
    if let Some(Tour { playground, _store_dir, _key_dir, .. }) = tour {
        playground.shutdown().await;
        // Dropping the directories' handles removes them.
        drop((_store_dir, _key_dir));
    }
    served.map_err(|e| Failure::failed(format!("serving: {e}")))?;
    Ok(Outcome::new(json!({ "stopped": true }), "broker stopped\n"))
}

/// Where the broker answers and how it works, for the summary.
struct Listening<'a> {
    /// The public URL without its trailing slash.
    base: &'a str,
    /// The socket it listens on (differs from the public URL behind a proxy or with port 0).
    addr: SocketAddr,
    health_interval: Duration,
}

fn summary(l: &Listening<'_>, location: &StoreLocation, tour: Option<&Tour>) -> Outcome {
    let (base, addr) = (l.base, l.addr);
    let every = friendly(l.health_interval);
    let mut human = format!(
        "forcelink broker is running\n\n  page            {base}/\n  API             {base}/v1/   (OpenAPI: {base}/v1/openapi.json)\n  MCP server      {base}/mcp   (streamable HTTP; a key with the mcp scope)\n  listening on    {addr}\n  store           {location}\n  checks          every {every} (--health-interval)\n"
    );
    let mut result = json!({
        "url": base,
        "mcp_url": format!("{base}/mcp"),
        "listen": addr.to_string(),
        "store": location.to_string(),
        "health_interval_seconds": l.health_interval.as_secs_f64(),
    });
    match tour {
        Some(t) => {
            let key = &t.admin_key;
            let i = &t.info;
            human.push_str(&format!(
                "  admin API key   {key}\n                  (sign in to the page with it; shown once, the store is thrown away on exit)\n\n\
                 playground org (offline stand-in for Salesforce)\n\
                 \x20 login URL       {}\n  instance URL    {}\n\
                 \x20 client id       {}\n  client secret   {}\n\
                 \x20 user            {} / {}\n\n\
                 The connection `playground` (client credentials) is ready. Try:\n\
                 \x20 curl -s -H 'Authorization: Bearer {key}' {base}/v1/connections/playground/token\n\
                 \x20 curl -s -H 'Authorization: Bearer {key}' '{base}/v1/connections/playground/sf/services/data/v64.0/query?q=SELECT+Name+FROM+Account+LIMIT+3'\n\
                 Or open {base}/ , sign in with the key, and add a connection with Authorize\n\
                 (environment: custom domain {}, the client id and secret above, the user above).\n\
                 For an AI agent, make a key for MCP on this connection only (add \"read_only\":true to forbid writes),\n\
                 then point the agent at {base}/mcp with the header Authorization: Bearer <that key>:\n\
                 \x20 curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"name\":\"agent\",\"connections\":[\"playground\"],\"scopes\":[\"mcp\"]}}' {base}/v1/api-keys\n",
                i.login_url, i.instance_url, i.client.client_id, i.client.client_secret, i.user.username, i.user.password,
                i.login_url
            ));
            result["admin_key"] = json!(key);
            result["connection"] = json!(PLAYGROUND_CONNECTION);
            result["playground"] = serde_json::to_value(i).unwrap_or_default();
        }
        None => human.push_str(
            "\nSign in to the page with an admin key: forcelink apikey create --name admin --connections '*' --scopes admin\n\
             For an AI agent: forcelink apikey create --name agent --connections NAME --scopes mcp [--read-only]\n",
        ),
    }
    human.push_str("\nready\n");
    Outcome::new(result, human)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_health_interval_is_the_brokers() {
        assert_eq!(health_interval(DEFAULT_HEALTH_INTERVAL_TEXT), Ok(forcelink_broker::DEFAULT_HEALTH_INTERVAL));
        assert_eq!(friendly(forcelink_broker::DEFAULT_HEALTH_INTERVAL), "5m");
    }

    #[test]
    fn health_intervals_under_a_second_are_refused() {
        assert_eq!(health_interval("1s"), Ok(Duration::from_secs(1)));
        for short in ["0", "0s", "500ms"] {
            assert!(health_interval(short).is_err(), "{short}");
        }
        assert!(health_interval("0s").unwrap_err().contains("shorter than 1s"));
    }
}
