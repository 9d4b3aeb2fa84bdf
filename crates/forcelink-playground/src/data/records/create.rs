//! Creating records: from a JSON body, from prepared values (defaults, system fields, side
//! effects), and the rows the org creates itself.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use crate::civil;
use crate::data::request::{Ctx, SfError};
use crate::schema::{FieldType, SObject};

use super::checks::{
    check_references, check_unique, check_write_access, derive, duplicate_assignment, required_error, required_missing,
    unsupported,
};
use super::values::{get, read_values, set, text_of};

/// Creates a record from a JSON body; returns its id.
pub(crate) fn create(ctx: &mut Ctx<'_>, object: usize, body: &Map<String, Value>) -> Result<String, SfError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    if !o.createable {
        return Err(unsupported(o, "inserted"));
    }
    check_write_access(ctx, o)?;
    let mut values = read_values(o, body, true)?;
    insert_values(ctx, object, &mut values)
}

/// Inserts prepared values (defaults, system fields and side effects added here). When the
/// seed's rules guard the object, the insert runs in a savepoint and is undone if they refuse it.
pub(crate) fn insert_values(
    ctx: &mut Ctx<'_>,
    object: usize,
    values: &mut Vec<(usize, Sql)>,
) -> Result<String, SfError> {
    if !ctx.db.schema.rules.guards(object) {
        return insert_unchecked(ctx, object, values);
    }
    ctx.db_atomic(|ctx| {
        let id = insert_unchecked(ctx, object, values)?;
        crate::data::rules::check(ctx, object, &id)?;
        Ok(id)
    })
}

fn insert_unchecked(ctx: &mut Ctx<'_>, object: usize, values: &mut Vec<(usize, Sql)>) -> Result<String, SfError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    for (i, f) in o.fields.iter().enumerate() {
        if values.iter().any(|(j, _)| *j == i) {
            continue;
        }
        if let Some(d) = &f.default_value {
            let v =
                if f.ftype == FieldType::Boolean { Sql::Integer(i64::from(d == "true")) } else { Sql::Text(d.clone()) };
            values.push((i, v));
        } else if f.ftype == FieldType::Boolean {
            values.push((i, Sql::Integer(0)));
        }
    }
    let now = civil::format_datetime(ctx.now);
    let caller = ctx.caller.id.clone();
    if get(values, o, "OwnerId").is_none() {
        set(values, o, "OwnerId", Sql::Text(caller.clone()));
    }
    match o.name.as_str() {
        "User" if get(values, o, "CommunityNickname").is_none() => {
            let nick = text_of(get(values, o, "Alias")).unwrap_or("user").to_owned();
            set(values, o, "CommunityNickname", Sql::Text(format!("{nick}{}", ctx.now % 100_000)));
        }
        "ContentVersion" => {
            if get(values, o, "VersionData").is_none() {
                return Err(required_error("VersionData"));
            }
            if get(values, o, "PathOnClient").is_none() {
                return Err(required_error("PathOnClient"));
            }
        }
        _ => {}
    }
    derive(o, values);
    required_missing(o, values)?;
    check_references(ctx.db, o, values)?;
    check_unique(ctx.db, o, values, None)?;
    if o.name == "PermissionSetAssignment" {
        duplicate_assignment(ctx.db, o, values)?;
    }
    let (row, id) = ctx.db.next_id(object);
    set(values, o, "Id", Sql::Text(id.clone()));
    set(values, o, "IsDeleted", Sql::Integer(0));
    for name in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        set(values, o, name, Sql::Text(now.clone()));
    }
    for name in ["CreatedById", "LastModifiedById"] {
        set(values, o, name, Sql::Text(caller.clone()));
    }
    if o.name == "Case" {
        set(values, o, "CaseNumber", Sql::Text(format!("{row:08}")));
    }
    if o.name == "ContentVersion" {
        content_version_effects(ctx, o, &id, values)?;
    }
    ctx.db.insert_row(object, row, values)?;
    ctx.changes.push(crate::events::Change {
        object,
        id: id.clone(),
        kind: crate::events::ChangeKind::Create,
        values: values.clone(),
    });
    match o.name.as_str() {
        "User" => {
            let login = schema.index_of("UserLogin").unwrap_or(0);
            let lo = &schema.objects[login];
            let mut lv = Vec::new();
            set(&mut lv, lo, "UserId", Sql::Text(id.clone()));
            set(&mut lv, lo, "IsFrozen", Sql::Integer(0));
            set(&mut lv, lo, "IsPasswordLocked", Sql::Integer(0));
            system_insert(ctx, login, &mut lv)?;
            ctx.users_changed = true;
        }
        "ContentVersion" => {
            // The first version's document points back at it.
            let doc = text_of(get(values, o, "ContentDocumentId")).map(str::to_owned);
            if let (Some(doc), Some(di)) = (doc, schema.index_of("ContentDocument")) {
                let d = &schema.objects[di];
                let mut dv = Vec::new();
                set(&mut dv, d, "LatestPublishedVersionId", Sql::Text(id.clone()));
                for name in ["Title", "ContentSize", "FileType", "FileExtension"] {
                    if let Some(v) = get(values, o, name) {
                        set(&mut dv, d, name, v.clone());
                    }
                }
                ctx.db.update_row(di, &doc, &dv)?;
                ctx.changes.push(crate::events::Change {
                    object: di,
                    id: doc,
                    kind: crate::events::ChangeKind::Update,
                    values: dv,
                });
            }
        }
        _ => {}
    }
    Ok(id)
}

/// Inserts a row the org creates itself (no permission or required-field checks).
pub(crate) fn system_insert(
    ctx: &mut Ctx<'_>,
    object: usize,
    values: &mut Vec<(usize, Sql)>,
) -> Result<String, SfError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    let now = civil::format_datetime(ctx.now);
    for (i, f) in o.fields.iter().enumerate() {
        if f.ftype == FieldType::Boolean && !values.iter().any(|(j, _)| *j == i) {
            let d = f.default_value.as_deref() == Some("true");
            values.push((i, Sql::Integer(i64::from(d))));
        } else if let Some(d) = &f.default_value
            && !values.iter().any(|(j, _)| *j == i)
        {
            values.push((i, Sql::Text(d.clone())));
        }
    }
    let (row, id) = ctx.db.next_id(object);
    set(values, o, "Id", Sql::Text(id.clone()));
    set(values, o, "IsDeleted", Sql::Integer(0));
    for name in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        set(values, o, name, Sql::Text(now.clone()));
    }
    for name in ["CreatedById", "LastModifiedById", "OwnerId"] {
        if get(values, o, name).is_none() {
            set(values, o, name, Sql::Text(ctx.caller.id.clone()));
        }
    }
    derive(o, values);
    ctx.db.insert_row(object, row, values)?;
    // The org's own rows (a user's UserLogin, a file's ContentDocument and links) are changes
    // of the same transaction as the record that made them.
    ctx.changes.push(crate::events::Change {
        object,
        id: id.clone(),
        kind: crate::events::ChangeKind::Create,
        values: values.clone(),
    });
    Ok(id)
}

/// ContentVersion insert: a new document for a first version, numbering for later ones, and a
/// link to `FirstPublishLocationId`.
pub(super) fn content_version_effects(
    ctx: &mut Ctx<'_>,
    o: &SObject,
    id: &str,
    values: &mut Vec<(usize, Sql)>,
) -> Result<(), SfError> {
    let schema = ctx.db.schema.clone();
    let size = match get(values, o, "VersionData") {
        Some(Sql::Blob(b)) => b.len() as i64,
        _ => 0,
    };
    let path = text_of(get(values, o, "PathOnClient")).unwrap_or("").to_owned();
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let file_type = match ext.as_str() {
        "" => "UNKNOWN".to_owned(),
        "txt" => "TEXT".to_owned(),
        "jpg" | "jpeg" => "JPG".to_owned(),
        "docx" => "WORD_X".to_owned(),
        "xlsx" => "EXCEL_X".to_owned(),
        other => other.to_ascii_uppercase(),
    };
    set(values, o, "ContentSize", Sql::Integer(size));
    set(values, o, "FileExtension", if ext.is_empty() { Sql::Null } else { Sql::Text(ext) });
    set(values, o, "FileType", Sql::Text(file_type));
    set(values, o, "IsLatest", Sql::Integer(1));
    let vi = ctx.db.object_index(o);
    match text_of(get(values, o, "ContentDocumentId")).map(str::to_owned) {
        Some(doc) => {
            let sql =
                format!("SELECT COUNT(*) FROM {} WHERE \"ContentDocumentId\" = ?1 AND \"IsDeleted\" = 0", o.table());
            let n: i64 = ctx.db.conn.query_row(&sql, [&doc], |r| r.get(0))?;
            ctx.db.conn.execute(
                &format!("UPDATE {} SET \"IsLatest\" = 0 WHERE \"ContentDocumentId\" = ?1", o.table()),
                [&doc],
            )?;
            set(values, o, "VersionNumber", Sql::Text((n + 1).to_string()));
            let _ = vi;
        }
        None => {
            set(values, o, "VersionNumber", Sql::Text("1".into()));
            let di = schema.index_of("ContentDocument").ok_or_else(|| SfError::internal("no ContentDocument"))?;
            let d = &schema.objects[di];
            let mut dv = Vec::new();
            if let Some(t) = get(values, o, "Title") {
                set(&mut dv, d, "Title", t.clone());
            }
            if let Some(owner) = get(values, o, "OwnerId") {
                set(&mut dv, d, "OwnerId", owner.clone());
            }
            set(&mut dv, d, "PublishStatus", Sql::Text("P".into()));
            let doc = system_insert(ctx, di, &mut dv)?;
            set(values, o, "ContentDocumentId", Sql::Text(doc.clone()));
            let li = schema.index_of("ContentDocumentLink").ok_or_else(|| SfError::internal("no link object"))?;
            let l = &schema.objects[li];
            // The owner always gets a link; the first publish location another one.
            let owner = text_of(get(values, o, "OwnerId")).unwrap_or(&ctx.caller.id).to_owned();
            let mut targets = vec![(owner, "I")];
            if let Some(loc) = text_of(get(values, o, "FirstPublishLocationId"))
                && !targets.iter().any(|(t, _)| t == loc)
            {
                targets.push((loc.to_owned(), "V"));
            }
            for (target, share) in targets {
                let mut lv = Vec::new();
                set(&mut lv, l, "ContentDocumentId", Sql::Text(doc.clone()));
                set(&mut lv, l, "LinkedEntityId", Sql::Text(target));
                set(&mut lv, l, "ShareType", Sql::Text(share.into()));
                set(&mut lv, l, "Visibility", Sql::Text("AllUsers".into()));
                system_insert(ctx, li, &mut lv)?;
            }
        }
    }
    let _ = id;
    Ok(())
}
