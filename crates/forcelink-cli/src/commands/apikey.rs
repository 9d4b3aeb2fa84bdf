//! `forcelink apikey create|list|revoke`: the broker's API keys. A new key is printed once;
//! the store keeps only its hash.

use std::time::SystemTime;

use forcelink_store::apikey::{ANY, generate};
use serde_json::json;

use super::rfc3339;
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum ApikeyCommand {
    /// Create a key and print it once (only its hash is stored).
    Create {
        /// A label for the key (who or what uses it).
        #[arg(long)]
        name: String,
        /// Connections it may use, comma-separated; `*` for all.
        #[arg(long, value_delimiter = ',', required = true)]
        connections: Vec<String>,
        /// Scopes, comma-separated: token, proxy, actions, admin, mcp, events (`*` for all).
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Reads only: no tokens, only GET/HEAD requests, only MCP tools that change nothing.
        #[arg(long)]
        read_only: bool,
    },
    /// List the keys (never their secrets).
    List,
    /// Revoke a key by its id (the part after `flk_`, before the second `_`).
    Revoke {
        /// The key's id.
        id: String,
    },
}

pub async fn run(settings: &Settings, command: ApikeyCommand) -> Result<Outcome, Failure> {
    match command {
        ApikeyCommand::Create { name, connections, scopes, read_only } => {
            create(settings, NewKey { name, connections, scopes, read_only }).await
        }
        ApikeyCommand::List => list(settings).await,
        ApikeyCommand::Revoke { id } => revoke(settings, &id).await,
    }
}

fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

#[allow(clippy::disallowed_methods)] // the binary reads the wall clock for key timestamps
fn now() -> SystemTime {
    SystemTime::now()
}

/// What `apikey create` was asked for.
struct NewKey {
    name: String,
    connections: Vec<String>,
    scopes: Vec<String>,
    read_only: bool,
}

async fn create(settings: &Settings, new: NewKey) -> Result<Outcome, Failure> {
    let NewKey { name, connections, scopes, read_only } = new;
    let connections = clean(connections);
    let scopes = clean(scopes);
    if connections.is_empty() {
        return Err(Failure::usage("--connections names no connection").with_fix("use --connections a,b or '*'"));
    }
    for c in connections.iter().filter(|c| c.as_str() != ANY) {
        forcelink_store::connection::validate_name(c).map_err(Failure::from_config)?;
    }
    if scopes.is_empty() {
        return Err(Failure::usage("--scopes names no scope"));
    }
    let scopes = forcelink_store::Scopes::parse(&scopes).map_err(|message| {
        let (what, fix) = message.split_once("; ").unwrap_or((&message, ""));
        Failure::usage(what.to_owned()).with_fix(fix.to_owned())
    })?;
    let store = settings.open_store().await?;
    let (key, mut record) = generate(name.clone(), connections.clone(), scopes.clone(), now());
    record.read_only = read_only;
    store.put_api_key(&record).await.map_err(Failure::from_store)?;
    let human = format!(
        "{}\n\nAPI key {} ({name}) for connections {} with scopes {}{}.\nIt is shown only this once: the store keeps its hash.\n",
        key.secret(),
        record.id,
        connections.join(","),
        scopes.to_strings().join(","),
        if read_only { ", read-only" } else { "" }
    );
    Ok(Outcome::new(
        json!({
            "key": key.secret(), "id": record.id, "name": name, "connections": connections, "scopes": scopes,
            "read_only": read_only,
        }),
        human,
    ))
}

async fn list(settings: &Settings) -> Result<Outcome, Failure> {
    let store = settings.open_store().await?;
    let keys = store.api_keys().await.map_err(Failure::from_store)?;
    let mut rows = vec![[
        "id".to_owned(),
        "name".into(),
        "connections".into(),
        "scopes".into(),
        "read-only".into(),
        "created".into(),
        "revoked".into(),
    ]];
    let mut out = Vec::new();
    for k in &keys {
        rows.push([
            k.id.clone(),
            k.label.clone(),
            k.connections.join(","),
            k.capabilities.to_strings().join(","),
            if k.read_only { "yes" } else { "" }.to_owned(),
            rfc3339(k.created_at),
            k.revoked_at.map(rfc3339).unwrap_or_default(),
        ]);
        out.push(json!({
            "id": k.id, "name": k.label, "connections": k.connections, "scopes": k.capabilities,
            "read_only": k.read_only, "created_at": rfc3339(k.created_at), "revoked_at": k.revoked_at.map(rfc3339),
        }));
    }
    let human = if keys.is_empty() { "no API keys\n".to_owned() } else { crate::output::table(&rows) };
    Ok(Outcome::new(json!({ "keys": out }), human))
}

async fn revoke(settings: &Settings, id: &str) -> Result<Outcome, Failure> {
    let store = settings.open_store().await?;
    let id = id.trim().strip_prefix("flk_").map(|rest| rest.split('_').next().unwrap_or(rest)).unwrap_or(id.trim());
    if !store.revoke_api_key(id, now()).await.map_err(Failure::from_store)? {
        return Err(Failure::not_found(format!("no API key with id {id:?}")).with_fix("see `forcelink apikey list`"));
    }
    Ok(Outcome::new(json!({ "revoked": id }), format!("revoked API key {id} (brokers stop accepting it within 5 s)\n")))
}
