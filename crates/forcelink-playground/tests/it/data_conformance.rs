//! Conformance of the data side with recorded Salesforce answers
//! (`../shared/fixtures/salesforce/rest/` and `bulk2/`, read at test time): each test makes the
//! playground produce the recorded situation over HTTP and compares **shapes** — the same
//! envelope, every recorded key present with the same JSON type (recursively, arrays element by
//! element), the same status and error code, the same CSV header columns.
//!
//! Many fixtures come from client libraries' test stubs about objects the playground does not
//! have (a custom `Whizbang` object). Those recorded bodies are compared after their field names
//! are mapped onto playground fields of the same JSON type; each mapping says why.

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::common::*;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The first difference in shape between `recorded` and `actual`, as `path: reason`, or None.
///
/// * every key of a recorded object must be in the actual object, with the same JSON type;
///   the actual object may have more keys (newer API versions add some);
/// * a recorded `null` accepts any value (the source had no value there, or blanked it), but an
///   actual `null` where the recording has a value is a difference;
/// * numbers are numbers (`300.0` and `400` alike);
/// * arrays: an empty recording accepts any array; a non-empty recording needs a non-empty answer; actual element `i` is compared with
///   recorded element `i` (the last recorded element once the recording runs out), so arrays
///   of mixed shapes (a failure then a success) are compared position by position.
fn shape_diff(recorded: &Value, actual: &Value, path: &str) -> Option<String> {
    shape_diff_with(recorded, actual, path, false)
}

/// [`shape_diff`]; with `actual_null_ok`, an actual `null` also matches any recorded value.
fn shape_diff_with(recorded: &Value, actual: &Value, path: &str, actual_null_ok: bool) -> Option<String> {
    match (recorded, actual) {
        (Value::Null, _) => None,
        (_, Value::Null) if actual_null_ok => None,
        (Value::Object(r), Value::Object(a)) => r.iter().find_map(|(k, rv)| match a.get(k) {
            None => Some(format!("{path}.{k}: missing (recorded {rv})")),
            Some(av) => shape_diff_with(rv, av, &format!("{path}.{k}"), actual_null_ok),
        }),
        (Value::Array(r), Value::Array(a)) => {
            if r.is_empty() {
                return None;
            }
            if a.is_empty() {
                return Some(format!("{path}: empty array, recorded {} element(s)", r.len()));
            }
            a.iter().enumerate().find_map(|(i, av)| {
                shape_diff_with(&r[i.min(r.len() - 1)], av, &format!("{path}[{i}]"), actual_null_ok)
            })
        }
        _ if kind(recorded) == kind(actual) => None,
        _ => Some(format!("{path}: recorded {} {recorded}, got {} {actual}", kind(recorded), kind(actual))),
    }
}

#[track_caller]
fn assert_shape(name: &str, recorded: &Value, actual: &Value) {
    if let Some(d) = shape_diff(recorded, actual, "$") {
        panic!("{name}: shape differs at {d}\nrecorded: {recorded}\nactual:   {actual}");
    }
}

/// `(status, body)` of the fixture's response.
fn recorded(name: &str) -> (Option<u16>, Value) {
    let f = fixture(name);
    assert_eq!(f["case"], name.rsplit('/').next().unwrap(), "fixture {name}");
    (f["response"]["status"].as_u64().map(|s| u16::try_from(s).unwrap()), f["response"]["body"].clone())
}

/// Renames object keys everywhere in `v` (`from` → `to`).
fn rename_keys(v: &Value, map: &[(&str, &str)]) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let k = map.iter().find(|(from, _)| from == k).map_or(k.as_str(), |(_, to)| to);
                out.insert(k.to_owned(), rename_keys(x, map));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| rename_keys(x, map)).collect()),
        other => other.clone(),
    }
}

/// Compares status and body shape with the fixture `name` (its body mapped by `map`).
#[track_caller]
fn conforms(name: &str, map: &[(&str, &str)], status: StatusCode, actual: &Value) {
    let (rec_status, body) = recorded(name);
    if let Some(s) = rec_status {
        assert_eq!(status.as_u16(), s, "{name}: status; body {actual}");
    }
    assert_shape(name, &rename_keys(&body, map), actual);
}

/// Error answers: the status, the array envelope, and the same `errorCode` as recorded.
#[track_caller]
fn conforms_error(name: &str, status: StatusCode, actual: &Value) {
    conforms(name, &[], status, actual);
    let (_, body) = recorded(name);
    assert_eq!(actual[0]["errorCode"], body[0]["errorCode"], "{name}: {actual}");
    assert_eq!(actual.as_array().map(Vec::len), Some(1), "{name}: {actual}");
}

#[test]
fn the_shape_comparison_reports_the_path_of_the_first_difference() {
    let (_, body) = recorded("rest/query_page_with_next");
    assert_eq!(shape_diff(&body, &body, "$"), None);
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("nextRecordsUrl");
    assert_eq!(
        shape_diff(&body, &missing, "$").unwrap(),
        "$.nextRecordsUrl: missing (recorded \"/services/data/v26.0/query/01gD\")"
    );
    let mut typed = body.clone();
    typed["records"][0]["attributes"]["url"] = json!(7);
    assert!(shape_diff(&body, &typed, "$").unwrap().starts_with("$.records[0].attributes.url: recorded string"));
    let mut empty = body.clone();
    empty["records"] = json!([]);
    assert!(shape_diff(&body, &empty, "$").unwrap().starts_with("$.records: empty array"));
    assert!(shape_diff(&body, &json!([body.clone()]), "$").unwrap().starts_with("$: recorded object"));
    // Extra keys are allowed; an actual null where a value was recorded is not.
    let mut extra = body.clone();
    extra["extra"] = json!(1);
    assert_eq!(shape_diff(&body, &extra, "$"), None);
    let mut null = body.clone();
    null["totalSize"] = Value::Null;
    assert!(shape_diff(&body, &null, "$").unwrap().starts_with("$.totalSize: recorded number"));
}

// ---- records ----------------------------------------------------------------------------------

#[tokio::test]
async fn create_and_delete_answer_like_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, created) = api.post("sobjects/Account", &json!({"Name": "a"})).await;
    conforms("rest/create_account_201", &[], status, &created);
    // The Postman example posts a placeholder `Name` to a Contact; Contact.Name is computed,
    // so the required LastName is posted instead.
    let (status, contact) = api.post("sobjects/Contact", &json!({"LastName": "<string>"})).await;
    conforms("rest/create_record_postman", &[], status, &contact);
    let id = created["id"].as_str().unwrap();
    let (status, body) = api.delete(&format!("sobjects/Account/{id}")).await;
    assert_eq!(body, Value::Null, "a 204 has no body");
    conforms("rest/delete_account_204", &[], status, &body);
}

#[tokio::test]
async fn upsert_created_matches_the_recording() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    // The stub's external id field is External__c; the seed's is External_Id__c.
    let (status, body) = api.patch("sobjects/Account/External_Id__c/foobar", &json!({"Name": "Foobar"})).await;
    conforms("rest/upsert_created", &[], status, &body);
}

// ---- metadata ---------------------------------------------------------------------------------

#[tokio::test]
async fn describe_global_and_describe_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, global) = api.at_version("26.0").get("sobjects").await;
    conforms("rest/describe_global_single_sobject", &[], status, &global);
    // Every sObject entry (not only Account) has the recorded entry's keys.
    assert!(global["sobjects"].as_array().unwrap().len() > 18);

    // The full describe is of a custom-style object with every field type. The top level is
    // compared with Account's describe (the seed's custom object Invoice__c has no child
    // relationships, the recording has twelve), the fields with those of Account, Contact and
    // Invoice__c of the same type.
    let (status, describe) = api.get("sobjects/Account/describe").await;
    let (_, rec) = recorded("rest/describe_custom_object_whizbang");
    assert_eq!(status, StatusCode::OK);
    let mut top = rec.clone();
    let rec_fields = top.as_object_mut().unwrap().remove("fields").unwrap();
    assert_shape("describe (top level)", &top, &describe);
    let mut fields = Vec::new();
    for o in ["Account", "Contact", "Invoice__c"] {
        let (_, d) = api.get(&format!("sobjects/{o}/describe")).await;
        fields.extend(d["fields"].as_array().unwrap().iter().cloned());
    }
    // Per-field attributes such as controllerName, defaultValue or inlineHelpText are null
    // unless the field has one, so a null there matches; every key must still be present.
    let mut compared = 0;
    for rf in rec_fields.as_array().unwrap() {
        let Some(af) = fields.iter().find(|f| f["type"] == rf["type"]) else { continue };
        if let Some(d) = shape_diff_with(rf, af, "$", true) {
            panic!("describe field {} of type {}: shape differs at {d}\nactual: {af}", rf["name"], rf["type"]);
        }
        compared += 1;
    }
    assert!(compared >= 5, "only {compared} field types in common");
}

#[tokio::test]
async fn describe_global_lists_the_seeds_platform_events_as_publishable_only() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, global) = api.get("sobjects").await;
    assert_eq!(status, StatusCode::OK);
    let list = global["sobjects"].as_array().unwrap();
    let notice = list.iter().find(|o| o["name"] == "Forcelink_Notice__e").expect("the default platform event");
    assert_eq!(notice["createable"], true);
    assert_eq!(notice["queryable"], false);
    assert_eq!(notice["custom"], true);
    // Same keys as every other entry (clients read them all the same way).
    let account = list.iter().find(|o| o["name"] == "Account").unwrap();
    let keys = |o: &Value| o.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(notice), keys(account));
}

#[tokio::test]
async fn limits_and_record_counts_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, limits) = api.get("limits").await;
    conforms("rest/limits_full", &[], status, &limits);
    api.create("Lead", json!({"LastName": "L", "Company": "C"})).await;
    let (status, counts) = api.get("limits/recordCount?sObjects=Account,Contact,Lead").await;
    conforms("rest/limits_record_count", &[], status, &counts);
}

// ---- queries ----------------------------------------------------------------------------------

/// The Whizbang stubs' fields mapped onto Account fields of the same JSON type.
const WHIZBANG_ON_ACCOUNT: &[(&str, &str)] = &[("Text_Label", "Name")];

#[tokio::test]
async fn query_pages_with_and_without_next_match_the_recordings() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".into(), 2001)]).await;
    let api = admin_api(&pg).await;
    let first = api.at_version("26.0").query("SELECT Name FROM Account").await;
    conforms("rest/query_page_with_next", WHIZBANG_ON_ACCOUNT, StatusCode::OK, &first);
    let next = first["nextRecordsUrl"].as_str().unwrap();
    let (status, last) = api.get(next).await;
    conforms("rest/query_page_last", WHIZBANG_ON_ACCOUNT, status, &last);
    assert!(last.get("nextRecordsUrl").is_none(), "{last}");
    let (status, empty) = api.query_status("SELECT Id FROM Account WHERE Name = 'none'").await;
    conforms("rest/query_empty", &[], status, &empty);
}

#[tokio::test]
async fn aggregate_rows_match_the_recording() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    // Opportunity has no CampaignId here; AccountId is a reference of the same JSON type.
    let a = api.create("Account", json!({"Name": "A"})).await;
    let b = api.create("Account", json!({"Name": "B"})).await;
    for (amount, account) in [(100, Some(&a)), (200, Some(&a)), (100, Some(&b)), (400, None)] {
        let mut o = json!({"Name": "O", "StageName": "Prospecting", "CloseDate": "2024-01-01", "Amount": amount});
        if let Some(a) = account {
            o["AccountId"] = json!(a);
        }
        api.create("Opportunity", o).await;
    }
    let (status, body) = api
        .query_status("SELECT AccountId, SUM(Amount) FROM Opportunity GROUP BY AccountId ORDER BY AccountId NULLS LAST")
        .await;
    conforms("rest/query_aggregate", &[("CampaignId", "AccountId")], status, &body);
    assert_eq!(body["totalSize"], 3);
    for r in body["records"].as_array().unwrap() {
        assert_eq!(r["attributes"], json!({"type": "AggregateResult"}), "no url on aggregate rows");
    }
}

#[tokio::test]
async fn parent_and_child_relationships_match_the_recording() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    // Whizbang → Contact: a checkbox, text, date, datetime; its parent (ParentWhizbang__r →
    // Account) and its children (Whizbangs__r → Cases). The multi-select picklist maps to
    // Account.Name, a string as well: Contact has no multi-select picklist.
    let acc = api.create("Account", json!({"Name": "Parent", "Phone": "555"})).await;
    let con = api
        .create(
            "Contact",
            json!({"LastName": "Hi there!", "DoNotCall": false, "Birthdate": "2010-01-01", "AccountId": acc}),
        )
        .await;
    api.create("Case", json!({"ContactId": con, "Subject": "Child"})).await;
    let body = api
        .query(
            "SELECT DoNotCall, LastName, Birthdate, CreatedDate, Account.Name, Account.Phone, \
             (SELECT Subject FROM Cases) FROM Contact",
        )
        .await;
    let map = [
        ("Checkbox_Label", "DoNotCall"),
        ("Date_Label", "Birthdate"),
        ("DateTime_Label", "CreatedDate"),
        ("ParentWhizbang__r", "Account"),
        ("Whizbangs__r", "Cases"),
        ("Name", "Subject"),
    ];
    // Inside the parent, Name and Text_Label are both strings: Account.Name and Account.Phone.
    let (_, mut rec) = recorded("rest/query_parent_and_child_relationships");
    let r0 = &mut rec["records"][0];
    r0.as_object_mut().unwrap().remove("Picklist_Multiselect_Label");
    r0["Text_Label"] = json!("Hi there!");
    let parent = r0["ParentWhizbang__r"].as_object_mut().unwrap();
    parent.remove("Text_Label");
    parent.insert("Phone".into(), json!("x"));
    let mut rec = rename_keys(&rec, &map);
    rec["records"][0]["LastName"] = rec["records"][0]["Text_Label"].take();
    rec["records"][0].as_object_mut().unwrap().remove("Text_Label");
    // The parent's Name was renamed to Subject with the child's; put it back.
    let p = rec["records"][0]["Account"].as_object_mut().unwrap();
    let v = p.remove("Subject").unwrap();
    p.insert("Name".into(), v);
    assert_shape("rest/query_parent_and_child_relationships", &rec, &body);
    // The date and datetime strings have the recorded formats.
    let (_, raw) = recorded("rest/query_parent_and_child_relationships");
    let r = &body["records"][0];
    assert_eq!(r["Birthdate"].as_str().unwrap().len(), raw["records"][0]["Date_Label"].as_str().unwrap().len());
    let dt = r["CreatedDate"].as_str().unwrap();
    assert_eq!(dt.len(), raw["records"][0]["DateTime_Label"].as_str().unwrap().len(), "{dt}");
    assert!(dt.ends_with("+0000"), "{dt}");
}

// ---- composite and collections ------------------------------------------------------------------

#[tokio::test]
async fn collections_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (_, rec) = recorded("rest/collections_create_success");
    let req = fixture("rest/collections_create_success")["request"]["body"].clone();
    assert_eq!(rec.as_array().unwrap().len(), 2);
    let (status, body) = api.post("composite/sobjects", &req).await;
    conforms("rest/collections_create_success", &[], status, &body);

    // No duplicate rules here: the first record fails on a missing required field instead of
    // DUPLICATES_DETECTED; the per-record error has the same shape (statusCode, not errorCode).
    let mut req = fixture("rest/collections_create_partial_failure")["request"]["body"].clone();
    req["records"][0].as_object_mut().unwrap().remove("Name");
    let (status, body) = api.post("composite/sobjects", &req).await;
    conforms("rest/collections_create_partial_failure", &[], status, &body);
    assert!(body[0].get("id").is_none(), "a failed item has no id key: {body}");

    let id = api.create("Account", json!({"Name": "Sample Account"})).await;
    let (status, body) = api.get(&format!("composite/sobjects/Account?ids={id}&fields=Name")).await;
    conforms("rest/collections_retrieve", &[], status, &body);

    let (status, body) = api
        .patch(
            "composite/sobjects/Account/Id",
            &json!({"allOrNone": false, "records": [{"attributes": {"type": "Account"}, "Id": id, "Name": "N"}]}),
        )
        .await;
    conforms("rest/collections_upsert_updated", &[], status, &body);
    assert_eq!(body[0]["created"], false);
}

#[tokio::test]
async fn composite_and_composite_batch_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let req = fixture("rest/composite_two_creates")["request"]["body"].clone();
    let (status, body) = api.at_version("53.0").post("composite", &req).await;
    conforms("rest/composite_two_creates", &[], status, &body);

    // The documentation example is written for v67.0, newer than the playground's latest
    // version (a version an org does not have answers 404); the same batch runs under v66.0.
    let id = api.create("Account", json!({"Name": "Old", "BillingPostalCode": "94105"})).await;
    let req = json!({"batchRequests": [
        {"method": "PATCH", "url": format!("v66.0/sobjects/Account/{id}"), "richInput": {"Name": "NewName"}},
        {"method": "GET", "url": format!("v66.0/sobjects/Account/{id}?fields=Name,BillingPostalCode")},
    ]});
    let (status, body) = api.post("composite/batch", &req).await;
    conforms("rest/composite_batch", &[], status, &body);
    assert_eq!(body["results"][0], json!({"statusCode": 204, "result": null}));
}

// ---- errors -----------------------------------------------------------------------------------

#[tokio::test]
async fn error_answers_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;

    let bad = Api { token: "00Dxx0000000000!invalid".into(), ..api.clone() };
    let (status, body) = bad.query_status("SELECT Id FROM Account").await;
    conforms_error("rest/error_invalid_session_id", status, &body);

    let soql = fixture("rest/error_malformed_query_unexpected_token")["request"]["query"]["q"].clone();
    let (status, body) = api.query_status(soql.as_str().unwrap()).await;
    conforms_error("rest/error_malformed_query_unexpected_token", status, &body);

    let (status, body) = api.post("sobjects/Account", &json!({"Name": "x", "foo": "x"})).await;
    conforms_error("rest/error_invalid_field_on_write", status, &body);

    let (status, body) = api.get("sobjects/Whizbang/describe").await;
    conforms_error("rest/error_not_found_resource", status, &body);

    let (status, body) = api.patch("sobjects/Account/rid/001D000000INjVe", &json!({"Name": "Foobar"})).await;
    conforms_error("rest/error_not_found_external_id_field", status, &body);

    // The stub posts to the version root; real clients post to sobjects/<Type>.
    let (status, body) = api.post("sobjects/Account", &json!({"Description": "Accountant"})).await;
    conforms_error("rest/error_required_field_missing", status, &body);
    assert_eq!(body[0]["fields"], json!(["Name"]));

    // The recording's status is unknown (null); DUPLICATE_VALUE is a 400.
    api.create("Account", json!({"Name": "A", "External_Id__c": "uuid-1"})).await;
    let b = api.create("Account", json!({"Name": "B"})).await;
    let (status, body) = api.patch(&format!("sobjects/Account/Id/{b}"), &json!({"External_Id__c": "uuid-1"})).await;
    conforms_error("rest/error_duplicate_value_on_upsert", status, &body);
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = api.get("search?q=bar").await;
    conforms_error("rest/error_malformed_search_braces", status, &body);

    pg.control.settings(json!({"daily_api_requests": 1})).await;
    let (status, body) = api.query_status("SELECT Id FROM Account").await;
    conforms_error("rest/error_request_limit_exceeded", status, &body);
}

// ---- Bulk API 2.0 -------------------------------------------------------------------------------

async fn get_text(api: &Api, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = api.http.get(api.url(path)).bearer_auth(&api.token).send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

async fn put_csv(api: &Api, job: &str, csv: &str) -> (StatusCode, String) {
    let resp = api
        .http
        .put(api.url(&format!("jobs/ingest/{job}/batches")))
        .bearer_auth(&api.token)
        .header("content-type", "text/csv; charset=UTF-8")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The job info once it has left UploadComplete, and once it is terminal (bounded polling).
async fn after_upload(api: &Api, job: &str) -> (Value, Value) {
    let mut first = None;
    for _ in 0..5000 {
        let (_, info) = api.get(&format!("jobs/ingest/{job}")).await;
        let state = info["state"].as_str().unwrap_or("").to_owned();
        if state != "UploadComplete" && first.is_none() {
            first = Some(info.clone());
        }
        if ["JobComplete", "Failed", "Aborted"].contains(&state.as_str()) {
            return (first.unwrap(), info);
        }
        tokio::task::yield_now().await;
    }
    panic!("job {job} did not finish");
}

/// The header row's column names (quotes removed).
fn csv_header(csv: &str) -> Vec<String> {
    csv.lines().next().unwrap_or("").split(',').map(|c| c.trim_matches('"').to_owned()).collect()
}

/// The stubs' Contact upload has `Custom_Id__c`; the seed's Contact external id is
/// `External_Id__c`, and the stub's AccountId values (`ID-13`) are not ids, so the successful
/// upload uses a real Account id.
fn contact_csv(account: &str) -> String {
    format!(
        "External_Id__c,AccountId,Email,FirstName,LastName\r\nCustomID1,{account},contact1@example.com,Bob,x\r\n\
         CustomID2,{account},contact2@example.com,Alice,y\r\n"
    )
}

fn mapped_header(csv: &str) -> Vec<String> {
    csv_header(csv).into_iter().map(|c| if c == "Custom_Id__c" { "External_Id__c".into() } else { c }).collect()
}

#[tokio::test]
async fn ingest_job_infos_in_each_state_and_result_headers_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let req = fixture("bulk2/ingest_job_created_open")["request"]["body"].clone();
    let (status, info) = api.at_version("52.0").post("jobs/ingest", &req).await;
    conforms("bulk2/ingest_job_created_open", &[], status, &info);
    conforms("bulk2/ingest_job_created_with_content_url", &[], status, &info);
    let job = info["id"].as_str().unwrap().to_owned();
    let api52 = api.at_version("52.0");

    let account = api.create("Account", json!({"Name": "A"})).await;
    let (status, text) = put_csv(&api52, &job, &contact_csv(&account)).await;
    let (rec_status, rec_body) = recorded("bulk2/ingest_upload_batches_created");
    assert_eq!((Some(status.as_u16()), text.as_str()), (rec_status, rec_body.as_str().unwrap()));

    let (status, info) = api52.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
    conforms("bulk2/ingest_job_upload_complete", &[], status, &info);
    assert_eq!(info["state"], "UploadComplete");

    // InProgress lasts only while the worker runs, and a test must not depend on catching it:
    // the in-progress recording is compared with the first info after UploadComplete (every
    // state after it has the in-progress keys), and the state must be one that follows it.
    let (first, done) = after_upload(&api52, &job).await;
    conforms("bulk2/ingest_job_in_progress", &[], StatusCode::OK, &first);
    assert!(["InProgress", "JobComplete"].contains(&first["state"].as_str().unwrap()), "{first}");
    conforms("bulk2/ingest_job_complete", &[], StatusCode::OK, &done);
    conforms("bulk2/ingest_job_info_complete_with_timings", &[], StatusCode::OK, &done);
    assert_eq!((done["state"].as_str(), done["numberRecordsProcessed"].as_u64()), (Some("JobComplete"), Some(2)));

    let (status, _, ok) = get_text(&api52, &format!("jobs/ingest/{job}/successfulResults")).await;
    let (rec_status, rec) = recorded("bulk2/ingest_successful_results_csv");
    assert_eq!(Some(status.as_u16()), rec_status);
    assert_eq!(csv_header(&ok), mapped_header(rec.as_str().unwrap()));
    assert_eq!(ok.lines().count(), rec.as_str().unwrap().lines().count(), "{ok}");

    // Failed rows: the stub's own rows, whose AccountId values are not ids.
    let (_, info) = api52.post("jobs/ingest", &json!({"object": "Contact", "operation": "insert"})).await;
    let job = info["id"].as_str().unwrap().to_owned();
    let upload = fixture("bulk2/ingest_upload_batches_created")["request"]["body"].as_str().unwrap().to_owned();
    let upload = upload.replacen("Custom_Id__c", "External_Id__c", 1);
    assert_eq!(put_csv(&api52, &job, &upload).await.0, StatusCode::CREATED);
    api52.patch(&format!("jobs/ingest/{job}"), &json!({"state": "UploadComplete"})).await;
    let (_, done) = after_upload(&api52, &job).await;
    assert_eq!(done["numberRecordsFailed"], 2, "{done}");
    let (status, _, failed) = get_text(&api52, &format!("jobs/ingest/{job}/failedResults")).await;
    let (rec_status, rec) = recorded("bulk2/ingest_failed_results_csv");
    assert_eq!(Some(status.as_u16()), rec_status);
    assert_eq!(csv_header(&failed), mapped_header(rec.as_str().unwrap()));
    // Records never created have an empty sf__Id, as recorded.
    for line in failed.lines().skip(1) {
        assert!(line.starts_with("\"\","), "{line}");
    }
}

#[tokio::test]
async fn query_job_and_results_match_the_recordings() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let account = api.create("Account", json!({"Name": "A"})).await;
    for (first, last) in [("Bob", "x"), ("Alice", "y")] {
        api.create("Contact", json!({"FirstName": first, "LastName": last, "AccountId": account})).await;
    }
    let req = fixture("bulk2/query_job_created")["request"]["body"].clone();
    let (status, info) = api.at_version("58.0").post("jobs/query", &req).await;
    conforms("bulk2/query_job_created", &[], status, &info);
    assert_eq!(info["state"], "UploadComplete");
    assert_eq!(info["apiVersion"], 58.0);

    let (_, info) = api
        .post(
            "jobs/query",
            &json!({"operation": "query", "query": "SELECT Id, AccountId, Email, FirstName, LastName FROM Contact"}),
        )
        .await;
    let job = info["id"].as_str().unwrap();
    for _ in 0..5000 {
        if api.get(&format!("jobs/query/{job}")).await.1["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    let (status, headers, csv) = get_text(&api, &format!("jobs/query/{job}/results?maxRecords=10")).await;
    let f = fixture("bulk2/query_results_csv");
    assert_eq!(Some(u64::from(status.as_u16())), f["response"]["status"].as_u64());
    assert_eq!(csv_header(&csv), csv_header(f["response"]["body"].as_str().unwrap()));
    assert_eq!(headers["sforce-numberofrecords"], "2");
    assert_eq!(headers["sforce-locator"], "null");

    // A job-creation body with a value of the wrong type: the REST error array, API_ERROR.
    let resp = api
        .http
        .post(api.url("jobs/query"))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(r#"{"operation": "query", "query": 5}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    conforms_error("bulk2/error_query_job_value_type", status, &body);
}
