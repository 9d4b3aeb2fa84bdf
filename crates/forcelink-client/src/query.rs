//! SOQL `query` and `queryAll`: the first [`Page`], or a lazy [`RecordStream`] that follows
//! `nextRecordsUrl`. The stream holds at most the page being consumed plus the next one, which
//! it fetches (and parses, on another task) while the current one is consumed, so memory stays
//! about two pages whatever the result size.
//!
//! ```no_run
//! # async fn f(client: forcelink_client::Client) -> Result<(), forcelink_client::ClientError> {
//! use futures_util::StreamExt;
//! let mut records = client.query("SELECT Id, Name FROM Account").batch_size(500).stream();
//! while let Some(record) = records.next().await {
//!     let record = record?;
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::client::{Client, Req, Target};
use crate::error::{BodyKind, ClientError};

/// Smallest batch size Salesforce honours (`Sforce-Query-Options: batchSize`).
pub const MIN_BATCH_SIZE: u32 = 200;
/// Largest batch size, and Salesforce's default.
pub const MAX_BATCH_SIZE: u32 = 2000;

/// One page of a query answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub total_size: u64,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_records_url: Option<String>,
    pub records: Vec<T>,
}

impl<T: DeserializeOwned + Send + 'static> Page<T> {
    /// Streams this page's records, then the following pages'.
    pub fn into_stream(self, client: &Client) -> RecordStream<T> {
        let mut s = RecordStream::empty(client.clone(), Vec::new());
        s.accept(self);
        s
    }

    /// Fetches the next page, if there is one.
    pub async fn next_page(&self, client: &Client) -> Result<Option<Page<T>>, ClientError> {
        match &self.next_records_url {
            Some(url) => fetch_page(client.clone(), next_request(url, &[])?).await.map(Some),
            None => Ok(None),
        }
    }
}

impl Client {
    /// `GET /query?q=…`: live records.
    pub fn query(&self, soql: impl Into<String>) -> QueryBuilder<'_> {
        QueryBuilder { client: self, soql: soql.into(), all: false, batch_size: None }
    }

    /// `GET /queryAll?q=…`: also deleted and archived records.
    pub fn query_all(&self, soql: impl Into<String>) -> QueryBuilder<'_> {
        QueryBuilder { client: self, soql: soql.into(), all: true, batch_size: None }
    }
}

/// See [`Client::query`].
#[derive(Debug)]
pub struct QueryBuilder<'c> {
    client: &'c Client,
    soql: String,
    all: bool,
    batch_size: Option<u32>,
}

fn batch_header(size: Option<u32>) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
    let Some(n) = size else { return Ok(Vec::new()) };
    if !(MIN_BATCH_SIZE..=MAX_BATCH_SIZE).contains(&n) {
        return Err(ClientError::InvalidInput(format!(
            "batch size {n} is outside Salesforce's {MIN_BATCH_SIZE}..={MAX_BATCH_SIZE}"
        )));
    }
    let value =
        HeaderValue::from_str(&format!("batchSize={n}")).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
    Ok(vec![(HeaderName::from_static("sforce-query-options"), value)])
}

fn next_request(url: &str, headers: &[(HeaderName, HeaderValue)]) -> Result<Req, ClientError> {
    // The locator URL comes from the server; it must stay on the data API of the same host.
    if !url.starts_with("/services/data/") || url.contains("..") || url.contains("//") {
        return Err(ClientError::UnexpectedResponse {
            endpoint: "query".to_owned(),
            status: 200,
            kind: BodyKind::Shape("nextRecordsUrl is not a /services/data/ path".to_owned()),
            excerpt: crate::error::redact(url),
        });
    }
    let mut req = Req::new(Method::GET, Target::Path(url.to_owned()));
    req.headers = headers.to_vec();
    Ok(req)
}

async fn fetch_page<T: DeserializeOwned>(client: Client, req: Req) -> Result<Page<T>, ClientError> {
    client.execute(req).await?.json()
}

impl QueryBuilder<'_> {
    /// Asks for pages of `n` records (`Sforce-Query-Options: batchSize=n`, 200 to 2,000;
    /// Salesforce may send fewer). Defaults to Salesforce's own (2,000).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }

    fn first_request(&self) -> Result<(Req, Vec<(HeaderName, HeaderValue)>), ClientError> {
        if self.soql.trim().is_empty() {
            return Err(ClientError::InvalidInput("the SOQL query is empty".to_owned()));
        }
        let headers = batch_header(self.batch_size)?;
        let mut req = Req::data(Method::GET, [if self.all { "queryAll" } else { "query" }]).query("q", &*self.soql);
        req.headers = headers.clone();
        Ok((req, headers))
    }

    /// The first page, records as JSON.
    pub async fn send(self) -> Result<Page<Value>, ClientError> {
        self.send_as().await
    }

    /// The first page, records as the caller's type.
    pub async fn send_as<T: DeserializeOwned>(self) -> Result<Page<T>, ClientError> {
        let (req, _) = self.first_request()?;
        fetch_page(self.client.clone(), req).await
    }

    /// Every record, page after page, as JSON.
    pub fn stream(self) -> RecordStream<Value> {
        self.stream_as()
    }

    /// Every record, page after page, as the caller's type.
    pub fn stream_as<T: DeserializeOwned + Send + 'static>(self) -> RecordStream<T> {
        match self.first_request() {
            Ok((req, headers)) => {
                let mut s = RecordStream::empty(self.client.clone(), headers);
                s.next = Some(Fetch::NotStarted(Box::new(req)));
                s
            }
            Err(e) => {
                let mut s = RecordStream::empty(self.client.clone(), Vec::new());
                s.failed = Some(e);
                s
            }
        }
    }
}

enum Fetch<T> {
    NotStarted(Box<Req>),
    Running(JoinHandle<Result<Page<T>, ClientError>>),
}

/// A lazy stream of records (see the module docs). Ends after the last page or after the first
/// error, which it yields.
pub struct RecordStream<T> {
    client: Client,
    headers: Vec<(HeaderName, HeaderValue)>,
    buffer: std::vec::IntoIter<T>,
    next: Option<Fetch<T>>,
    failed: Option<ClientError>,
    total_size: Option<u64>,
    pages: u64,
}

impl<T> std::fmt::Debug for RecordStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("total_size", &self.total_size)
            .field("pages", &self.pages)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

// The stream is never self-referential: the spawned fetch owns everything it uses.
impl<T> Unpin for RecordStream<T> {}

impl<T> Drop for RecordStream<T> {
    fn drop(&mut self) {
        if let Some(Fetch::Running(h)) = &self.next {
            h.abort();
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> RecordStream<T> {
    fn empty(client: Client, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        Self { client, headers, buffer: Vec::new().into_iter(), next: None, failed: None, total_size: None, pages: 0 }
    }

    /// `totalSize` of the query, once the first page arrived.
    pub fn total_size(&self) -> Option<u64> {
        self.total_size
    }

    /// Pages received so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    fn accept(&mut self, page: Page<T>) {
        self.pages += 1;
        self.total_size.get_or_insert(page.total_size);
        self.next = match page.next_records_url.filter(|_| !page.done) {
            Some(url) => match next_request(&url, &self.headers) {
                Ok(req) => Some(Fetch::NotStarted(Box::new(req))),
                Err(e) => {
                    self.failed = Some(e);
                    None
                }
            },
            None => None,
        };
        self.buffer = page.records.into_iter();
    }

    fn start_next(&mut self) {
        if let Some(Fetch::NotStarted(_)) = &self.next
            && let Some(Fetch::NotStarted(req)) = self.next.take()
        {
            let client = self.client.clone();
            self.next = Some(Fetch::Running(tokio::spawn(fetch_page(client, *req))));
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Stream for RecordStream<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.buffer.next() {
                // Prefetch: the next page is on its way while this one is consumed.
                this.start_next();
                return Poll::Ready(Some(Ok(item)));
            }
            if let Some(e) = this.failed.take() {
                this.next = None;
                return Poll::Ready(Some(Err(e)));
            }
            this.start_next();
            let Some(Fetch::Running(handle)) = &mut this.next else { return Poll::Ready(None) };
            let joined = match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(j) => j,
            };
            this.next = None;
            match joined {
                Ok(Ok(page)) => this.accept(page),
                Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => return Poll::Ready(None),
            }
        }
    }
}
