//! Avro ↔ JSON for events: a decoded schema knows its top-level field names (what the change
//! bitmaps count) and the parts of each compound field; payloads become JSON objects with
//! field names; the header's `changedFields`/`nulledFields`/`diffFields` bitmaps become field
//! names (`Phone`, and `BillingAddress.City` for parts of a compound field).
//!
//! Bitmaps (Pub/Sub API guide, "Event Deserialization Considerations"): element 0 is a hex
//! number whose bit `i` stands for the top-level field at position `i`; an element
//! `P-0xHEX` is the same over the parts of the compound field at position `P`.

use apache_avro::Schema as Avro;
use apache_avro::types::Value as AvroValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value};

/// A schema fetched with GetSchema, ready to decode with.
#[derive(Debug)]
pub struct EventSchema {
    /// The schema id, as events name it (`schemaId`).
    pub id: String,
    avro: Avro,
    /// Top-level field names in order.
    fields: Vec<String>,
    /// For each top-level field: the part names when it is a (nullable) record.
    parts: Vec<Vec<String>>,
}

fn record_fields(schema: &Avro) -> Option<Vec<(String, &Avro)>> {
    match schema {
        Avro::Record(r) => Some(r.fields.iter().map(|f| (f.name.clone(), &f.schema)).collect()),
        Avro::Union(u) => u.variants().iter().find_map(record_fields),
        _ => None,
    }
}

impl EventSchema {
    /// Reads the Avro schema `json` (GetSchema's `schema_json`) of schema `id`.
    pub(crate) fn parse(id: &str, json: &str) -> Result<Self, String> {
        let avro = Avro::parse_str(json).map_err(|e| format!("schema {id} is not valid Avro: {e}"))?;
        let top = record_fields(&avro).ok_or_else(|| format!("schema {id} is not a record"))?;
        let fields = top.iter().map(|(n, _)| n.clone()).collect();
        let parts = top
            .iter()
            .map(|(_, s)| record_fields(s).map(|p| p.into_iter().map(|(n, _)| n).collect()).unwrap_or_default())
            .collect();
        Ok(Self { id: id.to_owned(), avro, fields, parts })
    }

    /// Top-level field names in schema order.
    pub fn field_names(&self) -> &[String] {
        &self.fields
    }

    /// Decodes a payload into a JSON object with field names.
    pub fn decode(&self, payload: &[u8]) -> Result<Map<String, Value>, String> {
        let mut reader = payload;
        let value = apache_avro::from_avro_datum(&self.avro, &mut reader, None).map_err(|e| e.to_string())?;
        match to_json(value) {
            Value::Object(m) => Ok(m),
            _ => Err("the event is not a record".into()),
        }
    }

    /// Expands a bitmap list (`["0x0A", "4-0x02"]`) into field names.
    pub fn expand_bitmaps(&self, list: &[String]) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for entry in list {
            let (parent, hex) = match entry.split_once('-') {
                Some((p, hex)) => (Some(p.parse::<usize>().map_err(|_| format!("bad bitmap entry {entry:?}"))?), hex),
                None => (None, entry.as_str()),
            };
            let bits = bits_of(hex).ok_or_else(|| format!("bad bitmap entry {entry:?}"))?;
            for bit in bits {
                let name = match parent {
                    None => self.fields.get(bit).cloned(),
                    Some(p) => {
                        let parent_name = self.fields.get(p);
                        let part = self.parts.get(p).and_then(|parts| parts.get(bit));
                        parent_name.zip(part).map(|(a, b)| format!("{a}.{b}"))
                    }
                };
                names.push(name.ok_or_else(|| format!("bitmap entry {entry:?} names a field the schema lacks"))?);
            }
        }
        Ok(names)
    }

    /// Encodes a JSON object as an event of this schema. Missing `CreatedDate` is set to
    /// `now_ms` and missing `CreatedById` to an empty string (Salesforce overwrites both).
    pub fn encode(&self, data: &Map<String, Value>, now_ms: i64) -> Result<Vec<u8>, String> {
        let Avro::Record(r) = &self.avro else { return Err("the schema is not a record".into()) };
        let mut fields = Vec::with_capacity(r.fields.len());
        for f in &r.fields {
            let given = data.get(&f.name).cloned().unwrap_or(Value::Null);
            let given = match (f.name.as_str(), &given) {
                ("CreatedDate", Value::Null) => Value::from(now_ms),
                ("CreatedById", Value::Null) => Value::from(""),
                _ => given,
            };
            fields.push((f.name.clone(), from_json(&f.schema, &given).map_err(|e| format!("field {}: {e}", f.name))?));
        }
        for k in data.keys() {
            if !r.fields.iter().any(|f| &f.name == k) {
                return Err(format!("field {k} is not in the event's schema"));
            }
        }
        apache_avro::to_avro_datum(&self.avro, AvroValue::Record(fields)).map_err(|e| e.to_string())
    }
}

/// The set bits of a `0x…` hex number, lowest first.
fn bits_of(hex: &str) -> Option<Vec<usize>> {
    let digits = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X"))?;
    let mut bits = Vec::new();
    for (i, c) in digits.chars().rev().enumerate() {
        let d = c.to_digit(16)? as usize;
        for b in 0..4 {
            if d & (1 << b) != 0 {
                bits.push(i * 4 + b);
            }
        }
    }
    Some(bits)
}

/// An Avro value as JSON (records → objects, unions unwrapped, bytes → base64).
pub(crate) fn to_json(v: AvroValue) -> Value {
    match v {
        AvroValue::Null => Value::Null,
        AvroValue::Boolean(b) => Value::Bool(b),
        AvroValue::Int(i) | AvroValue::Date(i) | AvroValue::TimeMillis(i) => Value::from(i),
        AvroValue::Long(i)
        | AvroValue::TimeMicros(i)
        | AvroValue::TimestampMillis(i)
        | AvroValue::TimestampMicros(i)
        | AvroValue::LocalTimestampMillis(i)
        | AvroValue::LocalTimestampMicros(i) => Value::from(i),
        AvroValue::Float(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        AvroValue::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        AvroValue::String(s) | AvroValue::Enum(_, s) => Value::String(s),
        AvroValue::Bytes(b) | AvroValue::Fixed(_, b) => Value::String(STANDARD.encode(b)),
        AvroValue::Union(_, inner) => to_json(*inner),
        AvroValue::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        AvroValue::Map(m) => Value::Object(m.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        AvroValue::Record(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        other => Value::String(format!("{other:?}")),
    }
}

/// A JSON value as Avro of `schema`.
fn from_json(schema: &Avro, v: &Value) -> Result<AvroValue, String> {
    Ok(match (schema, v) {
        (Avro::Null, Value::Null) => AvroValue::Null,
        (Avro::Union(u), v) => {
            let variants = u.variants();
            let found = variants.iter().enumerate().find_map(|(i, s)| from_json(s, v).ok().map(|a| (i, a)));
            let (i, a) = found.ok_or_else(|| format!("{v} fits none of the union's types"))?;
            AvroValue::Union(i as u32, Box::new(a))
        }
        (Avro::Boolean, Value::Bool(b)) => AvroValue::Boolean(*b),
        (Avro::Int, Value::Number(n)) => {
            AvroValue::Int(n.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(|| format!("{n} is not an int"))?)
        }
        (Avro::Long, Value::Number(n)) => AvroValue::Long(n.as_i64().ok_or_else(|| format!("{n} is not a long"))?),
        (Avro::Double, Value::Number(n)) => AvroValue::Double(n.as_f64().unwrap_or_default()),
        (Avro::Float, Value::Number(n)) => AvroValue::Float(n.as_f64().unwrap_or_default() as f32),
        (Avro::String, Value::String(s)) => AvroValue::String(s.clone()),
        (Avro::Record(r), Value::Object(m)) => AvroValue::Record(
            r.fields
                .iter()
                .map(|f| Ok((f.name.clone(), from_json(&f.schema, m.get(&f.name).unwrap_or(&Value::Null))?)))
                .collect::<Result<_, String>>()?,
        ),
        (Avro::Array(a), Value::Array(items)) => {
            AvroValue::Array(items.iter().map(|i| from_json(&a.items, i)).collect::<Result<_, _>>()?)
        }
        (s, v) => return Err(format!("{v} does not fit Avro type {:?}", apache_avro::schema::SchemaKind::from(s))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"X","fields":[
        {"name":"ChangeEventHeader","type":"string"},
        {"name":"Name","type":["null","string"],"default":null},
        {"name":"BillingAddress","type":["null",{"type":"record","name":"Address","fields":[
            {"name":"Street","type":["null","string"]},{"name":"City","type":["null","string"]}]}],"default":null},
        {"name":"Phone","type":["null","string"],"default":null}]}"#;

    #[test]
    fn bitmaps_expand_to_field_names_with_compound_parts() {
        let s = EventSchema::parse("s1", SCHEMA).unwrap();
        assert_eq!(s.expand_bitmaps(&["0x0A".into()]).unwrap(), ["Name", "Phone"]);
        assert_eq!(s.expand_bitmaps(&["0x08".into(), "2-0x02".into()]).unwrap(), ["Phone", "BillingAddress.City"]);
        assert_eq!(
            s.expand_bitmaps(&["0x00".into(), "2-0x03".into()]).unwrap(),
            ["BillingAddress.Street", "BillingAddress.City"]
        );
        assert!(s.expand_bitmaps(&["0x100".into()]).is_err(), "bit 8 names no field");
        assert!(s.expand_bitmaps(&["zz".into()]).is_err());
    }

    #[test]
    fn json_round_trips_through_avro() {
        let s = EventSchema::parse("s1", SCHEMA).unwrap();
        let data = serde_json::json!({"ChangeEventHeader": "h", "Name": "Acme", "BillingAddress": {"City": "Lyon"}});
        let bytes = s.encode(data.as_object().unwrap(), 0).unwrap();
        let back = s.decode(&bytes).unwrap();
        assert_eq!(back["Name"], "Acme");
        assert_eq!(back["BillingAddress"]["City"], "Lyon");
        assert_eq!(back["Phone"], Value::Null);
        assert!(s.encode(serde_json::json!({"Nope": 1}).as_object().unwrap(), 0).is_err());
    }
}
