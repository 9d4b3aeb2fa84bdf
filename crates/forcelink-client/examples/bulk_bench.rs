//! The client side of `bench/bulk.sh`: Bulk API 2.0 ingest and export against a playground,
//! one operation per process, printing one JSON line with the record count, the time,
//! records/s and this process's peak RSS (`VmHWM`).
//!
//! ```sh
//! cargo run --release -p forcelink-client --example bulk_bench -- gen FILE ROWS
//! cargo run --release -p forcelink-client --example bulk_bench -- ingest INFO_FILE FILE
//! cargo run --release -p forcelink-client --example bulk_bench -- export INFO_FILE ROWS OUT_FILE
//! ```
//!
//! `gen` writes ROWS Account rows as CSV (not measured). `ingest` creates an insert job,
//! uploads FILE (16 MiB uploads), waits for the job and streams the successful and failed
//! results to a file; `export` runs a bulk query of ROWS Accounts and streams every page to
//! OUT_FILE. Files are read and written in chunks: memory must not depend on ROWS.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::{AppCredentials, Endpoints, SystemClock, TokenProvider, TokenSource, Transport, UrlPolicy};
use forcelink_client::bulk::{Bulk, IngestJob, JobKind, PollPolicy, Progress, ResultSet};
use forcelink_client::{ApiVersion, Client};
use serde_json::Value;

const SOQL: &str = "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account";
const INDUSTRIES: [&str; 5] = ["Energy", "Banking", "Retail", "Technology", "Agriculture"];
const CITIES: [&str; 4] = ["Paris", "Lyon", "Boston", "Osaka"];

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

fn generate(path: &str, rows: u64) -> Result<(), Error> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "Name,Industry,AnnualRevenue,BillingCity,Description")?;
    for i in 0..rows {
        let industry = INDUSTRIES[(i % 5) as usize];
        let city = CITIES[(i % 4) as usize];
        writeln!(out, "Bench Account {i},{industry},{},{city},\"bulk, row {i}\"", (i % 1000) * 1000)?;
    }
    out.flush()?;
    Ok(())
}

async fn bulk_for(info_path: &str) -> Result<Bulk, Error> {
    let info: Value = serde_json::from_str(&std::fs::read_to_string(info_path)?)?;
    let instance = info["instance_url"].as_str().ok_or("no instance_url")?.to_owned();
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
    let provider: Arc<dyn TokenProvider> =
        Arc::new(StaticToken::new(&UrlPolicy::new().allow_any_loopback(), &instance, set.access_token.clone())?);
    let client = Client::builder(provider.clone())
        .url_policy(UrlPolicy::new().allow_any_loopback())
        .api_version(ApiVersion::new("64.0")?)
        .build()?;
    let poll = PollPolicy { initial: Duration::from_millis(200), max: Duration::from_secs(2), ..PollPolicy::default() };
    Ok(Bulk::new(client, provider)?.poll(poll))
}

async fn out_file(path: &str) -> Result<tokio::io::BufWriter<tokio::fs::File>, Error> {
    Ok(tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::create(path).await?))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let mut quiet = |_: &Progress| {};
    let start = now();
    let line = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [_, "gen", path, rows] => {
            generate(path, rows.parse()?)?;
            return Ok(());
        }
        [_, "ingest", info, file] => {
            let bulk = bulk_for(info).await?;
            let input = tokio::io::BufReader::with_capacity(256 * 1024, tokio::fs::File::open(file).await?);
            let (closed, uploaded) = bulk.ingest_csv(&IngestJob::insert("Account"), input, &mut quiet).await?;
            let upload_s = start.elapsed().as_secs_f64();
            let done = bulk.wait(JobKind::Ingest, &closed.id, &mut quiet).await?;
            let processed_s = start.elapsed().as_secs_f64();
            let mut out = out_file(&format!("{file}.results")).await?;
            let ok = bulk.ingest_results(&closed.id, ResultSet::Successful, &mut out).await?;
            let failed = bulk.ingest_results(&closed.id, ResultSet::Failed, &mut out).await?;
            if ok != uploaded.records || failed != 0 || done.number_records_processed != Some(uploaded.records) {
                return Err(format!("uploaded {uploaded:?}, {ok} successful and {failed} failed results").into());
            }
            serde_json::json!({"mode": "ingest", "records": ok, "uploads": uploaded.uploads,
                "upload_s": upload_s, "processed_s": processed_s})
        }
        [_, "export", info, rows, path] => {
            let bulk = bulk_for(info).await?;
            let job = bulk.create_query(&format!("{SOQL} LIMIT {rows}"), false).await?;
            bulk.wait(JobKind::Query, &job.id, &mut quiet).await?;
            let mut out = out_file(path).await?;
            let n = bulk.query_results(&job.id, &mut out, &mut quiet).await?;
            if n != rows.parse::<u64>()? {
                return Err(format!("exported {n} records, expected {rows}").into());
            }
            serde_json::json!({"mode": "export", "records": n})
        }
        _ => return Err("usage: bulk_bench gen FILE ROWS | ingest INFO FILE | export INFO ROWS OUT".into()),
    };
    let secs = start.elapsed().as_secs_f64();
    let mut line = line;
    let records = line["records"].as_u64().unwrap_or(0);
    line["seconds"] = secs.into();
    line["records_per_s"] = (records as f64 / secs).into();
    line["peak_rss_kib"] = peak_rss_kib().into();
    println!("{line}");
    Ok(())
}
