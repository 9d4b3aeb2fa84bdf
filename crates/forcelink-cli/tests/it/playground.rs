//! `forcelink playground`: start-up, the info file, the summary, `--json`, a first token.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::process::{Forcelink, RunDir, Until, post_token, read_info, text};

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().unwrap_or_else(|| panic!("not a JSON object: {value}")).keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[tokio::test]
async fn playground_writes_the_info_file_and_issues_a_client_credentials_token() {
    let run = RunDir::new();
    let mut pg = Forcelink::spawn(run.playground_args(&[]), Until::Line("ready"));
    let stdout = pg.ready();
    let info = read_info(&run.info_file());

    // Exactly this shape: scripts read it, so a renamed or extra key is a breaking change.
    assert_eq!(
        keys(&info),
        set(&["login_url", "instance_url", "control_url", "control_key", "client", "user", "jwt", "pubsub_endpoint"]),
        "{info:#}"
    );
    let pubsub = text(&info, "pubsub_endpoint");
    assert!(pubsub.starts_with("127.0.0.1:") && pubsub != "127.0.0.1:0", "{pubsub}");
    assert_eq!(keys(&info["client"]), set(&["client_id", "client_secret"]));
    assert_eq!(keys(&info["user"]), set(&["username", "password", "security_token"]));
    assert_eq!(keys(&info["jwt"]), set(&["private_key_path", "certificate_path"]));
    assert!(info.get("ca_path").is_none(), "no ca_path without --tls: {info:#}");

    let (login_url, instance_url) = (text(&info, "login_url"), text(&info, "instance_url"));
    assert_ne!(login_url, instance_url, "the login host and the My Domain host are separate");
    assert!(login_url.starts_with("http://127.0.0.1:"), "{login_url}");
    assert!(instance_url.starts_with("http://127.0.0.1:"), "{instance_url}");
    assert_eq!(text(&info, "control_url"), format!("{instance_url}/__playground"));
    assert!(!text(&info, "control_key").is_empty());

    let private_key = std::path::PathBuf::from(text(&info["jwt"], "private_key_path"));
    let certificate = std::path::PathBuf::from(text(&info["jwt"], "certificate_path"));
    assert!(private_key.is_file(), "{}", private_key.display());
    assert!(certificate.is_file(), "{}", certificate.display());
    assert!(private_key.starts_with(run.key_dir()), "keys go into --key-dir: {}", private_key.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private_key).expect("key metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is readable by its owner only");
    }

    // The human summary names what a user types next, and `ready` is its last line.
    let summary = stdout.join("\n");
    assert!(summary.contains(login_url), "{summary}");
    assert!(summary.contains(text(&info["client"], "client_id")), "{summary}");
    assert_eq!(stdout.last().map(String::as_str), Some("ready"));

    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", text(&info["client"], "client_id")),
        ("client_secret", text(&info["client"], "client_secret")),
    ];
    let (status, token) = post_token(&http, &format!("{instance_url}/services/oauth2/token"), &form).await;
    assert_eq!(status, 200, "{token}");
    assert!(!text(&token, "access_token").is_empty());
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["instance_url"], instance_url);
    assert!(token.get("expires_in").is_none(), "Salesforce sends no expires_in: {token}");

    // Client credentials belong to the My Domain host, as on Salesforce.
    let (status, refused) = post_token(&http, &format!("{login_url}/services/oauth2/token"), &form).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");

    // The control key from the info file opens the control API.
    let stats = http
        .get(format!("{}/stats", text(&info, "control_url")))
        .bearer_auth(text(&info, "control_key"))
        .send()
        .await
        .expect("GET stats");
    assert_eq!(stats.status(), 200);
    let stats: Value = stats.json().await.expect("stats JSON");
    assert_eq!(stats["tokens_issued"]["by_grant"]["client_credentials"], 1, "{stats:#}");

    pg.stop();
}

#[test]
fn json_flag_prints_the_info_document_on_stdout() {
    let run = RunDir::new();
    let mut pg = Forcelink::spawn(run.playground_args(&["--json"]), Until::JsonDocument);
    let printed: Value = serde_json::from_str(&pg.ready().join("\n")).expect("stdout is JSON");
    assert_eq!(printed, read_info(&run.info_file()), "--json prints what --info-file writes");
    assert!(printed.get("ca_path").is_none());

    // Nothing but the document: no human summary, no `ready` line after it.
    let rest = pg.stop();
    assert!(rest.iter().all(|l| l.trim().is_empty()), "unexpected output after the JSON: {rest:?}");
}
