//! `forcelink query`: records streamed to stdout as a table, JSON, NDJSON or CSV while the next
//! page is fetched; the record writer `search` shares. Memory stays a few pages whatever the result
//! size: the table and CSV writers look at the first [`PREVIEW_ROWS`] records for their columns
//! (and the table for its widths), then write every record as it arrives.

use std::io::Write;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::ConnectionArg;
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

/// Records the table and CSV writers look at before writing the first row.
pub const PREVIEW_ROWS: usize = 200;
/// Widest table column; longer values are cut with `…`.
pub const MAX_COLUMN_WIDTH: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns for people (relationship fields as `Account.Name`).
    Table,
    /// One JSON array of the records as Salesforce sends them.
    Json,
    /// One record per line (JSON), for pipes.
    Ndjson,
    /// RFC 4180 CSV with a header row (relationship fields as `Account.Name`).
    Csv,
}

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
    let mut stream = builder.stream();
    // The first record (or the first error) before anything is printed: a refused query is a
    // plain failure, not a half-written document.
    let first = match stream.next().await {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return Err(Failure::from_client(e)),
        None => None,
    };
    let limit = args.limit.unwrap_or(u64::MAX);
    let format = if json_mode { Format::Json } else { args.format };
    let mut writer = RecordWriter::new(format, json_mode);
    let mut count = 0u64;
    let mut failure = None;
    let mut pending = first;
    while let Some(record) = pending.take() {
        if count >= limit {
            break;
        }
        count += 1;
        if writer.write(record).is_err() {
            // stdout closed (e.g. `| head`): stop quietly, as other filters do.
            return Ok(Outcome::streamed());
        }
        if count >= limit {
            break;
        }
        pending = match stream.next().await {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                failure = Some(Failure::from_client(e));
                None
            }
            None => None,
        };
    }
    let total = stream.total_size();
    drop(stream);
    let _ = writer.finish(count, total, failure.as_ref());
    match failure {
        // Already reported inside the JSON document; the exit code still says it failed.
        Some(f) if json_mode => Ok(Outcome { exit: f.kind.exit_code(), ..Outcome::streamed() }),
        Some(f) => Err(Failure { message: format!("after {count} records: {}", f.message), ..f }),
        None => Ok(Outcome::streamed()),
    }
}

/// Writes records to stdout in one format as they come.
pub(super) struct RecordWriter {
    format: Format,
    /// With `--json`, the records sit inside the `{"result": …, "status": …}` envelope.
    envelope: bool,
    out: output::StdoutWriter,
    /// Records held until the columns (and widths) are known.
    preview: Vec<Value>,
    columns: Option<Columns>,
    written: u64,
    /// Fields seen after the columns were fixed (not printed in table/CSV).
    dropped: Vec<String>,
}

struct Columns {
    names: Vec<String>,
    widths: Vec<usize>,
}

impl RecordWriter {
    pub(super) fn new(format: Format, envelope: bool) -> Self {
        Self {
            format,
            envelope,
            out: output::stdout_writer(),
            preview: Vec::new(),
            columns: None,
            written: 0,
            dropped: Vec::new(),
        }
    }

    pub(super) fn write(&mut self, record: Value) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                if self.written == 0 {
                    self.out.write_all(if self.envelope { b"{\"result\":{\"records\":[\n" } else { b"[\n" })?;
                } else {
                    self.out.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut self.out, &record)?;
            }
            Format::Ndjson => {
                serde_json::to_writer(&mut self.out, &record)?;
                self.out.write_all(b"\n")?;
            }
            Format::Table | Format::Csv => {
                if self.columns.is_none() {
                    self.preview.push(record);
                    if self.preview.len() >= PREVIEW_ROWS {
                        self.flush_preview()?;
                    }
                } else {
                    self.row(&record)?;
                }
            }
        }
        self.written += 1;
        Ok(())
    }

    fn flush_preview(&mut self) -> std::io::Result<()> {
        let rows: Vec<Vec<(String, Cell)>> = self.preview.iter().map(flatten).collect();
        let names = column_names(&rows);
        let widths = names
            .iter()
            .map(|n| {
                let widest = rows
                    .iter()
                    .filter_map(|r| r.iter().find(|(k, _)| k == n))
                    .map(|(_, c)| c.table_text().chars().count())
                    .max()
                    .unwrap_or(0);
                widest.max(n.chars().count()).min(MAX_COLUMN_WIDTH)
            })
            .collect();
        let columns = Columns { names, widths };
        match self.format {
            Format::Csv => {
                let header: Vec<&str> = columns.names.iter().map(String::as_str).collect();
                write_csv_line(&mut self.out, &header)?;
            }
            _ => {
                let header: Vec<String> = columns.names.clone();
                write_table_line(&mut self.out, &header, &columns.widths)?;
                let rule: Vec<String> = columns.widths.iter().map(|w| "─".repeat(*w)).collect();
                write_table_line(&mut self.out, &rule, &columns.widths)?;
            }
        }
        self.columns = Some(columns);
        for record in std::mem::take(&mut self.preview) {
            self.row(&record)?;
        }
        Ok(())
    }

    fn row(&mut self, record: &Value) -> std::io::Result<()> {
        let Some(columns) = &self.columns else { return Ok(()) };
        let cells = flatten(record);
        for (k, _) in &cells {
            if !columns.names.iter().any(|n| n == k) && !self.dropped.contains(k) && self.dropped.len() < 20 {
                self.dropped.push(k.clone());
            }
        }
        let pick = |n: &String| cells.iter().find(|(k, _)| k == n).map(|(_, c)| c);
        match self.format {
            Format::Csv => {
                let values: Vec<String> =
                    columns.names.iter().map(|n| pick(n).map(Cell::csv_text).unwrap_or_default()).collect();
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                write_csv_line(&mut self.out, &refs)
            }
            _ => {
                let values: Vec<String> =
                    columns.names.iter().map(|n| pick(n).map(Cell::table_text).unwrap_or_default()).collect();
                write_table_line(&mut self.out, &values, &columns.widths)
            }
        }
    }

    pub(super) fn finish(&mut self, count: u64, total: Option<u64>, failure: Option<&Failure>) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                if self.written == 0 {
                    self.out.write_all(if self.envelope { b"{\"result\":{\"records\":[" } else { b"[" })?;
                }
                self.out.write_all(b"\n]")?;
                if self.envelope {
                    let tail = json!({ "count": count, "total_size": total });
                    let mut text = serde_json::to_string(&tail).unwrap_or_default();
                    // Continue the result object: `],"count":…,"total_size":…}`.
                    text.remove(0);
                    self.out.write_all(b",")?;
                    self.out.write_all(text.as_bytes())?;
                    match failure {
                        Some(f) => {
                            let err = serde_json::to_string(f).unwrap_or_default();
                            write!(self.out, ",\"status\":{},\"error\":{err}}}", f.kind.exit_code())?;
                        }
                        None => self.out.write_all(b",\"status\":0}")?,
                    }
                }
                self.out.write_all(b"\n")?;
            }
            Format::Ndjson => {}
            Format::Table | Format::Csv => {
                if self.columns.is_none() && !self.preview.is_empty() {
                    self.flush_preview()?;
                }
                if self.format == Format::Table && count == 0 && total.is_some_and(|t| t > 0) {
                    // SELECT COUNT() answers with totalSize and no records.
                    writeln!(self.out, "count: {}", total.unwrap_or_default())?;
                } else if self.format == Format::Table {
                    let of = match total {
                        Some(t) if t != count => format!(" of {t}"),
                        _ => String::new(),
                    };
                    writeln!(self.out, "({count} record{}{of})", if count == 1 { "" } else { "s" })?;
                }
            }
        }
        self.out.flush()?;
        if !self.dropped.is_empty() {
            output::note(&format!(
                "warning: fields that first appeared after the first {PREVIEW_ROWS} records were not printed: {} (use --format json or ndjson)",
                self.dropped.join(", ")
            ));
        }
        Ok(())
    }
}

/// One flattened value.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Text(String),
    /// A child relationship (subquery) or other nested data, kept as JSON.
    Nested(Value),
}

impl Cell {
    fn table_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(t) => t.replace(['\n', '\r', '\t'], " "),
            Cell::Nested(v) => match v.get("records").and_then(Value::as_array) {
                Some(r) => format!("[{} record{}]", r.len(), if r.len() == 1 { "" } else { "s" }),
                None => v.to_string(),
            },
        }
    }
    fn csv_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Nested(v) => v.to_string(),
        }
    }
}

/// `{"attributes":…, "Name":"A", "Owner":{"attributes":…, "Name":"B"}}` →
/// `[("Name","A"), ("Owner.Name","B")]`.
fn flatten(record: &Value) -> Vec<(String, Cell)> {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<(String, Cell)>) {
        for (k, v) in map {
            if k == "attributes" {
                continue;
            }
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                Value::Null => out.push((key, Cell::Null)),
                Value::String(s) => out.push((key, Cell::Text(s.clone()))),
                Value::Object(m) if m.contains_key("records") => out.push((key, Cell::Nested(v.clone()))),
                Value::Object(m) => walk(&key, m, out),
                Value::Array(_) => out.push((key, Cell::Nested(v.clone()))),
                other => out.push((key, Cell::Text(other.to_string()))),
            }
        }
    }
    let mut out = Vec::new();
    match record {
        Value::Object(m) => walk("", m, &mut out),
        other => out.push(("value".to_owned(), Cell::Text(other.to_string()))),
    }
    out
}

/// Every field of the preview in first-seen order; a relationship that is null in some records
/// (`Owner`) and has fields in others (`Owner.Name`) keeps only its fields.
fn column_names(rows: &[Vec<(String, Cell)>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for (k, _) in r {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let all = names.clone();
    names.retain(|n| {
        !all.iter().any(|o| o.len() > n.len() && o.starts_with(n.as_str()) && o[n.len()..].starts_with('.'))
    });
    names
}

fn write_table_line(out: &mut impl Write, cells: &[String], widths: &[usize]) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let n = c.chars().count();
        if n > *w {
            line.extend(c.chars().take(w.saturating_sub(1)));
            line.push('…');
        } else {
            line.push_str(c);
            line.extend(std::iter::repeat_n(' ', w - n));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

/// One CSV line (RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled).
fn write_csv_line(out: &mut impl Write, cells: &[&str]) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if c.contains([',', '"', '\n', '\r']) || c.starts_with(' ') || c.ends_with(' ') {
            line.push('"');
            line.push_str(&c.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(c);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_flatten_to_dotted_columns_and_null_parents_give_way() {
        let a = json!({"attributes": {"type": "Contact"}, "Name": "A", "Account": null, "Age": 3});
        let b = json!({"attributes": {"type": "Contact"}, "Name": "B", "Account": {"attributes": {}, "Name": "X"}, "Age": null});
        let rows = vec![flatten(&a), flatten(&b)];
        assert_eq!(column_names(&rows), ["Name", "Age", "Account.Name"]);
        let nested = json!({"Id": "1", "Contacts": {"totalSize": 1, "done": true, "records": [{"Id": "2"}]}});
        let cells = flatten(&nested);
        assert_eq!(cells[1].0, "Contacts");
        assert_eq!(cells[1].1.table_text(), "[1 record]");
        assert!(cells[1].1.csv_text().contains("\"records\""));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = Vec::new();
        write_csv_line(&mut out, &["plain", "a,b", "say \"hi\"", "two\nlines", ""]).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&out), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn table_cells_are_cut_to_the_column_width() {
        let mut out = Vec::new();
        write_table_line(&mut out, &["abcdef".to_owned(), "x".to_owned()], &[4, 3]).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&out), "abc…  x\n");
    }
}
