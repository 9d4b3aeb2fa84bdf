//! Real third-party clients sign in with SOAP `login()` (username, password + security token,
//! no connected app) and run a query: simple-salesforce (PyPI) and jsforce (npm), installed into
//! `<target>/peers` by `scripts/playground-peers-setup`. A failed install fails the test.
//!
//! simple-salesforce only speaks HTTPS to `https://{domain}.salesforce.com`, so the playground
//! runs with `--tls` and the Python session routes `login.salesforce.com` to the login host; the
//! instance host then comes from the login answer's `serverUrl`, as on Salesforce.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `<target>/peers`: next to the test binary (`<target>/debug/deps/it-…`).
fn peers_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().join("peers")
}

/// Installs (or checks) both clients; answers the Node binary to run jsforce with.
fn install_peers() -> PathBuf {
    let dir = peers_dir();
    let out = Command::new(repo_root().join("scripts/playground-peers-setup")).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/playground-peers-setup failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let node = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned();
    assert!(Path::new(&node).exists(), "no Node binary at {node:?}");
    PathBuf::from(node)
}

fn run(mut cmd: Command) -> Value {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const PYTHON: &str = r#"
import json, os, sys, requests
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed
login = os.environ["PG_LOGIN_URL"]
class Routed(requests.Session):
    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://login.salesforce.com", login), *args, **kwargs)
session = Routed()
session.verify = os.environ["PG_CA"]
sf = Salesforce(username=os.environ["PG_USER"], password=os.environ["PG_PASSWORD"],
                security_token=os.environ["PG_TOKEN"], session=session, version="59.0")
result = sf.query("SELECT Id, Username FROM User WHERE Username = '%s'" % os.environ["PG_USER"])
try:
    Salesforce(username=os.environ["PG_USER"], password="wrong", security_token="", session=session)
    failure = None
except SalesforceAuthenticationFailed as e:
    failure = e.code
print(json.dumps({"instance": sf.sf_instance, "totalSize": result["totalSize"],
                  "username": result["records"][0]["Username"], "failure": failure}))
"#;

const NODE: &str = r#"
const jsforce = require("jsforce");
(async () => {
  const conn = new jsforce.Connection({ loginUrl: process.env.PG_LOGIN_URL, version: "59.0" });
  const info = await conn.login(process.env.PG_USER, process.env.PG_PASSWORD + process.env.PG_TOKEN);
  const result = await conn.query(`SELECT Id, Username FROM User WHERE Username = '${process.env.PG_USER}'`);
  await conn.logout();
  let failure = null;
  try { await new jsforce.Connection({ loginUrl: process.env.PG_LOGIN_URL, version: "59.0" }).login(process.env.PG_USER, "wrong"); }
  catch (e) { failure = e.message; }
  console.log(JSON.stringify({ userId: info.id, orgId: info.organizationId, totalSize: result.totalSize,
    username: result.records[0].Username, instanceUrl: conn.instanceUrl || null, failure }));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test]
async fn simple_salesforce_and_jsforce_sign_in_with_soap_and_query() {
    let node = install_peers();
    let pg = spawn_playground_with(|c| c.tls = true).await;
    let ca = pg.info.ca_path.clone().expect("ca_path with TLS");
    let user = pg.info.user.clone();
    let env = |cmd: &mut Command| {
        cmd.env("PG_LOGIN_URL", pg.login_url())
            .env("PG_CA", &ca)
            .env("PG_USER", &user.username)
            .env("PG_PASSWORD", &user.password)
            .env("PG_TOKEN", &user.security_token);
    };

    let mut py = Command::new("python3");
    // requests prefers REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment to the session's.
    py.arg("-c").arg(PYTHON).env("PYTHONPATH", peers_dir().join("python")).env("REQUESTS_CA_BUNDLE", &ca);
    env(&mut py);
    let got = tokio::task::spawn_blocking(move || run(py)).await.unwrap();
    assert_eq!(got["totalSize"], 1, "{got}");
    assert_eq!(got["username"], user.username.as_str());
    assert_eq!(got["instance"], pg.instance_url().trim_start_matches("https://"));
    assert_eq!(got["failure"], "INVALID_LOGIN");

    let mut js = Command::new(&node);
    js.arg("-e").arg(NODE).current_dir(peers_dir().join("node")).env("NODE_EXTRA_CA_CERTS", &ca);
    env(&mut js);
    let got = tokio::task::spawn_blocking(move || run(js)).await.unwrap();
    assert_eq!(got["totalSize"], 1, "{got}");
    assert_eq!(got["username"], user.username.as_str());
    assert_eq!(got["userId"], "0058d0000000001AAA");
    assert_eq!(got["orgId"], "00D8d0000000001EAA");
    assert_eq!(got["failure"], "INVALID_LOGIN: Invalid username, password, security token; or user locked out.");
    // Both logins (and jsforce's logout) went through the SOAP endpoint, not the token endpoint.
    let stats = pg.control.stats().await;
    assert_eq!(stats["tokens_issued"]["by_grant"]["soap_login"], 2, "{stats}");
    assert_eq!(stats["token_requests"]["total"], 0, "{stats}");
}
