//! `forcelink store rotate-key` and `forcelink store audit`.

use std::sync::Arc;

use forcelink_auth::SystemClock;
use forcelink_store::KeySource;
use serde_json::json;

use super::rfc3339;
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Re-encrypt every secret in the store with a new master key, in one transaction.
    RotateKey,
    /// Show the audit log (who received which connection's token, when), newest first.
    Audit {
        /// Only this connection's entries.
        #[arg(long)]
        connection: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

pub async fn run(settings: &Settings, command: StoreCommand) -> Result<Outcome, Failure> {
    match command {
        StoreCommand::RotateKey => rotate(settings).await,
        StoreCommand::Audit { connection, limit } => audit_log(settings, connection.as_deref(), limit).await,
    }
}

async fn rotate(settings: &Settings) -> Result<Outcome, Failure> {
    let report = forcelink_store::rotate_key(&settings.store_location, &settings.key_source, Arc::new(SystemClock))
        .await
        .map_err(Failure::from_open)?;
    let mut human = format!(
        "re-encrypted {} connection(s) and {} token set(s); master key {} replaced by {}\n",
        report.connections, report.token_sets, report.old_key_id, report.new_key_id
    );
    let mut result = json!({
        "old_key_id": report.old_key_id,
        "new_key_id": report.new_key_id,
        "connections": report.connections,
        "token_sets": report.token_sets,
    });
    match (&settings.key_source, &report.new_key_base64) {
        (KeySource::Base64(_), Some(new_key)) => {
            human.push_str(&format!(
                "\nFORCELINK_MASTER_KEY must now be set to the new key (shown once; the old one no longer opens the store):\n  {}\n",
                new_key.secret()
            ));
            result["new_master_key"] = json!(new_key.secret());
        }
        (KeySource::File(path), _) => human.push_str(&format!("the key file {} holds the new key\n", path.display())),
        _ => {}
    }
    Ok(Outcome::new(result, human))
}

async fn audit_log(settings: &Settings, connection: Option<&str>, limit: usize) -> Result<Outcome, Failure> {
    let store = settings.open_store().await?;
    let filter = connection.map(|c| settings.connection_name(Some(c))).transpose()?;
    let entries = store.audit(filter.as_ref(), limit).await?;
    let mut table = vec![["AT", "CONNECTION", "ACTOR", "ACTION", "DETAIL"].map(str::to_owned)];
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            table.push([
                rfc3339(e.at),
                e.connection.as_str().to_owned(),
                e.actor.clone(),
                e.action.to_string(),
                e.detail.clone().unwrap_or_default(),
            ]);
            json!({ "at": rfc3339(e.at), "connection": e.connection.as_str(), "actor": e.actor, "action": e.action, "detail": e.detail })
        })
        .collect();
    let human = if rows.is_empty() { "the audit log is empty\n".to_owned() } else { crate::output::table(&table) };
    Ok(Outcome::new(serde_json::Value::Array(rows), human))
}
