//! Uploads to an ingest job: CSV from any reader or typed records, cut at row boundaries into
//! uploads of at most [`BulkOptions::max_upload_bytes`](super::BulkOptions::max_upload_bytes),
//! each repeating the header row; memory is one upload plus one row.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::results::RowScanner;
use super::{Bulk, BulkError, IngestJob, JobInfo, JobKind, JobState, Progress, SALESFORCE_MAX_UPLOAD_BYTES, check_id};
use crate::client::{Idempotency, Req};
use crate::error::ClientError;

/// Bytes read from an input at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What was uploaded to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct UploadSummary {
    /// Data rows sent (header rows not counted).
    pub records: u64,
    /// Bytes sent, the header row of every upload included.
    pub bytes: u64,
    /// Uploads (`PUT jobs/ingest/{id}/batches`) sent.
    pub uploads: u64,
}

impl Bulk {
    /// Uploads CSV (header row first) from `reader` to an open ingest job, cut into uploads of
    /// at most [`BulkOptions::max_upload_bytes`](super::BulkOptions::max_upload_bytes). Memory: one upload.
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
}

/// The CSV writer's output, taken in chunks while records are serialized.
#[derive(Debug, Clone, Default)]
struct SharedBuffer(Arc<parking_lot::Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Vec<u8>> {
        self.0.lock()
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
