//! `forcelink playground --seed FILE`: a custom org works; a bad or missing file is a
//! configuration error (exit code 2) that says what is wrong, and nothing starts.

use crate::process::{Forcelink, RunDir, Until, post_token, read_info, text};

const USERNAME: &str = "tess.tester@cli.forcelink.test";
const PASSWORD: &str = "Tester1!";
const SECURITY_TOKEN: &str = "CLITESTTOKEN0001";
const CLIENT_ID: &str = "3MVG9cli.forcelink.test.app";
const CLIENT_SECRET: &str = "CLITESTSECRET000000000000000000000000000000000000000001";

/// One user and one app that allows only the password grant; no `certificate`.
fn custom_seed() -> String {
    format!(
        r#"[org]
name = "CLI Test Org"

[[users]]
username = "{USERNAME}"
password = "{PASSWORD}"
security_token = "{SECURITY_TOKEN}"
profile = "Standard User"
first_name = "Tess"
last_name = "Tester"
email = "{USERNAME}"

[[connected_apps]]
name = "CLI Test App"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
flows = ["password"]
"#
    )
}

#[tokio::test]
async fn custom_seed_user_gets_a_password_grant_token() {
    let run = RunDir::new();
    let seed = run.write("seed.toml", &custom_seed());
    let seed = seed.to_str().expect("UTF-8 temp path");
    let mut pg = Forcelink::spawn(run.playground_args(&["--seed", seed]), Until::Line("ready"));
    pg.ready();

    // The first user and the first app of the seed are the ones the info file names.
    let info = read_info(&run.info_file());
    assert_eq!(info["user"]["username"], USERNAME);
    assert_eq!(info["user"]["password"], PASSWORD);
    assert_eq!(info["user"]["security_token"], SECURITY_TOKEN);
    assert_eq!(info["client"]["client_id"], CLIENT_ID);
    assert_eq!(info["client"]["client_secret"], CLIENT_SECRET);

    let http = reqwest::Client::new();
    let login_token_url = format!("{}/services/oauth2/token", text(&info, "login_url"));
    let password_and_token = format!("{PASSWORD}{SECURITY_TOKEN}");
    let (status, token) = post_token(
        &http,
        &login_token_url,
        &[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("username", USERNAME),
            ("password", &password_and_token),
        ],
    )
    .await;
    assert_eq!(status, 200, "{token}");
    assert!(!text(&token, "access_token").is_empty());
    assert_eq!(token["instance_url"], info["instance_url"]);
    assert!(token.get("refresh_token").is_none(), "the password grant never returns a refresh token");
    assert!(token.get("expires_in").is_none());

    // `flows` is honoured: the app did not enable client credentials.
    let instance_token_url = format!("{}/services/oauth2/token", text(&info, "instance_url"));
    let (status, refused) = post_token(
        &http,
        &instance_token_url,
        &[("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)],
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "unsupported_grant_type");

    pg.stop();
}

#[test]
fn seed_with_an_unknown_key_exits_2_and_names_the_key() {
    let run = RunDir::new();
    let toml = custom_seed().replace("flows = [\"password\"]", "flows = [\"password\"]\nrequire_pcke = true");
    let seed = run.write("typo.toml", &toml);
    let pg = Forcelink::spawn(run.playground_args(&["--seed", seed.to_str().expect("UTF-8")]), Until::Line("ready"));
    let exited = pg.expect_exit();

    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains("require_pcke"), "{}", exited.stderr);
    assert!(exited.stderr.contains(&seed.display().to_string()), "names the file: {}", exited.stderr);
    assert!(!exited.stdout.contains("ready"), "{}", exited.stdout);
    assert!(!run.info_file().exists(), "no info file for a playground that did not start");
}

#[test]
fn seed_that_fails_validation_exits_2_and_names_the_entry() {
    let run = RunDir::new();
    let toml = custom_seed()
        .replace("flows = [\"password\"]", "flows = [\"client_credentials\"]\nrun_as = \"ghost@cli.forcelink.test\"");
    let seed = run.write("ghost.toml", &toml);
    let pg = Forcelink::spawn(run.playground_args(&["--seed", seed.to_str().expect("UTF-8")]), Until::Line("ready"));
    let exited = pg.expect_exit();

    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains("ghost@cli.forcelink.test"), "{}", exited.stderr);
    assert!(exited.stderr.contains("CLI Test App"), "{}", exited.stderr);
}

#[test]
fn missing_seed_file_exits_2_and_names_the_path() {
    let run = RunDir::new();
    let missing = run.path("no-such-seed.toml");
    let pg = Forcelink::spawn(run.playground_args(&["--seed", missing.to_str().expect("UTF-8")]), Until::Line("ready"));
    let exited = pg.expect_exit();

    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains(&missing.display().to_string()), "{}", exited.stderr);
    assert!(!run.info_file().exists());
}
