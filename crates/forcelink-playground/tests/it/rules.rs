//! Validation and duplicate rules from the seed, through every write path: REST create,
//! update and upsert, composite, sObject collections and Bulk 2.0 failed results.

use forcelink_playground::seed::{DEFAULT_SEED_TOML, Seed};
use forcelink_test_support::PlaygroundHandle;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const RULES: &str = r#"
[[validation_rules]]
object = "Account"
name = "Revenue_Not_Negative"
condition = "AnnualRevenue < 0"
message = "Annual revenue cannot be negative"
field = "AnnualRevenue"

[[validation_rules]]
object = "Account"
name = "Hot_Needs_Phone"
condition = "Rating = 'Hot' AND Phone = null"
message = "A hot account needs a phone number"

[[validation_rules]]
object = "Contact"
name = "Contact_Of_Closed_Account"
condition = "Account.Rating = 'Cold'"
message = "Cold accounts take no new contacts"
field = "AccountId"

[[duplicate_rules]]
object = "Contact"
name = "Contact_Email_Rule"
fields = ["Email"]

[[duplicate_rules]]
object = "Lead"
name = "Lead_Name_Company"
fields = ["LastName", "Company"]
action = "allow"
message = "You're creating a duplicate record. We recommend you use an existing record instead."
"#;

async fn spawn_with_rules() -> PlaygroundHandle {
    let seed = Seed::from_toml(&format!("{DEFAULT_SEED_TOML}\n{RULES}"), std::path::Path::new(".")).unwrap();
    spawn_playground_with(|c| c.seed = seed).await
}

#[tokio::test]
async fn rest_create_reports_every_failing_validation_rule_in_one_answer() {
    let pg = spawn_with_rules().await;
    let api = admin_api(&pg).await;
    let (status, body) =
        api.post("sobjects/Account", &json!({"Name": "Bad", "AnnualRevenue": -5, "Rating": "Hot"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        json!([
            {"message": "Annual revenue cannot be negative", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["AnnualRevenue"]},
            {"message": "A hot account needs a phone number", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": []}
        ])
    );
    assert_eq!(api.query("SELECT COUNT() FROM Account").await["totalSize"], 0, "a refused insert leaves nothing");
    // One rule fails, the other holds.
    let (status, body) = api.post("sobjects/Account", &json!({"Name": "Hot", "Rating": "Hot", "Phone": "1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn rest_update_and_upsert_are_refused_and_leave_the_record_as_it_was() {
    let pg = spawn_with_rules().await;
    let api = admin_api(&pg).await;
    let id = api.create("Account", json!({"Name": "Good", "AnnualRevenue": 10, "External_Id__c": "E-1"})).await;
    let (status, body) = api.patch(&format!("sobjects/Account/{id}"), &json!({"AnnualRevenue": -1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["errorCode"], "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    let (status, body) =
        api.patch("sobjects/Account/External_Id__c/E-1", &json!({"Rating": "Hot", "AnnualRevenue": -2})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");
    let (_, rec) = api.get(&format!("sobjects/Account/{id}?fields=AnnualRevenue,Rating")).await;
    assert_eq!(rec["AnnualRevenue"].as_f64(), Some(10.0));
    assert_eq!(rec["Rating"], Value::Null);
    // A parent path in the condition: contacts of a cold account are refused.
    let cold = api.create("Account", json!({"Name": "Cold", "Rating": "Cold"})).await;
    let (status, body) = api.post("sobjects/Contact", &json!({"LastName": "X", "AccountId": cold})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["fields"], json!(["AccountId"]));
}

#[tokio::test]
async fn duplicates_are_refused_with_the_duplicate_result_salesforce_sends() {
    let pg = spawn_with_rules().await;
    let api = admin_api(&pg).await;
    let first = api.create("Contact", json!({"LastName": "One", "Email": "same@example.com"})).await;
    let (status, body) = api.post("sobjects/Contact", &json!({"LastName": "Two", "Email": "SAME@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let e = &body[0];
    assert_eq!(e["errorCode"], "DUPLICATES_DETECTED");
    assert_eq!(e["message"], "Use one of these records?");
    // The key is misspelled in Salesforce's own answers; clients read it so.
    let d = &e["duplicateResut"];
    assert_eq!(d["allowSave"], false);
    assert_eq!(d["duplicateRule"], "Contact_Email_Rule");
    assert_eq!(d["duplicateRuleEntityType"], "Contact");
    assert_eq!(d["errorMessage"], "Use one of these records?");
    let m = &d["matchResults"][0];
    assert_eq!(m["entityType"], "Contact");
    assert_eq!(m["matchEngine"], "ExactMatchEngine");
    assert_eq!(m["rule"], "Contact_Email_Rule_Match_Rule");
    assert_eq!(m["size"], 1);
    assert_eq!(m["success"], true);
    let r = &m["matchRecords"][0];
    assert_eq!(r["matchConfidence"], 100.0);
    assert_eq!(r["record"]["Id"], first.as_str());
    assert_eq!(r["record"]["attributes"]["url"], format!("/services/data/v66.0/sobjects/Contact/{first}"));
    // Blank values never match; an update into a duplicate is refused too.
    api.create("Contact", json!({"LastName": "NoMail"})).await;
    let other = api.create("Contact", json!({"LastName": "NoMail2"})).await;
    let (status, body) = api.patch(&format!("sobjects/Contact/{other}"), &json!({"Email": "same@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["errorCode"], "DUPLICATES_DETECTED");
}

#[tokio::test]
async fn an_allow_rule_saves_only_with_the_duplicate_rule_header() {
    let pg = spawn_with_rules().await;
    let api = admin_api(&pg).await;
    let lead = json!({"LastName": "Lee", "Company": "Acme"});
    api.create("Lead", lead.clone()).await;
    let (status, body) = api.post("sobjects/Lead", &lead).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["duplicateResut"]["allowSave"], true);
    assert_eq!(
        body[0]["message"],
        "You're creating a duplicate record. We recommend you use an existing record instead."
    );
    let resp = api
        .http
        .post(api.url("sobjects/Lead"))
        .bearer_auth(&api.token)
        .header("Sforce-Duplicate-Rule-Header", "allowSave=true")
        .json(&lead)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(api.query("SELECT COUNT() FROM Lead").await["totalSize"], 2);
}

#[tokio::test]
async fn composite_and_collections_carry_the_rule_errors() {
    let pg = spawn_with_rules().await;
    let api = admin_api(&pg).await;
    api.create("Contact", json!({"LastName": "One", "Email": "dup@example.com"})).await;
    let body = json!({"compositeRequest": [
        {"method": "POST", "url": "/services/data/v66.0/sobjects/Account", "referenceId": "bad", "body": {"Name": "B", "AnnualRevenue": -1, "Rating": "Hot"}},
        {"method": "POST", "url": "/services/data/v66.0/sobjects/Contact", "referenceId": "dup", "body": {"LastName": "D", "Email": "dup@example.com"}}
    ]});
    let (status, out) = api.post("composite", &body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let r = &out["compositeResponse"];
    assert_eq!(r[0]["httpStatusCode"], 400);
    assert_eq!(r[0]["body"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(r[1]["body"][0]["errorCode"], "DUPLICATES_DETECTED");
    assert_eq!(r[1]["body"][0]["duplicateResut"]["matchResults"][0]["size"], 1);

    let (status, out) = api
        .post(
            "composite/sobjects",
            &json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "Name": "B", "AnnualRevenue": -1, "Rating": "Hot"},
                {"attributes": {"type": "Contact"}, "LastName": "D", "Email": "dup@example.com"},
                {"attributes": {"type": "Account"}, "Name": "Fine"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out[0]["success"], false);
    assert_eq!(
        out[0]["errors"],
        json!([
            {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Annual revenue cannot be negative", "fields": ["AnnualRevenue"]},
            {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "A hot account needs a phone number", "fields": []}
        ])
    );
    assert_eq!(
        out[1]["errors"],
        json!([{"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": []}])
    );
    assert_eq!(out[2]["success"], true);
    assert_eq!(api.query("SELECT COUNT() FROM Account").await["totalSize"], 1);
}

#[tokio::test]
async fn bulk_ingest_failed_results_name_the_rule_errors() {
    let pg = spawn_with_rules().await;
    let api = admin_api(&pg).await;
    api.create("Contact", json!({"LastName": "One", "Email": "dup@example.com"})).await;
    let (_, info) = api.post("jobs/ingest", &json!({"object": "Account", "operation": "insert"})).await;
    let job = info["id"].as_str().unwrap().to_owned();
    let csv = "Name,AnnualRevenue,Rating\nOk,5,Warm\nBad,-3,Hot\n";
    let resp = api
        .http
        .put(api.url(&format!("jobs/ingest/{job}/batches")))
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    api.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
    let mut info = Value::Null;
    for _ in 0..5000 {
        info = api.get(&format!("jobs/ingest/{job}")).await.1;
        if info["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(info["state"], "JobComplete", "{info}");
    assert_eq!(info["numberRecordsFailed"], 1);
    let failed = api
        .http
        .get(api.url(&format!("jobs/ingest/{job}/failedResults")))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        failed.contains(
            "\"FIELD_CUSTOM_VALIDATION_EXCEPTION:Annual revenue cannot be negative:AnnualRevenue -- FIELD_CUSTOM_VALIDATION_EXCEPTION:A hot account needs a phone number: --\""
        ),
        "{failed}"
    );
    let (_, info) = api.post("jobs/ingest", &json!({"object": "Contact", "operation": "insert"})).await;
    let job = info["id"].as_str().unwrap().to_owned();
    api.http
        .put(api.url(&format!("jobs/ingest/{job}/batches")))
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body("LastName,Email\nTwo,dup@example.com\n")
        .send()
        .await
        .unwrap();
    api.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
    for _ in 0..5000 {
        if api.get(&format!("jobs/ingest/{job}")).await.1["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    let failed = api
        .http
        .get(api.url(&format!("jobs/ingest/{job}/failedResults")))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(failed.contains("\"DUPLICATES_DETECTED:Use one of these records?: --\""), "{failed}");
}

#[test]
fn seed_rules_on_unknown_fields_are_refused_with_their_names() {
    let bad =
        format!("{DEFAULT_SEED_TOML}\n[[duplicate_rules]]\nobject = \"Contact\"\nname = \"R\"\nfields = [\"Emial\"]\n");
    let err = Seed::from_toml(&bad, std::path::Path::new(".")).unwrap_err().to_string();
    assert!(err.contains("Emial") && err.contains("duplicate rule R"), "{err}");
    let bad = format!(
        "{DEFAULT_SEED_TOML}\n[[validation_rules]]\nobject = \"Acount\"\ncondition = \"Name = null\"\nmessage = \"m\"\n"
    );
    let err = Seed::from_toml(&bad, std::path::Path::new(".")).unwrap_err().to_string();
    assert!(err.contains("Acount"), "{err}");
}

#[tokio::test]
async fn a_condition_that_is_not_soql_stops_the_playground_at_start() {
    let text = format!(
        "{DEFAULT_SEED_TOML}\n[[validation_rules]]\nobject = \"Account\"\ncondition = \"Nmae = 'x'\"\nmessage = \"m\"\n"
    );
    let seed = Seed::from_toml(&text, std::path::Path::new(".")).unwrap();
    let mut config = forcelink_playground::PlaygroundConfig::new(forcelink_test_support::shared_key_dir());
    config.seed = seed;
    let err = forcelink_playground::Playground::start(config).await.unwrap_err().to_string();
    assert!(err.contains("Nmae") && err.contains("INVALID_FIELD"), "{err}");
}
