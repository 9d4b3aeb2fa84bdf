//! Record changes → change events. The record code notes each change in its request context;
//! when the request is done, [`emit`] turns them into events: identical changes to several
//! records of one object in one call become one event with several `recordIds`, as Salesforce
//! merges them, and all events of one call share a `transactionKey` with increasing
//! `sequenceNumber`s. Several changes of one record in one call are one event, of its first
//! change type, with the values as they end up.
//!
//! Two kinds of events carry the header only (no field values, empty field lists), as the CDC
//! developer guide describes them:
//! - **gap events** (`GAP_CREATE`, `GAP_UPDATE`, `GAP_DELETE`, `GAP_UNDELETE`): Salesforce sends
//!   them when it cannot deliver a change's values (an event over 1 MB, changes made directly in
//!   the database); here the control API's `gap` fault turns the next events into them;
//! - **overflow events** (`GAP_OVERFLOW`): the first `overflow_threshold` changes of one
//!   transaction (Salesforce: 100,000) give change events, the changes beyond it one overflow
//!   event per object, with the empty record id `000000000000000AAA`.

use std::collections::HashMap;

#[cfg(test)]
use apache_avro::types::Value as AvroValue;
use rusqlite::types::Value as Sql;

#[cfg(test)]
use super::schemas::Slot;
use super::schemas::{CHANGE_TYPES, EventSchema, bitmap};
use super::{EventBus, FaultKind, NewEvent, avro, uuid};

/// The record id an overflow event names: Salesforce's "empty" id (CDC guide, "Overflow Events").
pub(crate) const EMPTY_RECORD_ID: &str = "000000000000000AAA";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Create,
    Update,
    Delete,
    /// Restored from the recycle bin.
    Undelete,
}

impl ChangeKind {
    fn name(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
            ChangeKind::Undelete => "UNDELETE",
        }
    }
    fn gap_name(self) -> &'static str {
        match self {
            ChangeKind::Create => "GAP_CREATE",
            ChangeKind::Update => "GAP_UPDATE",
            ChangeKind::Delete => "GAP_DELETE",
            ChangeKind::Undelete => "GAP_UNDELETE",
        }
    }
}

/// What an event says about its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    /// A change event with the values written.
    Full(ChangeKind),
    /// A gap event: header only.
    Gap(ChangeKind),
    /// An overflow event: header only, the empty record id.
    Overflow,
}

impl EventType {
    fn symbol(self) -> (u32, &'static str) {
        let s = match self {
            EventType::Full(k) => k.name(),
            EventType::Gap(k) => k.gap_name(),
            EventType::Overflow => "GAP_OVERFLOW",
        };
        (CHANGE_TYPES.iter().position(|c| *c == s).unwrap_or(0) as u32, s)
    }
}

/// One record change: the values written (all of a new or restored record's; an update's
/// changed ones; none for a delete).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) object: usize,
    pub(crate) id: String,
    pub(crate) kind: ChangeKind,
    pub(crate) values: Vec<(usize, Sql)>,
}

/// `changeOrigin` of a change made through an API: `com/salesforce/api/rest/66.0`.
pub(crate) fn api_origin(api: &str, version: &str) -> String {
    format!("com/salesforce/api/{api}/{version}")
}

/// How much a change counts toward the overflow threshold: creating, deleting or restoring a
/// record counts one, an update one per field changed (CDC guide, "Overflow Events").
/// UNCONFIRMED: whether the audit fields an update sets (`LastModifiedDate`, `LastModifiedById`)
/// count; here every field the event would name in `changedFields` does.
fn weight(bus: &EventBus, c: &Change) -> u64 {
    match c.kind {
        ChangeKind::Update => {
            let schema = &bus.catalog.change[c.object];
            (c.values.iter().filter(|(i, _)| schema.position_of(*i).is_some()).count() as u64).max(1)
        }
        _ => 1,
    }
}

/// Salesforce publishes one event per record and transaction, of the record's first change
/// type, with the values as committed at the end (CDC guide, "General Considerations"): a later
/// update of a record folds into its earlier create, update or undelete.
fn fold(changes: Vec<Change>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    let mut first: FxMap<(usize, String), usize> = FxMap::default();
    for c in changes {
        if c.kind == ChangeKind::Update
            && let Some(&i) = first.get(&(c.object, c.id.clone()))
            && out[i].kind != ChangeKind::Delete
        {
            for (f, v) in c.values {
                match out[i].values.iter_mut().find(|(g, _)| *g == f) {
                    Some(slot) => slot.1 = v,
                    None => out[i].values.push((f, v)),
                }
            }
            continue;
        }
        first.entry((c.object, c.id.clone())).or_insert(out.len());
        out.push(c);
    }
    out
}

/// Publishes the change events of one transaction. `origin` is the `changeOrigin`
/// ([`api_origin`] for API calls, empty for what an administrator does in Setup); `caller` is
/// the user id for `commitUser`.
pub(crate) fn emit(bus: &EventBus, now_ms: i64, origin: &str, caller: &str, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    // The first `threshold` changes give change events; the rest one overflow event per object.
    let threshold = bus.state().overflow_threshold;
    let mut counted = 0u64;
    let mut overflowed: Vec<usize> = Vec::new();
    // Merge identical changes (same object, kind and values) into one event; candidates are
    // found by a hash of what must be equal, so a large transaction is not quadratic.
    let mut groups: Vec<(Change, Vec<String>)> = Vec::new();
    let mut by_key: FxMap<u64, Vec<usize>> = FxMap::default();
    for mut c in fold(changes) {
        counted = counted.saturating_add(weight(bus, &c));
        if counted > threshold {
            if !overflowed.contains(&c.object) {
                overflowed.push(c.object);
            }
            continue;
        }
        c.values.sort_by_key(|(i, _)| *i);
        let key = group_key(&c);
        let same = by_key.get(&key).and_then(|candidates| {
            candidates.iter().copied().find(|&g| {
                let g = &groups[g].0;
                g.object == c.object && g.kind == c.kind && g.values == c.values
            })
        });
        match same {
            Some(g) => {
                let ids = &mut groups[g].1;
                if !ids.contains(&c.id) {
                    ids.push(c.id)
                }
            }
            None => {
                by_key.entry(key).or_default().push(groups.len());
                let id = c.id.clone();
                groups.push((c, vec![id]));
            }
        }
    }
    let transaction_key = uuid();
    let commit_number = {
        let mut st = bus.state();
        st.commit_number += 1;
        st.commit_number
    };
    let mut planned: Vec<(usize, EventType, Vec<String>, Option<Change>)> = Vec::new();
    for (change, ids) in groups {
        // An armed `gap` fault turns this event into its gap counterpart. UNCONFIRMED: a gap
        // event keeps its transaction's origin, key and sequence (Salesforce's example, a gap for
        // a change made in the database, has an empty origin and sequence 1).
        let kind = if bus.take_fault(FaultKind::Gap).is_some() {
            EventType::Gap(change.kind)
        } else {
            EventType::Full(change.kind)
        };
        planned.push((change.object, kind, ids, Some(change)));
    }
    for object in overflowed {
        planned.push((object, EventType::Overflow, vec![EMPTY_RECORD_ID.to_owned()], None));
    }
    let mut events = Vec::with_capacity(planned.len());
    for (sequence, (object, kind, ids, change)) in planned.into_iter().enumerate() {
        let schema = &bus.catalog.change[object];
        let header = Header {
            entity: &bus.catalog.object_names[object],
            ids,
            kind,
            origin,
            transaction_key: &transaction_key,
            sequence: i32::try_from(sequence + 1).unwrap_or(i32::MAX),
            commit_ms: now_ms,
            commit_number,
            user: caller,
        };
        let body = match (kind, &change) {
            (EventType::Full(_), Some(c)) => Some(c),
            _ => None,
        };
        events.push(NewEvent {
            object: Some(object),
            platform_topic: None,
            schema_id: schema.id.clone(),
            id: String::new(),
            payload: encode_fast(schema, &header, body),
        });
    }
    bus.append(now_ms, events);
}

/// A hash of a change's object, kind and values: equal changes hash alike (reals by value, so
/// `0.0` and `-0.0`, which compare equal, hash alike too).
fn group_key(c: &Change) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = Fx::default();
    c.object.hash(&mut h);
    (c.kind as u8).hash(&mut h);
    for (i, v) in &c.values {
        i.hash(&mut h);
        match v {
            Sql::Null => 0u8.hash(&mut h),
            Sql::Integer(x) => (1u8, x).hash(&mut h),
            Sql::Real(x) => (2u8, if *x == 0.0 { 0 } else { x.to_bits() }).hash(&mut h),
            Sql::Text(t) => (3u8, t).hash(&mut h),
            Sql::Blob(b) => (4u8, b).hash(&mut h),
        }
    }
    h.finish()
}

/// A fast multiply-rotate hasher for the maps of one transaction's changes (keys are the
/// playground's own values; no untrusted input chooses them to collide).
#[derive(Default)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 56));
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

struct Header<'a> {
    entity: &'a str,
    ids: Vec<String>,
    kind: EventType,
    origin: &'a str,
    transaction_key: &'a str,
    sequence: i32,
    commit_ms: i64,
    commit_number: i64,
    user: &'a str,
}

#[cfg(test)]
fn strings(v: Vec<String>) -> AvroValue {
    AvroValue::Array(v.into_iter().map(AvroValue::String).collect())
}

#[cfg(test)]
fn null() -> AvroValue {
    AvroValue::Union(0, Box::new(AvroValue::Null))
}

/// The bitmap list of a set of written fields: element 0 over top-level positions, then one
/// `P-0xHEX` element per compound field over its parts.
fn field_list(schema: &EventSchema, fields: impl Iterator<Item = usize>) -> Vec<String> {
    let mut top = Vec::new();
    let mut compound: Vec<(usize, Vec<usize>)> = Vec::new();
    for f in fields {
        match schema.position_of(f) {
            Some((p, None)) => top.push(p),
            Some((p, Some(part))) => match compound.iter_mut().find(|(q, _)| *q == p) {
                Some((_, parts)) => parts.push(part),
                None => compound.push((p, vec![part])),
            },
            None => {}
        }
    }
    if top.is_empty() && compound.is_empty() {
        return Vec::new();
    }
    let mut out = vec![bitmap(&top)];
    compound.sort_by_key(|(p, _)| *p);
    out.extend(compound.into_iter().map(|(p, parts)| format!("{p}-{}", bitmap(&parts))));
    out
}

/// Encodes one event; `body` is the change whose values it carries (`None`: header only).
/// Written straight to Avro binary by `avro::change_event`.
fn encode_fast(schema: &EventSchema, h: &Header<'_>, body: Option<&Change>) -> Vec<u8> {
    let (changed, nulled) = match body {
        Some(change) if change.kind == ChangeKind::Update => (
            field_list(schema, change.values.iter().map(|(i, _)| *i)),
            field_list(schema, change.values.iter().filter(|(_, v)| *v == Sql::Null).map(|(i, _)| *i)),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    // Each field's value by field index (the first one a change lists for it); none for a delete.
    let values: Option<Vec<Option<&Sql>>> = body.filter(|c| c.kind != ChangeKind::Delete).map(|c| {
        let mut by_field = vec![None; c.values.iter().map(|(i, _)| i + 1).max().unwrap_or(0)];
        for (i, v) in &c.values {
            if by_field[*i].is_none() {
                by_field[*i] = Some(v);
            }
        }
        by_field
    });
    let fields = avro::HeaderFields {
        entity: h.entity,
        ids: &h.ids,
        change_type: h.kind.symbol().0,
        origin: h.origin,
        transaction_key: h.transaction_key,
        sequence: h.sequence,
        commit_ms: h.commit_ms,
        commit_number: h.commit_number,
        user: h.user,
        nulled: &nulled,
        changed: &changed,
    };
    avro::change_event(schema, &fields, values.as_deref())
}

/// The reference encoder (an `apache_avro` value tree) the direct one must match (tests only).
#[cfg(test)]
fn encode(schema: &EventSchema, h: &Header<'_>, body: Option<&Change>) -> Result<Vec<u8>, String> {
    let value_of = |field: usize, kind: super::schemas::Kind| -> AvroValue {
        let Some(change) = body.filter(|c| c.kind != ChangeKind::Delete) else { return null() };
        match change.values.iter().find(|(i, _)| *i == field).and_then(|(_, v)| kind.avro_of(v)) {
            Some(v) => AvroValue::Union(1, Box::new(v)),
            None => null(),
        }
    };
    let (changed, nulled) = match body {
        Some(change) if change.kind == ChangeKind::Update => (
            field_list(schema, change.values.iter().map(|(i, _)| *i)),
            field_list(schema, change.values.iter().filter(|(_, v)| *v == Sql::Null).map(|(i, _)| *i)),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let (kind_index, kind_symbol) = h.kind.symbol();
    let mut fields = Vec::with_capacity(schema.slots.len());
    for slot in &schema.slots {
        match slot {
            Slot::Header => fields.push((
                "ChangeEventHeader".to_owned(),
                AvroValue::Record(vec![
                    ("entityName".into(), AvroValue::String(h.entity.to_owned())),
                    ("recordIds".into(), strings(h.ids.clone())),
                    ("changeType".into(), AvroValue::Enum(kind_index, kind_symbol.into())),
                    ("changeOrigin".into(), AvroValue::String(h.origin.to_owned())),
                    ("transactionKey".into(), AvroValue::String(h.transaction_key.to_owned())),
                    ("sequenceNumber".into(), AvroValue::Int(h.sequence)),
                    ("commitTimestamp".into(), AvroValue::Long(h.commit_ms)),
                    ("commitNumber".into(), AvroValue::Long(h.commit_number)),
                    ("commitUser".into(), AvroValue::String(h.user.to_owned())),
                    ("nulledFields".into(), strings(nulled.clone())),
                    ("diffFields".into(), strings(Vec::new())),
                    ("changedFields".into(), strings(changed.clone())),
                ]),
            )),
            Slot::Plain { name, field: Some(f), kind } => fields.push((name.clone(), value_of(*f, *kind))),
            Slot::Plain { name, field: None, .. } => fields.push((name.clone(), null())),
            Slot::Compound { name, parts } => {
                let values: Vec<(String, AvroValue)> =
                    parts.iter().map(|(n, f, k)| (n.clone(), value_of(*f, *k))).collect();
                let any = values.iter().any(|(_, v)| !matches!(v, AvroValue::Union(0, _)));
                let v = if any { AvroValue::Union(1, Box::new(AvroValue::Record(values))) } else { null() };
                fields.push((name.clone(), v));
            }
        }
    }
    apache_avro::to_avro_datum(&schema.avro, AvroValue::Record(fields)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::schemas::Catalog;
    use crate::schema::Schema;

    /// Changes of every kind, with values of every stored type (and ones that do not fit their
    /// Avro type), encoded directly and through `apache_avro`: the same bytes.
    #[test]
    fn direct_avro_matches_apache_avro() {
        let schema = Schema::build(&[], &[]).expect("schema");
        let catalog = Catalog::build(&schema, &[]).expect("catalog");
        for name in ["Account", "Contact", "Opportunity", "Case", "User"] {
            let object = schema.index_of(name).expect("object");
            let o = &schema.objects[object];
            let es = &catalog.change[object];
            let mut values: Vec<(usize, Sql)> = Vec::new();
            for (i, f) in o.fields.iter().enumerate() {
                let v = match (i % 7, f.ftype) {
                    (0, _) => Sql::Null,
                    (_, crate::schema::FieldType::Boolean) => Sql::Integer((i % 2) as i64),
                    (_, crate::schema::FieldType::Int) => Sql::Integer(if i % 3 == 0 { 1 << 40 } else { -(i as i64) }),
                    (_, crate::schema::FieldType::Double | crate::schema::FieldType::Currency) => {
                        Sql::Real(i as f64 * 1.5)
                    }
                    (_, crate::schema::FieldType::DateTime) => Sql::Text("2026-03-01T10:20:30.000+0000".into()),
                    (_, crate::schema::FieldType::Date) => {
                        Sql::Text(if i % 2 == 0 { "2026-03-01".into() } else { "bad".into() })
                    }
                    (1, _) => Sql::Integer(i as i64),
                    (2, _) => Sql::Real(0.25),
                    _ => Sql::Text(format!("value {i} é ☃")),
                };
                values.push((i, v));
            }
            for kind in [ChangeKind::Create, ChangeKind::Update, ChangeKind::Delete, ChangeKind::Undelete] {
                let change = Change { object, id: "001000000000001AAA".into(), kind, values: values.clone() };
                for (event, body) in
                    [(EventType::Full(kind), Some(&change)), (EventType::Gap(kind), None), (EventType::Overflow, None)]
                {
                    let header = Header {
                        entity: name,
                        ids: vec!["001000000000001AAA".into(), "001000000000002AAA".into()],
                        kind: event,
                        origin: "com/salesforce/api/rest/66.0",
                        transaction_key: "0001f6d5-0000-0000-0000-000000000000",
                        sequence: 3,
                        commit_ms: 1_780_000_000_123,
                        commit_number: 12_345_678_901,
                        user: "005000000000001AAA",
                    };
                    let reference = encode(es, &header, body).expect("apache_avro encodes");
                    assert_eq!(encode_fast(es, &header, body), reference, "{name} {event:?}");
                }
            }
        }
    }
}
