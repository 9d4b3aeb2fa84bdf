//! Every REST resource against the playground: versions, resources, describe (cached and
//! revalidated), CRUD, upsert (201/200/300), search, composite, collections, limits.

use std::time::Duration;

use forcelink_client::{ApiVersion, BodyKind, ClientError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn versions_resources_and_discovery_of_the_newest_version() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let versions = client.versions().send().await.unwrap();
    assert_eq!(versions.first().map(|v| v.version.as_str()), Some("20.0"));
    let newest = client.with_latest_version().await.unwrap();
    assert_eq!(newest.api_version().as_str(), "66.0");
    assert_eq!(client.api_version().as_str(), forcelink_client::DEFAULT_API_VERSION);
    let resources = newest.resources().send().await.unwrap();
    assert_eq!(resources["sobjects"], "/services/data/v66.0/sobjects");
    assert!(resources["identity"].starts_with("http://127.0.0.1:"), "{}", resources["identity"]);
    // The version is part of every data path.
    let old = client.with_api_version(ApiVersion::new("45.0").unwrap());
    assert_eq!(old.resources().send().await.unwrap()["query"], "/services/data/v45.0/query");
}

#[tokio::test]
async fn describe_global_and_describe_are_typed_and_cached_with_revalidation() {
    let pg = spawn_playground().await;
    let (client, clock) = admin_client(&pg);
    let global = client.describe_global().send().await.unwrap();
    assert_eq!(global.max_batch_size, Some(200));
    let account = global.sobjects.iter().find(|o| o.name == "Account").unwrap();
    assert_eq!(account.key_prefix.as_deref(), Some("001"));
    assert!(account.createable && account.queryable);

    let d = client.sobject("Invoice__c").unwrap().describe().send().await.unwrap();
    assert!(d.custom);
    let status = d.field("Status__c").unwrap();
    assert_eq!(status.field_type, "picklist");
    let values: Vec<&str> = status.picklist_values.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(values, ["Draft", "Sent", "Paid"]);
    assert_eq!(d.field("Account__c").unwrap().reference_to, ["Account"]);
    assert_eq!(client.stats().describe_fetches, 1);

    // Young: from the cache, no request.
    let requests = client.stats().requests;
    let again = client.sobject("invoice__c").unwrap().describe().send().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&d, &again));
    assert_eq!(client.stats().requests, requests);
    assert_eq!(client.stats().describe_cache_hits, 1);

    // Old: revalidated with If-Modified-Since; the playground's schema has not changed → 304.
    clock.advance(forcelink_client::client::DEFAULT_DESCRIBE_MAX_AGE + Duration::from_secs(1));
    let revalidated = client.sobject("Invoice__c").unwrap().describe().send().await.unwrap();
    assert_eq!(client.stats().describe_not_modified, 1);
    assert_eq!(client.stats().describe_fetches, 1);
    assert_eq!(revalidated.fields.len(), d.fields.len());
    assert_eq!(client.stats().requests, requests + 1);

    let missing = client.sobject("Nope__c").unwrap().describe().send().await.unwrap_err();
    assert_eq!(missing.error_code(), Some("NOT_FOUND"));
    assert_eq!(missing.status(), Some(404));
}

#[derive(Debug, Deserialize)]
struct AccountRow {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Industry")]
    industry: Option<String>,
}

#[tokio::test]
async fn create_retrieve_update_delete() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let accounts = client.sobject("Account").unwrap();
    let created = accounts.create(&json!({"Name": "Acme", "Industry": "Energy"})).send().await.unwrap();
    assert_eq!(created.id.key_prefix(), "001");
    let rec = accounts.retrieve(created.id.as_str()).unwrap().fields(["Name"]).unwrap().send().await.unwrap();
    assert_eq!(rec["Name"], "Acme");
    assert!(rec.get("Industry").is_none(), "{rec}");
    assert_eq!(rec["attributes"]["type"], "Account");

    accounts.update(created.id.as_str(), &json!({"Industry": "Banking"})).unwrap().send().await.unwrap();
    let typed: AccountRow = accounts.retrieve(created.id.as_str()).unwrap().send_as().await.unwrap();
    assert_eq!((typed.name.as_str(), typed.industry.as_deref()), ("Acme", Some("Banking")));

    accounts.delete(created.id.as_str()).unwrap().send().await.unwrap();
    let gone = accounts.retrieve(created.id.as_str()).unwrap().send().await.unwrap_err();
    assert_eq!(gone.status(), Some(404), "{gone}");

    let bad = accounts.create(&json!({"Industry": "Energy"})).send().await.unwrap_err();
    let api = bad.api_error().unwrap();
    assert_eq!((api.status, api.error_code.as_str()), (400, "REQUIRED_FIELD_MISSING"));
    assert_eq!(api.fields, ["Name"]);
    // Invalid names and ids never reach the wire.
    assert!(matches!(client.sobject("Account/../x"), Err(ClientError::InvalidInput(_))));
    assert!(matches!(accounts.retrieve("001/../../limits"), Err(ClientError::InvalidInput(_))));
}

#[tokio::test]
async fn upsert_creates_updates_and_reports_multiple_matches() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let accounts = client.sobject("Account").unwrap();
    let first = accounts.upsert("External_Id__c", "EXT/1 ?#", &json!({"Name": "Upserted"})).unwrap().send().await;
    let first = first.unwrap();
    assert!(first.created);
    let id = first.id.clone().unwrap();
    let second = accounts.upsert("External_Id__c", "EXT/1 ?#", &json!({"Name": "Again"})).unwrap().send().await;
    assert_eq!(second.unwrap(), forcelink_client::Upserted { id: Some(id.clone()), created: false });
    let rec = accounts.retrieve(&id).unwrap().send().await.unwrap();
    assert_eq!((rec["Name"].as_str(), rec["External_Id__c"].as_str()), (Some("Again"), Some("EXT/1 ?#")));
    // API 45.0: an update is 204 without a body.
    let old = client.with_api_version(ApiVersion::new("45.0").unwrap());
    let up = old.sobject("Account").unwrap().upsert("External_Id__c", "EXT/1 ?#", &json!({"Name": "Old"})).unwrap();
    assert_eq!(up.send().await.unwrap(), forcelink_client::Upserted { id: None, created: false });
    // updateOnly: no insert.
    let none = accounts.upsert("External_Id__c", "NOPE", &json!({"Name": "x"})).unwrap().update_only(true);
    assert_eq!(none.send().await.unwrap_err().status(), Some(404));

    let contacts = client.sobject("Contact").unwrap();
    for last in ["A", "B"] {
        contacts.create(&json!({"LastName": last, "Email": "same@example.com"})).send().await.unwrap();
    }
    let err = contacts.upsert("Email", "same@example.com", &json!({"Title": "x"})).unwrap().send().await.unwrap_err();
    let ClientError::MultipleMatches { urls, .. } = &err else { panic!("{err:?}") };
    assert_eq!(urls.len(), 2);
    assert!(urls[0].starts_with("/services/data/v64.0/sobjects/Contact/003"), "{urls:?}");
}

#[tokio::test]
async fn search_returns_records_in_both_answer_shapes() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    client.sobject("Account").unwrap().create(&json!({"Name": "Zanzibar Traders"})).send().await.unwrap();
    let found = client.search("FIND {Zanzibar} RETURNING Account(Id, Name)").send().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["Name"], "Zanzibar Traders");
    // Before API 37.0 the answer is a bare array.
    let old = client.with_api_version(ApiVersion::new("30.0").unwrap());
    let found = old.search("FIND {Zanzibar} RETURNING Account(Id, Name)").send().await.unwrap();
    assert_eq!(found.len(), 1);
    let err = client.search("bar").send().await.unwrap_err();
    assert_eq!(err.error_code(), Some("MALFORMED_SEARCH"));
}

#[tokio::test]
async fn composite_runs_dependent_subrequests() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    use forcelink_client::composite::CompositeSubrequest;
    let sub = |method: &str, url: String, reference_id: &str, body: Option<Value>| CompositeSubrequest {
        method: method.into(),
        url,
        reference_id: reference_id.into(),
        body,
        http_headers: None,
    };
    let answer = client
        .composite()
        .all_or_none(true)
        .request(sub("POST", client.data_url("sobjects/Account"), "acct", Some(json!({"Name": "Composite Co"}))))
        .request(sub(
            "POST",
            client.data_url("sobjects/Contact"),
            "ct",
            Some(json!({"LastName": "Doe", "AccountId": "@{acct.id}"})),
        ))
        .send()
        .await
        .unwrap();
    let codes: Vec<u16> = answer.composite_response.iter().map(|r| r.http_status_code).collect();
    assert_eq!(codes, [201, 201]);
    let contact_id = answer.composite_response[1].body["id"].as_str().unwrap();
    let contact = client.sobject("Contact").unwrap().retrieve(contact_id).unwrap().send().await.unwrap();
    assert_eq!(contact["AccountId"], answer.composite_response[0].body["id"]);
    let too_many = (0..26)
        .fold(client.composite(), |b, i| b.request(sub("GET", client.data_url("limits"), &format!("r{i}"), None)));
    assert!(matches!(too_many.send().await, Err(ClientError::InvalidInput(_))));
}

#[tokio::test]
async fn collections_chunk_by_200_and_report_each_record() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let records: Vec<Value> = (0..450).map(|i| json!({"Name": format!("Bulkish {i:03}")})).collect();
    let before = client.stats().requests;
    let results = client.collections().create("Account", records).send().await.unwrap();
    assert_eq!(client.stats().requests - before, 3, "450 records = 3 calls of at most 200");
    assert_eq!(results.len(), 450);
    assert!(results.iter().all(|r| r.success && r.id.is_some()));
    let ids: Vec<String> = results.iter().map(|r| r.id.clone().unwrap()).collect();

    // Per-record failure without allOrNone: the good ones are saved.
    let mixed = vec![json!({"Id": ids[0], "Name": "Renamed"}), json!({"Id": ids[1], "Name": ""})];
    let results = client.collections().update("Account", mixed).send().await.unwrap();
    assert!(results[0].success);
    assert!(!results[1].success);
    assert_eq!(results[1].errors[0].error_code, "REQUIRED_FIELD_MISSING");
    // With allOrNone the chunk is rolled back.
    let mixed = vec![json!({"Id": ids[2], "Name": "Rolled back"}), json!({"Id": ids[3], "Name": ""})];
    let results = client.collections().update("Account", mixed).all_or_none(true).send().await.unwrap();
    assert!(results.iter().all(|r| !r.success));

    let got = client.collections().retrieve("Account", &ids[..3], ["Name"]).send().await.unwrap();
    let names: Vec<&str> = got.iter().map(|r| r.as_ref().unwrap()["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Renamed", "Bulkish 001", "Bulkish 002"]);

    let upserted = client
        .collections()
        .upsert("Account", "External_Id__c", vec![json!({"External_Id__c": "C-1", "Name": "Coll"})])
        .send()
        .await
        .unwrap();
    assert_eq!(upserted[0].created, Some(true));

    let deleted = client.collections().delete(&ids).send().await.unwrap();
    assert_eq!(deleted.len(), 450);
    assert!(deleted.iter().all(|r| r.success));
    let count = client.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulkish%'").send().await.unwrap();
    assert_eq!(count.total_size, 0);
}

#[tokio::test]
async fn limits_and_limit_info_are_tracked() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    assert!(client.limit_info().is_none());
    let limits = client.limits().send().await.unwrap();
    let daily = &limits["DailyApiRequests"];
    assert!(daily.max > 0 && daily.remaining < daily.max);
    assert_eq!(limits["PermissionSets"].breakdown["CreateCustom"].max, 1000);
    let info = client.limit_info().unwrap().api_usage.unwrap();
    assert_eq!(info.max as i64, daily.max);
    client.limits().send().await.unwrap();
    let later = client.limit_info().unwrap().api_usage.unwrap();
    assert_eq!(later.used, info.used + 1);
}

#[tokio::test]
async fn raw_requests_reach_resources_without_a_builder() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let resp = client.request(reqwest::Method::GET, "limits/recordCount").query("sObjects", "Account").send().await;
    let body: Value = resp.unwrap().json().unwrap();
    assert_eq!(body["sObjects"][0]["name"], "Account");
    assert!(matches!(
        client.request(reqwest::Method::GET, "/other/../services/data").send().await,
        Err(ClientError::InvalidInput(_))
    ));
    // A 404 HTML page through a raw request is still a typed error.
    let err = client.request(reqwest::Method::GET, "nothing/here").send().await.unwrap_err();
    assert!(matches!(err, ClientError::Api { .. } | ClientError::UnexpectedResponse { kind: BodyKind::Html, .. }));
}
