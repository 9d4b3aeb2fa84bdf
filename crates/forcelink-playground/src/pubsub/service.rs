//! The `eventbus.v1.PubSub` RPCs. Every call carries `accesstoken`, `instanceurl` and
//! `tenantid` metadata, checked like the REST API's bearer token; errors are a gRPC status
//! with an `error-code` trailer, as Salesforce sends them.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};

use super::proto::pub_sub_server::PubSub;
use super::proto::{
    ConsumerEvent, Error as PublishError, ErrorCode, FetchRequest, FetchResponse, ProducerEvent, PublishRequest,
    PublishResponse, PublishResult, ReplayPreset, SchemaInfo, SchemaRequest, TopicInfo, TopicRequest,
};
use super::{IDLE_CLOSE, MAX_OUTSTANDING};
use crate::events::{FaultKind, NewEvent, StoredEvent, Topic, replay_bytes, uuid};
use crate::state::Shared;

/// Error codes Salesforce puts in the `error-code` trailer (Pub/Sub API guide, "Handling Errors").
pub(crate) mod codes {
    pub(crate) const AUTH: &str = "sfdc.platform.eventbus.grpc.service.auth.error";
    pub(crate) const REPLAY_CORRUPTED: &str = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
    pub(crate) const REPLAY_INVALID: &str = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed";
    /// UNCONFIRMED: the code Salesforce gives an unknown topic.
    pub(crate) const TOPIC_NOT_FOUND: &str = "sfdc.platform.eventbus.grpc.topic.not.found";
    /// UNCONFIRMED: the code for a topic changed within one stream.
    pub(crate) const TOPIC_MISMATCH: &str = "sfdc.platform.eventbus.grpc.subscription.topic.mismatch";
    /// UNCONFIRMED: the code for a schema id that does not exist.
    pub(crate) const SCHEMA_NOT_FOUND: &str = "sfdc.platform.eventbus.grpc.schema.not.found";
    /// UNCONFIRMED: publishing to a topic that is not a platform event.
    pub(crate) const NOT_PUBLISHABLE: &str = "sfdc.platform.eventbus.grpc.publish.not.allowed";
}

/// A gRPC status with the `error-code` and `rpcId` trailers.
pub(crate) fn status(code: Code, error_code: &str, message: impl Into<String>) -> Status {
    let mut md = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(error_code) {
        md.insert("error-code", v);
    }
    if let Ok(v) = MetadataValue::try_from(uuid().as_str()) {
        md.insert("rpcid", v);
    }
    Status::with_metadata(code, message, md)
}

fn auth_error() -> Status {
    status(
        Code::Unauthenticated,
        codes::AUTH,
        "An error occurred while trying to authenticate. Verify your credentials and try again.",
    )
}

/// The Pub/Sub service over the playground's state.
#[derive(Debug, Clone)]
pub(crate) struct PubSubService {
    pub(crate) pg: Shared,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl PubSubService {
    /// Checks the three auth headers; returns the access token.
    fn authenticate(&self, md: &MetadataMap) -> Result<String, Status> {
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
        let (Some(token), Some(instance), Some(tenant)) = (get("accesstoken"), get("instanceurl"), get("tenantid"))
        else {
            return Err(auth_error());
        };
        if instance.trim_end_matches('/') != self.pg.instance_url.trim_end_matches('/') {
            return Err(auth_error());
        }
        if tenant != self.pg.org_id && tenant != self.pg.org_id15() {
            return Err(auth_error());
        }
        let now = self.pg.now_ms();
        let mut rt = self.pg.rt();
        if rt.live_access(token, now).is_none() {
            return Err(auth_error());
        }
        rt.stats.api_requests += 1;
        Ok(token.to_owned())
    }

    fn topic(&self, name: &str) -> Result<Topic, Status> {
        self.pg.events.topic(name).ok_or_else(|| {
            status(
                Code::NotFound,
                codes::TOPIC_NOT_FOUND,
                format!("Topic {name} not found. Check the topic name and that you have access to it."),
            )
        })
    }

    fn schema_id_of(&self, topic: &Topic) -> String {
        let c = &self.pg.events.catalog;
        match topic {
            // The all-changes channel mixes schemas; its TopicInfo names none.
            Topic::AllChanges => String::new(),
            Topic::Changes(o) => c.change[*o].id.clone(),
            Topic::Platform(t) => c.platform.get(t).map(|s| s.id.clone()).unwrap_or_default(),
        }
    }

    /// Publishes one batch to a platform-event topic.
    fn publish_batch(&self, req: PublishRequest, topic_name: &str) -> Result<PublishResponse, Status> {
        let topic = self.topic(topic_name)?;
        let Topic::Platform(t) = &topic else {
            return Err(status(
                Code::PermissionDenied,
                codes::NOT_PUBLISHABLE,
                format!("Publishing to {topic_name} is not allowed: only platform events (/event/…) can be published"),
            ));
        };
        let Some(schema) = self.pg.events.catalog.platform.get(t).cloned() else {
            return Err(self.topic(topic_name).err().unwrap_or_else(|| Status::internal("no schema")));
        };
        let now = self.pg.now_ms();
        let mut results = Vec::with_capacity(req.events.len());
        let mut accepted = Vec::new();
        for e in req.events {
            let id = if e.id.is_empty() { uuid() } else { e.id.clone() };
            let check = if e.schema_id != schema.id {
                Err(format!("schema id {:?} is not the topic's schema {}", e.schema_id, schema.id))
            } else {
                schema.check_payload(&e.payload)
            };
            match check {
                Ok(()) => {
                    accepted.push(results.len());
                    results.push(PublishResult { replay_id: Vec::new(), error: None, correlation_key: id.clone() });
                    let new = NewEvent {
                        object: None,
                        platform_topic: Some(t.clone()),
                        schema_id: schema.id.clone(),
                        id,
                        payload: e.payload,
                    };
                    let replay = self.pg.events.append(now, vec![new]);
                    if let (Some(i), Some(r)) = (accepted.last(), replay.first()) {
                        results[*i].replay_id = replay_bytes(*r);
                    }
                }
                Err(msg) => results.push(PublishResult {
                    replay_id: Vec::new(),
                    error: Some(PublishError { code: ErrorCode::Publish as i32, msg }),
                    correlation_key: id,
                }),
            }
        }
        Ok(PublishResponse { results, schema_id: schema.id.clone(), rpc_id: uuid() })
    }

    async fn apply_delay(&self) {
        if let Some(f) = self.pg.events.take_fault(FaultKind::Delay) {
            tokio::time::sleep(std::time::Duration::from_millis(f.delay_ms)).await;
        }
    }
}

#[tonic::async_trait]
impl PubSub for PubSubService {
    async fn get_topic(&self, request: Request<TopicRequest>) -> Result<Response<TopicInfo>, Status> {
        self.authenticate(request.metadata())?;
        self.apply_delay().await;
        let name = request.into_inner().topic_name;
        let topic = self.topic(&name)?;
        Ok(Response::new(TopicInfo {
            topic_name: name,
            tenant_guid: self.pg.org_id.clone(),
            can_publish: matches!(topic, Topic::Platform(_)),
            can_subscribe: true,
            schema_id: self.schema_id_of(&topic),
            rpc_id: uuid(),
        }))
    }

    async fn get_schema(&self, request: Request<SchemaRequest>) -> Result<Response<SchemaInfo>, Status> {
        self.authenticate(request.metadata())?;
        self.apply_delay().await;
        let id = request.into_inner().schema_id;
        let Some(s) = self.pg.events.catalog.by_id.get(&id) else {
            return Err(status(Code::NotFound, codes::SCHEMA_NOT_FOUND, format!("Schema {id} not found")));
        };
        Ok(Response::new(SchemaInfo { schema_json: s.json.clone(), schema_id: s.id.clone(), rpc_id: uuid() }))
    }

    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<PublishResponse>, Status> {
        self.authenticate(request.metadata())?;
        self.apply_delay().await;
        let req = request.into_inner();
        let name = req.topic_name.clone();
        self.publish_batch(req, &name).map(Response::new)
    }

    type PublishStreamStream = BoxStream<PublishResponse>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        self.authenticate(request.metadata())?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        tokio::spawn(async move {
            let mut topic: Option<String> = None;
            while let Ok(Some(req)) = inbound.message().await {
                let name = match (&topic, req.topic_name.as_str()) {
                    (None, n) => {
                        topic = Some(n.to_owned());
                        n.to_owned()
                    }
                    (Some(t), n) if n.is_empty() || n == t => t.clone(),
                    (Some(t), n) => {
                        let msg = format!("The topic {n} differs from the stream's topic {t}");
                        let _ = tx.send(Err(status(Code::InvalidArgument, codes::TOPIC_MISMATCH, msg))).await;
                        return;
                    }
                };
                this.apply_delay().await;
                let answer = this.publish_batch(req, &name);
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type SubscribeStream = BoxStream<FetchResponse>;

    async fn subscribe(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let token = self.authenticate(request.metadata())?;
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            {
                let mut st = this.pg.events.state();
                st.stats.subscribe_calls += 1;
                st.stats.open_streams += 1;
            }
            if let Err(e) = this.subscription(inbound, &tx, &token).await {
                let _ = tx.send(Err(e)).await;
            }
            this.pg.events.state().stats.open_streams -= 1;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type Outbox = mpsc::Sender<Result<FetchResponse, Status>>;

impl PubSubService {
    /// Runs one Subscribe stream until the client leaves (`Ok`) or an error ends it.
    async fn subscription(&self, mut inbound: Streaming<FetchRequest>, tx: &Outbox, token: &str) -> Result<(), Status> {
        let bus = &self.pg.events;
        let Some(first) = inbound.message().await? else { return Ok(()) };
        let topic_name = first.topic_name.clone();
        let topic = self.topic(&topic_name)?;
        if bus.take_fault(FaultKind::CorruptedReplayId).is_some() {
            return Err(corrupted());
        }
        let mut cursor = self.start_cursor(&first)?;
        let mut pending = 0;
        self.request_more(&mut pending, first.num_requested);
        let mut wake = bus.subscribe_wake();
        let mut last_sent = Instant::now();
        let mut zero_since = (pending == 0).then(Instant::now);
        loop {
            if bus.take_fault(FaultKind::AuthError).is_some() {
                // The session ended under the stream: the token no longer works anywhere.
                self.pg.rt().access_tokens.remove(token);
                return Err(auth_error());
            }
            if bus.take_fault(FaultKind::DropStream).is_some() {
                return Err(Status::unavailable("the stream was dropped (playground fault)"));
            }
            if pending > 0 {
                let batch = bus.after(cursor, &topic, pending as usize, self.pg.now_ms());
                if !batch.is_empty() {
                    self.apply_delay().await;
                    cursor = batch.last().map_or(cursor, |e| e.replay);
                    pending -= batch.len() as i32;
                    bus.state().stats.events_delivered += batch.len() as u64;
                    let response = FetchResponse {
                        events: batch.iter().map(consumer_event).collect(),
                        latest_replay_id: replay_bytes(cursor),
                        rpc_id: uuid(),
                        pending_num_requested: pending,
                    };
                    if tx.send(Ok(response)).await.is_err() {
                        return Ok(());
                    }
                    last_sent = Instant::now();
                    if pending == 0 {
                        zero_since = Some(Instant::now());
                    }
                    continue;
                }
            }
            let keepalive_at = last_sent + bus.state().keepalive;
            let idle_at = zero_since.map(|t| t + IDLE_CLOSE);
            tokio::select! {
                m = inbound.message() => match m {
                    Ok(Some(req)) => {
                        if !req.topic_name.is_empty() && req.topic_name != topic_name {
                            return Err(status(
                                Code::InvalidArgument,
                                codes::TOPIC_MISMATCH,
                                format!("The topic {} differs from the stream's topic {topic_name}", req.topic_name),
                            ));
                        }
                        self.request_more(&mut pending, req.num_requested);
                        if pending > 0 {
                            zero_since = None;
                        }
                    }
                    // The client closed its side or went away.
                    Ok(None) | Err(_) => return Ok(()),
                },
                changed = wake.changed() => if changed.is_err() { return Ok(()) },
                _ = sleep_until(keepalive_at), if pending > 0 => {
                    // Nothing to deliver: everything up to the bus's latest replay id was seen.
                    // An event of this topic published since the last look goes out first.
                    let Some(latest) = bus.quiet_position(cursor, &topic) else { continue };
                    cursor = latest;
                    let keepalive = FetchResponse {
                        events: Vec::new(),
                        latest_replay_id: replay_bytes(latest),
                        rpc_id: uuid(),
                        pending_num_requested: pending,
                    };
                    if tx.send(Ok(keepalive)).await.is_err() {
                        return Ok(());
                    }
                    last_sent = Instant::now();
                }
                _ = sleep_until(idle_at.unwrap_or(keepalive_at)), if idle_at.is_some() => {
                    return Err(Status::cancelled("no FetchRequest within 60 seconds of the last requested event"));
                }
            }
        }
    }

    /// `num_requested` is additive; at most [`MAX_OUTSTANDING`] are outstanding.
    fn request_more(&self, pending: &mut i32, requested: i32) {
        let wanted = pending.saturating_add(requested.max(0));
        let mut st = self.pg.events.state();
        if wanted > MAX_OUTSTANDING {
            st.stats.clamped_requests += 1;
        }
        *pending = wanted.min(MAX_OUTSTANDING);
        st.stats.max_outstanding = st.stats.max_outstanding.max(*pending);
    }

    /// Where a stream starts, from the first request's replay preset.
    fn start_cursor(&self, first: &FetchRequest) -> Result<u64, Status> {
        let mut st = self.pg.events.state();
        st.prune(self.pg.now_ms());
        match ReplayPreset::try_from(first.replay_preset).unwrap_or(ReplayPreset::Latest) {
            ReplayPreset::Latest => Ok(st.last_replay),
            ReplayPreset::Earliest => Ok(st.earliest_cursor()),
            ReplayPreset::Custom => {
                let bytes: [u8; 8] = first.replay_id.as_slice().try_into().map_err(|_| corrupted())?;
                let replay = u64::from_be_bytes(bytes);
                if replay > st.last_replay || replay < st.earliest_cursor() {
                    return Err(status(
                        Code::InvalidArgument,
                        codes::REPLAY_INVALID,
                        format!(
                            "The replay ID validation failed: the replay ID is not in the retention window ({} to {}).",
                            st.earliest_cursor(),
                            st.last_replay
                        ),
                    ));
                }
                Ok(replay)
            }
        }
    }
}

fn corrupted() -> Status {
    status(
        Code::InvalidArgument,
        codes::REPLAY_CORRUPTED,
        "The Replay ID validation failed. Ensure that the Replay ID is valid.",
    )
}

fn consumer_event(e: &Arc<StoredEvent>) -> ConsumerEvent {
    ConsumerEvent {
        event: Some(ProducerEvent {
            id: e.id.clone(),
            schema_id: e.schema_id.clone(),
            payload: e.payload.clone(),
            headers: Vec::new(),
        }),
        replay_id: replay_bytes(e.replay),
    }
}
