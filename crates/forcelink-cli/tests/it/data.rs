//! `forcelink playground --data FILE --generate SPEC`: generated records, kept between runs.

use serde_json::Value;

use crate::process::{Forcelink, RunDir, Until, post_token, read_info, text};

async fn count_accounts(info: &Value) -> u64 {
    let http = reqwest::Client::new();
    let instance_url = text(info, "instance_url");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", text(&info["client"], "client_id")),
        ("client_secret", text(&info["client"], "client_secret")),
    ];
    let (status, token) = post_token(&http, &format!("{instance_url}/services/oauth2/token"), &form).await;
    assert_eq!(status, 200, "{token}");
    let url = format!("{instance_url}/services/data/v66.0/query?q=SELECT+COUNT()+FROM+Account");
    let body: Value = http
        .get(url)
        .bearer_auth(text(&token, "access_token"))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("query JSON");
    body["totalSize"].as_u64().unwrap_or_else(|| panic!("no totalSize in {body}"))
}

#[tokio::test]
async fn generated_records_are_kept_in_the_data_file() {
    let run = RunDir::new();
    let data = run.path("org.sqlite");
    let data_arg = data.to_str().expect("UTF-8 path");
    let mut pg =
        Forcelink::spawn(run.playground_args(&["--data", data_arg, "--generate", "Account=50"]), Until::Line("ready"));
    pg.ready();
    assert_eq!(count_accounts(&read_info(&run.info_file())).await, 50);
    pg.stop();
    assert!(data.is_file());

    // A second run on the same file finds them, and generates more on request.
    let mut pg =
        Forcelink::spawn(run.playground_args(&["--data", data_arg, "--generate", "Account=5"]), Until::Line("ready"));
    pg.ready();
    assert_eq!(count_accounts(&read_info(&run.info_file())).await, 55);
    pg.stop();
}

#[test]
fn a_bad_generate_spec_is_a_usage_error() {
    let run = RunDir::new();
    let exited =
        Forcelink::spawn(run.playground_args(&["--generate", "Account=lots"]), Until::Line("ready")).expect_exit();
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("Account=lots"), "{}", exited.stderr);
    let exited = Forcelink::spawn(run.playground_args(&["--generate", "Widget=3"]), Until::Line("ready")).expect_exit();
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(exited.stderr.contains("Widget"), "{}", exited.stderr);
}
