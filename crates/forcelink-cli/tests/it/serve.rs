//! `forcelink serve` (with and without `--playground`) and `forcelink apikey`, as processes.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::home::Home;

const WAIT: Duration = Duration::from_secs(60);

/// Reads the child's stdout until the `ready` line; returns everything before it.
async fn until_ready(child: &mut Child) -> String {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let ready = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line == "ready" {
                return true;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        false
    })
    .await;
    assert!(matches!(ready, Ok(true)), "serve never became ready:\n{seen}");
    seen
}

fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in\n{text}"))
}

/// SIGTERM, then the exit status and the rest of stdout.
async fn terminate(mut child: Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(killed.success());
    let mut rest = String::new();
    if let Some(mut out) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        tokio::time::timeout(WAIT, out.read_to_string(&mut rest)).await.expect("stdout closes").expect("read stdout");
    }
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits after SIGTERM").expect("wait");
    (status, rest)
}

#[tokio::test]
async fn serve_playground_gives_a_working_broker_in_one_command_and_stops_on_sigterm() {
    let home = Home::new();
    let mut child = home.spawn(&["serve", "--playground", "--bind", "127.0.0.1:0"]);
    let summary = until_ready(&mut child).await;
    let base = field(&summary, "page").trim_end_matches('/').to_owned();
    let key = field(&summary, "admin API key").to_owned();
    assert!(key.starts_with("flk_"), "{summary}");
    let http = reqwest::Client::new();
    let token: Value = forcelink_test_support::get_json(&format!("{base}/v1/connections/playground/token"), &key).await;
    assert_eq!(token["token_type"], "Bearer", "{token}");
    let query = http
        .get(format!(
            "{base}/v1/connections/playground/sf/services/data/v64.0/query?q=SELECT+Name+FROM+Account+LIMIT+3"
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    let records: Value = query.json().await.unwrap();
    assert_eq!(records["records"].as_array().map(Vec::len), Some(3), "generated data is there: {records}");
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (status, rest) = terminate(child).await;
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("broker stopped"), "{rest}");
}

#[tokio::test]
async fn apikey_create_prints_the_key_once_and_serve_accepts_it_until_revoked() {
    let home = Home::new();
    let created =
        home.json(&["apikey", "create", "--name", "ci", "--connections", "a,b", "--scopes", "token,proxy"]).await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("flk_{}_", created["id"].as_str().unwrap())));
    let doomed = home.json(&["apikey", "create", "--name", "old", "--connections", "*", "--scopes", "*"]).await;
    let listed = home.json(&["apikey", "list"]).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&key[20..]), "the secret is never listed");
    let bad = home.run(&["apikey", "create", "--name", "x", "--connections", "a", "--scopes", "tokens"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    home.json(&["apikey", "revoke", doomed["id"].as_str().unwrap()]).await;

    let mut child = home.spawn(&["serve", "--bind", "127.0.0.1:0"]);
    let summary = until_ready(&mut child).await;
    let base = field(&summary, "page").trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let status = |key: String, conn: &'static str| {
        let http = http.clone();
        let url = format!("{base}/v1/connections/{conn}/token");
        async move { http.get(url).bearer_auth(key).send().await.unwrap().status().as_u16() }
    };
    // Known key and allowed connection, which does not exist: 404; other connection: 403.
    assert_eq!(status(key.clone(), "a").await, 404);
    assert_eq!(status(key.clone(), "c").await, 403);
    assert_eq!(status(doomed["key"].as_str().unwrap().to_owned(), "a").await, 401);
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let (status, _) = terminate(child).await;
    assert!(status.success());
}

#[tokio::test]
async fn serve_playground_writes_a_private_info_file_whose_admin_key_manages_keys() {
    let home = Home::new();
    let info_path = home.path("info/broker.json");
    std::fs::create_dir_all(info_path.parent().unwrap()).unwrap();
    let mut child = home.spawn(&[
        "serve",
        "--playground",
        "--bind",
        "127.0.0.1:0",
        "--max-connections",
        "16",
        "--info-file",
        info_path.to_str().unwrap(),
    ]);
    until_ready(&mut child).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&info_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the info file holds keys");
    }
    let leftovers: Vec<_> = std::fs::read_dir(info_path.parent().unwrap()).unwrap().flatten().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left beside it: {leftovers:?}");
    let info: Value = serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap()).unwrap();
    let base = info["broker_url"].as_str().unwrap();
    let key = info["admin_key"].as_str().unwrap();
    for field in ["login_url", "instance_url", "control_url", "control_key"] {
        assert!(info["playground"][field].is_string(), "{field} in {info}");
    }
    let http = reqwest::Client::new();
    let keys = http.get(format!("{base}/v1/api-keys")).bearer_auth(key).send().await.unwrap();
    assert_eq!(keys.status(), 200);
    // The `playground` connection points at the embedded playground's Pub/Sub API.
    let conn: Value = forcelink_test_support::get_json(&format!("{base}/v1/connections/playground"), key).await;
    let endpoint = info["playground"]["pubsub_endpoint"].as_str().unwrap();
    assert_eq!(conn["settings"]["pubsub_endpoint"], endpoint, "{conn}");
    // The playground's control API answers with the control key from the same file.
    let control = http
        .get(format!("{}/stats", info["playground"]["control_url"].as_str().unwrap().trim_end_matches('/')))
        .bearer_auth(info["playground"]["control_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 200);
    let (status, _) = terminate(child).await;
    assert!(status.success());
}

#[tokio::test]
async fn serve_on_a_public_address_needs_a_public_url() {
    let home = Home::new();
    let ran = home.run(&["serve", "--bind", "0.0.0.0:0"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("--public-url"), "{ran:?}");
    let ran = home.run(&["serve", "--bind", "127.0.0.1:0", "--max-connections", "0"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
}

#[tokio::test]
async fn serve_refuses_a_health_interval_of_zero_or_nonsense_naming_the_flag() {
    let home = Home::new();
    for bad in ["0s", "0", "soon", "-5m", "300"] {
        let flag = format!("--health-interval={bad}");
        let ran = home.run(&["serve", "--bind", "127.0.0.1:0", &flag]).await;
        assert_eq!(ran.code, 2, "{bad}: {ran:?}");
        assert!(ran.stderr.contains("--health-interval"), "{bad}: {ran:?}");
        assert!(ran.stderr.contains("e.g. 30s") || ran.stderr.contains("shorter than 1s"), "{bad}: {ran:?}");
    }
    let mut child = home.spawn(&["serve", "--bind", "127.0.0.1:0", "--health-interval", "90s"]);
    let summary = until_ready(&mut child).await;
    assert_eq!(field(&summary, "checks"), "every 1m 30s (--health-interval)", "{summary}");
    let (status, _) = terminate(child).await;
    assert!(status.success());
}
