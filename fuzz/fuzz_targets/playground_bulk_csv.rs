//! Bulk API 2.0 ingest on any CSV: a job is created, the bytes uploaded (once or in several
//! uploads), closed and processed by the org. Whatever the bytes, processing ends (JobComplete
//! or Failed, never a panic or a job left in progress), and the result sets account for every
//! processed record: successful rows + failed rows = numberRecordsProcessed.
#![no_main]

use forcelink_fuzz::{DATA, org};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Debug, Arbitrary)]
struct Input {
    contact: bool,
    operation: u8,
    delimiter: u8,
    crlf: bool,
    uploads: Vec<Vec<u8>>,
}

const OPERATIONS: [&str; 5] = ["insert", "update", "upsert", "delete", "hardDelete"];
const DELIMITERS: [(&str, u8); 6] =
    [("COMMA", b','), ("TAB", b'\t'), ("PIPE", b'|'), ("SEMICOLON", b';'), ("CARET", b'^'), ("BACKQUOTE", b'`')];

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_default()
}

fn rows(csv: &[u8], delimiter: u8) -> usize {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(csv);
    reader.records().map(|r| r.expect("the org writes valid CSV")).count()
}

fuzz_target!(|input: Input| {
    let org = org();
    let operation = OPERATIONS[usize::from(input.operation) % OPERATIONS.len()];
    let (delimiter_name, delimiter) = DELIMITERS[usize::from(input.delimiter) % DELIMITERS.len()];
    let mut job = json!({
        "object": if input.contact { "Contact" } else { "Account" },
        "operation": operation,
        "columnDelimiter": delimiter_name,
        "lineEnding": if input.crlf { "CRLF" } else { "LF" },
    });
    if operation == "upsert" {
        job["externalIdFieldName"] = json!("Id");
    }
    let created =
        org.request("POST", &format!("{DATA}/jobs/ingest"), Some("application/json"), job.to_string().as_bytes());
    assert_eq!(created.status, 200, "{}", String::from_utf8_lossy(&created.body));
    let id = json_of(&created.body)["id"].as_str().expect("a job id").to_owned();
    let job_url = format!("{DATA}/jobs/ingest/{id}");
    let mut uploaded = false;
    for upload in input.uploads.iter().take(3) {
        let answer = org.request("PUT", &format!("{job_url}/batches"), Some("text/csv"), upload);
        assert!(answer.status < 500, "{}", String::from_utf8_lossy(&answer.body));
        uploaded |= answer.status == 201;
    }
    let close = org.request("PATCH", &job_url, Some("application/json"), br#"{"state":"UploadComplete"}"#);
    if !uploaded {
        // Nothing uploaded: closing is refused or processes nothing; either way no 5xx.
        assert!(close.status < 500, "{}", String::from_utf8_lossy(&close.body));
    } else {
        assert_eq!(close.status, 200, "{}", String::from_utf8_lossy(&close.body));
    }
    // Processing runs on a blocking thread of the org's runtime: wait for it, boundedly.
    let mut info = Value::Null;
    for _ in 0..100_000 {
        info = json_of(&org.request("GET", &job_url, None, b"").body);
        if !matches!(info["state"].as_str(), Some("UploadComplete" | "InProgress")) {
            break;
        }
        std::thread::yield_now();
    }
    let state = info["state"].as_str().unwrap_or_default().to_owned();
    assert!(matches!(state.as_str(), "JobComplete" | "Failed" | "Open"), "job left in {info}");
    if state == "JobComplete" {
        let processed = info["numberRecordsProcessed"].as_u64().expect("processed count");
        let failed = info["numberRecordsFailed"].as_u64().expect("failed count");
        let ok = org.request("GET", &format!("{job_url}/successfulResults"), None, b"");
        let bad = org.request("GET", &format!("{job_url}/failedResults"), None, b"");
        assert_eq!((ok.status, bad.status), (200, 200));
        let (ok_rows, bad_rows) = (rows(&ok.body, delimiter) as u64, rows(&bad.body, delimiter) as u64);
        assert_eq!((ok_rows + bad_rows, bad_rows), (processed, failed), "{info}");
    }
    if state != "Open" {
        let gone = org.request("DELETE", &job_url, None, b"");
        assert_eq!(gone.status, 204, "{}", String::from_utf8_lossy(&gone.body));
    } else {
        org.request("PATCH", &job_url, Some("application/json"), br#"{"state":"Aborted"}"#);
        org.request("DELETE", &job_url, None, b"");
    }
});
