//! Change events of the writes beyond plain REST rows: cascaded deletes, undelete (control API),
//! user administration, gap events and overflow events. Subscribes over gRPC with the minimal
//! client of `pubsub`, from the replay id the org had reached before the write under test, so
//! every event a test reads is one its own write caused.

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use forcelink_test_support::PlaygroundHandle;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::common::*;
use crate::pubsub::{
    CUSTOM, ConsumerEvent, EARLIEST, FetchRequest, FetchResponse, PubSub, arm, control, create_account, decode, fetch,
    field, next_events, strings,
};

/// The record id Salesforce puts in an overflow event.
const EMPTY_RECORD_ID: &str = "000000000000000AAA";

/// One decoded change event and the schema it was written with.
struct Event {
    value: Avro,
    schema: apache_avro::Schema,
}

impl Event {
    fn header(&self, name: &str) -> &Avro {
        field(field(&self.value, "ChangeEventHeader"), name)
    }
    fn change_type(&self) -> &str {
        match self.header("changeType") {
            Avro::Enum(_, s) => s,
            v => panic!("changeType is {v:?}"),
        }
    }
    fn entity(&self) -> &str {
        text(self.header("entityName"))
    }
    fn record_ids(&self) -> Vec<String> {
        strings(self.header("recordIds"))
    }
    fn origin(&self) -> &str {
        text(self.header("changeOrigin"))
    }
    fn user(&self) -> &str {
        text(self.header("commitUser"))
    }
    fn transaction(&self) -> &str {
        text(self.header("transactionKey"))
    }
    fn sequence(&self) -> i32 {
        match self.header("sequenceNumber") {
            Avro::Int(n) => *n,
            v => panic!("sequenceNumber is {v:?}"),
        }
    }
    /// The top-level fields named by element 0 of `changedFields`.
    fn changed(&self) -> Vec<String> {
        let list = strings(self.header("changedFields"));
        let Some(top) = list.first() else { return Vec::new() };
        let apache_avro::Schema::Record(r) = &self.schema else { panic!("not a record schema") };
        let digits: Vec<u32> = top.trim_start_matches("0x").chars().rev().map(|c| c.to_digit(16).unwrap()).collect();
        r.fields
            .iter()
            .enumerate()
            .filter(|(p, _)| digits.get(p / 4).is_some_and(|d| d & (1 << (p % 4)) != 0))
            .map(|(_, f)| f.name.clone())
            .collect()
    }
    fn value(&self, name: &str) -> &Avro {
        field(&self.value, name)
    }
    /// Every body field (all but the header) is null: a header-only event.
    fn body_is_empty(&self) -> bool {
        let Avro::Record(fields) = &self.value else { panic!("not a record") };
        fields
            .iter()
            .filter(|(n, _)| n != "ChangeEventHeader")
            .all(|(_, v)| matches!(v, Avro::Union(_, inner) if **inner == Avro::Null))
    }
    fn header_lists_are_empty(&self) -> bool {
        ["changedFields", "nulledFields", "diffFields"].iter().all(|n| strings(self.header(n)).is_empty())
    }
}

fn text(v: &Avro) -> &str {
    match v {
        Avro::String(s) => s,
        v => panic!("not a string: {v:?}"),
    }
}

/// A subscription to `/data/ChangeEvents` from where the org is now.
struct Changes {
    ps: PubSub,
    _tx: mpsc::Sender<FetchRequest>,
    stream: Streaming<FetchResponse>,
    pending: Vec<ConsumerEvent>,
    schemas: HashMap<String, apache_avro::Schema>,
}

impl Changes {
    async fn from_now(pg: &PlaygroundHandle) -> Self {
        let (status, stats) = control(pg, Method::GET, "/stats", Value::Null).await;
        assert_eq!(status, 200, "{stats}");
        let latest = stats["latest_replay_id"].as_u64().unwrap();
        let mut ps = PubSub::connect(pg).await;
        // No event yet: everything retained is everything from now.
        let first = match latest {
            0 => fetch("/data/ChangeEvents", EARLIEST, Vec::new(), 100),
            n => fetch("/data/ChangeEvents", CUSTOM, n.to_be_bytes().to_vec(), 100),
        };
        let (tx, stream) = ps.subscribe(first).await.unwrap();
        Self { ps, _tx: tx, stream, pending: Vec::new(), schemas: HashMap::new() }
    }

    /// The next `n` events, decoded; fails after 10 s without one.
    async fn next(&mut self, n: usize) -> Vec<Event> {
        while self.pending.len() < n {
            self.pending.extend(next_events(&mut self.stream).await.events);
        }
        let mut out = Vec::new();
        for e in self.pending.drain(..n).collect::<Vec<_>>() {
            let id = e.event.as_ref().unwrap().schema_id.clone();
            if !self.schemas.contains_key(&id) {
                let schema = self.ps.schema(&id).await;
                self.schemas.insert(id.clone(), schema);
            }
            let schema = self.schemas[&id].clone();
            out.push(Event { value: decode(&schema, &e), schema });
        }
        out
    }
}

async fn user_id(api: &Api, username: &str) -> String {
    let q = api.query(&format!("SELECT Id FROM User WHERE Username = '{username}'")).await;
    q["records"][0]["Id"].as_str().unwrap().to_owned()
}

async fn undelete(pg: &PlaygroundHandle, body: Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/records/undelete", pg.info.control_url))
        .bearer_auth(&pg.info.control_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

/// An account with two contacts and an opportunity; returns (account, contacts, opportunity).
async fn account_with_children(api: &Api) -> (String, Vec<String>, String) {
    let account = create_account(api, "Parent").await;
    let mut contacts = Vec::new();
    for name in ["One", "Two"] {
        contacts.push(api.create("Contact", json!({"LastName": name, "AccountId": account})).await);
    }
    let opportunity = api
        .create(
            "Opportunity",
            json!({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2030-01-31", "AccountId": account}),
        )
        .await;
    (account, contacts, opportunity)
}

#[tokio::test]
async fn a_cascaded_delete_is_one_transaction_with_one_delete_event_per_child_object() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let admin = user_id(&api, ADMIN).await;
    let (account, contacts, opportunity) = account_with_children(&api).await;
    // A contact deleted on its own before is not deleted again with the account.
    let gone = api.create("Contact", json!({"LastName": "Gone", "AccountId": account})).await;
    assert_eq!(api.delete(&format!("sobjects/Contact/{gone}")).await.0, StatusCode::NO_CONTENT);

    let mut changes = Changes::from_now(&pg).await;
    assert_eq!(api.delete(&format!("sobjects/Account/{account}")).await.0, StatusCode::NO_CONTENT);
    let events = changes.next(3).await;
    let got: Vec<(&str, &str, Vec<String>)> =
        events.iter().map(|e| (e.entity(), e.change_type(), e.record_ids())).collect();
    assert_eq!(
        got,
        vec![
            ("Account", "DELETE", vec![account.clone()]),
            ("Contact", "DELETE", contacts.clone()),
            ("Opportunity", "DELETE", vec![opportunity.clone()]),
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.transaction(), events[0].transaction(), "one transaction");
        assert_eq!(e.sequence(), i as i32 + 1);
        assert_eq!(e.origin(), "com/salesforce/api/rest/66.0");
        assert_eq!(e.user(), admin);
        assert!(e.header_lists_are_empty() && e.body_is_empty(), "DELETE carries the header only");
    }
    let q = api.query(&format!("SELECT COUNT() FROM Contact WHERE AccountId = '{account}'")).await;
    assert_eq!(q["totalSize"], 0);
    pg.shutdown().await;
}

#[tokio::test]
async fn undelete_restores_a_record_and_its_cascade_with_undelete_events() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let admin = user_id(&api, ADMIN).await;
    let (account, contacts, opportunity) = account_with_children(&api).await;
    let alone = api.create("Contact", json!({"LastName": "Alone", "AccountId": account})).await;
    assert_eq!(api.delete(&format!("sobjects/Contact/{alone}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.delete(&format!("sobjects/Account/{account}")).await.0, StatusCode::NO_CONTENT);

    // Refusals change nothing: a live record, an unknown id, a child that went with its parent,
    // bad bodies, and no control key.
    let live = create_account(&api, "Live").await;
    let instead = format!("undelete {account} instead");
    for (body, needle) in [
        (json!({"ids": [live]}), "not in the recycle bin"),
        (json!({"ids": ["001000000000000"]}), "no such Account"),
        (json!({"ids": ["hello"]}), "not a record id"),
        (json!({"ids": [contacts[0]]}), instead.as_str()),
        (json!({"ids": []}), "at least one id"),
        (json!({"ids": vec![account.clone(); 201]}), "at most 200"),
        (json!({"id": account}), "invalid JSON body"),
    ] {
        let (status, answer) = undelete(&pg, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(answer["message"].as_str().unwrap().contains(needle), "{body} → {answer}");
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/records/undelete", pg.info.control_url))
        .json(&json!({"ids": [account]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let mut changes = Changes::from_now(&pg).await;
    let (status, answer) = undelete(&pg, json!({"ids": [account]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut restored = vec![account.clone()];
    restored.extend(contacts.iter().cloned());
    restored.push(opportunity.clone());
    assert_eq!(answer["undeleted"], json!(restored));

    // Each restored record carries its fields, as a CREATE does: distinct values, one event each.
    let events = changes.next(4).await;
    let got: Vec<(&str, &str, Vec<String>)> =
        events.iter().map(|e| (e.entity(), e.change_type(), e.record_ids())).collect();
    assert_eq!(
        got,
        vec![
            ("Account", "UNDELETE", vec![account.clone()]),
            ("Contact", "UNDELETE", vec![contacts[0].clone()]),
            ("Contact", "UNDELETE", vec![contacts[1].clone()]),
            ("Opportunity", "UNDELETE", vec![opportunity]),
        ]
    );
    for e in &events {
        assert_eq!(e.transaction(), events[0].transaction());
        assert_eq!(e.origin(), "", "a Setup change has no API origin");
        assert_eq!(e.user(), admin);
        assert!(e.header_lists_are_empty());
    }
    assert_eq!(events[0].value("Name"), &Avro::String("Parent".into()));
    assert_eq!(field(events[0].value("BillingAddress"), "City"), &Avro::String("Lyon".into()));
    assert_eq!(field(events[1].value("Name"), "LastName"), &Avro::String("One".into()));

    // Live again for query; the contact deleted on its own stays in the recycle bin.
    let q = api.query(&format!("SELECT Id FROM Contact WHERE AccountId = '{account}' ORDER BY LastName")).await;
    assert_eq!(q["totalSize"], 2, "{q}");
    let (_, all) = api.get(&format!("queryAll?q=SELECT+Id,IsDeleted+FROM+Contact+WHERE+Id+=+'{alone}'")).await;
    assert_eq!(all["records"][0]["IsDeleted"], true, "{all}");
    // The cascade is forgotten: a second undelete is refused.
    let (status, _) = undelete(&pg, json!({"ids": [account]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    pg.shutdown().await;
}

#[tokio::test]
async fn user_administration_writes_emit_their_change_events() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let admin = user_id(&api, ADMIN).await;
    let sam = user_id(&api, STANDARD_USER).await;
    let login = api.query(&format!("SELECT Id FROM UserLogin WHERE UserId = '{sam}'")).await["records"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let profile = api.query("SELECT Id FROM Profile WHERE Name = 'Standard User'").await["records"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut changes = Changes::from_now(&pg).await;

    // Creating a user creates its UserLogin in the same transaction.
    let new = api
        .create(
            "User",
            json!({"Username": "cdc.user@playground.forcelink.dev", "LastName": "Cdc", "Email": "cdc@example.com",
                "Alias": "cdc", "TimeZoneSidKey": "America/Los_Angeles", "LocaleSidKey": "en_US",
                "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US", "ProfileId": profile}),
        )
        .await;
    let created = changes.next(2).await;
    assert_eq!((created[0].entity(), created[0].change_type()), ("User", "CREATE"));
    assert_eq!(created[0].record_ids(), vec![new.clone()]);
    assert_eq!((created[1].entity(), created[1].change_type()), ("UserLogin", "CREATE"));
    assert_eq!(created[1].value("UserId"), &Avro::String(new.clone()));
    assert_eq!(created[1].value("IsFrozen"), &Avro::Boolean(false));
    assert_eq!(created[1].transaction(), created[0].transaction());

    // Freezing and deactivating in Setup (control API): an UPDATE of the record that changes.
    pg.control.set_user(STANDARD_USER, json!({"frozen": true})).await;
    let frozen = changes.next(1).await;
    assert_eq!((frozen[0].entity(), frozen[0].change_type()), ("UserLogin", "UPDATE"));
    assert_eq!(frozen[0].record_ids(), vec![login.clone()]);
    assert!(frozen[0].changed().contains(&"IsFrozen".to_owned()), "{:?}", frozen[0].changed());
    assert_eq!(frozen[0].value("IsFrozen"), &Avro::Boolean(true));
    assert_eq!((frozen[0].origin(), frozen[0].user()), ("", admin.as_str()));
    // Setting what already holds changes no record: the next event is the deactivation.
    pg.control.set_user(STANDARD_USER, json!({"frozen": true, "active": false})).await;
    let deactivated = changes.next(1).await;
    assert_eq!((deactivated[0].entity(), deactivated[0].change_type()), ("User", "UPDATE"));
    assert_eq!(deactivated[0].record_ids(), vec![sam.clone()]);
    let changed = deactivated[0].changed();
    assert!(changed.contains(&"IsActive".to_owned()) && !changed.contains(&"Username".to_owned()), "{changed:?}");
    assert_eq!(deactivated[0].value("IsActive"), &Avro::Boolean(false));

    // Through the API: unfreezing is an UPDATE of UserLogin with the API's origin.
    let (status, _) = api.patch(&format!("sobjects/UserLogin/{login}"), &json!({"IsFrozen": false})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let unfrozen = changes.next(1).await;
    assert_eq!((unfrozen[0].entity(), unfrozen[0].change_type()), ("UserLogin", "UPDATE"));
    assert_eq!(unfrozen[0].origin(), "com/salesforce/api/rest/66.0");

    // A password reset changes LastPasswordChangeDate on the User.
    let (status, _) = api.delete(&format!("sobjects/User/{new}/password")).await;
    assert_eq!(status, StatusCode::OK);
    let reset = changes.next(1).await;
    assert_eq!((reset[0].entity(), reset[0].change_type()), ("User", "UPDATE"));
    assert_eq!(reset[0].changed(), vec!["LastPasswordChangeDate".to_owned()]);
    assert!(matches!(reset[0].value("LastPasswordChangeDate"), Avro::Long(ms) if *ms > 0));

    // Removing a permission set assignment and a licence assignment: DELETE events.
    for (object, filter) in [
        ("PermissionSetAssignment", "PermissionSet.IsOwnedByProfile = false"),
        ("PermissionSetLicenseAssign", "Id != null"),
    ] {
        let q = api.query(&format!("SELECT Id FROM {object} WHERE AssigneeId = '{sam}' AND {filter}")).await;
        let rid = q["records"][0]["Id"].as_str().unwrap().to_owned();
        let (status, body) = api.delete(&format!("sobjects/{object}/{rid}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let e = changes.next(1).await;
        assert_eq!((e[0].entity(), e[0].change_type(), e[0].record_ids()), (object, "DELETE", vec![rid]));
        assert_eq!(e[0].origin(), "com/salesforce/api/rest/66.0");
    }
    pg.shutdown().await;
}

#[tokio::test]
async fn a_gap_fault_turns_the_next_events_into_header_only_gap_events() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    create_account(&api, "Before").await;
    let (status, body) = control(&pg, Method::POST, "/faults", json!({"kind": "gap", "count": 0})).await;
    assert_eq!(status, 400, "{body}");
    let mut changes = Changes::from_now(&pg).await;
    arm(&pg, json!({"kind": "gap", "count": 4})).await;

    let id = create_account(&api, "Gappy").await;
    assert!(api.patch(&format!("sobjects/Account/{id}"), &json!({"Phone": "1"})).await.0.is_success());
    assert!(api.delete(&format!("sobjects/Account/{id}")).await.0.is_success());
    let (status, answer) = undelete(&pg, json!({"ids": [id]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The fault is spent: this update is a full change event again.
    assert!(api.patch(&format!("sobjects/Account/{id}"), &json!({"Phone": "2"})).await.0.is_success());

    let events = changes.next(5).await;
    let kinds: Vec<&str> = events.iter().map(Event::change_type).collect();
    assert_eq!(kinds, ["GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "UPDATE"]);
    for e in &events[..4] {
        assert_eq!(e.entity(), "Account");
        assert_eq!(e.record_ids(), vec![id.clone()], "a gap event names the record");
        assert!(e.header_lists_are_empty(), "no changedFields on a gap event");
        assert!(e.body_is_empty(), "no values on a gap event");
    }
    assert_eq!(events[4].value("Phone"), &Avro::String("2".into()));
    assert!(events[4].changed().contains(&"Phone".to_owned()));
    let (_, faults) = control(&pg, Method::GET, "/faults", Value::Null).await;
    assert_eq!(faults["faults"], json!([]));
    pg.shutdown().await;
}

#[tokio::test]
async fn changes_beyond_the_overflow_threshold_become_one_overflow_event_per_object() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, settings) = control(&pg, Method::GET, "/settings", Value::Null).await;
    assert_eq!((status, &settings["overflow_threshold"]), (200, &json!(100_000)));
    let (status, body) = control(&pg, Method::PATCH, "/settings", json!({"overflow_threshold": 0})).await;
    assert_eq!(status, 400, "{body}");

    let account = create_account(&api, "Big").await;
    let mut contacts = Vec::new();
    for i in 0..4 {
        contacts.push(api.create("Contact", json!({"LastName": format!("C{i}"), "AccountId": account})).await);
    }
    let (status, _) = control(&pg, Method::PATCH, "/settings", json!({"overflow_threshold": 3})).await;
    assert_eq!(status, 200);
    let mut changes = Changes::from_now(&pg).await;
    // Five deletions in one transaction: the account and two contacts fit, two contacts overflow.
    assert_eq!(api.delete(&format!("sobjects/Account/{account}")).await.0, StatusCode::NO_CONTENT);
    let events = changes.next(3).await;
    let got: Vec<(&str, &str, Vec<String>)> =
        events.iter().map(|e| (e.entity(), e.change_type(), e.record_ids())).collect();
    assert_eq!(
        got,
        vec![
            ("Account", "DELETE", vec![account.clone()]),
            ("Contact", "DELETE", contacts[..2].to_vec()),
            ("Contact", "GAP_OVERFLOW", vec![EMPTY_RECORD_ID.to_owned()]),
        ]
    );
    assert_eq!(events[2].transaction(), events[0].transaction());
    assert_eq!(events[2].sequence(), 3);
    assert!(events[2].header_lists_are_empty() && events[2].body_is_empty());

    // An update counts one per changed field: Phone, Website and the audit fields exceed 3.
    let other = create_account(&api, "Other").await;
    let _ = changes.next(1).await;
    let (status, _) =
        api.patch(&format!("sobjects/Account/{other}"), &json!({"Phone": "1", "Website": "w.example"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let e = changes.next(1).await;
    assert_eq!((e[0].entity(), e[0].change_type()), ("Account", "GAP_OVERFLOW"));
    assert!(e[0].body_is_empty());

    // Reset restores Salesforce's threshold.
    pg.control.reset().await;
    let (_, settings) = control(&pg, Method::GET, "/settings", Value::Null).await;
    assert_eq!(settings["overflow_threshold"], 100_000);
    pg.shutdown().await;
}

#[tokio::test]
async fn a_record_changed_twice_in_one_call_is_one_event_of_its_first_change_type() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let account = create_account(&api, "Twice").await;
    let mut changes = Changes::from_now(&pg).await;

    // A file: its document is created, then pointed at the version, in the same call.
    let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"hello");
    let version = api
        .create(
            "ContentVersion",
            json!({"Title": "Hi", "PathOnClient": "hi.txt", "VersionData": data, "FirstPublishLocationId": account}),
        )
        .await;
    let events = changes.next(4).await;
    let got: Vec<(&str, &str)> = events.iter().map(|e| (e.entity(), e.change_type())).collect();
    assert_eq!(
        got,
        [
            ("ContentDocument", "CREATE"),
            ("ContentDocumentLink", "CREATE"),
            ("ContentDocumentLink", "CREATE"),
            ("ContentVersion", "CREATE")
        ]
    );
    assert_eq!(events[0].value("LatestPublishedVersionId"), &Avro::String(version.clone()));
    assert_eq!(events[3].record_ids(), vec![version]);
    assert!(events.iter().all(|e| e.transaction() == events[0].transaction()));

    // Two updates of one record in one composite call: one UPDATE with both values.
    let (status, body) = api
        .post(
            "composite",
            &json!({"allOrNone": true, "compositeRequest": [
                {"method": "PATCH", "url": format!("/services/data/v66.0/sobjects/Account/{account}"), "referenceId": "a", "body": {"Phone": "1"}},
                {"method": "PATCH", "url": format!("/services/data/v66.0/sobjects/Account/{account}"), "referenceId": "b", "body": {"Website": "w.example"}},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A marker write in a later call: had the composite given two events, the second would be here.
    let marker = create_account(&api, "Marker").await;
    let events = changes.next(2).await;
    assert_eq!((events[0].entity(), events[0].change_type()), ("Account", "UPDATE"));
    let changed = events[0].changed();
    assert!(changed.contains(&"Phone".to_owned()) && changed.contains(&"Website".to_owned()), "{changed:?}");
    assert_eq!(events[0].value("Phone"), &Avro::String("1".into()));
    assert_eq!(events[0].value("Website"), &Avro::String("w.example".into()));
    assert_eq!((events[1].change_type(), events[1].record_ids()), ("CREATE", vec![marker]));
    pg.shutdown().await;
}
