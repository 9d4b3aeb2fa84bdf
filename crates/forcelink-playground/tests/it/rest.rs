//! REST resources: versions and resources, describe, record CRUD, upsert, errors, headers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn describe_global_lists_every_required_object_with_key_prefixes() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, body) = api.get("sobjects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["encoding"], "UTF-8");
    assert_eq!(body["maxBatchSize"], 200);
    let names: Vec<&str> = body["sobjects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    for o in [
        "Account",
        "Contact",
        "Lead",
        "Opportunity",
        "Case",
        "User",
        "UserLogin",
        "Profile",
        "PermissionSet",
        "PermissionSetAssignment",
        "PermissionSetLicense",
        "PermissionSetLicenseAssign",
        "PackageLicense",
        "UserPackageLicense",
        "ContentVersion",
        "ContentDocument",
        "ContentDocumentLink",
        "Organization",
    ] {
        assert!(names.contains(&o), "{o} missing from {names:?}");
    }
    let account = body["sobjects"].as_array().unwrap().iter().find(|o| o["name"] == "Account").unwrap();
    assert_eq!(account["keyPrefix"], "001");
    assert_eq!(account["urls"]["describe"], "/services/data/v66.0/sobjects/Account/describe");
}

#[tokio::test]
async fn describe_has_fields_types_relationships_and_picklists() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, d) = api.get("sobjects/Contact/describe").await;
    assert_eq!(status, StatusCode::OK);
    let field = |n: &str| d["fields"].as_array().unwrap().iter().find(|f| f["name"] == n).cloned().unwrap();
    let id = field("Id");
    assert_eq!(
        (id["type"].as_str(), id["length"].as_u64(), id["nillable"].as_bool()),
        (Some("id"), Some(18), Some(false))
    );
    assert_eq!(id["soapType"], "tns:ID");
    let account = field("AccountId");
    assert_eq!(account["type"], "reference");
    assert_eq!(account["referenceTo"], json!(["Account"]));
    assert_eq!(account["relationshipName"], "Account");
    assert_eq!(field("LastName")["nillable"], false);
    assert_eq!(field("Name")["createable"], false);
    assert!(field("LeadSource")["picklistValues"].as_array().unwrap().iter().any(|p| p["value"] == "Web"));
    let (_, a) = api.get("sobjects/Account/describe").await;
    assert!(
        a["childRelationships"].as_array().unwrap().iter().any(|c| c["relationshipName"] == "Contacts"
            && c["childSObject"] == "Contact"
            && c["field"] == "AccountId")
    );
    let (status, body) = api.get("sobjects/Whizbang/describe").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]));
}

#[tokio::test]
async fn create_retrieve_update_delete_round_trip() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    // Trailing slash, as some clients send it.
    let (status, created) = api
        .post("sobjects/Account/", &json!({"Name": "Acme", "AnnualRevenue": 1500000, "NumberOfEmployees": 12}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["success"], true);
    assert_eq!(created["errors"], json!([]));
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("001"));

    let (status, rec) = api.get(&format!("sobjects/Account/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        rec["attributes"],
        json!({"type": "Account", "url": format!("/services/data/v66.0/sobjects/Account/{id}")})
    );
    assert_eq!(rec["Name"], "Acme");
    assert_eq!(rec["NumberOfEmployees"], 12);
    assert_eq!(rec["AnnualRevenue"].as_f64(), Some(1_500_000.0));
    assert_eq!(rec["IsDeleted"], false);
    assert!(rec["OwnerId"].as_str().unwrap().starts_with("005"));
    assert_eq!(rec["CreatedDate"].as_str().unwrap().len(), "2011-07-07T00:37:00.000+0000".len());

    // The 15-character form names the same record.
    let (status, rec) = api.get(&format!("sobjects/Account/{}?fields=Name,Industry", &id[..15])).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = rec.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Name", "Industry", "Id"]);

    let (status, body) = api.patch(&format!("sobjects/Account/{id}"), &json!({"Industry": "Banking"})).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, rec) = api.get(&format!("sobjects/Account/{id}")).await;
    assert_eq!(rec["Industry"], "Banking");

    let (status, _) = api.delete(&format!("sobjects/Account/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get(&format!("sobjects/Account/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body[0]["errorCode"], "ENTITY_IS_DELETED");
}

#[tokio::test]
async fn write_errors_have_salesforce_codes_and_fields() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let cases: Vec<(&str, Value, StatusCode, Value)> = vec![
        (
            "Account",
            json!({"Description": "Accountant"}),
            StatusCode::BAD_REQUEST,
            json!([{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}]),
        ),
        (
            "Account",
            json!({"Name": "x", "foo": "x"}),
            StatusCode::BAD_REQUEST,
            json!([{"message": "No such column 'foo' on sobject of type Account", "errorCode": "INVALID_FIELD"}]),
        ),
        (
            "Contact",
            json!({"LastName": "x", "Email": "123"}),
            StatusCode::BAD_REQUEST,
            json!([{"message": "Email: invalid email address: 123", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}]),
        ),
        (
            "Contact",
            json!({"LastName": "x", "AccountId": "not-an-id"}),
            StatusCode::BAD_REQUEST,
            json!([{"message": "Account ID: id value of incorrect type: not-an-id", "errorCode": "MALFORMED_ID", "fields": ["AccountId"]}]),
        ),
        ("Account", json!({"Name": "x", "Id": "001000000000000AAA"}), StatusCode::BAD_REQUEST, Value::Null),
        (
            "Whizbang",
            json!({"Name": "x"}),
            StatusCode::NOT_FOUND,
            json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]),
        ),
    ];
    for (object, body, want_status, want_body) in cases {
        let (status, got) = api.post(&format!("sobjects/{object}"), &body).await;
        assert_eq!(status, want_status, "{object} {body}: {got}");
        if want_body.is_null() {
            assert_eq!(got[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE", "{got}");
        } else {
            assert_eq!(got, want_body, "{object} {body}");
        }
    }
    // Bad JSON and a too-long string: clear errors, nothing written.
    let resp = api
        .http
        .post(api.url("sobjects/Account"))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{\"Name\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "JSON_PARSER_ERROR");
    let (status, body) = api.post("sobjects/Account", &json!({"Name": "n".repeat(256)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "STRING_TOO_LONG");
    let count = api.query("SELECT COUNT() FROM Account").await;
    assert_eq!(count["totalSize"], 0);
}

#[tokio::test]
async fn upsert_by_external_id_creates_updates_and_reports_multiple_matches() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let (status, body) = api.patch("sobjects/Account/External_Id__c/EXT-1", &json!({"Name": "Foobar"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], true);
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = api.patch("sobjects/Account/External_Id__c/EXT-1", &json!({"Name": "Foobar 2"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "success": true, "errors": [], "created": false}));
    // API 45.0 and older: 204 with no body.
    let (status, body) =
        api.at_version("45.0").patch("sobjects/Account/External_Id__c/EXT-1", &json!({"Name": "Foobar 3"})).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, rec) = api.get("sobjects/Account/External_Id__c/EXT-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rec["Name"], "Foobar 3");
    // Duplicate external id values are refused; a non-unique idLookup field can match twice.
    let (status, body) = api.post("sobjects/Account", &json!({"Name": "Dup", "External_Id__c": "EXT-1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "DUPLICATE_VALUE");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("duplicate value found: External_Id__c duplicates value on record with id: ")
    );
    api.create("Contact", json!({"LastName": "A", "Email": "same@example.com"})).await;
    api.create("Contact", json!({"LastName": "B", "Email": "same@example.com"})).await;
    let (status, body) = api.patch("sobjects/Contact/Email/same@example.com", &json!({"Title": "x"})).await;
    assert_eq!(status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert!(body[0].as_str().unwrap().starts_with("/services/data/v66.0/sobjects/Contact/003"));
    let (status, body) = api.patch("sobjects/Account/Namez/1", &json!({"Name": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body[0]["message"], "Provided external ID field does not exist or is not accessible: Namez");
}

#[tokio::test]
async fn every_401_has_the_same_body_and_the_login_host_refuses_api_calls() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let want = json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    let bad = Api { token: "00Dxx!bogus".into(), ..api.clone() };
    for path in ["sobjects", "query?q=SELECT+Id+FROM+Account", "limits", "composite", "jobs/ingest"] {
        let (status, body) = bad.get(path).await;
        assert_eq!((status, &body), (StatusCode::UNAUTHORIZED, &want), "{path}");
    }
    let no_token = api.http.get(api.url("sobjects")).send().await.unwrap();
    let (status, body) = status_json(no_token).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, want.clone()));
    let login = Api { instance: pg.login_url().to_owned(), ..api.clone() };
    let (status, body) = login.get("sobjects").await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, want));
}

#[tokio::test]
async fn any_version_works_and_resources_are_listed() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    for v in ["50.0", "58.0", "66.0"] {
        let (status, body) = api.at_version(v).get("").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["sobjects"], format!("/services/data/v{v}/sobjects"));
        assert_eq!(body["query"], format!("/services/data/v{v}/query"));
        assert!(body["identity"].as_str().unwrap().contains("/id/00D"));
    }
    let (status, _) = api.at_version("99.0").get("sobjects").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sign_in_then_read_own_user_and_organization_like_sfdx() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let resp = api
        .http
        .get(format!("{}/services/oauth2/userinfo", api.instance))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    let (_, userinfo) = status_json(resp).await;
    let user_id = userinfo["user_id"].as_str().unwrap();
    // GET with a JSON content type, as some clients always send it.
    let resp = api
        .http
        .get(api.url(&format!("sobjects/User/{user_id}")))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let (status, user) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["Username"], userinfo["preferred_username"]);
    let org = api.query("SELECT Id, Name FROM Organization").await;
    assert_eq!(org["totalSize"], 1);
    assert_eq!(org["records"][0]["Id"], userinfo["organization_id"]);
}

#[tokio::test]
async fn limit_info_on_every_response_and_daily_limit_enforced() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let resp = api.http.get(api.url("limits")).bearer_auth(&api.token).send().await.unwrap();
    let info = resp.headers()["sforce-limit-info"].to_str().unwrap().to_owned();
    assert_eq!(info, "api-usage=1/15000");
    let (_, limits) = status_json(resp).await;
    assert_eq!(limits["DailyApiRequests"]["Max"], 15000);
    assert_eq!(limits["DailyApiRequests"]["Remaining"], 14999);
    let resp = api.http.get(api.url("sobjects/Nope")).bearer_auth(&api.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["sforce-limit-info"], "api-usage=2/15000");

    pg.control.settings(json!({"daily_api_requests": 3})).await;
    let (status, _) = api.get("limits").await;
    assert_eq!(status, StatusCode::OK);
    let resp = api.http.get(api.url("limits")).bearer_auth(&api.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["sforce-limit-info"], "api-usage=3/3");
    let (_, body) = status_json(resp).await;
    assert_eq!(body, json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]));
    // The count starts again the next (playground) day.
    pg.control.advance_clock(86_400).await;
    let token = client_credentials(&pg).await;
    let api = Api { token: token["access_token"].as_str().unwrap().into(), ..api };
    let (status, _) = api.get("limits").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn gzip_when_accepted() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let resp =
        raw.get(api.url("sobjects")).bearer_auth(&api.token).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    let resp = raw.get(api.url("sobjects")).bearer_auth(&api.token).send().await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    let body: Value = resp.json().await.unwrap();
    assert!(body["sobjects"].is_array());
}

#[tokio::test]
async fn faults_apply_to_data_endpoints() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    pg.control.add_fault(json!({"path_prefix": "/services/data/v66.0/sobjects", "count": 1, "kind": "html"})).await;
    let resp = api.http.get(api.url("sobjects")).bearer_auth(&api.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let (status, _) = api.get("sobjects").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn describe_answers_304_to_if_modified_since_at_or_after_the_start() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let at = |secs_from_now: i64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs((unix_now() + secs_from_now) as u64);
        httpdate_fmt(t)
    };
    for path in ["sobjects/Account/describe", "sobjects"] {
        let later = api.http.get(api.url(path)).bearer_auth(&api.token).header("If-Modified-Since", at(60));
        let resp = later.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(resp.bytes().await.unwrap().is_empty());
        // A date before the playground started gets the full describe.
        let earlier = api.http.get(api.url(path)).bearer_auth(&api.token).header("If-Modified-Since", at(-3600));
        let resp = earlier.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("fields").is_some() || body.get("sobjects").is_some(), "{body}");
    }
}

/// An HTTP date (RFC 9110 IMF-fixdate) without a date library: the playground's tests must not
/// share the code under test.
fn httpdate_fmt(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(m - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[tokio::test]
async fn get_updated_and_get_deleted_follow_the_playground_clock() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let before = pg.control.clock().await["now_ms"].as_i64().unwrap();
    let keep = api.create("Account", serde_json::json!({"Name": "Kept"})).await;
    let gone = api.create("Account", serde_json::json!({"Name": "Gone"})).await;
    pg.control.advance_clock(120).await;
    api.delete(&format!("sobjects/Account/{gone}")).await;
    pg.control.advance_clock(120).await;
    let fmt = |ms: i64| {
        let secs = ms / 1000;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // civil from days (proleptic Gregorian), enough for a test.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    };
    let window = format!("start={}&end={}", fmt(before - 60_000), fmt(before + 600_000));
    let (status, body) = api.get(&format!("sobjects/Account/updated/?{window}")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let ids = body["ids"].as_array().unwrap();
    assert!(ids.contains(&serde_json::json!(keep)), "{body}");
    assert!(!ids.contains(&serde_json::json!(gone)), "{body}");
    assert!(body["latestDateCovered"].as_str().unwrap().ends_with(":00.000+0000"), "{body}");
    let (status, body) = api.get(&format!("sobjects/Account/deleted/?{window}")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let deleted = body["deletedRecords"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{body}");
    assert_eq!(deleted[0]["id"], gone.as_str());
    assert!(deleted[0]["deletedDate"].as_str().is_some());
    assert!(body["earliestDateAvailable"].as_str().is_some());
    // A window before the deletion finds nothing.
    let early = format!("start={}&end={}", fmt(before - 60_000), fmt(before + 60_000));
    let (_, body) = api.get(&format!("sobjects/Account/deleted/?{early}")).await;
    assert_eq!(body["deletedRecords"], serde_json::json!([]), "{body}");
    let (status, body) = api.get("sobjects/Account/updated/?start=yesterday&end=2020-01-01T00:00:00Z").await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
}
