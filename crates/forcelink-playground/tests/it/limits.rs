//! `/limits`: every limit of the recorded answer, in its order, with consumption that moves
//! as the API is used and restarts with the playground day.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn remaining(limits: &Value, name: &str) -> u64 {
    limits[name]["Remaining"].as_u64().unwrap_or_else(|| panic!("{name} missing: {limits}"))
}

#[tokio::test]
async fn every_recorded_limit_is_listed_in_the_recorded_order_with_its_maximum() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, limits) = api.get("limits").await;
    assert_eq!(status, StatusCode::OK);
    let recorded = fixture("rest/limits_full")["response"]["body"].clone();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&limits), keys(&recorded));
    for (name, rec) in recorded.as_object().unwrap() {
        assert_eq!(limits[name]["Max"], rec["Max"], "{name}");
    }
    assert_eq!(limits["PermissionSets"]["CreateCustom"]["Max"], 1000);
}

#[tokio::test]
async fn api_and_bulk_usage_move_the_limits_and_a_new_day_restores_them() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (_, before) = api.get("limits").await;
    api.get("sobjects").await;
    api.get("sobjects").await;
    let (_, after) = api.get("limits").await;
    assert_eq!(remaining(&before, "DailyApiRequests") - remaining(&after, "DailyApiRequests"), 3);
    assert_eq!(remaining(&after, "DailyBulkV2QueryJobs"), 10_000);

    // One query job, its results, one ingest job.
    let (_, job) = api.post("jobs/query", &json!({"operation": "query", "query": "SELECT Id FROM User"})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    for _ in 0..5000 {
        if api.get(&format!("jobs/query/{id}")).await.1["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    let resp = api.http.get(api.url(&format!("jobs/query/{id}/results"))).bearer_auth(&api.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, ingest) = api.post("jobs/ingest", &json!({"object": "Account", "operation": "insert"})).await;
    let ingest = ingest["id"].as_str().unwrap().to_owned();
    api.http
        .put(api.url(&format!("jobs/ingest/{ingest}/batches")))
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body("Name\nA\nB\n")
        .send()
        .await
        .unwrap();
    api.patch(&format!("jobs/ingest/{ingest}"), &json!({"state": "UploadComplete"})).await;
    for _ in 0..5000 {
        if api.get(&format!("jobs/ingest/{ingest}")).await.1["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    let (_, used) = api.get("limits").await;
    assert_eq!(remaining(&used, "DailyBulkV2QueryJobs"), 9_999);
    assert_eq!(remaining(&used, "DailyBulkV2QueryFileStorageMB"), 976_561);
    assert_eq!(remaining(&used, "DailyBulkApiBatches"), 14_999);

    // A day later every daily count starts again.
    pg.control.advance_clock(86_400).await;
    let api = admin_api(&pg).await; // the old session timed out meanwhile
    let (_, next) = api.get("limits").await;
    assert_eq!(remaining(&next, "DailyBulkV2QueryJobs"), 10_000);
    assert_eq!(remaining(&next, "DailyBulkApiBatches"), 15_000);
    assert_eq!(remaining(&next, "DailyApiRequests"), 14_999);
}

#[tokio::test]
async fn data_and_file_storage_follow_the_records_and_files_kept() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (_, before) = api.get("limits").await;
    assert_eq!(remaining(&before, "DataStorageMB"), 5);
    assert_eq!(remaining(&before, "FileStorageMB"), 20);
    // 600 accounts at 2 KB each: 1,200 KB, two started megabytes.
    for chunk in 0..3 {
        let records: Vec<Value> = (0..200)
            .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("Storage {chunk}-{i}")}))
            .collect();
        let (status, _) = api.post("composite/sobjects", &json!({"records": records})).await;
        assert_eq!(status, StatusCode::OK);
    }
    use base64::Engine;
    let file = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1_500_000]);
    api.create("ContentVersion", json!({"Title": "Big", "PathOnClient": "big.bin", "VersionData": file})).await;
    let (_, after) = api.get("limits").await;
    assert_eq!(remaining(&after, "DataStorageMB"), 3, "{}", after["DataStorageMB"]);
    assert_eq!(remaining(&after, "FileStorageMB"), 18, "{}", after["FileStorageMB"]);
}
