//! Bulk API 2.0 ingest and query job life cycles, including failed rows.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn put_csv(api: &Api, job: &str, csv: &str) -> StatusCode {
    api.http
        .put(api.url(&format!("jobs/ingest/{job}/batches")))
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

async fn get_text(api: &Api, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = api.http.get(api.url(path)).bearer_auth(&api.token).send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

/// Polls the job until it reaches a terminal state (bounded; no timed sleeps).
async fn wait_done(api: &Api, kind: &str, job: &str) -> Value {
    for _ in 0..5000 {
        let (_, info) = api.get(&format!("jobs/{kind}/{job}")).await;
        if ["JobComplete", "Failed", "Aborted"].contains(&info["state"].as_str().unwrap_or("")) {
            return info;
        }
        tokio::task::yield_now().await;
    }
    panic!("job {job} did not finish");
}

#[tokio::test]
async fn ingest_insert_with_failed_rows() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, info) = api.post("jobs/ingest", &json!({"object": "Contact", "operation": "insert", "columnDelimiter": "COMMA", "lineEnding": "LF", "contentType": "CSV"})).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["state"], "Open");
    assert_eq!(info["jobType"], "V2Ingest");
    assert_eq!(info["apiVersion"], 66.0);
    let job = info["id"].as_str().unwrap().to_owned();
    assert!(job.starts_with("750"));
    assert_eq!(info["contentUrl"], format!("services/data/v66.0/jobs/ingest/{job}/batches"));

    let csv = "FirstName,LastName,Email\r\nBob,x,contact1@example.com\r\nAlice,,contact2@example.com\r\nEve,y,not-an-email\r\n";
    assert_eq!(put_csv(&api, &job, csv).await, StatusCode::CREATED);
    let (status, info) = api.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["state"], "UploadComplete");
    assert_eq!(put_csv(&api, &job, csv).await, StatusCode::CONFLICT);

    let info = wait_done(&api, "ingest", &job).await;
    assert_eq!(info["state"], "JobComplete", "{info}");
    assert_eq!(info["numberRecordsProcessed"], 3);
    assert_eq!(info["numberRecordsFailed"], 2);

    let (status, headers, ok) = get_text(&api, &format!("jobs/ingest/{job}/successfulResults")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = ok.lines().collect();
    assert_eq!(lines[0], "\"sf__Id\",\"sf__Created\",\"FirstName\",\"LastName\",\"Email\"");
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("\"003") && lines[1].contains("\"true\",\"Bob\""), "{ok}");
    let (_, _, failed) = get_text(&api, &format!("jobs/ingest/{job}/failedResults")).await;
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines[0], "\"sf__Id\",\"sf__Error\",\"FirstName\",\"LastName\",\"Email\"");
    assert!(
        lines[1].contains("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"),
        "{failed}"
    );
    assert!(lines[2].contains("INVALID_EMAIL_ADDRESS"), "{failed}");
    assert_eq!(api.query("SELECT COUNT() FROM Contact").await["totalSize"], 1);
    let (_, _, unprocessed) = get_text(&api, &format!("jobs/ingest/{job}/unprocessedrecords")).await;
    assert_eq!(unprocessed.lines().count(), 1);

    let (status, list) = api.get("jobs/ingest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["records"].as_array().unwrap().len(), 1);
    assert_eq!(api.delete(&format!("jobs/ingest/{job}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&format!("jobs/ingest/{job}")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ingest_update_upsert_delete_and_dialects() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let a = api.create("Account", json!({"Name": "Before"})).await;
    let run = |body: Value, csv: String| {
        let api = api.clone();
        async move {
            let (_, info) = api.post("jobs/ingest", &body).await;
            let job = info["id"].as_str().unwrap().to_owned();
            assert_eq!(put_csv(&api, &job, &csv).await, StatusCode::CREATED);
            api.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
            wait_done(&api, "ingest", &job).await
        }
    };
    let info = run(
        json!({"object": "Account", "operation": "update", "columnDelimiter": "PIPE"}),
        format!("Id|Name|NumberOfEmployees\n{a}|After|42\n"),
    )
    .await;
    assert_eq!(
        (info["numberRecordsProcessed"].as_u64(), info["numberRecordsFailed"].as_u64()),
        (Some(1), Some(0)),
        "{info}"
    );
    let (_, rec) = api.get(&format!("sobjects/Account/{a}")).await;
    assert_eq!((rec["Name"].as_str(), rec["NumberOfEmployees"].as_u64()), (Some("After"), Some(42)));
    let info = run(json!({"object": "Account", "operation": "upsert", "externalIdFieldName": "External_Id__c", "columnDelimiter": "TAB"}),
        "External_Id__c\tName\nE1\tOne\nE2\tTwo\nE1\tOne again\n".into()).await;
    assert_eq!(info["numberRecordsFailed"], 0, "{info}");
    assert_eq!(
        api.query("SELECT Name FROM Account WHERE External_Id__c = 'E1'").await["records"][0]["Name"],
        "One again"
    );
    let info = run(json!({"object": "Account", "operation": "delete"}), format!("Id\n{a}\n001000000000000AAA\n")).await;
    assert_eq!((info["numberRecordsProcessed"].as_u64(), info["numberRecordsFailed"].as_u64()), (Some(2), Some(1)));
    // A header naming an unknown field fails the whole job.
    let info = run(json!({"object": "Account", "operation": "insert"}), "Nope\nx\n".into()).await;
    assert_eq!(info["state"], "Failed");
    assert_eq!(info["errorMessage"], "InvalidBatch : Field name not found : Nope");
    // Bad job definitions.
    for body in [
        json!({"object": "Whizbang", "operation": "insert"}),
        json!({"object": "Account", "operation": "merge"}),
        json!({"object": "Account", "operation": "upsert"}),
        json!({"object": "Account", "operation": "insert", "columnDelimiter": "SPACE"}),
        json!({"object": 5, "operation": "insert"}),
    ] {
        let (status, err) = api.post("jobs/ingest", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert!(err[0]["errorCode"].is_string(), "{err}");
    }
}

#[tokio::test]
async fn ingest_abort_leaves_rows_unprocessed() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (_, info) = api.post("jobs/ingest", &json!({"object": "Account", "operation": "insert"})).await;
    let job = info["id"].as_str().unwrap().to_owned();
    put_csv(&api, &job, "Name\nA\nB\n").await;
    let (status, info) = api.patch(&format!("jobs/ingest/{job}"), &json!({"state": "Aborted"})).await;
    assert_eq!((status, info["state"].as_str()), (StatusCode::OK, Some("Aborted")));
    let (_, _, unprocessed) = get_text(&api, &format!("jobs/ingest/{job}/unprocessedrecords")).await;
    assert_eq!(unprocessed, "Name\nA\nB\n");
    assert_eq!(api.query("SELECT COUNT() FROM Account").await["totalSize"], 0);
    let (status, _) = api.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn query_job_pages_results_with_locators() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".into(), 2500)]).await;
    let api = admin_api(&pg).await;
    let (status, info) = api
        .post(
            "jobs/query",
            &json!({"operation": "query", "query": "SELECT Id, Name, Owner.Name, NumberOfEmployees FROM Account"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["state"], "UploadComplete");
    let job = info["id"].as_str().unwrap().to_owned();
    let info = wait_done(&api, "query", &job).await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsProcessed"], 2500);

    let mut locator: Option<String> = None;
    let mut ids = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let path = match &locator {
            Some(l) => format!("jobs/query/{job}/results?maxRecords=1000&locator={l}"),
            None => format!("jobs/query/{job}/results?maxRecords=1000"),
        };
        let (status, headers, csv) = get_text(&api, &path).await;
        assert_eq!(status, StatusCode::OK, "{csv}");
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("\"Id\",\"Name\",\"Owner.Name\",\"NumberOfEmployees\""));
        let n = headers["sforce-numberofrecords"].to_str().unwrap().parse::<usize>().unwrap();
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), n);
        for r in rows {
            assert!(r.contains("\"Ada Admin\""), "{r}");
            ids.insert(r.split(',').next().unwrap().to_owned());
        }
        pages += 1;
        let next = headers["sforce-locator"].to_str().unwrap().to_owned();
        if next == "null" {
            break;
        }
        locator = Some(next);
        assert!(pages < 10);
    }
    assert_eq!((pages, ids.len()), (3, 2500));
    // Another version than the job's is refused.
    let (status, _, _) = get_text(&api.at_version("60.0"), &format!("jobs/query/{job}/results")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, err) =
        api.post("jobs/query", &json!({"operation": "query", "query": "SELECT Nope FROM Account"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err[0]["errorCode"], "INVALID_FIELD");
    assert_eq!(api.delete(&format!("jobs/query/{job}")).await.0, StatusCode::NO_CONTENT);
}
