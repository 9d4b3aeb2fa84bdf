//! What a write must pass: object access, references to live records of the right type,
//! uniqueness, required fields, and the values derived from others.

use rusqlite::types::Value as Sql;

use crate::data::request::{Ctx, SfError};
use crate::schema::{FieldType, SObject};
use crate::store::Db;

use super::values::{get, set, text_of};

/// Objects only an administrator ("Manage Users") may write.
pub(super) fn admin_only(object: &str) -> bool {
    matches!(
        object,
        "User"
            | "UserLogin"
            | "PermissionSet"
            | "PermissionSetAssignment"
            | "PermissionSetLicenseAssign"
            | "UserPackageLicense"
    )
}

pub(super) fn check_write_access(ctx: &Ctx<'_>, o: &SObject) -> Result<(), SfError> {
    if admin_only(&o.name) && !ctx.caller.admin {
        return Err(SfError::insufficient_access());
    }
    Ok(())
}

/// `UNCONFIRMED:` the error for an operation the object does not support; Salesforce reports
/// `INVALID_TYPE_FOR_OPERATION` in SOAP for these, REST status assumed 400.
pub(super) fn unsupported(o: &SObject, what: &str) -> SfError {
    SfError::bad("INVALID_TYPE_FOR_OPERATION", format!("entity type cannot be {what}: {}", o.name))
}

/// Calculated fields that depend on others (names, closed flags).
pub(super) fn derive(o: &SObject, values: &mut Vec<(usize, Sql)>) {
    match o.name.as_str() {
        "Contact" | "Lead" | "User" => {
            let first = text_of(get(values, o, "FirstName")).unwrap_or("").to_owned();
            let last = text_of(get(values, o, "LastName")).unwrap_or("").to_owned();
            set(values, o, "Name", Sql::Text(format!("{first} {last}").trim().to_owned()));
        }
        "Opportunity" => {
            let stage = text_of(get(values, o, "StageName")).unwrap_or("").to_owned();
            let closed = stage.starts_with("Closed");
            set(values, o, "IsClosed", Sql::Integer(i64::from(closed)));
            set(values, o, "IsWon", Sql::Integer(i64::from(stage == "Closed Won")));
            let amount = match get(values, o, "Amount") {
                Some(Sql::Real(a)) => Some(*a),
                _ => None,
            };
            let p = match get(values, o, "Probability") {
                Some(Sql::Real(p)) => *p,
                _ => 0.0,
            };
            set(values, o, "ExpectedRevenue", amount.map_or(Sql::Null, |a| Sql::Real(a * p / 100.0)));
        }
        "Case" => {
            let closed = text_of(get(values, o, "Status")) == Some("Closed");
            set(values, o, "IsClosed", Sql::Integer(i64::from(closed)));
        }
        _ => {}
    }
}

/// Checks references point at live records of an allowed type.
pub(super) fn check_references(db: &Db, o: &SObject, values: &[(usize, Sql)]) -> Result<(), SfError> {
    for (i, v) in values {
        let f = &o.fields[*i];
        let Sql::Text(id) = v else { continue };
        if f.ftype != FieldType::Reference {
            continue;
        }
        let target = db.schema.by_id(id).filter(|t| f.reference_to.iter().any(|r| r == &t.name));
        let Some(target) = target else {
            return Err(SfError::bad(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("{}: id value of incorrect type: {id}", f.label),
            )
            .with_fields(vec![f.name.clone()]));
        };
        let ti = db.object_index(target);
        match db.is_deleted(ti, id)? {
            Some(false) => {}
            Some(true) => {
                return Err(SfError::bad("ENTITY_IS_DELETED", "entity is deleted").with_fields(vec![f.name.clone()]));
            }
            None => {
                return Err(SfError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                    .with_fields(vec![f.name.clone()]));
            }
        }
    }
    Ok(())
}

pub(super) fn check_unique(db: &Db, o: &SObject, values: &[(usize, Sql)], own_id: Option<&str>) -> Result<(), SfError> {
    let oi = db.object_index(o);
    for (i, v) in values {
        let f = &o.fields[*i];
        // An external id is an upsert key, unique only when declared so (else upserts may match
        // several records: 300 Multiple Choices).
        if !f.unique || matches!(v, Sql::Null) {
            continue;
        }
        let found = db.ids_where(oi, &f.name, v, 2)?;
        if let Some(other) = found.iter().find(|id| Some(id.as_str()) != own_id) {
            if o.name == "User" && f.name == "Username" {
                return Err(SfError::bad(
                    "DUPLICATE_USERNAME",
                    "Duplicate Username.<br>The username already exists in this or another Salesforce organization. Usernames must be unique across all Salesforce organizations. To resolve, use a different username (it doesn't need to match the user's email address).",
                )
                .with_fields(vec!["Username".into()]));
            }
            return Err(SfError::bad(
                "DUPLICATE_VALUE",
                format!("duplicate value found: {} duplicates value on record with id: {other}", f.name),
            )
            .with_fields(vec![]));
        }
    }
    Ok(())
}

pub(super) fn required_missing(o: &SObject, values: &[(usize, Sql)]) -> Result<(), SfError> {
    let missing: Vec<String> = o
        .fields
        .iter()
        .enumerate()
        .filter(|(i, f)| f.required && !values.iter().any(|(j, v)| j == i && !matches!(v, Sql::Null)))
        .map(|(_, f)| f.name.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(SfError::bad("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{}]", missing.join(", ")))
        .with_fields(missing))
}

pub(super) fn required_error(field: &str) -> SfError {
    SfError::bad("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{field}]"))
        .with_fields(vec![field.into()])
}

pub(super) fn duplicate_assignment(db: &Db, o: &SObject, values: &[(usize, Sql)]) -> Result<(), SfError> {
    let (Some(Sql::Text(a)), Some(Sql::Text(p))) = (get(values, o, "AssigneeId"), get(values, o, "PermissionSetId"))
    else {
        return Ok(());
    };
    let sql = format!(
        "SELECT \"Id\" FROM {} WHERE \"AssigneeId\" = ?1 AND \"PermissionSetId\" = ?2 AND \"IsDeleted\" = 0 LIMIT 1",
        o.table()
    );
    let existing: Option<String> = db.conn.query_row(&sql, [a, p], |r| r.get(0)).ok();
    if let Some(id) = existing {
        return Err(SfError::bad(
            "DUPLICATE_VALUE",
            format!("Duplicate PermissionSetAssignment. Assignee: {a}, PermissionSet: {p}; existing assignment: {id}"),
        )
        .with_fields(vec![]));
    }
    Ok(())
}
