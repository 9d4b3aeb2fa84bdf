//! JSON pieces written straight from SQLite cells, without an intermediate `Value`: strings,
//! numbers, and (in tests) the record writer the encoded one in `encode` is checked against.

use std::collections::HashMap;
use std::fmt::Write as _;

use rusqlite::types::ValueRef;

use crate::schema::FieldType;
#[cfg(test)]
use crate::store::plan::Shape;

pub(super) fn write_str(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// A text cell as a JSON string: copied as is when it is valid UTF-8 needing no escapes (the
/// usual case), without an intermediate `String`.
pub(super) fn write_text(buf: &mut Vec<u8>, t: &[u8]) {
    match std::str::from_utf8(t) {
        Ok(s) => write_str(buf, s),
        Err(_) => write_str(buf, &String::from_utf8_lossy(t)),
    }
}

/// A text cell as a JSON string in one pass when it is printable ASCII without quotes or
/// backslashes (the usual case); anything else goes through [`write_text`].
pub(super) fn write_text_cell(buf: &mut Vec<u8>, t: &[u8]) {
    if t.iter().all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\') {
        buf.reserve(t.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(t);
        buf.push(b'"');
    } else {
        write_text(buf, t);
    }
}

/// A real cell: whole numbers of an integer field as integers, other whole numbers as `300.0`
/// (as Salesforce prints currency and double), the rest in Rust's shortest form; not finite:
/// `null`.
pub(super) fn write_real(buf: &mut Vec<u8>, ftype: FieldType, x: f64) {
    if ftype == FieldType::Int {
        write_int(buf, x as i64);
    } else if !x.is_finite() {
        buf.extend_from_slice(b"null");
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        write_int(buf, x as i64);
        buf.extend_from_slice(b".0");
    } else {
        let _ = write!(Buf(buf), "{x}");
    }
}

/// Decimal digits of an integer, without `fmt` machinery.
pub(super) fn write_int(buf: &mut Vec<u8>, i: i64) {
    let mut tmp = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = tmp.len();
    loop {
        at -= 1;
        tmp[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[at..]);
}

/// The reference writer the encoded one (`encode`) must match byte for byte (tests only).
#[cfg(test)]
pub(super) fn write_value(
    buf: &mut Vec<u8>,
    ftype: FieldType,
    v: ValueRef<'_>,
    object: &str,
    id: &str,
    field: &str,
    version: &str,
) {
    match v {
        ValueRef::Null => buf.extend_from_slice(b"null"),
        ValueRef::Integer(i) if ftype == FieldType::Boolean => {
            buf.extend_from_slice(if i != 0 { b"true" } else { b"false" })
        }
        ValueRef::Integer(i) => write_int(buf, i),
        ValueRef::Real(x) if ftype == FieldType::Int => write_int(buf, x as i64),
        ValueRef::Real(x) if x.is_finite() => {
            if x.fract() == 0.0 && x.abs() < 1e15 {
                // Whole numbers print as `300.0`, as Salesforce does for currency and double.
                write_int(buf, x as i64);
                buf.extend_from_slice(b".0");
            } else {
                let _ = write!(Buf(buf), "{x}");
            }
        }
        ValueRef::Real(_) => buf.extend_from_slice(b"null"),
        ValueRef::Text(t) => write_text(buf, t),
        ValueRef::Blob(_) => write_str(buf, &format!("/services/data/v{version}/sobjects/{object}/{id}/{field}")),
    }
}

/// `fmt::Write` into a byte buffer.
pub(super) struct Buf<'a>(pub(super) &'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

pub(super) fn text_at<'r>(get: &dyn Fn(usize) -> ValueRef<'r>, col: usize) -> Option<String> {
    match get(col) {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

/// Child records of one page, by parent id: the count, JSON bytes of the records written, and
/// the `nextRecordsUrl` of the rest when there are more than one batch.
pub(super) type ChildRows = HashMap<String, (u64, Vec<u8>, Option<String>)>;

/// The reference writer the encoded one (`encode`) must match byte for byte (tests only).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(super) fn write_record<'r>(
    buf: &mut Vec<u8>,
    object: &str,
    items: &[Shape],
    get: &dyn Fn(usize) -> ValueRef<'r>,
    id_col: usize,
    version: &str,
    children: &[ChildRows],
) {
    // Borrowed from the row: no allocation per record.
    let id_cell = get(id_col);
    let id = match id_cell {
        ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default(),
        _ => "",
    };
    buf.extend_from_slice(b"{\"attributes\":{\"type\":");
    write_str(buf, object);
    buf.extend_from_slice(b",\"url\":\"/services/data/v");
    buf.extend_from_slice(version.as_bytes());
    buf.extend_from_slice(b"/sobjects/");
    buf.extend_from_slice(object.as_bytes());
    buf.push(b'/');
    buf.extend_from_slice(id.as_bytes());
    buf.extend_from_slice(b"\"}");
    for item in items {
        buf.push(b',');
        match item {
            Shape::Field { name, ftype, col } => {
                write_str(buf, name);
                buf.push(b':');
                write_value(buf, *ftype, get(*col), object, id, name, version);
            }
            Shape::Parent { name, object: pobj, id_col, items } => {
                write_str(buf, name);
                buf.push(b':');
                if matches!(get(*id_col), ValueRef::Null) {
                    buf.extend_from_slice(b"null");
                } else {
                    write_record(buf, pobj, items, get, *id_col, version, &[]);
                }
            }
            Shape::Child { name, index } => {
                write_str(buf, name);
                buf.push(b':');
                // Salesforce returns null, not an empty list, when a parent has no children.
                match children.get(*index).and_then(|m| m.get(id)) {
                    Some((n, rows, next)) => {
                        let _ = write!(Buf(buf), "{{\"totalSize\":{n},\"done\":{}", next.is_none());
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
