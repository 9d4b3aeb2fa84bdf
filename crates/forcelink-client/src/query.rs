//! SOQL `query` and `queryAll`: the first [`Page`], a lazy [`RecordStream`] that follows
//! `nextRecordsUrl`, or the same pages unparsed as a [`PageStream`] (for callers that read
//! records in place, borrowing from the page). A producer task fetches the raw pages ahead of the
//! consumer (it finds `nextRecordsUrl` without parsing the records), so fetching the next page
//! overlaps parsing and consuming this one; the stream holds the page being consumed, at most one
//! raw page waiting and one being fetched, so memory stays a few pages whatever the result size.
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

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
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
    /// `totalSize`: the records the whole query matches.
    pub total_size: u64,
    /// `done`: no page follows this one.
    pub done: bool,
    /// `nextRecordsUrl`: where the next page is, until `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_records_url: Option<String>,
    /// `records` of this page.
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

pub(crate) fn next_request(url: &str, headers: &[(HeaderName, HeaderValue)]) -> Result<Req, ClientError> {
    // The locator URL comes from the server; it must stay on the data API of the same host.
    if !url.starts_with("/services/data/") || url.contains("..") || url.contains("//") {
        return Err(ClientError::UnexpectedResponse {
            endpoint: "query".to_owned(),
            status: 200,
            kind: BodyKind::Shape("nextRecordsUrl is not a /services/data/ path".to_owned()),
            excerpt: forcelink_auth::body::redact(url),
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

    /// Every page as received, records unparsed: for callers that read the records in place
    /// ([`PageBytes::parse`] borrows strings from the page), e.g. to write them out without
    /// building a value per record.
    pub fn pages(self) -> PageStream {
        match self.first_request() {
            Ok((req, headers)) => PageStream {
                client: self.client.clone(),
                headers,
                first: Some(Box::new(req)),
                rx: None,
                producer: None,
                failed: None,
            },
            Err(e) => PageStream {
                client: self.client.clone(),
                headers: Vec::new(),
                first: None,
                rx: None,
                producer: None,
                failed: Some(e),
            },
        }
    }

    /// Every record, page after page, as the caller's type.
    pub fn stream_as<T: DeserializeOwned + Send + 'static>(self) -> RecordStream<T> {
        match self.first_request() {
            Ok((req, headers)) => {
                let mut s = RecordStream::empty(self.client.clone(), headers);
                s.first = Some(Box::new(req));
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

/// A page as fetched: the raw body, parsed by the consumer.
pub(crate) struct RawPage {
    pub(crate) body: bytes::Bytes,
    pub(crate) endpoint: String,
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
}

/// Most raw pages waiting for the consumer (the producer fetches one more meanwhile).
const PAGES_AHEAD: usize = 1;

/// Finds `nextRecordsUrl` without parsing the records. Salesforce writes `totalSize`, `done`
/// and `nextRecordsUrl` before `records`; when the key is not in that head (another order, an
/// escaped value) the envelope is parsed with the records skipped.
pub(crate) fn next_url(body: &[u8]) -> Option<String> {
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
    let head_end = find(body, b"\"records\"").unwrap_or(body.len()).min(4096);
    let head = &body[..head_end];
    if let Some(i) = find(head, b"\"nextRecordsUrl\"") {
        let rest = head[i + 16..].trim_ascii_start().strip_prefix(b":").map(<[u8]>::trim_ascii_start);
        if let Some(v) = rest.and_then(|r| r.strip_prefix(b"\""))
            && let Some(end) = v.iter().position(|&b| b == b'"' || b == b'\\')
            && v[end] == b'"'
        {
            return std::str::from_utf8(&v[..end]).ok().map(str::to_owned);
        }
    } else if find(head, b"\"done\":true").is_some() {
        return None;
    }
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default, rename = "nextRecordsUrl")]
        next: Option<String>,
        #[serde(default)]
        done: bool,
    }
    serde_json::from_slice::<Envelope>(body).ok().and_then(|e| e.next.filter(|_| !e.done))
}

/// Parses a page. Pages are the hot path of a large query, so they go through sonic-rs (SIMD
/// scanning, about twice serde_json's speed here; the same serde attributes apply); a body it
/// refuses goes through the regular decoder, which types the error (HTML, truncated, shape).
/// Both give the same page or both refuse, except that sonic-rs also takes pages malformed only
/// where nobody reads (nesting beyond serde_json's 128 levels, bad escapes in fields a typed
/// record lacks); the fuzz target `client_query_page` checks exactly this. Records may borrow
/// from the page (`&str`, `Cow<str>`).
pub(crate) fn decode_page<'a, T: Deserialize<'a>>(raw: &'a RawPage) -> Result<Page<T>, ClientError> {
    if !forcelink_auth::body::looks_like_html(crate::client::content_type(&raw.headers), &raw.body)
        && let Ok(page) = sonic_rs::from_slice::<Page<T>>(&raw.body)
    {
        return Ok(page);
    }
    // The regular decoder types the error; a page it takes whole but not as `T` is a shape error.
    crate::client::decode::<Page<IgnoredAny>>(&raw.endpoint, raw.status, &raw.headers, &raw.body)?;
    serde_json::from_slice::<Page<T>>(&raw.body).map_err(|e| ClientError::UnexpectedResponse {
        endpoint: raw.endpoint.clone(),
        status: raw.status,
        kind: BodyKind::Shape(forcelink_auth::body::redact(&e.to_string())),
        excerpt: forcelink_auth::body::excerpt(&raw.body),
    })
}

/// What the producer hands the consumer for each page.
type Produced<P> = Result<P, ClientError>;

/// Fetches raw pages one after another, ahead of the consumer, until the last one, an error,
/// or the consumer going away; `hand` turns each page into what the consumer receives.
async fn produce<P>(
    client: Client,
    mut req: Req,
    headers: Vec<(HeaderName, HeaderValue)>,
    tx: mpsc::Sender<Produced<P>>,
    hand: impl Fn(RawPage) -> P,
) {
    loop {
        let page = match client.execute(req).await {
            Ok(resp) => {
                RawPage { body: resp.body, endpoint: resp.endpoint, status: resp.status, headers: resp.headers }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let next = next_url(&page.body).map(|u| next_request(&u, &headers));
        if tx.send(Ok(hand(page))).await.is_err() {
            return;
        }
        match next {
            Some(Ok(r)) => req = r,
            Some(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            None => return,
        }
    }
}

/// A lazy stream of records (see the module docs). Ends after the last page or after the first
/// error, which it yields.
pub struct RecordStream<T> {
    client: Client,
    headers: Vec<(HeaderName, HeaderValue)>,
    buffer: std::vec::IntoIter<T>,
    /// The first request, until the producer starts (at the first poll).
    first: Option<Box<Req>>,
    pages_rx: Option<mpsc::Receiver<Produced<RawPage>>>,
    producer: Option<JoinHandle<()>>,
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

// The stream is never self-referential: the producer task owns everything it uses.
impl<T> Unpin for RecordStream<T> {}

impl<T> Drop for RecordStream<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.producer {
            h.abort();
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> RecordStream<T> {
    fn empty(client: Client, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        Self {
            client,
            headers,
            buffer: Vec::new().into_iter(),
            first: None,
            pages_rx: None,
            producer: None,
            failed: None,
            total_size: None,
            pages: 0,
        }
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
        if let Some(url) = page.next_records_url.filter(|_| !page.done) {
            match next_request(&url, &self.headers) {
                Ok(req) => self.first = Some(Box::new(req)),
                Err(e) => self.failed = Some(e),
            }
        }
        self.buffer = page.records.into_iter();
    }

    fn start(&mut self) {
        if let Some(req) = self.first.take() {
            let (tx, rx) = mpsc::channel(PAGES_AHEAD);
            self.pages_rx = Some(rx);
            let producer = produce(self.client.clone(), *req, self.headers.clone(), tx, |raw| raw);
            self.producer = Some(tokio::spawn(producer));
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Stream for RecordStream<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.buffer.next() {
                // The producer fetches the next pages while this one is consumed.
                this.start();
                return Poll::Ready(Some(Ok(item)));
            }
            if let Some(e) = this.failed.take() {
                this.pages_rx = None;
                return Poll::Ready(Some(Err(e)));
            }
            this.start();
            let Some(rx) = &mut this.pages_rx else { return Poll::Ready(None) };
            match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.pages_rx = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    this.pages_rx = None;
                    return Poll::Ready(Some(Err(e)));
                }
                // Parsed here, on the consumer's task: on a machine with few cores a parser thread
                // of its own only adds hand-offs (measured in bench/README.md).
                Poll::Ready(Some(Ok(raw))) => match decode_page::<T>(&raw) {
                    Ok(page) => {
                        this.pages += 1;
                        this.total_size.get_or_insert(page.total_size);
                        this.buffer = page.records.into_iter();
                    }
                    Err(e) => {
                        this.pages_rx = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
        }
    }
}

/// One page of a query answer as received, its records not parsed yet (see
/// [`QueryBuilder::pages`]).
pub struct PageBytes {
    raw: RawPage,
}

impl std::fmt::Debug for PageBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBytes").field("endpoint", &self.raw.endpoint).field("bytes", &self.raw.body.len()).finish()
    }
}

impl PageBytes {
    /// The body as Salesforce sent it (JSON).
    pub fn body(&self) -> &[u8] {
        &self.raw.body
    }

    /// Parses the page; records may borrow from it (`&str`, `Cow<str>`, or a type of the
    /// caller's that keeps borrowed text). Unusable bodies become typed errors, as for
    /// [`RecordStream`].
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<Page<T>, ClientError> {
        decode_page(&self.raw)
    }
}

/// A lazy stream of query pages, records unparsed ([`QueryBuilder::pages`]): the same producer
/// as [`RecordStream`], fetching the next page while this one is read. Ends after the last page
/// or after the first error, which it yields.
pub struct PageStream {
    client: Client,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The first request, until the producer starts (at the first poll).
    first: Option<Box<Req>>,
    rx: Option<mpsc::Receiver<Produced<RawPage>>>,
    producer: Option<JoinHandle<()>>,
    failed: Option<ClientError>,
}

impl std::fmt::Debug for PageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageStream").field("started", &self.producer.is_some()).finish()
    }
}

impl Drop for PageStream {
    fn drop(&mut self) {
        if let Some(h) = &self.producer {
            h.abort();
        }
    }
}

impl Stream for PageStream {
    type Item = Result<PageBytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if let Some(req) = this.first.take() {
            let (tx, rx) = mpsc::channel(PAGES_AHEAD);
            this.rx = Some(rx);
            let producer = produce(this.client.clone(), *req, std::mem::take(&mut this.headers), tx, |raw| raw);
            this.producer = Some(tokio::spawn(producer));
        }
        let Some(rx) = &mut this.rx else { return Poll::Ready(None) };
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(raw))) => Poll::Ready(Some(Ok(PageBytes { raw }))),
            Poll::Ready(other) => {
                this.rx = None;
                Poll::Ready(other.map(|r| r.map(|raw| PageBytes { raw })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_url;

    #[test]
    fn next_url_is_found_in_the_head_or_by_parsing_the_envelope() {
        let head =
            br#"{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v64.0/query/01g-2000","records":[]}"#;
        assert_eq!(next_url(head).as_deref(), Some("/services/data/v64.0/query/01g-2000"));
        let last = br#"{"totalSize":3,"done":true,"records":[{"nextRecordsUrl":"/nope"}]}"#;
        assert_eq!(next_url(last), None);
        let other_order = br#"{"records":[{"Name":"x"}],"nextRecordsUrl":"/services/data/v64.0/query/01g-4","done":false,"totalSize":9}"#;
        assert_eq!(next_url(other_order).as_deref(), Some("/services/data/v64.0/query/01g-4"));
        let spaced = br#"{ "done" : false, "nextRecordsUrl" : "/services/data/v64.0/query/x", "records": [] }"#;
        assert_eq!(next_url(spaced).as_deref(), Some("/services/data/v64.0/query/x"));
        assert_eq!(next_url(b"<html>"), None);
    }
}
