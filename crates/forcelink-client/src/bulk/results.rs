//! Result downloads, streamed: an ingest job's result sets ([`Bulk::ingest_results`]) and the
//! GET with one renewal on `401` and retries that query pages use too. Bodies go through a
//! `CsvSink`, which finds row ends (`RowScanner`) to count rows and drop repeated headers.

use forcelink_auth::backoff::{Backoff, Jitter};
use reqwest::header::{self, HeaderMap};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Bulk, BulkError, DEFAULT_POLL_INITIAL, ResultSet, check_id};
use crate::client::error_from;
use crate::error::ClientError;

/// Retries of a result download that failed before its body started (5xx, 429, transport):
/// 3, after 500 ms, 1 s and 2 s. Not randomised, as before this schedule was shared.
const RESULT_RETRY: Backoff = Backoff {
    jitter: Jitter::None,
    max_retries: Some(3),
    ..Backoff::exponential(DEFAULT_POLL_INITIAL, DEFAULT_POLL_INITIAL.saturating_mul(16))
};
/// Longest error body read from a result download.
const MAX_ERROR_BODY: usize = 64 * 1024;

impl Bulk {
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

    /// A GET whose body is streamed into `sink`, with one renewal on `401` and retries of
    /// answers that failed before their body started.
    pub(super) async fn download<W: AsyncWrite + Unpin + ?Sized>(
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

/// Finds row ends in CSV bytes: a newline outside quotes. Delimiter-agnostic (quotes are
/// always `"`; a doubled quote toggles twice).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RowScanner {
    pub(super) in_quotes: bool,
}

impl RowScanner {
    /// The index just past the first row end in `data`, consuming up to there.
    pub(super) fn next_row_end(&mut self, data: &[u8]) -> Option<usize> {
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
pub(crate) struct CsvSink<'w, W: ?Sized> {
    out: &'w mut W,
    scanner: RowScanner,
    skip_header: bool,
    in_header: bool,
    /// Bytes of the current row seen so far (to count a last row without a newline).
    row_open: bool,
    pub(super) rows: u64,
}

impl<'w, W: AsyncWrite + Unpin + ?Sized> CsvSink<'w, W> {
    pub(crate) fn new(out: &'w mut W, skip_header: bool) -> Self {
        Self { out, scanner: RowScanner::default(), skip_header, in_header: true, row_open: false, rows: 0 }
    }

    pub(crate) fn skip_header_of_next(&mut self) {
        self.skip_header = true;
    }

    pub(crate) async fn write(&mut self, mut chunk: &[u8]) -> Result<(), BulkError> {
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
    pub(crate) async fn end_of_body(&mut self) -> Result<(), BulkError> {
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

    pub(crate) async fn finish(self) -> Result<u64, BulkError> {
        self.out.flush().await.map_err(|e| BulkError::Write(e.to_string()))?;
        Ok(self.rows)
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
}
