//! `forcelink serve` as a child process of a test: started in a throwaway home, ready when its
//! summary says so (bounded wait), its API called over HTTP, killed with SIGKILL when a test
//! needs a crash (and on drop, so no broker outlives its test).

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use crate::home::Home;

/// Longest wait for a broker to say `ready`, and for any one condition a test polls for.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `forcelink serve`.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    /// Its public URL without the trailing slash (the page line of its summary).
    pub base: String,
    /// The socket it listens on.
    pub listen: SocketAddr,
    /// What it wrote to stderr so far (its log), for failure messages.
    log: Arc<Mutex<String>>,
}

fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in\n{text}"))
}

impl Broker {
    /// `forcelink serve --bind 127.0.0.1:0 EXTRA…` in `home`, once it is ready.
    pub async fn start(home: &Home, extra: &[&str]) -> Broker {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = home.spawn(&args);
        // Drain stderr all along: a full pipe would stall the broker.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let stdout = child.stdout.as_mut().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut summary = String::new();
        let ready = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if line == "ready" {
                    return true;
                }
                summary.push_str(&line);
                summary.push('\n');
            }
            false
        })
        .await;
        assert!(matches!(ready, Ok(true)), "serve never became ready:\n{summary}\n--- stderr\n{}", log.lock().unwrap());
        let base = field(&summary, "page").trim_end_matches('/').to_owned();
        let listen = field(&summary, "listening on").parse().unwrap();
        Broker { child, base, listen, log }
    }

    /// The URL of this replica itself (not the public URL, which may be a proxy's).
    pub fn direct(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL (tokio's `kill` sends it on Unix): no shutdown code runs, as in a crash.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL the broker");
    }
}

/// One API call with an API key; the status and the JSON body (`Null` when not JSON).
pub async fn api(base: &str, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls `check` every 50 ms until it gives a value, failing with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new admin API key (every connection, every scope), made with `forcelink apikey create`.
pub async fn admin_key(home: &Home) -> String {
    let created = home.json(&["apikey", "create", "--name", "admin", "--connections", "*", "--scopes", "*"]).await;
    created["key"].as_str().unwrap().to_owned()
}
