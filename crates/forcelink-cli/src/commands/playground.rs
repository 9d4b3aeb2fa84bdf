//! `forcelink playground`: runs the offline Salesforce-compatible org (OAuth server, login
//! pages, control API, Pub/Sub API) until Ctrl-C or SIGTERM. It prints its summary (or its info
//! document with `--json`) once both hosts listen; failures take the same path as every
//! command's (a bad seed or data file is a configuration error, exit code 2).

use std::path::PathBuf;

use forcelink_playground::{Playground, PlaygroundConfig, Seed};

use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct PlaygroundArgs {
    /// Seed file (TOML) with the org, users and connected apps; the built-in seed when omitted.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Port of the login host (stand-in for login.salesforce.com); 0 = any free port.
    #[arg(long, default_value_t = 8410)]
    pub port: u16,
    /// Port of the instance (My Domain) host; 0 = any free port.
    #[arg(long, default_value_t = 8411)]
    pub instance_port: u16,
    /// Port of the Pub/Sub API (gRPC); 0 = any free port.
    #[arg(long, default_value_t = 8412)]
    pub pubsub_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Write URLs and credentials as JSON to this file once both hosts listen.
    #[arg(long, value_name = "PATH")]
    pub info_file: Option<PathBuf>,
    /// Serve both hosts over HTTPS with a self-signed CA (its path goes into the info file).
    #[arg(long)]
    pub tls: bool,
    /// Directory for the generated JWT key pair and signing key (kept between runs).
    #[arg(long, value_name = "DIR", env = "FORCELINK_PLAYGROUND_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
    /// Control API key; random when omitted.
    #[arg(long, env = "FORCELINK_PLAYGROUND_CONTROL_KEY", hide_env_values = true)]
    pub control_key: Option<String>,
    /// Keep the org's records in this SQLite file (kept between runs); in memory when omitted.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Generate records at start, e.g. `Account=1000000,Contact=200000`.
    #[arg(long, value_name = "SPEC")]
    pub generate: Option<String>,
}

/// Where the playground keeps its generated keys between runs unless `--key-dir` says otherwise.
fn default_key_dir() -> PathBuf {
    std::env::temp_dir().join("forcelink-playground")
}

pub async fn run(args: PlaygroundArgs, json: bool) -> Result<Outcome, Failure> {
    let seed = match &args.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::builtin(),
    };
    let mut config = PlaygroundConfig::new(args.key_dir.clone().unwrap_or_else(default_key_dir));
    config.seed = seed;
    config.bind = args.bind;
    config.login_port = args.port;
    config.instance_port = args.instance_port;
    config.pubsub_port = args.pubsub_port;
    config.tls = args.tls;
    config.control_key = args.control_key.clone();
    config.data_file = args.data.clone();
    if let Some(spec) = &args.generate {
        config.generate = forcelink_playground::parse_generate_spec(spec)?;
    }
    // A script waiting for the info file must never read the previous run's.
    if let Some(path) = &args.info_file {
        let _ = std::fs::remove_file(path);
    }
    let mut playground = Playground::start(config).await?;
    // Installed before the summary announces the playground, so a signal right after it stops it.
    let stop = crate::stop_signal();
    let info = playground.info().clone();
    if let Some(path) = &args.info_file {
        info.write_to(path)?;
    }
    if json {
        output::json(&info);
    } else {
        output::playground_summary(&info, args.info_file.as_deref());
    }
    tokio::select! {
        _ = playground.wait() => {}
        _ = stop => {
            output::note("stopping the playground");
            playground.shutdown().await;
        }
    }
    if let Some(path) = &args.info_file {
        let _ = std::fs::remove_file(path);
    }
    // Everything was printed while it ran.
    Ok(Outcome::streamed())
}
