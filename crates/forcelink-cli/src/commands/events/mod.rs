//! `forcelink events`: the Pub/Sub API from the command line.
//!
//! - `subscribe`: change events and platform events as NDJSON, one event a line
//!   (`replay_id` in base64, `schema_id`, `event_id`, `payload`, `header` for change events);
//! - `publish`: one platform event from JSON;
//! - `topics`: the change-event and platform-event topics the org offers;
//! - `checkpoints`: the saved checkpoints of `subscribe --checkpoint NAME` (see `checkpoint`).
//!
//! The Pub/Sub endpoint is the connection's `pubsub_endpoint` (default
//! `api.pubsub.salesforce.com:7443`), `--pubsub-endpoint` overriding it; tokens come from the
//! connection's cache, renewed on auth errors, and go only where the settings' URL policy allows.

mod checkpoint;

use std::io::Write;
use std::sync::Arc;

use forcelink_client::pubsub::{Event, PubSubClient, PubSubError, PublishEvent, ReplayFrom, ReplayId};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{ConnectionArg, Opened, api_client, token_cache};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

/// Topics checked at once by `events topics`.
const TOPIC_CHECKS_IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, clap::Args)]
pub struct EndpointArg {
    /// Where the Pub/Sub API listens (host:port), instead of the connection's pubsub_endpoint
    /// (default api.pubsub.salesforce.com:7443); a playground prints its own.
    #[arg(long, value_name = "HOST:PORT")]
    pub pubsub_endpoint: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Print events of a topic as NDJSON, e.g. /data/AccountChangeEvent or /event/Order__e.
    Subscribe {
        /// The topic: /data/ChangeEvents, /data/<Object>ChangeEvent or /event/<Name>__e.
        topic: String,
        #[command(flatten)]
        conn: ConnectionArg,
        /// Where to start: latest (new events only; the default), earliest (all retained,
        /// 72 h) or a base64 replay id (the events after it).
        #[arg(long, value_name = "FROM")]
        replay: Option<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Resume after the replay id saved under NAME (for this connection and topic), and save
        /// each event's once it is printed. With a saved checkpoint, --replay is refused unless
        /// --reset-checkpoint is given.
        #[arg(long, value_name = "NAME")]
        checkpoint: Option<String>,
        /// Drop the saved checkpoint and start from --replay (default latest).
        #[arg(long, requires = "checkpoint")]
        reset_checkpoint: bool,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// Publish one platform event.
    Publish {
        /// The platform event's topic, /event/<Name>__e.
        topic: String,
        #[command(flatten)]
        conn: ConnectionArg,
        /// The event's fields as a JSON object, e.g. '{"Message__c": "hello"}'.
        #[arg(long, value_name = "JSON")]
        data: String,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// List the change-event and platform-event topics the org offers.
    Topics {
        #[command(flatten)]
        conn: ConnectionArg,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// List or delete the checkpoints saved by `subscribe --checkpoint NAME`.
    #[command(subcommand)]
    Checkpoints(checkpoint::CheckpointsCommand),
}

pub async fn run(settings: &Settings, command: EventsCommand) -> Result<Outcome, Failure> {
    match command {
        EventsCommand::Subscribe { topic, conn, replay, count, checkpoint, reset_checkpoint, endpoint } => {
            if checkpoint.is_none() {
                let from = parse_replay(replay.as_deref().unwrap_or("latest"))?;
                let (_, client) = pubsub_client(settings, &conn, &endpoint).await?;
                return subscribe(&client, &topic, from, count, None).await;
            }
            let name = checkpoint.as_deref().unwrap_or_default();
            let (opened, client) = pubsub_client(settings, &conn, &endpoint).await?;
            let (from, saver) = checkpoint::open(
                opened.store.clone(),
                name,
                &opened.connection.name,
                &topic,
                replay.as_deref(),
                reset_checkpoint,
            )
            .await?;
            subscribe(&client, &topic, from, count, Some(saver)).await
        }
        EventsCommand::Publish { topic, conn, data, endpoint } => {
            let data = match serde_json::from_str::<Value>(&data) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(Failure::usage("--data must be a JSON object")
                        .with_fix(r#"e.g. --data '{"Message__c": "hello"}'"#));
                }
                Err(e) => return Err(Failure::usage(format!("--data is not JSON: {e}"))),
            };
            let (_, client) = pubsub_client(settings, &conn, &endpoint).await?;
            let results = client
                .publish(&topic, vec![PublishEvent { correlation_key: None, data }])
                .await
                .map_err(from_pubsub)?;
            let r = results.into_iter().next().ok_or_else(|| Failure::failed("Salesforce answered no result"))?;
            match r.result {
                Ok(replay) => Ok(Outcome::new(
                    json!({"topic": topic, "correlation_key": r.correlation_key, "replay_id": replay.to_base64()}),
                    format!("published to {topic} (replay id {replay})"),
                )),
                Err(msg) => Err(Failure::failed(format!("Salesforce refused the event: {msg}"))),
            }
        }
        EventsCommand::Topics { conn, endpoint } => topics(settings, &conn, &endpoint).await,
        EventsCommand::Checkpoints(command) => checkpoint::run(settings, command).await,
    }
}

fn parse_replay(s: &str) -> Result<ReplayFrom, Failure> {
    match s.to_ascii_lowercase().as_str() {
        "latest" => Ok(ReplayFrom::Latest),
        "earliest" => Ok(ReplayFrom::Earliest),
        _ => ReplayId::from_base64(s).map(ReplayFrom::After).map_err(|e| {
            Failure::usage(e.to_string()).with_fix("use --replay latest, earliest, or a replay id printed by subscribe")
        }),
    }
}

async fn pubsub_client(
    settings: &Settings,
    conn: &ConnectionArg,
    endpoint: &EndpointArg,
) -> Result<(Opened, PubSubClient), Failure> {
    let opened = conn.open(settings).await?;
    let endpoint = match &endpoint.pubsub_endpoint {
        Some(raw) => forcelink_store::connection::parse_pubsub_endpoint(raw).map_err(|e| Failure::usage(e.0))?,
        None => opened.connection.pubsub_endpoint_or_default().to_owned(),
    };
    let cache = token_cache(settings, &opened)?;
    let client = PubSubClient::builder(Arc::new(cache))
        .endpoint(endpoint)
        .url_policy(settings.url_policy())
        .build()
        .map_err(from_pubsub)?;
    Ok((opened, client))
}

/// One NDJSON line of an event.
pub fn event_json(e: &Event) -> Value {
    let mut line = json!({
        "replay_id": e.replay_id.to_base64(),
        "schema_id": e.schema_id,
        "payload": e.payload,
    });
    if !e.event_id.is_empty() {
        line["event_id"] = json!(e.event_id);
    }
    if let Some(h) = &e.header {
        line["header"] = serde_json::to_value(h).unwrap_or(Value::Null);
    }
    line
}

async fn subscribe(
    client: &PubSubClient,
    topic: &str,
    from: ReplayFrom,
    count: Option<u64>,
    checkpoint: Option<Arc<checkpoint::StoreCheckpoint>>,
) -> Result<Outcome, Failure> {
    let mut sub = match &checkpoint {
        // The client also saves keep-alives' replay ids, so a quiet topic's checkpoint moves on.
        Some(c) => client.subscribe_with_checkpoint(topic, from, c.clone()),
        None => client.subscribe(topic, from),
    };
    let mut out = output::stdout_writer();
    let limit = count.unwrap_or(u64::MAX);
    let mut n = 0u64;
    while n < limit {
        match sub.next().await {
            Some(Ok(e)) => {
                n += 1;
                let line = event_json(&e).to_string();
                // Each event is flushed as it comes: a consumer downstream sees it at once.
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    // stdout closed (e.g. `| head`): stop quietly, this event not saved.
                    return Ok(Outcome::streamed());
                }
                // Saved once printed, not when the next one is asked for: the last event of a
                // `--count` run is recorded too, so the next run starts after it.
                if let Some(c) = &checkpoint {
                    c.save_now(&e.replay_id).await?;
                }
            }
            Some(Err(e)) => {
                let f = from_pubsub(e);
                let message = if n == 0 { f.message.clone() } else { format!("after {n} events: {}", f.message) };
                return Err(Failure { message, ..f });
            }
            None => break,
        }
    }
    Ok(Outcome::streamed())
}

async fn topics(settings: &Settings, conn: &ConnectionArg, endpoint: &EndpointArg) -> Result<Outcome, Failure> {
    let (opened, client) = pubsub_client(settings, conn, endpoint).await?;
    let rest = api_client(settings, &opened)?;
    let global = rest.describe_global().send().await.map_err(Failure::from_client)?;
    let names: Vec<String> = global.sobjects.iter().map(|o| o.name.clone()).collect();
    let candidates = candidate_topics(&names);
    let checks = futures_util::stream::iter(candidates.into_iter().map(|t| {
        let client = client.clone();
        async move { (t.clone(), client.get_topic(&t).await) }
    }))
    .buffered(TOPIC_CHECKS_IN_FLIGHT)
    .collect::<Vec<_>>()
    .await;
    let mut found = Vec::new();
    for (topic, answer) in checks {
        match answer {
            Ok(info) => found.push(json!({
                "topic": info.topic_name,
                "can_subscribe": info.can_subscribe,
                "can_publish": info.can_publish,
                "schema_id": info.schema_id,
            })),
            Err(PubSubError::Status { .. }) => {}
            Err(e) => return Err(from_pubsub(e).with_fix(format!("while checking {topic}"))),
        }
    }
    let human = found
        .iter()
        .map(|t| {
            let mode = if t["can_publish"] == true { "subscribe, publish" } else { "subscribe" };
            format!("{:<50} {mode}", t["topic"].as_str().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Outcome::new(json!({"topics": found}), human))
}

/// The topics worth a GetTopic, from describeGlobal's object names: `/data/ChangeEvents`, the
/// change events listed (`AccountChangeEvent` → `/data/AccountChangeEvent`) and the platform
/// events (`Order_Shipped__e` → `/event/Order_Shipped__e`: Salesforce lists platform events in
/// describeGlobal as objects whose name ends in `__e`). An org that lists no change events as
/// objects gets each object's change-event topic asked about instead (`Invoice__c` →
/// `/data/Invoice__ChangeEvent`).
fn candidate_topics(names: &[String]) -> Vec<String> {
    let mut candidates = vec!["/data/ChangeEvents".to_owned()];
    let described: Vec<String> = names
        .iter()
        .filter_map(|n| {
            if n.ends_with("ChangeEvent") {
                Some(format!("/data/{n}"))
            } else if n.ends_with("__e") {
                Some(format!("/event/{n}"))
            } else {
                None
            }
        })
        .collect();
    let lists_change_events = described.iter().any(|t| t.starts_with("/data/"));
    candidates.extend(described);
    if !lists_change_events {
        candidates.extend(names.iter().filter(|n| !n.ends_with("__e")).map(|n| match n.strip_suffix("__c") {
            Some(base) => format!("/data/{base}__ChangeEvent"),
            None => format!("/data/{n}ChangeEvent"),
        }));
    }
    candidates
}

fn from_pubsub(e: PubSubError) -> Failure {
    use forcelink_auth::Action;
    if let PubSubError::Auth(a) = e {
        return Failure::from_auth(a);
    }
    let fix = match &e {
        PubSubError::CorruptedReplayId { .. } | PubSubError::ReplayIdInvalid { .. } => {
            Some("start again with --replay earliest or --replay latest (events may have been missed)")
        }
        PubSubError::Transport { .. } => Some(
            "check the connection's pubsub_endpoint or --pubsub-endpoint (a playground prints its Pub/Sub API address)",
        ),
        _ => None,
    };
    let failure = match e.action() {
        Action::Reauthorize => Failure::sign_in(e.to_string()),
        Action::FixConfiguration => Failure::config(e.to_string()),
        _ => Failure::failed(e.to_string()),
    };
    match fix {
        Some(f) => failure.with_fix(f),
        None => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::candidate_topics;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn platform_events_and_listed_change_events_become_topics() {
        let got = candidate_topics(&names(&["Account", "AccountChangeEvent", "Forcelink_Notice__e", "Invoice__c"]));
        assert_eq!(got, ["/data/ChangeEvents", "/data/AccountChangeEvent", "/event/Forcelink_Notice__e"]);
    }

    #[test]
    fn without_listed_change_events_each_object_is_asked_about_and_platform_events_are_kept() {
        let got = candidate_topics(&names(&["Account", "Invoice__c", "Order_Shipped__e"]));
        assert_eq!(
            got,
            ["/data/ChangeEvents", "/event/Order_Shipped__e", "/data/AccountChangeEvent", "/data/Invoice__ChangeEvent"]
        );
    }
}
