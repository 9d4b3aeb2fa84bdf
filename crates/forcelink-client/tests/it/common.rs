//! Shared helpers: clients for the playground's users, a token provider that records
//! invalidations, and a replay server that answers with a recorded response.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::password::UsernamePassword;
use forcelink_auth::secret::{AccessToken, ClientSecret, Password, SecurityToken};
use forcelink_auth::{
    AppCredentials, AuthError, CacheConfig, Clock, ConnectionId, Endpoints, ManualClock, MemoryStore, SystemClock,
    Token, TokenCache, TokenProvider, TokenSource, Transport, UrlPolicy,
};
use forcelink_client::{Backoff, Client};
pub use forcelink_test_support::{PlaygroundHandle, spawn_playground};
use futures_util::future::BoxFuture;
use serde_json::Value;
use url::Url;

pub const DEFAULT_CLIENT: &str = "3MVG9playground.forcelink.default.app";
pub const DEFAULT_SECRET: &str = "PLAYGROUNDSECRET0000000000000000000000000000000000000001";
pub const ADMIN: &str = "admin@playground.forcelink.dev";
pub const STANDARD_USER: &str = "sam.standard@playground.forcelink.dev";
pub const STANDARD_PASSWORD: &str = "Standard1!";
pub const STANDARD_TOKEN: &str = "PLAYGROUNDTOKEN0003";

fn transport() -> Transport {
    Transport::new(
        forcelink_auth::wire::default_http_client().unwrap(),
        Arc::new(SystemClock),
        UrlPolicy::new().allow_any_loopback(),
    )
}

fn cache(source: Arc<dyn TokenSource>) -> TokenCache {
    TokenCache::new(
        ConnectionId::new("test"),
        source,
        Arc::new(MemoryStore::new(Arc::new(SystemClock))),
        Arc::new(SystemClock),
        CacheConfig::default(),
    )
}

/// A token cache over client credentials: the default app's Run As user, the System Administrator.
pub fn admin_provider(pg: &PlaygroundHandle) -> TokenCache {
    let endpoints = Endpoints::salesforce(&Url::parse(pg.instance_url()).unwrap());
    let app = AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new(DEFAULT_SECRET)));
    cache(Arc::new(ClientCredentials::new(transport(), endpoints, app).unwrap()))
}

/// A token cache for the Standard User (username-password).
pub fn standard_provider(pg: &PlaygroundHandle) -> TokenCache {
    let endpoints = Endpoints::salesforce(&Url::parse(pg.login_url()).unwrap());
    let app = AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new(DEFAULT_SECRET)));
    let source = UsernamePassword::new(
        transport(),
        endpoints,
        app,
        STANDARD_USER,
        Password::new(STANDARD_PASSWORD),
        Some(SecurityToken::new(STANDARD_TOKEN)),
    )
    .unwrap();
    cache(Arc::new(source))
}

/// A client whose backoff sleeps on `clock` (sleeping advances it at once).
pub fn client_over(provider: Arc<dyn TokenProvider>, clock: &ManualClock) -> Client {
    Client::builder(provider)
        .clock(Arc::new(clock.clone()))
        .url_policy(UrlPolicy::new().allow_any_loopback())
        .build()
        .unwrap()
}

pub fn admin_client(pg: &PlaygroundHandle) -> (Client, ManualClock) {
    let clock = ManualClock::starting_now();
    (client_over(Arc::new(admin_provider(pg)), &clock), clock)
}

pub fn standard_client(pg: &PlaygroundHandle) -> Client {
    client_over(Arc::new(standard_provider(pg)), &ManualClock::starting_now())
}

/// Wraps a provider and records every token it was told to invalidate.
#[derive(Debug)]
pub struct Recording<P> {
    pub inner: P,
    pub invalidated: Mutex<Vec<AccessToken>>,
    pub handed_out: Mutex<Vec<AccessToken>>,
}

impl<P: TokenProvider> Recording<P> {
    pub fn new(inner: P) -> Arc<Self> {
        Arc::new(Self { inner, invalidated: Mutex::new(Vec::new()), handed_out: Mutex::new(Vec::new()) })
    }
    pub fn invalidated(&self) -> Vec<AccessToken> {
        self.invalidated.lock().unwrap().clone()
    }
    pub fn handed_out(&self) -> Vec<AccessToken> {
        self.handed_out.lock().unwrap().clone()
    }
}

impl<P: TokenProvider> TokenProvider for Recording<P> {
    fn token(&self) -> BoxFuture<'_, Result<Token, AuthError>> {
        Box::pin(async move {
            let t = self.inner.token().await?;
            self.handed_out.lock().unwrap().push(t.access_token.clone());
            Ok(t)
        })
    }
    fn invalidate(&self, stale: &AccessToken) {
        self.invalidated.lock().unwrap().push(stale.clone());
        self.inner.invalidate(stale);
    }
}

/// Always the same token for a fixed URL (for the replay server).
#[derive(Debug)]
pub struct FixedToken(pub Token);

impl FixedToken {
    pub fn at(url: &str) -> Arc<Self> {
        Arc::new(Self(Token {
            access_token: AccessToken::new("00D000000000001!fixedtokenvalue"),
            instance_url: Url::parse(url).unwrap(),
            expires_at: None,
        }))
    }
}

impl TokenProvider for FixedToken {
    fn token(&self) -> BoxFuture<'_, Result<Token, AuthError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
    fn invalidate(&self, _stale: &AccessToken) {}
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    /// A fixture's response: JSON bodies re-serialised, string bodies as they are, `null` → empty.
    pub fn from_fixture(f: &Value) -> Self {
        let r = &f["response"];
        let body = match &r["body"] {
            Value::Null => Vec::new(),
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap(),
        };
        // A fixture without a status: an error envelope is a 400, anything else a 200.
        let status = r["status"]
            .as_u64()
            .map(|s| s as u16)
            .unwrap_or_else(|| if r["body"][0].get("errorCode").is_some() { 400 } else { 200 });
        let headers = r["headers"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        Self { status, headers, body }
    }
}

/// What the replay server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: axum::http::HeaderMap,
}

/// A server on 127.0.0.1 answering each request with the next canned answer (the last one
/// repeats), recording what it saw.
pub struct Replay {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn replay(answers: Vec<Canned>) -> Replay {
    use axum::body::Body;
    use axum::http::{Request, Response};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(answers));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let s2 = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let seen = s2.clone();
        let answers = answers.clone();
        async move {
            seen.lock().unwrap().push(Seen {
                method: req.method().to_string(),
                uri: req.uri().to_string(),
                headers: req.headers().clone(),
            });
            let a = {
                let mut a = answers.lock().unwrap();
                if a.len() > 1 { a.remove(0) } else { a[0].clone() }
            };
            let mut resp = Response::builder().status(a.status);
            for (k, v) in &a.headers {
                resp = resp.header(k, v);
            }
            resp.body(Body::from(a.body)).unwrap()
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Replay { url, seen, _task: task }
}

/// A client on the replay server with a fixed token, a manual clock and the default retries.
pub fn replay_client(server: &Replay) -> (Client, ManualClock) {
    let clock = ManualClock::starting_now();
    let client = Client::builder(FixedToken::at(&server.url))
        .url_policy(UrlPolicy::new().allow_any_loopback())
        .clock(Arc::new(clock.clone()))
        .retry(Backoff::default())
        .build()
        .unwrap();
    (client, clock)
}

pub fn elapsed(clock: &ManualClock, since: std::time::SystemTime) -> Duration {
    clock.now().duration_since(since).unwrap()
}
