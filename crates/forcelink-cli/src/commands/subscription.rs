//! `forcelink subscription create|list|show|pause|resume|delete`: the broker's event
//! subscriptions, written to the store its replicas share (a running `forcelink serve` starts a
//! consumer within a second). The same rules and answers as `/v1/subscriptions`.

use forcelink_broker::{BrokerConfig, BrokerState, ErrorResponse, SubscriptionAdmin};
use serde_json::{Value, json};

use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum SubscriptionCommand {
    /// Relay a topic's events to a receiver (prints the signing secret once).
    Create {
        /// The connection whose events are relayed.
        #[arg(long)]
        connection: String,
        /// `/data/AccountChangeEvent`, `/data/ChangeEvents` or `/event/Name__e`.
        #[arg(long)]
        topic: String,
        /// Where deliveries are POSTed (https, or an origin allowed with --allow-origin).
        #[arg(long)]
        url: String,
        /// Where the first read starts: latest (default) or earliest (what Salesforce keeps, 72 hours).
        #[arg(long, default_value = "latest", value_parser = ["latest", "earliest"])]
        replay: String,
        /// Only these change types (comma-separated: CREATE, UPDATE, DELETE, UNDELETE, GAP_…).
        #[arg(long, value_delimiter = ',')]
        change_types: Vec<String>,
        /// Only updates of these fields (comma-separated API names).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// A SOQL query whose rows are delivered first (salesforce.snapshot), then the stream.
        #[arg(long, value_name = "SOQL")]
        snapshot: Option<String>,
        /// Skip changes the broker itself made (so a workflow writing back does not loop).
        #[arg(long)]
        echo_suppression: bool,
    },
    /// List subscriptions with their state, lag and checkpoint.
    List,
    /// Show one subscription (state, lag, last delivery, checkpoint, consumer report).
    Show {
        /// Its id (`sub_…`).
        id: String,
    },
    /// Stop reading and delivering until resumed (events stay with Salesforce for 72 hours).
    Pause {
        /// Its id (`sub_…`).
        id: String,
    },
    /// Read and deliver again, from where it stopped.
    Resume {
        /// Its id (`sub_…`).
        id: String,
    },
    /// Delete a subscription, its pending deliveries and its checkpoints.
    Delete {
        /// Its id (`sub_…`).
        id: String,
    },
}

fn failure(e: ErrorResponse) -> Failure {
    match e.status.as_u16() {
        400 | 403 => Failure::usage(e.message),
        404 => Failure::not_found(e.message).with_fix("see `forcelink subscription list`"),
        _ => Failure::failed(e.message),
    }
}

async fn admin(settings: &Settings) -> Result<SubscriptionAdmin, Failure> {
    let store = settings.open_store().await?;
    let config = BrokerConfig::new(store, settings.transport()?, settings.env.resolver());
    let state = BrokerState::new(config).map_err(|e| Failure::failed(e.message))?;
    Ok(SubscriptionAdmin::new(state, super::actor(settings)))
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn details(v: &Value) -> String {
    let consumer = &v["consumer"];
    let mut lines = vec![
        format!("id           {}", text(v, "id")),
        format!("connection   {}", text(v, "connection")),
        format!("topic        {}", text(v, "topic")),
        format!("receiver     {}", v["webhook"]["url"].as_str().unwrap_or_default()),
        format!("state        {}", text(v, "state")),
        format!("lag          {} waiting ({} delivered, {} failed)", v["lag"], v["delivered"], v["failed"]),
        format!("checkpoint   {}", v["checkpoint"].as_str().unwrap_or("none yet")),
        format!("position     {}", v["position"].as_str().unwrap_or("none yet")),
    ];
    if let Some(q) = v["snapshot"].as_str() {
        lines.push(format!("snapshot     {q} ({} rows)", consumer["snapshot_rows"].as_u64().unwrap_or(0)));
    }
    if consumer.is_object() {
        lines.push(format!("consumer     {} on {}", text(consumer, "phase"), text(consumer, "holder")));
        if let Some(e) = consumer["error"].as_str() {
            lines.push(format!("error        {e}"));
            if let Some(f) = consumer["fix"].as_str() {
                lines.push(format!("fix          {f}"));
            }
        }
    }
    lines.join("\n") + "\n"
}

pub async fn run(settings: &Settings, command: SubscriptionCommand) -> Result<Outcome, Failure> {
    let admin = admin(settings).await?;
    match command {
        SubscriptionCommand::Create {
            connection,
            topic,
            url,
            replay,
            change_types,
            fields,
            snapshot,
            echo_suppression,
        } => {
            let body = json!({
                "connection": connection, "topic": topic, "webhook": {"url": url}, "replay": replay,
                "filter": {"change_types": change_types, "fields": fields},
                "snapshot": snapshot, "echo_suppression": echo_suppression,
            });
            let created = admin.create(body).await.map_err(failure)?;
            let human = format!(
                "{}\n\nSubscription {} relays {} of connection {} to {}.\nVerify deliveries with the signing \
                 secret above (Standard Webhooks); it is shown only this once.\n",
                text(&created, "secret"),
                text(&created, "id"),
                text(&created["subscription"], "topic"),
                text(&created["subscription"], "connection"),
                created["subscription"]["webhook"]["url"].as_str().unwrap_or_default(),
            );
            Ok(Outcome::new(created, human))
        }
        SubscriptionCommand::List => {
            let list = admin.list().await.map_err(failure)?;
            let subs = list["subscriptions"].as_array().cloned().unwrap_or_default();
            let mut rows = vec![[
                "id".to_owned(),
                "connection".into(),
                "topic".into(),
                "state".into(),
                "lag".into(),
                "receiver".into(),
            ]];
            for s in &subs {
                rows.push([
                    text(s, "id"),
                    text(s, "connection"),
                    text(s, "topic"),
                    text(s, "state"),
                    text(s, "lag"),
                    s["webhook"]["url"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            let human = if subs.is_empty() { "no subscriptions\n".to_owned() } else { crate::output::table(&rows) };
            Ok(Outcome::new(list, human))
        }
        SubscriptionCommand::Show { id } => {
            let v = admin.get(id.trim()).await.map_err(failure)?;
            let human = details(&v);
            Ok(Outcome::new(v, human))
        }
        SubscriptionCommand::Pause { id } => {
            let v = admin.set_paused(id.trim(), true).await.map_err(failure)?;
            Ok(Outcome::new(v, format!("paused {}\n", id.trim())))
        }
        SubscriptionCommand::Resume { id } => {
            let v = admin.set_paused(id.trim(), false).await.map_err(failure)?;
            Ok(Outcome::new(v, format!("resumed {}\n", id.trim())))
        }
        SubscriptionCommand::Delete { id } => {
            admin.delete(id.trim()).await.map_err(failure)?;
            Ok(Outcome::new(json!({ "deleted": id.trim() }), format!("deleted {}\n", id.trim())))
        }
    }
}
