//! Bulk API 2.0 (wire reference §8) with constant memory: nothing here holds a whole CSV file
//! or a whole result set.
//!
//! - Ingest jobs ([`IngestJob`]: insert, update, upsert with `externalIdFieldName`, delete,
//!   hardDelete) fed from any CSV reader ([`Bulk::upload_csv`], [`BlockingRead`] for
//!   `std::io::Read`) or typed records ([`Bulk::upload_records`]). The input is cut at row
//!   boundaries (quoted newlines respected) into uploads of at most
//!   [`BulkOptions::max_upload_bytes`], each repeating the header row.
//! - `UploadComplete` ([`Bulk::close`]), polling with exponential backoff on the client's clock
//!   ([`Bulk::wait`], [`PollPolicy`]); a timeout is [`BulkError::Timeout`], which keeps the job
//!   id so the job can be resumed.
//! - Results (`successfulResults`, `failedResults`, `unprocessedrecords`) streamed to any
//!   writer ([`Bulk::ingest_results`]).
//! - Query jobs (query, queryAll): pages followed by `Sforce-Locator` with `maxRecords`, streamed
//!   to a writer with one header row ([`Bulk::query_results`]) or read as typed records
//!   ([`Bulk::query_records`]).
//! - Abort, delete, job info; every call takes a job id, so any job can be resumed by id.
//!
//! JSON requests and uploads go through the [`Client`] request path (retries, one renewal on
//! `401`). Result bodies are streamed, which that path does not do (it reads answers in full),
//! so they are fetched here with a token from the same [`TokenProvider`], checked by the same
//! kind of [`UrlPolicy`].

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use forcelink_auth::backoff::{Backoff, Jitter};
use forcelink_auth::{Clock, TokenProvider, UrlPolicy};
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::{Client, Idempotency, Req, error_from};
use crate::error::ClientError;

/// Salesforce's limit per upload is 150 MB base64-encoded, about 100 MB of raw CSV.
pub const SALESFORCE_MAX_UPLOAD_BYTES: usize = 100 * 1000 * 1000;
/// Largest upload sent by default: well under Salesforce's limit, and small enough that the one
/// part held in memory keeps a client far below 64 MiB. Defaults to 16 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
/// First wait between two polls of a job's state. Defaults to 500 ms.
pub const DEFAULT_POLL_INITIAL: Duration = Duration::from_millis(500);
/// Longest wait between two polls (the backoff doubles up to this). Defaults to 10 s.
pub const DEFAULT_POLL_MAX: Duration = Duration::from_secs(10);
/// How long [`Bulk::wait`] polls before giving up with [`BulkError::Timeout`]. Defaults to 1 hour.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Records per page of a typed query stream, which holds one page. Defaults to 10,000.
pub const DEFAULT_TYPED_PAGE_RECORDS: u64 = 10_000;
/// Bytes read from an input at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Retries of a result download that failed before its body started (5xx, 429, transport):
/// 3, after 500 ms, 1 s and 2 s. Not randomised, as before this schedule was shared.
const RESULT_RETRY: Backoff = Backoff {
    jitter: Jitter::None,
    max_retries: Some(3),
    ..Backoff::exponential(DEFAULT_POLL_INITIAL, DEFAULT_POLL_INITIAL.saturating_mul(16))
};
/// Longest error body read from a result download.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Ingest or query: the path segment under `jobs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Ingest,
    Query,
}

impl JobKind {
    fn segment(self) -> &'static str {
        match self {
            JobKind::Ingest => "ingest",
            JobKind::Query => "query",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())
    }
}

/// A job's operation, as Salesforce spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
    Query,
    QueryAll,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
            Operation::HardDelete => "hardDelete",
            Operation::Query => "query",
            Operation::QueryAll => "queryAll",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            "hardDelete" | "harddelete" => Operation::HardDelete,
            "query" => Operation::Query,
            "queryAll" | "queryall" => Operation::QueryAll,
            other => {
                return Err(ClientError::InvalidInput(format!(
                    "unknown bulk operation {other:?}: use insert, update, upsert, delete, hardDelete, query or queryAll"
                )));
            }
        })
    }
}

/// A job's state. States Salesforce may add later read as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
    #[serde(untagged)]
    Other(String),
}

impl JobState {
    /// No further change will happen.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobState::JobComplete | JobState::Failed | JobState::Aborted)
    }
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
            JobState::Other(s) => s,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as Salesforce describes it (`JobInfo`). Counters and timings appear once processing
/// started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    pub id: String,
    pub operation: Operation,
    #[serde(default)]
    pub object: Option<String>,
    pub state: JobState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ending: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_records_processed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_records_failed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_processing_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl JobInfo {
    /// Ingest or query, from `jobType` or else the operation.
    pub fn kind(&self) -> JobKind {
        match (self.job_type.as_deref(), self.operation) {
            (Some("V2Query"), _) | (None, Operation::Query | Operation::QueryAll) => JobKind::Query,
            _ => JobKind::Ingest,
        }
    }
}

/// What an ingest job is created with (`POST jobs/ingest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestJob {
    pub object: String,
    pub operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id_field_name: Option<String>,
    pub content_type: &'static str,
    /// `COMMA` (default), `TAB`, `PIPE`, `SEMICOLON`, `CARET`, `BACKQUOTE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_delimiter: Option<String>,
    /// `LF` (default) or `CRLF`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_ending: Option<String>,
}

impl IngestJob {
    pub fn new(object: impl Into<String>, operation: Operation) -> Self {
        Self {
            object: object.into(),
            operation,
            external_id_field_name: None,
            content_type: "CSV",
            column_delimiter: None,
            line_ending: None,
        }
    }
    pub fn insert(object: impl Into<String>) -> Self {
        Self::new(object, Operation::Insert)
    }
    pub fn upsert(object: impl Into<String>, external_id: impl Into<String>) -> Self {
        let mut job = Self::new(object, Operation::Upsert);
        job.external_id_field_name = Some(external_id.into());
        job
    }
    pub fn column_delimiter(mut self, d: impl Into<String>) -> Self {
        self.column_delimiter = Some(d.into());
        self
    }
    pub fn line_ending(mut self, l: impl Into<String>) -> Self {
        self.line_ending = Some(l.into());
        self
    }

    fn check(&self) -> Result<(), ClientError> {
        crate::types::SObjectType::new(&self.object)?;
        match (self.operation, &self.external_id_field_name) {
            (Operation::Query | Operation::QueryAll, _) => {
                Err(ClientError::InvalidInput(format!("{} is a query operation, not an ingest one", self.operation)))
            }
            (Operation::Upsert, None) => {
                Err(ClientError::InvalidInput("an upsert needs the external id field name".to_owned()))
            }
            (Operation::Upsert, Some(f)) => crate::types::FieldName::new(f).map(|_| ()),
            (_, Some(_)) => Err(ClientError::InvalidInput("an external id field is only used by upsert".to_owned())),
            _ => Ok(()),
        }
    }
}

/// Which results of an ingest job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResultSet {
    /// `successfulResults`: `sf__Id, sf__Created` + the input columns.
    Successful,
    /// `failedResults`: `sf__Id, sf__Error` + the input columns.
    Failed,
    /// `unprocessedrecords`: the input rows that were not processed.
    Unprocessed,
}

impl ResultSet {
    pub const ALL: [ResultSet; 3] = [ResultSet::Successful, ResultSet::Failed, ResultSet::Unprocessed];
    fn segment(self) -> &'static str {
        match self {
            ResultSet::Successful => "successfulResults",
            ResultSet::Failed => "failedResults",
            ResultSet::Unprocessed => "unprocessedrecords",
        }
    }
    /// A short name for files and messages: `successful`, `failed`, `unprocessed`.
    pub fn name(self) -> &'static str {
        match self {
            ResultSet::Successful => "successful",
            ResultSet::Failed => "failed",
            ResultSet::Unprocessed => "unprocessed",
        }
    }
}

/// How [`Bulk::wait`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self { initial: DEFAULT_POLL_INITIAL, max: DEFAULT_POLL_MAX, timeout: DEFAULT_POLL_TIMEOUT }
    }
}

impl PollPolicy {
    /// The polls as a [`Backoff`]: a growing interval without jitter (one client polls its own
    /// job; nothing to spread), no retry limit, `timeout` as the budget.
    pub fn schedule(&self) -> Backoff {
        Backoff {
            jitter: Jitter::None,
            max_retries: None,
            budget: Some(self.timeout),
            ..Backoff::exponential(self.initial, self.max)
        }
    }
}

/// Bulk settings; every default is a named constant.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Largest upload (header row included). Defaults to [`DEFAULT_MAX_UPLOAD_BYTES`]; at most
    /// [`SALESFORCE_MAX_UPLOAD_BYTES`].
    pub max_upload_bytes: usize,
    pub poll: PollPolicy,
    /// `maxRecords` of query result pages; `None` lets Salesforce choose.
    pub page_records: Option<u64>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self { max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES, poll: PollPolicy::default(), page_records: None }
    }
}

/// Where a job is, for progress displays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub job_id: String,
    pub state: JobState,
    /// Records sent so far (uploads).
    pub uploaded_records: u64,
    pub uploaded_bytes: u64,
    /// Uploads sent so far.
    pub uploads: u64,
    /// Records processed by Salesforce (from the job info; while a query's results are
    /// written, the records written).
    pub processed: u64,
    pub failed: u64,
}

impl Progress {
    fn of(info: &JobInfo) -> Self {
        Self {
            job_id: info.id.clone(),
            state: info.state.clone(),
            uploaded_records: 0,
            uploaded_bytes: 0,
            uploads: 0,
            processed: info.number_records_processed.unwrap_or(0),
            failed: info.number_records_failed.unwrap_or(0),
        }
    }
}

/// What was uploaded to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct UploadSummary {
    pub records: u64,
    pub bytes: u64,
    pub uploads: u64,
}

/// Errors of bulk jobs. Those that happen once a job exists carry its id ([`BulkError::job_id`])
/// so that it can be resumed, aborted or inspected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The job did not reach a final state in time; it goes on at Salesforce.
    #[error(
        "bulk {kind} job {job_id} is still {state} after {} s of waiting; it goes on at Salesforce: \
         resume waiting with its id",
        waited.as_secs()
    )]
    Timeout { kind: JobKind, job_id: String, state: JobState, waited: Duration },
    /// Salesforce failed the whole job (a bad header row, a field that does not exist…).
    #[error("bulk {kind} job {job_id} failed: {message}")]
    JobFailed { kind: JobKind, job_id: String, message: String },
    #[error("bulk {kind} job {job_id} was aborted")]
    JobAborted { kind: JobKind, job_id: String },
    /// The CSV input cannot be sent (no header row, a row over the upload size…); nothing of it
    /// was processed.
    #[error("invalid CSV input: {0}")]
    Input(String),
    #[error("reading the input: {0}")]
    Read(String),
    #[error("writing the results: {0}")]
    Write(String),
    /// A step failed after the job was created.
    #[error("bulk job {job_id}: {source}")]
    InJob { job_id: String, source: Box<BulkError> },
}

impl BulkError {
    /// The job the error is about, when one exists.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            BulkError::Timeout { job_id, .. }
            | BulkError::JobFailed { job_id, .. }
            | BulkError::JobAborted { job_id, .. }
            | BulkError::InJob { job_id, .. } => Some(job_id),
            _ => None,
        }
    }
    /// The underlying client error, when there is one.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            BulkError::Client(e) => Some(e),
            BulkError::InJob { source, .. } => source.client_error(),
            _ => None,
        }
    }
    fn in_job(self, job_id: &str) -> BulkError {
        match self {
            e @ (BulkError::InJob { .. } | BulkError::Timeout { .. } | BulkError::JobFailed { .. }) => e,
            e => BulkError::InJob { job_id: job_id.to_owned(), source: Box::new(e) },
        }
    }
}

/// Bulk API 2.0 on one connection. Cheap to clone.
#[derive(Clone)]
pub struct Bulk {
    client: Client,
    provider: Arc<dyn TokenProvider>,
    http: reqwest::Client,
    policy: UrlPolicy,
    clock: Arc<dyn Clock>,
    options: BulkOptions,
}

impl fmt::Debug for Bulk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulk").field("client", &self.client).field("options", &self.options).finish()
    }
}

impl Bulk {
    /// Bulk jobs over `client`; `provider` must be the token provider the client was built
    /// with (result downloads are streamed with its tokens). URLs are checked with the
    /// client's [`UrlPolicy`] unless [`Bulk::url_policy`] says otherwise; polls wait on the
    /// client's clock.
    pub fn new(client: Client, provider: Arc<dyn TokenProvider>) -> Result<Self, ClientError> {
        // No overall timeout: a result download of a million rows takes longer than any
        // single JSON request should.
        let http = reqwest::Client::builder()
            .connect_timeout(crate::client::DEFAULT_CONNECT_TIMEOUT)
            .read_timeout(crate::client::DEFAULT_REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .gzip(true)
            .build()
            .map_err(|e| ClientError::InvalidInput(format!("building the HTTP client: {e}")))?;
        let clock = client.inner.clock.clone();
        let policy = client.inner.policy.clone();
        Ok(Self { client, provider, http, policy, clock, options: BulkOptions::default() })
    }
    /// Where result downloads may go; use the client's policy.
    pub fn url_policy(mut self, policy: UrlPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// The HTTP client for result downloads (keep its overall timeout off).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }
    /// The clock polls wait on. Defaults to the client's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    pub fn options(mut self, options: BulkOptions) -> Self {
        self.options = options;
        self
    }
    pub fn max_upload_bytes(mut self, bytes: usize) -> Self {
        self.options.max_upload_bytes = bytes;
        self
    }
    pub fn poll(mut self, poll: PollPolicy) -> Self {
        self.options.poll = poll;
        self
    }
    pub fn page_records(mut self, n: Option<u64>) -> Self {
        self.options.page_records = n;
        self
    }
    pub fn client(&self) -> &Client {
        &self.client
    }

    // ---- jobs ----

    /// `POST jobs/ingest`: a new job in state `Open`.
    pub async fn create_ingest(&self, job: &IngestJob) -> Result<JobInfo, BulkError> {
        job.check()?;
        let req = Req::data(Method::POST, ["jobs", "ingest"]).json(job)?;
        Ok(self.client.json(req).await?)
    }

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

    /// `GET jobs/{kind}/{id}`.
    pub async fn job_info(&self, kind: JobKind, id: &str) -> Result<JobInfo, BulkError> {
        let req = Req::data(Method::GET, ["jobs", kind.segment(), check_id(id)?]);
        Ok(self.client.json(req).await?)
    }

    /// Finds a job by id whichever its kind (ingest first).
    pub async fn find_job(&self, id: &str) -> Result<JobInfo, BulkError> {
        match self.job_info(JobKind::Ingest, id).await {
            Ok(info) => Ok(info),
            Err(BulkError::Client(e)) if e.status() == Some(404) => self.job_info(JobKind::Query, id).await,
            Err(e) => Err(e),
        }
    }

    /// `PATCH {"state":"UploadComplete"}`: processing starts.
    pub async fn close(&self, id: &str) -> Result<JobInfo, BulkError> {
        self.set_state(JobKind::Ingest, id, "UploadComplete").await
    }

    /// `PATCH {"state":"Aborted"}`.
    pub async fn abort(&self, kind: JobKind, id: &str) -> Result<JobInfo, BulkError> {
        self.set_state(kind, id, "Aborted").await
    }

    async fn set_state(&self, kind: JobKind, id: &str, state: &str) -> Result<JobInfo, BulkError> {
        let req = Req::data(Method::PATCH, ["jobs", kind.segment(), check_id(id)?])
            .json(&serde_json::json!({ "state": state }))?;
        Ok(self.client.json(req).await?)
    }

    /// `DELETE jobs/{kind}/{id}` (a job in a final state, with its data and results).
    pub async fn delete(&self, kind: JobKind, id: &str) -> Result<(), BulkError> {
        let req = Req::data(Method::DELETE, ["jobs", kind.segment(), check_id(id)?]);
        self.client.execute(req).await?;
        Ok(())
    }

    // ---- uploads ----

    /// Uploads CSV (header row first) from `reader` to an open ingest job, cut into uploads of
    /// at most [`BulkOptions::max_upload_bytes`]. Memory: one upload.
    pub async fn upload_csv<R: AsyncRead + Unpin>(
        &self,
        job_id: &str,
        mut reader: R,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<UploadSummary, BulkError> {
        let mut up = Uploader::new(self, job_id, progress)?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = reader.read(&mut buf).await.map_err(|e| BulkError::Read(e.to_string()))?;
            if n == 0 {
                break;
            }
            up.push(&buf[..n]).await?;
        }
        up.finish().await
    }

    /// Uploads typed records (serialized as CSV, their field names as the header row). An
    /// empty cell leaves a field unchanged; `#N/A` sets it to null.
    pub async fn upload_records<T, I>(
        &self,
        job_id: &str,
        records: I,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<UploadSummary, BulkError>
    where
        T: Serialize,
        I: IntoIterator<Item = T>,
    {
        let mut up = Uploader::new(self, job_id, progress)?;
        let buffer = SharedBuffer::default();
        let mut writer = csv::WriterBuilder::new().from_writer(buffer.clone());
        for record in records {
            writer.serialize(record).map_err(|e| BulkError::Input(format!("a record is not CSV-serializable: {e}")))?;
            if buffer.len() >= READ_CHUNK {
                writer.flush().map_err(|e| BulkError::Input(e.to_string()))?;
                up.push(&buffer.take()).await?;
            }
        }
        writer.flush().map_err(|e| BulkError::Input(e.to_string()))?;
        up.push(&buffer.take()).await?;
        up.finish().await
    }

    async fn put_part(&self, job_id: &str, body: Bytes) -> Result<(), ClientError> {
        let mut req = Req::data(Method::PUT, ["jobs", "ingest", job_id, "batches"])
            // A repeated upload would add its rows twice: sent again only when the connection
            // was never made.
            .idempotency(Idempotency::NotIdempotent);
        req.body = Some((body, "text/csv".to_owned()));
        self.client.execute(req).await?;
        Ok(())
    }

    /// Creates an ingest job, uploads `reader`, and closes it (`UploadComplete`). When an
    /// upload fails the job is aborted and the error carries its id.
    pub async fn ingest_csv<R: AsyncRead + Unpin>(
        &self,
        job: &IngestJob,
        reader: R,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<(JobInfo, UploadSummary), BulkError> {
        let info = self.create_ingest(job).await?;
        match self.upload_csv(&info.id, reader, progress).await {
            Ok(summary) => {
                let closed = self.close(&info.id).await.map_err(|e| e.in_job(&info.id))?;
                Ok((closed, summary))
            }
            Err(e) => {
                // Best effort: an open job with part of the data must not be processed later.
                let _ = self.abort(JobKind::Ingest, &info.id).await;
                Err(e.in_job(&info.id))
            }
        }
    }

    // ---- polling ----

    /// Polls until the job is complete, with exponential backoff; calls `progress` after each
    /// poll. `Failed` and `Aborted` jobs are errors; running out of
    /// [`PollPolicy::timeout`] is [`BulkError::Timeout`] (the job goes on).
    pub async fn wait(
        &self,
        kind: JobKind,
        id: &str,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<JobInfo, BulkError> {
        let mut polls = self.options.poll.schedule().start(self.clock.clone());
        loop {
            let info = self.job_info(kind, id).await?;
            progress(&Progress::of(&info));
            match info.state {
                JobState::JobComplete => return Ok(info),
                JobState::Failed => {
                    return Err(BulkError::JobFailed {
                        kind,
                        job_id: info.id,
                        message: info.error_message.unwrap_or_else(|| "no reason given".to_owned()),
                    });
                }
                JobState::Aborted => return Err(BulkError::JobAborted { kind, job_id: info.id }),
                _ => {}
            }
            if polls.wait(None).await.is_err() {
                let waited = polls.elapsed();
                return Err(BulkError::Timeout { kind, job_id: info.id, state: info.state, waited });
            }
        }
    }

    // ---- results ----

    /// Streams one result set of an ingest job to `out`; returns the number of records (rows
    /// after the header).
    pub async fn ingest_results<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        id: &str,
        which: ResultSet,
        out: &mut W,
    ) -> Result<u64, BulkError> {
        let path = ["jobs", "ingest", check_id(id)?, which.segment()];
        let mut sink = CsvSink::new(out, false);
        self.download(&path, &[], &mut sink).await?;
        sink.finish().await
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
    /// [`BulkOptions::page_records`], else [`DEFAULT_TYPED_PAGE_RECORDS`], held at a time).
    /// Columns map to fields by header name (`Account.Name` for parent fields).
    pub fn query_records<T: DeserializeOwned>(&self, id: &str) -> QueryRecords<T> {
        QueryRecords { bulk: self.clone(), id: id.to_owned(), locator: None, done: false, page: VecDeque::new() }
    }

    /// A GET whose body is streamed into `sink`, with one renewal on `401` and retries of
    /// answers that failed before their body started.
    async fn download<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        path: &[&str],
        query: &[(&'static str, String)],
        sink: &mut CsvSink<'_, W>,
    ) -> Result<HeaderMap, BulkError> {
        let mut renewed = false;
        let mut retries = RESULT_RETRY.start(self.clock.clone());
        loop {
            let token = self.provider.token().await.map_err(ClientError::from)?;
            let mut url = token.instance_url.clone();
            url.set_query(None);
            url.set_fragment(None);
            {
                let mut segs = url
                    .path_segments_mut()
                    .map_err(|_| ClientError::InvalidInput("the instance URL cannot hold a path".to_owned()))?;
                segs.clear().extend(["services", "data", self.client.api_version().segment().as_str()]);
                segs.extend(path);
            }
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            self.policy.check("instance URL", &url).map_err(ClientError::from)?;
            let endpoint = format!("GET {}{}", url.origin().ascii_serialization(), url.path());
            let sent = self
                .http
                .get(url)
                .bearer_auth(token.access_token.secret())
                .header(header::ACCEPT, "text/csv")
                .send()
                .await;
            let transport = |e: &reqwest::Error| ClientError::Transport {
                endpoint: endpoint.clone(),
                message: crate::client::transport_message(e),
                timeout: e.is_timeout(),
            };
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    if retries.wait(None).await.is_ok() {
                        continue;
                    }
                    return Err(transport(&e).into());
                }
            };
            let status = resp.status().as_u16();
            let headers = std::mem::take(resp.headers_mut());
            if status >= 400 {
                let mut body = Vec::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_ERROR_BODY {
                        break;
                    }
                }
                if status == 401 && !renewed {
                    self.provider.invalidate(&token.access_token);
                    renewed = true;
                    continue;
                }
                if matches!(status, 429 | 500 | 502 | 503 | 504) && retries.wait(None).await.is_ok() {
                    continue;
                }
                return Err(error_from(&endpoint, status, &headers, &body).into());
            }
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => sink.write(&chunk).await?,
                    Ok(None) => break,
                    Err(e) => return Err(transport(&e).into()),
                }
            }
            sink.end_of_body().await?;
            return Ok(headers);
        }
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

/// The CSV writer's output, taken in chunks while records are serialized.
#[derive(Debug, Clone, Default)]
struct SharedBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn len(&self) -> usize {
        self.lock().len()
    }
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }
}

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `std::io::Read` as [`AsyncRead`]: reads block the task, which suits local files.
#[derive(Debug)]
pub struct BlockingRead<R>(pub R);

impl<R: Read + Unpin> AsyncRead for BlockingRead<R> {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

fn check_id(id: &str) -> Result<&str, ClientError> {
    if id.is_empty() || id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ClientError::InvalidInput(format!("{id:?} is not a bulk job id")));
    }
    Ok(id)
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

/// Finds row ends in CSV bytes: a newline outside quotes. Delimiter-agnostic (quotes are
/// always `"`; a doubled quote toggles twice).
#[derive(Debug, Default, Clone, Copy)]
struct RowScanner {
    in_quotes: bool,
}

impl RowScanner {
    /// The index just past the first row end in `data`, consuming up to there.
    fn next_row_end(&mut self, data: &[u8]) -> Option<usize> {
        for (i, &b) in data.iter().enumerate() {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => return Some(i + 1),
                _ => {}
            }
        }
        None
    }
}

/// Writes a CSV body to `out`, counting rows after the header, optionally skipping the header
/// row (result pages after the first).
struct CsvSink<'w, W: ?Sized> {
    out: &'w mut W,
    scanner: RowScanner,
    skip_header: bool,
    in_header: bool,
    /// Bytes of the current row seen so far (to count a last row without a newline).
    row_open: bool,
    rows: u64,
}

impl<'w, W: AsyncWrite + Unpin + ?Sized> CsvSink<'w, W> {
    fn new(out: &'w mut W, skip_header: bool) -> Self {
        Self { out, scanner: RowScanner::default(), skip_header, in_header: true, row_open: false, rows: 0 }
    }

    fn skip_header_of_next(&mut self) {
        self.skip_header = true;
    }

    async fn write(&mut self, mut chunk: &[u8]) -> Result<(), BulkError> {
        while !chunk.is_empty() {
            let end = self.scanner.next_row_end(chunk);
            let (piece, rest) = chunk.split_at(end.unwrap_or(chunk.len()));
            if !(self.in_header && self.skip_header) {
                self.out.write_all(piece).await.map_err(|e| BulkError::Write(e.to_string()))?;
            }
            match end {
                Some(_) => {
                    if self.in_header {
                        self.in_header = false;
                    } else {
                        self.rows += 1;
                    }
                    self.row_open = false;
                }
                None => self.row_open = !piece.is_empty() || self.row_open,
            }
            chunk = rest;
        }
        Ok(())
    }

    /// One body ended: a last row without a newline counts, and gets one so the next page
    /// starts on its own line.
    async fn end_of_body(&mut self) -> Result<(), BulkError> {
        if self.row_open {
            if !(self.in_header && self.skip_header) {
                self.out.write_all(b"\n").await.map_err(|e| BulkError::Write(e.to_string()))?;
            }
            if !self.in_header {
                self.rows += 1;
            }
        }
        self.scanner = RowScanner::default();
        self.in_header = true;
        self.row_open = false;
        Ok(())
    }

    async fn finish(self) -> Result<u64, BulkError> {
        self.out.flush().await.map_err(|e| BulkError::Write(e.to_string()))?;
        Ok(self.rows)
    }
}

/// Cuts CSV input into uploads at row ends; each upload is the header row + whole rows. The
/// upload being built starts with the header row and is sent as it is (no copy), so memory is
/// one upload plus one row.
struct Uploader<'a> {
    bulk: &'a Bulk,
    job_id: String,
    progress: &'a mut (dyn FnMut(&Progress) + Send),
    max: usize,
    scanner: RowScanner,
    header: Option<Vec<u8>>,
    /// The header row while it is read, then the header row + the rows of the next upload.
    part: Vec<u8>,
    /// Where the row being read starts in `part`.
    row_start: usize,
    part_rows: u64,
    summary: UploadSummary,
}

impl<'a> Uploader<'a> {
    fn new(bulk: &'a Bulk, job_id: &str, progress: &'a mut (dyn FnMut(&Progress) + Send)) -> Result<Self, BulkError> {
        check_id(job_id)?;
        let max = bulk.options.max_upload_bytes;
        if max == 0 || max > SALESFORCE_MAX_UPLOAD_BYTES {
            return Err(ClientError::InvalidInput(format!(
                "the upload size must be between 1 and {SALESFORCE_MAX_UPLOAD_BYTES} bytes, not {max}"
            ))
            .into());
        }
        Ok(Self {
            bulk,
            job_id: job_id.to_owned(),
            progress,
            max,
            scanner: RowScanner::default(),
            header: None,
            part: Vec::new(),
            row_start: 0,
            part_rows: 0,
            summary: UploadSummary::default(),
        })
    }

    async fn push(&mut self, mut data: &[u8]) -> Result<(), BulkError> {
        while !data.is_empty() {
            let end = self.scanner.next_row_end(data);
            let (piece, rest) = data.split_at(end.unwrap_or(data.len()));
            self.part.extend_from_slice(piece);
            data = rest;
            if end.is_some() {
                self.row_done().await?;
            } else {
                self.check_row_size()?;
            }
        }
        Ok(())
    }

    fn header_len(&self) -> usize {
        self.header.as_ref().map_or(0, Vec::len)
    }

    /// A fresh upload: the header row alone.
    fn fresh_part(&self) -> Vec<u8> {
        let header = self.header.as_deref().unwrap_or_default();
        // Room for a whole upload at once: growing by doubling would copy the part and briefly
        // hold it twice. Pages are only touched as rows arrive.
        let mut part = Vec::with_capacity(self.max + READ_CHUNK);
        part.extend_from_slice(header);
        part
    }

    fn check_row_size(&self) -> Result<(), BulkError> {
        if self.header.is_some() && self.part.len() - self.row_start + self.header_len() > self.max {
            return Err(BulkError::Input(format!(
                "row {} is longer than the upload size ({} bytes) with the header row",
                self.summary.records + self.part_rows + 1,
                self.max
            )));
        }
        if self.header.is_none() && self.part.len() > self.max {
            return Err(BulkError::Input(format!(
                "the header row is longer than the upload size ({} bytes)",
                self.max
            )));
        }
        Ok(())
    }

    async fn row_done(&mut self) -> Result<(), BulkError> {
        if self.header.is_none() {
            if self.part.iter().all(u8::is_ascii_whitespace) {
                return Err(BulkError::Input("the first line (the header row) is empty".to_owned()));
            }
            self.check_row_size()?;
            self.header = Some(std::mem::take(&mut self.part));
            self.part = self.fresh_part();
            self.row_start = self.part.len();
            return Ok(());
        }
        // Blank lines carry no record.
        if self.part[self.row_start..].iter().all(u8::is_ascii_whitespace) {
            self.part.truncate(self.row_start);
            return Ok(());
        }
        self.check_row_size()?;
        if self.part.len() > self.max {
            let row = self.part.split_off(self.row_start);
            self.send().await?;
            self.part.extend_from_slice(&row);
        }
        self.part_rows += 1;
        self.row_start = self.part.len();
        Ok(())
    }

    /// Sends the complete rows gathered so far; `part` becomes a fresh upload.
    async fn send(&mut self) -> Result<(), BulkError> {
        self.part.truncate(self.row_start);
        if self.part_rows == 0 {
            return Ok(());
        }
        let fresh = self.fresh_part();
        let body = std::mem::replace(&mut self.part, fresh);
        self.row_start = self.part.len();
        let len = body.len() as u64;
        self.bulk.put_part(&self.job_id, Bytes::from(body)).await?;
        self.summary.records += self.part_rows;
        self.summary.bytes += len;
        self.summary.uploads += 1;
        self.part_rows = 0;
        (self.progress)(&Progress {
            job_id: self.job_id.clone(),
            state: JobState::Open,
            uploaded_records: self.summary.records,
            uploaded_bytes: self.summary.bytes,
            uploads: self.summary.uploads,
            processed: 0,
            failed: 0,
        });
        Ok(())
    }

    async fn finish(mut self) -> Result<UploadSummary, BulkError> {
        if self.header.is_none() {
            if self.part.iter().all(u8::is_ascii_whitespace) {
                return Err(BulkError::Input("the input is empty: a header row is needed".to_owned()));
            }
            return Err(BulkError::Input("the input has a header row but no records".to_owned()));
        }
        // A last row without a newline.
        if self.part.len() > self.row_start && !self.part[self.row_start..].iter().all(u8::is_ascii_whitespace) {
            if self.scanner.in_quotes {
                return Err(BulkError::Input("the input ends inside a quoted field".to_owned()));
            }
            self.part.push(b'\n');
            self.row_done().await?;
        }
        self.send().await?;
        if self.summary.records == 0 {
            return Err(BulkError::Input("the input has a header row but no records".to_owned()));
        }
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_end_at_newlines_outside_quotes() {
        let mut s = RowScanner::default();
        let data = b"a,\"x\ny\",\"q\"\"\"\nb\n";
        let first = s.next_row_end(data).unwrap();
        assert_eq!(&data[..first], b"a,\"x\ny\",\"q\"\"\"\n");
        assert_eq!(s.next_row_end(&data[first..]), Some(2));
    }

    #[test]
    fn states_and_operations_read_as_salesforce_writes_them() {
        let s: JobState = serde_json::from_str("\"InProgress\"").unwrap();
        assert_eq!(s, JobState::InProgress);
        let other: JobState = serde_json::from_str("\"Queued\"").unwrap();
        assert_eq!(other, JobState::Other("Queued".to_owned()));
        assert!(!other.is_terminal());
        assert_eq!("hardDelete".parse::<Operation>().unwrap(), Operation::HardDelete);
        assert!("drop".parse::<Operation>().is_err());
        assert_eq!(serde_json::to_string(&Operation::QueryAll).unwrap(), "\"queryAll\"");
    }

    #[test]
    fn ingest_jobs_are_checked_before_sending() {
        assert!(IngestJob::new("Account", Operation::Upsert).check().is_err());
        assert!(IngestJob::upsert("Account", "Ext__c").check().is_ok());
        assert!(IngestJob::new("Account;", Operation::Insert).check().is_err());
        assert!(IngestJob::new("Account", Operation::Query).check().is_err());
        assert!(check_id("750x/../y").is_err());
    }
}
