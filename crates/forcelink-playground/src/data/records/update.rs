//! Updating records, with the side effects on users and documents.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use crate::civil;
use crate::data::request::{Ctx, SfError};

use super::checks::{check_references, check_unique, check_write_access, derive, unsupported};
use super::read::live_row;
use super::values::normalize_id;
use super::values::{get, read_values, set};

/// Updates a record from a JSON body.
pub(crate) fn update(ctx: &mut Ctx<'_>, object: usize, id: &str, body: &Map<String, Value>) -> Result<(), SfError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    let row = live_row(ctx.db, object, id)?;
    if !o.updateable {
        return Err(unsupported(o, "updated"));
    }
    check_write_access(ctx, o)?;
    let id = normalize_id(id).unwrap_or_default();
    let mut values = read_values(o, body, false)?;
    if o.name == "UserLogin" && matches!(get(&values, o, "IsPasswordLocked"), Some(Sql::Integer(1))) {
        // Salesforce: IsPasswordLocked can be set to false (unlock) but not to true.
        // UNCONFIRMED: the error code and text.
        return Err(SfError::bad("FIELD_INTEGRITY_EXCEPTION", "IsPasswordLocked can only be set to false")
            .with_fields(vec!["IsPasswordLocked".into()]));
    }
    apply_update(ctx, object, &id, &row, &mut values)
}

/// Writes an update (system fields and side effects added here). When the seed's rules guard
/// the object, the update runs in a savepoint and is undone if they refuse the result.
pub(crate) fn apply_update(
    ctx: &mut Ctx<'_>,
    object: usize,
    id: &str,
    row: &[Sql],
    values: &mut Vec<(usize, Sql)>,
) -> Result<(), SfError> {
    if !ctx.db.schema.rules.guards(object) {
        return update_unchecked(ctx, object, id, row, values);
    }
    ctx.db_atomic(|ctx| {
        update_unchecked(ctx, object, id, row, values)?;
        crate::data::rules::check(ctx, object, id)
    })
}

fn update_unchecked(
    ctx: &mut Ctx<'_>,
    object: usize,
    id: &str,
    row: &[Sql],
    values: &mut Vec<(usize, Sql)>,
) -> Result<(), SfError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    // Required fields may not be cleared.
    let cleared: Vec<String> = values
        .iter()
        .filter(|(i, v)| o.fields[*i].required && matches!(v, Sql::Null))
        .map(|(i, _)| o.fields[*i].name.clone())
        .collect();
    if !cleared.is_empty() {
        return Err(SfError::bad(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", cleared.join(", ")),
        )
        .with_fields(cleared));
    }
    check_references(ctx.db, o, values)?;
    check_unique(ctx.db, o, values, Some(id))?;
    // Derived fields see the merged record.
    let mut merged: Vec<(usize, Sql)> = row.iter().cloned().enumerate().collect();
    for (i, v) in values.iter() {
        merged[*i].1 = v.clone();
    }
    derive(o, &mut merged);
    for name in ["Name", "IsClosed", "IsWon", "ExpectedRevenue"] {
        if let Some(i) = o.field_index(name)
            && o.fields[i].calculated
        {
            set(values, o, name, merged[i].1.clone());
        }
    }
    let now = civil::format_datetime(ctx.now);
    set(values, o, "LastModifiedDate", Sql::Text(now.clone()));
    set(values, o, "SystemModstamp", Sql::Text(now));
    set(values, o, "LastModifiedById", Sql::Text(ctx.caller.id.clone()));
    ctx.db.update_row(object, id, values)?;
    ctx.changes.push(crate::events::Change {
        object,
        id: id.to_owned(),
        kind: crate::events::ChangeKind::Update,
        values: values.clone(),
    });
    if matches!(o.name.as_str(), "User" | "UserLogin") {
        ctx.users_changed = true;
    }
    if o.name == "ContentVersion"
        && let Some(t) = get(values, o, "Title").cloned()
        && let Some(Sql::Text(doc)) = o.field_index("ContentDocumentId").map(|i| &row[i])
        && let Some(di) = schema.index_of("ContentDocument")
    {
        let d = &schema.objects[di];
        let mut dv = Vec::new();
        set(&mut dv, d, "Title", t);
        ctx.db.update_row(di, doc, &dv)?;
        ctx.changes.push(crate::events::Change {
            object: di,
            id: doc.clone(),
            kind: crate::events::ChangeKind::Update,
            values: dv,
        });
    }
    Ok(())
}
