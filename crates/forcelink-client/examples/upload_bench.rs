//! The client side of `bench/upload.sh`: uploads one file as a ContentVersion with
//! `upload_document_file` (multipart, read from the file while it is sent) and prints one JSON
//! line with the bytes, the time, MiB/s, the outcome and this process's peak RSS (`VmHWM`).
//!
//! ```sh
//! cargo run --release -p forcelink-client --example upload_bench -- INFO_FILE FILE
//! cargo run --release -p forcelink-client --example upload_bench -- --token TOKEN INSTANCE_URL FILE
//! ```
//!
//! With an info file it signs in to a playground (client credentials); with `--token` it sends
//! to any loopback server with that bearer token (the script's discarding receiver).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Instant;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::secret::{AccessToken, ClientSecret};
use forcelink_auth::{AppCredentials, Endpoints, SystemClock, TokenSource, Transport, UrlPolicy};
use forcelink_client::actions::UploadFile;
use forcelink_client::{ApiVersion, Client};
use serde_json::Value;

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

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let (instance, token, file) = match args.as_slice() {
        [_, flag, token, instance, file] if flag == "--token" => {
            (instance.clone(), AccessToken::new(token.clone()), file.clone())
        }
        [_, info, file] => {
            let info: Value = serde_json::from_str(&std::fs::read_to_string(info)?)?;
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
            (instance, set.access_token, file.clone())
        }
        _ => return Err("usage: upload_bench INFO_FILE FILE | upload_bench --token TOKEN INSTANCE_URL FILE".into()),
    };
    let policy = UrlPolicy::new().allow_any_loopback();
    let provider = Arc::new(StaticToken::new(&policy, &instance, token)?);
    let client = Client::builder(provider).url_policy(policy).api_version(ApiVersion::new("64.0")?).build()?;
    let bytes = std::fs::metadata(&file)?.len();
    let start = now();
    let outcome = client.actions().upload_document_file(UploadFile::new(&file)?).await;
    let secs = start.elapsed().as_secs_f64();
    let outcome = match outcome {
        Ok(up) => serde_json::json!({"ok": true, "transfer": up.transfer, "content_version_id": up.content_version_id}),
        Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
    };
    println!(
        "{}",
        serde_json::json!({"bytes": bytes, "seconds": secs, "mib_per_s": bytes as f64 / 1048576.0 / secs,
            "outcome": outcome, "peak_rss_kib": peak_rss_kib()})
    );
    Ok(())
}
