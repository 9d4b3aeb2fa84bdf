//! The `forcelink` binary: parses arguments, builds settings, runs one command, maps errors to
//! exit codes. Everything it prints goes through `output`.
//!
//! Exit codes (see `failure` and docs/cli.md): 0 success, 1 failure, 2 usage or configuration,
//! 3 sign-in needed, 4 not found.

mod commands;
mod failure;
mod outcome;
mod output;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use forcelink_playground::{Playground, PlaygroundConfig, PlaygroundError, Seed};

#[derive(Debug, Parser)]
#[command(name = "forcelink", version, about = "Connect software to Salesforce and keep it connected")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: settings::GlobalArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add, list, show, remove and test connections.
    #[command(subcommand)]
    Connection(commands::connection::ConnectionCommand),
    /// Sign in with one of the auth methods and keep the tokens (encrypted) in the store.
    #[command(subcommand)]
    Login(Box<commands::login::LoginCommand>),
    /// Get a connection's access token.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Revoke a connection's tokens at Salesforce, then forget them (the connection stays).
    Logout {
        /// Connection name.
        name: Option<String>,
        /// Forget the tokens without revoking them.
        #[arg(long)]
        no_revoke: bool,
    },
    /// Make an RSA key (mode 0600) and a self-signed certificate for the JWT bearer flow.
    Keygen(commands::keygen::KeygenArgs),
    /// Diagnose a connection and name the fix for each problem.
    Doctor {
        /// Connection name.
        name: Option<String>,
    },
    /// The store: master-key rotation, the audit log.
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
    /// Run a SOQL query; records stream out as a table, JSON, NDJSON or CSV.
    Query(commands::query::QueryArgs),
    /// Run a SOSL search.
    Search(commands::query::SearchArgs),
    /// Objects and records: list, describe, get, create, update, upsert, delete.
    #[command(subcommand)]
    Sobject(commands::sobject::SObjectCommand),
    /// The org's limits (API requests, storage…) and their use.
    Limits {
        #[command(flatten)]
        conn: commands::query::ConnectionArg,
        /// Every limit, also those not in use.
        #[arg(long)]
        all: bool,
    },
    /// User administration: create, update, activate, deactivate, freeze, unfreeze,
    /// remove-entitlements, reset-password.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Files: upload a document (ContentVersion), optionally linked to a record.
    #[command(subcommand)]
    Document(commands::user::DocumentCommand),
    /// Generate documents from the org's metadata (OpenAPI for chosen sObjects).
    #[command(subcommand)]
    Generate(commands::generate::GenerateCommand),
    /// Bulk API 2.0: import, upsert and delete CSV files, export queries, follow and resume jobs.
    #[command(subcommand)]
    Bulk(commands::bulk::BulkCommand),
    /// Salesforce events (Pub/Sub API): subscribe to change events and platform events,
    /// publish platform events, list topics.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Run the playground: an offline, Salesforce-compatible org (OAuth server, login pages,
    /// control API) to try and test clients without a Salesforce account.
    Playground(PlaygroundArgs),
    /// Run the broker: HTTP API, proxy and web page for connections (`--playground`: with an
    /// embedded playground org, a ready connection and an admin key).
    Serve(commands::serve::ServeArgs),
    /// Create, list and revoke the broker's API keys.
    #[command(subcommand)]
    Apikey(commands::apikey::ApikeyCommand),
}

#[derive(Debug, clap::Args)]
struct PlaygroundArgs {
    /// Seed file (TOML) with the org, users and connected apps; the built-in seed when omitted.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Port of the login host (stand-in for login.salesforce.com); 0 = any free port.
    #[arg(long, default_value_t = 8410)]
    port: u16,
    /// Port of the instance (My Domain) host; 0 = any free port.
    #[arg(long, default_value_t = 8411)]
    instance_port: u16,
    /// Port of the Pub/Sub API (gRPC); 0 = any free port.
    #[arg(long, default_value_t = 8412)]
    pubsub_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Write URLs and credentials as JSON to this file once both hosts listen.
    #[arg(long, value_name = "PATH")]
    info_file: Option<PathBuf>,
    /// Serve both hosts over HTTPS with a self-signed CA (its path goes into the info file).
    #[arg(long)]
    tls: bool,
    /// Directory for the generated JWT key pair and signing key (kept between runs).
    #[arg(long, value_name = "DIR", env = "FORCELINK_PLAYGROUND_KEY_DIR")]
    key_dir: Option<PathBuf>,
    /// Control API key; random when omitted.
    #[arg(long, env = "FORCELINK_PLAYGROUND_CONTROL_KEY", hide_env_values = true)]
    control_key: Option<String>,
    /// Keep the org's records in this SQLite file (kept between runs); in memory when omitted.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Generate records at start, e.g. `Account=1000000,Contact=200000`.
    #[arg(long, value_name = "SPEC")]
    generate: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let command = match cli.command {
        Command::Playground(args) => {
            return match runtime.block_on(run_playground(args, cli.global.json)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    output::error(&format!("{e:#}"));
                    ExitCode::from(exit_code(&e))
                }
            };
        }
        other => other,
    };
    let json = cli.global.json;
    let result = match settings::Settings::resolve(&cli.global, settings::Env::from_process()) {
        Ok(settings) => runtime.block_on(run_command(&settings, command, json)),
        Err(f) => Err(f),
    };
    match result {
        Ok(outcome) => {
            let code = outcome.exit;
            output::outcome(json, outcome);
            ExitCode::from(code)
        }
        Err(failure) => {
            let code = failure.kind.exit_code();
            output::failure(json, &failure);
            ExitCode::from(code)
        }
    }
}

async fn run_command(
    settings: &settings::Settings,
    command: Command,
    json: bool,
) -> Result<outcome::Outcome, failure::Failure> {
    match command {
        Command::Connection(c) => commands::connection::run(settings, c).await,
        Command::Login(c) => commands::login::run(settings, *c).await,
        Command::Token(c) => commands::token::run(settings, c).await,
        Command::Logout { name, no_revoke } => commands::token::logout(settings, name.as_deref(), no_revoke).await,
        Command::Keygen(args) => commands::keygen::run(settings, args),
        Command::Doctor { name } => commands::doctor::run(settings, name.as_deref()).await,
        Command::Store(c) => commands::store::run(settings, c).await,
        Command::Query(args) => commands::query::query(settings, args, json).await,
        Command::Search(args) => commands::query::search(settings, args, json).await,
        Command::Sobject(c) => commands::sobject::run(settings, c).await,
        Command::Limits { conn, all } => commands::sobject::limits(settings, conn, all || json).await,
        Command::User(c) => commands::user::run(settings, c).await,
        Command::Document(c) => commands::user::document(settings, c).await,
        Command::Generate(c) => commands::generate::run(settings, c).await,
        Command::Bulk(c) => commands::bulk::run(settings, c).await,
        Command::Events(c) => commands::events::run(settings, c).await,
        Command::Serve(args) => commands::serve::run(settings, args, json).await,
        Command::Apikey(c) => commands::apikey::run(settings, c).await,
        Command::Playground(_) => Err(failure::Failure::usage("internal: playground is dispatched separately")),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORCELINK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Configuration problems are exit code 2; everything else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<PlaygroundError>() {
        Some(PlaygroundError::Seed { .. }) => 2,
        Some(PlaygroundError::Data { .. }) => 2,
        _ => 1,
    }
}

fn default_key_dir() -> PathBuf {
    std::env::temp_dir().join("forcelink-playground")
}

async fn run_playground(args: PlaygroundArgs, json: bool) -> anyhow::Result<()> {
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
        _ = stop_signal() => {
            output::note("stopping the playground");
            playground.shutdown().await;
        }
    }
    if let Some(path) = &args.info_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (service managers, `kill`).
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
