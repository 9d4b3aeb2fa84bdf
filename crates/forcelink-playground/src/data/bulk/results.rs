//! Job results: an ingest job's successful, failed and unprocessed rows as CSV, a query job's
//! result pages (`Sforce-Locator`, `maxRecords`, `Sforce-NumberOfRecords`) and its parallel
//! result links (`resultPages`, API 58.0+).

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::json;

use super::{bad_state, delimiter_byte, jobs_now, not_found};
use crate::data::query;
use crate::data::request::{Ctx, Params, Reply, SfError};
use crate::schema::FieldType;
use crate::state::Shared;
use crate::store::jobs::Kind;

/// Result rows per query-result page when `maxRecords` is not given.
/// UNCONFIRMED: Salesforce sizes default pages by bytes; 50,000 rows is a plausible stand-in.
const DEFAULT_MAX_RECORDS: u64 = 50_000;
/// Result links per `resultPages` answer ("up to five", Salesforce's documentation).
const LINKS_PER_ANSWER: u64 = 5;

pub(super) fn write_csv(delimiter: u8, crlf: bool, header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
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

pub(super) fn ingest_results(pg: &Shared, id: &str, which: &str) -> Result<Reply, SfError> {
    let j = jobs_now(pg);
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

/// Results of a query job that is not complete: `412 Precondition Failed` while it runs (the
/// documentation: "The job must have the state JobComplete").
/// UNCONFIRMED: the body's errorCode and text.
fn not_complete(state: &str) -> SfError {
    if matches!(state, "UploadComplete" | "InProgress") {
        return SfError::new(
            StatusCode::PRECONDITION_FAILED,
            "INVALIDJOBSTATE",
            format!("The job is not complete (state {state}): results are available once its state is JobComplete"),
        );
    }
    bad_state(state)
}

fn wrong_version(text: &str) -> SfError {
    SfError::new(
        StatusCode::CONFLICT,
        "INVALIDJOBSTATE",
        format!("The results of this job must be read with API version {text}"),
    )
}

fn decode_locator(params: &Params) -> Result<u64, SfError> {
    match params.get("locator").filter(|l| !l.is_empty() && *l != "null") {
        Some(l) => STANDARD_NO_PAD
            .decode(l.trim_end_matches('='))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SfError::bad("INVALIDLOCATOR", format!("Invalid locator: {l}"))),
        None => Ok(0),
    }
}

fn locator(n: u64) -> String {
    STANDARD_NO_PAD.encode(n.to_string())
}

fn max_records(params: &Params) -> Result<u64, SfError> {
    match params.get("maxRecords") {
        Some(m) => m
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| SfError::bad("API_ERROR", format!("Invalid maxRecords: {m}"))),
        None => Ok(DEFAULT_MAX_RECORDS),
    }
}

pub(super) fn query_results(pg: &Shared, ctx: &mut Ctx<'_>, id: &str, params: &Params) -> Result<Reply, SfError> {
    let (plan, total, delimiter, crlf, version, after, state) = {
        let j = jobs_now(pg);
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
        return Err(not_complete(&state));
    }
    if version.major != ctx.version.major {
        return Err(wrong_version(&version.text));
    }
    let plan = plan.ok_or_else(not_found)?;
    let start = decode_locator(params)?;
    let max = max_records(params)?;
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
        let mut j = jobs_now(pg);
        if let Some(job) = j.jobs.get_mut(id) {
            job.boundaries.insert(served, rid);
        }
    }
    let mut reply = csv_reply(write_csv(delimiter, crlf, &header, &rows_out));
    pg.data.consume(ctx.now, crate::data::limits::QUERY_RESULT_BYTES, reply.body.len() as u64);
    let next = if served < total { locator(served) } else { "null".to_owned() };
    reply.headers.push(("sforce-locator", next));
    reply.headers.push(("sforce-numberofrecords", rows_out.len().to_string()));
    Ok(reply)
}

/// `GET jobs/query/{id}/resultPages` (API 58.0+): up to five `results` links, each one page of
/// `maxRecords` rows (default 50,000), to fetch in parallel;
/// `{"resultPages": [{"resultUrl"}], "nextRecordsUrl", "done"}`. UNCONFIRMED: the next link's
/// spelling (the documentation's table says `nextRecordUrl`, its text `nextRecordsUrl`), that
/// `maxRecords` is taken here and carried into each link, and the `locator` of the next link.
pub(super) fn result_pages(pg: &Shared, ctx: &Ctx<'_>, id: &str, params: &Params) -> Result<Reply, SfError> {
    if ctx.version.major < 58 {
        return Err(not_found());
    }
    let (total, version, state) = {
        let j = jobs_now(pg);
        let job = j.jobs.get(id).filter(|x| x.kind == Kind::Query).ok_or_else(not_found)?;
        (job.total, job.version.clone(), job.state.clone())
    };
    if state != "JobComplete" {
        return Err(not_complete(&state));
    }
    if version.major != ctx.version.major {
        return Err(wrong_version(&version.text));
    }
    let start = decode_locator(params)?;
    let max = max_records(params)?;
    let base = format!("/services/data/v{}/jobs/query/{id}", version.text);
    let with_max = if params.get("maxRecords").is_some() { format!("&maxRecords={max}") } else { String::new() };
    let mut pages = Vec::new();
    let mut at = start;
    while at < total.max(1) && (pages.len() as u64) < LINKS_PER_ANSWER {
        pages.push(json!({"resultUrl": format!("{base}/results?locator={}{with_max}", locator(at))}));
        at += max;
    }
    let done = at >= total;
    let next = if done {
        serde_json::Value::Null
    } else {
        json!(format!("{base}/resultPages?locator={}{with_max}", locator(at)))
    };
    Ok(Reply::json(StatusCode::OK, &json!({"resultPages": pages, "nextRecordsUrl": next, "done": done})))
}
