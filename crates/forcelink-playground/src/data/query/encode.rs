//! Records written with every constant byte prepared once per plan: the `attributes` head
//! (`{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/`) and each
//! field's `,"Name":` key are encoded when a page starts, so a row costs only its cells.

use rusqlite::types::ValueRef;

use crate::schema::FieldType;
use crate::store::plan::Shape;

use super::json::{ChildRows, write_int, write_real, write_str, write_text_cell};

/// One item of an encoded record.
enum Item {
    Field { key: Box<[u8]>, ftype: FieldType, col: usize, name: String },
    Parent { key: Box<[u8]>, id_col: usize, record: Encoded },
    Child { key: Box<[u8]>, index: usize },
}

/// A record layout with its constant bytes encoded.
pub(super) struct Encoded {
    object: String,
    /// `{"attributes":{"type":…,"url":"/services/data/vXX.X/sobjects/Object/`.
    head: Box<[u8]>,
    id_col: usize,
    items: Vec<Item>,
}

fn key(name: &str) -> Box<[u8]> {
    let mut k = vec![b','];
    write_str(&mut k, name);
    k.push(b':');
    k.into_boxed_slice()
}

impl Encoded {
    /// Encodes the layout of `object`'s records with `items`, their id in column `id_col`.
    pub(super) fn new(object: &str, items: &[Shape], id_col: usize, version: &str) -> Self {
        let mut head = b"{\"attributes\":{\"type\":".to_vec();
        write_str(&mut head, object);
        head.extend_from_slice(b",\"url\":\"/services/data/v");
        head.extend_from_slice(version.as_bytes());
        head.extend_from_slice(b"/sobjects/");
        head.extend_from_slice(object.as_bytes());
        head.push(b'/');
        let items = items
            .iter()
            .map(|i| match i {
                Shape::Field { name, ftype, col } => {
                    Item::Field { key: key(name), ftype: *ftype, col: *col, name: name.clone() }
                }
                Shape::Parent { name, object, id_col, items } => Item::Parent {
                    key: key(name),
                    id_col: *id_col,
                    record: Encoded::new(object, items, *id_col, version),
                },
                Shape::Child { name, index } => Item::Child { key: key(name), index: *index },
            })
            .collect();
        Self { object: object.to_owned(), head: head.into_boxed_slice(), id_col, items }
    }

    /// Writes one row as a record.
    pub(super) fn write<'r>(
        &self,
        buf: &mut Vec<u8>,
        get: &impl Fn(usize) -> ValueRef<'r>,
        version: &str,
        children: &[ChildRows],
    ) {
        let id = match get(self.id_col) {
            ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default(),
            _ => "",
        };
        buf.extend_from_slice(&self.head);
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(b"\"}");
        for item in &self.items {
            match item {
                Item::Field { key, ftype, col, name } => {
                    buf.extend_from_slice(key);
                    match get(*col) {
                        ValueRef::Null => buf.extend_from_slice(b"null"),
                        ValueRef::Integer(i) if *ftype == FieldType::Boolean => {
                            buf.extend_from_slice(if i != 0 { b"true" } else { b"false" })
                        }
                        ValueRef::Integer(i) => write_int(buf, i),
                        ValueRef::Real(x) => write_real(buf, *ftype, x),
                        ValueRef::Text(t) => write_text_cell(buf, t),
                        ValueRef::Blob(_) => {
                            let mut url = String::with_capacity(64);
                            url.push_str("/services/data/v");
                            url.push_str(version);
                            url.push_str("/sobjects/");
                            url.push_str(&self.object);
                            url.push('/');
                            url.push_str(id);
                            url.push('/');
                            url.push_str(name);
                            write_str(buf, &url);
                        }
                    }
                }
                Item::Parent { key, id_col, record } => {
                    buf.extend_from_slice(key);
                    if matches!(get(*id_col), ValueRef::Null) {
                        buf.extend_from_slice(b"null");
                    } else {
                        record.write(buf, get, version, &[]);
                    }
                }
                Item::Child { key, index } => {
                    buf.extend_from_slice(key);
                    // Salesforce returns null, not an empty list, when a parent has no children.
                    match children.get(*index).and_then(|m| m.get(id)) {
                        Some((n, rows, next)) => {
                            buf.extend_from_slice(b"{\"totalSize\":");
                            write_int(buf, *n as i64);
                            buf.extend_from_slice(if next.is_none() { b",\"done\":true" } else { b",\"done\":false" });
                            if let Some(url) = next {
                                buf.extend_from_slice(b",\"nextRecordsUrl\":");
                                write_str(buf, url);
                            }
                            buf.extend_from_slice(b",\"records\":[");
                            buf.extend_from_slice(rows);
                            buf.extend_from_slice(b"]}");
                        }
                        None => buf.extend_from_slice(b"null"),
                    }
                }
            }
        }
        buf.push(b'}');
    }
}
