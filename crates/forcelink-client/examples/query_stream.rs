//! The client side of `bench/query-stream.sh`: streams a query from a playground with
//! forcelink-client, or fetches the same pages raw (no JSON parsing), and prints one JSON line
//! with the record count, the time, records/s and this process's peak RSS (`VmHWM`).
//!
//! ```sh
//! cargo run --release -p forcelink-client --example query_stream -- INFO_FILE MODE LIMIT BATCH
//! ```
//!
//! MODE: `raw` (reqwest, follows nextRecordsUrl found in the first bytes of each page, counts
//! records by their `"attributes"` key), `typed` (forcelink `stream_as` into a struct), `value`
//! (forcelink `stream` of `serde_json::Value`). LIMIT: `all` or a record count. Both sides fetch
//! uncompressed (gzip only costs CPU on loopback) over one keep-alive connection.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Instant;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::{AppCredentials, Endpoints, SystemClock, TokenSource, Transport, UrlPolicy};
use forcelink_client::{ApiVersion, Client};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

const SOQL: &str = "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account";

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed to be honest about the work, not read
struct Attributes {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Account {
    #[serde(rename = "attributes")]
    attributes: Attributes,
    id: String,
    name: String,
    industry: Option<String>,
    annual_revenue: Option<f64>,
    billing_city: Option<String>,
    created_date: String,
}

type Error = Box<dyn std::error::Error>;

// A benchmark measures elapsed time; there is no clock to inject here.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn http() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder().gzip(false).redirect(reqwest::redirect::Policy::none()).build()?)
}

async fn raw(instance: &str, token: &str, soql: &str, batch: u32) -> Result<u64, Error> {
    let http = http()?;
    let first = reqwest::Url::parse_with_params(&format!("{instance}/services/data/v64.0/query"), &[("q", soql)])?;
    let mut url = Some(first.to_string());
    let mut records = 0u64;
    let needle = b"\"attributes\"";
    while let Some(u) = url.take() {
        let resp =
            http.get(&u).bearer_auth(token).header("Sforce-Query-Options", format!("batchSize={batch}")).send().await?;
        if !resp.status().is_success() {
            return Err(format!("{u}: HTTP {}", resp.status()).into());
        }
        let body = resp.bytes().await?;
        records += body.windows(needle.len()).filter(|w| w == needle).count() as u64;
        let head = &body[..body.len().min(400)];
        let key = b"\"nextRecordsUrl\":\"";
        if let Some(i) = head.windows(key.len()).position(|w| w == key) {
            let rest = &head[i + key.len()..];
            let end = rest.iter().position(|&b| b == b'"').ok_or("unterminated nextRecordsUrl")?;
            url = Some(format!("{instance}{}", std::str::from_utf8(&rest[..end])?));
        }
    }
    Ok(records)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, info, mode, limit, batch] = args.as_slice() else {
        return Err("usage: query_stream INFO_FILE raw|typed|value all|N BATCH".into());
    };
    let info: Value = serde_json::from_str(&std::fs::read_to_string(info)?)?;
    let instance = info["instance_url"].as_str().ok_or("no instance_url")?.to_owned();
    let batch: u32 = batch.parse()?;
    let soql = if limit == "all" { SOQL.to_owned() } else { format!("{SOQL} LIMIT {limit}") };

    let transport = Transport::new(
        forcelink_auth::wire::default_http_client()?,
        Arc::new(SystemClock),
        UrlPolicy::new().allow_any_loopback(),
    );
    let app = AppCredentials::new(
        info["client"]["client_id"].as_str().ok_or("no client_id")?,
        Some(ClientSecret::new(info["client"]["client_secret"].as_str().ok_or("no client_secret")?)),
    );
    let source = ClientCredentials::new(transport, Endpoints::salesforce(&instance.parse()?), app)?;
    let set = source.fetch(None).await?;

    let start = now();
    let records = match mode.as_str() {
        "raw" => raw(&instance, set.access_token.secret(), &soql, batch).await?,
        "typed" | "value" => {
            let provider = Arc::new(StaticToken::new(
                &UrlPolicy::new().allow_any_loopback(),
                &instance,
                set.access_token.clone(),
            )?);
            let client = Client::builder(provider)
                .url_policy(UrlPolicy::new().allow_any_loopback())
                .http_client(http()?)
                .api_version(ApiVersion::new("64.0")?)
                .build()?;
            let mut n = 0u64;
            if mode == "typed" {
                let mut s = client.query(soql).batch_size(batch).stream_as::<Account>();
                while let Some(r) = s.next().await {
                    r?;
                    n += 1;
                }
            } else {
                let mut s = client.query(soql).batch_size(batch).stream();
                while let Some(r) = s.next().await {
                    r?;
                    n += 1;
                }
            }
            n
        }
        other => return Err(format!("unknown mode {other}").into()),
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"mode": mode, "records": records, "seconds": secs,
            "records_per_s": records as f64 / secs, "peak_rss_kib": peak_rss_kib()})
    );
    Ok(())
}
