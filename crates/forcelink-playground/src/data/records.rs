//! Record semantics: JSON field values in and out, create / update / delete / upsert with
//! Salesforce's validation errors, system fields, and the side effects of the objects a
//! user-administration workflow touches (User → UserLogin, ContentVersion → ContentDocument and
//! ContentDocumentLink, profile-owned permission set assignments that cannot be deleted).

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::api::Ctx;
use crate::civil;
use crate::ids;
use crate::schema::{Field, FieldType, SObject};
use crate::store::Db;

/// A Salesforce error: top-level REST answers carry it as `{message, errorCode, fields}`,
/// SaveResults and tree results as `{statusCode, message, fields}` (wire reference §6.5).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fields: Option<Vec<String>>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into(), fields: None }
    }
    pub(crate) fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub(crate) fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = Some(fields);
        self
    }
    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }
    pub(crate) fn deleted() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ENTITY_IS_DELETED", "entity is deleted")
    }
    pub(crate) fn invalid_field(object: &str, field: &str) -> Self {
        Self::bad("INVALID_FIELD", format!("No such column '{field}' on sobject of type {object}"))
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", format!("An unexpected error occurred: {e}"))
    }
    pub(crate) fn json_parser(e: impl std::fmt::Display) -> Self {
        Self::bad("JSON_PARSER_ERROR", e.to_string())
    }
    /// `UNCONFIRMED:` Salesforce answers a user without the permission with 403 and
    /// `INSUFFICIENT_ACCESS_OR_READONLY`; the exact message varies by object.
    pub(crate) fn insufficient_access() -> Self {
        Self::new(StatusCode::FORBIDDEN, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
    }

    /// The REST envelope element.
    pub(crate) fn rest(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), json!(self.message));
        m.insert("errorCode".into(), json!(self.code));
        if let Some(f) = &self.fields {
            m.insert("fields".into(), json!(f));
        }
        Value::Object(m)
    }
    /// The SaveResult / tree error element.
    pub(crate) fn save(&self) -> Value {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields.clone().unwrap_or_default()})
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(e)
    }
}

/// Normalises a 15- or 18-character id to 18 characters; `None` if it is not id-shaped.
pub(crate) fn normalize_id(s: &str) -> Option<String> {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match s.len() {
        15 => Some(ids::to_18(s)),
        // The checksum makes 18-character ids case-insensitive: rebuild the case-sensitive
        // 15 from it, so `001…iaz` and `001…IAZ` name the same record.
        18 => {
            let fixed = restore_case(s)?;
            Some(ids::to_18(&fixed))
        }
        _ => None,
    }
}

fn restore_case(s: &str) -> Option<String> {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(15);
    for chunk in 0..3 {
        let c = bytes[15 + chunk].to_ascii_uppercase();
        let n = ALPHA.iter().position(|&a| a == c)?;
        for j in 0..5 {
            let b = bytes[chunk * 5 + j];
            out.push(if n & (1 << j) != 0 { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() });
        }
    }
    // Digits are unaffected; letters get the case the checksum records.
    String::from_utf8(out).ok()
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

fn type_error(f: &Field, v: &Value) -> ApiError {
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
    ApiError::json_parser(format!(
        "Cannot deserialize instance of {} from {token} value {shown} or request may be missing a required field",
        f.ftype.name()
    ))
}

/// Converts a JSON value to what is stored for field `f`.
pub(crate) fn to_sql(f: &Field, v: &Value) -> Result<Sql, ApiError> {
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
                ApiError::bad("MALFORMED_ID", format!("{}: id value of incorrect type: {s}", f.label))
                    .with_fields(vec![f.name.clone()])
            })?)
        }
        FieldType::Base64 => {
            let s = v.as_str().ok_or_else(|| type_error(f, v))?;
            let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            Sql::Blob(STANDARD.decode(clean).map_err(|e| ApiError::json_parser(format!("Illegal base64 data: {e}")))?)
        }
        _ => {
            let s = text(v).ok_or_else(|| type_error(f, v))?;
            if s.is_empty() {
                return Ok(Sql::Null);
            }
            if s.chars().count() > f.length as usize {
                let shown: String = s.chars().take(40).collect();
                return Err(ApiError::bad(
                    "STRING_TOO_LONG",
                    format!("{}: data value too large: {shown} (max length={})", f.label, f.length),
                )
                .with_fields(vec![f.name.clone()]));
            }
            if f.ftype == FieldType::Email && !is_email(&s) {
                return Err(ApiError::bad("INVALID_EMAIL_ADDRESS", format!("{}: invalid email address: {s}", f.label))
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

fn read_values(o: &SObject, body: &Map<String, Value>, creating: bool) -> Result<Vec<(usize, Sql)>, ApiError> {
    let mut out = Vec::new();
    let mut not_writable = Vec::new();
    for (k, v) in body {
        if k == "attributes" {
            continue;
        }
        let Some(i) = o.field_index(k) else { return Err(ApiError::invalid_field(&o.name, k)) };
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
        return Err(ApiError::bad(
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

fn set(values: &mut Vec<(usize, Sql)>, o: &SObject, name: &str, v: Sql) {
    if let Some(i) = o.field_index(name) {
        match values.iter_mut().find(|(j, _)| *j == i) {
            Some(slot) => slot.1 = v,
            None => values.push((i, v)),
        }
    }
}

fn get<'a>(values: &'a [(usize, Sql)], o: &SObject, name: &str) -> Option<&'a Sql> {
    let i = o.field_index(name)?;
    values.iter().find(|(j, _)| *j == i).map(|(_, v)| v).filter(|v| !matches!(v, Sql::Null))
}

fn text_of(v: Option<&Sql>) -> Option<&str> {
    match v {
        Some(Sql::Text(s)) => Some(s),
        _ => None,
    }
}

/// Objects only an administrator ("Manage Users") may write.
fn admin_only(object: &str) -> bool {
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

fn check_write_access(ctx: &Ctx<'_>, o: &SObject) -> Result<(), ApiError> {
    if admin_only(&o.name) && !ctx.caller.admin {
        return Err(ApiError::insufficient_access());
    }
    Ok(())
}

/// `UNCONFIRMED:` the error for an operation the object does not support; Salesforce reports
/// `INVALID_TYPE_FOR_OPERATION` in SOAP for these, REST status assumed 400.
fn unsupported(o: &SObject, what: &str) -> ApiError {
    ApiError::bad("INVALID_TYPE_FOR_OPERATION", format!("entity type cannot be {what}: {}", o.name))
}

/// Calculated fields that depend on others (names, closed flags).
fn derive(o: &SObject, values: &mut Vec<(usize, Sql)>) {
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
fn check_references(db: &Db, o: &SObject, values: &[(usize, Sql)]) -> Result<(), ApiError> {
    for (i, v) in values {
        let f = &o.fields[*i];
        let Sql::Text(id) = v else { continue };
        if f.ftype != FieldType::Reference {
            continue;
        }
        let target = db.schema.by_id(id).filter(|t| f.reference_to.iter().any(|r| r == &t.name));
        let Some(target) = target else {
            return Err(ApiError::bad(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("{}: id value of incorrect type: {id}", f.label),
            )
            .with_fields(vec![f.name.clone()]));
        };
        let ti = db.object_index(target);
        match db.row(ti, id)? {
            Some(row) if !matches!(row[1], Sql::Integer(1)) => {}
            Some(_) => {
                return Err(ApiError::bad("ENTITY_IS_DELETED", "entity is deleted").with_fields(vec![f.name.clone()]));
            }
            None => {
                return Err(ApiError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                    .with_fields(vec![f.name.clone()]));
            }
        }
    }
    Ok(())
}

fn check_unique(db: &Db, o: &SObject, values: &[(usize, Sql)], own_id: Option<&str>) -> Result<(), ApiError> {
    let oi = db.object_index(o);
    for (i, v) in values {
        let f = &o.fields[*i];
        if !(f.unique || f.external_id) || matches!(v, Sql::Null) {
            continue;
        }
        let found = db.ids_where(oi, &f.name, v, 2)?;
        if let Some(other) = found.iter().find(|id| Some(id.as_str()) != own_id) {
            if o.name == "User" && f.name == "Username" {
                return Err(ApiError::bad(
                    "DUPLICATE_USERNAME",
                    "Duplicate Username.<br>The username already exists in this or another Salesforce organization. Usernames must be unique across all Salesforce organizations. To resolve, use a different username (it doesn't need to match the user's email address).",
                )
                .with_fields(vec!["Username".into()]));
            }
            return Err(ApiError::bad(
                "DUPLICATE_VALUE",
                format!("duplicate value found: {} duplicates value on record with id: {other}", f.name),
            )
            .with_fields(vec![]));
        }
    }
    Ok(())
}

fn required_missing(o: &SObject, values: &[(usize, Sql)]) -> Result<(), ApiError> {
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
    Err(ApiError::bad("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{}]", missing.join(", ")))
        .with_fields(missing))
}

/// Creates a record from a JSON body; returns its id.
pub(crate) fn create(ctx: &mut Ctx<'_>, object: usize, body: &Map<String, Value>) -> Result<String, ApiError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    if !o.createable {
        return Err(unsupported(o, "inserted"));
    }
    check_write_access(ctx, o)?;
    let mut values = read_values(o, body, true)?;
    insert_values(ctx, object, &mut values)
}

/// Inserts prepared values (defaults, system fields and side effects added here).
pub(crate) fn insert_values(
    ctx: &mut Ctx<'_>,
    object: usize,
    values: &mut Vec<(usize, Sql)>,
) -> Result<String, ApiError> {
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
            }
        }
        _ => {}
    }
    Ok(id)
}

fn required_error(field: &str) -> ApiError {
    ApiError::bad("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{field}]"))
        .with_fields(vec![field.into()])
}

/// Inserts a row the org creates itself (no permission or required-field checks).
pub(crate) fn system_insert(
    ctx: &mut Ctx<'_>,
    object: usize,
    values: &mut Vec<(usize, Sql)>,
) -> Result<String, ApiError> {
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
    Ok(id)
}

fn duplicate_assignment(db: &Db, o: &SObject, values: &[(usize, Sql)]) -> Result<(), ApiError> {
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
        return Err(ApiError::bad(
            "DUPLICATE_VALUE",
            format!("Duplicate PermissionSetAssignment. Assignee: {a}, PermissionSet: {p}; existing assignment: {id}"),
        )
        .with_fields(vec![]));
    }
    Ok(())
}

/// ContentVersion insert: a new document for a first version, numbering for later ones, and a
/// link to `FirstPublishLocationId`.
fn content_version_effects(
    ctx: &mut Ctx<'_>,
    o: &SObject,
    id: &str,
    values: &mut Vec<(usize, Sql)>,
) -> Result<(), ApiError> {
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
            let di = schema.index_of("ContentDocument").ok_or_else(|| ApiError::internal("no ContentDocument"))?;
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
            let li = schema.index_of("ContentDocumentLink").ok_or_else(|| ApiError::internal("no link object"))?;
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

/// Looks up a live record; 404 when absent or deleted.
pub(crate) fn live_row(db: &Db, object: usize, id: &str) -> Result<Vec<Sql>, ApiError> {
    let Some(id) = normalize_id(id) else { return Err(ApiError::not_found()) };
    let o = &db.schema.objects[object];
    if !id.starts_with(&o.key_prefix) {
        return Err(ApiError::not_found());
    }
    match db.row(object, &id)? {
        None => Err(ApiError::not_found()),
        Some(r) if matches!(r[1], Sql::Integer(1)) => Err(ApiError::deleted()),
        Some(r) => Ok(r),
    }
}

/// Updates a record from a JSON body.
pub(crate) fn update(ctx: &mut Ctx<'_>, object: usize, id: &str, body: &Map<String, Value>) -> Result<(), ApiError> {
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
        return Err(ApiError::bad("FIELD_INTEGRITY_EXCEPTION", "IsPasswordLocked can only be set to false")
            .with_fields(vec!["IsPasswordLocked".into()]));
    }
    apply_update(ctx, object, &id, &row, &mut values)
}

pub(crate) fn apply_update(
    ctx: &mut Ctx<'_>,
    object: usize,
    id: &str,
    row: &[Sql],
    values: &mut Vec<(usize, Sql)>,
) -> Result<(), ApiError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    // Required fields may not be cleared.
    let cleared: Vec<String> = values
        .iter()
        .filter(|(i, v)| o.fields[*i].required && matches!(v, Sql::Null))
        .map(|(i, _)| o.fields[*i].name.clone())
        .collect();
    if !cleared.is_empty() {
        return Err(ApiError::bad(
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
    }
    Ok(())
}

/// Deletes (moves to the recycle bin) a record.
pub(crate) fn delete(ctx: &mut Ctx<'_>, object: usize, id: &str) -> Result<(), ApiError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    let row = live_row(ctx.db, object, id)?;
    if !o.deletable {
        return Err(unsupported(o, "deleted"));
    }
    check_write_access(ctx, o)?;
    let id = normalize_id(id).unwrap_or_default();
    if o.name == "PermissionSetAssignment"
        && let Some(Sql::Text(ps)) = o.field_index("PermissionSetId").map(|i| &row[i])
        && let Some(psi) = schema.index_of("PermissionSet")
        && let Some(ps_row) = ctx.db.row(psi, ps)?
        && let Some(owned) = schema.objects[psi].field_index("IsOwnedByProfile")
        && matches!(ps_row[owned], Sql::Integer(1))
    {
        // UNCONFIRMED: the code and text of this refusal (wire reference §9).
        return Err(ApiError::bad(
            "DELETE_FAILED",
            "Cannot delete a permission set assignment that is owned by a profile. Change the user's profile instead.",
        ));
    }
    soft_delete(ctx, object, &id)?;
    ctx.changes.push(crate::events::Change {
        object,
        id: id.clone(),
        kind: crate::events::ChangeKind::Delete,
        values: Vec::new(),
    });
    // Deleting a parent takes its dependants with it, as Salesforce does for these.
    let cascades: &[(&str, &str)] = match o.name.as_str() {
        "Account" => &[("Contact", "AccountId"), ("Opportunity", "AccountId"), ("Case", "AccountId")],
        "ContentDocument" => &[("ContentVersion", "ContentDocumentId"), ("ContentDocumentLink", "ContentDocumentId")],
        _ => &[],
    };
    for (child, field) in cascades {
        if let Some(ci) = schema.index_of(child) {
            let c = &schema.objects[ci];
            let now = civil::format_datetime(ctx.now);
            ctx.db.conn.execute(
                &format!("UPDATE {} SET \"IsDeleted\" = 1, \"SystemModstamp\" = ?1 WHERE \"{field}\" = ?2", c.table()),
                [&now, &id],
            )?;
        }
    }
    Ok(())
}

fn soft_delete(ctx: &mut Ctx<'_>, object: usize, id: &str) -> Result<(), ApiError> {
    let o = &ctx.db.schema.objects[object];
    let now = civil::format_datetime(ctx.now);
    let sql = format!("UPDATE {} SET \"IsDeleted\" = 1, \"SystemModstamp\" = ?1 WHERE \"Id\" = ?2", o.table());
    ctx.db.conn.execute(&sql, [&now, id])?;
    Ok(())
}

/// A record as the REST API returns it: `attributes` then the fields (all, or `fields`).
pub(crate) fn retrieve(ctx: &Ctx<'_>, object: usize, id: &str, fields: Option<&str>) -> Result<Value, ApiError> {
    let row = live_row(ctx.db, object, id)?;
    record_json(ctx, object, &row, fields)
}

pub(crate) fn record_json(ctx: &Ctx<'_>, object: usize, row: &[Sql], fields: Option<&str>) -> Result<Value, ApiError> {
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
                out.push(o.field_index(name).ok_or_else(|| ApiError::invalid_field(&o.name, name))?);
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
) -> Result<Upserted, ApiError> {
    let schema = ctx.db.schema.clone();
    let o = &schema.objects[object];
    let not_ext = || {
        ApiError::new(
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
                return Err(ApiError::not_found());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_normalise_from_15_and_any_case_18() {
        assert_eq!(normalize_id("001D000000K0fXO").as_deref(), Some("001D000000K0fXOIAZ"));
        assert_eq!(normalize_id("001d000000k0fxoiaz").as_deref(), Some("001D000000K0fXOIAZ"));
        assert_eq!(normalize_id("001D000000K0fX"), None);
        assert_eq!(normalize_id("001D000000K0fX'"), None);
    }
}
