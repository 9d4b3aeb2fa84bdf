//! `composite/graph`: graphs of composite subrequests, each all or nothing on its own.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn each_graph_commits_or_rolls_back_on_its_own() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let body = json!({"graphs": [
        {"graphId": "1", "compositeRequest": [
            {"method": "POST", "url": "/services/data/v66.0/sobjects/Account", "referenceId": "acc", "body": {"Name": "Graph One"}},
            {"method": "POST", "url": "/services/data/v66.0/sobjects/Contact", "referenceId": "con", "body": {"LastName": "G", "AccountId": "@{acc.id}"}}
        ]},
        {"graphId": "2", "compositeRequest": [
            {"method": "POST", "url": "/services/data/v66.0/sobjects/Account", "referenceId": "acc", "body": {"Name": "Graph Two"}},
            {"method": "POST", "url": "/services/data/v66.0/sobjects/Contact", "referenceId": "con", "body": {"AccountId": "@{acc.id}"}}
        ]}
    ]});
    let (status, out) = api.post("composite/graph", &body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let graphs = out["graphs"].as_array().unwrap();
    assert_eq!(graphs.len(), 2);
    assert_eq!(graphs[0]["graphId"], "1");
    assert_eq!(graphs[0]["isSuccessful"], true);
    let ok = &graphs[0]["graphResponse"]["compositeResponse"];
    assert_eq!(ok[0]["httpStatusCode"], 201);
    assert_eq!(ok[0]["referenceId"], "acc");
    assert_eq!(ok[1]["httpStatusCode"], 201);
    assert_eq!(graphs[1]["isSuccessful"], false);
    let failed = &graphs[1]["graphResponse"]["compositeResponse"];
    assert_eq!(failed[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(failed[1]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    let names = api.query("SELECT Name FROM Account").await;
    assert_eq!(names["totalSize"], 1, "{names}");
    assert_eq!(names["records"][0]["Name"], "Graph One");
    assert_eq!(api.query("SELECT COUNT() FROM Contact").await["totalSize"], 1);
}

#[tokio::test]
async fn graph_ids_must_be_present_and_unique() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let node = json!({"method": "GET", "url": "/services/data/v66.0/limits", "referenceId": "r"});
    let (status, out) = api
        .post("composite/graph", &json!({"graphs": [{"graphId": "a", "compositeRequest": [node]}, {"graphId": "a", "compositeRequest": [node]}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert!(out[0]["message"].as_str().unwrap().contains("graphId"), "{out}");
    let (status, _) = api.post("composite/graph", &json!({"graphs": [{"compositeRequest": [node]}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("composite/graph").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
