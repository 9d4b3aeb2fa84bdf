//! Reading records: a live row, and a record as the REST API returns it.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::values::{normalize_id, to_json};
use crate::data::request::{Ctx, SfError};
use crate::store::Db;

/// Looks up a live record; 404 when absent or deleted.
pub(crate) fn live_row(db: &Db, object: usize, id: &str) -> Result<Vec<Sql>, SfError> {
    let Some(id) = normalize_id(id) else { return Err(SfError::not_found()) };
    let o = &db.schema.objects[object];
    if !id.starts_with(&o.key_prefix) {
        return Err(SfError::not_found());
    }
    match db.row(object, &id)? {
        None => Err(SfError::not_found()),
        Some(r) if matches!(r[1], Sql::Integer(1)) => Err(SfError::deleted()),
        Some(r) => Ok(r),
    }
}

/// A record as the REST API returns it: `attributes` then the fields (all, or `fields`).
pub(crate) fn retrieve(ctx: &Ctx<'_>, object: usize, id: &str, fields: Option<&str>) -> Result<Value, SfError> {
    let row = live_row(ctx.db, object, id)?;
    record_json(ctx, object, &row, fields)
}

pub(crate) fn record_json(ctx: &Ctx<'_>, object: usize, row: &[Sql], fields: Option<&str>) -> Result<Value, SfError> {
    let o = &ctx.db.schema.objects[object];
    let id = match &row[0] {
        Sql::Text(s) => s.clone(),
        _ => String::new(),
    };
    let v = &ctx.version.text;
    let mut m = Map::new();
    m.insert(
        "attributes".into(),
        json!({"type": o.name, "url": format!("/services/data/v{v}/sobjects/{}/{id}", o.name)}),
    );
    let chosen: Vec<usize> = match fields {
        Some(list) => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                out.push(o.field_index(name).ok_or_else(|| SfError::invalid_field(&o.name, name))?);
            }
            out
        }
        None => (0..o.fields.len()).collect(),
    };
    for i in chosen {
        let f = &o.fields[i];
        m.insert(f.name.clone(), to_json(f, &row[i], &o.name, &id, v));
    }
    // Salesforce appends Id when `fields=` leaves it out.
    if fields.is_some() && !m.contains_key("Id") {
        m.insert("Id".into(), json!(id));
    }
    Ok(Value::Object(m))
}
