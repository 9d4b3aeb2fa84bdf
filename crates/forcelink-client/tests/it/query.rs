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
