//! The record writer `query` and `search` share: records in one format, appended to a buffer the
//! caller sends to stdout (page by page for a query). The table and CSV writers look at the first
//! [`PREVIEW_ROWS`] records for their columns (and the table for its widths), then write every
//! record as it arrives, reading its fields in place.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;

use super::node::Node;
use crate::failure::Failure;
use crate::output;

/// Records the table and CSV writers look at before writing the first row.
pub const PREVIEW_ROWS: usize = 200;
/// Widest table column; longer values are cut with `…`.
pub const MAX_COLUMN_WIDTH: usize = 40;
/// Most names listed in the warning about fields left out of a table or CSV.
const MAX_DROPPED_NAMES: usize = 20;

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

/// Writes records in one format into a buffer ([`RecordWriter::take_output`]).
pub(crate) struct RecordWriter {
    format: Format,
    /// With `--json`, the records sit inside the `{"result": …, "status": …}` envelope.
    envelope: bool,
    out: Vec<u8>,
    /// Records held until the columns (and widths) are known.
    preview: Vec<Node<'static>>,
    columns: Option<Columns>,
    written: u64,
    /// Fields seen after the columns were fixed (not printed in table/CSV).
    dropped: Vec<String>,
}

struct Columns {
    names: Vec<String>,
    widths: Vec<usize>,
    /// Column of each name.
    index: HashMap<String, usize>,
}

impl RecordWriter {
    pub(crate) fn new(format: Format, envelope: bool) -> Self {
        Self { format, envelope, out: Vec::new(), preview: Vec::new(), columns: None, written: 0, dropped: Vec::new() }
    }

    /// The fields left out so far (for the tests).
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// What was written since the last call.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub(crate) fn write(&mut self, record: &Node<'_>) {
        match self.format {
            Format::Json => {
                if self.written == 0 {
                    self.out.extend_from_slice(if self.envelope { b"{\"result\":{\"records\":[\n" } else { b"[\n" });
                } else {
                    self.out.extend_from_slice(b",\n");
                }
                // Writing a node into memory cannot fail.
                let _ = serde_json::to_writer(&mut self.out, record);
            }
            Format::Ndjson => {
                let _ = serde_json::to_writer(&mut self.out, record);
                self.out.push(b'\n');
            }
            Format::Table | Format::Csv => {
                if self.columns.is_none() {
                    self.preview.push(record.clone().into_owned());
                    if self.preview.len() >= PREVIEW_ROWS {
                        self.flush_preview();
                    }
                } else {
                    self.row(record);
                }
            }
        }
        self.written += 1;
    }

    fn flush_preview(&mut self) {
        let preview = std::mem::take(&mut self.preview);
        let rows: Vec<Vec<(String, Cell<'_>)>> = preview.iter().map(flatten).collect();
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
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i);
        }
        let columns = Columns { names, widths, index };
        match self.format {
            Format::Csv => {
                let header: Vec<&str> = columns.names.iter().map(String::as_str).collect();
                write_csv_line(&mut self.out, &header);
            }
            _ => {
                let header: Vec<Cow<'_, str>> = columns.names.iter().map(|n| Cow::Borrowed(n.as_str())).collect();
                write_table_line(&mut self.out, &header, &columns.widths);
                let rule: Vec<Cow<'_, str>> = columns.widths.iter().map(|w| Cow::Owned("─".repeat(*w))).collect();
                write_table_line(&mut self.out, &rule, &columns.widths);
            }
        }
        self.columns = Some(columns);
        for record in &preview {
            self.row(record);
        }
    }

    fn row(&mut self, record: &Node<'_>) {
        let Some(columns) = &self.columns else { return };
        // Each column takes the first cell of its name, as a lookup in the flattened record would.
        let mut slots: Vec<Option<Cell<'_>>> = vec![None; columns.names.len()];
        let dropped = &mut self.dropped;
        walk_record(record, &mut |key, cell| match columns.index.get(key) {
            Some(&i) => {
                if slots[i].is_none() {
                    slots[i] = Some(cell);
                }
            }
            None => {
                if dropped.len() < MAX_DROPPED_NAMES && !dropped.iter().any(|d| d == key) {
                    dropped.push(key.to_owned());
                }
            }
        });
        match self.format {
            Format::Csv => {
                let values: Vec<Cow<'_, str>> =
                    slots.iter().map(|c| c.as_ref().map(Cell::csv_text).unwrap_or_default()).collect();
                let refs: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
                write_csv_line(&mut self.out, &refs);
            }
            _ => {
                let values: Vec<Cow<'_, str>> =
                    slots.iter().map(|c| c.as_ref().map(Cell::table_text).unwrap_or_default()).collect();
                write_table_line(&mut self.out, &values, &columns.widths);
            }
        }
    }

    /// Closes the document (JSON's `]` and envelope, the table's count line) and warns on stderr
    /// about fields left out of a table or CSV.
    pub(crate) fn finish(&mut self, count: u64, total: Option<u64>, failure: Option<&Failure>) {
        match self.format {
            Format::Json => {
                if self.written == 0 {
                    self.out.extend_from_slice(if self.envelope { b"{\"result\":{\"records\":[" } else { b"[" });
                }
                self.out.extend_from_slice(b"\n]");
                if self.envelope {
                    let tail = serde_json::json!({ "count": count, "total_size": total });
                    let mut text = serde_json::to_string(&tail).unwrap_or_default();
                    // Continue the result object: `],"count":…,"total_size":…}`.
                    text.remove(0);
                    self.out.push(b',');
                    self.out.extend_from_slice(text.as_bytes());
                    match failure {
                        Some(f) => {
                            let err = serde_json::to_string(f).unwrap_or_default();
                            let _ = write!(self.out, ",\"status\":{},\"error\":{err}}}", f.kind.exit_code());
                        }
                        None => self.out.extend_from_slice(b",\"status\":0}"),
                    }
                }
                self.out.push(b'\n');
            }
            Format::Ndjson => {}
            Format::Table | Format::Csv => {
                if self.columns.is_none() && !self.preview.is_empty() {
                    self.flush_preview();
                }
                if self.format == Format::Table && count == 0 && total.is_some_and(|t| t > 0) {
                    // SELECT COUNT() answers with totalSize and no records.
                    let _ = writeln!(self.out, "count: {}", total.unwrap_or_default());
                } else if self.format == Format::Table {
                    let of = match total {
                        Some(t) if t != count => format!(" of {t}"),
                        _ => String::new(),
                    };
                    let _ = writeln!(self.out, "({count} record{}{of})", if count == 1 { "" } else { "s" });
                }
            }
        }
        if !self.dropped.is_empty() {
            output::note(&format!(
                "warning: fields that first appeared after the first {PREVIEW_ROWS} records were not printed: {} (use --format json or ndjson)",
                self.dropped.join(", ")
            ));
        }
    }
}

/// One flattened value, borrowing from its record.
#[derive(Debug, Clone)]
enum Cell<'n> {
    Null,
    Text(Cow<'n, str>),
    /// A child relationship (subquery) or other nested data, kept as JSON.
    Nested(&'n Node<'n>),
}

impl<'n> Cell<'n> {
    fn table_text(&self) -> Cow<'n, str> {
        match self {
            Cell::Null => Cow::Borrowed(""),
            Cell::Text(t) if t.contains(['\n', '\r', '\t']) => Cow::Owned(t.replace(['\n', '\r', '\t'], " ")),
            Cell::Text(t) => t.clone(),
            Cell::Nested(v) => match v.get("records") {
                Some(Node::Array(r)) => {
                    Cow::Owned(format!("[{} record{}]", r.len(), if r.len() == 1 { "" } else { "s" }))
                }
                _ => Cow::Owned(v.to_json()),
            },
        }
    }
    fn csv_text(&self) -> Cow<'n, str> {
        match self {
            Cell::Null => Cow::Borrowed(""),
            Cell::Text(t) => t.clone(),
            Cell::Nested(v) => Cow::Owned(v.to_json()),
        }
    }
}

/// Calls `f` with each field of a record under its dotted name:
/// `{"attributes":…, "Name":"A", "Owner":{"attributes":…, "Name":"B"}}` → `("Name","A")`,
/// `("Owner.Name","B")`. A child relationship (an object with `records`) and an array stay whole.
fn walk_record<'n>(record: &'n Node<'n>, f: &mut impl FnMut(&str, Cell<'n>)) {
    fn walk<'n>(path: &mut String, fields: &'n [(Cow<'n, str>, Node<'n>)], f: &mut impl FnMut(&str, Cell<'n>)) {
        for (k, v) in fields {
            if k == "attributes" {
                continue;
            }
            let at = path.len();
            if at > 0 {
                path.push('.');
            }
            path.push_str(k);
            match v {
                Node::Null => f(path, Cell::Null),
                Node::Str(s) => f(path, Cell::Text(Cow::Borrowed(s))),
                Node::Object(m) if m.iter().any(|(k, _)| k == "records") => f(path, Cell::Nested(v)),
                Node::Object(m) => walk(path, m, f),
                Node::Array(_) => f(path, Cell::Nested(v)),
                other => f(path, Cell::Text(Cow::Owned(other.to_json()))),
            }
            path.truncate(at);
        }
    }
    match record {
        Node::Object(m) => walk(&mut String::new(), m, f),
        other => f("value", Cell::Text(Cow::Owned(other.to_json()))),
    }
}

fn flatten<'n>(record: &'n Node<'n>) -> Vec<(String, Cell<'n>)> {
    let mut out = Vec::new();
    walk_record(record, &mut |k, c| out.push((k.to_owned(), c)));
    out
}

/// Every field of the preview in first-seen order; a relationship that is null in some records
/// (`Owner`) and has fields in others (`Owner.Name`) keeps only its fields.
fn column_names(rows: &[Vec<(String, Cell<'_>)>]) -> Vec<String> {
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

fn write_table_line(out: &mut Vec<u8>, cells: &[Cow<'_, str>], widths: &[usize]) {
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
    out.extend_from_slice(line.trim_end().as_bytes());
    out.push(b'\n');
}

/// One CSV line (RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled).
fn write_csv_line(out: &mut Vec<u8>, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if c.contains([',', '"', '\n', '\r']) || c.starts_with(' ') || c.ends_with(' ') {
            out.push(b'"');
            out.extend_from_slice(c.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(c.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn flat(v: &Value) -> Vec<(String, String)> {
        flatten(&Node::from_value(v)).into_iter().map(|(k, c)| (k, c.csv_text().into_owned())).collect()
    }

    #[test]
    fn records_flatten_to_dotted_columns_and_null_parents_give_way() {
        let a = json!({"attributes": {"type": "Contact"}, "Name": "A", "Account": null, "Age": 3});
        let b = json!({"attributes": {"type": "Contact"}, "Name": "B", "Account": {"attributes": {}, "Name": "X"}, "Age": null});
        let (na, nb) = (Node::from_value(&a), Node::from_value(&b));
        let rows = vec![flatten(&na), flatten(&nb)];
        assert_eq!(column_names(&rows), ["Name", "Age", "Account.Name"]);
        let nested = json!({"Id": "1", "Contacts": {"totalSize": 1, "done": true, "records": [{"Id": "2"}]}});
        let node = Node::from_value(&nested);
        let cells = flatten(&node);
        assert_eq!(cells[1].0, "Contacts");
        assert_eq!(cells[1].1.table_text(), "[1 record]");
        assert!(cells[1].1.csv_text().contains("\"records\""));
        assert_eq!(flat(&json!("x")), [("value".to_owned(), "\"x\"".to_owned())]);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = Vec::new();
        write_csv_line(&mut out, &["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(String::from_utf8_lossy(&out), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn table_cells_are_cut_to_the_column_width() {
        let mut out = Vec::new();
        write_table_line(&mut out, &["abcdef".into(), "x".into()], &[4, 3]);
        assert_eq!(String::from_utf8_lossy(&out), "abc…  x\n");
    }
}
