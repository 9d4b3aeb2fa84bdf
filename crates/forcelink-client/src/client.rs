//! [`Client`]: one connection's REST client over a [`TokenProvider`]. Every request goes
//! through `Client::execute`, which takes a token, builds the URL on the token's
//! `instance_url` (checked by the [`UrlPolicy`]), sends, records `Sforce-Limit-Info`, and
//! decides about retries:
//!
//! - `401 INVALID_SESSION_ID`: the exact token used is reported stale
//!   ([`TokenProvider::invalidate`]) and the request is sent once more with a new token;
//! - 5xx, 429 and broken connections: idempotent requests are retried with exponential backoff
//!   and jitter, waiting at least `Retry-After`; a create (POST) only when the connection was
//!   never made;
//! - answers are read in full (bounded), gzip-compressed when the server agrees.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use forcelink_auth::backoff::{Backoff, GiveUp};
use forcelink_auth::body::{self, BodyKind, excerpt};
use forcelink_auth::{Clock, SystemClock, TokenProvider, UrlPolicy};
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::describe::CachedDescribe;
use crate::error::{ApiError, ClientError};
use crate::limits::LimitInfo;
use crate::version::ApiVersion;

/// Longest a single request may take, answer included. Defaults to 120 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for a connection. Defaults to 30 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer body read. Defaults to 128 MiB (a query page of 2,000 wide records is a few MB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;
/// How long a cached describe is used without asking Salesforce. Defaults to 5 minutes; after
/// that it is revalidated with `If-Modified-Since` (a `304` keeps it).
pub const DEFAULT_DESCRIBE_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// Builds a [`Client`]. Every default is a named constant.
pub struct ClientBuilder {
    provider: Arc<dyn TokenProvider>,
    http: Option<reqwest::Client>,
    clock: Arc<dyn Clock>,
    policy: UrlPolicy,
    version: ApiVersion,
    retry: Backoff,
    describe_max_age: Duration,
    max_response_bytes: usize,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder").field("version", &self.version).field("retry", &self.retry).finish()
    }
}

impl ClientBuilder {
    /// The HTTP client. Defaults to rustls with gzip, [`DEFAULT_REQUEST_TIMEOUT`],
    /// [`DEFAULT_CONNECT_TIMEOUT`] and no redirects (a redirect would carry the token elsewhere).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }
    /// The clock backoff waits on. Defaults to [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Where tokens may be sent. Defaults to [`UrlPolicy::new`] (https, or http to loopback).
    pub fn url_policy(mut self, policy: UrlPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// The API version. Defaults to [`crate::version::DEFAULT_API_VERSION`]; see also
    /// [`Client::with_latest_version`].
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.version = version;
        self
    }
    /// How failed requests are retried. Defaults to [`Backoff::default`]: 3 retries, 500 ms
    /// doubling to 30 s with equal jitter, `Retry-After` honoured up to 2 minutes.
    pub fn retry(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }
    /// How long a describe is served from the cache before revalidation. Defaults to
    /// [`DEFAULT_DESCRIBE_MAX_AGE`]; `Duration::ZERO` revalidates every time.
    pub fn describe_max_age(mut self, age: Duration) -> Self {
        self.describe_max_age = age;
        self
    }
    /// Largest answer read. Defaults to [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The client; fails only when the default HTTP client cannot be built.
    pub fn build(self) -> Result<Client, ClientError> {
        let http = match self.http {
            Some(h) => h,
            None => default_http_client()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                provider: self.provider,
                http,
                clock: self.clock,
                policy: self.policy,
                retry: self.retry,
                describe_max_age: self.describe_max_age,
                max_response_bytes: self.max_response_bytes,
                limit_info: Mutex::new(None),
                describes: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
            version: self.version,
        })
    }
}

/// The HTTP client [`ClientBuilder`] uses by default.
pub fn default_http_client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(DEFAULT_REQUEST_TIMEOUT)
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true)
        .build()
        .map_err(|e| ClientError::InvalidInput(format!("building the HTTP client: {e}")))
}

/// A connection's REST client: a cheap-clone handle; clones share the connection pool, the
/// limit info and the describe cache.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) version: ApiVersion,
}

pub(crate) struct Inner {
    provider: Arc<dyn TokenProvider>,
    http: reqwest::Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: UrlPolicy,
    retry: Backoff,
    pub(crate) describe_max_age: Duration,
    max_response_bytes: usize,
    // The latest Sforce-Limit-Info seen on this connection.
    limit_info: Mutex<Option<LimitInfo>>,
    // Describes by (version, lower-case object name).
    pub(crate) describes: Mutex<HashMap<(String, String), CachedDescribe>>,
    pub(crate) counters: Counters,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) renewals: AtomicU64,
    pub(crate) describe_cache_hits: AtomicU64,
    pub(crate) describe_not_modified: AtomicU64,
    pub(crate) describe_fetches: AtomicU64,
}

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ClientStats {
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    /// Attempts after a 5xx, 429 or broken connection.
    pub retries: u64,
    /// Requests sent again with a new token after `401 INVALID_SESSION_ID`.
    pub renewals: u64,
    /// Describes answered from the cache without a request.
    pub describe_cache_hits: u64,
    /// Describes revalidated with `304 Not Modified`.
    pub describe_not_modified: u64,
    /// Describes fetched in full.
    pub describe_fetches: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.version)
            .field("provider", &self.inner.provider)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What is fetched: relative to `/services/data/vXX.X/`, the versions list, or a path a server
/// gave (`nextRecordsUrl`).
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Data(Vec<String>),
    Versions,
    Path(String),
}

/// Whether a request may be sent again after Salesforce may have seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    Idempotent,
    /// Creates: retried only when the connection was never made.
    NotIdempotent,
}

impl Idempotency {
    pub(crate) fn of(method: &Method) -> Self {
        if *method == Method::POST { Idempotency::NotIdempotent } else { Idempotency::Idempotent }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) target: Target,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Option<(Bytes, String)>,
    /// A body read from a file while it is sent (opened again for every attempt), and its
    /// content type; takes the place of `body`.
    pub(crate) file_body: Option<(crate::upload::FileBody, String)>,
    pub(crate) idempotency: Idempotency,
}

impl Req {
    pub(crate) fn new(method: Method, target: Target) -> Self {
        let idempotency = Idempotency::of(&method);
        Self { method, target, query: Vec::new(), headers: Vec::new(), body: None, file_body: None, idempotency }
    }
    pub(crate) fn data<I, S>(method: Method, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(method, Target::Data(segments.into_iter().map(Into::into).collect()))
    }
    pub(crate) fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }
    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::InvalidInput(format!("the request body is not serializable as JSON: {e}")))?;
        self.body = Some((Bytes::from(bytes), "application/json".to_owned()));
        Ok(self)
    }
    pub(crate) fn idempotency(mut self, i: Idempotency) -> Self {
        self.idempotency = i;
        self
    }
}

/// An answer with a status below 400 (or 300 / 304, which callers interpret).
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status (below 400).
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, read in full (up to the client's `max_response_bytes`).
    pub body: Bytes,
    /// `METHOD scheme://host/path` of the request (no query string), for messages.
    pub endpoint: String,
}

impl RawResponse {
    /// Decodes the body as JSON into `T`; unusable bodies become typed errors.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        decode(&self.endpoint, self.status, &self.headers, &self.body)
    }
}

/// The answer's `Content-Type`, for [`body::classify`].
pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// Decodes a success body; HTML, empty, truncated and wrong-shaped bodies become
/// [`ClientError::UnexpectedResponse`].
pub(crate) fn decode<T: DeserializeOwned>(
    endpoint: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ClientError> {
    let unexpected =
        |kind| ClientError::UnexpectedResponse { endpoint: endpoint.to_owned(), status, kind, excerpt: excerpt(body) };
    if let Some(kind) = body::classify(content_type(headers), body) {
        return Err(unexpected(kind));
    }
    // JSON is UTF-8 throughout (RFC 8259 §8.1); serde_json checks only the strings it keeps, so
    // a page sonic-rs refuses (bad bytes in a skipped field) would be taken here.
    let Ok(text) = std::str::from_utf8(body) else { return Err(unexpected(BodyKind::Malformed)) };
    serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => unexpected(BodyKind::Shape(body::redact(&e.to_string()))),
        _ => unexpected(BodyKind::Malformed),
    })
}

/// Turns an error answer (status ≥ 400) into a typed error.
pub(crate) fn error_from(endpoint: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let unexpected =
        |kind| ClientError::UnexpectedResponse { endpoint: endpoint.to_owned(), status, kind, excerpt: excerpt(body) };
    if let Some(kind) = body::classify(content_type(headers), body) {
        return unexpected(kind);
    }
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return unexpected(BodyKind::Malformed),
    };
    let mut errors: Vec<ApiError> = match &value {
        serde_json::Value::Array(items) => {
            items.iter().filter_map(|i| serde_json::from_value::<ApiError>(i.clone()).ok()).collect()
        }
        serde_json::Value::Object(m) if m.contains_key("errorCode") => {
            serde_json::from_value::<ApiError>(value.clone()).ok().into_iter().collect()
        }
        // Some endpoints answer OAuth-style (`{"error","error_description"}`).
        serde_json::Value::Object(m) => match m.get("error").and_then(|e| e.as_str()) {
            Some(code) => vec![ApiError {
                status,
                error_code: code.to_owned(),
                message: m.get("error_description").and_then(|d| d.as_str()).unwrap_or_default().to_owned(),
                fields: Vec::new(),
            }],
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    if errors.is_empty() {
        return unexpected(BodyKind::Shape("no errorCode in the error answer".to_owned()));
    }
    for e in &mut errors {
        e.status = status;
    }
    let error = errors.remove(0);
    ClientError::Api { endpoint: endpoint.to_owned(), error, others: errors }
}

/// True for a 401 that means "this token is no longer valid": `INVALID_SESSION_ID`, except
/// "This session is not valid for use with the REST API" (the token lacks the `api` scope; a
/// new token would be refused the same way — jsforce's `isSessionExpired` skips it too).
fn session_expired(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    items.iter().any(|i| {
        i.get("errorCode").and_then(|c| c.as_str()) == Some("INVALID_SESSION_ID")
            && !i
                .get("message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.contains("not valid for use with the REST API"))
    })
}

fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The error and its causes, never a URL's query string (it may hold SOQL with personal data).
pub(crate) fn transport_message(e: &reqwest::Error) -> String {
    forcelink_auth::wire::error_chain(e)
}

enum Attempt {
    Answer(RawResponse),
    /// Failed before or while talking; `connected` says whether the server may have seen it.
    Failed {
        error: ClientError,
        connected: bool,
    },
}

impl Client {
    /// A builder for a client that takes its tokens from `provider` (a `TokenCache`, a static
    /// token…). The client never sees refresh tokens or client secrets.
    pub fn builder(provider: Arc<dyn TokenProvider>) -> ClientBuilder {
        ClientBuilder {
            provider,
            http: None,
            clock: Arc::new(SystemClock),
            policy: UrlPolicy::new(),
            version: ApiVersion::default(),
            retry: Backoff::default(),
            describe_max_age: DEFAULT_DESCRIBE_MAX_AGE,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// A client with every default.
    pub fn new(provider: Arc<dyn TokenProvider>) -> Result<Self, ClientError> {
        Self::builder(provider).build()
    }

    /// The API version requests use.
    pub fn api_version(&self) -> &ApiVersion {
        &self.version
    }

    /// A handle on the same connection speaking another API version.
    pub fn with_api_version(&self, version: ApiVersion) -> Client {
        Client { inner: self.inner.clone(), version }
    }

    /// Asks the org for its versions (`GET /services/data/`) and returns a handle using the
    /// newest one.
    pub async fn with_latest_version(&self) -> Result<Client, ClientError> {
        let list = self.versions().send().await?;
        let newest = crate::version::newest(&list)
            .ok_or_else(|| ClientError::InvalidInput("the org listed no API versions".to_owned()))?;
        Ok(self.with_api_version(newest))
    }

    /// The latest `Sforce-Limit-Info` this connection received.
    pub fn limit_info(&self) -> Option<LimitInfo> {
        self.inner.limit_info.lock().clone()
    }

    /// What this connection's requests did so far (counters shared by every clone).
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            renewals: c.renewals.load(Ordering::Relaxed),
            describe_cache_hits: c.describe_cache_hits.load(Ordering::Relaxed),
            describe_not_modified: c.describe_not_modified.load(Ordering::Relaxed),
            describe_fetches: c.describe_fetches.load(Ordering::Relaxed),
        }
    }

    /// Any REST request, for resources without their own builder: `path` is relative to
    /// `/services/data/vXX.X/` (`"recent"`, `"sobjects/Account/updated"`) or absolute
    /// (`"/services/data/v58.0/appMenu"`). POST is not retried after Salesforce may have seen it.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder { client: self, method, path: path.to_owned(), query: Vec::new(), body: None, error: None }
    }

    fn url_for(&self, instance_url: &Url, req: &Req) -> Result<Url, ClientError> {
        let mut url = instance_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        match &req.target {
            Target::Versions => url.set_path("/services/data/"),
            Target::Data(segments) => {
                let version = self.version.segment();
                let mut p = url
                    .path_segments_mut()
                    .map_err(|_| ClientError::InvalidInput("the instance URL cannot hold a path".to_owned()))?;
                p.clear().extend(["services", "data", version.as_str()]);
                p.extend(segments);
            }
            Target::Path(path) => {
                let (path, query) = path.split_once('?').unwrap_or((path, ""));
                url.set_path(path);
                if !query.is_empty() {
                    url.set_query(Some(query));
                }
            }
        }
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&req.query);
        }
        self.inner.policy.check("instance URL", &url)?;
        Ok(url)
    }

    /// Sends `req` with retries and renewal; answers with status ≥ 400 (other than those
    /// retried) become errors.
    pub(crate) async fn execute(&self, req: Req) -> Result<RawResponse, ClientError> {
        let inner = &self.inner;
        let mut retries = inner.retry.start(inner.clock.clone());
        let mut renewed = false;
        loop {
            let token = inner.provider.token().await?;
            let url = self.url_for(&token.instance_url, &req)?;
            let endpoint = format!("{} {}{}", req.method, url.origin().ascii_serialization(), url.path());
            inner.counters.requests.fetch_add(1, Ordering::Relaxed);
            let attempt = self.attempt(&req, url, &endpoint, token.access_token.secret()).await;
            let (wait, last_error) = match attempt {
                Attempt::Answer(resp) => {
                    self.record_limits(&resp.headers);
                    if resp.status == 401 && !renewed && session_expired(&resp.body) {
                        tracing::debug!(token = %token.access_token.fingerprint(), %endpoint, "401 INVALID_SESSION_ID: renewing once");
                        inner.provider.invalidate(&token.access_token);
                        inner.counters.renewals.fetch_add(1, Ordering::Relaxed);
                        renewed = true;
                        continue;
                    }
                    if resp.status < 400 {
                        return Ok(resp);
                    }
                    let error = error_from(&endpoint, resp.status, &resp.headers, &resp.body);
                    if !retryable_status(resp.status) || req.idempotency != Idempotency::Idempotent {
                        return Err(error);
                    }
                    let asked = resp
                        .headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retries.retry_after(v));
                    match retries.next_delay(asked) {
                        Ok(wait) => (wait, error),
                        Err(GiveUp::RetryAfterTooLong { asked, max }) => {
                            return Err(ClientError::RetryAfterTooLong {
                                endpoint,
                                seconds: asked.as_secs(),
                                max_seconds: max.as_secs(),
                            });
                        }
                        Err(_) => return Err(error),
                    }
                }
                Attempt::Failed { error, connected } => {
                    let may_retry = !connected || req.idempotency == Idempotency::Idempotent;
                    if !may_retry {
                        return Err(error);
                    }
                    match retries.next_delay(None) {
                        Ok(wait) => (wait, error),
                        Err(_) => return Err(error),
                    }
                }
            };
            tracing::debug!(%endpoint, retry = retries.retries(), wait_ms = wait.as_millis() as u64, error = %last_error, "retrying");
            inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            inner.clock.sleep(wait).await;
        }
    }

    async fn attempt(&self, req: &Req, url: Url, endpoint: &str, token: &str) -> Attempt {
        let inner = &self.inner;
        let mut rb =
            inner.http.request(req.method.clone(), url).bearer_auth(token).header(header::ACCEPT, "application/json");
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        if let Some((bytes, content_type)) = &req.body {
            rb = rb.header(header::CONTENT_TYPE, content_type.as_str()).body(bytes.clone());
        }
        if let Some((file, content_type)) = &req.file_body {
            let body = match file.open().await {
                Ok(b) => b,
                // Not retried: the file would be as unreadable the next time.
                Err(error) => return Attempt::Failed { error, connected: true },
            };
            rb = rb
                .header(header::CONTENT_TYPE, content_type.as_str())
                .header(header::CONTENT_LENGTH, file.len())
                .body(body);
        }
        let transport = |e: &reqwest::Error| ClientError::Transport {
            endpoint: endpoint.to_owned(),
            message: transport_message(e),
            timeout: e.is_timeout(),
        };
        let mut resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Failed { error: transport(&e), connected: !e.is_connect() },
        };
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let limit = inner.max_response_bytes;
        let too_large = || Attempt::Failed {
            error: ClientError::UnexpectedResponse {
                endpoint: endpoint.to_owned(),
                status,
                kind: BodyKind::TooLarge,
                excerpt: String::new(),
            },
            // Not retried: the same answer would come again.
            connected: true,
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return too_large();
        }
        let mut body = BytesMut::with_capacity(resp.content_length().unwrap_or(0).min(limit as u64) as usize);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return too_large();
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Attempt::Failed { error: transport(&e), connected: true },
            }
        }
        Attempt::Answer(RawResponse { status, headers, body: body.freeze(), endpoint: endpoint.to_owned() })
    }

    fn record_limits(&self, headers: &HeaderMap) {
        let Some(v) = headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()) else { return };
        if let Some(info) = LimitInfo::parse(v, self.inner.clock.now()) {
            *self.inner.limit_info.lock() = Some(info);
        }
    }

    /// Sends and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, req: Req) -> Result<T, ClientError> {
        self.execute(req).await?.json()
    }
}

/// A request to any REST resource ([`Client::request`]).
#[derive(Debug)]
pub struct RequestBuilder<'c> {
    client: &'c Client,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    error: Option<ClientError>,
}

impl RequestBuilder<'_> {
    /// Adds a query-string parameter (encoded when sent).
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }
    /// Sets a JSON body; a body that does not serialize fails the request when sent.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => self.body = Some(Bytes::from(b)),
            Err(e) => self.error = Some(ClientError::InvalidInput(format!("the body is not serializable: {e}"))),
        }
        self
    }

    fn target(&self) -> Result<Target, ClientError> {
        let bad = || ClientError::InvalidInput(format!("{:?} is not a REST path", self.path));
        if self.path.starts_with('/') {
            let p = self.path.split('?').next().unwrap_or("");
            if !p.starts_with("/services/") || p.split('/').any(|s| s == ".." || s == ".") || p.contains("//") {
                return Err(bad());
            }
            return Ok(Target::Path(self.path.clone()));
        }
        let segs: Vec<String> =
            self.path.trim_end_matches('/').split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if segs.iter().any(|s| s == ".." || s == "." || s.contains('?')) {
            return Err(bad());
        }
        Ok(Target::Data(segs))
    }

    /// Sends; answers below 400 come back as they are (including 204 and 300).
    pub async fn send(self) -> Result<RawResponse, ClientError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut req = Req::new(self.method.clone(), self.target()?);
        req.query = self.query;
        if let Some(b) = self.body {
            req.body = Some((b, "application/json".to_owned()));
        }
        self.client.execute(req).await
    }
}
