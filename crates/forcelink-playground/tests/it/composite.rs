//! composite, composite/batch, composite/tree and sObject collections.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn composite_resolves_references_and_reports_each_subrequest() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let body = json!({"compositeRequest": [
        {"method": "POST", "url": "/services/data/v53.0/sobjects/Account", "referenceId": "refAccount", "body": {"Name": "Composite Co"}},
        {"method": "POST", "url": "/services/data/v53.0/sobjects/Contact", "referenceId": "refContact", "body": {"LastName": "Ref", "AccountId": "@{refAccount.id}"}},
        {"method": "GET", "url": "/services/data/v53.0/query?q=SELECT+Id,+Account.Name+FROM+Contact+WHERE+Id+=+'@{refContact.id}'", "referenceId": "refQuery"},
        {"method": "GET", "url": "/services/data/v53.0/sobjects/Account/@{refQuery.records[0].Account.attributes.url}", "referenceId": "bad"}
    ]});
    let (status, out) = api.post("composite", &body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let r = out["compositeResponse"].as_array().unwrap();
    assert_eq!(r[0]["httpStatusCode"], 201);
    assert_eq!(r[0]["referenceId"], "refAccount");
    let account = r[0]["body"]["id"].as_str().unwrap();
    assert_eq!(r[0]["httpHeaders"]["Location"], format!("/services/data/v53.0/sobjects/Account/{account}"));
    assert_eq!(r[1]["httpStatusCode"], 201);
    assert_eq!(r[2]["body"]["records"][0]["Account"]["Name"], "Composite Co");
    assert_eq!(r[3]["httpStatusCode"], 404);
}

#[tokio::test]
async fn composite_all_or_none_rolls_back_everything() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let body = json!({"allOrNone": true, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v58.0/sobjects/Account", "referenceId": "a", "body": {"Name": "Rolled Back"}},
        {"method": "POST", "url": "/services/data/v58.0/sobjects/Contact", "referenceId": "c", "body": {"AccountId": "@{a.id}"}},
        {"method": "POST", "url": "/services/data/v58.0/sobjects/Account", "referenceId": "never", "body": {"Name": "Never"}}
    ]});
    let (status, out) = api.post("composite", &body).await;
    assert_eq!(status, StatusCode::OK);
    let r = out["compositeResponse"].as_array().unwrap();
    assert_eq!(r[0]["httpStatusCode"], 400);
    assert_eq!(r[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(r[1]["httpStatusCode"], 400);
    assert_eq!(r[1]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(r[2]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(api.query("SELECT COUNT() FROM Account").await["totalSize"], 0);
    let too_many: Vec<Value> = (0..26)
        .map(|i| json!({"method": "GET", "url": "/services/data/v58.0/limits", "referenceId": format!("r{i}")}))
        .collect();
    let (status, _) = api.post("composite", &json!({"compositeRequest": too_many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batch_runs_independently_and_halts_on_error() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let id = api.create("Account", json!({"Name": "Batch", "BillingPostalCode": "94105"})).await;
    let body = json!({"batchRequests": [
        {"method": "PATCH", "url": format!("v66.0/sobjects/Account/{id}"), "richInput": {"Name": "NewName"}},
        {"method": "GET", "url": format!("v66.0/sobjects/Account/{id}?fields=Name,BillingPostalCode")}
    ]});
    let (status, out) = api.post("composite/batch", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["hasErrors"], false);
    assert_eq!(out["results"][0], json!({"statusCode": 204, "result": null}));
    assert_eq!(out["results"][1]["result"]["Name"], "NewName");
    assert_eq!(out["results"][1]["result"]["BillingPostalCode"], "94105");
    let body = json!({"haltOnError": true, "batchRequests": [
        {"method": "POST", "url": "v66.0/sobjects/Account", "richInput": {}},
        {"method": "GET", "url": "v66.0/limits"}
    ]});
    let (_, out) = api.post("composite/batch", &body).await;
    assert_eq!(out["hasErrors"], true);
    assert_eq!(out["results"][0]["statusCode"], 400);
    assert_eq!(out["results"][1]["statusCode"], 412);
    assert_eq!(out["results"][1]["result"][0]["errorCode"], "BATCH_PROCESSING_HALTED");
}

#[tokio::test]
async fn tree_inserts_parents_and_children_or_nothing() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let body = json!({"records": [
        {"attributes": {"type": "Account", "referenceId": "ref1"}, "Name": "SampleAccount1",
         "Contacts": {"records": [
            {"attributes": {"type": "Contact", "referenceId": "ref3"}, "LastName": "Smith"},
            {"attributes": {"type": "Contact", "referenceId": "ref4"}, "LastName": "Evans"}]}},
        {"attributes": {"type": "Account", "referenceId": "ref2"}, "Name": "SampleAccount2"}
    ]});
    let (status, out) = api.post("composite/tree/Account", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    assert_eq!(out["hasErrors"], false);
    let refs: Vec<&str> =
        out["results"].as_array().unwrap().iter().map(|r| r["referenceId"].as_str().unwrap()).collect();
    assert_eq!(refs, ["ref1", "ref3", "ref4", "ref2"]);
    let q = api.query("SELECT Name, (SELECT LastName FROM Contacts) FROM Account WHERE Name = 'SampleAccount1'").await;
    assert_eq!(q["records"][0]["Contacts"]["totalSize"], 2);
    let bad = json!({"records": [
        {"attributes": {"type": "Account", "referenceId": "ok"}, "Name": "Fine"},
        {"attributes": {"type": "Account", "referenceId": "broken"}, "Phone": "1"}
    ]});
    let (status, out) = api.post("composite/tree/Account", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(out["hasErrors"], true);
    assert_eq!(out["results"][0]["referenceId"], "broken");
    assert_eq!(out["results"][0]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(api.query("SELECT COUNT() FROM Account WHERE Name = 'Fine'").await["totalSize"], 0);
}

#[tokio::test]
async fn collections_create_update_retrieve_upsert_delete() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "Name": "example.com", "BillingCity": "San Francisco"},
        {"attributes": {"type": "Contact"}, "FirstName": "Erica"},
        {"attributes": {"type": "Contact"}, "LastName": "Johnson", "FirstName": "Erica"}
    ]});
    let (status, out) = api.post("composite/sobjects", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out[0]["success"], true);
    assert_eq!(
        out[1],
        json!({"success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}]})
    );
    assert_eq!(out[2]["errors"], json!([]));
    let account = out[0]["id"].as_str().unwrap().to_owned();
    let contact = out[2]["id"].as_str().unwrap().to_owned();

    let (_, out) = api
        .patch(
            "composite/sobjects",
            &json!({"records": [{"attributes": {"type": "Account"}, "id": account, "Name": "Renamed"}]}),
        )
        .await;
    assert_eq!(out[0]["success"], true);
    let (status, got) = api.get(&format!("composite/sobjects/Account?ids={account}&fields=Name")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got[0]["Name"], "Renamed");
    assert_eq!(got[0]["Id"], account.as_str());
    let (_, got) = api
        .post("composite/sobjects/Account", &json!({"ids": [account, "001000000000000AAA"], "fields": ["Name"]}))
        .await;
    assert_eq!(got[1], Value::Null);

    let (_, out) = api
        .patch(
            "composite/sobjects/Account/External_Id__c",
            &json!({"records": [
        {"attributes": {"type": "Account"}, "External_Id__c": "X1", "Name": "Up 1"},
        {"attributes": {"type": "Account"}, "External_Id__c": "X1", "Name": "Up 1 again"}]}),
        )
        .await;
    assert_eq!(out[0]["created"], true);
    assert_eq!(out[1]["created"], false);

    // All or none: one bad record rolls back the good one.
    let (_, out) = api
        .post(
            "composite/sobjects",
            &json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "Name": "Good"}, {"attributes": {"type": "Account"}}]}),
        )
        .await;
    assert_eq!(out[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(out[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(api.query("SELECT COUNT() FROM Account WHERE Name = 'Good'").await["totalSize"], 0);

    let (status, out) = api.delete(&format!("composite/sobjects?ids={account},{contact}&allOrNone=false")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(out.as_array().unwrap().iter().all(|r| r["success"] == true));
    let too_many: Vec<Value> =
        (0..201).map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("n{i}")})).collect();
    let (status, body) = api.post("composite/sobjects", &json!({"records": too_many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");
}
