//! `forcelink query`: records streamed to stdout as a table, JSON, NDJSON or CSV. Three stages
//! overlap: forcelink-client fetches the next page while a worker reads this one in place
//! (strings borrowed from the page, no map per record: [`node`]) and formats it
//! ([`writer`], shared with `search`), while a writer thread sends the page before to stdout.
//! Memory stays a few pages whatever the result size: the table and CSV writers look at the
//! first [`writer::PREVIEW_ROWS`] records for their columns (and the table for its widths), then write
//! every record as it arrives.

mod node;
#[cfg(test)]
mod tests;
mod writer;

use std::io::Write;
use std::sync::mpsc as std_mpsc;

use forcelink_client::query::PageBytes;
use forcelink_client::{ClientError, Page};
use futures_util::StreamExt;
use tokio::sync::mpsc;

pub(crate) use node::Node;
pub use writer::Format;
pub(crate) use writer::RecordWriter;

use super::ConnectionArg;
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

/// Formatted pages waiting for the stdout thread (each a page of records, a few hundred KiB).
const PAGES_TO_WRITE: usize = 2;

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The SOQL query, e.g. "SELECT Id, Name FROM Account WHERE Industry = 'Energy'".
    pub soql: String,
    #[command(flatten)]
    pub conn: ConnectionArg,
    /// Include deleted and archived records (queryAll).
    #[arg(long)]
    pub all: bool,
    /// Stop after this many records (the rest is not fetched).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format (with --json: one `{"status", "result": {"records": […]}}` document).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Records per page asked of Salesforce (200 to 2000; it may send fewer).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
}

pub async fn run(settings: &Settings, args: QueryArgs, json_mode: bool) -> Result<Outcome, Failure> {
    if args.soql.trim().is_empty() {
        return Err(
            Failure::usage("the SOQL query is empty").with_fix("e.g. forcelink query \"SELECT Id FROM Account\"")
        );
    }
    let client = args.conn.client(settings).await?;
    let builder = if args.all { client.query_all(args.soql.clone()) } else { client.query(args.soql.clone()) };
    let builder = match args.batch_size {
        Some(n) => builder.batch_size(n),
        None => builder,
    };
    let mut pages = builder.pages();
    let format = if json_mode { Format::Json } else { args.format };
    let job = Job { writer: RecordWriter::new(format, json_mode), limit: args.limit.unwrap_or(u64::MAX) };

    let (page_tx, page_rx) = mpsc::channel(1);
    let (out_tx, out_rx) = std_mpsc::sync_channel(PAGES_TO_WRITE);
    let stdout = tokio::task::spawn_blocking(move || write_out(&out_rx));
    let worker = tokio::task::spawn_blocking(move || job.run(page_rx, &out_tx));
    while let Some(page) = pages.next().await {
        // The worker stops taking pages at the limit, at an error, or when stdout closed.
        if page_tx.send(page).await.is_err() {
            break;
        }
    }
    drop(page_tx);
    drop(pages);
    let end = worker.await.map_err(|e| Failure::failed(format!("the record writer stopped: {e}")))?;
    let written = stdout.await.map_err(|e| Failure::failed(format!("the output thread stopped: {e}")))?;
    match end {
        // A refused query is a plain failure, not a half-written document.
        End::Refused(e) => Err(Failure::from_client(e)),
        // stdout closed (e.g. `| head`): stop quietly, as other filters do.
        End::Closed => Ok(Outcome::streamed()),
        End::Done { .. } if written.is_err() => Ok(Outcome::streamed()),
        End::Done { failure: None, .. } => Ok(Outcome::streamed()),
        // Already reported inside the JSON document; the exit code still says it failed.
        End::Done { failure: Some(f), .. } if json_mode => {
            Ok(Outcome { exit: f.kind.exit_code(), ..Outcome::streamed() })
        }
        End::Done { failure: Some(f), count } => {
            Err(Failure { message: format!("after {count} records: {}", f.message), ..f })
        }
    }
}

/// How the worker ended.
enum End {
    /// The first page (before any record) failed.
    Refused(ClientError),
    /// stdout closed.
    Closed,
    /// Every record up to the limit written, or some and then a failure (also written, with
    /// `--json`).
    Done { count: u64, failure: Option<Failure> },
}

/// The worker's part: pages in, formatted output out.
struct Job {
    writer: RecordWriter,
    limit: u64,
}

impl Job {
    fn run(
        mut self,
        mut pages: mpsc::Receiver<Result<PageBytes, ClientError>>,
        out: &std_mpsc::SyncSender<Vec<u8>>,
    ) -> End {
        let mut count = 0u64;
        let mut total = None;
        let mut failure = None;
        let mut first = true;
        // `--limit 0` still asks for the first page: a refused query fails as without it.
        while first || count < self.limit {
            first = false;
            let Some(page) = pages.blocking_recv() else { break };
            let parsed = page.and_then(|p| {
                let parsed = p.parse::<Node<'_>>()?;
                total.get_or_insert(parsed.total_size);
                count = self.write_page(&parsed, count);
                Ok(())
            });
            if let Err(e) = parsed {
                if count == 0 {
                    return End::Refused(e);
                }
                failure = Some(Failure::from_client(e));
                break;
            }
            if out.send(self.writer.take_output()).is_err() {
                return End::Closed;
            }
        }
        drop(pages);
        self.writer.finish(count, total, failure.as_ref());
        if out.send(self.writer.take_output()).is_err() {
            return End::Closed;
        }
        End::Done { count, failure }
    }

    /// Writes the page's records up to the limit; returns the new count.
    fn write_page(&mut self, page: &Page<Node<'_>>, mut count: u64) -> u64 {
        for record in &page.records {
            if count >= self.limit {
                break;
            }
            self.writer.write(record);
            count += 1;
        }
        count
    }
}

/// The stdout thread: writes each formatted page; an error (a closed pipe) ends it, which the
/// worker sees as its next send failing.
fn write_out(pages: &std_mpsc::Receiver<Vec<u8>>) -> std::io::Result<()> {
    let mut out = output::stdout_writer();
    for page in pages {
        out.write_all(&page)?;
    }
    out.flush()
}
