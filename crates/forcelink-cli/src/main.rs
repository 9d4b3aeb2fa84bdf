//! The `forcelink` binary: parses arguments, builds settings, runs one command, maps errors to
//! exit codes. Everything it prints goes through `output`.
//!
//! - `commands/`: one module per command, named after it (`connection`, `login`, `token` with
//!   `logout`, `keygen`, `doctor`, `store`, `query`, `search`, `sobject`, `limits`, `user`,
//!   `document`, `generate`, `bulk`, `events`, `playground`, `serve`, `apikey`), plus `flags`
//!   (connection settings as flag groups) and the helpers they share in `commands/mod.rs`.
//! - `settings`: the only reader of the environment; config file, store, master key, sources.
//! - `outcome`: what a command reports; `failure`: how it fails (kind → exit code, fix).
//! - `output`: the only printer (text or `--json`, tables, prompts, progress).
//!
//! Exit codes (see `failure` and docs/cli.md): 0 success, 1 failure, 2 usage or configuration,
//! 3 sign-in needed, 4 not found.

// The argument structs' doc comments are the `--help` text people read in a terminal, where
// `<Name>` placeholders and bare URLs are what they should see, not rustdoc markup.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

mod commands;
mod failure;
mod outcome;
mod output;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Search(commands::search::SearchArgs),
    /// Objects and records: list, describe, get, create, update, upsert, delete.
    #[command(subcommand)]
    Sobject(commands::sobject::SObjectCommand),
    /// The org's limits (API requests, storage…) and their use.
    Limits {
        #[command(flatten)]
        conn: commands::ConnectionArg,
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
    Document(commands::document::DocumentCommand),
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
    Playground(commands::playground::PlaygroundArgs),
    /// Run the broker: HTTP API, proxy and web page for connections (`--playground`: with an
    /// embedded playground org, a ready connection and an admin key).
    Serve(commands::serve::ServeArgs),
    /// Create, list and revoke the broker's API keys.
    #[command(subcommand)]
    Apikey(commands::apikey::ApikeyCommand),
    /// The broker's event subscriptions: relay a connection's Salesforce events to a receiver.
    #[command(subcommand)]
    Subscription(commands::subscription::SubscriptionCommand),
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
    let json = cli.global.json;
    let result = match cli.command {
        // The playground stands alone: it reads no config file, store or master key.
        Command::Playground(args) => runtime.block_on(commands::playground::run(args, json)),
        command => match settings::Settings::resolve(&cli.global, settings::Env::from_process()) {
            Ok(settings) => runtime.block_on(run_command(&settings, command, json)),
            Err(f) => Err(f),
        },
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
        Command::Query(args) => commands::query::run(settings, args, json).await,
        Command::Search(args) => commands::search::run(settings, args, json).await,
        Command::Sobject(c) => commands::sobject::run(settings, c).await,
        Command::Limits { conn, all } => commands::limits::run(settings, conn, all || json).await,
        Command::User(c) => commands::user::run(settings, c).await,
        Command::Document(c) => commands::document::run(settings, c).await,
        Command::Generate(c) => commands::generate::run(settings, c).await,
        Command::Bulk(c) => commands::bulk::run(settings, c).await,
        Command::Events(c) => commands::events::run(settings, c).await,
        Command::Serve(args) => commands::serve::run(settings, args, json).await,
        Command::Apikey(c) => commands::apikey::run(settings, c).await,
        Command::Subscription(c) => commands::subscription::run(settings, c).await,
        Command::Playground(args) => commands::playground::run(args, json).await,
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORCELINK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (service managers, `kill`). The
/// handlers are installed when this is called, not when the future is first polled: call it
/// before announcing readiness, so a signal sent right after `ready` stops the process
/// gracefully instead of killing it with the default action.
pub(crate) fn stop_signal() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            return Box::pin(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
