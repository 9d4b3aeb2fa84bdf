//! [`BrokerTokens`]: a [`TokenProvider`] that takes a connection's tokens from a forcelink
//! broker (`GET /v1/connections/{name}/token`) instead of holding Salesforce credentials. When
//! Salesforce refuses a token, the client reports it ([`TokenProvider::invalidate`]) and the
//! next request asks the broker again with `?rejected=<fingerprint>`: the broker renews once
//! for all its callers (and replicas), and a report of a token it has already replaced costs
//! nothing. The broker's API key is the only secret this side holds.

use std::fmt;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

use forcelink_auth::error::BodyKind;
use forcelink_auth::secret::AccessToken;
use forcelink_auth::{AuthError, Clock, SystemClock, Token, TokenProvider, UrlPolicy};
use futures_util::future::BoxFuture;
use url::Url;

use crate::error::ClientError;

/// How long a token from the broker is used before asking again (the broker renews before
/// expiry; asking now and then picks up its renewals). 60 seconds.
pub const DEFAULT_BROKER_TOKEN_REUSE: Duration = Duration::from_secs(60);

/// Tokens of one broker connection. Cheap to clone; clones share the token held.
#[derive(Clone)]
pub struct BrokerTokens {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    api_key: String,
    clock: Arc<dyn Clock>,
    policy: UrlPolicy,
    reuse: Duration,
    // The token handed out and when it was fetched.
    current: RwLock<Option<(Token, SystemTime)>>,
    // Fingerprint of the token Salesforce refused, sent with the next request to the broker.
    rejected: Mutex<Option<String>>,
}

impl fmt::Debug for BrokerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerTokens").field("endpoint", &self.inner.endpoint.as_str()).finish_non_exhaustive()
    }
}

impl BrokerTokens {
    /// Tokens of `connection` from the broker at `broker_url`, with an API key holding the
    /// `token` scope. The key is sent only over https, or plain http to a loopback broker.
    pub fn new(broker_url: &str, connection: &str, api_key: impl Into<String>) -> Result<Self, ClientError> {
        let base = Url::parse(broker_url.trim())
            .map_err(|e| ClientError::InvalidInput(format!("broker URL {broker_url:?}: {e}")))?;
        let host = base.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !(base.scheme() == "https" || (base.scheme() == "http" && loopback)) {
            return Err(ClientError::InvalidInput(format!(
                "the broker URL must be https (or http on loopback): the API key would travel in clear to {}",
                base.origin().ascii_serialization()
            )));
        }
        let mut endpoint = base.clone();
        endpoint
            .path_segments_mut()
            .map_err(|()| ClientError::InvalidInput(format!("broker URL {broker_url:?} cannot take a path")))?
            .pop_if_empty()
            .extend(["v1", "connections", connection, "token"]);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::InvalidInput(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                api_key: api_key.into(),
                clock: Arc::new(SystemClock),
                policy: UrlPolicy::new(),
                reuse: DEFAULT_BROKER_TOKEN_REUSE,
                current: RwLock::new(None),
                rejected: Mutex::new(None),
            }),
        })
    }

    fn with(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            http: shared.http.clone(),
            endpoint: shared.endpoint.clone(),
            api_key: shared.api_key.clone(),
            clock: shared.clock.clone(),
            policy: shared.policy.clone(),
            reuse: shared.reuse,
            current: RwLock::new(None),
            rejected: Mutex::new(None),
        });
        change(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// Where the tokens may be used (the instance URL the broker names is checked). Defaults
    /// to [`UrlPolicy::new`]: https Salesforce hosts.
    pub fn url_policy(self, policy: UrlPolicy) -> Self {
        self.with(|i| i.policy = policy)
    }

    /// The clock deciding when to ask the broker again.
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.with(|i| i.clock = clock)
    }

    /// How long a token is used before asking again. Defaults to 60 seconds.
    pub fn reuse_for(self, reuse: Duration) -> Self {
        self.with(|i| i.reuse = reuse)
    }

    async fn fetch(&self) -> Result<Token, AuthError> {
        let i = &self.inner;
        let now = i.clock.now();
        if let Some((token, at)) = i.current.read().as_ref()
            && now.duration_since(*at).is_ok_and(|age| age < i.reuse)
        {
            return Ok(token.clone());
        }
        let rejected = i.rejected.lock().clone();
        let mut url = i.endpoint.clone();
        if let Some(fingerprint) = &rejected {
            url.query_pairs_mut().append_pair("rejected", fingerprint);
        }
        let label = format!("{}{}", i.endpoint.origin().ascii_serialization(), i.endpoint.path());
        let transport = |e: reqwest::Error| AuthError::Transport {
            endpoint: label.clone(),
            timeout: e.is_timeout(),
            message: e.without_url().to_string(),
        };
        let resp = i.http.get(url).bearer_auth(&i.api_key).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport)?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != 200 {
            let message = json["error"]["message"].as_str().unwrap_or("").to_owned();
            return Err(match status {
                401 | 403 | 404 => {
                    AuthError::Config(format!("the broker refused the token request ({status}): {message}"))
                }
                409 => AuthError::Config(format!("the broker cannot get a token: {message}")),
                _ => AuthError::UnexpectedResponse {
                    endpoint: label,
                    status,
                    kind: BodyKind::MissingField("access_token"),
                    excerpt: message,
                },
            });
        }
        let (Some(access_token), Some(instance)) = (json["access_token"].as_str(), json["instance_url"].as_str())
        else {
            return Err(AuthError::UnexpectedResponse {
                endpoint: label,
                status,
                kind: BodyKind::MissingField("access_token"),
                excerpt: String::new(),
            });
        };
        let instance_url = i.policy.check_str("instance_url", instance)?;
        let token = Token { access_token: AccessToken::new(access_token), instance_url, expires_at: None };
        *i.current.write() = Some((token.clone(), now));
        let mut pending = i.rejected.lock();
        if *pending == rejected {
            *pending = None;
        }
        Ok(token)
    }
}

impl TokenProvider for BrokerTokens {
    fn token(&self) -> BoxFuture<'_, Result<Token, AuthError>> {
        Box::pin(self.fetch())
    }

    fn invalidate(&self, stale: &AccessToken) {
        let mut current = self.inner.current.write();
        if current.as_ref().is_some_and(|(t, _)| &t.access_token == stale) {
            *current = None;
            *self.inner.rejected.lock() = Some(stale.fingerprint());
        }
    }
}
