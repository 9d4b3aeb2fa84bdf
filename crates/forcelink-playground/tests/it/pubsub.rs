//! The Pub/Sub API over real gRPC, with a minimal client written here from the published
//! interface (message and field numbers transcribed independently of the playground's).

use std::time::Duration;

use apache_avro::types::Value as Avro;
use forcelink_test_support::PlaygroundHandle;
use http::uri::PathAndQuery;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http;
use tonic::{Code, Request, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::common::{Api, admin_api, client_credentials, spawn_playground};

#[derive(Clone, PartialEq, prost::Message)]
struct TopicRequest {
    #[prost(string, tag = "1")]
    topic_name: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct TopicInfo {
    #[prost(string, tag = "1")]
    topic_name: String,
    #[prost(string, tag = "2")]
    tenant_guid: String,
    #[prost(bool, tag = "3")]
    can_publish: bool,
    #[prost(bool, tag = "4")]
    can_subscribe: bool,
    #[prost(string, tag = "5")]
    schema_id: String,
    #[prost(string, tag = "6")]
    rpc_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct SchemaRequest {
    #[prost(string, tag = "1")]
    schema_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct SchemaInfo {
    #[prost(string, tag = "1")]
    schema_json: String,
    #[prost(string, tag = "2")]
    schema_id: String,
}
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProducerEvent {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(string, tag = "2")]
    pub(crate) schema_id: String,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) payload: Vec<u8>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ConsumerEvent {
    #[prost(message, optional, tag = "1")]
    pub(crate) event: Option<ProducerEvent>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) replay_id: Vec<u8>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct FetchRequest {
    #[prost(string, tag = "1")]
    pub(crate) topic_name: String,
    #[prost(int32, tag = "2")]
    pub(crate) replay_preset: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) replay_id: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub(crate) num_requested: i32,
}
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct FetchResponse {
    #[prost(message, repeated, tag = "1")]
    pub(crate) events: Vec<ConsumerEvent>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) latest_replay_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub(crate) rpc_id: String,
    #[prost(int32, tag = "4")]
    pub(crate) pending_num_requested: i32,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PublishRequest {
    #[prost(string, tag = "1")]
    topic_name: String,
    #[prost(message, repeated, tag = "2")]
    events: Vec<ProducerEvent>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PublishError {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    msg: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PublishResult {
    #[prost(bytes = "vec", tag = "1")]
    replay_id: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    error: Option<PublishError>,
    #[prost(string, tag = "3")]
    correlation_key: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PublishResponse {
    #[prost(message, repeated, tag = "1")]
    results: Vec<PublishResult>,
    #[prost(string, tag = "2")]
    schema_id: String,
}

/// Calls the Pub/Sub part of the control API; returns the status and the JSON answer.
pub(crate) async fn control(pg: &PlaygroundHandle, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/pubsub{path}", pg.info.control_url))
        .bearer_auth(&pg.info.control_key);
    if !body.is_null() {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn arm(pg: &PlaygroundHandle, fault: Value) {
    let (status, body) = control(pg, reqwest::Method::POST, "/faults", fault).await;
    assert_eq!(status, 201, "{body}");
}

pub(crate) async fn set_keepalive_ms(pg: &PlaygroundHandle, ms: u64) {
    let (status, body) = control(pg, reqwest::Method::PATCH, "/settings", json!({"keepalive_ms": ms})).await;
    assert_eq!((status, &body["keepalive_ms"]), (200, &json!(ms)));
}

/// Waits for a keep-alive: proof that the stream is set up and has nothing to deliver.
async fn next_keepalive(stream: &mut Streaming<FetchResponse>) -> FetchResponse {
    let r = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an answer within 10 s")
        .expect("no error")
        .expect("stream open");
    assert!(r.events.is_empty(), "expected a keep-alive, got {} events", r.events.len());
    r
}

pub(crate) const LATEST: i32 = 0;
pub(crate) const EARLIEST: i32 = 1;
pub(crate) const CUSTOM: i32 = 2;

/// A bare gRPC client with the three auth headers.
pub(crate) struct PubSub {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    token: String,
    instance_url: String,
    tenant: String,
}

impl PubSub {
    pub(crate) async fn connect(pg: &PlaygroundHandle) -> Self {
        let token = client_credentials(pg).await;
        let id_url = token["id"].as_str().unwrap();
        let tenant = id_url.split('/').rev().nth(1).unwrap().to_owned();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", pg.info.pubsub_endpoint))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            grpc: tonic::client::Grpc::new(channel),
            token: token["access_token"].as_str().unwrap().to_owned(),
            instance_url: pg.info.instance_url.clone(),
            tenant,
        }
    }

    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        let md = r.metadata_mut();
        md.insert("accesstoken", self.token.parse().unwrap());
        md.insert("instanceurl", self.instance_url.parse().unwrap());
        md.insert("tenantid", self.tenant.parse().unwrap());
        r
    }

    async fn unary<Q, A>(&mut self, path: &'static str, req: Request<Q>) -> Result<A, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc.ready().await.unwrap();
        let codec: ProstCodec<Q, A> = ProstCodec::default();
        self.grpc.unary(req, PathAndQuery::from_static(path), codec).await.map(|r| r.into_inner())
    }

    async fn get_topic(&mut self, topic: &str) -> Result<TopicInfo, Status> {
        let req = self.request(TopicRequest { topic_name: topic.into() });
        self.unary("/eventbus.v1.PubSub/GetTopic", req).await
    }

    pub(crate) async fn schema(&mut self, id: &str) -> apache_avro::Schema {
        let req = self.request(SchemaRequest { schema_id: id.into() });
        let info: SchemaInfo = self.unary("/eventbus.v1.PubSub/GetSchema", req).await.unwrap();
        assert_eq!(info.schema_id, id);
        apache_avro::Schema::parse_str(&info.schema_json).unwrap()
    }

    async fn publish(&mut self, topic: &str, events: Vec<ProducerEvent>) -> Result<PublishResponse, Status> {
        let req = self.request(PublishRequest { topic_name: topic.into(), events });
        self.unary("/eventbus.v1.PubSub/Publish", req).await
    }

    /// Opens a Subscribe stream with `first`; more requests go through the returned sender.
    pub(crate) async fn subscribe(
        &mut self,
        first: FetchRequest,
    ) -> Result<(mpsc::Sender<FetchRequest>, Streaming<FetchResponse>), Status> {
        let (tx, rx) = mpsc::channel(8);
        tx.send(first).await.unwrap();
        let req = self.request(ReceiverStream::new(rx));
        self.grpc.ready().await.unwrap();
        let codec: ProstCodec<FetchRequest, FetchResponse> = ProstCodec::default();
        let stream =
            self.grpc.streaming(req, PathAndQuery::from_static("/eventbus.v1.PubSub/Subscribe"), codec).await?;
        Ok((tx, stream.into_inner()))
    }
}

pub(crate) fn fetch(topic: &str, preset: i32, replay: Vec<u8>, n: i32) -> FetchRequest {
    FetchRequest { topic_name: topic.into(), replay_preset: preset, replay_id: replay, num_requested: n }
}

/// Next response with events, skipping keep-alives; fails after 10 s.
pub(crate) async fn next_events(stream: &mut Streaming<FetchResponse>) -> FetchResponse {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an answer within 10 s")
            .expect("no error")
            .expect("stream open");
        if !r.events.is_empty() {
            return r;
        }
    }
}

pub(crate) fn error_code(s: &Status) -> String {
    s.metadata().get("error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

pub(crate) fn field<'a>(record: &'a Avro, name: &str) -> &'a Avro {
    let Avro::Record(fields) = record else { panic!("not a record: {record:?}") };
    let v = &fields.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}")).1;
    match v {
        Avro::Union(_, inner) => inner,
        v => v,
    }
}

pub(crate) fn strings(v: &Avro) -> Vec<String> {
    let Avro::Array(items) = v else { panic!("not an array: {v:?}") };
    items.iter().map(|i| if let Avro::String(s) = i { s.clone() } else { panic!("not a string") }).collect()
}

pub(crate) fn decode(schema: &apache_avro::Schema, e: &ConsumerEvent) -> Avro {
    let payload = &e.event.as_ref().unwrap().payload;
    apache_avro::from_avro_datum(schema, &mut &payload[..], None).unwrap()
}

/// Position of a top-level field in a record schema (what the bitmaps count).
pub(crate) fn position(schema: &apache_avro::Schema, name: &str) -> usize {
    let apache_avro::Schema::Record(r) = schema else { panic!("not a record schema") };
    r.fields.iter().position(|f| f.name == name).unwrap()
}

pub(crate) async fn create_account(api: &Api, name: &str) -> String {
    api.create("Account", json!({"Name": name, "BillingCity": "Lyon"})).await
}

#[tokio::test]
async fn topics_exist_with_stable_schemas_and_unknown_ones_are_not_found() {
    let pg = spawn_playground().await;
    let mut ps = PubSub::connect(&pg).await;
    let account = ps.get_topic("/data/AccountChangeEvent").await.unwrap();
    assert!(account.can_subscribe && !account.can_publish);
    assert_eq!(account.tenant_guid, ps.tenant);
    assert!(!account.rpc_id.is_empty());
    let again = ps.get_topic("/data/AccountChangeEvent").await.unwrap();
    assert_eq!(account.schema_id, again.schema_id, "schema ids are stable");
    let custom = ps.get_topic("/data/Invoice__ChangeEvent").await.unwrap();
    assert_ne!(custom.schema_id, account.schema_id);
    ps.get_topic("/data/ChangeEvents").await.unwrap();
    let notice = ps.get_topic("/event/Forcelink_Notice__e").await.unwrap();
    assert!(notice.can_publish);
    let schema = ps.schema(&notice.schema_id).await;
    assert_eq!(position(&schema, "Message__c"), 2);

    let err = ps.get_topic("/event/Nope__e").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(!error_code(&err).is_empty());
    pg.shutdown().await;
}

#[tokio::test]
async fn every_call_needs_a_live_token_for_this_org_and_instance() {
    let pg = spawn_playground().await;
    let mut ps = PubSub::connect(&pg).await;
    let good = (ps.token.clone(), ps.instance_url.clone(), ps.tenant.clone());
    for (token, instance, tenant) in [
        ("00Dbogus!token".to_owned(), good.1.clone(), good.2.clone()),
        (good.0.clone(), "https://evil.example".to_owned(), good.2.clone()),
        (good.0.clone(), good.1.clone(), "00D000000000000AAA".to_owned()),
    ] {
        (ps.token, ps.instance_url, ps.tenant) = (token, instance, tenant);
        let err = ps.get_topic("/data/AccountChangeEvent").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.service.auth.error");
        let err = ps.subscribe(fetch("/data/AccountChangeEvent", LATEST, vec![], 1)).await.err().unwrap();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // Without any headers at all.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", pg.info.pubsub_endpoint))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut bare = tonic::client::Grpc::new(channel);
    bare.ready().await.unwrap();
    let codec: ProstCodec<TopicRequest, TopicInfo> = ProstCodec::default();
    let err = bare
        .unary(
            Request::new(TopicRequest { topic_name: "/data/AccountChangeEvent".into() }),
            PathAndQuery::from_static("/eventbus.v1.PubSub/GetTopic"),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    pg.shutdown().await;
}

#[tokio::test]
async fn rest_create_update_delete_emit_change_events_with_header_and_bitmaps() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let mut ps = PubSub::connect(&pg).await;
    // A fresh org has no events yet: EARLIEST starts before the first write, whenever the
    // stream is set up.
    let (_tx, mut stream) = ps.subscribe(fetch("/data/AccountChangeEvent", EARLIEST, vec![], 10)).await.unwrap();
    let id = create_account(&api, "Acme").await;
    let created = next_events(&mut stream).await;
    assert_eq!(created.events.len(), 1);
    assert_eq!(created.events[0].replay_id.len(), 8, "replay ids are 8-byte integers");
    assert_eq!(created.latest_replay_id, created.events[0].replay_id);
    assert_eq!(created.pending_num_requested, 9);
    let schema_id = created.events[0].event.as_ref().unwrap().schema_id.clone();
    let schema = ps.schema(&schema_id).await;
    let v = decode(&schema, &created.events[0]);
    let header = field(&v, "ChangeEventHeader");
    assert_eq!(field(header, "entityName"), &Avro::String("Account".into()));
    assert_eq!(strings(field(header, "recordIds")), vec![id.clone()]);
    assert_eq!(field(header, "changeType"), &Avro::Enum(0, "CREATE".into()));
    assert!(matches!(field(header, "changeOrigin"), Avro::String(s) if s.starts_with("com/salesforce/api/rest/66.0")));
    assert!(matches!(field(header, "commitUser"), Avro::String(s) if s.starts_with("005")));
    assert_eq!(field(&v, "Name"), &Avro::String("Acme".into()));
    assert_eq!(field(field(&v, "BillingAddress"), "City"), &Avro::String("Lyon".into()));

    let (status, _) = api
        .patch(&format!("sobjects/Account/{id}"), &json!({"Phone": "+33 1", "BillingCity": "Paris", "Website": null}))
        .await;
    assert!(status.is_success());
    let updated = next_events(&mut stream).await;
    let v = decode(&schema, &updated.events[0]);
    let header = field(&v, "ChangeEventHeader");
    assert_eq!(field(header, "changeType"), &Avro::Enum(1, "UPDATE".into()));
    let changed = strings(field(header, "changedFields"));
    let top = u128::from_str_radix(changed[0].trim_start_matches("0x"), 16).unwrap();
    for name in ["Phone", "Website", "LastModifiedDate"] {
        assert!(top & (1 << position(&schema, name)) != 0, "{name} in {changed:?}");
    }
    assert_eq!(top & (1 << position(&schema, "Name")), 0, "Name did not change: {changed:?}");
    let billing = position(&schema, "BillingAddress");
    let compound = changed.iter().find(|c| c.starts_with(&format!("{billing}-"))).expect("a compound entry");
    // City is the second part of an address.
    assert_eq!(compound, &format!("{billing}-0x02"));
    let nulled = strings(field(header, "nulledFields"));
    let nulled_top = u128::from_str_radix(nulled[0].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(nulled_top, 1 << position(&schema, "Website"));
    assert_eq!(field(&v, "Phone"), &Avro::String("+33 1".into()));
    assert_eq!(field(&v, "Name"), &Avro::Null, "unchanged fields are null on UPDATE");

    let (status, _) = api.delete(&format!("sobjects/Account/{id}")).await;
    assert!(status.is_success());
    let deleted = next_events(&mut stream).await;
    let v = decode(&schema, &deleted.events[0]);
    assert_eq!(field(field(&v, "ChangeEventHeader"), "changeType"), &Avro::Enum(2, "DELETE".into()));
    assert_eq!(strings(field(field(&v, "ChangeEventHeader"), "recordIds")), vec![id]);
    pg.shutdown().await;
}

#[tokio::test]
async fn one_call_changing_many_records_alike_is_one_event_with_several_record_ids() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let a = create_account(&api, "A").await;
    let b = create_account(&api, "B").await;
    let mut ps = PubSub::connect(&pg).await;
    let (status, _) = api
        .patch(
            "composite/sobjects",
            &json!({"records": [
                {"attributes": {"type": "Account"}, "id": a, "Rating": "Hot"},
                {"attributes": {"type": "Account"}, "id": b, "Rating": "Hot"},
            ]}),
        )
        .await;
    assert!(status.is_success());
    let (_tx, mut stream) = ps.subscribe(fetch("/data/ChangeEvents", EARLIEST, vec![], 100)).await.unwrap();
    let mut events = Vec::new();
    while events.len() < 3 {
        events.extend(next_events(&mut stream).await.events);
    }
    let schema = ps.schema(&events[2].event.as_ref().unwrap().schema_id).await;
    let v = decode(&schema, &events[2]);
    let header = field(&v, "ChangeEventHeader");
    assert_eq!(field(header, "changeType"), &Avro::Enum(1, "UPDATE".into()));
    assert_eq!(strings(field(header, "recordIds")), vec![a, b]);
    assert_eq!(field(header, "sequenceNumber"), &Avro::Int(1));
    pg.shutdown().await;
}

#[tokio::test]
async fn replay_presets_custom_replay_and_corrupted_ids() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    for n in ["one", "two", "three"] {
        create_account(&api, n).await;
    }
    let mut ps = PubSub::connect(&pg).await;
    let topic = "/data/AccountChangeEvent";
    let (_tx, mut all) = ps.subscribe(fetch(topic, EARLIEST, vec![], 3)).await.unwrap();
    let mut events = Vec::new();
    while events.len() < 3 {
        events.extend(next_events(&mut all).await.events);
    }
    let ids: Vec<u64> = events.iter().map(|e| u64::from_be_bytes(e.replay_id.clone().try_into().unwrap())).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // After the first event: the second and third come, and only they.
    let (_tx, mut after) = ps.subscribe(fetch(topic, CUSTOM, events[0].replay_id.clone(), 5)).await.unwrap();
    let got = next_events(&mut after).await;
    assert_eq!(got.events[0].replay_id, events[1].replay_id);

    // A later preset in the same stream is ignored: a keep-alive comes, not the old events.
    set_keepalive_ms(&pg, 50).await;
    let (tx, mut latest) = ps.subscribe(fetch(topic, LATEST, vec![], 1)).await.unwrap();
    tx.send(fetch("", EARLIEST, vec![], 1)).await.unwrap();
    next_keepalive(&mut latest).await;
    create_account(&api, "four").await;
    let got = next_events(&mut latest).await;
    assert!(u64::from_be_bytes(got.events[0].replay_id.clone().try_into().unwrap()) > ids[2]);

    let err = match ps.subscribe(fetch(topic, CUSTOM, vec![1, 2, 3], 1)).await {
        Err(e) => e,
        Ok((_tx, mut s)) => s.message().await.unwrap_err(),
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted");

    let future = (ids[2] + 1000).to_be_bytes().to_vec();
    let err = match ps.subscribe(fetch(topic, CUSTOM, future, 1)).await {
        Err(e) => e,
        Ok((_tx, mut s)) => s.message().await.unwrap_err(),
    };
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed");
    pg.shutdown().await;
}

#[tokio::test]
async fn events_expire_after_72_hours_of_playground_time() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    create_account(&api, "old").await;
    pg.control.advance_clock(73 * 3600).await;
    let api = admin_api(&pg).await;
    let mut ps = PubSub::connect(&pg).await;
    let fresh = create_account(&api, "fresh").await;
    let (_tx, mut s) = ps.subscribe(fetch("/data/AccountChangeEvent", EARLIEST, vec![], 10)).await.unwrap();
    let got = next_events(&mut s).await;
    assert_eq!(got.events.len(), 1, "only the fresh event is retained");
    let schema = ps.schema(&got.events[0].event.as_ref().unwrap().schema_id).await;
    let v = decode(&schema, &got.events[0]);
    assert_eq!(strings(field(field(&v, "ChangeEventHeader"), "recordIds")), vec![fresh]);
    pg.shutdown().await;
}

#[tokio::test]
async fn keepalives_carry_the_latest_replay_id_at_the_set_interval() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    create_account(&api, "x").await;
    set_keepalive_ms(&pg, 50).await;
    let mut ps = PubSub::connect(&pg).await;
    let (_tx, mut s) = ps.subscribe(fetch("/event/Forcelink_Notice__e", LATEST, vec![], 5)).await.unwrap();
    let r = next_keepalive(&mut s).await;
    assert_eq!(r.pending_num_requested, 5);
    assert_eq!(r.latest_replay_id.len(), 8);
    assert!(u64::from_be_bytes(r.latest_replay_id.try_into().unwrap()) >= 1);
    pg.shutdown().await;
}

fn notice(schema: &apache_avro::Schema, schema_id: &str, id: &str, message: &str) -> ProducerEvent {
    let record = Avro::Record(vec![
        ("CreatedDate".into(), Avro::Union(1, Box::new(Avro::Long(1_700_000_000_000)))),
        ("CreatedById".into(), Avro::Union(1, Box::new(Avro::String("005000000000001AAA".into())))),
        ("Message__c".into(), Avro::Union(1, Box::new(Avro::String(message.into())))),
        ("Level__c".into(), Avro::Union(0, Box::new(Avro::Null))),
    ]);
    ProducerEvent {
        id: id.into(),
        schema_id: schema_id.into(),
        payload: apache_avro::to_avro_datum(schema, record).unwrap(),
    }
}

#[tokio::test]
async fn flow_control_publish_and_receive_platform_events() {
    let pg = spawn_playground().await;
    let mut ps = PubSub::connect(&pg).await;
    let topic = "/event/Forcelink_Notice__e";
    let info = ps.get_topic(topic).await.unwrap();
    let schema = ps.schema(&info.schema_id).await;
    let events: Vec<ProducerEvent> =
        (0..5).map(|i| notice(&schema, &info.schema_id, &format!("key-{i}"), &format!("m{i}"))).collect();
    let mut bad = notice(&schema, &info.schema_id, "key-bad", "x");
    bad.payload.truncate(3);
    let mut all = events.clone();
    all.push(bad);
    let published = ps.publish(topic, all).await.unwrap();
    assert_eq!(published.results.len(), 6);
    for (i, r) in published.results[..5].iter().enumerate() {
        assert_eq!(r.correlation_key, format!("key-{i}"));
        assert_eq!(r.replay_id.len(), 8);
        assert!(r.error.is_none());
    }
    assert!(published.results[5].error.is_some(), "a payload that does not decode is refused");

    // Two requested: exactly two delivered, then nothing more until asked.
    let (tx, mut s) = ps.subscribe(fetch(topic, EARLIEST, vec![], 2)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(next_events(&mut s).await.events);
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].event.as_ref().unwrap().id, "key-0");
    let v = decode(&schema, &got[1]);
    assert_eq!(field(&v, "Message__c"), &Avro::String("m1".into()));
    tx.send(fetch("", LATEST, vec![], 150)).await.unwrap();
    let more = next_events(&mut s).await;
    assert_eq!(more.events.len(), 3);
    assert_eq!(more.pending_num_requested, 97, "150 more were clamped to 100 outstanding");
    let (_, stats) = control(&pg, reqwest::Method::GET, "/stats", Value::Null).await;
    assert_eq!(stats["max_outstanding"], 100);
    assert_eq!(stats["clamped_requests"], 1);

    // A change-event topic cannot be published to.
    let err = ps.publish("/data/AccountChangeEvent", vec![]).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    pg.shutdown().await;
}

#[tokio::test]
async fn faults_end_streams_with_auth_error_or_drop_and_refuse_replay() {
    let pg = spawn_playground().await;
    let mut ps = PubSub::connect(&pg).await;
    let topic = "/data/AccountChangeEvent";
    let (_tx, mut s) = ps.subscribe(fetch(topic, LATEST, vec![], 5)).await.unwrap();
    arm(&pg, json!({"kind": "auth_error"})).await;
    let err = tokio::time::timeout(Duration::from_secs(10), s.message()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.service.auth.error");
    // The session is gone: the same token no longer works.
    assert_eq!(ps.get_topic(topic).await.unwrap_err().code(), Code::Unauthenticated);

    let mut ps = PubSub::connect(&pg).await;
    let (_tx, mut s) = ps.subscribe(fetch(topic, LATEST, vec![], 5)).await.unwrap();
    arm(&pg, json!({"kind": "drop_stream"})).await;
    let err = tokio::time::timeout(Duration::from_secs(10), s.message()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    arm(&pg, json!({"kind": "corrupted_replay_id"})).await;
    let err = match ps.subscribe(fetch(topic, LATEST, vec![], 1)).await {
        Err(e) => e,
        Ok((_tx, mut s)) => s.message().await.unwrap_err(),
    };
    assert_eq!(error_code(&err), "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted");
    // Armed once: the next subscription works.
    let (_tx, _s) = ps.subscribe(fetch(topic, LATEST, vec![], 1)).await.unwrap();

    let (status, _) = control(&pg, reqwest::Method::POST, "/faults", json!({"kind": "delay"})).await;
    assert_eq!(status, 400, "a delay fault without delay_ms is refused");
    pg.shutdown().await;
}
