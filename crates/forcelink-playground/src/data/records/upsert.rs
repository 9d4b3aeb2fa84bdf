//! Upsert by external id (or `Id`): create, update, or `300 Multiple Choices`.

use axum::http::StatusCode;
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use crate::data::request::{Ctx, SfError};
use crate::schema::FieldType;

use super::checks::{check_write_access, unsupported};
use super::create::insert_values;
use super::update::update;
use super::values::{normalize_id, to_sql};
use super::values::{read_values, set};

/// What an upsert did.
#[derive(Debug)]
pub(crate) enum Upserted {
    Created(String),
    Updated(String),
    /// The external id matched several records (HTTP 300).
    Multiple(Vec<String>),
}

/// Upsert by external id (or `Id`).
pub(crate) fn upsert(
    ctx: &mut Ctx<'_>,
    object: usize,
    field: &str,
    value: &str,
    body: &Map<String, Value>,
) -> Result<Upserted, SfError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    let not_ext = || {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
        )
    };
    let fi = o.field_index(field).ok_or_else(not_ext)?;
    let f = &o.fields[fi];
    if !(f.external_id || f.ftype == FieldType::Id || f.id_lookup()) {
        return Err(not_ext());
    }
    let key =
        if f.ftype == FieldType::Id { normalize_id(value).map(Sql::Text) } else { Some(to_sql(f, &json!(value))?) };
    let matches = match &key {
        Some(k) if !value.is_empty() => ctx.db.ids_where(object, &f.name, k, 201)?,
        _ => Vec::new(),
    };
    match matches.len() {
        0 => {
            if ctx.update_only {
                return Err(SfError::not_found());
            }
            if !o.createable {
                return Err(unsupported(o, "inserted"));
            }
            check_write_access(ctx, o)?;
            let mut values = read_values(o, body, true)?;
            if f.ftype != FieldType::Id
                && let Some(k) = key
            {
                set(&mut values, o, &f.name, k);
            }
            insert_values(ctx, object, &mut values).map(Upserted::Created)
        }
        1 => {
            let id = matches[0].clone();
            let mut b = body.clone();
            // The external id field may be repeated in the body with the same value.
            b.retain(|k, _| !k.eq_ignore_ascii_case(&f.name) || f.updateable);
            update(ctx, object, &id, &b)?;
            Ok(Upserted::Updated(id))
        }
        _ => Ok(Upserted::Multiple(matches)),
    }
}
