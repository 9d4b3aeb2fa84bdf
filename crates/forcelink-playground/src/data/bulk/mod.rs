//! Bulk API 2.0 (wire reference §8): ingest jobs (create, `PUT …/batches` CSV, `UploadComplete`,
//! processing on a background thread in chunks, successful/failed/unprocessed results, abort,
//! delete) and query jobs (create, state, CSV result pages with `Sforce-Locator`,
//! `maxRecords`, `Sforce-NumberOfRecords`, parallel `resultPages`).
//!
//! Jobs are served from memory and, on a data file, written through to it (`store::jobs`): after
//! a restart [`resume`] loads them and carries on with ingest jobs that were running. With the
//! control API's `bulk_rows_per_second`, jobs take playground time: an ingest worker processes
//! only the rows time allows, and a query job's progress is worked out from the clock whenever
//! it is looked at (`UploadComplete` at creation, `InProgress`, then `JobComplete`).
//!
//! - `ingest`: the ingest worker; `results`: result downloads and result links.

mod ingest;
mod results;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::query::{self, Compiled};
use super::request::SfError;
use super::request::{Ctx, MAX_UPLOAD_BYTES, Params, Reply, json_object};
use crate::civil;
use crate::schema::FieldType;
use crate::state::Shared;
use crate::store::jobs::{Job, Jobs, Kind};

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

/// Brings a throttled query job up to playground time: rows "processed" so far at its rate, and
/// its state from that. Unthrottled query jobs are complete when created.
fn advance_query(job: &mut Job, now: i64) {
    if job.kind != Kind::Query || job.rate == 0 || !matches!(job.state.as_str(), "UploadComplete" | "InProgress") {
        return;
    }
    let elapsed = (now - job.started_ms).max(0);
    let done = (elapsed as u128 * u128::from(job.rate) / 1000).min(u128::from(job.total)) as u64;
    job.processed = done;
    job.processing_ms = elapsed.max(1);
    let state = if done >= job.total {
        "JobComplete"
    } else if elapsed > 0 {
        "InProgress"
    } else {
        "UploadComplete"
    };
    if job.state != state {
        job.state = state.into();
        job.modstamp_ms = now;
    }
}

/// The jobs, with throttled query jobs brought up to playground time.
fn jobs_now(pg: &Shared) -> parking_lot::MutexGuard<'_, Jobs> {
    let now = pg.now_ms();
    let mut j = jobs(pg);
    for job in j.jobs.values_mut() {
        advance_query(job, now);
    }
    j
}

/// Loads the jobs kept in a data file (compiling query jobs' SOQL again) and restarts the
/// ingest jobs that were being processed when the playground stopped.
pub(crate) fn resume(pg: &Shared) -> Result<(), String> {
    let loaded = {
        let db = pg.data.store.lock();
        let mut loaded = db.load_jobs().map_err(|e| format!("cannot read the Bulk jobs of the data file: {e}"))?;
        for job in loaded.jobs.values_mut().filter(|j| j.kind == Kind::Query) {
            let all = job.operation == "queryAll";
            if let Some(Ok(Compiled::Rows(p))) =
                job.query.as_deref().map(|q| query::compile(&db.schema, q, all, pg.now_ms()))
            {
                job.plan = Some(Arc::new(p));
            }
        }
        loaded
    };
    let running: Vec<String> = loaded
        .jobs
        .values()
        .filter(|j| j.kind == Kind::Ingest && matches!(j.state.as_str(), "UploadComplete" | "InProgress"))
        .map(|j| j.id.clone())
        .collect();
    *jobs(pg) = loaded;
    for id in running {
        ingest::start(pg, &id);
    }
    Ok(())
}

/// Persists a job's state under the caller's database lock.
fn save(ctx: &Ctx<'_>, job: &Job, next: u64) -> Result<(), SfError> {
    ctx.db.save_job(job, next).map_err(SfError::from)
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
        (["query", id, "resultPages"], &Method::GET) => results::result_pages(pg, ctx, id, params),
        (["ingest"], &Method::POST) => create(pg, ctx, Kind::Ingest, body),
        (["query"], &Method::POST) => create(pg, ctx, Kind::Query, body),
        ([kind @ ("ingest" | "query")], &Method::GET) => {
            let k = if *kind == "ingest" { Kind::Ingest } else { Kind::Query };
            let j = jobs_now(pg);
            let mut list: Vec<&Job> = j.jobs.values().filter(|x| x.kind == k).collect();
            list.sort_by_key(|x| x.created_ms);
            let records: Vec<Value> = list.into_iter().map(job_info).collect();
            Ok(Reply::json(StatusCode::OK, &json!({"done": true, "records": records, "nextRecordsUrl": null})))
        }
        ([_, id], &Method::GET) => {
            let j = jobs_now(pg);
            let job = j.jobs.get(*id).ok_or_else(not_found)?;
            Ok(Reply::json(StatusCode::OK, &job_info(job)))
        }
        ([_, id], &Method::PATCH) => change_state(pg, ctx, id, body),
        ([_, id], &Method::DELETE) => {
            let mut j = jobs_now(pg);
            let job = j.jobs.get(*id).ok_or_else(not_found)?;
            if matches!(job.state.as_str(), "InProgress" | "UploadComplete") {
                return Err(bad_state(&job.state));
            }
            j.jobs.remove(*id);
            ctx.db.delete_job(id)?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        (["ingest", id, "batches"], &Method::PUT) => upload(pg, ctx, id, body),
        (["ingest", id, which @ ("successfulResults" | "failedResults" | "unprocessedrecords")], &Method::GET) => {
            results::ingest_results(pg, id, which)
        }
        (["query", id, "results"], &Method::GET) => results::query_results(pg, ctx, id, params),
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
    let rate = pg.rt().settings.bulk_rows_per_second;
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
    let (id, next) = {
        let mut j = jobs(pg);
        j.next += 1;
        (crate::ids::mint("750", j.next), j.next)
    };
    let mut job = Job {
        id: id.clone(),
        kind,
        object,
        operation,
        external_id,
        query: if kind == Kind::Query { text("query") } else { None },
        rate,
        started_ms: ctx.now,
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
    // right away (under the lock this request holds). Unthrottled, the job is complete at once;
    // throttled, its progress follows the clock (`advance_query`).
    let info = job_info(&job);
    if kind == Kind::Query {
        pg.data.consume(ctx.now, "DailyBulkV2QueryJobs", 1);
        if let Some(p) = &job.plan {
            job.total = p.total(ctx.db)?;
        }
        if rate == 0 {
            job.processed = job.total;
            job.processing_ms = 1;
            job.state = "JobComplete".into();
        }
    }
    save(ctx, &job, next)?;
    jobs(pg).jobs.insert(id, job);
    Ok(Reply::json(StatusCode::OK, &info))
}

fn upload(pg: &Shared, ctx: &Ctx<'_>, id: &str, body: &[u8]) -> Result<Reply, SfError> {
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
    let before = job.data.len();
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
    ctx.db.save_job_data(id, &job.data[before..])?;
    Ok(Reply::empty(StatusCode::CREATED))
}

fn change_state(pg: &Shared, ctx: &mut Ctx<'_>, id: &str, body: &[u8]) -> Result<Reply, SfError> {
    let b = json_object(body).map_err(|e| SfError::bad("API_ERROR", e.message))?;
    let want = b.get("state").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut j = jobs_now(pg);
    let next = j.next;
    let job = j.jobs.get_mut(id).ok_or_else(not_found)?;
    match want.as_str() {
        "UploadComplete" if job.kind == Kind::Ingest => {
            if job.state != "Open" {
                return Err(bad_state(&job.state));
            }
            job.state = "UploadComplete".into();
            job.modstamp_ms = ctx.now;
            job.started_ms = ctx.now;
            job.rate = pg.rt().settings.bulk_rows_per_second;
            save(ctx, job, next)?;
            let info = job_info(job);
            drop(j);
            ingest::start(pg, id);
            Ok(Reply::json(StatusCode::OK, &info))
        }
        "Aborted" => {
            if matches!(job.state.as_str(), "JobComplete" | "Failed" | "Aborted") {
                return Err(bad_state(&job.state));
            }
            job.state = "Aborted".into();
            job.modstamp_ms = ctx.now;
            save(ctx, job, next)?;
            Ok(Reply::json(StatusCode::OK, &job_info(job)))
        }
        other => Err(SfError::bad("INVALIDJOBSTATE", format!("Invalid state transition to {other}"))),
    }
}
