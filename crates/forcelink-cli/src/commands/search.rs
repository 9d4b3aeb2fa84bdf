//! `forcelink search`: a SOSL search; the records come out through `query`'s writer (table,
//! JSON, NDJSON or CSV).

use std::io::Write;

use super::ConnectionArg;
use super::query::{Format, Node, RecordWriter};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// The SOSL search, e.g. "FIND {Acme} IN NAME FIELDS RETURNING Account(Id, Name)".
    pub sosl: String,
    #[command(flatten)]
    pub conn: ConnectionArg,
    /// Output format (with --json: one `{"status", "result": {"records": […]}}` document).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(settings: &Settings, args: SearchArgs, json_mode: bool) -> Result<Outcome, Failure> {
    if args.sosl.trim().is_empty() {
        return Err(Failure::usage("the SOSL search is empty")
            .with_fix("e.g. forcelink search \"FIND {Acme} RETURNING Account(Id, Name)\""));
    }
    let client = args.conn.client(settings).await?;
    let records = client.search(args.sosl).send().await?;
    let format = if json_mode { Format::Json } else { args.format };
    let mut writer = RecordWriter::new(format, json_mode);
    let count = records.len() as u64;
    for r in &records {
        writer.write(&Node::from_value(r));
    }
    writer.finish(count, Some(count), None);
    let mut out = output::stdout_writer();
    // stdout closed (e.g. `| head`): stop quietly, as other filters do.
    let _ = out.write_all(&writer.take_output()).and_then(|()| out.flush());
    Ok(Outcome::streamed())
}
