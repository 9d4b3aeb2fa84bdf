//! What every resource works with: the request as the resources see it ([`ApiRequest`], also
//! built for composite subrequests), the context held while the database is locked ([`Ctx`]),
//! the answer before it becomes HTTP ([`Reply`]) and the Salesforce error ([`SfError`]).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::call::{Caller, Version};
use crate::state::Shared;
use crate::store::Db;

/// Largest Bulk 2.0 upload: Salesforce accepts 150 MB per `PUT …/batches`.
pub(crate) const MAX_UPLOAD_BYTES: usize = 150 * 1024 * 1024;

/// Everything a resource needs while the database is locked.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) db: &'a mut Db,
    pub(crate) caller: Caller,
    pub(crate) version: Version,
    pub(crate) now: i64,
    /// A User or UserLogin row changed: logins must follow.
    pub(crate) users_changed: bool,
    /// `?updateOnly=true` on an upsert.
    pub(crate) update_only: bool,
    /// Record changes so far, published as change events when the call is done.
    pub(crate) changes: Vec<crate::events::Change>,
    /// `Sforce-Duplicate-Rule-Header: allowSave=true`: duplicates of "allow" rules are saved.
    pub(crate) allow_duplicates: bool,
}

impl Ctx<'_> {
    /// Runs `f` inside a savepoint: everything it wrote is undone when it returns `Err`.
    pub(crate) fn db_atomic<T, E>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E> {
        let _ = self.db.conn.execute_batch("SAVEPOINT pg_atomic");
        let saved = self.db.next_row_mut().clone();
        let users_changed = self.users_changed;
        let changes = self.changes.len();
        let out = f(self);
        match &out {
            Ok(_) => {
                let _ = self.db.conn.execute_batch("RELEASE pg_atomic");
            }
            Err(_) => {
                let _ = self.db.conn.execute_batch("ROLLBACK TO pg_atomic; RELEASE pg_atomic");
                *self.db.next_row_mut() = saved;
                self.users_changed = users_changed;
                self.changes.truncate(changes);
            }
        }
        out
    }
}

/// An answer before it becomes HTTP.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

pub(crate) const JSON: &str = "application/json;charset=UTF-8";

impl Reply {
    pub(crate) fn json(status: StatusCode, v: &Value) -> Self {
        Self { status, body: serde_json::to_vec(v).unwrap_or_default(), content_type: Some(JSON), headers: Vec::new() }
    }
    pub(crate) fn raw_json(status: StatusCode, body: Vec<u8>) -> Self {
        Self { status, body, content_type: Some(JSON), headers: Vec::new() }
    }
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self { status, body: Vec::new(), content_type: None, headers: Vec::new() }
    }
    pub(crate) fn error(e: &SfError) -> Self {
        Self::json(e.status, &Value::Array(e.rest()))
    }
    /// The body as JSON (for composite subresponses).
    pub(crate) fn body_value(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
    }
}

impl From<SfError> for Reply {
    fn from(e: SfError) -> Self {
        Self::error(&e)
    }
}

/// Query-string parameters (`+` and `%20` both mean a space).
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(pub(crate) Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(q: Option<&str>) -> Self {
        Self(q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default())
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request as the resources see it (also built for composite subrequests).
#[derive(Debug)]
pub(crate) struct ApiRequest<'a> {
    pub(crate) method: Method,
    pub(crate) segments: Vec<String>,
    pub(crate) params: Params,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// Splits `/services/data/v58.0/sobjects/Account/` into version and decoded segments.
pub(crate) fn split_path(path: &str) -> Option<(Version, Vec<String>)> {
    let rest = path.strip_prefix("/services/data/")?;
    let mut parts = rest.split('/').filter(|s| !s.is_empty());
    let version = Version::parse(parts.next()?)?;
    Some((version, parts.map(percent_decode).collect()))
}

/// Parses a JSON object body.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, SfError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SfError::json_parser("No content to map due to end-of-input"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SfError::json_parser("Cannot deserialize instance of object from a non-object value")),
        Err(e) => Err(SfError::json_parser(format!("Unexpected character: {e}"))),
    }
}

/// A Salesforce REST error, as the org answers it (not a failure of the playground itself):
/// top-level REST answers carry it as `{message, errorCode, fields}`, SaveResults and tree
/// results as `{statusCode, message, fields}` (wire reference §6.5).
#[derive(Debug, Clone)]
pub(crate) struct SfError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fields: Option<Vec<String>>,
    /// Where in a SOQL query the problem is (byte offset), for the query-error layout.
    pub(crate) pos: Option<usize>,
    /// Further errors of the same answer (several validation rules failing at once).
    pub(crate) more: Vec<SfError>,
    /// `duplicateResult` of a `DUPLICATES_DETECTED` error.
    pub(crate) duplicate: Option<Box<Value>>,
}

impl SfError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            fields: None,
            pos: None,
            more: Vec::new(),
            duplicate: None,
        }
    }
    /// Marks the query position the error is about (kept when one is already set).
    pub(crate) fn at(mut self, pos: usize) -> Self {
        self.pos.get_or_insert(pos);
        self
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

    /// This error followed by `more` (each without further errors).
    fn all(&self) -> impl Iterator<Item = &SfError> {
        std::iter::once(self).chain(self.more.iter())
    }

    /// The REST envelope element. A duplicate error carries its `duplicateResult` under the
    /// key Salesforce's REST API really sends, `duplicateResut` (sic: the misspelling is in
    /// answers pasted from real orgs, and clients look for it), and no `fields`.
    fn rest_one(&self) -> Value {
        let mut m = Map::new();
        if let Some(d) = &self.duplicate {
            m.insert("duplicateResut".into(), (**d).clone());
            m.insert("errorCode".into(), json!(self.code));
            m.insert("message".into(), json!(self.message));
            return Value::Object(m);
        }
        m.insert("message".into(), json!(self.message));
        m.insert("errorCode".into(), json!(self.code));
        if let Some(f) = &self.fields {
            m.insert("fields".into(), json!(f));
        }
        Value::Object(m)
    }
    /// The REST envelope: one element per error.
    pub(crate) fn rest(&self) -> Vec<Value> {
        self.all().map(SfError::rest_one).collect()
    }
    /// The SaveResult / tree `errors` list: one element per error. Collections answers in
    /// Salesforce's documentation carry no `duplicateResult`.
    pub(crate) fn save(&self) -> Vec<Value> {
        self.all()
            .map(
                |e| json!({"statusCode": e.code, "message": e.message, "fields": e.fields.clone().unwrap_or_default()}),
            )
            .collect()
    }
    /// The `sf__Error` cell of a Bulk API 2.0 failed result: `CODE:message:fields --` per
    /// error, several joined by a space (UNCONFIRMED: how Salesforce joins several errors).
    pub(crate) fn bulk(&self) -> String {
        self.all()
            .map(|e| format!("{}:{}:{} --", e.code, e.message, e.fields.clone().unwrap_or_default().join(",")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl From<rusqlite::Error> for SfError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(e)
    }
}

/// Routes one request (or composite subrequest) to its resource. The router passes itself to
/// the composite resources as this, so they can run subrequests without naming it.
pub(crate) type Dispatch = fn(&Shared, &mut Ctx<'_>, &ApiRequest<'_>) -> Reply;
