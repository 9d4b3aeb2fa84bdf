//! The client side of `bench/events.sh`: the Pub/Sub API against a playground, one measurement
//! per process, printing one JSON line (counts, seconds, rates, this process's memory).
//!
//! ```sh
//! cargo run --release -p forcelink-client --example events_bench -- INFO_FILE publish N
//! cargo run --release -p forcelink-client --example events_bench -- INFO_FILE subscribe N MARK
//! cargo run --release -p forcelink-client --example events_bench -- INFO_FILE latency WRITES
//! ```
//!
//! - `publish`: N platform events to `/event/Forcelink_Notice__e` over one PublishStream, in
//!   batches of 100 (a few batches in flight), each event's `Message__c` its index; checks every
//!   outcome succeeded. Prepares the `subscribe` runs (and measures publishing, for reference).
//! - `subscribe`: from EARLIEST on that topic, N events decoded (Avro → JSON), each checked to
//!   be the next index; prints events/s, the resident memory (`VmRSS`) after MARK events and
//!   after N, and the peak (`VmHWM`).
//! - `latency`: WRITES Account creations through the REST API, one at a time, each waiting for
//!   its change event on `/data/AccountChangeEvent`; the subscriber runs in its own task and
//!   stamps each event when it arrives. Prints p50/p99/max from the start of the write to the
//!   event, and the REST call's own p50.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::{AppCredentials, Endpoints, SystemClock, TokenProvider, TokenSource, Transport, UrlPolicy};
use forcelink_client::pubsub::{PubSubClient, PublishEvent, ReplayFrom};
use forcelink_client::{ApiVersion, Client};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

const NOTICE: &str = "/event/Forcelink_Notice__e";
const ACCOUNT_EVENTS: &str = "/data/AccountChangeEvent";
/// Events per publish batch, and batches sent before waiting for the first outcome.
const BATCH: u64 = 100;
const IN_FLIGHT: u64 = 8;

type Error = Box<dyn std::error::Error>;

// A benchmark measures elapsed time; there is no clock to inject here.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

struct Org {
    pubsub_endpoint: String,
    provider: Arc<dyn TokenProvider>,
}

fn policy() -> UrlPolicy {
    UrlPolicy::new().allow_any_loopback()
}

async fn org(info_path: &str) -> Result<Org, Error> {
    let text = std::fs::read_to_string(info_path).map_err(|e| format!("cannot read {info_path}: {e}"))?;
    let info: Value = serde_json::from_str(&text).map_err(|e| format!("{info_path} is not an info file: {e}"))?;
    let instance = info["instance_url"].as_str().ok_or("no instance_url")?.to_owned();
    let pubsub_endpoint = info["pubsub_endpoint"].as_str().ok_or("no pubsub_endpoint")?.to_owned();
    let transport = Transport::new(forcelink_auth::wire::default_http_client()?, Arc::new(SystemClock), policy());
    let app = AppCredentials::new(
        info["client"]["client_id"].as_str().ok_or("no client_id")?,
        Some(ClientSecret::new(info["client"]["client_secret"].as_str().ok_or("no client_secret")?)),
    );
    let source = ClientCredentials::new(transport, Endpoints::salesforce(&instance.parse()?), app)?;
    let set = source.fetch(None).await?;
    let provider = Arc::new(StaticToken::new(&policy(), &instance, set.access_token.clone())?);
    Ok(Org { pubsub_endpoint, provider })
}

fn pubsub(org: &Org) -> Result<PubSubClient, Error> {
    Ok(PubSubClient::builder(org.provider.clone())
        .url_policy(policy())
        .endpoint(org.pubsub_endpoint.clone())
        .build()?)
}

fn notice(i: u64) -> PublishEvent {
    let mut data = Map::new();
    data.insert("Message__c".into(), Value::String(format!("event {i}")));
    data.insert("Level__c".into(), json!(i % 5));
    PublishEvent { correlation_key: Some(format!("k{i}")), data }
}

async fn publish(org: &Org, n: u64) -> Result<Value, Error> {
    let ps = pubsub(org)?;
    let mut stream = ps.publish_stream(NOTICE).await?;
    let start = now();
    let (mut sent, mut answered, mut batches_out) = (0u64, 0u64, 0u64);
    while answered < n {
        while sent < n && batches_out < IN_FLIGHT {
            let end = (sent + BATCH).min(n);
            stream.send((sent..end).map(notice).collect()).await?;
            sent = end;
            batches_out += 1;
        }
        let outcomes = stream.next().await.ok_or("the publish stream ended early")??;
        if let Some(bad) = outcomes.iter().find(|o| o.result.is_err()) {
            return Err(format!("event {} refused: {:?}", bad.correlation_key, bad.result).into());
        }
        answered += outcomes.len() as u64;
        batches_out -= 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({"mode": "publish", "events": n, "seconds": secs, "events_per_s": n as f64 / secs}))
}

async fn subscribe(org: &Org, n: u64, mark: u64) -> Result<Value, Error> {
    let ps = pubsub(org)?;
    let mut sub = ps.subscribe(NOTICE, ReplayFrom::Earliest);
    let start = now();
    let (mut seen, mut rss_at_mark) = (0u64, 0u64);
    let mut first_event_s = 0.0;
    while seen < n {
        let e = sub.next().await.ok_or("the subscription ended")??;
        // The decoded payload is read, so decoding is part of the work measured.
        let expected = format!("event {seen}");
        if e.payload.get("Message__c").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(format!("event {seen}: got {:?}", e.payload.get("Message__c")).into());
        }
        seen += 1;
        if seen == 1 {
            first_event_s = start.elapsed().as_secs_f64();
        }
        if seen == mark {
            rss_at_mark = status_kib("VmRSS:");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = sub.stats();
    Ok(json!({"mode": "subscribe", "events": seen, "seconds": secs, "events_per_s": seen as f64 / secs,
        "first_event_s": first_event_s, "mark": mark, "rss_at_mark_kib": rss_at_mark,
        "rss_end_kib": status_kib("VmRSS:"), "peak_rss_kib": status_kib("VmHWM:"),
        "subscribes": stats.subscribes, "max_outstanding": stats.max_outstanding}))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn latency(org: &Org, writes: usize) -> Result<Value, Error> {
    let rest =
        Client::builder(org.provider.clone()).url_policy(policy()).api_version(ApiVersion::new("64.0")?).build()?;
    let accounts = rest.sobject("Account")?;
    let ps = pubsub(org)?;
    // EARLIEST on a topic nothing else writes to here: no write can be missed while the
    // stream opens. Each event goes to the main task with the instant it arrived.
    let mut sub = ps.subscribe(ACCOUNT_EVENTS, ReplayFrom::Earliest);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(e) = sub.next().await {
            let arrived = now();
            let ids = match e {
                Ok(e) => e.header.map(|h| h.record_ids).unwrap_or_default(),
                Err(err) => return Err(err.to_string()),
            };
            if tx.send((ids, arrived)).is_err() {
                break;
            }
        }
        Ok(())
    });
    let (mut to_event, mut rest_call) = (Vec::with_capacity(writes), Vec::with_capacity(writes));
    // One unmeasured write first: connections and the schema cache warm up.
    for i in 0..=writes {
        let start = now();
        let id = accounts.create(&json!({"Name": format!("Latency {i}")})).send().await?.id.to_string();
        let written = now();
        let arrived = loop {
            let (ids, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .map_err(|_| format!("no change event for {id} within 30 s"))?
                .ok_or("the subscription ended")?;
            if ids.contains(&id) {
                break at;
            }
        };
        if i > 0 {
            to_event.push(arrived.duration_since(start).as_secs_f64() * 1000.0);
            rest_call.push(written.duration_since(start).as_secs_f64() * 1000.0);
        }
    }
    reader.abort();
    to_event.sort_by(f64::total_cmp);
    rest_call.sort_by(f64::total_cmp);
    Ok(json!({"mode": "latency", "writes": writes,
        "p50_ms": percentile(&to_event, 0.5), "p99_ms": percentile(&to_event, 0.99),
        "max_ms": to_event.last().copied().unwrap_or(0.0),
        "rest_p50_ms": percentile(&rest_call, 0.5)}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: events_bench INFO_FILE publish N | subscribe N MARK | latency WRITES";
    let (info, mode) = match args.as_slice() {
        [_, info, mode, ..] => (info, mode.as_str()),
        _ => return Err(usage.into()),
    };
    let number = |i: usize| -> Result<u64, Error> {
        let s = args.get(i).ok_or(usage)?;
        let n: u64 = s.parse().map_err(|_| format!("{s:?} is not a count"))?;
        if n == 0 {
            return Err(format!("{s} must be at least 1").into());
        }
        Ok(n)
    };
    enum Mode {
        Publish(u64),
        Subscribe(u64, u64),
        Latency(u64),
    }
    // Arguments are checked before anything is sent.
    let mode = match mode {
        "publish" => Mode::Publish(number(3)?),
        "subscribe" => Mode::Subscribe(number(3)?, number(4)?),
        "latency" => Mode::Latency(number(3)?),
        other => return Err(format!("unknown mode {other:?}; {usage}").into()),
    };
    let org = org(info).await?;
    let line = match mode {
        Mode::Publish(n) => publish(&org, n).await?,
        Mode::Subscribe(n, mark) => subscribe(&org, n, mark).await?,
        Mode::Latency(writes) => latency(&org, writes as usize).await?,
    };
    println!("{line}");
    Ok(())
}
