//! Processing an ingest job on a background thread: the CSV is parsed, then rows are written in
//! chunks, each chunk one transaction with its result rows and the job's new counts (so a job
//! kept in a data file resumes after a restart exactly where it stopped). With a rows-per-second
//! setting the worker only processes the rows that playground time allows so far, and waits for
//! the clock (real time or a control-API shift) to move on.

use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};

use super::{delimiter_byte, jobs};
use crate::data::records::{self, Upserted};
use crate::data::request::{Ctx, SfError};
use crate::schema::FieldType;
use crate::state::Shared;
use crate::store::jobs::Rows;

/// Rows processed per database lock, so API requests interleave with a large job.
const CHUNK: usize = 2000;
/// How often a throttled worker looks at the clock again (real time).
const WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Starts processing job `id` (state `UploadComplete` or, after a restart, `InProgress`).
pub(super) fn start(pg: &Shared, id: &str) {
    let (pg2, id2) = (pg.clone(), id.to_owned());
    // A throttled job may wait for playground time for long: a thread of its own, not one of
    // the runtime's blocking threads (which a runtime waits for when it is dropped).
    let throttled = jobs(pg).jobs.get(id).is_some_and(|j| j.rate > 0);
    if throttled {
        std::thread::spawn(move || process(&pg2, &id2));
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(move || process(&pg2, &id2));
        }
        Err(_) => process(&pg2, &id2),
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

/// Marks the job failed (a bad header or CSV: nothing was written).
fn fail(pg: &Shared, id: &str, message: String) {
    let db = pg.data.store.lock();
    let mut j = jobs(pg);
    let next = j.next;
    if let Some(job) = j.jobs.get_mut(id) {
        job.state = "Failed".into();
        job.error_message = Some(message);
        job.modstamp_ms = pg.now_ms();
        let _ = db.save_job(job, next);
    }
}

/// Rows the job may have processed by now (all of them when it is not throttled).
fn allowance(pg: &Shared, rate: u64, started_ms: i64, total: usize) -> usize {
    if rate == 0 {
        return total;
    }
    let elapsed = (pg.now_ms() - started_ms).max(0) as u128;
    usize::try_from(elapsed * u128::from(rate) / 1000).unwrap_or(usize::MAX).min(total)
}

fn process(pg: &Shared, id: &str) {
    let (data, delimiter, object, operation, external_id, caller, version, done_before, rate, started) = {
        let db = pg.data.store.lock();
        let mut j = jobs(pg);
        let next = j.next;
        let Some(job) = j.jobs.get_mut(id) else { return };
        if job.state != "UploadComplete" && job.state != "InProgress" {
            return;
        }
        job.state = "InProgress".into();
        job.modstamp_ms = pg.now_ms();
        let _ = db.save_job(job, next);
        (
            std::mem::take(&mut job.data),
            delimiter_byte(&job.delimiter).unwrap_or(b','),
            job.object.clone(),
            job.operation.clone(),
            job.external_id.clone(),
            job.caller.clone(),
            job.version.clone(),
            job.processed as usize,
            job.rate,
            job.started_ms,
        )
    };
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(false).from_reader(&data[..]);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Err(e) => return fail(pg, id, format!("InvalidBatch : Failed to parse CSV header: {e}")),
    };
    let schema = pg.data.store.schema.clone();
    let Some(oi) = schema.index_of(&object) else {
        return fail(pg, id, format!("InvalidBatch : Unknown object {object}"));
    };
    let o = &schema.objects[oi];
    let mut columns = Vec::new();
    for h in &header {
        match o.field_index(h) {
            Some(fi) => columns.push(fi),
            None => return fail(pg, id, format!("InvalidBatch : Field name not found : {h}")),
        }
    }
    let id_col = header.iter().position(|h| h.eq_ignore_ascii_case("Id"));
    if matches!(operation.as_str(), "update" | "delete" | "hardDelete") && id_col.is_none() {
        return fail(pg, id, "InvalidBatch : Field name not found : Id".into());
    }
    let ext_col = external_id.as_ref().and_then(|e| header.iter().position(|h| h.eq_ignore_ascii_case(e)));
    if operation == "upsert" && ext_col.is_none() {
        return fail(pg, id, format!("InvalidBatch : Field name not found : {}", external_id.unwrap_or_default()));
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => rows.push(r.iter().map(str::to_owned).collect()),
            Err(e) => return fail(pg, id, format!("InvalidBatch : Failed to parse CSV: {e}")),
        }
    }
    {
        let db = pg.data.store.lock();
        let mut j = jobs(pg);
        let next = j.next;
        if let Some(job) = j.jobs.get_mut(id) {
            job.header = Some(header.clone());
            job.total = rows.len() as u64;
            let _ = db.save_job(job, next);
        }
    }
    if done_before == 0 {
        let batches = (rows.len() as u64).div_ceil(crate::data::limits::INGEST_BATCH_ROWS).max(1);
        pg.data.consume(pg.now_ms(), "DailyBulkApiBatches", batches);
    }
    let mut done = done_before.min(rows.len());
    while done < rows.len() {
        if pg.data.stopped.load(Ordering::Relaxed) {
            return;
        }
        // An abort stops the job between chunks; the rest is unprocessed.
        let aborted = jobs(pg).jobs.get(id).is_none_or(|job| job.state == "Aborted");
        if aborted {
            let db = pg.data.store.lock();
            let mut j = jobs(pg);
            if let Some(job) = j.jobs.get_mut(id) {
                let rest = &rows[done..];
                job.unprocessed_rows.extend(rest.iter().cloned());
                let _ = db.save_job_rows(id, Rows::Unprocessed, rest);
            }
            return;
        }
        let allowed = allowance(pg, rate, started, rows.len());
        if allowed <= done {
            std::thread::sleep(WAIT);
            continue;
        }
        let end = allowed.min(done + CHUNK);
        run_chunk(
            pg,
            id,
            oi,
            &rows[done..end],
            (&operation, external_id.as_deref(), id_col, ext_col, &columns),
            (&caller, &version),
        );
        done = end;
    }
    let db = pg.data.store.lock();
    let mut j = jobs(pg);
    let next = j.next;
    if let Some(job) = j.jobs.get_mut(id)
        && job.state == "InProgress"
    {
        job.state = "JobComplete".into();
        job.modstamp_ms = pg.now_ms();
        let _ = db.save_job(job, next);
    }
}

type Layout<'a> = (&'a str, Option<&'a str>, Option<usize>, Option<usize>, &'a [usize]);

/// Writes one chunk of rows and its results in one transaction.
fn run_chunk(
    pg: &Shared,
    id: &str,
    oi: usize,
    chunk: &[Vec<String>],
    layout: Layout<'_>,
    who: (&crate::call::Caller, &crate::call::Version),
) {
    let (operation, external_id, id_col, ext_col, columns) = layout;
    let schema = pg.data.store.schema.clone();
    let o = &schema.objects[oi];
    let started = pg.now_ms();
    let mut db = pg.data.store.lock();
    // One transaction per chunk, in memory too: SQLite then ends one transaction per chunk, not
    // one per statement (each end went through the whole page cache).
    let _ = db.conn.execute_batch("BEGIN");
    let mut ctx = Ctx {
        db: &mut db,
        caller: who.0.clone(),
        version: who.1.clone(),
        now: pg.now_ms(),
        users_changed: false,
        update_only: false,
        changes: Vec::new(),
        allow_duplicates: false,
    };
    let mut ok_rows = Vec::new();
    let mut bad_rows = Vec::new();
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
        let result: Result<(String, bool), SfError> = match operation {
            "insert" => records::create(&mut ctx, oi, &fields).map(|id| (id, true)),
            "update" => records::update(&mut ctx, oi, &id_value, &fields)
                .map(|()| (records::normalize_id(&id_value).unwrap_or_default(), false)),
            "upsert" => {
                let ext = ext_col.map(|i| row[i].clone()).unwrap_or_default();
                let f = external_id.unwrap_or("Id");
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
    let mut j = jobs(pg);
    let next = j.next;
    if let Some(job) = j.jobs.get_mut(id) {
        job.processed += chunk.len() as u64;
        job.failed += bad_rows.len() as u64;
        job.processing_ms += (pg.now_ms() - started).max(1);
        let _ = db.save_job_rows(id, Rows::Successful, &ok_rows);
        let _ = db.save_job_rows(id, Rows::Failed, &bad_rows);
        let _ = db.save_job(job, next);
        job.success_rows.extend(ok_rows);
        job.failed_rows.extend(bad_rows);
    }
    drop(j);
    let _ = db.conn.execute_batch("COMMIT");
}
