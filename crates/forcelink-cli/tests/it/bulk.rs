//! `forcelink bulk …` end to end against the playground: import with failed rows and result
//! files, the upsert and delete shorthands, exports over many pages, and jobs resumed by id
//! after the submitting process returned early or was killed.

#![allow(clippy::unwrap_used)] // tests: a failed step should fail the test at once

use std::collections::HashSet;

use forcelink_test_support::{spawn_playground, spawn_playground_with};
use serde_json::Value;

use crate::home::{Home, Org, Ran, finish, login_client_credentials, read_until};

async fn signed_in(pg: &forcelink_test_support::PlaygroundHandle) -> Home {
    let org = Org::of(pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    login_client_credentials(&home, &org, "cc").await;
    home
}

fn write(home: &Home, name: &str, text: &str) -> String {
    let path = home.path(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn csv_rows(path: &std::path::Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader.records().map(Result::unwrap).collect()
}

fn doc(ran: &Ran) -> Value {
    ran.json()
}

#[tokio::test]
async fn import_reports_failed_rows_and_writes_every_result_file() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let mut text = String::from("Name,Industry\n");
    for i in 0..30 {
        text.push_str(&format!("Cli Co {i},Energy\n"));
    }
    text.push_str(",Banking\n");
    let file = write(&home, "accounts.csv", &text);
    let dir = home.path("results");
    let dir_arg = dir.to_str().unwrap();
    let ran = home
        .run(&[
            "bulk",
            "import",
            "-c",
            "cc",
            "--object",
            "Account",
            "--file",
            &file,
            "--upload-bytes",
            "120",
            "--results-dir",
            dir_arg,
            "--json",
        ])
        .await;
    // A failed record makes the command report a problem (exit 1), with the full result.
    assert_eq!(ran.code, 1, "{ran:?}");
    let d = doc(&ran);
    assert_eq!(d["status"], 1);
    let job = &d["result"]["job"];
    assert_eq!(job["state"], "JobComplete");
    assert_eq!(job["numberRecordsProcessed"], 31);
    assert_eq!(job["numberRecordsFailed"], 1);
    assert!(d["result"]["uploaded"]["uploads"].as_u64().unwrap() > 3, "{d}");
    assert!(d["warnings"][0].as_str().unwrap().contains("1 records failed"), "{d}");
    let id = job["id"].as_str().unwrap();
    let ok = csv_rows(&dir.join(format!("{id}-successful.csv")));
    assert_eq!(ok.len(), 30);
    let failed = csv_rows(&dir.join(format!("{id}-failed.csv")));
    assert_eq!(failed.len(), 1);
    assert!(failed[0][1].contains("REQUIRED_FIELD_MISSING"), "{:?}", failed[0]);
    assert_eq!(&failed[0][3], "Banking");
    assert!(csv_rows(&dir.join(format!("{id}-unprocessed.csv"))).is_empty());
    assert_eq!(d["result"]["results"]["successful"]["records"], 30);
    // Without a terminal, progress is plain lines on stderr.
    assert!(ran.stderr.contains(&format!("bulk ingest job {id} created")), "{}", ran.stderr);
    assert!(ran.stderr.contains("records processed"), "{}", ran.stderr);
}

#[tokio::test]
async fn upsert_and_delete_shorthands_work_and_misuse_is_a_usage_error() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let file = write(&home, "up.csv", "External_Id__c,Name\nE1,Ext One\nE2,Ext Two\n");
    let ran = home
        .run(&["bulk", "upsert", "-c", "cc", "--object", "Account", "--file", &file, "--external-id", "External_Id__c"])
        .await
        .ok();
    assert!(ran.stdout.contains("2 records processed, 2 succeeded, 0 failed"), "{ran:?}");
    let dir = home.path("r");
    let file = write(&home, "up2.csv", "External_Id__c,Name\nE1,Ext One again\n");
    let d = home
        .json(&[
            "bulk",
            "upsert",
            "-c",
            "cc",
            "--object",
            "Account",
            "--file",
            &file,
            "--external-id",
            "External_Id__c",
            "--results-dir",
            dir.to_str().unwrap(),
        ])
        .await;
    let id = d["job"]["id"].as_str().unwrap();
    let rows = csv_rows(&dir.join(format!("{id}-successful.csv")));
    assert_eq!(&rows[0][1], "false", "an upsert of a known external id updates");
    let record_id = rows[0][0].to_owned();

    let ids = write(&home, "ids.csv", &format!("Id\n{record_id}\n"));
    let d = home.json(&["bulk", "delete", "-c", "cc", "--object", "Account", "--file", &ids]).await;
    assert_eq!(d["job"]["operation"], "delete");
    assert_eq!(d["job"]["numberRecordsFailed"], 0);
    // Deleting it again fails for that row.
    let ran =
        home.run(&["bulk", "delete", "--hard", "-c", "cc", "--object", "Account", "--file", &ids, "--json"]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(doc(&ran)["result"]["job"]["operation"], "hardDelete");

    let ran = home.run(&["bulk", "upsert", "-c", "cc", "--object", "Account", "--file", &file]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("--external-id"), "{}", ran.stderr);
    let ran = home.run(&["bulk", "import", "-c", "cc", "--object", "Account", "--file", "/nonexistent.csv"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    let ran =
        home.run(&["bulk", "import", "-c", "cc", "--object", "Account", "--file", &file, "--operation", "merge"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    let ran = home.run(&["bulk", "status", "-c", "cc", "750000000000000AAA"]).await;
    assert_eq!(ran.code, 4, "{ran:?}");
}

const ACCOUNTS: usize = 1_234;

#[tokio::test]
async fn export_over_many_pages_loses_and_repeats_no_row() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), ACCOUNTS as u64)]).await;
    let home = signed_in(&pg).await;
    let out = home.path("accounts.csv");
    let d = home
        .json(&[
            "bulk",
            "export",
            "-c",
            "cc",
            "SELECT Id, Name FROM Account",
            "--out",
            out.to_str().unwrap(),
            "--page-records",
            "50",
        ])
        .await;
    assert_eq!(d["records"], ACCOUNTS);
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), ACCOUNTS);
    let ids: HashSet<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids.len(), ACCOUNTS);
    // To standard output: the CSV itself, one header row.
    let ran = home
        .run(&["bulk", "export", "-c", "cc", "SELECT Id FROM Account", "--all", "--page-records", "500"])
        .await
        .ok();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), ACCOUNTS + 1);
    assert_eq!(lines.iter().filter(|l| l.trim_matches('"') == "Id").count(), 1, "one header row");
}

#[tokio::test]
async fn a_job_submitted_without_waiting_is_resumed_by_id() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let file = write(&home, "a.csv", "Name\nNo Wait 1\nNo Wait 2\nNo Wait 3\n");
    let ran = home.run(&["bulk", "import", "-c", "cc", "--object", "Account", "--file", &file, "--no-wait"]).await.ok();
    let id = ran.stdout.trim().to_owned();
    assert!(id.starts_with("750"), "{ran:?}");
    let d = home.json(&["bulk", "status", "-c", "cc", &id, "--wait"]).await;
    assert_eq!(d["job"]["state"], "JobComplete");
    assert_eq!(d["job"]["numberRecordsProcessed"], 3);
    let dir = home.path("res");
    let d = home.json(&["bulk", "results", "-c", "cc", &id, "--dir", dir.to_str().unwrap()]).await;
    assert_eq!(d["results"]["successful"]["records"], 3);
    assert_eq!(csv_rows(&dir.join(format!("{id}-successful.csv"))).len(), 3);
    // A query job too: submitted, then its rows fetched by id.
    let ran = home
        .run(&["bulk", "export", "-c", "cc", "SELECT Name FROM Account WHERE Name LIKE 'No Wait%'", "--no-wait"])
        .await
        .ok();
    let qid = ran.stdout.trim().to_owned();
    let d = home.json(&["bulk", "results", "-c", "cc", &qid, "--wait", "--dir", dir.to_str().unwrap()]).await;
    assert_eq!(d["records"], 3);
    // A finished job cannot be aborted: Salesforce's reason, exit 1.
    let ran = home.run(&["bulk", "abort", "-c", "cc", &id]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("INVALIDJOBSTATE"), "{}", ran.stderr);
}

#[tokio::test]
async fn a_job_whose_process_was_killed_mid_poll_completes_when_resumed() {
    let pg = spawn_playground().await;
    let home = signed_in(&pg).await;
    let mut text = String::from("Name,Industry\n");
    for i in 0..5_000 {
        text.push_str(&format!("Killed Co {i},Energy\n"));
    }
    let file = write(&home, "many.csv", &text);
    let mut child = home.spawn(&["bulk", "import", "-c", "cc", "--object", "Account", "--file", &file]);
    // Once the upload is complete the process polls; kill it there (SIGKILL).
    let id = read_until(&mut child, |line| {
        line.contains("; processing").then(|| line.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_owned())
    })
    .await;
    child.start_kill().unwrap();
    let killed = finish(child).await;
    assert_ne!(killed.code, 0, "the process was killed: {killed:?}");
    let d = home.json(&["bulk", "status", "-c", "cc", &id, "--wait"]).await;
    assert_eq!(d["job"]["state"], "JobComplete");
    assert_eq!(d["job"]["numberRecordsProcessed"], 5_000);
    let dir = home.path("killed");
    let d = home.json(&["bulk", "results", "-c", "cc", &id, "--dir", dir.to_str().unwrap()]).await;
    assert_eq!(d["results"]["successful"]["records"], 5_000);
    assert_eq!(d["results"]["failed"]["records"], 0);
}
