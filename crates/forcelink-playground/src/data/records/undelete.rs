//! Restoring records from the recycle bin, as Salesforce's `undelete()` does: the record is live
//! again (`IsDeleted` false, `SystemModstamp` now) and so are the records deleted along with it
//! (an account's contacts, opportunities and cases; a document's versions and links). Each
//! restored record is an UNDELETE change carrying its fields.

use rusqlite::types::Value as Sql;

use crate::civil;
use crate::data::request::{Ctx, SfError};

use super::values::normalize_id;

/// Most ids one undelete takes: Salesforce's `undelete()` accepts 200 records per call.
const MAX_UNDELETE_IDS: usize = 200;

fn refused(message: String) -> SfError {
    SfError::bad("UNDELETE_FAILED", message)
}

/// Restores the records `ids` from the recycle bin, with the records deleted along with them.
/// Checks every id before changing anything; returns the ids restored, children included.
pub(crate) fn undelete(ctx: &mut Ctx<'_>, ids: &[String]) -> Result<Vec<String>, SfError> {
    if ids.is_empty() {
        return Err(refused("give at least one id".into()));
    }
    if ids.len() > MAX_UNDELETE_IDS {
        return Err(refused(format!("at most {MAX_UNDELETE_IDS} ids per undelete, got {}", ids.len())));
    }
    let schema = ctx.db.schema.clone();
    let mut targets: Vec<(usize, String)> = Vec::new();
    for raw in ids {
        let Some(id) = normalize_id(raw) else { return Err(refused(format!("{raw:?} is not a record id"))) };
        let Some(oi) = schema.by_id(&id).and_then(|o| schema.index_of(&o.name)) else {
            return Err(refused(format!("{id}: no object has the key prefix {}", &id[..3])));
        };
        let o = &schema.objects[oi];
        let Some(row) = ctx.db.row(oi, &id)? else { return Err(refused(format!("{id}: no such {}", o.name))) };
        if !matches!(row[1], Sql::Integer(1)) {
            return Err(refused(format!("{id}: the {} is not in the recycle bin", o.name)));
        }
        // UNCONFIRMED: Salesforce's recycle bin lists the parent only; restoring a record
        // deleted with its parent on its own is refused here.
        if let Some(parent) = ctx.db.cascade_parent(&id)? {
            return Err(refused(format!("{id} was deleted with {parent}: undelete {parent} instead")));
        }
        if !targets.iter().any(|(_, t)| *t == id) {
            targets.push((oi, id));
        }
    }
    let mut restored = Vec::new();
    for (oi, id) in targets {
        restore(ctx, oi, &id)?;
        restored.push(id.clone());
        for (child, object) in ctx.db.cascaded_with(&id)? {
            let Some(ci) = schema.index_of(&object) else { continue };
            restore(ctx, ci, &child)?;
            restored.push(child);
        }
        ctx.db.forget_cascade(&id)?;
    }
    Ok(restored)
}

/// Makes one deleted record live again and notes its UNDELETE change (all its non-null fields,
/// as a CREATE has).
fn restore(ctx: &mut Ctx<'_>, object: usize, id: &str) -> Result<(), SfError> {
    let o = &ctx.db.schema.objects[object];
    let now = civil::format_datetime(ctx.now);
    let sql = format!("UPDATE {} SET \"IsDeleted\" = 0, \"SystemModstamp\" = ?1 WHERE \"Id\" = ?2", o.table());
    ctx.db.conn.execute(&sql, [&now, id])?;
    let row = ctx.db.row(object, id)?.ok_or_else(SfError::not_found)?;
    let values = row.into_iter().enumerate().filter(|(_, v)| *v != Sql::Null).collect();
    ctx.changes.push(crate::events::Change {
        object,
        id: id.to_owned(),
        kind: crate::events::ChangeKind::Undelete,
        values,
    });
    Ok(())
}
