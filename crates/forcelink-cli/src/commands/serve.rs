//! `forcelink serve [--bind ADDR] [--public-url URL] [--playground]`: the broker. With
//! `--playground` it also starts an embedded playground org with generated data, in a
//! throwaway store creates a working `playground` connection (client credentials) and an admin
//! API key, and prints where to click.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use forcelink_auth::{ConnectionId, SystemClock};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_playground::{Playground, PlaygroundConfig, PlaygroundInfo};
use forcelink_store::{
    ConnectionSpec, ConnectionStore, Environment, KeySource, MasterKey, Method, PutMode, StoreLocation,
};
use serde_json::json;
use url::Url;

use super::Outcome;
use crate::failure::Failure;
use crate::settings::Settings;

/// Where the broker listens unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:7878";
/// Records the embedded playground generates, so the proxy has data to show.
pub const PLAYGROUND_DATA: &str = "Account=200,Contact=500";
/// The connection `--playground` creates.
pub const PLAYGROUND_CONNECTION: &str = "playground";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// The broker's URL as browsers reach it (the OAuth redirect URI is URL/oauth/callback);
    /// default: the address of each request.
    #[arg(long, value_name = "URL")]
    public_url: Option<Url>,
    /// Also start an embedded playground org with data, a `playground` connection to it and an
    /// admin API key, in a throwaway store (the one-command tour).
    #[arg(long)]
    playground: bool,
}

#[allow(clippy::disallowed_methods)] // the binary reads the wall clock for key timestamps
fn now() -> SystemTime {
    SystemTime::now()
}

/// The embedded playground and its throwaway store directory.
struct Tour {
    playground: Playground,
    info: PlaygroundInfo,
    dir: PathBuf,
    admin_key: String,
}

async fn start_tour(store_dir: &std::path::Path) -> Result<(Tour, Arc<dyn ConnectionStore>, StoreLocation), Failure> {
    let key_dir = std::env::temp_dir().join("forcelink-playground");
    let mut config = PlaygroundConfig::new(key_dir);
    config.login_port = 0;
    config.instance_port = 0;
    config.generate = forcelink_playground::parse_generate_spec(PLAYGROUND_DATA)
        .map_err(|e| Failure::failed(format!("playground data: {e}")))?;
    let playground =
        Playground::start(config).await.map_err(|e| Failure::failed(format!("starting the playground: {e}")))?;
    let info = playground.info().clone();
    std::fs::create_dir_all(store_dir)
        .map_err(|e| Failure::failed(format!("creating {}: {e}", store_dir.display())))?;
    let location = StoreLocation::Sqlite(store_dir.join("store.db"));
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    let store =
        forcelink_store::open_store(&location, &key, Arc::new(SystemClock)).await.map_err(Failure::from_open)?;
    let spec = ConnectionSpec {
        method: Some(Method::ClientCredentials),
        environment: Some(Environment::Custom),
        login_url: Some(info.instance_url.clone()),
        client_id: Some(info.client.client_id.clone()),
        client_secret: Some(info.client.client_secret.clone()),
        ..ConnectionSpec::default()
    };
    store
        .put_connection(&ConnectionId::new(PLAYGROUND_CONNECTION), &spec, PutMode::Upsert)
        .await
        .map_err(Failure::from_store)?;
    let all = vec![forcelink_store::apikey::ANY.to_owned()];
    let (key, record) = forcelink_store::apikey::generate("playground admin", all, forcelink_store::Scopes::All, now());
    store.put_api_key(&record).await.map_err(Failure::from_store)?;
    let tour = Tour { playground, info, dir: store_dir.to_owned(), admin_key: key.secret().to_owned() };
    Ok((tour, store, location))
}

pub async fn run(settings: &Settings, args: ServeArgs, json_mode: bool) -> Result<Outcome, Failure> {
    let store_dir = std::env::temp_dir().join(format!("forcelink-serve-{}", std::process::id()));
    let (tour, store, location) = if args.playground {
        let (tour, store, location) = start_tour(&store_dir).await?;
        (Some(tour), store, location)
    } else {
        (None, settings.open_store().await?, settings.store_location.clone())
    };
    let mut transport = settings.transport()?;
    if let Some(tour) = &tour {
        // Exactly the embedded playground's two origins may receive its credentials.
        let mut policy = settings.url_policy();
        for url in [&tour.info.login_url, &tour.info.instance_url] {
            let origin = url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
            policy = policy.allow_origin(&origin).map_err(Failure::from_auth)?;
        }
        transport = forcelink_auth::Transport::new(
            forcelink_auth::wire::default_http_client().map_err(Failure::from_auth)?,
            transport.clock().clone(),
            policy,
        );
    }
    let mut config = BrokerConfig::new(store, transport, settings.env.resolver());
    config.public_url = args.public_url.clone();
    let state = BrokerState::new(config).map_err(|e| Failure::failed(e.message))?;
    if tour.is_some() {
        // The tour's connection is ready when the summary says so: its first token is fetched now.
        let entry = state.entry(PLAYGROUND_CONNECTION).await.map_err(|e| Failure::failed(e.message))?;
        state.token(&entry).await.map_err(|e| Failure::failed(e.message))?;
    }
    let listener = tokio::net::TcpListener::bind(args.bind).await.map_err(|e| {
        Failure::failed(format!("cannot listen on {}: {e}", args.bind)).with_fix("choose another address with --bind")
    })?;
    let addr = listener.local_addr().map_err(|e| Failure::failed(format!("listening: {e}")))?;
    let base = args
        .public_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or(format!("http://{addr}"));
    crate::output::outcome(json_mode, summary(&base, &location, tour.as_ref()));
    let served = forcelink_broker::serve(listener, state, crate::stop_signal()).await;
    if let Some(tour) = tour {
        tour.playground.shutdown().await;
        let _ = std::fs::remove_dir_all(&tour.dir);
    }
    served.map_err(|e| Failure::failed(format!("serving: {e}")))?;
    Ok(Outcome::new(json!({ "stopped": true }), "broker stopped\n"))
}

fn summary(base: &str, location: &StoreLocation, tour: Option<&Tour>) -> Outcome {
    let mut human = format!(
        "forcelink broker is running\n\n  page            {base}/\n  API             {base}/v1/   (OpenAPI: {base}/v1/openapi.json)\n  store           {location}\n"
    );
    let mut result = json!({ "url": base, "store": location.to_string() });
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
                 (environment: custom domain {}, the client id and secret above, the user above).\n",
                i.login_url, i.instance_url, i.client.client_id, i.client.client_secret, i.user.username, i.user.password,
                i.login_url
            ));
            result["admin_key"] = json!(key);
            result["connection"] = json!(PLAYGROUND_CONNECTION);
            result["playground"] = serde_json::to_value(i).unwrap_or_default();
        }
        None => human.push_str("\nSign in to the page with an admin key: forcelink apikey create --name admin --connections '*' --scopes admin\n"),
    }
    human.push_str("\nready\n");
    Outcome::new(result, human)
}
