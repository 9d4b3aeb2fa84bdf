//! A plain Rust client for `bench/query-pages.sh`: signs in with client credentials, then
//! follows `nextRecordsUrl` through every page of a query and fully parses each page, once into
//! `serde_json::Value` and once into typed structs with serde. Prints two markdown rows per
//! mode: fetch + parse end to end, and the parsing alone (the rate a client could consume pages
//! at if the server answered instantly).
//!
//! ```sh
//! cargo run --release -p forcelink-playground --example parse_pages -- INFO_FILE RECORDS BATCH
//! ```
//!
//! No forcelink client crate is used: reqwest (uncompressed, one keep-alive connection) and
//! serde_json only.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

const SOQL: &str = "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[allow(dead_code)] // parsed to be honest about the work, not read
    total_size: u64,
    done: bool,
    next_records_url: Option<String>,
    records: Vec<Account>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // every field is parsed; the benchmark reads none of them
struct Attributes {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // every field is parsed; the benchmark reads none of them
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Value,
    Typed,
}

struct Run {
    pages: u64,
    records: u64,
    bytes: u64,
    total: Duration,
    parsing: Duration,
}

type Error = Box<dyn std::error::Error>;

// A benchmark measures elapsed time; there is no clock to inject here.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

async fn run(http: &reqwest::Client, instance: &str, token: &str, batch: u32, mode: Mode) -> Result<Run, Error> {
    let first = reqwest::Url::parse_with_params(&format!("{instance}/services/data/v66.0/query"), &[("q", SOQL)])?;
    let mut url = Some(first.to_string());
    let (mut pages, mut records, mut bytes, mut parsing) = (0, 0, 0, Duration::ZERO);
    let start = now();
    while let Some(u) = url.take() {
        let resp =
            http.get(&u).bearer_auth(token).header("Sforce-Query-Options", format!("batchSize={batch}")).send().await?;
        if !resp.status().is_success() {
            return Err(format!("{u}: HTTP {}", resp.status()).into());
        }
        let body = resp.bytes().await?;
        bytes += body.len() as u64;
        pages += 1;
        let t = now();
        let next = match mode {
            Mode::Value => {
                let page: Value = serde_json::from_slice(&body)?;
                records += page["records"].as_array().map_or(0, Vec::len) as u64;
                page.get("nextRecordsUrl").and_then(Value::as_str).map(str::to_owned)
            }
            Mode::Typed => {
                let page: Page = serde_json::from_slice(&body)?;
                records += page.records.len() as u64;
                if page.done { None } else { page.next_records_url }
            }
        };
        parsing += t.elapsed();
        url = next.map(|n| format!("{instance}{n}"));
    }
    Ok(Run { pages, records, bytes, total: start.elapsed(), parsing })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, info_file, expected, batch] = args.as_slice() else {
        return Err("usage: parse_pages INFO_FILE RECORDS BATCH".into());
    };
    let expected: u64 = expected.parse()?;
    let batch: u32 = batch.parse()?;
    let info: Value = serde_json::from_slice(&std::fs::read(info_file)?)?;
    let instance = info["instance_url"].as_str().ok_or("no instance_url")?.to_owned();
    let http = reqwest::Client::builder().no_gzip().tcp_nodelay(true).build()?;
    let token: Value = http
        .post(format!("{instance}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", info["client"]["client_id"].as_str().unwrap_or_default()),
            ("client_secret", info["client"]["client_secret"].as_str().unwrap_or_default()),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().ok_or("no access_token")?.to_owned();

    for (mode, label) in [(Mode::Value, "serde_json::Value"), (Mode::Typed, "typed struct")] {
        let r = run(&http, &instance, &token, batch, mode).await?;
        if r.records != expected {
            return Err(format!("{label}: saw {} records, expected {expected}", r.records).into());
        }
        let mb = r.bytes as f64 / 1e6;
        for (what, d) in [("Rust client parses JSON", r.total), ("parsing alone", r.parsing)] {
            let secs = d.as_secs_f64();
            println!(
                "| {what} ({label}) | {} | {} | {secs:.2} | {:.0} | {:.0} | {:.1} | {:.1} |",
                r.pages,
                r.records / r.pages.max(1),
                r.pages as f64 / secs,
                r.records as f64 / secs,
                mb / secs,
                mb / secs,
            );
        }
    }
    Ok(())
}
