//! Query jobs: creation, every result page streamed to a writer with one header row
//! ([`Bulk::query_results`]), or typed records page by page ([`QueryRecords`]); pages follow
//! `Sforce-Locator` with `maxRecords`.

use std::collections::VecDeque;
use std::fmt;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWrite;

use super::results::CsvSink;
use super::{Bulk, BulkError, DEFAULT_TYPED_PAGE_RECORDS, JobInfo, JobState, Operation, Progress, check_id};
use crate::client::Req;
use crate::error::ClientError;

impl Bulk {
    /// `POST jobs/query` (`queryAll` includes deleted and archived records).
    pub async fn create_query(&self, soql: &str, all: bool) -> Result<JobInfo, BulkError> {
        if soql.trim().is_empty() {
            return Err(ClientError::InvalidInput("the query is empty".to_owned()).into());
        }
        let operation = if all { Operation::QueryAll } else { Operation::Query };
        let body = serde_json::json!({ "operation": operation, "query": soql, "contentType": "CSV" });
        let req = Req::data(Method::POST, ["jobs", "query"]).json(&body)?;
        Ok(self.client.json(req).await?)
    }

    /// Streams every result page of a completed query job to `out` (one header row), following
    /// `Sforce-Locator`; `progress` gets the records written after each page. Returns the
    /// record count.
    pub async fn query_results<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        id: &str,
        out: &mut W,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<u64, BulkError> {
        let id = check_id(id)?;
        let path = ["jobs", "query", id, "results"];
        let mut locator: Option<String> = None;
        let mut sink = CsvSink::new(out, false);
        loop {
            let query = page_query(self.options.page_records, locator.as_deref());
            let headers = self.download(&path, &query, &mut sink).await?;
            // Later pages repeat the header row.
            sink.skip_header_of_next();
            progress(&Progress {
                job_id: id.to_owned(),
                state: JobState::JobComplete,
                uploaded_records: 0,
                uploaded_bytes: 0,
                uploads: 0,
                processed: sink.rows,
                failed: 0,
            });
            match next_locator(&headers) {
                Some(l) => locator = Some(l),
                None => break,
            }
        }
        sink.finish().await
    }

    /// The records of a completed query job as `T`, page by page (one page of
    /// [`BulkOptions::page_records`](super::BulkOptions::page_records), else [`DEFAULT_TYPED_PAGE_RECORDS`], held at a time).
    /// Columns map to fields by header name (`Account.Name` for parent fields).
    pub fn query_records<T: DeserializeOwned>(&self, id: &str) -> QueryRecords<T> {
        QueryRecords { bulk: self.clone(), id: id.to_owned(), locator: None, done: false, page: VecDeque::new() }
    }
}

/// Typed records of a query job ([`Bulk::query_records`]).
pub struct QueryRecords<T> {
    bulk: Bulk,
    id: String,
    locator: Option<String>,
    done: bool,
    page: VecDeque<T>,
}

impl<T> fmt::Debug for QueryRecords<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryRecords").field("id", &self.id).field("done", &self.done).finish()
    }
}

impl<T: DeserializeOwned> QueryRecords<T> {
    /// The next record; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<T, BulkError>> {
        loop {
            if let Some(r) = self.page.pop_front() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch().await {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    async fn fetch(&mut self) -> Result<(), BulkError> {
        let id = check_id(&self.id)?.to_owned();
        let records = self.bulk.options.page_records.unwrap_or(DEFAULT_TYPED_PAGE_RECORDS);
        let query = page_query(Some(records), self.locator.as_deref());
        let mut body: Vec<u8> = Vec::new();
        let headers = {
            let mut sink = CsvSink::new(&mut body, false);
            self.bulk.download(&["jobs", "query", &id, "results"], &query, &mut sink).await?
        };
        let mut reader = csv::ReaderBuilder::new().from_reader(body.as_slice());
        for row in reader.deserialize::<T>() {
            let record = row.map_err(|e| ClientError::UnexpectedResponse {
                endpoint: format!("GET jobs/query/{id}/results"),
                status: 200,
                kind: crate::error::BodyKind::Shape(forcelink_auth::body::redact(&e.to_string())),
                excerpt: String::new(),
            })?;
            self.page.push_back(record);
        }
        match next_locator(&headers) {
            Some(l) => self.locator = Some(l),
            None => self.done = true,
        }
        Ok(())
    }
}

fn page_query(max: Option<u64>, locator: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(l) = locator {
        q.push(("locator", l.to_owned()));
    }
    if let Some(m) = max {
        q.push(("maxRecords", m.to_string()));
    }
    q
}

/// The next page's locator; `None` when absent or the literal `null`.
fn next_locator(headers: &HeaderMap) -> Option<String> {
    headers
        .get("sforce-locator")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "null")
        .map(str::to_owned)
}
