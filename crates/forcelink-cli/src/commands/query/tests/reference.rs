//! The record writer as it was when records came as `serde_json::Value`s (kept verbatim but for
//! writing into memory): the reference the in-place writer must match byte for byte.

use std::io::Write;

use serde_json::{Map, Value, json};

use crate::failure::Failure;

const PREVIEW_ROWS: usize = super::super::writer::PREVIEW_ROWS;
const MAX_COLUMN_WIDTH: usize = super::super::writer::MAX_COLUMN_WIDTH;
use super::super::writer::Format;

/// Writes records to stdout in one format as they come.
pub(super) struct OldWriter {
    format: Format,
    /// With `--json`, the records sit inside the `{"result": …, "status": …}` envelope.
    envelope: bool,
    pub(super) out: Vec<u8>,
    /// Records held until the columns (and widths) are known.
    preview: Vec<Value>,
    columns: Option<Columns>,
    written: u64,
    /// Fields seen after the columns were fixed (not printed in table/CSV).
    pub(super) dropped: Vec<String>,
}

struct Columns {
    names: Vec<String>,
    widths: Vec<usize>,
}

impl OldWriter {
    pub(super) fn new(format: Format, envelope: bool) -> Self {
        Self { format, envelope, out: Vec::new(), preview: Vec::new(), columns: None, written: 0, dropped: Vec::new() }
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
