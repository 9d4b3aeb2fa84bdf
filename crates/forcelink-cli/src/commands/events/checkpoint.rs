//! `--checkpoint NAME` of `events subscribe` and `events checkpoints`: the store's checkpoints
//! (keyed by name, connection and topic) behind the client's `Checkpoint` hook.
//!
//! The rule for where a checkpointed subscription starts:
//! - a saved checkpoint and no `--replay`: after the saved replay id;
//! - a saved checkpoint and `--replay`: refused (exit 2), since one of the two would be ignored
//!   silently, unless `--reset-checkpoint` says to drop the saved one and start from `--replay`;
//! - no saved checkpoint: `--replay` (default latest).

use std::sync::{Arc, Mutex, PoisonError};

use forcelink_auth::ConnectionId;
use forcelink_client::pubsub::{Checkpoint, ReplayFrom, ReplayId};
use forcelink_store::{CheckpointKey, ConnectionStore, StoredCheckpoint};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::parse_replay;
use crate::commands::{ConnectionArg, rfc3339};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

/// A checkpoint of the store, as the client's hook.
pub struct StoreCheckpoint {
    store: Arc<dyn ConnectionStore>,
    key: CheckpointKey,
    /// The replay id saved last: the client hands an event's id again when the caller asks for
    /// the next event, after the CLI saved it on printing; one write is enough.
    last: Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for StoreCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCheckpoint").field("key", &self.key).finish()
    }
}

impl Checkpoint for StoreCheckpoint {
    fn save<'a>(&'a self, replay_id: &'a ReplayId) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let bytes = replay_id.as_bytes();
            if self.last.lock().unwrap_or_else(PoisonError::into_inner).as_deref() == Some(bytes) {
                return Ok(());
            }
            self.store.save_checkpoint(&self.key, bytes).await.map_err(|e| e.to_string())?;
            *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(bytes.to_vec());
            Ok(())
        })
    }
}

impl StoreCheckpoint {
    /// Saves `replay_id` now (after an event was printed), unless it is the one saved last.
    pub async fn save_now(&self, replay_id: &ReplayId) -> Result<(), Failure> {
        self.save(replay_id).await.map_err(|e| {
            Failure::failed(format!("saving checkpoint {}: {e}", self.key.name()))
                .with_fix("the event was printed but not recorded: it comes again on the next run")
        })
    }
}

/// Where a subscription with `--checkpoint NAME` starts, and the hook that records its progress.
pub async fn open(
    store: Arc<dyn ConnectionStore>,
    name: &str,
    connection: &ConnectionId,
    topic: &str,
    replay: Option<&str>,
    reset: bool,
) -> Result<(ReplayFrom, Arc<StoreCheckpoint>), Failure> {
    let key = CheckpointKey::new(name, connection, topic).map_err(|e| Failure::usage(e.0))?;
    let saved = store.checkpoint(&key).await?;
    let from = match (saved, replay, reset) {
        (Some(_), Some(_), false) => {
            return Err(Failure::usage(format!(
                "checkpoint {name} of connection {connection} on {topic} is saved, and --replay would start elsewhere"
            ))
            .with_fix(format!(
                "leave out --replay to resume after the checkpoint, or add --reset-checkpoint to drop it and start \
                 from --replay; `forcelink events checkpoints -c {connection}` shows it"
            )));
        }
        (Some(saved), None, false) => ReplayFrom::After(ReplayId::from_bytes(saved.replay_id)),
        (saved, replay, _) => {
            let from = parse_replay(replay.unwrap_or("latest"))?;
            // Dropped before subscribing: stopping before the first event must not leave the old
            // checkpoint to resume from later.
            if saved.is_some() {
                store.delete_checkpoint(&key).await?;
            }
            from
        }
    };
    Ok((from, Arc::new(StoreCheckpoint { store, key, last: Mutex::new(None) })))
}

#[derive(Debug, clap::Subcommand)]
pub enum CheckpointsCommand {
    /// List saved checkpoints (all, or one connection's with -c).
    List {
        /// Only this connection's.
        #[arg(short = 'c', long = "connection", value_name = "NAME")]
        connection: Option<String>,
    },
    /// Delete a checkpoint: the next `subscribe --checkpoint NAME` starts from --replay.
    Delete {
        /// The checkpoint's name.
        name: String,
        /// The topic it is for.
        topic: String,
        #[command(flatten)]
        conn: ConnectionArg,
    },
}

pub async fn run(settings: &Settings, command: CheckpointsCommand) -> Result<Outcome, Failure> {
    let store = settings.open_store().await?;
    match command {
        CheckpointsCommand::List { connection } => {
            let connection = connection.map(ConnectionId::new);
            let all = store.checkpoints(connection.as_ref()).await?;
            let human = if all.is_empty() {
                "no checkpoints".to_owned()
            } else {
                all.iter()
                    .map(|c| {
                        format!(
                            "{:<20} {:<20} {:<45} {} ({})",
                            c.key.connection(),
                            c.key.name(),
                            c.key.topic(),
                            ReplayId::from_bytes(c.replay_id.clone()),
                            rfc3339(c.updated_at)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok(Outcome::new(json!({"checkpoints": all.iter().map(checkpoint_json).collect::<Vec<_>>()}), human))
        }
        CheckpointsCommand::Delete { name, topic, conn } => {
            let connection = settings.connection_name(conn.connection.as_deref())?;
            let key = CheckpointKey::new(&name, &connection, &topic).map_err(|e| Failure::usage(e.0))?;
            if !store.delete_checkpoint(&key).await? {
                return Err(Failure::not_found(format!("no checkpoint {name} of connection {connection} on {topic}"))
                    .with_fix(format!("`forcelink events checkpoints list -c {connection}` shows the saved ones")));
            }
            Ok(Outcome::new(
                json!({"deleted": true, "name": name, "connection": connection.as_str(), "topic": topic}),
                format!("deleted checkpoint {name} of connection {connection} on {topic}"),
            ))
        }
    }
}

fn checkpoint_json(c: &StoredCheckpoint) -> Value {
    json!({
        "name": c.key.name(),
        "connection": c.key.connection().as_str(),
        "topic": c.key.topic(),
        "replay_id": ReplayId::from_bytes(c.replay_id.clone()).to_base64(),
        "updated_at": rfc3339(c.updated_at),
    })
}
