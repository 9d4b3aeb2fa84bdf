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
//!
//! Parts: [`job`] (jobs, operations, states, what an ingest job is created with), [`ingest`]
//! (uploads cut at row boundaries), [`poll`] (waiting for a job), [`results`] (streamed result
//! downloads), [`query`] (query jobs and their pages); [`Bulk`] and [`BulkError`] here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::{Clock, TokenProvider, UrlPolicy};
use reqwest::Method;
use serde::Serialize;

use crate::client::{Client, Req};
use crate::error::ClientError;

pub mod ingest;
pub mod job;
pub mod poll;
pub mod query;
pub mod results;

pub use ingest::{BlockingRead, UploadSummary};
pub use job::{IngestJob, JobInfo, JobKind, JobState, Operation, ResultSet};
pub use poll::PollPolicy;
pub use query::QueryRecords;

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

/// Bulk settings; every default is a named constant.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Largest upload (header row included). Defaults to [`DEFAULT_MAX_UPLOAD_BYTES`]; at most
    /// [`SALESFORCE_MAX_UPLOAD_BYTES`].
    pub max_upload_bytes: usize,
    /// How [`Bulk::wait`] polls. Defaults to [`PollPolicy::default`].
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
    /// The job's id.
    pub job_id: String,
    /// The job's state at the last poll (`Open` while uploading).
    pub state: JobState,
    /// Records sent so far (uploads).
    pub uploaded_records: u64,
    /// Bytes sent so far, the header row of every upload included.
    pub uploaded_bytes: u64,
    /// Uploads sent so far.
    pub uploads: u64,
    /// Records processed by Salesforce (from the job info; while a query's results are
    /// written, the records written).
    pub processed: u64,
    /// Records Salesforce reported failed (from the job info).
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

/// Errors of bulk jobs. Those that happen once a job exists carry its id ([`BulkError::job_id`])
/// so that it can be resumed, aborted or inspected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    /// A request failed; once a job exists it comes wrapped in [`BulkError::InJob`].
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The job did not reach a final state in time; it goes on at Salesforce.
    #[error(
        "bulk {kind} job {job_id} is still {state} after {} s of waiting; it goes on at Salesforce: \
         resume waiting with its id",
        waited.as_secs()
    )]
    Timeout {
        /// Ingest or query.
        kind: JobKind,
        /// The job's id, to resume waiting with.
        job_id: String,
        /// The state at the last poll.
        state: JobState,
        /// How long [`Bulk::wait`] polled.
        waited: Duration,
    },
    /// Salesforce failed the whole job (a bad header row, a field that does not exist…).
    #[error("bulk {kind} job {job_id} failed: {message}")]
    JobFailed {
        /// Ingest or query.
        kind: JobKind,
        /// The job's id.
        job_id: String,
        /// Salesforce's `errorMessage`, or "no reason given".
        message: String,
    },
    /// The job was aborted while it was waited for.
    #[error("bulk {kind} job {job_id} was aborted")]
    JobAborted {
        /// Ingest or query.
        kind: JobKind,
        /// The job's id.
        job_id: String,
    },
    /// The CSV input cannot be sent (no header row, a row over the upload size…); nothing of it
    /// was processed.
    #[error("invalid CSV input: {0}")]
    Input(String),
    /// Reading the CSV input failed (the reader's I/O error).
    #[error("reading the input: {0}")]
    Read(String),
    /// Writing results to the caller's writer failed.
    #[error("writing the results: {0}")]
    Write(String),
    /// A step failed after the job was created.
    #[error("bulk job {job_id}: {source}")]
    InJob {
        /// The job's id, to resume, abort or inspect it with.
        job_id: String,
        /// What failed.
        source: Box<BulkError>,
    },
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
    /// Sets every bulk setting at once.
    pub fn options(mut self, options: BulkOptions) -> Self {
        self.options = options;
        self
    }
    /// Largest upload, header row included. Defaults to [`DEFAULT_MAX_UPLOAD_BYTES`]; at most
    /// [`SALESFORCE_MAX_UPLOAD_BYTES`].
    pub fn max_upload_bytes(mut self, bytes: usize) -> Self {
        self.options.max_upload_bytes = bytes;
        self
    }
    /// How [`Bulk::wait`] polls. Defaults to [`PollPolicy::default`].
    pub fn poll(mut self, poll: PollPolicy) -> Self {
        self.options.poll = poll;
        self
    }
    /// `maxRecords` per query result page; `None` (the default) lets Salesforce choose.
    pub fn page_records(mut self, n: Option<u64>) -> Self {
        self.options.page_records = n;
        self
    }
    /// The client JSON requests and uploads go through.
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
}

fn check_id(id: &str) -> Result<&str, ClientError> {
    if id.is_empty() || id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ClientError::InvalidInput(format!("{id:?} is not a bulk job id")));
    }
    Ok(id)
}
