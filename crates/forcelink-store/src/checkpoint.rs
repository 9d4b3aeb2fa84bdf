//! Checkpoints of Pub/Sub subscriptions: the replay id a named subscriber last handled, per
//! connection and topic, so a restarted consumer resumes exactly where it stopped.
//!
//! A checkpoint is keyed by ([`CheckpointKey`]) its name, the connection and the topic; it holds
//! the replay id's bytes (opaque to forcelink: Salesforce's are 8-byte big-endian integers, but
//! nothing here relies on it) and when it was last saved. Replay ids are not secrets: they are
//! kept in the clear.

use std::time::SystemTime;

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;

use crate::connection::ConfigError;

/// Longest checkpoint name.
pub const MAX_CHECKPOINT_NAME_LEN: usize = 64;

/// Longest topic name kept with a checkpoint (Salesforce's are far shorter:
/// `/data/<Object>ChangeEvent`, `/event/<Name>__e`, with API names of at most 40 characters).
pub const MAX_TOPIC_LEN: usize = 255;

/// Longest replay id kept (Salesforce's are 8 bytes; the Pub/Sub API calls them opaque).
pub const MAX_REPLAY_ID_LEN: usize = 64;

/// Which checkpoint: a subscriber's name, the connection it reads through, the topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointKey {
    connection: ConnectionId,
    name: String,
    topic: String,
}

impl CheckpointKey {
    /// Checks `name` (up to [`MAX_CHECKPOINT_NAME_LEN`] letters, digits, `-`, `_` or `.`, starting
    /// with a letter or digit) and `topic` (starting with `/`, up to [`MAX_TOPIC_LEN`] visible
    /// ASCII characters).
    pub fn new(name: &str, connection: &ConnectionId, topic: &str) -> Result<Self, ConfigError> {
        validate_checkpoint_name(name)?;
        validate_topic(topic)?;
        Ok(Self { connection: connection.clone(), name: name.to_owned(), topic: topic.to_owned() })
    }

    /// A key read back from a database row (checked when it was written).
    pub(crate) fn from_row(connection: String, name: String, topic: String) -> Self {
        Self { connection: ConnectionId::new(connection), name, topic }
    }

    /// The subscriber's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection the subscription reads through.
    pub fn connection(&self) -> &ConnectionId {
        &self.connection
    }

    /// The topic, e.g. `/data/AccountChangeEvent`.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// A saved checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Which one.
    pub key: CheckpointKey,
    /// The replay id of the last event handled (or the last keep-alive's), as received.
    pub replay_id: Vec<u8>,
    /// When it was last saved (the store's clock, to the millisecond in the databases).
    pub updated_at: SystemTime,
}

/// Names are what users type, as connection names: letters, digits, `-`, `_`, `.`, starting with
/// a letter or digit, at most [`MAX_CHECKPOINT_NAME_LEN`].
pub fn validate_checkpoint_name(name: &str) -> Result<(), ConfigError> {
    if crate::connection::is_typed_name(name, MAX_CHECKPOINT_NAME_LEN) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "checkpoint name {name:?} is not valid: use up to {MAX_CHECKPOINT_NAME_LEN} letters, digits, '-', '_' or \
             '.', starting with a letter or digit"
        )))
    }
}

fn validate_topic(topic: &str) -> Result<(), ConfigError> {
    let ok = topic.starts_with('/') && topic.len() <= MAX_TOPIC_LEN && topic.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "topic {:?} is not valid for a checkpoint: a topic starts with '/' (e.g. /data/AccountChangeEvent), \
             has no spaces and at most {MAX_TOPIC_LEN} characters",
            topic.chars().take(80).collect::<String>()
        )))
    }
}

/// Refuses an empty replay id or one longer than [`MAX_REPLAY_ID_LEN`] before it reaches a
/// database.
pub(crate) fn check_replay_id(replay_id: &[u8]) -> Result<(), StoreError> {
    if replay_id.is_empty() || replay_id.len() > MAX_REPLAY_ID_LEN {
        return Err(StoreError::Corrupt(format!(
            "a replay id of {} bytes cannot be a checkpoint (1 to {MAX_REPLAY_ID_LEN} bytes)",
            replay_id.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_topics_are_checked() {
        let c = ConnectionId::new("prod");
        let key = CheckpointKey::new("orders-sync.v2", &c, "/data/AccountChangeEvent").unwrap();
        assert_eq!(
            (key.name(), key.connection().as_str(), key.topic()),
            ("orders-sync.v2", "prod", "/data/AccountChangeEvent")
        );
        for bad in ["", "-lead", "has space", "slash/no", "é", &"n".repeat(MAX_CHECKPOINT_NAME_LEN + 1)] {
            let err = CheckpointKey::new(bad, &c, "/event/X__e").unwrap_err();
            assert!(err.to_string().contains("checkpoint name"), "{bad:?}: {err}");
        }
        assert!(CheckpointKey::new(&"n".repeat(MAX_CHECKPOINT_NAME_LEN), &c, "/event/X__e").is_ok());
        for bad in [
            "",
            "data/AccountChangeEvent",
            "/data/Account ChangeEvent",
            "/data/\u{7f}",
            &format!("/{}", "t".repeat(MAX_TOPIC_LEN)),
        ] {
            let err = CheckpointKey::new("ok", &c, bad).unwrap_err();
            assert!(err.to_string().contains("topic"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn replay_ids_are_bounded() {
        assert!(check_replay_id(&[0, 0, 0, 0, 0, 0, 0, 7]).is_ok());
        assert!(check_replay_id(&[]).is_err());
        assert!(check_replay_id(&[1; MAX_REPLAY_ID_LEN]).is_ok());
        assert!(check_replay_id(&[1; MAX_REPLAY_ID_LEN + 1]).is_err());
    }
}
