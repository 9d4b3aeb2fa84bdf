//! Change events written straight to Avro binary, without building an `apache_avro` value tree
//! (which allocated a name and a value per schema field and validated the tree for every event).
//! The bytes are the same as `apache_avro::to_avro_datum` writes for the same event: the tests
//! compare the two.

use rusqlite::types::Value as Sql;

use super::schemas::{EventSchema, Kind, Slot};
use crate::civil;

fn long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn string(buf: &mut Vec<u8>, s: &str) {
    long(buf, s.len() as i64);
    buf.extend_from_slice(s.as_bytes());
}

fn strings(buf: &mut Vec<u8>, items: &[String]) {
    if !items.is_empty() {
        long(buf, items.len() as i64);
        for s in items {
            string(buf, s);
        }
    }
    buf.push(0);
}

/// A stored value in the union `["null", kind]`: branch 1 and the value, or branch 0 (null)
/// when it is null or does not fit (the same choices as `Kind::avro_of`).
fn nullable(buf: &mut Vec<u8>, kind: Kind, v: Option<&Sql>) -> bool {
    let Some(v) = v else {
        buf.push(0);
        return false;
    };
    let at = buf.len();
    buf.push(2); // branch 1, zigzag-encoded
    let written = match (kind, v) {
        (_, Sql::Null) => false,
        (Kind::String, Sql::Text(s)) => {
            string(buf, s);
            true
        }
        (Kind::String, Sql::Integer(i)) => {
            string(buf, &i.to_string());
            true
        }
        (Kind::String, Sql::Real(r)) => {
            string(buf, &r.to_string());
            true
        }
        (Kind::Boolean, Sql::Integer(i)) => {
            buf.push(u8::from(*i != 0));
            true
        }
        (Kind::Int, Sql::Integer(i)) => match i32::try_from(*i) {
            Ok(i) => {
                long(buf, i64::from(i));
                true
            }
            Err(_) => false,
        },
        (Kind::Int, Sql::Real(r)) => {
            long(buf, i64::from(*r as i32));
            true
        }
        (Kind::Double, Sql::Real(r)) => {
            buf.extend_from_slice(&r.to_le_bytes());
            true
        }
        (Kind::Double, Sql::Integer(i)) => {
            buf.extend_from_slice(&(*i as f64).to_le_bytes());
            true
        }
        (Kind::Long, Sql::Text(s)) => match civil::parse_datetime(s) {
            Some(ms) => {
                long(buf, ms);
                true
            }
            None => false,
        },
        (Kind::Date, Sql::Text(s)) => match civil::parse_date(s).and_then(|d| i32::try_from(d).ok()) {
            Some(d) => {
                long(buf, i64::from(d));
                true
            }
            None => false,
        },
        _ => false,
    };
    if !written {
        buf.truncate(at);
        buf.push(0);
    }
    written
}

/// The change event header's fields (CDC developer guide, "Change Event Header Fields").
pub(super) struct HeaderFields<'a> {
    pub(super) entity: &'a str,
    pub(super) ids: &'a [String],
    pub(super) change_type: u32,
    pub(super) origin: &'a str,
    pub(super) transaction_key: &'a str,
    pub(super) sequence: i32,
    pub(super) commit_ms: i64,
    pub(super) commit_number: i64,
    pub(super) user: &'a str,
    pub(super) nulled: &'a [String],
    pub(super) changed: &'a [String],
}

/// One change event in `schema`: the header, then each field's value from `values` (by sObject
/// field index; `None`: every field null, as for a delete or a header-only event).
pub(super) fn change_event(schema: &EventSchema, h: &HeaderFields<'_>, values: Option<&[Option<&Sql>]>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    let value = |f: usize| values.and_then(|v| v.get(f).copied().flatten());
    for slot in &schema.slots {
        match slot {
            Slot::Header => {
                string(&mut buf, h.entity);
                strings(&mut buf, h.ids);
                long(&mut buf, i64::from(h.change_type));
                string(&mut buf, h.origin);
                string(&mut buf, h.transaction_key);
                long(&mut buf, i64::from(h.sequence));
                long(&mut buf, h.commit_ms);
                long(&mut buf, h.commit_number);
                string(&mut buf, h.user);
                strings(&mut buf, h.nulled);
                strings(&mut buf, &[]);
                strings(&mut buf, h.changed);
            }
            Slot::Plain { field: Some(f), kind, .. } => {
                nullable(&mut buf, *kind, value(*f));
            }
            Slot::Plain { field: None, .. } => buf.push(0),
            Slot::Compound { parts, .. } => {
                let at = buf.len();
                buf.push(2);
                let mut any = false;
                for (_, f, k) in parts {
                    any |= nullable(&mut buf, *k, value(*f));
                }
                if !any {
                    buf.truncate(at);
                    buf.push(0);
                }
            }
        }
    }
    buf
}
