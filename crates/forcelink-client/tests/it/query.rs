//! Query streams: many pages with nothing lost or repeated, a 401 in the middle renewed once,
//! typed records, queryAll, batch sizes.

use std::collections::HashSet;

use forcelink_client::ClientError;
use forcelink_test_support::spawn_playground_with;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use crate::common::*;

const ACCOUNTS: u64 = 5_000;

async fn with_accounts() -> PlaygroundHandle {
    spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), ACCOUNTS)]).await
}

#[derive(Debug, Deserialize)]
struct Account {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
}

#[tokio::test]
async fn a_query_over_many_pages_loses_and_repeats_no_record() {
    let pg = with_accounts().await;
    let (client, _) = admin_client(&pg);
    let mut stream = client.query("SELECT Id, Name FROM Account ORDER BY Name").batch_size(200).stream_as::<Account>();
    let mut ids = HashSet::new();
    let mut n = 0u64;
    while let Some(rec) = stream.next().await {
        let rec = rec.unwrap();
        assert!(!rec.name.is_empty());
        assert!(ids.insert(rec.id.clone()), "{} came twice", rec.id);
        n += 1;
    }
    assert_eq!(n, ACCOUNTS);
    assert_eq!(stream.total_size(), Some(ACCOUNTS));
    assert_eq!(stream.pages(), ACCOUNTS / 200);
    // The same set as the ids the org holds, counted independently.
    let count = client.query("SELECT COUNT() FROM Account").send().await.unwrap();
    assert_eq!(count.total_size, ids.len() as u64);
}

#[tokio::test]
async fn unparsed_pages_hold_the_same_records_borrowed_from_the_page() {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Borrowed<'a> {
        id: &'a str,
        name: std::borrow::Cow<'a, str>,
    }
    let pg = with_accounts().await;
    let (client, _) = admin_client(&pg);
    let soql = "SELECT Id, Name FROM Account ORDER BY Name";
    let mut pages = client.query(soql).batch_size(500).pages();
    let mut ids = Vec::new();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        let parsed = page.parse::<Borrowed<'_>>().unwrap();
        assert_eq!(parsed.total_size, ACCOUNTS);
        for r in &parsed.records {
            assert!(!r.name.is_empty());
            ids.push(r.id.to_owned());
        }
        count += 1;
    }
    assert_eq!(count, ACCOUNTS / 500);
    let values: Vec<String> = client
        .query(soql)
        .batch_size(500)
        .stream()
        .map(|r| r.unwrap()["Id"].as_str().unwrap().to_owned())
        .collect()
        .await;
    assert_eq!(ids, values, "the same records in the same order as the parsed stream");
    // A refused query is the stream's first and only item.
    let mut bad = client.query("SELECT Nope FROM Account").pages();
    assert!(matches!(bad.next().await, Some(Err(ClientError::Api { .. }))));
    assert!(bad.next().await.is_none());
}

#[tokio::test]
async fn a_401_mid_pagination_renews_once_and_continues() {
    let pg = with_accounts().await;
    let provider = Recording::new(admin_provider(&pg));
    let client = client_over(provider.clone(), &forcelink_auth::ManualClock::starting_now());
    let mut stream = client.query("SELECT Id FROM Account").batch_size(500).stream();
    let mut ids = HashSet::new();
    for _ in 0..700 {
        ids.insert(stream.next().await.unwrap().unwrap()["Id"].as_str().unwrap().to_owned());
    }
    pg.control.expire_sessions().await;
    while let Some(rec) = stream.next().await {
        assert!(ids.insert(rec.unwrap()["Id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(ids.len() as u64, ACCOUNTS);
    assert_eq!(provider.invalidated().len(), 1);
    assert_eq!(client.stats().renewals, 1);
    assert_eq!(pg.control.token_requests("client_credentials").await, 2);
}

#[tokio::test]
async fn pages_and_query_all() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let accounts = client.sobject("Account").unwrap();
    let id = accounts.create(&json!({"Name": "Soon Deleted"})).send().await.unwrap().id;
    accounts.delete(id.as_str()).unwrap().send().await.unwrap();
    let q = "SELECT Id, IsDeleted FROM Account WHERE Name = 'Soon Deleted'";
    assert_eq!(client.query(q).send().await.unwrap().total_size, 0);
    let all: Vec<_> = client.query_all(q).stream().try_collect().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["IsDeleted"], true);

    let records: Vec<_> = (0..450).map(|i| json!({"Name": format!("Paged {i}")})).collect();
    client.collections().create("Account", records).send().await.unwrap();
    let first = client.query("SELECT Id FROM Account WHERE Name LIKE 'Paged%'").batch_size(200).send().await.unwrap();
    assert_eq!((first.total_size, first.done, first.records.len()), (450, false, 200));
    let second = first.next_page(&client).await.unwrap().unwrap();
    assert_eq!(second.records.len(), 200);
    let rest: Vec<_> = second.into_stream(&client).try_collect().await.unwrap();
    assert_eq!(rest.len(), 250, "the second page's records, then the third page");
}

#[tokio::test]
async fn query_errors_and_bad_batch_sizes() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let err = client.query("SELECT Nope__x FROM Account").send().await.unwrap_err();
    assert_eq!(err.error_code(), Some("INVALID_FIELD"));
    let mut s = client.query("SELEKT").stream();
    assert_eq!(s.next().await.unwrap().unwrap_err().error_code(), Some("MALFORMED_QUERY"));
    assert!(s.next().await.is_none(), "the stream ends after its error");
    let mut s = client.query("SELECT Id FROM Account").batch_size(50).stream();
    assert!(matches!(s.next().await, Some(Err(ClientError::InvalidInput(_)))));
    assert_eq!(client.stats().requests, 2);
}

#[tokio::test]
async fn a_truncated_html_or_misshapen_page_mid_stream_is_a_typed_error() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), 1_000)]).await;
    let (client, _) = admin_client(&pg);
    // The pages after the first: `nextRecordsUrl` paths.
    let next = format!("/services/data/{}/query/", client.api_version().segment());
    let cases = [
        (
            json!({"path_prefix": next, "kind": "status", "status": 200,
                   "body": "{\"totalSize\":1000,\"done\":false,\"records\":[{\"Id\":\"001"}),
            "malformed",
        ),
        (json!({"path_prefix": next, "kind": "html", "status": 200}), "html"),
        (
            json!({"path_prefix": next, "kind": "status", "status": 200,
                   "body": "{\"totalSize\":1000,\"done\":true,\"records\":[{\"Id\":7}]}"}),
            "shape",
        ),
    ];
    for (fault, expected) in cases {
        pg.control.add_fault(fault).await;
        let mut stream = client.query("SELECT Id, Name FROM Account").batch_size(200).stream_as::<Account>();
        let mut ok = 0;
        let err = loop {
            match stream.next().await {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e,
                None => panic!("{expected}: the stream ended without the error after {ok} records"),
            }
        };
        assert_eq!(ok, 200, "{expected}: the first page's records come before the error");
        let kind = match &err {
            ClientError::UnexpectedResponse { kind: forcelink_client::BodyKind::Malformed, .. } => "malformed",
            ClientError::UnexpectedResponse { kind: forcelink_client::BodyKind::Html, .. } => "html",
            ClientError::UnexpectedResponse { kind: forcelink_client::BodyKind::Shape(_), .. } => "shape",
            other => panic!("{expected}: unexpected error {other:?}"),
        };
        assert_eq!(kind, expected, "{err}");
        assert!(stream.next().await.is_none(), "the stream ends after its error");
    }
}

#[tokio::test]
async fn records_as_values_keep_every_field_and_its_order() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let tricky = "Ünïcödé \"quoted\" \\ back\nslash \u{1F600}";
    client
        .sobject("Account")
        .unwrap()
        .create(&json!({"Name": tricky, "NumberOfEmployees": 42, "AnnualRevenue": 1.5e9}))
        .send()
        .await
        .unwrap();
    let all: Vec<serde_json::Value> = client
        .query("SELECT Name, NumberOfEmployees, AnnualRevenue, Owner.Name, Id FROM Account")
        .stream()
        .try_collect()
        .await
        .unwrap();
    let r = &all[0];
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Name", "NumberOfEmployees", "AnnualRevenue", "Owner", "Id"]);
    assert_eq!(r["Name"], tricky);
    assert_eq!(r["NumberOfEmployees"], 42);
    assert_eq!(r["AnnualRevenue"].as_f64(), Some(1.5e9));
    assert_eq!(r["Owner"]["Name"], "Ada Admin");
}
