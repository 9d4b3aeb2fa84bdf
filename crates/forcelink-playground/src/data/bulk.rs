//! Bulk API 2.0 (wire reference §8): ingest jobs (create, `PUT …/batches` CSV, `UploadComplete`,
//! processing on a background thread in chunks, successful/failed/unprocessed results, abort,
//! delete) and query jobs (create, state, CSV result pages with `Sforce-Locator`,
//! `maxRecords`, `Sforce-NumberOfRecords`). Jobs live in memory; their records in the store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::{Map, Value, json};

use super::query::{self, Compiled};
use super::records::{self, Upserted};
use super::request::SfError;
use super::request::{Ctx, MAX_UPLOAD_BYTES, Params, Reply, json_object};
use crate::civil;
use crate::schema::FieldType;
use crate::state::Shared;
use crate::store::jobs::{Job, Jobs, Kind};

/// Rows processed per database lock, so API requests interleave with a large job.
const CHUNK: usize = 2000;
/// Result rows per query-result page when `maxRecords` is not given.
/// UNCONFIRMED: Salesforce sizes default pages by bytes; 50,000 rows is a plausible stand-in.
const DEFAULT_MAX_RECORDS: u64 = 50_000;

fn delimiter_byte(name: &str) -> Option<u8> {
    Some(match name {
        "COMMA" => b',',
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => return None,
    })
}

fn job_info(j: &Job) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(j.id));
    m.insert("operation".into(), json!(j.operation));
    m.insert("object".into(), json!(j.object));
    m.insert("createdById".into(), json!(j.created_by));
    m.insert("createdDate".into(), json!(civil::format_datetime(j.created_ms)));
    m.insert("systemModstamp".into(), json!(civil::format_datetime(j.modstamp_ms)));
    m.insert("state".into(), json!(j.state));
    if let Some(e) = &j.external_id {
        m.insert("externalIdFieldName".into(), json!(e));
    }
    m.insert("concurrencyMode".into(), json!("Parallel"));
    m.insert("contentType".into(), json!("CSV"));
    m.insert("apiVersion".into(), json!(f64::from(j.version.major)));
    if j.kind == Kind::Ingest {
        m.insert("contentUrl".into(), json!(format!("services/data/v{}/jobs/ingest/{}/batches", j.version.text, j.id)));
    }
    m.insert("jobType".into(), json!(if j.kind == Kind::Ingest { "V2Ingest" } else { "V2Query" }));
    m.insert("lineEnding".into(), json!(j.line_ending));
    m.insert("columnDelimiter".into(), json!(j.delimiter));
    if !matches!(j.state.as_str(), "Open" | "UploadComplete") {
        m.insert("numberRecordsProcessed".into(), json!(j.processed));
        if j.kind == Kind::Ingest {
            m.insert("numberRecordsFailed".into(), json!(j.failed));
        }
        m.insert("retries".into(), json!(0));
        m.insert("totalProcessingTime".into(), json!(j.processing_ms));
        m.insert("apiActiveProcessingTime".into(), json!(j.processing_ms));
        m.insert("apexProcessingTime".into(), json!(0));
    }
    if let Some(e) = &j.error_message {
        m.insert("errorMessage".into(), json!(e));
    }
    Value::Object(m)
}

fn jobs(pg: &Shared) -> parking_lot::MutexGuard<'_, Jobs> {
    pg.data.bulk.lock()
}

fn not_found() -> SfError {
    SfError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

fn bad_state(state: &str) -> SfError {
    SfError::new(
        StatusCode::CONFLICT,
        "INVALIDJOBSTATE",
        format!("This job is in state {state} and cannot perform this operation"),
    )
}

/// Routes `jobs/…`.
pub(crate) fn route(
    pg: &Shared,
    ctx: &mut Ctx<'_>,
    method: &Method,
    segs: &[&str],
    params: &Params,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Reply, SfError> {
    let _ = headers;
    match (segs, method) {
        (["ingest"], &Method::POST) => create(pg, ctx, Kind::Ingest, body),
        (["query"], &Method::POST) => create(pg, ctx, Kind::Query, body),
        ([kind @ ("ingest" | "query")], &Method::GET) => {
            let k = if *kind == "ingest" { Kind::Ingest } else { Kind::Query };
            let j = jobs(pg);
            let mut list: Vec<&Job> = j.jobs.values().filter(|x| x.kind == k).collect();
            list.sort_by_key(|x| x.created_ms);
            let records: Vec<Value> = list.into_iter().map(job_info).collect();
            Ok(Reply::json(StatusCode::OK, &json!({"done": true, "records": records, "nextRecordsUrl": null})))
        }
        ([_, id], &Method::GET) => {
            let j = jobs(pg);
            let job = j.jobs.get(*id).ok_or_else(not_found)?;
            Ok(Reply::json(StatusCode::OK, &job_info(job)))
        }
        ([_, id], &Method::PATCH) => change_state(pg, ctx, id, body),
        ([_, id], &Method::DELETE) => {
            let mut j = jobs(pg);
            let job = j.jobs.get(*id).ok_or_else(not_found)?;
            if matches!(job.state.as_str(), "InProgress" | "UploadComplete") {
                return Err(bad_state(&job.state));
            }
            j.jobs.remove(*id);
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        (["ingest", id, "batches"], &Method::PUT) => upload(pg, id, body),
        (["ingest", id, which @ ("successfulResults" | "failedResults" | "unprocessedrecords")], &Method::GET) => {
            ingest_results(pg, id, which)
        }
        (["query", id, "results"], &Method::GET) => query_results(pg, ctx, id, params),
        _ => Err(not_found()),
    }
}

fn create(pg: &Shared, ctx: &mut Ctx<'_>, kind: Kind, body: &[u8]) -> Result<Reply, SfError> {
    let b = json_object(body).map_err(|e| SfError::bad("API_ERROR", e.message))?;
    let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
    for k in ["object", "operation", "query", "externalIdFieldName", "contentType", "columnDelimiter", "lineEnding"] {
        if b.get(k).is_some_and(|v| !v.is_string()) {
            return Err(SfError::bad("API_ERROR", format!("Value does not match expected type for {k}")));
        }
    }
    let delimiter = text("columnDelimiter").unwrap_or_else(|| "COMMA".into());
    if delimiter_byte(&delimiter).is_none() {
        return Err(SfError::bad("API_ERROR", format!("Invalid column delimiter: {delimiter}")));
    }
    let line_ending = text("lineEnding").unwrap_or_else(|| "LF".into());
    if line_ending != "LF" && line_ending != "CRLF" {
        return Err(SfError::bad("API_ERROR", format!("Invalid line ending: {line_ending}")));
    }
    if text("contentType").is_some_and(|c| c != "CSV") {
        return Err(SfError::bad("API_ERROR", "Only CSV content is supported"));
    }
    let (object, operation, external_id, plan, state) = match kind {
        Kind::Ingest => {
            let object = text("object").ok_or_else(|| SfError::bad("API_ERROR", "object is required"))?;
            let o = ctx.db.schema.get(&object).ok_or_else(|| {
                SfError::bad("INVALIDENTITY", format!("Entity '{object}' is not supported by the Bulk API."))
            })?;
            let operation = text("operation").ok_or_else(|| SfError::bad("API_ERROR", "operation is required"))?;
            if !["insert", "update", "upsert", "delete", "hardDelete"].contains(&operation.as_str()) {
                return Err(SfError::bad("API_ERROR", format!("Invalid operation: {operation}")));
            }
            let ext = text("externalIdFieldName");
            if operation == "upsert" {
                let e = ext
                    .clone()
                    .ok_or_else(|| SfError::bad("API_ERROR", "externalIdFieldName is required for upsert"))?;
                if !o.field(&e).is_some_and(|f| f.external_id || f.ftype == FieldType::Id || f.id_lookup()) {
                    return Err(SfError::bad("INVALIDJOB", format!("Invalid external id field: {e}")));
                }
            }
            (o.name.clone(), operation, ext, None, "Open")
        }
        Kind::Query => {
            let operation = text("operation").unwrap_or_else(|| "query".into());
            if operation != "query" && operation != "queryAll" {
                return Err(SfError::bad("API_ERROR", format!("Invalid operation: {operation}")));
            }
            let q = text("query").ok_or_else(|| SfError::bad("API_ERROR", "query is required"))?;
            let plan = match query::compile(&ctx.db.schema, &q, operation == "queryAll", ctx.now)? {
                Compiled::Rows(p) if !p.has_children() => p,
                _ => {
                    return Err(SfError::bad(
                        "API_ERROR",
                        "Bulk API 2.0 query jobs support neither aggregate functions nor child relationship subqueries",
                    ));
                }
            };
            (plan.object().to_owned(), operation, None, Some(Arc::new(plan)), "UploadComplete")
        }
    };
    let id = {
        let mut j = jobs(pg);
        j.next += 1;
        crate::ids::mint("750", j.next)
    };
    let mut job = Job {
        id: id.clone(),
        kind,
        object,
        operation,
        external_id,
        state: state.into(),
        created_by: ctx.caller.id.clone(),
        created_ms: ctx.now,
        modstamp_ms: ctx.now,
        delimiter,
        line_ending,
        version: ctx.version.clone(),
        caller: ctx.caller.clone(),
        data: Vec::new(),
        header: None,
        processed: 0,
        failed: 0,
        success_rows: Vec::new(),
        failed_rows: Vec::new(),
        unprocessed_rows: Vec::new(),
        error_message: None,
        processing_ms: 0,
        plan,
        total: 0,
        boundaries: HashMap::new(),
    };
    // Creation answers UploadComplete for a query job, as Salesforce does; the count runs
    // right away (under the lock this request holds), so the job is complete at once.
    let info = job_info(&job);
    if kind == Kind::Query {
        pg.data.consume(ctx.now, "DailyBulkV2QueryJobs", 1);
        if let Some(p) = &job.plan {
            job.total = p.total(ctx.db)?;
        }
        job.processed = job.total;
        job.processing_ms = 1;
        job.state = "JobComplete".into();
    }
    jobs(pg).jobs.insert(id, job);
    Ok(Reply::json(StatusCode::OK, &info))
}

fn upload(pg: &Shared, id: &str, body: &[u8]) -> Result<Reply, SfError> {
    let mut j = jobs(pg);
    let job = j.jobs.get_mut(id).ok_or_else(not_found)?;
    if job.kind != Kind::Ingest {
        return Err(not_found());
    }
    if job.state != "Open" {
        return Err(bad_state(&job.state));
    }
    if job.data.len() + body.len() > MAX_UPLOAD_BYTES {
        return Err(SfError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EXCEEDED_QUOTA",
            "The uploaded data exceeds the 150 MB limit per job",
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SfError::bad("API_ERROR", "The request body is empty"));
    }
    if job.data.is_empty() {
        job.data.extend_from_slice(body);
    } else {
        // A later upload repeats the header row; keep the data only.
        let start = body.iter().position(|&b| b == b'\n').map_or(body.len(), |i| i + 1);
        if !job.data.ends_with(b"\n") {
            job.data.push(b'\n');
        }
        job.data.extend_from_slice(&body[start..]);
    }
    Ok(Reply::empty(StatusCode::CREATED))
}

fn change_state(pg: &Shared, ctx: &mut Ctx<'_>, id: &str, body: &[u8]) -> Result<Reply, SfError> {
    let b = json_object(body).map_err(|e| SfError::bad("API_ERROR", e.message))?;
    let want = b.get("state").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut j = jobs(pg);
    let job = j.jobs.get_mut(id).ok_or_else(not_found)?;
    match want.as_str() {
        "UploadComplete" if job.kind == Kind::Ingest => {
            if job.state != "Open" {
                return Err(bad_state(&job.state));
            }
            job.state = "UploadComplete".into();
            job.modstamp_ms = ctx.now;
            let info = job_info(job);
            drop(j);
            let (pg2, id2) = (pg.clone(), id.to_owned());
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(move || process(&pg2, &id2));
                }
                Err(_) => process(&pg2, &id2),
            }
            Ok(Reply::json(StatusCode::OK, &info))
        }
        "Aborted" => {
            if matches!(job.state.as_str(), "JobComplete" | "Failed" | "Aborted") {
                return Err(bad_state(&job.state));
            }
            job.state = "Aborted".into();
            job.modstamp_ms = ctx.now;
            Ok(Reply::json(StatusCode::OK, &job_info(job)))
        }
        other => Err(SfError::bad("INVALIDJOBSTATE", format!("Invalid state transition to {other}"))),
    }
}

/// CSV text of a cell as the JSON value the record code expects.
fn cell_value(ftype: FieldType, s: &str) -> Value {
    if s == "#N/A" {
        return Value::Null;
    }
    match ftype {
        FieldType::Boolean => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => json!(true),
            "false" | "0" | "no" => json!(false),
            _ => json!(s),
        },
        FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
            s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or_else(|| json!(s), Value::Number)
        }
        _ => json!(s),
    }
}

/// Processes an ingest job in chunks (a background thread).
fn process(pg: &Shared, id: &str) {
    let (data, delimiter, object, operation, external_id, caller, version) = {
        let mut j = jobs(pg);
        let Some(job) = j.jobs.get_mut(id) else { return };
        if job.state != "UploadComplete" {
            return;
        }
        job.state = "InProgress".into();
        job.modstamp_ms = pg.now_ms();
        (
            std::mem::take(&mut job.data),
            delimiter_byte(&job.delimiter).unwrap_or(b','),
            job.object.clone(),
            job.operation.clone(),
            job.external_id.clone(),
            job.caller.clone(),
            job.version.clone(),
        )
    };
    let started = pg.now_ms();
    let fail = |message: String| {
        let mut j = jobs(pg);
        if let Some(job) = j.jobs.get_mut(id) {
            job.state = "Failed".into();
            job.error_message = Some(message);
            job.modstamp_ms = pg.now_ms();
        }
    };
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(false).from_reader(&data[..]);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Err(e) => return fail(format!("InvalidBatch : Failed to parse CSV header: {e}")),
    };
    let schema = pg.data.store.schema.clone();
    let Some(oi) = schema.index_of(&object) else { return fail(format!("InvalidBatch : Unknown object {object}")) };
    let o = &schema.objects[oi];
    let mut columns = Vec::new();
    for h in &header {
        match o.field_index(h) {
            Some(fi) => columns.push(fi),
            None => return fail(format!("InvalidBatch : Field name not found : {h}")),
        }
    }
    let id_col = header.iter().position(|h| h.eq_ignore_ascii_case("Id"));
    if matches!(operation.as_str(), "update" | "delete" | "hardDelete") && id_col.is_none() {
        return fail("InvalidBatch : Field name not found : Id".into());
    }
    let ext_col = external_id.as_ref().and_then(|e| header.iter().position(|h| h.eq_ignore_ascii_case(e)));
    if operation == "upsert" && ext_col.is_none() {
        return fail(format!("InvalidBatch : Field name not found : {}", external_id.unwrap_or_default()));
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => rows.push(r.iter().map(str::to_owned).collect()),
            Err(e) => return fail(format!("InvalidBatch : Failed to parse CSV: {e}")),
        }
    }
    {
        let mut j = jobs(pg);
        if let Some(job) = j.jobs.get_mut(id) {
            job.header = Some(header.clone());
        }
    }
    let batches = (rows.len() as u64).div_ceil(super::limits::INGEST_BATCH_ROWS).max(1);
    pg.data.consume(pg.now_ms(), "DailyBulkApiBatches", batches);
    for (n, chunk) in rows.chunks(CHUNK).enumerate() {
        // An abort stops the job between chunks; the rest is unprocessed.
        let aborted = jobs(pg).jobs.get(id).is_none_or(|job| job.state == "Aborted");
        if aborted {
            let mut j = jobs(pg);
            if let Some(job) = j.jobs.get_mut(id) {
                job.unprocessed_rows.extend(rows[n * CHUNK..].iter().cloned());
            }
            return;
        }
        let mut ok_rows = Vec::new();
        let mut bad_rows = Vec::new();
        {
            let mut db = pg.data.store.lock();
            let mut ctx = Ctx {
                db: &mut db,
                caller: caller.clone(),
                version: version.clone(),
                now: pg.now_ms(),
                users_changed: false,
                update_only: false,
                changes: Vec::new(),
                allow_duplicates: false,
            };
            for row in chunk {
                let mut fields = Map::new();
                for (i, cell) in row.iter().enumerate() {
                    if cell.is_empty() || Some(i) == id_col {
                        continue;
                    }
                    let f = &o.fields[columns[i]];
                    fields.insert(f.name.clone(), cell_value(f.ftype, cell));
                }
                let id_value = id_col.map(|i| row[i].clone()).unwrap_or_default();
                let result: Result<(String, bool), SfError> = match operation.as_str() {
                    "insert" => records::create(&mut ctx, oi, &fields).map(|id| (id, true)),
                    "update" => records::update(&mut ctx, oi, &id_value, &fields)
                        .map(|()| (records::normalize_id(&id_value).unwrap_or_default(), false)),
                    "upsert" => {
                        let ext = ext_col.map(|i| row[i].clone()).unwrap_or_default();
                        let f = external_id.as_deref().unwrap_or("Id");
                        fields.retain(|k, _| !k.eq_ignore_ascii_case(f));
                        match records::upsert(&mut ctx, oi, f, &ext, &fields) {
                            Ok(Upserted::Created(id)) => Ok((id, true)),
                            Ok(Upserted::Updated(id)) => Ok((id, false)),
                            Ok(Upserted::Multiple(_)) => Err(SfError::bad(
                                "DUPLICATE_EXTERNAL_ID",
                                format!("{f}: more than one record found for external id field: {ext}"),
                            )),
                            Err(e) => Err(e),
                        }
                    }
                    _ => records::delete(&mut ctx, oi, &id_value)
                        .map(|()| (records::normalize_id(&id_value).unwrap_or_default(), false)),
                };
                match result {
                    Ok((rid, created)) => {
                        let mut out = vec![rid, created.to_string()];
                        out.extend(row.iter().cloned());
                        ok_rows.push(out);
                    }
                    Err(e) => {
                        let mut out = vec![String::new(), e.bulk()];
                        out.extend(row.iter().cloned());
                        bad_rows.push(out);
                    }
                }
            }
            if ctx.users_changed {
                pg.sync_users_from_db(ctx.db);
            }
            // Each chunk is one transaction on Salesforce too.
            let changes = std::mem::take(&mut ctx.changes);
            let origin = crate::events::api_origin("bulkapi2", &ctx.version.text);
            crate::events::emit(&pg.events, ctx.now, &origin, &ctx.caller.id, changes);
        }
        let mut j = jobs(pg);
        if let Some(job) = j.jobs.get_mut(id) {
            job.processed += chunk.len() as u64;
            job.failed += bad_rows.len() as u64;
            job.success_rows.extend(ok_rows);
            job.failed_rows.extend(bad_rows);
            job.processing_ms = (pg.now_ms() - started).max(1);
        }
    }
    let mut j = jobs(pg);
    if let Some(job) = j.jobs.get_mut(id)
        && job.state == "InProgress"
    {
        job.state = "JobComplete".into();
        job.modstamp_ms = pg.now_ms();
    }
}

fn write_csv(delimiter: u8, crlf: bool, header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .quote_style(csv::QuoteStyle::Always)
        .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
        .from_writer(Vec::new());
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
    }
    w.into_inner().unwrap_or_default()
}

fn csv_reply(body: Vec<u8>) -> Reply {
    Reply { status: StatusCode::OK, body, content_type: Some("text/csv"), headers: Vec::new() }
}

fn ingest_results(pg: &Shared, id: &str, which: &str) -> Result<Reply, SfError> {
    let j = jobs(pg);
    let job = j.jobs.get(id).filter(|x| x.kind == Kind::Ingest).ok_or_else(not_found)?;
    let input = job.header.clone().unwrap_or_default();
    let d = delimiter_byte(&job.delimiter).unwrap_or(b',');
    let crlf = job.line_ending == "CRLF";
    let body = match which {
        "successfulResults" => {
            let mut h = vec!["sf__Id".to_owned(), "sf__Created".to_owned()];
            h.extend(input);
            write_csv(d, crlf, &h, &job.success_rows)
        }
        "failedResults" => {
            let mut h = vec!["sf__Id".to_owned(), "sf__Error".to_owned()];
            h.extend(input);
            write_csv(d, crlf, &h, &job.failed_rows)
        }
        _ => {
            // Before processing started, everything uploaded is unprocessed.
            if job.header.is_none() && !job.data.is_empty() {
                job.data.clone()
            } else {
                write_csv(d, crlf, &input, &job.unprocessed_rows)
            }
        }
    };
    Ok(csv_reply(body))
}

fn cell_text(ftype: FieldType, v: &rusqlite::types::Value) -> String {
    use rusqlite::types::Value as Sql;
    match v {
        Sql::Null => String::new(),
        Sql::Integer(i) if ftype == FieldType::Boolean => (*i != 0).to_string(),
        Sql::Integer(i) => i.to_string(),
        Sql::Real(x) if ftype == FieldType::Int => (*x as i64).to_string(),
        Sql::Real(x) => x.to_string(),
        Sql::Text(t) => t.clone(),
        Sql::Blob(_) => String::new(),
    }
}

fn query_results(pg: &Shared, ctx: &mut Ctx<'_>, id: &str, params: &Params) -> Result<Reply, SfError> {
    let (plan, total, delimiter, crlf, version, after, state) = {
        let j = jobs(pg);
        let job = j.jobs.get(id).filter(|x| x.kind == Kind::Query).ok_or_else(not_found)?;
        (
            job.plan.clone(),
            job.total,
            delimiter_byte(&job.delimiter).unwrap_or(b','),
            job.line_ending == "CRLF",
            job.version.clone(),
            job.boundaries.clone(),
            job.state.clone(),
        )
    };
    if state != "JobComplete" {
        return Err(bad_state(&state));
    }
    if version.major != ctx.version.major {
        return Err(SfError::new(
            StatusCode::CONFLICT,
            "INVALIDJOBSTATE",
            format!("The results of this job must be read with API version {}", version.text),
        ));
    }
    let plan = plan.ok_or_else(not_found)?;
    let start: u64 = match params.get("locator").filter(|l| !l.is_empty() && *l != "null") {
        Some(l) => STANDARD_NO_PAD
            .decode(l.trim_end_matches('='))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SfError::bad("INVALIDLOCATOR", format!("Invalid locator: {l}")))?,
        None => 0,
    };
    let max: u64 = match params.get("maxRecords") {
        Some(m) => m
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| SfError::bad("API_ERROR", format!("Invalid maxRecords: {m}")))?,
        None => DEFAULT_MAX_RECORDS,
    };
    let n = max.min(total.saturating_sub(start));
    let columns = query::plan_columns(&plan);
    let header: Vec<String> = columns.iter().map(|(name, _, _)| name.clone()).collect();
    let mut rows_out = Vec::with_capacity(n as usize);
    let mut served = start;
    let mut last = after.get(&start).copied();
    while served < start + n {
        let take = ((start + n - served) as usize).min(10_000);
        let rows = plan.rows(ctx.db, served, last, take)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if let rusqlite::types::Value::Integer(rid) = r[0] {
                last = Some(rid);
            }
            rows_out.push(columns.iter().map(|(_, col, ft)| cell_text(*ft, &r[*col])).collect::<Vec<String>>());
        }
        served += rows.len() as u64;
    }
    if let Some(rid) = last {
        let mut j = jobs(pg);
        if let Some(job) = j.jobs.get_mut(id) {
            job.boundaries.insert(served, rid);
        }
    }
    let mut reply = csv_reply(write_csv(delimiter, crlf, &header, &rows_out));
    pg.data.consume(ctx.now, super::limits::QUERY_RESULT_BYTES, reply.body.len() as u64);
    let next = if served < total { STANDARD_NO_PAD.encode(served.to_string()) } else { "null".to_owned() };
    reply.headers.push(("sforce-locator", next));
    reply.headers.push(("sforce-numberofrecords", rows_out.len().to_string()));
    Ok(reply)
}
