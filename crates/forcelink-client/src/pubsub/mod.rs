//! The Salesforce Pub/Sub API (gRPC, `eventbus.v1.PubSub`): subscribe to change events and
//! platform events as a stream of decoded events, publish platform events.
//!
//! - [`PubSubClient`] and its builder: where the API is (`api.pubsub.salesforce.com:7443` by
//!   default), TLS or h2c, the auth metadata (`accesstoken`, `instanceurl`, `tenantid`), the
//!   schema cache, GetTopic, publish and the publish stream.
//! - `subscribe`: [`Subscription`], a `Stream` of [`Event`]s with flow control, a keep-alive
//!   watchdog, automatic resubscription from the last replay id with a fresh token, and a
//!   [`Checkpoint`] hook.
//! - `decode`: Avro ↔ JSON, change bitmaps → field names; `error`: [`PubSubError`].
//!
//! Tokens go only where the [`UrlPolicy`] allows: the endpoint is reached over TLS when the
//! token's instance URL is https, and over plain HTTP/2 (h2c) only when the instance URL is an
//! http origin the policy allows (a playground on loopback) and the endpoint host is allowed too.

mod decode;
mod error;
mod subscribe;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use forcelink_auth::{Clock, SystemClock, Token, TokenProvider, UrlPolicy};
use serde_json::{Map, Value};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use url::Url;

pub use decode::EventSchema;
pub use error::PubSubError;
pub use subscribe::{Checkpoint, Subscription, SubscriptionStats};

use error::{Failure, classify};

#[allow(clippy::all, missing_debug_implementations)]
mod proto {
    tonic::include_proto!("eventbus.v1");
}

use proto::pub_sub_client::PubSubClient as Grpc;

/// Salesforce's global Pub/Sub endpoint (Pub/Sub API guide, "Pub/Sub API Endpoints").
pub const DEFAULT_PUBSUB_ENDPOINT: &str = "api.pubsub.salesforce.com:7443";
/// Events requested per FetchRequest; Salesforce allows at most 100 outstanding. Defaults to 100.
pub const DEFAULT_BATCH_SIZE: i32 = 100;
/// How long a stream may stay silent (no event, no keep-alive) before it is torn down and
/// resubscribed. Salesforce sends a keep-alive within 270 s; defaults to 300 s.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(300);
/// Resubscriptions in a row (without an answer in between) before giving up. Defaults to 10.
pub const DEFAULT_MAX_RESUBSCRIBES: u32 = 10;
/// First pause before a resubscription; doubles each time up to 30 s. Defaults to 1 s.
pub const DEFAULT_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between resubscriptions.
pub const MAX_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(30);

/// An opaque replay id: kept and given back as bytes; shown and parsed as base64.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReplayId(Vec<u8>);

impl ReplayId {
    /// A replay id from the bytes Salesforce sent.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The bytes, as Salesforce sent them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Parses the base64 form (as printed by the CLI and stored in checkpoints).
    pub fn from_base64(s: &str) -> Result<Self, PubSubError> {
        STANDARD
            .decode(s.trim())
            .map(Self)
            .map_err(|e| PubSubError::InvalidInput(format!("replay id {s:?} is not base64: {e}")))
    }
    /// The base64 form the CLI prints and checkpoints store.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

impl std::fmt::Debug for ReplayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplayId({})", self.to_base64())
    }
}

impl std::fmt::Display for ReplayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFrom {
    /// New events only (Salesforce's default).
    Latest,
    /// Everything retained (72 hours).
    Earliest,
    /// The events after this one.
    After(ReplayId),
}

/// The `ChangeEventHeader` of a change event, with the bitmaps expanded to field names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeHeader {
    /// `entityName`: the sObject type of the changed records (`Account`).
    pub entity_name: String,
    /// `recordIds`: the changed records (several when one transaction changed them alike).
    pub record_ids: Vec<String>,
    /// `changeType`: `CREATE`, `UPDATE`, `DELETE`, `UNDELETE`, or a `GAP_…` type when details were lost.
    pub change_type: String,
    /// `changeOrigin`: the client that made the change, when known.
    pub change_origin: String,
    /// `transactionKey`: the same for every change of one transaction.
    pub transaction_key: String,
    /// `sequenceNumber`: the change's position within its transaction.
    pub sequence_number: i64,
    /// `commitTimestamp`: when the transaction committed, in milliseconds since the Unix epoch.
    pub commit_timestamp: i64,
    /// `commitNumber`: the transaction's system change number.
    pub commit_number: i64,
    /// `commitUser`: the id of the user who made the change.
    pub commit_user: String,
    /// `changedFields`, expanded: the fields the change set (parts of compound fields as `BillingAddress.City`).
    pub changed_fields: Vec<String>,
    /// `nulledFields`, expanded: the fields the change set to null.
    pub nulled_fields: Vec<String>,
    /// `diffFields`, expanded: the long text fields sent as a diff rather than a value.
    pub diff_fields: Vec<String>,
}

/// One decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Where the event sits in the stream; subscribe [`ReplayFrom::After`] it to resume.
    pub replay_id: ReplayId,
    /// The id of the schema the payload was encoded with.
    pub schema_id: String,
    /// The event id (platform events; empty for change events).
    pub event_id: String,
    /// The fields by name; for a change event without its `ChangeEventHeader`.
    pub payload: Map<String, Value>,
    /// Present for change events.
    pub header: Option<ChangeHeader>,
}

/// A topic as GetTopic describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// `topic_name`, e.g. `/data/AccountChangeEvent` or `/event/Order_Placed__e`.
    pub topic_name: String,
    /// `tenant_guid`: the org the topic belongs to.
    pub tenant_guid: String,
    /// `can_publish`: the user may publish to it.
    pub can_publish: bool,
    /// `can_subscribe`: the user may subscribe to it.
    pub can_subscribe: bool,
    /// `schema_id` of the topic's current schema.
    pub schema_id: String,
}

/// An event to publish: fields by name; `correlation_key` (the event id) comes back with its
/// result, a random one when `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishEvent {
    /// The event id to send; a random one when `None`.
    pub correlation_key: Option<String>,
    /// The event's fields by API name.
    pub data: Map<String, Value>,
}

/// The outcome of one published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The event id the result is for.
    pub correlation_key: String,
    /// The replay id of the stored event, or the error Salesforce gave for it.
    pub result: Result<ReplayId, String>,
}

/// Builds a [`PubSubClient`].
#[derive(Debug)]
pub struct PubSubClientBuilder {
    provider: Arc<dyn TokenProvider>,
    endpoint: String,
    policy: UrlPolicy,
    clock: Arc<dyn Clock>,
    extra_root_pem: Option<Vec<u8>>,
    tenant_id: Option<String>,
    batch_size: i32,
    keepalive_timeout: Duration,
    max_resubscribes: u32,
    backoff: Duration,
}

impl PubSubClientBuilder {
    /// `host:port` of the Pub/Sub API. Defaults to [`DEFAULT_PUBSUB_ENDPOINT`].
    pub fn endpoint(mut self, host_port: impl Into<String>) -> Self {
        self.endpoint = host_port.into();
        self
    }
    /// Which hosts may receive tokens. Defaults to [`UrlPolicy::new`].
    pub fn url_policy(mut self, policy: UrlPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// The wall clock (for `CreatedDate` of published events). Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Also trust this CA (PEM) for TLS, e.g. a playground's under `--tls`.
    pub fn add_root_certificate_pem(mut self, pem: Vec<u8>) -> Self {
        self.extra_root_pem = Some(pem);
        self
    }
    /// The org id sent as `tenantid`. Defaults to the org id that prefixes the access token.
    pub fn tenant_id(mut self, org_id: impl Into<String>) -> Self {
        self.tenant_id = Some(org_id.into());
        self
    }
    /// Events asked for at a time, 1 to 100. Defaults to [`DEFAULT_BATCH_SIZE`].
    pub fn batch_size(mut self, n: i32) -> Self {
        self.batch_size = n;
        self
    }
    /// Silence after which a stream is resubscribed. Defaults to [`DEFAULT_KEEPALIVE_TIMEOUT`].
    pub fn keepalive_timeout(mut self, d: Duration) -> Self {
        self.keepalive_timeout = d;
        self
    }
    /// Failed resubscriptions in a row before giving up. Defaults to [`DEFAULT_MAX_RESUBSCRIBES`].
    pub fn max_resubscribes(mut self, n: u32) -> Self {
        self.max_resubscribes = n;
        self
    }
    /// First pause before resubscribing. Defaults to [`DEFAULT_RESUBSCRIBE_BACKOFF`].
    pub fn resubscribe_backoff(mut self, d: Duration) -> Self {
        self.backoff = d;
        self
    }

    /// The client; fails when the batch size or the endpoint is not valid. Connects on first use.
    pub fn build(self) -> Result<PubSubClient, PubSubError> {
        if !(1..=100).contains(&self.batch_size) {
            return Err(PubSubError::InvalidInput(format!("batch size {} is not within 1 to 100", self.batch_size)));
        }
        let (host, port) = self.endpoint.rsplit_once(':').ok_or_else(|| {
            PubSubError::InvalidInput(format!("Pub/Sub endpoint {:?} is not host:port", self.endpoint))
        })?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(PubSubError::InvalidInput(format!("Pub/Sub endpoint {:?} is not host:port", self.endpoint)));
        }
        Ok(PubSubClient {
            inner: Arc::new(Inner {
                provider: self.provider,
                endpoint: self.endpoint,
                policy: self.policy,
                clock: self.clock,
                extra_root_pem: self.extra_root_pem,
                tenant_id: self.tenant_id,
                batch_size: self.batch_size,
                keepalive_timeout: self.keepalive_timeout,
                max_resubscribes: self.max_resubscribes,
                backoff: self.backoff,
                channels: tokio::sync::Mutex::new(HashMap::new()),
                schemas: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// A Pub/Sub API client over a [`TokenProvider`]; a cheap-clone handle.
#[derive(Debug, Clone)]
pub struct PubSubClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: Arc<dyn TokenProvider>,
    endpoint: String,
    policy: UrlPolicy,
    clock: Arc<dyn Clock>,
    extra_root_pem: Option<Vec<u8>>,
    tenant_id: Option<String>,
    batch_size: i32,
    keepalive_timeout: Duration,
    max_resubscribes: u32,
    backoff: Duration,
    /// One HTTP/2 channel per scheme (TLS or h2c); held across the connect `.await`.
    channels: tokio::sync::Mutex<HashMap<bool, Channel>>,
    /// Decoded schemas by id; a schema id is a fingerprint, so entries never go stale.
    schemas: Mutex<HashMap<String, Arc<EventSchema>>>,
}

/// A token with the gRPC channel it may be sent over.
pub(crate) struct Call {
    token: Token,
    grpc: Grpc<Channel>,
}

impl PubSubClient {
    /// A builder for a client that takes its tokens from `provider`.
    pub fn builder(provider: Arc<dyn TokenProvider>) -> PubSubClientBuilder {
        PubSubClientBuilder {
            provider,
            endpoint: DEFAULT_PUBSUB_ENDPOINT.to_owned(),
            policy: UrlPolicy::new(),
            clock: Arc::new(SystemClock),
            extra_root_pem: None,
            tenant_id: None,
            batch_size: DEFAULT_BATCH_SIZE,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_resubscribes: DEFAULT_MAX_RESUBSCRIBES,
            backoff: DEFAULT_RESUBSCRIBE_BACKOFF,
        }
    }

    /// The endpoint, `host:port`.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// A token and a channel to send it over, after the URL policy agreed.
    async fn call(&self) -> Result<Call, PubSubError> {
        let token = self.inner.provider.token().await?;
        let tls = self.transport_for(&token.instance_url)?;
        let grpc = Grpc::new(self.channel(tls).await?).max_decoding_message_size(8 * 1024 * 1024);
        Ok(Call { token, grpc })
    }

    /// TLS when the instance URL is https; h2c when it is an http origin the policy allows and
    /// the endpoint host may receive tokens in clear too.
    fn transport_for(&self, instance_url: &Url) -> Result<bool, PubSubError> {
        let p = &self.inner.policy;
        p.check("instance URL", instance_url)?;
        let tls = instance_url.scheme() == "https";
        let scheme = if tls { "https" } else { "http" };
        p.check_str("Pub/Sub endpoint", &format!("{scheme}://{}", self.inner.endpoint))?;
        Ok(tls)
    }

    async fn channel(&self, tls: bool) -> Result<Channel, PubSubError> {
        let mut channels = self.inner.channels.lock().await;
        if let Some(c) = channels.get(&tls) {
            return Ok(c.clone());
        }
        let endpoint = &self.inner.endpoint;
        let transport = |message: String| PubSubError::Transport { endpoint: endpoint.clone(), message };
        let scheme = if tls { "https" } else { "http" };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{endpoint}"))
            .map_err(|e| transport(e.to_string()))?
            .connect_timeout(Duration::from_secs(30))
            .http2_keep_alive_interval(Duration::from_secs(60))
            .keep_alive_while_idle(true);
        if tls {
            let mut cfg = ClientTlsConfig::new().with_webpki_roots();
            if let Some(pem) = &self.inner.extra_root_pem {
                cfg = cfg.ca_certificate(Certificate::from_pem(pem));
            }
            ep = ep.tls_config(cfg).map_err(|e| transport(e.to_string()))?;
        }
        // Lazy: the first call connects, and a broken connection is re-established by the channel.
        let channel = ep.connect_lazy();
        channels.insert(tls, channel.clone());
        Ok(channel)
    }

    /// Adds `accesstoken`, `instanceurl` and `tenantid` to a request.
    fn authorize<T>(&self, token: &Token, message: T) -> Result<tonic::Request<T>, PubSubError> {
        let mut req = tonic::Request::new(message);
        let tenant = match &self.inner.tenant_id {
            Some(t) => t.clone(),
            // Salesforce access tokens start with the org id: `00D…!…`.
            None => token.access_token.secret().split('!').next().unwrap_or_default().to_owned(),
        };
        let bad = |what: &str| PubSubError::InvalidInput(format!("the {what} cannot be sent as gRPC metadata"));
        let mut secret: MetadataValue<_> =
            MetadataValue::try_from(token.access_token.secret()).map_err(|_| bad("access token"))?;
        secret.set_sensitive(true);
        let md = req.metadata_mut();
        md.insert("accesstoken", secret);
        let instance = token.instance_url.as_str().trim_end_matches('/');
        md.insert("instanceurl", MetadataValue::try_from(instance).map_err(|_| bad("instance URL"))?);
        md.insert("tenantid", MetadataValue::try_from(tenant.as_str()).map_err(|_| bad("tenant id"))?);
        Ok(req)
    }

    /// Runs a unary call, renewing the token once when it is refused.
    async fn unary<Q: Clone, A, F, Fut>(&self, message: Q, f: F) -> Result<A, PubSubError>
    where
        F: Fn(Grpc<Channel>, tonic::Request<Q>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<A>, tonic::Status>>,
    {
        let mut renewed = false;
        loop {
            let call = self.call().await?;
            let req = self.authorize(&call.token, message.clone())?;
            match f(call.grpc, req).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(status) => match classify(&status, &self.inner.endpoint, None) {
                    Failure::Auth(_) if !renewed => {
                        self.inner.provider.invalidate(&call.token.access_token);
                        renewed = true;
                    }
                    Failure::Auth(e) | Failure::Retry(e) | Failure::Fatal(e) => return Err(e),
                },
            }
        }
    }

    /// Describes a topic (`/data/AccountChangeEvent`, `/event/Order__e`).
    pub async fn get_topic(&self, topic: &str) -> Result<TopicInfo, PubSubError> {
        let req = proto::TopicRequest { topic_name: topic.to_owned() };
        let t = self.unary(req, |mut g, r| async move { g.get_topic(r).await }).await?;
        Ok(TopicInfo {
            topic_name: t.topic_name,
            tenant_guid: t.tenant_guid,
            can_publish: t.can_publish,
            can_subscribe: t.can_subscribe,
            schema_id: t.schema_id,
        })
    }

    /// The schema with this id, from the cache or GetSchema.
    pub async fn schema(&self, schema_id: &str) -> Result<Arc<EventSchema>, PubSubError> {
        if let Some(s) = self.cached_schema(schema_id) {
            return Ok(s);
        }
        let req = proto::SchemaRequest { schema_id: schema_id.to_owned() };
        let info = self.unary(req, |mut g, r| async move { g.get_schema(r).await }).await?;
        let schema = Arc::new(
            EventSchema::parse(schema_id, &info.schema_json)
                .map_err(|message| PubSubError::Decode { schema_id: schema_id.to_owned(), message })?,
        );
        self.lock_schemas().insert(schema_id.to_owned(), schema.clone());
        Ok(schema)
    }

    fn lock_schemas(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Arc<EventSchema>>> {
        self.inner.schemas.lock()
    }

    fn cached_schema(&self, id: &str) -> Option<Arc<EventSchema>> {
        self.lock_schemas().get(id).cloned()
    }

    /// Decodes one received event.
    pub(crate) async fn decode(&self, e: proto::ConsumerEvent) -> Result<Event, PubSubError> {
        let producer = e.event.unwrap_or_default();
        let schema = self.schema(&producer.schema_id).await?;
        let decode_err = |message: String| PubSubError::Decode { schema_id: producer.schema_id.clone(), message };
        let mut payload = schema.decode(&producer.payload).map_err(decode_err)?;
        let header = match payload.remove("ChangeEventHeader") {
            Some(Value::Object(h)) => Some(change_header(&schema, &h).map_err(decode_err)?),
            _ => None,
        };
        Ok(Event {
            replay_id: ReplayId(e.replay_id),
            schema_id: producer.schema_id,
            event_id: producer.id,
            payload,
            header,
        })
    }

    /// Subscribes to `topic` from `from`; see [`Subscription`].
    pub fn subscribe(&self, topic: &str, from: ReplayFrom) -> Subscription {
        Subscription::start(self.clone(), topic.to_owned(), from, None)
    }

    /// Subscribes and calls `checkpoint` with each event's replay id once the caller has
    /// handled it (when it asks for the next event), and with keep-alives' replay ids.
    pub fn subscribe_with_checkpoint(
        &self,
        topic: &str,
        from: ReplayFrom,
        checkpoint: Arc<dyn Checkpoint>,
    ) -> Subscription {
        Subscription::start(self.clone(), topic.to_owned(), from, Some(checkpoint))
    }

    async fn producer_events(
        &self,
        topic: &str,
        events: Vec<PublishEvent>,
    ) -> Result<(String, Vec<proto::ProducerEvent>), PubSubError> {
        let info = self.get_topic(topic).await?;
        if !info.can_publish {
            return Err(PubSubError::InvalidInput(format!("{topic} cannot be published to (only /event/… topics)")));
        }
        let schema = self.schema(&info.schema_id).await?;
        let now = self.inner.clock.now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let payload = schema
                .encode(&e.data, now)
                .map_err(|m| PubSubError::InvalidInput(format!("the event does not fit {topic}'s schema: {m}")))?;
            out.push(proto::ProducerEvent {
                id: e.correlation_key.unwrap_or_else(random_key),
                schema_id: info.schema_id.clone(),
                payload,
                headers: Vec::new(),
            });
        }
        Ok((info.schema_id, out))
    }

    /// Publishes platform events in one call; one outcome per event, in order.
    pub async fn publish(&self, topic: &str, events: Vec<PublishEvent>) -> Result<Vec<Published>, PubSubError> {
        let (_, events) = self.producer_events(topic, events).await?;
        let req = proto::PublishRequest { topic_name: topic.to_owned(), events, auth_refresh: String::new() };
        let resp = self.unary(req, |mut g, r| async move { g.publish(r).await }).await?;
        Ok(resp.results.into_iter().map(published).collect())
    }

    /// Opens a PublishStream to `topic`: send batches with [`PublishStream::send`], read
    /// outcomes (matched by correlation key) with [`PublishStream::next`].
    pub async fn publish_stream(&self, topic: &str) -> Result<PublishStream, PubSubError> {
        let call = self.call().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let req = self.authorize(&call.token, tokio_stream::wrappers::ReceiverStream::new(rx))?;
        let mut grpc = call.grpc;
        let responses = match grpc.publish_stream(req).await {
            Ok(r) => r.into_inner(),
            Err(status) => {
                let failure = classify(&status, &self.inner.endpoint, None);
                if matches!(failure, Failure::Auth(_)) {
                    self.inner.provider.invalidate(&call.token.access_token);
                }
                return Err(match failure {
                    Failure::Auth(e) | Failure::Retry(e) | Failure::Fatal(e) => e,
                });
            }
        };
        Ok(PublishStream { client: self.clone(), topic: topic.to_owned(), tx, responses, first: true })
    }
}

/// An open PublishStream. Salesforce closes it when nothing is published for 70 s.
#[derive(Debug)]
pub struct PublishStream {
    client: PubSubClient,
    topic: String,
    tx: tokio::sync::mpsc::Sender<proto::PublishRequest>,
    responses: tonic::Streaming<proto::PublishResponse>,
    first: bool,
}

impl PublishStream {
    /// Sends one batch; returns the correlation keys, in order, to match outcomes with.
    pub async fn send(&mut self, events: Vec<PublishEvent>) -> Result<Vec<String>, PubSubError> {
        let (_, events) = self.client.producer_events(&self.topic, events).await?;
        let keys = events.iter().map(|e| e.id.clone()).collect();
        // The topic is named in the first request only, as the API allows.
        let topic_name = if self.first { self.topic.clone() } else { String::new() };
        self.first = false;
        self.tx.send(proto::PublishRequest { topic_name, events, auth_refresh: String::new() }).await.map_err(
            |_| PubSubError::Transport {
                endpoint: self.client.inner.endpoint.clone(),
                message: "the publish stream is closed".into(),
            },
        )?;
        Ok(keys)
    }

    /// The outcomes of the next answered batch; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Result<Vec<Published>, PubSubError>> {
        match self.responses.message().await {
            Ok(Some(r)) => Some(Ok(r.results.into_iter().map(published).collect())),
            Ok(None) => None,
            Err(status) => Some(Err(match classify(&status, &self.client.inner.endpoint, None) {
                Failure::Auth(e) | Failure::Retry(e) | Failure::Fatal(e) => e,
            })),
        }
    }
}

fn published(r: proto::PublishResult) -> Published {
    Published {
        correlation_key: r.correlation_key,
        result: match r.error {
            Some(e) => Err(e.msg),
            None => Ok(ReplayId(r.replay_id)),
        },
    }
}

fn random_key() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

fn change_header(schema: &EventSchema, h: &Map<String, Value>) -> Result<ChangeHeader, String> {
    let text = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let int = |k: &str| h.get(k).and_then(Value::as_i64).unwrap_or_default();
    let list = |k: &str| -> Vec<String> {
        h.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    Ok(ChangeHeader {
        entity_name: text("entityName"),
        record_ids: list("recordIds"),
        change_type: text("changeType"),
        change_origin: text("changeOrigin"),
        transaction_key: text("transactionKey"),
        sequence_number: int("sequenceNumber"),
        commit_timestamp: int("commitTimestamp"),
        commit_number: int("commitNumber"),
        commit_user: text("commitUser"),
        changed_fields: schema.expand_bitmaps(&list("changedFields"))?,
        nulled_fields: schema.expand_bitmaps(&list("nulledFields"))?,
        diff_fields: schema.expand_bitmaps(&list("diffFields"))?,
    })
}
