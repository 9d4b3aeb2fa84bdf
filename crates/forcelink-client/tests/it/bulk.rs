//! Bulk API 2.0 against the playground: every ingest operation, failed rows with their error,
//! uploads split by size, query exports over many pages with nothing lost or repeated, typed
//! records both ways, a job resumed by id, timeouts that keep the job id, abort and delete, and
//! the recorded Salesforce answers parsed into the client's types.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::{ManualClock, SystemClock};
use forcelink_client::bulk::{
    BlockingRead, Bulk, BulkError, IngestJob, JobKind, JobState, Operation, PollPolicy, Progress, ResultSet,
};
use forcelink_client::{Client, JobInfo};
use forcelink_test_support::{fixture, spawn_playground_with};
use serde::{Deserialize, Serialize};

use crate::common::*;

/// Polls wait on real time (the playground processes on its own thread), briefly, and give up
/// after a bounded time.
const TEST_POLL: PollPolicy = PollPolicy {
    initial: Duration::from_millis(10),
    max: Duration::from_millis(100),
    timeout: Duration::from_secs(30),
};

fn bulk_for(pg: &PlaygroundHandle) -> (Bulk, Client) {
    let provider: Arc<dyn forcelink_auth::TokenProvider> = Arc::new(admin_provider(pg));
    let client = client_over(provider.clone(), &ManualClock::starting_now());
    let bulk = Bulk::new(client.clone(), provider).unwrap().clock(Arc::new(SystemClock)).poll(TEST_POLL);
    (bulk, client)
}

fn no_progress() -> impl FnMut(&Progress) + Send {
    |_: &Progress| {}
}

async fn results(bulk: &Bulk, id: &str, which: ResultSet) -> (u64, Vec<csv::StringRecord>, Vec<String>) {
    let mut out = Vec::new();
    let n = bulk.ingest_results(id, which, &mut out).await.unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    (n, rows, header)
}

async fn count(client: &Client, soql: &str) -> u64 {
    client.query(soql).send().await.unwrap().total_size
}

async fn run_ingest(bulk: &Bulk, job: &IngestJob, csv_text: &str) -> JobInfo {
    let (closed, _) = bulk.ingest_csv(job, csv_text.as_bytes(), &mut no_progress()).await.unwrap();
    assert_eq!(closed.state, JobState::UploadComplete);
    bulk.wait(JobKind::Ingest, &closed.id, &mut no_progress()).await.unwrap()
}

#[tokio::test]
async fn insert_splits_uploads_by_size_and_reports_failed_rows_with_their_error() {
    let pg = spawn_playground().await;
    let (bulk, client) = bulk_for(&pg);
    let bulk = bulk.max_upload_bytes(200);
    let mut csv_text = String::from("Name,Industry,Description\n");
    for i in 0..40 {
        // A quoted newline must not be taken for a row end when cutting uploads.
        csv_text.push_str(&format!("Bulk Co {i},Energy,\"line one\nline \"\"two\"\"\"\n"));
    }
    // Two rows that fail: no Name.
    csv_text.push_str(",Energy,no name\n,Banking,no name either\n");
    let mut seen: Vec<Progress> = Vec::new();
    let mut record = |p: &Progress| seen.push(p.clone());
    let (closed, summary) =
        bulk.ingest_csv(&IngestJob::insert("Account"), csv_text.as_bytes(), &mut record).await.unwrap();
    assert_eq!(summary.records, 42);
    assert!(summary.uploads > 5, "expected several uploads of at most 200 bytes, got {summary:?}");
    assert_eq!(seen.last().unwrap().uploaded_records, 42);
    let done = bulk.wait(JobKind::Ingest, &closed.id, &mut no_progress()).await.unwrap();
    assert_eq!(done.state, JobState::JobComplete);
    assert_eq!(done.number_records_processed, Some(42));
    assert_eq!(done.number_records_failed, Some(2));

    let (n, ok, header) = results(&bulk, &done.id, ResultSet::Successful).await;
    assert_eq!(n, 40);
    assert_eq!(&header[..3], ["sf__Id", "sf__Created", "Name"]);
    assert!(ok.iter().all(|r| r[0].starts_with("001") && &r[1] == "true"));
    assert!(ok.iter().all(|r| &r[4] == "line one\nline \"two\""), "quoted cells survive the cut");
    let (n, failed, header) = results(&bulk, &done.id, ResultSet::Failed).await;
    assert_eq!(n, 2);
    assert_eq!(&header[..2], ["sf__Id", "sf__Error"]);
    for row in &failed {
        assert!(row[1].contains("REQUIRED_FIELD_MISSING"), "{row:?}");
    }
    assert_eq!(failed.iter().map(|r| r[4].to_owned()).collect::<Vec<_>>(), ["no name", "no name either"]);
    let (n, _, _) = results(&bulk, &done.id, ResultSet::Unprocessed).await;
    assert_eq!(n, 0);
    assert_eq!(count(&client, "SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk Co %'").await, 40);
}

#[tokio::test]
async fn update_upsert_delete_and_hard_delete_each_do_their_work() {
    let pg = spawn_playground().await;
    let (bulk, client) = bulk_for(&pg);
    // Upsert inserts three by external id, then updates one and inserts one.
    let job = IngestJob::upsert("Account", "External_Id__c");
    let done = run_ingest(&bulk, &job, "External_Id__c,Name\nX1,One\nX2,Two\nX3,Three\n").await;
    assert_eq!(done.number_records_processed, Some(3));
    let done = run_ingest(&bulk, &job, "External_Id__c,Name\nX1,One renamed\nX4,Four\n").await;
    let (_, ok, _) = results(&bulk, &done.id, ResultSet::Successful).await;
    let created: Vec<&str> = ok.iter().map(|r| r.get(1).unwrap()).collect();
    assert_eq!(created, ["false", "true"]);
    assert_eq!(count(&client, "SELECT COUNT() FROM Account WHERE External_Id__c LIKE 'X%'").await, 4);
    assert_eq!(count(&client, "SELECT COUNT() FROM Account WHERE Name = 'One renamed'").await, 1);

    // Update by Id, with one id that does not exist.
    let ids: Vec<String> = ok.iter().map(|r| r[0].to_owned()).collect();
    let update = format!("Id,Industry\n{},Energy\n{},Energy\n001000000000000AAA,Energy\n", ids[0], ids[1]);
    let done = run_ingest(&bulk, &IngestJob::new("Account", Operation::Update), &update).await;
    assert_eq!(done.number_records_failed, Some(1));
    let (_, failed, _) = results(&bulk, &done.id, ResultSet::Failed).await;
    assert_eq!(&failed[0][2], "001000000000000AAA");
    assert!(!failed[0][1].is_empty());
    assert_eq!(
        count(&client, "SELECT COUNT() FROM Account WHERE Industry = 'Energy' AND External_Id__c != null").await,
        2
    );

    // Delete one (queryAll still sees it), hard-delete another (gone for queryAll too).
    let done = run_ingest(&bulk, &IngestJob::new("Account", Operation::Delete), &format!("Id\n{}\n", ids[0])).await;
    assert_eq!(done.number_records_failed, Some(0));
    let done = run_ingest(&bulk, &IngestJob::new("Account", Operation::HardDelete), &format!("Id\n{}\n", ids[1])).await;
    assert_eq!(done.number_records_failed, Some(0));
    assert_eq!(count(&client, "SELECT COUNT() FROM Account WHERE External_Id__c LIKE 'X%'").await, 2);
    let soft = format!("SELECT Id FROM Account WHERE Id = '{}'", ids[0]);
    assert_eq!(count(&client, &soft).await, 0);
    assert_eq!(client.query_all(soft).send().await.unwrap().total_size, 1, "queryAll still sees a deleted record");
}

const ACCOUNTS: u64 = 2_345;

#[tokio::test]
async fn an_export_over_many_pages_loses_and_repeats_no_row() {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), ACCOUNTS)]).await;
    let (bulk, client) = bulk_for(&pg);
    let bulk = bulk.page_records(Some(100));
    let job = bulk.create_query("SELECT Id, Name, Industry FROM Account", false).await.unwrap();
    assert_eq!(job.kind(), JobKind::Query);
    let done = bulk.wait(JobKind::Query, &job.id, &mut no_progress()).await.unwrap();
    let mut out = Vec::new();
    let mut pages = 0u32;
    let mut on_page = |_: &Progress| pages += 1;
    let n = bulk.query_results(&done.id, &mut out, &mut on_page).await.unwrap();
    assert_eq!(n, ACCOUNTS);
    assert_eq!(pages, ACCOUNTS.div_ceil(100) as u32);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(reader.headers().unwrap(), vec!["Id", "Name", "Industry"]);
    let mut ids = HashSet::new();
    for row in reader.records() {
        let row = row.unwrap();
        assert!(ids.insert(row[0].to_owned()), "{} came twice", &row[0]);
    }
    assert_eq!(ids.len() as u64, ACCOUNTS);
    assert_eq!(count(&client, "SELECT COUNT() FROM Account").await, ACCOUNTS);
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Contact {
    #[serde(rename = "LastName")]
    last_name: String,
    #[serde(rename = "Email")]
    email: String,
}

#[tokio::test]
async fn typed_records_go_in_and_come_back_out_of_a_query_all_job() {
    let pg = spawn_playground().await;
    let (bulk, _) = bulk_for(&pg);
    let bulk = bulk.max_upload_bytes(1024).page_records(Some(7));
    let people: Vec<Contact> =
        (0..50).map(|i| Contact { last_name: format!("Typed{i:02}"), email: format!("t{i}@example.com") }).collect();
    let job = bulk.create_ingest(&IngestJob::insert("Contact")).await.unwrap();
    let summary = bulk.upload_records(&job.id, &people, &mut no_progress()).await.unwrap();
    assert_eq!(summary.records, 50);
    assert!(summary.uploads >= 2, "{summary:?}");
    bulk.close(&job.id).await.unwrap();
    bulk.wait(JobKind::Ingest, &job.id, &mut no_progress()).await.unwrap();

    let q = bulk
        .create_query("SELECT LastName, Email FROM Contact WHERE LastName LIKE 'Typed%' ORDER BY LastName", true)
        .await
        .unwrap();
    bulk.wait(JobKind::Query, &q.id, &mut no_progress()).await.unwrap();
    let mut records = bulk.query_records::<Contact>(&q.id);
    let mut back = Vec::new();
    while let Some(r) = records.next().await {
        back.push(r.unwrap());
    }
    assert_eq!(back, people);
}

#[tokio::test]
async fn a_job_is_resumed_by_id_from_another_client() {
    let pg = spawn_playground().await;
    let (first, _) = bulk_for(&pg);
    let (closed, _) = first
        .ingest_csv(
            &IngestJob::insert("Account"),
            BlockingRead("Name\nResumed A\nResumed B\n".as_bytes()),
            &mut no_progress(),
        )
        .await
        .unwrap();
    drop(first);
    // A new client, knowing only the id.
    let (second, client) = bulk_for(&pg);
    let found = second.find_job(&closed.id).await.unwrap();
    assert_eq!(found.kind(), JobKind::Ingest);
    let done = second.wait(found.kind(), &closed.id, &mut no_progress()).await.unwrap();
    assert_eq!(done.number_records_processed, Some(2));
    let (n, _, _) = results(&second, &closed.id, ResultSet::Successful).await;
    assert_eq!(n, 2);
    assert_eq!(count(&client, "SELECT COUNT() FROM Account WHERE Name LIKE 'Resumed %'").await, 2);
}

#[tokio::test]
async fn waiting_too_long_is_a_timeout_that_keeps_the_job_id() {
    let pg = spawn_playground().await;
    let (bulk, _) = bulk_for(&pg);
    // The manual clock moves on each poll's wait; an open job never completes.
    let clock = ManualClock::starting_now();
    let bulk = bulk.clock(Arc::new(clock.clone())).poll(PollPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(8),
        timeout: Duration::from_secs(60),
    });
    let job = bulk.create_ingest(&IngestJob::insert("Account")).await.unwrap();
    let mut polls = 0u32;
    let mut count_polls = |_: &Progress| polls += 1;
    let err = bulk.wait(JobKind::Ingest, &job.id, &mut count_polls).await.unwrap_err();
    match &err {
        BulkError::Timeout { job_id, state, waited, .. } => {
            assert_eq!(job_id, &job.id);
            assert_eq!(*state, JobState::Open);
            assert_eq!(*waited, Duration::from_secs(60));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(err.job_id(), Some(job.id.as_str()));
    assert!(err.to_string().contains(&job.id), "{err}");
    // Backoff: 1+2+4+8+8+8+8+8+8+5 seconds → 11 polls, not 60.
    assert_eq!(polls, 11);
}

#[tokio::test]
async fn abort_delete_and_bad_input_are_clear() {
    let pg = spawn_playground().await;
    let (bulk, _) = bulk_for(&pg);
    let job = bulk.create_ingest(&IngestJob::insert("Account")).await.unwrap();
    let aborted = bulk.abort(JobKind::Ingest, &job.id).await.unwrap();
    assert_eq!(aborted.state, JobState::Aborted);
    let err = bulk.wait(JobKind::Ingest, &job.id, &mut no_progress()).await.unwrap_err();
    assert!(matches!(err, BulkError::JobAborted { .. }), "{err:?}");
    bulk.delete(JobKind::Ingest, &job.id).await.unwrap();
    let gone = bulk.job_info(JobKind::Ingest, &job.id).await.unwrap_err();
    assert_eq!(gone.client_error().and_then(|e| e.status()), Some(404));

    // Empty input and a header without rows are refused; the job is aborted, its id kept.
    for input in ["", "Name\n"] {
        let err =
            bulk.ingest_csv(&IngestJob::insert("Account"), input.as_bytes(), &mut no_progress()).await.unwrap_err();
        let id = err.job_id().expect("the job id").to_owned();
        assert!(err.to_string().contains("header row"), "{err}");
        assert_eq!(bulk.job_info(JobKind::Ingest, &id).await.unwrap().state, JobState::Aborted);
    }
    // A row longer than an upload.
    let err = bulk
        .clone()
        .max_upload_bytes(20)
        .ingest_csv(
            &IngestJob::insert("Account"),
            "Name\nA name far longer than twenty bytes\n".as_bytes(),
            &mut no_progress(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than the upload size"), "{err}");

    // A field that does not exist fails the whole job, with Salesforce's message.
    let (closed, _) =
        bulk.ingest_csv(&IngestJob::insert("Account"), "Nope__c\nx\n".as_bytes(), &mut no_progress()).await.unwrap();
    let err = bulk.wait(JobKind::Ingest, &closed.id, &mut no_progress()).await.unwrap_err();
    match err {
        BulkError::JobFailed { job_id, message, .. } => {
            assert_eq!(job_id, closed.id);
            assert!(message.contains("Nope__c"), "{message}");
        }
        other => panic!("expected a failed job, got {other:?}"),
    }
    // Upsert without an external id, and a malformed id, never reach the server.
    assert!(bulk.create_ingest(&IngestJob::new("Account", Operation::Upsert)).await.is_err());
    assert!(bulk.job_info(JobKind::Ingest, "../sobjects").await.is_err());
}

#[test]
fn every_bulk_fixture_parses_into_the_clients_types() {
    for name in [
        "ingest_job_complete",
        "ingest_job_created_open",
        "ingest_job_created_with_content_url",
        "ingest_job_in_progress",
        "ingest_job_info_complete_with_timings",
        "ingest_job_upload_complete",
        "query_job_created",
    ] {
        let f = fixture(&format!("bulk2/{name}"));
        let info: JobInfo =
            serde_json::from_value(f["response"]["body"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!info.id.is_empty(), "{name}");
    }
    let f = fixture("bulk2/ingest_job_info_complete_with_timings");
    let info: JobInfo = serde_json::from_value(f["response"]["body"].clone()).unwrap();
    assert_eq!((info.number_records_processed, info.number_records_failed), (Some(1), Some(1)));
    assert_eq!(info.state, JobState::JobComplete);
    let q: JobInfo = serde_json::from_value(fixture("bulk2/query_job_created")["response"]["body"].clone()).unwrap();
    assert_eq!((q.kind(), q.operation, q.state), (JobKind::Query, Operation::Query, JobState::UploadComplete));
    // What the client sends when creating a job matches the recorded request.
    let sent = serde_json::to_value(IngestJob::insert("Contact").column_delimiter("COMMA").line_ending("LF")).unwrap();
    let recorded = fixture("bulk2/ingest_job_created_open")["request"]["body"].clone();
    assert_eq!(sent, recorded);

    for (name, columns, rows) in [
        ("ingest_successful_results_csv", ["sf__Id", "sf__Created"], 2),
        ("ingest_failed_results_csv", ["sf__Id", "sf__Error"], 2),
    ] {
        let body = fixture(&format!("bulk2/{name}"))["response"]["body"].as_str().unwrap().to_owned();
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        assert_eq!(&reader.headers().unwrap().iter().take(2).collect::<Vec<_>>(), &columns);
        assert_eq!(reader.records().count(), rows, "{name}");
    }
    let err = fixture("bulk2/error_query_job_value_type");
    let parsed: Vec<forcelink_client::ApiError> = serde_json::from_value(err["response"]["body"].clone()).unwrap();
    assert_eq!(parsed[0].error_code, "API_ERROR");
}

/// Recorded result bodies, served by a local server, stream to a writer exactly.
#[tokio::test]
async fn recorded_result_bodies_stream_to_a_writer_unchanged() {
    use axum::routing::get;
    let ok = fixture("bulk2/ingest_successful_results_csv")["response"]["body"].as_str().unwrap().to_owned();
    let query = fixture("bulk2/query_results_csv")["response"]["body"].as_str().unwrap().to_owned();
    let (ok2, query2) = (ok.clone(), query.clone());
    let app = axum::Router::new()
        .route("/services/data/v64.0/jobs/ingest/Job1/successfulResults", get(move || async move { ok2 }))
        .route("/services/data/v64.0/jobs/query/Job1/results", get(move || async move { query2 }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let provider: Arc<dyn forcelink_auth::TokenProvider> = FixedToken::at(&base);
    let client = client_over(provider.clone(), &ManualClock::starting_now());
    let bulk = Bulk::new(client, provider).unwrap();
    let mut out = Vec::new();
    assert_eq!(bulk.ingest_results("Job1", ResultSet::Successful, &mut out).await.unwrap(), 2);
    assert_eq!(String::from_utf8(out).unwrap(), ok);
    let mut out = Vec::new();
    // No Sforce-Locator header: one page.
    assert_eq!(bulk.query_results("Job1", &mut out, &mut no_progress()).await.unwrap(), 4);
    assert_eq!(String::from_utf8(out).unwrap(), query);
}

#[tokio::test]
async fn a_result_download_after_the_session_expired_renews_once() {
    let pg = spawn_playground().await;
    let provider = Recording::new(admin_provider(&pg));
    let client = client_over(provider.clone(), &ManualClock::starting_now());
    let bulk = Bulk::new(client, provider.clone()).unwrap().clock(Arc::new(SystemClock)).poll(TEST_POLL);
    let done = run_ingest(&bulk, &IngestJob::insert("Account"), "Name\nRenewed A\nRenewed B\n").await;
    pg.control.expire_sessions().await;
    let (n, _, _) = results(&bulk, &done.id, ResultSet::Successful).await;
    assert_eq!(n, 2);
    assert_eq!(provider.invalidated().len(), 1, "the refused token, once");
}
