//! The data commands end to end against a playground: `query` (every format, many pages,
//! `--all`, `--limit`, a failure mid-stream), `search`, `sobject …`, `limits`, `user …`,
//! `document upload`, `generate openapi`, and their errors.

use std::collections::HashSet;

use forcelink_test_support::{spawn_playground, spawn_playground_with};
use serde_json::{Value, json};

use crate::home::Ran;

use crate::home::{NAME, signed_in};

fn lines(ran: &Ran) -> Vec<&str> {
    ran.stdout.lines().collect()
}

#[tokio::test]
async fn a_query_over_many_pages_streams_every_record_once_in_every_format() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), 2_345)]).await;
    let home = signed_in(&pg).await;
    let soql = "SELECT Id, Name, Owner.Name FROM Account";

    // NDJSON, pages of 200: 12 pages, each record exactly once.
    let ran = home.run(&["query", soql, "--format", "ndjson", "--batch-size", "200"]).await.ok();
    let records: Vec<Value> = lines(&ran).iter().map(|l| serde_json::from_str(l).expect("NDJSON line")).collect();
    let ids: HashSet<&str> = records.iter().map(|r| r["Id"].as_str().expect("Id")).collect();
    assert_eq!(records.len(), 2_345);
    assert_eq!(ids.len(), 2_345, "a record was repeated");
    assert_eq!(records[0]["Owner"]["Name"], "Ada Admin");

    // CSV: a header, then one row per record, relationship fields dotted.
    let ran = home.run(&["query", soql, "--format", "csv"]).await.ok();
    let rows = lines(&ran);
    assert_eq!(rows[0], "Id,Name,Owner.Name");
    assert_eq!(rows.len(), 2_346);
    let csv_ids: HashSet<&str> = rows[1..].iter().map(|r| &r[..18]).collect();
    assert_eq!(csv_ids, ids);

    // A JSON array, and the --json envelope with the count.
    let ran = home.run(&["query", soql, "--format", "json", "--batch-size", "500"]).await.ok();
    let array: Value = serde_json::from_str(&ran.stdout).expect("a JSON array");
    assert_eq!(array.as_array().map(Vec::len), Some(2_345));
    let doc = home.run(&["query", soql, "--json", "--limit", "250"]).await.ok().json();
    assert_eq!(doc["status"], 0);
    assert_eq!(doc["result"]["count"], 250);
    assert_eq!(doc["result"]["total_size"], 2_345);
    assert_eq!(doc["result"]["records"].as_array().map(Vec::len), Some(250));

    // The table: columns, the first record, and the count line.
    let ran = home.run(&["query", soql, "--limit", "3"]).await.ok();
    let table = lines(&ran);
    assert!(table[0].starts_with("Id") && table[0].contains("Owner.Name"), "{}", ran.stdout);
    assert_eq!(table.len(), 6, "{}", ran.stdout);
    assert_eq!(table[5], "(3 records of 2345)");
    let count = home.run(&["query", "SELECT COUNT() FROM Account"]).await.ok();
    assert_eq!(count.stdout.trim(), "count: 2345");
    pg.shutdown().await;
}

#[tokio::test]
async fn query_all_finds_deleted_records_and_a_failure_mid_stream_is_reported() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), 600)]).await;
    let home = signed_in(&pg).await;
    let id = home.run(&["sobject", "create", "Account", "Name=Gone Ltd"]).await.ok().stdout.trim().to_owned();
    home.run(&["sobject", "delete", "Account", &id]).await.ok();
    let soql = "SELECT Id FROM Account WHERE Name = 'Gone Ltd'";
    let live = home.run(&["query", soql, "--format", "ndjson"]).await.ok();
    assert_eq!(live.stdout, "");
    let all = home.run(&["query", soql, "--all", "--format", "ndjson"]).await.ok();
    assert!(all.stdout.contains(&id), "{all:?}");

    // The second page fails: the records before it are out, the document stays valid JSON,
    // and the exit code says it failed.
    pg.control
        .add_fault(json!({
            "path_prefix": "/services/data/v64.0/query/",
            "kind": "status",
            "status": 400,
            "body": "[{\"errorCode\":\"INVALID_QUERY_LOCATOR\",\"message\":\"invalid query locator\"}]"
        }))
        .await;
    let ran = home.run(&["query", "SELECT Id FROM Account", "--batch-size", "200", "--json"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    let doc = ran.json();
    assert_eq!(doc["status"], 2);
    assert_eq!(doc["result"]["count"], 200);
    assert!(doc["error"]["message"].as_str().unwrap_or("").contains("INVALID_QUERY_LOCATOR"), "{doc}");
    assert!(
        doc["error"]["fix"].as_str().unwrap_or("").contains("run the query again")
            || doc["error"]["message"].as_str().unwrap_or("").contains("run the query again"),
        "{doc}"
    );

    // A refused query prints nothing on stdout and names the problem.
    let bad = home.run(&["query", "SELECT Nope FROM Account"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert_eq!(bad.stdout, "");
    assert!(bad.stderr.contains("INVALID_FIELD"), "{bad:?}");
    pg.shutdown().await;
}

#[tokio::test]
async fn sobject_commands_create_read_update_upsert_and_delete() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;

    let list = home.json(&["sobject", "list"]).await;
    assert!(list.as_array().expect("objects").iter().any(|o| o["name"] == "Account" && o["queryable"] == true));
    let describe = home.json(&["sobject", "describe", "Contact"]).await;
    assert!(describe["fields"].as_array().expect("fields").iter().any(|f| f["name"] == "LastName"));
    let human = home.run(&["sobject", "describe", "Account"]).await.ok();
    assert!(human.stdout.contains("Industry") && human.stdout.contains("picklist"), "{}", human.stdout);

    let created = home.json(&["sobject", "create", "Account", "Name=Acme CLI", "NumberOfEmployees:=12"]).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let got = home.json(&["sobject", "get", "Account", &id, "--fields", "Name,NumberOfEmployees"]).await;
    assert_eq!(got["Name"], "Acme CLI");
    assert_eq!(got["NumberOfEmployees"], 12);

    home.run(&["sobject", "update", "Account", &id, "--data", r#"{"Site": "Berlin"}"#, "Name=Acme 2"]).await.ok();
    let got = home.json(&["sobject", "get", "Account", &id]).await;
    assert_eq!(got["Site"], "Berlin");
    assert_eq!(got["Name"], "Acme 2");

    let first = home.json(&["sobject", "upsert", "Account", "External_Id__c", "EXT-9", "Name=Ext"]).await;
    assert_eq!(first["created"], true);
    let again = home.json(&["sobject", "upsert", "Account", "External_Id__c", "EXT-9", "Name=Ext 2"]).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["id"], first["id"]);

    home.run(&["sobject", "delete", "Account", &id]).await.ok();
    let gone = home.run(&["sobject", "get", "Account", &id]).await;
    assert_eq!(gone.code, 4, "{gone:?}");

    // Bad input is refused before anything is sent, and nothing is created.
    let before = home.json(&["query", "SELECT COUNT() FROM Account"]).await["total_size"].clone();
    let bad_json = home.run(&["sobject", "create", "Account", "--data", "{\"Name\": "]).await;
    assert_eq!(bad_json.code, 2, "{bad_json:?}");
    assert!(bad_json.stderr.contains("not valid JSON"), "{bad_json:?}");
    let nothing = home.run(&["sobject", "create", "Account"]).await;
    assert_eq!(nothing.code, 2);
    let bad_field = home.run(&["sobject", "create", "Account", "Name=x", "Nope__c=1"]).await;
    assert_eq!(bad_field.code, 2, "{bad_field:?}");
    assert!(bad_field.stderr.contains("INVALID_FIELD"), "{bad_field:?}");
    let after = home.json(&["query", "SELECT COUNT() FROM Account"]).await["total_size"].clone();
    assert_eq!(before, after);
    pg.shutdown().await;
}

#[tokio::test]
async fn search_and_limits() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    home.json(&["sobject", "create", "Account", "Name=Zanzibar Trading"]).await;
    let found = home.json(&["search", "FIND {Zanzibar} IN NAME FIELDS RETURNING Account(Id, Name)"]).await;
    assert_eq!(found["records"][0]["Name"], "Zanzibar Trading", "{found}");
    let limits = home.json(&["limits"]).await;
    let daily = &limits["limits"]["DailyApiRequests"];
    assert!(daily["Max"].as_i64().unwrap_or(0) > daily["Remaining"].as_i64().unwrap_or(i64::MAX), "{limits}");
    assert!(limits["api_usage"]["used"].as_u64().unwrap_or(0) >= 1, "{limits}");
    let human = home.run(&["limits"]).await.ok();
    assert!(human.stdout.contains("DailyApiRequests"), "{}", human.stdout);
    pg.shutdown().await;
}

#[tokio::test]
async fn user_actions_and_document_upload() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let user = "grace.cli@example.com";
    let create: &[&str] =
        &["user", "create", "--username", user, "--last-name", "Hopper", "--email", user, "--profile", "Standard User"];
    let created = home.json(&[create, &["Department=Navy"]].concat()).await;
    assert_eq!(created["created"], true);
    let id = created["user_id"].as_str().expect("user id").to_owned();
    // Creating it again changes nothing and says so.
    let again = home.json(create).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["user_id"], id.as_str());

    home.json(&["user", "update", user, "Title=Rear Admiral"]).await;
    let got = home.json(&["sobject", "get", "User", &id, "--fields", "Title,Department,IsActive"]).await;
    assert_eq!(got["Title"], "Rear Admiral");
    assert_eq!(got["Department"], "Navy");

    let frozen = home.json(&["user", "freeze", user]).await;
    assert_eq!((frozen["is_frozen"].clone(), frozen["changed"].clone()), (json!(true), json!(true)));
    let twice = home.run(&["user", "freeze", user]).await.ok();
    assert!(twice.stdout.contains("already frozen"), "{}", twice.stdout);
    let login = home.json(&["query", &format!("SELECT IsFrozen FROM UserLogin WHERE UserId = '{id}'")]).await;
    assert_eq!(login["records"][0]["IsFrozen"], true);
    assert_eq!(home.json(&["user", "unfreeze", &id]).await["is_frozen"], false);
    assert_eq!(home.json(&["user", "deactivate", user]).await["is_active"], false);
    let got = home.json(&["sobject", "get", "User", &id, "--fields", "IsActive"]).await;
    assert_eq!(got["IsActive"], false);
    assert_eq!(home.json(&["user", "activate", user]).await["changed"], true);
    let removed = home.json(&["user", "remove-entitlements", user]).await;
    assert_eq!(removed["failures"], json!([]));

    let generated = home.json(&["user", "reset-password", user]).await;
    assert!(generated["generated_password"].as_str().is_some_and(|p| p.len() >= 8), "{generated}");
    std::fs::write(home.path("pw"), "Brand-new-9!\n").expect("write the password file");
    let pw_arg = format!("file:{}", home.path("pw").display());
    let set = home.json(&["user", "reset-password", user, "--new-password", &pw_arg]).await;
    assert!(set.get("generated_password").is_none_or(Value::is_null), "{set}");
    let plain = home.run(&["user", "reset-password", user, "--new-password", "visible"]).await;
    assert_eq!(plain.code, 2, "a password on the command line is refused");
    let missing = home.run(&["user", "create", "--username", "x@example.com"]).await;
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("--last-name"), "{missing:?}");

    let account =
        home.json(&["sobject", "create", "Account", "Name=Docs Inc"]).await["id"].as_str().expect("id").to_owned();
    let file = home.path("report.txt");
    std::fs::write(&file, b"quarterly numbers\n").expect("write the document");
    let up =
        home.json(&["document", "upload", file.to_str().expect("path"), "--link-to", &account, "--title", "Q3"]).await;
    let version = up["content_version_id"].as_str().expect("version id").to_owned();
    assert!(up["content_document_link_id"].is_string(), "{up}");
    let cv = home.json(&["sobject", "get", "ContentVersion", &version, "--fields", "Title,PathOnClient"]).await;
    assert_eq!(cv["Title"], "Q3");
    assert_eq!(cv["PathOnClient"], "report.txt");
    let links = home
        .json(&[
            "query",
            &format!("SELECT ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId = '{account}'"),
        ])
        .await;
    assert_eq!(links["records"][0]["ContentDocumentId"], up["content_document_id"]);

    // Above the 10 MiB JSON limit the file goes multipart, read from disk while it is sent.
    let big = home.path("scan.bin");
    let content: Vec<u8> = (0..10 * 1024 * 1024 + 777u32).map(|i| (i ^ (i >> 9)) as u8).collect();
    std::fs::write(&big, &content).expect("write the large document");
    let up = home.json(&["document", "upload", big.to_str().expect("path")]).await;
    assert_eq!(up["transfer"], "multipart", "{up}");
    let version = up["content_version_id"].as_str().expect("version id");
    let cv = home.json(&["sobject", "get", "ContentVersion", version, "--fields", "ContentSize,Title"]).await;
    assert_eq!((cv["ContentSize"].as_u64(), cv["Title"].as_str()), (Some(content.len() as u64), Some("scan")));
    let missing = home.run(&["document", "upload", home.path("nope.pdf").to_str().expect("path")]).await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("cannot read"), "{missing:?}");

    // The audit log names the actions, never a password.
    let audit = home.run(&["store", "audit", "--json"]).await.ok();
    assert!(audit.stdout.contains("action.freeze-user"), "{}", audit.stdout);
    assert!(!audit.stdout.contains("Brand-new-9!"));
    pg.shutdown().await;
}

#[tokio::test]
async fn generate_openapi_writes_a_document_for_the_chosen_objects() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let out = home.path("api.json");
    let out_arg = out.to_str().expect("path");
    home.run(&[
        "generate",
        "openapi",
        "--connection",
        NAME,
        "--sobject",
        "Account",
        "--sobject",
        "Contact",
        "--out",
        out_arg,
        "--broker-url",
        "http://127.0.0.1:7878",
    ])
    .await
    .ok();
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).expect("the document")).expect("JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true), "{}", doc["openapi"]);
    let server = doc["servers"][0]["url"].as_str().expect("server URL");
    assert!(server.starts_with("http://127.0.0.1:7878/") && server.contains("{connection}"), "{server}");
    assert_eq!(doc["servers"][0]["variables"]["connection"]["default"], NAME);
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    assert!(paths.iter().any(|p| p.ends_with("/sobjects/Account/{id}")), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/sobjects/Contact")), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/query")), "{paths:?}");

    // An unknown object fails and leaves the previous document whole.
    let before = std::fs::read(&out).expect("the document");
    let bad = home.run(&["generate", "openapi", "--sobject", "Nope__c", "--out", out_arg]).await;
    assert_ne!(bad.code, 0);
    assert_eq!(std::fs::read(&out).expect("the document"), before);
    pg.shutdown().await;
}

#[tokio::test]
async fn a_stored_token_is_used_when_a_secret_reference_cannot_be_resolved_now() {
    let pg = spawn_playground().await;
    let mut home = signed_in(&pg).await;
    // A new shell without the secret's variable: the stored token still works.
    home.env.remove("CS");
    let doc = home.json(&["query", "SELECT Id FROM User LIMIT 1"]).await;
    assert_eq!(doc["count"], 1, "{doc}");
    // Once a new token is needed, the error names the variable to set.
    pg.control.expire_sessions().await;
    let ran = home.run(&["query", "SELECT Id FROM User LIMIT 1"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("CS"), "{ran:?}");
    assert_eq!(ran.stdout, "");
    pg.shutdown().await;
}
