//! Shared helpers: a clock both the playground and forcelink read, endpoints of a playground,
//! the login/consent pages driven without a browser, and a canned-response HTTP server.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use forcelink_auth::secret::{AccessToken, ClientSecret};
use forcelink_auth::{AppCredentials, Clock, Endpoints, Transport, UrlPolicy};
use forcelink_test_support::{PlaygroundHandle, spawn_playground_with};
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use url::Url;

pub const DEFAULT_CLIENT: &str = "3MVG9playground.forcelink.default.app";
pub const DEFAULT_SECRET: &str = "PLAYGROUNDSECRET0000000000000000000000000000000000000001";
pub const ROTATING_CLIENT: &str = "3MVG9playground.forcelink.rotating.app";
pub const ROTATING_SECRET: &str = "PLAYGROUNDSECRET0000000000000000000000000000000000000002";
pub const NO_RUN_AS_CLIENT: &str = "3MVG9playground.forcelink.norunas.app";
pub const NO_RUN_AS_SECRET: &str = "PLAYGROUNDSECRET0000000000000000000000000000000000000004";
pub const ADMIN: &str = "admin@playground.forcelink.dev";
pub const ADMIN_PASSWORD: &str = "Playground1!";
pub const ADMIN_TOKEN: &str = "PLAYGROUNDTOKEN0001";
pub const STANDARD_USER: &str = "sam.standard@playground.forcelink.dev";
pub const STANDARD_PASSWORD: &str = "Standard1!";

/// One clock for the playground and for forcelink: moving it moves both. `sleep` advances it at
/// once, or, when gated, reports the sleep and waits for the test to let it go on.
#[derive(Debug, Clone)]
pub struct TestClock {
    // Guards the shared current time.
    now: Arc<Mutex<SystemTime>>,
    gate: Option<mpsc::UnboundedSender<(Duration, oneshot::Sender<()>)>>,
}

/// A sleep the code under test started, held until `resume` is called.
pub type SleepEvents = mpsc::UnboundedReceiver<(Duration, oneshot::Sender<()>)>;

impl TestClock {
    #[allow(clippy::disallowed_methods)] // the tests' clock starts at the real time
    pub fn new() -> Self {
        Self { now: Arc::new(Mutex::new(SystemTime::now())), gate: None }
    }
    /// A clock whose sleeps are reported on the returned channel and wait for an answer.
    pub fn gated() -> (Self, SleepEvents) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut c = Self::new();
        c.gate = Some(tx);
        (c, rx)
    }
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
    pub fn set_to(&self, to: SystemTime) {
        *self.now.lock().unwrap() = to;
    }
    pub fn get(&self) -> SystemTime {
        *self.now.lock().unwrap()
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.get()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.advance(duration);
        let gate = self.gate.clone();
        Box::pin(async move {
            match gate {
                Some(tx) => {
                    let (resume, wait) = oneshot::channel();
                    if tx.send((duration, resume)).is_ok() {
                        let _ = wait.await;
                    }
                }
                None => tokio::task::yield_now().await,
            }
        })
    }
}

impl forcelink_playground::Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.get().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
    }
}

/// A playground that reads `clock`.
pub async fn playground(clock: &TestClock) -> PlaygroundHandle {
    let c = clock.clone();
    spawn_playground_with(move |config| config.clock = Arc::new(c)).await
}

pub fn transport(clock: &TestClock) -> Transport {
    Transport::new(
        forcelink_auth::wire::default_http_client().unwrap(),
        Arc::new(clock.clone()),
        UrlPolicy::new().allow_any_loopback(),
    )
}

pub fn login_endpoints(pg: &PlaygroundHandle) -> Endpoints {
    Endpoints::salesforce(&Url::parse(pg.login_url()).unwrap())
}

pub fn instance_endpoints(pg: &PlaygroundHandle) -> Endpoints {
    Endpoints::salesforce(&Url::parse(pg.instance_url()).unwrap())
}

pub fn default_app() -> AppCredentials {
    AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new(DEFAULT_SECRET)))
}

pub fn rotating_app() -> AppCredentials {
    AppCredentials::new(ROTATING_CLIENT, Some(ClientSecret::new(ROTATING_SECRET)))
}

/// A username-password source of the default app on the playground's login host.
pub fn password_source(
    pg: &PlaygroundHandle,
    clock: &TestClock,
    username: &str,
    password: &str,
    security_token: Option<&str>,
) -> forcelink_auth::flows::password::UsernamePassword {
    forcelink_auth::flows::password::UsernamePassword::new(
        transport(clock),
        login_endpoints(pg),
        default_app(),
        username,
        forcelink_auth::secret::Password::new(password),
        security_token.map(forcelink_auth::secret::SecurityToken::new),
    )
    .unwrap()
}

/// An HTTP client that does not follow redirects.
pub fn http() -> reqwest::Client {
    forcelink_test_support::browser::no_redirect_client()
}

/// Status of `GET {instance}/services/data/` with `token` (a REST call on the instance host).
pub async fn api_status(instance_url: &Url, token: &AccessToken) -> StatusCode {
    let url = instance_url.join("/services/data/").unwrap();
    http().get(url).bearer_auth(token.secret()).send().await.unwrap().status()
}

pub use forcelink_test_support::browser::{Decision, approve_device};

/// Opens `authorize_url`, signs in on the playground's login page and answers the consent page
/// (if shown). Returns the final redirect `Location`.
pub async fn sign_in(
    pg: &PlaygroundHandle,
    authorize_url: &Url,
    username: &str,
    password: &str,
    decision: Decision,
) -> Url {
    let location =
        forcelink_test_support::browser::sign_in(pg, authorize_url.as_str(), username, password, decision).await;
    Url::parse(&location).unwrap()
}

/// The playground's count of token requests for one grant type.
pub async fn token_requests(pg: &PlaygroundHandle, grant: &str) -> u64 {
    pg.control.token_requests(grant).await
}

/// A canned HTTP answer.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// Serves `answers` in turn (the last one repeats) on `127.0.0.1:0`; returns its base URL and
/// the request bodies it saw.
pub async fn canned_server(answers: Vec<Canned>) -> (Url, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut i = 0;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let answer = answers[i.min(answers.len() - 1)].clone();
            i += 1;
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then Content-Length bytes of body.
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            let n = stream.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        log.lock().unwrap().push(String::from_utf8_lossy(&buf[end + 4..]).into_owned());
                        break;
                    }
                }
                let resp = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    answer.status,
                    answer.content_type,
                    answer.body.len(),
                    answer.body
                );
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (Url::parse(&format!("http://{addr}")).unwrap(), seen)
}

/// Query (or fragment) parameters of a URL.
pub fn params(url: &Url) -> HashMap<String, String> {
    let tail = url.fragment().or(url.query()).unwrap_or("");
    url::form_urlencoded::parse(tail.as_bytes()).into_owned().collect()
}
