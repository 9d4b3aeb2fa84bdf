//! Avro schemas of the event topics: one change-event schema per sObject (header first, then
//! the object's fields, compound fields as nested records) and one per platform event.
//!
//! A schema id is a fingerprint of the schema text (first 16 bytes of its SHA-256, base64url),
//! so the same schema always has the same id, across restarts too, as Salesforce's do.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema as Avro;
use apache_avro::types::Value as AvroValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(test)]
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[cfg(test)]
use crate::civil;
use crate::schema::{FieldType, SObject, Schema};
use crate::seed::PlatformEventSeed;

/// Avro namespace Salesforce uses for event schemas.
const NAMESPACE: &str = "com.sforce.eventbus";
/// Fields that change events leave out: the id travels in the header's `recordIds`.
const NOT_IN_CHANGE_EVENTS: [&str; 3] = ["Id", "IsDeleted", "SystemModstamp"];
/// Parts of an address compound field, in Salesforce's order.
const ADDRESS_PARTS: [&str; 8] =
    ["Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude", "GeocodeAccuracy"];
/// Parts of a person's name compound field.
const NAME_PARTS: [&str; 5] = ["Salutation", "FirstName", "MiddleName", "LastName", "Suffix"];

/// How a value is written in Avro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Boolean,
    Int,
    /// Date-times as epoch milliseconds.
    Long,
    Double,
    /// Dates as days since the epoch.
    Date,
}

impl Kind {
    fn of(t: FieldType) -> Option<Self> {
        Some(match t {
            FieldType::Base64 => return None,
            FieldType::Boolean => Kind::Boolean,
            FieldType::Int => Kind::Int,
            FieldType::Double | FieldType::Currency | FieldType::Percent => Kind::Double,
            FieldType::DateTime => Kind::Long,
            FieldType::Date => Kind::Date,
            _ => Kind::String,
        })
    }

    fn avro_type(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Int | Kind::Date => "int",
            Kind::Long => "long",
            Kind::Double => "double",
        }
    }

    /// A stored value as Avro; `None` when it does not fit (kept null rather than failing).
    /// Events are written by `avro`, which makes the same choices; this is its reference.
    #[cfg(test)]
    pub(crate) fn avro_of(self, v: &Sql) -> Option<AvroValue> {
        match (self, v) {
            (_, Sql::Null) => None,
            (Kind::String, Sql::Text(s)) => Some(AvroValue::String(s.clone())),
            (Kind::String, Sql::Integer(i)) => Some(AvroValue::String(i.to_string())),
            (Kind::String, Sql::Real(r)) => Some(AvroValue::String(r.to_string())),
            (Kind::Boolean, Sql::Integer(i)) => Some(AvroValue::Boolean(*i != 0)),
            (Kind::Int, Sql::Integer(i)) => i32::try_from(*i).ok().map(AvroValue::Int),
            (Kind::Int, Sql::Real(r)) => Some(AvroValue::Int(*r as i32)),
            (Kind::Double, Sql::Real(r)) => Some(AvroValue::Double(*r)),
            (Kind::Double, Sql::Integer(i)) => Some(AvroValue::Double(*i as f64)),
            (Kind::Long, Sql::Text(s)) => civil::parse_datetime(s).map(AvroValue::Long),
            (Kind::Date, Sql::Text(s)) => civil::parse_date(s).and_then(|d| i32::try_from(d).ok()).map(AvroValue::Int),
            _ => None,
        }
    }

    /// A JSON value (from a publisher's decoded event) checked against this kind.
    fn accepts(self, v: &AvroValue) -> bool {
        matches!(
            (self, v),
            (Kind::String, AvroValue::String(_))
                | (Kind::Boolean, AvroValue::Boolean(_))
                | (Kind::Int | Kind::Date, AvroValue::Int(_))
                | (Kind::Long, AvroValue::Long(_))
                | (Kind::Double, AvroValue::Double(_))
        )
    }
}

/// One top-level field of an event schema.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// `ChangeEventHeader`, always position 0 of a change event.
    Header,
    /// A field; `field` is its index in the sObject (change events) or `None` (platform events).
    Plain { name: String, field: Option<usize>, kind: Kind },
    /// A compound field (address, person name): a nested record of parts.
    Compound { name: String, parts: Vec<(String, usize, Kind)> },
}

/// A topic's schema with the positions the change bitmaps count.
#[derive(Debug)]
pub(crate) struct EventSchema {
    pub(crate) id: String,
    pub(crate) json: String,
    pub(crate) avro: Avro,
    pub(crate) slots: Vec<Slot>,
}

impl EventSchema {
    fn new(record_name: &str, slots: Vec<Slot>) -> Result<Self, String> {
        let fields: Vec<Value> = slots.iter().map(slot_json).collect();
        let doc = json!({"type": "record", "name": record_name, "namespace": NAMESPACE, "fields": fields});
        let text = doc.to_string();
        let avro = Avro::parse_str(&text).map_err(|e| format!("schema of {record_name}: {e}"))?;
        let digest = Sha256::digest(text.as_bytes());
        Ok(Self { id: URL_SAFE_NO_PAD.encode(&digest[..16]), json: text, avro, slots })
    }

    /// Position of the slot holding sObject field `field`, and of the part within a compound.
    pub(crate) fn position_of(&self, field: usize) -> Option<(usize, Option<usize>)> {
        self.slots.iter().enumerate().find_map(|(i, s)| match s {
            Slot::Plain { field: Some(f), .. } if *f == field => Some((i, None)),
            Slot::Compound { parts, .. } => parts.iter().position(|(_, f, _)| *f == field).map(|p| (i, Some(p))),
            _ => None,
        })
    }

    /// Checks a publisher's payload: it decodes with this schema and every field has its type.
    pub(crate) fn check_payload(&self, payload: &[u8]) -> Result<(), String> {
        let mut reader = payload;
        let value = apache_avro::from_avro_datum(&self.avro, &mut reader, None)
            .map_err(|e| format!("the payload does not match schema {}: {e}", self.id))?;
        if !reader.is_empty() {
            return Err(format!("the payload has {} bytes after the event", reader.len()));
        }
        let AvroValue::Record(fields) = value else { return Err("the payload is not a record".into()) };
        for (slot, (_, v)) in self.slots.iter().zip(fields.iter()) {
            if let (Slot::Plain { name, kind, .. }, AvroValue::Union(_, inner)) = (slot, v)
                && **inner != AvroValue::Null
                && !kind.accepts(inner)
            {
                return Err(format!("field {name} has the wrong type"));
            }
        }
        Ok(())
    }
}

fn nullable(t: Value) -> Value {
    json!(["null", t])
}

fn slot_json(slot: &Slot) -> Value {
    match slot {
        Slot::Header => json!({"name": "ChangeEventHeader", "type": header_schema()}),
        Slot::Plain { name, kind, .. } => {
            json!({"name": name, "type": nullable(json!(kind.avro_type())), "default": null})
        }
        Slot::Compound { name, parts } => {
            let fields: Vec<Value> = parts
                .iter()
                .map(|(n, _, k)| json!({"name": n, "type": nullable(json!(k.avro_type())), "default": null}))
                .collect();
            let record = json!({"type": "record", "name": name, "fields": fields});
            json!({"name": name, "type": nullable(record), "default": null})
        }
    }
}

/// The change event header (CDC developer guide, "Change Event Header Fields").
fn header_schema() -> Value {
    let strings = json!({"type": "array", "items": "string"});
    json!({
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "symbols": CHANGE_TYPES}},
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ]
    })
}

/// Symbols of `ChangeType`, in the order Salesforce declares them.
pub(crate) const CHANGE_TYPES: [&str; 10] = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
];

/// The change-event slots of an sObject: compound parts grouped where the first part stood.
fn change_slots(o: &SObject) -> Vec<Slot> {
    let mut slots = vec![Slot::Header];
    let mut taken = vec![false; o.fields.len()];
    for (i, f) in o.fields.iter().enumerate() {
        if taken[i] || NOT_IN_CHANGE_EVENTS.contains(&f.name.as_str()) {
            continue;
        }
        let Some(kind) = Kind::of(f.ftype) else { continue };
        if let Some(prefix) = f.name.strip_suffix("Street")
            && o.field_index(&format!("{prefix}City")).is_some()
        {
            let parts = parts_of(o, &ADDRESS_PARTS.map(|p| format!("{prefix}{p}")), |n| n[prefix.len()..].to_owned());
            for (_, j, _) in &parts {
                taken[*j] = true;
            }
            slots.push(Slot::Compound { name: format!("{prefix}Address"), parts });
            continue;
        }
        let person = o.field_index("FirstName").is_some() && o.field_index("LastName").is_some();
        if person && (NAME_PARTS.contains(&f.name.as_str()) || (f.name == "Name" && f.calculated)) {
            let parts = parts_of(o, &NAME_PARTS.map(str::to_owned), str::to_owned);
            for (_, j, _) in &parts {
                taken[*j] = true;
            }
            if let Some(n) = o.field_index("Name") {
                taken[n] = true;
            }
            slots.push(Slot::Compound { name: "Name".into(), parts });
            continue;
        }
        if f.calculated {
            continue;
        }
        slots.push(Slot::Plain { name: f.name.clone(), field: Some(i), kind });
    }
    slots
}

fn parts_of(o: &SObject, names: &[String], part_name: impl Fn(&str) -> String) -> Vec<(String, usize, Kind)> {
    names
        .iter()
        .filter_map(|n| {
            let i = o.field_index(n)?;
            Some((part_name(&o.fields[i].name), i, Kind::of(o.fields[i].ftype)?))
        })
        .collect()
}

/// The topic name of an sObject's change events: `Account` → `AccountChangeEvent`,
/// `Invoice__c` → `Invoice__ChangeEvent` (Salesforce's naming for custom objects).
pub(crate) fn change_event_name(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(base) => format!("{base}__ChangeEvent"),
        None => format!("{object}ChangeEvent"),
    }
}

/// Every topic's schema, built once at start.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// Change-event schema by sObject index.
    pub(crate) change: Vec<Arc<EventSchema>>,
    /// Platform events by topic name (`/event/X__e`).
    pub(crate) platform: HashMap<String, Arc<EventSchema>>,
    pub(crate) by_id: HashMap<String, Arc<EventSchema>>,
    /// `/data/XChangeEvent` → sObject index.
    pub(crate) change_topics: HashMap<String, usize>,
    /// sObject names by index (the header's `entityName`).
    pub(crate) object_names: Vec<String>,
}

impl Catalog {
    pub(crate) fn build(schema: &Schema, events: &[PlatformEventSeed]) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        let mut change = Vec::with_capacity(schema.objects.len());
        let mut change_topics = HashMap::new();
        for (i, o) in schema.objects.iter().enumerate() {
            let name = change_event_name(&o.name);
            let s = Arc::new(EventSchema::new(&name, change_slots(o))?);
            by_id.insert(s.id.clone(), s.clone());
            change_topics.insert(format!("/data/{name}"), i);
            change.push(s);
        }
        let mut platform = HashMap::new();
        for e in events {
            let mut slots = vec![
                Slot::Plain { name: "CreatedDate".into(), field: None, kind: Kind::Long },
                Slot::Plain { name: "CreatedById".into(), field: None, kind: Kind::String },
            ];
            for f in &e.fields {
                slots.push(Slot::Plain { name: f.name.clone(), field: None, kind: f.kind() });
            }
            let s = Arc::new(EventSchema::new(&e.name, slots)?);
            by_id.insert(s.id.clone(), s.clone());
            platform.insert(format!("/event/{}", e.name), s);
        }
        let object_names = schema.objects.iter().map(|o| o.name.clone()).collect();
        Ok(Self { change, platform, by_id, change_topics, object_names })
    }
}

impl PlatformEventSeed {
    fn kind_of(t: &str) -> Kind {
        match t {
            "boolean" | "checkbox" => Kind::Boolean,
            "number" | "double" => Kind::Double,
            "datetime" => Kind::Long,
            "date" => Kind::Date,
            _ => Kind::String,
        }
    }
}

impl crate::seed::PlatformEventFieldSeed {
    pub(crate) fn kind(&self) -> Kind {
        PlatformEventSeed::kind_of(&self.field_type)
    }
}

/// A hex bitmap as Salesforce writes it: `0x` and big-endian bytes, bit `i` = position `i`.
pub(crate) fn bitmap(bits: &[usize]) -> String {
    let top = bits.iter().copied().max().unwrap_or(0);
    let mut bytes = vec![0u8; top / 8 + 1];
    for b in bits {
        let n = bytes.len();
        bytes[n - 1 - b / 8] |= 1 << (b % 8);
    }
    format!("0x{}", hex::encode_upper(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_are_big_endian_hex_over_positions() {
        assert_eq!(bitmap(&[0]), "0x01");
        assert_eq!(bitmap(&[1, 3]), "0x0A");
        assert_eq!(bitmap(&[8]), "0x0100");
        assert_eq!(bitmap(&[2, 9]), "0x0204");
    }

    #[test]
    fn change_event_names_follow_salesforce() {
        assert_eq!(change_event_name("Account"), "AccountChangeEvent");
        assert_eq!(change_event_name("Invoice__c"), "Invoice__ChangeEvent");
    }

    #[test]
    fn account_schema_has_header_first_and_address_compounds() {
        let schema = Schema::build(&[], &[]).unwrap();
        let i = schema.index_of("Account").unwrap();
        let slots = change_slots(&schema.objects[i]);
        assert!(matches!(slots[0], Slot::Header));
        assert!(slots.iter().any(
            |s| matches!(s, Slot::Compound { name, parts } if name == "BillingAddress" && parts[0].0 == "Street")
        ));
        assert!(!slots.iter().any(|s| matches!(s, Slot::Plain { name, .. } if name == "BillingCity" || name == "Id")));
        let a = EventSchema::new("AccountChangeEvent", slots).unwrap();
        let b = EventSchema::new("AccountChangeEvent", change_slots(&schema.objects[i])).unwrap();
        assert_eq!(a.id, b.id, "schema ids are stable");
        assert_eq!(a.id.len(), 22);
    }
}
