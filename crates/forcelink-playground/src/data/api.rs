//! The `/services/data/vXX.X/…` handler: authentication, daily API counting, body reading,
//! routing to the resources, and the answer's headers and encoding.

use std::io::{Read, Write};

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::invalid_session;
use super::records::{self, ApiError, Upserted};
pub(crate) use crate::call::{Caller, Version};
use crate::host::{Host, HostKind, bearer_token};
use crate::state::Shared;
use crate::store::Db;

/// Largest JSON (or multipart) request body: Salesforce accepts up to 50 MB for blob inserts.
const MAX_JSON_BODY: usize = 52 * 1024 * 1024;

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
    pub(crate) fn error(e: &ApiError) -> Self {
        Self::json(e.status, &Value::Array(vec![e.rest()]))
    }
    /// The body as JSON (for composite subresponses).
    pub(crate) fn body_value(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
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

fn limit_header(used: u64, max: u64) -> String {
    format!("api-usage={used}/{max}")
}

/// `/services/data/vXX.X/…`: every REST resource.
pub(crate) async fn api(State(pg): State<Shared>, Extension(host): Extension<Host>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Some(token) = bearer_token(&parts.headers).map(str::to_owned) else { return invalid_session() };
    if host.kind == HostKind::Login {
        return invalid_session();
    }
    let now = pg.now_ms();
    let (caller, max) = {
        let mut rt = pg.rt();
        let Some(user) = rt.live_access(&token, now).map(|t| t.user) else { return invalid_session() };
        rt.stats.api_requests += 1;
        let u = &rt.users[user];
        (Caller { id: u.id.clone(), admin: u.profile == "System Administrator" }, rt.settings.daily_api_requests)
    };
    let used = match pg.data.count(now, max) {
        Ok(n) => n,
        Err(n) => {
            let mut r = Reply::error(&ApiError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ));
            r.headers.push(("sforce-limit-info", limit_header(n, max)));
            return finish(r, &parts.headers);
        }
    };
    let path = parts.uri.path().to_owned();
    let Some((version, segments)) = split_path(&path) else {
        let mut r = Reply::error(&ApiError::not_found());
        r.headers.push(("sforce-limit-info", limit_header(used, max)));
        return finish(r, &parts.headers);
    };
    let limit = if path.contains("/jobs/ingest/") { MAX_UPLOAD_BYTES + 1024 } else { MAX_JSON_BODY };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let mut r = Reply::error(&ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_ENTITY_TOO_LARGE",
                format!("The request body exceeds the maximum size of {limit} bytes"),
            ));
            r.headers.push(("sforce-limit-info", limit_header(used, max)));
            return finish(r, &parts.headers);
        }
    };
    let gzipped = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let bytes = if gzipped {
        let mut out = Vec::new();
        let decoder = flate2::read::GzDecoder::new(&bytes[..]);
        if decoder.take(limit as u64).read_to_end(&mut out).is_err() {
            return finish(
                Reply::error(&ApiError::bad("JSON_PARSER_ERROR", "The gzip request body is invalid")),
                &parts.headers,
            );
        }
        bytes::Bytes::from(out)
    } else {
        bytes
    };
    let method = parts.method.clone();
    let query = parts.uri.query().map(str::to_owned);
    let headers = parts.headers.clone();
    let pg2 = pg.clone();
    let reply = tokio::task::spawn_blocking(move || {
        let mut db = pg2.data.store.lock();
        let mut ctx =
            Ctx { db: &mut db, caller, version, now, users_changed: false, update_only: false, changes: Vec::new() };
        let req =
            ApiRequest { method, segments, params: Params::parse(query.as_deref()), headers: &headers, body: &bytes };
        let reply = dispatch(&pg2, &mut ctx, &req);
        if ctx.users_changed {
            pg2.sync_users_from_db(ctx.db);
        }
        let changes = std::mem::take(&mut ctx.changes);
        crate::events::emit(&pg2.events, ctx.now, "rest", &ctx.version.text, &ctx.caller.id, changes);
        reply
    })
    .await
    .unwrap_or_else(|e| Reply::error(&ApiError::internal(e)));
    let mut reply = reply;
    reply.headers.push(("sforce-limit-info", limit_header(used, max)));
    finish(reply, &parts.headers)
}

/// Turns a reply into HTTP, gzip-encoding the body when the client accepts it.
pub(crate) fn finish(reply: Reply, request_headers: &HeaderMap) -> Response {
    let accepts_gzip = request_headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().split(';').next().is_some_and(|n| n.eq_ignore_ascii_case("gzip"))));
    let (body, gz) = if accepts_gzip && reply.body.len() > 256 {
        let mut enc =
            flate2::write::GzEncoder::new(Vec::with_capacity(reply.body.len() / 4), flate2::Compression::fast());
        match enc.write_all(&reply.body).and_then(|_| enc.finish()) {
            Ok(b) => (b, true),
            Err(_) => (reply.body, false),
        }
    } else {
        (reply.body, false)
    };
    let mut r = (reply.status, body).into_response();
    let h = r.headers_mut();
    if let Some(ct) = reply.content_type {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}

fn method_not_allowed(method: &Method, allowed: &str) -> Reply {
    Reply::error(&ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    ))
}

/// Parses a JSON object body.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::json_parser("No content to map due to end-of-input"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::json_parser("Cannot deserialize instance of object from a non-object value")),
        Err(e) => Err(ApiError::json_parser(format!("Unexpected character: {e}"))),
    }
}

fn object_of(ctx: &Ctx<'_>, name: &str) -> Result<usize, ApiError> {
    ctx.db.schema.index_of(name).ok_or_else(ApiError::not_found)
}

/// Routes one request to its resource.
pub(crate) fn dispatch(pg: &Shared, ctx: &mut Ctx<'_>, req: &ApiRequest<'_>) -> Reply {
    match route(pg, ctx, req) {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    }
}

fn route(pg: &Shared, ctx: &mut Ctx<'_>, req: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = &req.method;
    let v = ctx.version.text.clone();
    match segs.as_slice() {
        [] => {
            if m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            Ok(Reply::json(StatusCode::OK, &resources(pg, &v, &ctx.caller.id)))
        }
        ["sobjects"] => match *m {
            Method::GET if not_modified(pg, req.headers) => Ok(Reply::empty(StatusCode::NOT_MODIFIED)),
            Method::GET => Ok(Reply::json(StatusCode::OK, &ctx.db.schema.describe_global(&v))),
            _ => Ok(method_not_allowed(m, "GET,HEAD")),
        },
        ["sobjects", t] => {
            let oi = object_of(ctx, t)?;
            match *m {
                Method::GET => {
                    let o = &ctx.db.schema.objects[oi];
                    Ok(Reply::json(StatusCode::OK, &json!({"objectDescribe": o.global_entry(&v), "recentItems": []})))
                }
                Method::POST => {
                    let body = if ctx.db.schema.objects[oi].name == "ContentVersion" {
                        content_version_body(req)?
                    } else {
                        json_object(req.body)?
                    };
                    let id = records::create(ctx, oi, &body)?;
                    let mut r = Reply::json(StatusCode::CREATED, &json!({"id": id, "success": true, "errors": []}));
                    let name = ctx.db.schema.objects[oi].name.clone();
                    r.headers.push(("location", format!("/services/data/v{v}/sobjects/{name}/{id}")));
                    Ok(r)
                }
                _ => Ok(method_not_allowed(m, "GET,HEAD,POST")),
            }
        }
        ["sobjects", t, "describe"] => {
            let oi = object_of(ctx, t)?;
            match *m {
                Method::GET if not_modified(pg, req.headers) => Ok(Reply::empty(StatusCode::NOT_MODIFIED)),
                Method::GET => Ok(Reply::json(
                    StatusCode::OK,
                    &ctx.db.schema.objects[oi].describe(&ctx.db.schema, &v, &pg.instance_url),
                )),
                _ => Ok(method_not_allowed(m, "GET,HEAD")),
            }
        }
        ["sobjects", t, id] => {
            let oi = object_of(ctx, t)?;
            match *m {
                Method::GET => {
                    let rec = records::retrieve(ctx, oi, id, req.params.get("fields"))?;
                    Ok(Reply::json(StatusCode::OK, &rec))
                }
                Method::PATCH => {
                    let body = json_object(req.body)?;
                    records::update(ctx, oi, id, &body)?;
                    Ok(Reply::empty(StatusCode::NO_CONTENT))
                }
                Method::DELETE => {
                    records::delete(ctx, oi, id)?;
                    Ok(Reply::empty(StatusCode::NO_CONTENT))
                }
                Method::POST if id.eq_ignore_ascii_case("Id") => {
                    // API ≥ 37.0: POST …/{Type}/Id creates (Id as the external id, no value).
                    let body = json_object(req.body)?;
                    let new = records::create(ctx, oi, &body)?;
                    Ok(Reply::json(
                        StatusCode::CREATED,
                        &json!({"id": new, "success": true, "errors": [], "created": true}),
                    ))
                }
                _ => Ok(method_not_allowed(m, "GET,PATCH,HEAD,DELETE")),
            }
        }
        ["sobjects", t, id, sub] if is_record_of(ctx, t, id) => {
            let oi = object_of(ctx, t)?;
            let name = ctx.db.schema.objects[oi].name.clone();
            match (name.as_str(), sub.to_ascii_lowercase().as_str()) {
                ("User", "password") => super::useradmin::password(pg, ctx, m, id, req.body),
                (_, _) => blob(ctx, oi, id, sub),
            }
        }
        ["sobjects", t, field, value] => {
            let oi = object_of(ctx, t)?;
            external_id_resource(ctx, req, oi, field, value)
        }
        ["query"] | ["queryAll"] => {
            if m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            let q = req
                .params
                .get("q")
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| ApiError::bad("MALFORMED_QUERY", "A query string has to be specified"))?;
            let batch = super::query::batch_size(req.headers);
            super::query::run(ctx, &pg.data.locators, q, segs[0] == "queryAll", batch)
        }
        ["query", locator] | ["queryAll", locator] => {
            if m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            super::query::more(ctx, &pg.data.locators, locator)
        }
        ["search"] => {
            let q = req.params.get("q").unwrap_or("");
            super::query::search(ctx, q)
        }
        ["composite"] if m == Method::POST => super::composite::composite(pg, ctx, req.body),
        ["composite", "batch"] if m == Method::POST => super::composite::batch(pg, ctx, req.body),
        ["composite", "tree", t] if m == Method::POST => super::composite::tree(ctx, t, req.body),
        ["composite", "sobjects"] => super::composite::collections(ctx, m, &req.params, req.body),
        ["composite", "sobjects", t] => super::composite::retrieve_many(ctx, t, m, &req.params, req.body),
        ["composite", "sobjects", t, field] if m == Method::PATCH => {
            super::composite::upsert_many(ctx, t, field, req.body)
        }
        ["composite"] | ["composite", "batch"] | ["composite", "tree", _] => Ok(method_not_allowed(m, "POST")),
        ["jobs", rest @ ..] => super::bulk::route(pg, ctx, m, rest, &req.params, req.headers, req.body),
        ["limits"] => Ok(Reply::json(StatusCode::OK, &limits(pg, ctx))),
        ["limits", "recordCount"] => {
            let names = req.params.get("sObjects").unwrap_or("");
            let mut out = Vec::new();
            for name in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if let Some(oi) = ctx.db.schema.index_of(name) {
                    let n = ctx.db.count(oi, false)?;
                    out.push(json!({"count": n, "name": ctx.db.schema.objects[oi].name}));
                }
            }
            Ok(Reply::json(StatusCode::OK, &json!({"sObjects": out})))
        }
        _ => Err(ApiError::not_found()),
    }
}

/// `If-Modified-Since` on describeGlobal and describe (wire reference §6.2, §7: 304): true
/// when the date is at or after the schema's last change. HTTP dates have whole seconds, so the
/// change time is rounded down to its second.
fn not_modified(pg: &Shared, headers: &HeaderMap) -> bool {
    let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    let Ok(since) = since.duration_since(std::time::UNIX_EPOCH) else { return false };
    since.as_millis() as i64 >= pg.data.schema_modified_ms.div_euclid(1000) * 1000
}

/// True when `id` looks like a record id of object `t` (so the next segment is a sub-resource,
/// not an external-id value).
fn is_record_of(ctx: &Ctx<'_>, t: &str, id: &str) -> bool {
    let Some(o) = ctx.db.schema.get(t) else { return false };
    records::normalize_id(id).is_some_and(|n| n.starts_with(&o.key_prefix))
}

fn blob(ctx: &Ctx<'_>, oi: usize, id: &str, field: &str) -> Result<Reply, ApiError> {
    let o = &ctx.db.schema.objects[oi];
    let fi = o.field_index(field).filter(|&i| o.fields[i].ftype == crate::schema::FieldType::Base64);
    let Some(fi) = fi else { return Err(ApiError::not_found()) };
    let row = records::live_row(ctx.db, oi, id)?;
    match &row[fi] {
        Sql::Blob(b) => Ok(Reply {
            status: StatusCode::OK,
            body: b.clone(),
            content_type: Some("application/octetstream"),
            headers: Vec::new(),
        }),
        _ => Err(ApiError::not_found()),
    }
}

fn external_id_resource(
    ctx: &mut Ctx<'_>,
    req: &ApiRequest<'_>,
    oi: usize,
    field: &str,
    value: &str,
) -> Result<Reply, ApiError> {
    let v = ctx.version.text.clone();
    let name = ctx.db.schema.objects[oi].name.clone();
    let not_ext = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
        )
    };
    match req.method {
        Method::PATCH | Method::POST => {
            let body = json_object(req.body)?;
            ctx.update_only = req.params.get("updateOnly").is_some_and(|s| s.eq_ignore_ascii_case("true"));
            match records::upsert(ctx, oi, field, value, &body)? {
                Upserted::Created(id) => {
                    let mut r = Reply::json(
                        StatusCode::CREATED,
                        &if ctx.version.major >= 46 {
                            json!({"id": id, "success": true, "errors": [], "created": true})
                        } else {
                            json!({"id": id, "success": true, "errors": []})
                        },
                    );
                    r.headers.push(("location", format!("/services/data/v{v}/sobjects/{name}/{id}")));
                    Ok(r)
                }
                // API ≥ 46.0 answers 200 with a body; older versions 204 (wire reference §6.3).
                Upserted::Updated(id) if ctx.version.major >= 46 => {
                    Ok(Reply::json(StatusCode::OK, &json!({"id": id, "success": true, "errors": [], "created": false})))
                }
                Upserted::Updated(_) => Ok(Reply::empty(StatusCode::NO_CONTENT)),
                Upserted::Multiple(ids) => {
                    let urls: Vec<String> =
                        ids.iter().map(|id| format!("/services/data/v{v}/sobjects/{name}/{id}")).collect();
                    Ok(Reply::json(StatusCode::MULTIPLE_CHOICES, &json!(urls)))
                }
            }
        }
        Method::GET | Method::DELETE => {
            let o = &ctx.db.schema.objects[oi];
            let fi = o.field_index(field).filter(|&i| o.fields[i].id_lookup()).ok_or_else(not_ext)?;
            let key = records::to_sql(&o.fields[fi], &json!(value)).map_err(|_| ApiError::not_found())?;
            let ids = ctx.db.ids_where(oi, &o.fields[fi].name.clone(), &key, 201)?;
            match ids.len() {
                0 => Err(ApiError::not_found()),
                1 if req.method == Method::GET => {
                    Ok(Reply::json(StatusCode::OK, &records::retrieve(ctx, oi, &ids[0], req.params.get("fields"))?))
                }
                1 => {
                    records::delete(ctx, oi, &ids[0])?;
                    Ok(Reply::empty(StatusCode::NO_CONTENT))
                }
                _ => {
                    let urls: Vec<String> =
                        ids.iter().map(|id| format!("/services/data/v{v}/sobjects/{name}/{id}")).collect();
                    Ok(Reply::json(StatusCode::MULTIPLE_CHOICES, &json!(urls)))
                }
            }
        }
        _ => Ok(method_not_allowed(&req.method, "GET,PATCH,HEAD,DELETE")),
    }
}

/// A ContentVersion insert body: JSON, or multipart with an `entity_content` JSON part and a
/// binary `VersionData` part.
fn content_version_body(req: &ApiRequest<'_>) -> Result<Map<String, Value>, ApiError> {
    let raw_ct = req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !raw_ct.to_ascii_lowercase().starts_with("multipart/") {
        return json_object(req.body);
    }
    let bad = |m: &str| ApiError::bad("MALFORMED_REQUEST", m.to_owned());
    let boundary = multer::parse_boundary(raw_ct).map_err(|_| bad("The multipart request has no boundary"))?;
    let body = bytes::Bytes::copy_from_slice(req.body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    type Parts = (Option<Map<String, Value>>, Option<Vec<u8>>);
    let parsed: Result<Parts, ApiError> = futures_util::FutureExt::now_or_never(async {
        let mut entity = None;
        let mut data = None;
        while let Some(field) = mp.next_field().await.map_err(|_| bad("Malformed multipart body"))? {
            let name = field.name().unwrap_or("").to_owned();
            let bytes = field.bytes().await.map_err(|_| bad("Malformed multipart body"))?;
            if name == "entity_content" || name == "entity_document" || name == "json" {
                entity = Some(json_object(&bytes)?);
            } else {
                data = Some(bytes.to_vec());
            }
        }
        Ok((entity, data))
    })
    .unwrap_or_else(|| Err(bad("Malformed multipart body")));
    let (entity, data) = parsed?;
    let mut entity = entity.ok_or_else(|| bad("The multipart request has no entity_content part"))?;
    if let Some(d) = data {
        use base64::Engine;
        entity.insert("VersionData".into(), json!(base64::engine::general_purpose::STANDARD.encode(d)));
    }
    Ok(entity)
}

/// `GET /services/data/vXX.X/`: the resources of this version.
fn resources(pg: &Shared, v: &str, user_id: &str) -> Value {
    let mut m = Map::new();
    for name in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "analytics",
        "search",
        "composite",
        "parameterizedSearch",
        "theme",
        "recent",
        "licensing",
        "limits",
        "process",
        "query",
        "jobs",
        "sobjects",
        "actions",
        "support",
        "ui-api",
    ] {
        m.insert(name.into(), json!(format!("/services/data/v{v}/{name}")));
    }
    m.insert("identity".into(), json!(pg.identity_url(&pg.login_url, user_id)));
    Value::Object(m)
}

fn limits(pg: &Shared, ctx: &Ctx<'_>) -> Value {
    let max = pg.rt().settings.daily_api_requests;
    let used = pg.data.used(ctx.now);
    let lim = |max: u64, remaining: u64| json!({"Max": max, "Remaining": remaining});
    let mut m = Map::new();
    // The full set a developer org answers (rest/limits_full in the shared fixtures), in its
    // order; only the daily API requests are counted.
    for (k, max, rem) in [
        ("ActiveScratchOrgs", 3, 3),
        ("AnalyticsExternalDataSizeMB", 40_960, 40_960),
        ("ConcurrentAsyncGetReportInstances", 200, 200),
        ("ConcurrentEinsteinDataInsightsStoryCreation", 5, 5),
        ("ConcurrentEinsteinDiscoveryStoryCreation", 2, 2),
        ("ConcurrentSyncReportRuns", 20, 20),
        ("DailyAnalyticsDataflowJobExecutions", 60, 60),
        ("DailyAnalyticsUploadedFilesSizeMB", 51_200, 51_200),
        ("DailyApiRequests", max, max.saturating_sub(used)),
        ("DailyAsyncApexExecutions", 250_000, 250_000),
        ("DailyAsyncApexTests", 540, 540),
        ("DailyBulkApiBatches", 15_000, 15_000),
        ("DailyBulkV2QueryFileStorageMB", 976_562, 976_562),
        ("DailyBulkV2QueryJobs", 10_000, 10_000),
        ("DailyDeliveredPlatformEvents", 10_000, 10_000),
        ("DailyDurableGenericStreamingApiEvents", 10_000, 10_000),
        ("DailyDurableStreamingApiEvents", 10_000, 10_000),
        ("DailyEinsteinDataInsightsStoryCreation", 1_000, 1_000),
        ("DailyEinsteinDiscoveryOptimizationJobRuns", 25, 25),
        ("DailyEinsteinDiscoveryPredictAPICalls", 50_000, 50_000),
        ("DailyEinsteinDiscoveryPredictionsByCDC", 500_000, 500_000),
        ("DailyEinsteinDiscoveryStoryCreation", 100, 100),
        ("DailyFunctionsApiCallLimit", 50_000, 50_000),
        ("DailyGenericStreamingApiEvents", 10_000, 10_000),
        ("DailyScratchOrgs", 6, 6),
        ("DailyStandardVolumePlatformEvents", 10_000, 10_000),
        ("DailyStreamingApiEvents", 10_000, 10_000),
        ("DailyWorkflowEmails", 405, 405),
        ("DataStorageMB", 5, 5),
        ("DurableStreamingApiConcurrentClients", 20, 20),
        ("FileStorageMB", 20, 20),
        ("HourlyAsyncReportRuns", 1_200, 1_200),
        ("HourlyDashboardRefreshes", 200, 200),
        ("HourlyDashboardResults", 5_000, 5_000),
        ("HourlyDashboardStatuses", 999_999_999, 999_999_999),
        ("HourlyLongTermIdMapping", 100_000, 100_000),
        ("HourlyManagedContentPublicRequests", 50_000, 50_000),
        ("HourlyODataCallout", 1_000, 1_000),
        ("HourlyPublishedPlatformEvents", 50_000, 50_000),
        ("HourlyPublishedStandardVolumePlatformEvents", 1_000, 1_000),
        ("HourlyShortTermIdMapping", 100_000, 100_000),
        ("HourlySyncReportRuns", 500, 500),
        ("HourlyTimeBasedWorkflow", 50, 50),
        ("MassEmail", 10, 10),
        ("MonthlyEinsteinDiscoveryStoryCreation", 500, 500),
        ("Package2VersionCreates", 6, 6),
        ("Package2VersionCreatesWithoutValidation", 500, 500),
        ("PrivateConnectOutboundCalloutHourlyLimitMB", 0, 0),
        ("PublishCallbackUsageInApex", 5_242_880, 5_242_880),
        ("SingleEmail", 15, 15),
        ("StreamingApiConcurrentClients", 20, 20),
    ] {
        m.insert(k.into(), lim(max, rem));
    }
    let mut perm = lim(1500, 1500);
    perm["CreateCustom"] = lim(1000, 1000);
    m.insert("PermissionSets".into(), perm);
    Value::Object(m)
}
