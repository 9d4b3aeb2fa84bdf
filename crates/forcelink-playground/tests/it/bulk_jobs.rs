//! Bulk API 2.0 jobs that take playground time (`bulk_rows_per_second`), results asked for too
//! early, aborting a running job, parallel result pages, and jobs that survive a restart on a
//! data file. The playground runs on a frozen clock here, so time moves only when a test moves
//! it through the control API.

use std::sync::Arc;
use std::time::Duration;

use forcelink_playground::Clock;
use forcelink_test_support::PlaygroundHandle;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[derive(Debug)]
struct Frozen(i64);

impl Clock for Frozen {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

const T0: i64 = 1_800_000_000_000;

async fn frozen_playground(data: Option<std::path::PathBuf>) -> PlaygroundHandle {
    spawn_playground_with(|c| {
        c.clock = Arc::new(Frozen(T0));
        c.data_file = data;
    })
    .await
}

/// Polls `GET path` until `done` holds (bounded: the ingest worker is another thread).
async fn poll(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..1000 {
        last = api.get(path).await.1;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path} never reached the expected state: {last}");
}

async fn get_text(api: &Api, path: &str) -> (StatusCode, String) {
    let resp = api.http.get(api.url(path)).bearer_auth(&api.token).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn accounts(api: &Api, n: usize) {
    let records: Vec<Value> =
        (0..n).map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("Acc {i:03}")})).collect();
    let (status, _) = api.post("composite/sobjects", &json!({"records": records})).await;
    assert_eq!(status, StatusCode::OK);
}

async fn ingest(api: &Api, csv: &str) -> String {
    let (_, info) = api.post("jobs/ingest", &json!({"object": "Account", "operation": "insert"})).await;
    let id = info["id"].as_str().unwrap().to_owned();
    let resp = api
        .http
        .put(api.url(&format!("jobs/ingest/{id}/batches")))
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    id
}

fn names(n: usize) -> String {
    let mut csv = "Name\n".to_owned();
    for i in 0..n {
        csv.push_str(&format!("Bulk {i}\n"));
    }
    csv
}

#[tokio::test]
async fn a_throttled_query_job_runs_on_playground_time_and_can_be_aborted() {
    let pg = frozen_playground(None).await;
    let api = admin_api(&pg).await;
    accounts(&api, 30).await;
    pg.control.settings(json!({"bulk_rows_per_second": 10})).await;
    let q = json!({"operation": "query", "query": "SELECT Id, Name FROM Account"});
    let (_, info) = api.post("jobs/query", &q).await;
    assert_eq!(info["state"], "UploadComplete");
    let id = info["id"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("jobs/query/{id}")).await.1["state"], "UploadComplete");
    // Too early: 412 for the results and for the result links.
    let (status, body) = get_text(&api, &format!("jobs/query/{id}/results")).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert!(body.contains("INVALIDJOBSTATE"), "{body}");
    let (status, _) = api.get(&format!("jobs/query/{id}/resultPages")).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);

    pg.control.advance_clock(1).await;
    let (_, info) = api.get(&format!("jobs/query/{id}")).await;
    assert_eq!((info["state"].clone(), info["numberRecordsProcessed"].clone()), (json!("InProgress"), json!(10)));
    let (status, info) = api.patch(&format!("jobs/query/{id}"), &json!({"state": "Aborted"})).await;
    assert_eq!((status, info["state"].clone()), (StatusCode::OK, json!("Aborted")));
    pg.control.advance_clock(10).await;
    assert_eq!(api.get(&format!("jobs/query/{id}")).await.1["state"], "Aborted", "an aborted job stays aborted");

    let (_, info) = api.post("jobs/query", &q).await;
    let id = info["id"].as_str().unwrap().to_owned();
    pg.control.advance_clock(2).await;
    assert_eq!(api.get(&format!("jobs/query/{id}")).await.1["numberRecordsProcessed"], 20);
    pg.control.advance_clock(1).await;
    let (_, info) = api.get(&format!("jobs/query/{id}")).await;
    assert_eq!((info["state"].clone(), info["numberRecordsProcessed"].clone()), (json!("JobComplete"), json!(30)));
    let (status, csv) = get_text(&api, &format!("jobs/query/{id}/results")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), 31);
}

#[tokio::test]
async fn a_throttled_ingest_job_is_in_progress_until_time_allows_and_abort_leaves_the_rest() {
    let pg = frozen_playground(None).await;
    let api = admin_api(&pg).await;
    pg.control.settings(json!({"bulk_rows_per_second": 10})).await;
    let id = ingest(&api, &names(25)).await;
    api.patch(&format!("jobs/ingest/{id}"), &json!({"state": "UploadComplete"})).await;
    let path = format!("jobs/ingest/{id}");
    let info = poll(&api, &path, |i| i["state"] == "InProgress").await;
    assert_eq!(info["numberRecordsProcessed"], 0);
    pg.control.advance_clock(1).await;
    poll(&api, &path, |i| i["numberRecordsProcessed"] == 10).await;
    assert_eq!(api.get(&path).await.1["state"], "InProgress");
    api.patch(&path, &json!({"state": "Aborted"})).await;
    poll(&api, &path, |i| i["state"] == "Aborted").await;
    for _ in 0..1000 {
        let (_, rest) = get_text(&api, &format!("jobs/ingest/{id}/unprocessedrecords")).await;
        if rest.lines().count() == 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, rest) = get_text(&api, &format!("jobs/ingest/{id}/unprocessedrecords")).await;
    assert_eq!(rest.lines().count(), 16, "{rest}");
    assert_eq!(api.query("SELECT COUNT() FROM Account").await["totalSize"], 10);
}

#[tokio::test]
async fn result_pages_link_every_page_five_at_a_time() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    accounts(&api, 12).await;
    let (_, info) = api.post("jobs/query", &json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    let id = info["id"].as_str().unwrap().to_owned();
    poll(&api, &format!("jobs/query/{id}"), |i| i["state"] == "JobComplete").await;
    let (status, first) = api.get(&format!("jobs/query/{id}/resultPages?maxRecords=2")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["done"], false);
    let mut links: Vec<String> =
        first["resultPages"].as_array().unwrap().iter().map(|p| p["resultUrl"].as_str().unwrap().to_owned()).collect();
    assert_eq!(links.len(), 5);
    assert!(links[0].starts_with(&format!("/services/data/v66.0/jobs/query/{id}/results?locator=")), "{}", links[0]);
    let (_, second) = api.get(first["nextRecordsUrl"].as_str().unwrap()).await;
    assert_eq!((second["done"].clone(), second["nextRecordsUrl"].clone()), (json!(true), Value::Null));
    links.extend(second["resultPages"].as_array().unwrap().iter().map(|p| p["resultUrl"].as_str().unwrap().to_owned()));
    assert_eq!(links.len(), 6);
    let mut ids = std::collections::BTreeSet::new();
    for link in &links {
        let (status, csv) = get_text(&api, link).await;
        assert_eq!(status, StatusCode::OK);
        ids.extend(csv.lines().skip(1).map(str::to_owned));
    }
    assert_eq!(ids.len(), 12, "every record once");
    let (status, _) = api.at_version("57.0").get(&format!("jobs/query/{id}/resultPages")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn jobs_on_a_data_file_survive_a_restart_and_a_running_one_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("org.db");
    let pg = frozen_playground(Some(file.clone())).await;
    let api = admin_api(&pg).await;
    let done = ingest(&api, "Name\nKept\n").await;
    api.patch(&format!("jobs/ingest/{done}"), &json!({"state": "UploadComplete"})).await;
    poll(&api, &format!("jobs/ingest/{done}"), |i| i["state"] == "JobComplete").await;
    let open = ingest(&api, "Name\nLater\n").await;
    let (_, q) = api.post("jobs/query", &json!({"operation": "query", "query": "SELECT Name FROM Account"})).await;
    let query = q["id"].as_str().unwrap().to_owned();
    pg.control.settings(json!({"bulk_rows_per_second": 10})).await;
    let running = ingest(&api, &names(25)).await;
    api.patch(&format!("jobs/ingest/{running}"), &json!({"state": "UploadComplete"})).await;
    pg.control.advance_clock(1).await;
    poll(&api, &format!("jobs/ingest/{running}"), |i| i["numberRecordsProcessed"] == 10).await;
    pg.shutdown().await;

    let pg = frozen_playground(Some(file)).await;
    let api = admin_api(&pg).await;
    let (_, list) = api.get("jobs/ingest").await;
    assert_eq!(list["records"].as_array().unwrap().len(), 3, "{list}");
    let (_, ok) = get_text(&api, &format!("jobs/ingest/{done}/successfulResults")).await;
    assert!(ok.contains("\"Kept\""), "{ok}");
    let (_, info) = api.get(&format!("jobs/query/{query}")).await;
    assert_eq!(info["state"], "JobComplete");
    let (status, csv) = get_text(&api, &format!("jobs/query/{query}/results")).await;
    assert_eq!((status, csv.lines().count()), (StatusCode::OK, 2), "{csv}");
    // The open job takes its upload-complete now; the running one goes on from row 10.
    api.patch(&format!("jobs/ingest/{open}"), &json!({"state": "UploadComplete"})).await;
    poll(&api, &format!("jobs/ingest/{open}"), |i| i["state"] == "JobComplete").await;
    let path = format!("jobs/ingest/{running}");
    assert_eq!(api.get(&path).await.1["numberRecordsProcessed"], 10);
    pg.control.advance_clock(3).await;
    let info = poll(&api, &path, |i| i["state"] == "JobComplete").await;
    assert_eq!(info["numberRecordsProcessed"], 25);
    let (_, ok) = get_text(&api, &format!("{path}/successfulResults")).await;
    assert_eq!(ok.lines().count(), 26);
    assert_eq!(api.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk %'").await["totalSize"], 25);
    // A new job does not reuse an old id.
    let (_, fresh) = api.post("jobs/ingest", &json!({"object": "Account", "operation": "insert"})).await;
    assert!(![&done, &open, &running, &query].contains(&&fresh["id"].as_str().unwrap().to_owned()));
}
