//! Runs `forcelink` commands in a throwaway home directory (its own config, store and master
//! key), against an in-process playground.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use forcelink_test_support::PlaygroundHandle;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest a one-shot command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A finished command.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The `--json` document on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
}

#[derive(Debug)]
pub struct Home {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl Home {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temporary home"), env: HashMap::new() }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.insert(k.to_owned(), v.to_owned());
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_forcelink"));
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("USER", "tester")
            // The playgrounds this test started, and nothing else, may receive credentials.
            .env("FORCELINK_ALLOW_ORIGINS", forcelink_test_support::started_origins().join(","))
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs a command to its end (bounded by [`COMMAND_TIMEOUT`]).
    pub async fn run(&self, args: &[&str]) -> Ran {
        let out = tokio::time::timeout(COMMAND_TIMEOUT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("forcelink {args:?} did not finish"))
            .expect("run forcelink");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let ran = self.run(&all).await.ok();
        let doc = ran.json();
        assert_eq!(doc["status"], 0, "{doc}");
        doc["result"].clone()
    }

    /// Starts a long command (interactive login); read its stderr with [`read_until`].
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("start forcelink")
    }
}

/// Reads the child's stderr until a line satisfies `pick`; returns what `pick` extracted.
pub async fn read_until<T>(child: &mut Child, mut pick: impl FnMut(&str) -> Option<T>) -> T {
    let stderr = child.stderr.as_mut().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(COMMAND_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(v) = pick(&line) {
                return Some(v);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        _ => panic!("the expected line never came; stderr so far:\n{seen}"),
    }
}

/// Waits for a spawned command to finish and collects its stdout.
pub async fn finish(child: Child) -> Ran {
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("the command did not finish")
        .expect("wait for forcelink");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The playground's default app and user, as flags and environment for a home.
/// A home where the connection `at` signed in with `login access-token` (the token read from
/// the environment), and that token: a client-credentials token of the playground's app.
pub async fn access_token_home(org: &Org) -> (Home, String) {
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", org.instance_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &org.client_id),
            ("client_secret", &org.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    let mut home = Home::new();
    home.set_env("TOKEN", &access);
    home.json(&["login", "access-token", "at", "--instance-url", &org.instance_url, "--access-token", "env:TOKEN"])
        .await;
    (home, access)
}

pub struct Org {
    pub login_url: String,
    pub instance_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    pub private_key_path: String,
}

impl Org {
    pub fn of(pg: &PlaygroundHandle) -> Self {
        let i = &pg.info;
        Self {
            login_url: i.login_url.clone(),
            instance_url: i.instance_url.clone(),
            client_id: i.client.client_id.clone(),
            client_secret: i.client.client_secret.clone(),
            username: i.user.username.clone(),
            password: i.user.password.clone(),
            private_key_path: i.jwt.private_key_path.clone(),
        }
    }
}

use forcelink_test_support::browser::{self, Decision};

/// What a person does in the browser: opens the authorize URL, signs in, allows access; the
/// final redirect is then delivered to the CLI's loopback listener. Returns the listener's
/// answer status.
pub async fn browser_sign_in(pg: &PlaygroundHandle, authorize_url: &str, username: &str, password: &str) -> u16 {
    let location = browser::sign_in(pg, authorize_url, username, password, Decision::Allow).await;
    browser::no_redirect_client().get(location).send().await.unwrap().status().as_u16()
}

/// Approves a device code on the playground's verification page.
pub async fn approve_device(pg: &PlaygroundHandle, user_code: &str, username: &str, password: &str) {
    browser::approve_device(pg, user_code, username, password, Decision::Allow).await;
}

/// The playground's HTTP status for an API call with `token`.
pub async fn api_status(instance_url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{instance_url}/services/data/v64.0/limits"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `forcelink login client-credentials NAME` with the playground's app, its secret in `env:CS`
/// (set `CS` in the home first); returns the `--json` result.
pub async fn login_client_credentials(home: &Home, org: &Org, name: &str) -> Value {
    home.json(&[
        "login",
        "client-credentials",
        name,
        "--login-url",
        &org.instance_url,
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:CS",
    ])
    .await
}

/// The connection name [`signed_in`] uses.
pub const NAME: &str = "org";

/// A home signed in to `pg` as connection `org` (the default connection).
pub async fn signed_in(pg: &PlaygroundHandle) -> Home {
    let org = Org::of(pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    home.set_env("FORCELINK_CONNECTION", NAME);
    login_client_credentials(&home, &org, NAME).await;
    home
}
