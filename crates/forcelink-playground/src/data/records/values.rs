//! Field values: JSON in (checked against the field's type) and out, record ids in 15 and 18
//! characters, and the value list a write works on.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use crate::civil;
use crate::data::request::SfError;
use crate::schema::{Field, FieldType, SObject};

/// Normalises a 15- or 18-character id to 18 characters (kept in `ids`, which the SOQL
/// compiler uses too).
pub(crate) use crate::ids::normalize as normalize_id;

pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

pub(super) fn type_error(f: &Field, v: &Value) -> SfError {
    let token = match v {
        Value::String(_) => "VALUE_STRING",
        Value::Number(_) => "VALUE_NUMBER",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
        Value::Null => "VALUE_NULL",
    };
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    SfError::json_parser(format!(
        "Cannot deserialize instance of {} from {token} value {shown} or request may be missing a required field",
        f.ftype.name()
    ))
}

/// Converts a JSON value to what is stored for field `f`.
pub(crate) fn to_sql(f: &Field, v: &Value) -> Result<Sql, SfError> {
    if v.is_null() {
        return Ok(Sql::Null);
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    Ok(match f.ftype {
        FieldType::Boolean => match v {
            Value::Bool(b) => Sql::Integer(i64::from(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Sql::Integer(1),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Sql::Integer(0),
            _ => return Err(type_error(f, v)),
        },
        FieldType::Int => match v {
            Value::Number(n) => Sql::Integer(
                n.as_i64()
                    .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
                    .ok_or_else(|| type_error(f, v))?,
            ),
            Value::String(s) => Sql::Integer(s.trim().parse().map_err(|_| type_error(f, v))?),
            _ => return Err(type_error(f, v)),
        },
        FieldType::Double | FieldType::Currency | FieldType::Percent => match v {
            Value::Number(n) => Sql::Real(n.as_f64().ok_or_else(|| type_error(f, v))?),
            Value::String(s) => {
                Sql::Real(s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| type_error(f, v))?)
            }
            _ => return Err(type_error(f, v)),
        },
        FieldType::Date => {
            let s = v.as_str().ok_or_else(|| type_error(f, v))?;
            let day = civil::parse_date(s.get(..10).unwrap_or(s))
                .filter(|_| s.len() == 10 || civil::parse_datetime(s).is_some())
                .ok_or_else(|| type_error(f, v))?;
            Sql::Text(civil::format_date(day))
        }
        FieldType::DateTime => {
            let s = v.as_str().ok_or_else(|| type_error(f, v))?;
            Sql::Text(civil::format_datetime(civil::parse_datetime(s).ok_or_else(|| type_error(f, v))?))
        }
        FieldType::Id | FieldType::Reference => {
            let s = v.as_str().ok_or_else(|| type_error(f, v))?;
            if s.is_empty() {
                return Ok(Sql::Null);
            }
            Sql::Text(normalize_id(s).ok_or_else(|| {
                SfError::bad("MALFORMED_ID", format!("{}: id value of incorrect type: {s}", f.label))
                    .with_fields(vec![f.name.clone()])
            })?)
        }
        FieldType::Base64 => {
            let s = v.as_str().ok_or_else(|| type_error(f, v))?;
            let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            Sql::Blob(STANDARD.decode(clean).map_err(|e| SfError::json_parser(format!("Illegal base64 data: {e}")))?)
        }
        _ => {
            let s = text(v).ok_or_else(|| type_error(f, v))?;
            if s.is_empty() {
                return Ok(Sql::Null);
            }
            if s.chars().count() > f.length as usize {
                let shown: String = s.chars().take(40).collect();
                return Err(SfError::bad(
                    "STRING_TOO_LONG",
                    format!("{}: data value too large: {shown} (max length={})", f.label, f.length),
                )
                .with_fields(vec![f.name.clone()]));
            }
            if f.ftype == FieldType::Email && !is_email(&s) {
                return Err(SfError::bad("INVALID_EMAIL_ADDRESS", format!("{}: invalid email address: {s}", f.label))
                    .with_fields(vec![f.name.clone()]));
            }
            Sql::Text(s)
        }
    })
}

/// Writes a stored value as JSON.
pub(crate) fn to_json(f: &Field, v: &Sql, object: &str, id: &str, version: &str) -> Value {
    match (v, f.ftype) {
        (Sql::Null, _) => Value::Null,
        (Sql::Integer(i), FieldType::Boolean) => Value::Bool(*i != 0),
        (Sql::Integer(i), _) => json!(i),
        (Sql::Real(x), FieldType::Int) => json!(*x as i64),
        (Sql::Real(x), _) => json!(x),
        (Sql::Text(s), _) => json!(s),
        (Sql::Blob(_), _) => json!(format!("/services/data/v{version}/sobjects/{object}/{id}/{}", f.name)),
    }
}

pub(super) fn read_values(
    o: &SObject,
    body: &Map<String, Value>,
    creating: bool,
) -> Result<Vec<(usize, Sql)>, SfError> {
    let mut out = Vec::new();
    let mut not_writable = Vec::new();
    for (k, v) in body {
        if k == "attributes" {
            continue;
        }
        let Some(i) = o.field_index(k) else { return Err(SfError::invalid_field(&o.name, k)) };
        let f = &o.fields[i];
        let writable = if creating { f.createable } else { f.updateable };
        // Clients echo `Id` back in update bodies; Salesforce ignores a matching one.
        if !writable && (f.name != "Id" || creating) {
            not_writable.push(f.name.clone());
            continue;
        }
        if f.name == "Id" {
            continue;
        }
        out.push((i, to_sql(f, v)?));
    }
    if !not_writable.is_empty() {
        return Err(SfError::bad(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                not_writable.join(", ")
            ),
        )
        .with_fields(not_writable));
    }
    Ok(out)
}

pub(super) fn set(values: &mut Vec<(usize, Sql)>, o: &SObject, name: &str, v: Sql) {
    if let Some(i) = o.field_index(name) {
        match values.iter_mut().find(|(j, _)| *j == i) {
            Some(slot) => slot.1 = v,
            None => values.push((i, v)),
        }
    }
}

pub(super) fn get<'a>(values: &'a [(usize, Sql)], o: &SObject, name: &str) -> Option<&'a Sql> {
    let i = o.field_index(name)?;
    values.iter().find(|(j, _)| *j == i).map(|(_, v)| v).filter(|v| !matches!(v, Sql::Null))
}

pub(super) fn text_of(v: Option<&Sql>) -> Option<&str> {
    match v {
        Some(Sql::Text(s)) => Some(s),
        _ => None,
    }
}
