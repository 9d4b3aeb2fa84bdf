//! Running a plan page by page: the first page, query locators for the rest (`nextRecordsUrl`),
//! and child subqueries once per page for all the page's parents.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use rusqlite::params_from_iter;
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::{Value, json};

use crate::data::request::{Ctx, Reply, SfError};
use crate::schema::FieldType;
use crate::store::Db;
use crate::store::locators::{Cursor, Locators};
use crate::store::plan::{ChildPlan, Plan, Shape};

use super::compile::{Compiled, compile};
use super::encode::Encoded;
use super::json::{ChildRows, text_at, write_int, write_str};

/// Salesforce's default and largest query batch; the smallest allowed is 200.
pub(crate) const DEFAULT_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;
/// How long an idle locator lives (Salesforce: 15 minutes of inactivity).
const LOCATOR_IDLE_MS: i64 = 15 * 60 * 1000;
/// Open locators kept at most; the least recently used goes first.
const MAX_LOCATORS: usize = 2000;

/// Where child subqueries page their rest: the locators, the batch size and the time.
pub(super) struct ChildPaging<'a> {
    pub(super) locators: &'a parking_lot::Mutex<Locators>,
    pub(super) batch: usize,
    pub(super) now: i64,
}

pub(super) fn run_children(
    db: &Db,
    plans: &[ChildPlan],
    parent_ids: &[String],
    version: &str,
    paging: &ChildPaging<'_>,
) -> Result<Vec<ChildRows>, SfError> {
    let mut out = Vec::new();
    for plan in plans {
        let mut map: ChildRows = HashMap::new();
        if parent_ids.is_empty() {
            out.push(map);
            continue;
        }
        let marks = vec!["?"; parent_ids.len()].join(",");
        let sql = format!("{}{marks}){} ORDER BY {}", plan.select, plan.filter, plan.order);
        let mut st = db.conn.prepare(&sql)?;
        let params: Vec<Sql> =
            parent_ids.iter().map(|s| Sql::Text(s.clone())).chain(plan.params.iter().cloned()).collect();
        let record = Encoded::new(&plan.object, &plan.items, 1, version);
        let mut rows = st.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let Some(parent) = text_at(&get, plan.fk_col) else { continue };
            let entry = map.entry(parent).or_insert((0, Vec::new(), None));
            if plan.limit.is_some_and(|l| entry.0 >= l) {
                continue;
            }
            entry.0 += 1;
            // Past one batch, the child result pages on its own (`nextRecordsUrl`).
            if entry.0 > paging.batch as u64 {
                continue;
            }
            if entry.0 > 1 {
                entry.1.push(b',');
            }
            record.write(&mut entry.1, &get, version, &[]);
        }
        for (parent, entry) in map.iter_mut().filter(|(_, e)| e.0 > paging.batch as u64) {
            let child = Plan {
                object: plan.object.clone(),
                select: format!("{}?){}", plan.select, plan.filter),
                count: format!("SELECT COUNT(*) FROM ({}?){})", plan.select, plan.filter),
                params: std::iter::once(Sql::Text(parent.clone())).chain(plan.params.iter().cloned()).collect(),
                order: plan.order.clone(),
                keyset: false,
                offset: 0,
                limit: plan.limit,
                items: plan.items.clone(),
                children: Vec::new(),
            };
            let url = open_locator(
                paging.locators,
                child,
                entry.0,
                paging.batch,
                paging.batch as u64,
                None,
                paging.now,
                version,
            );
            entry.2 = Some(url);
        }
        out.push(map);
    }
    Ok(out)
}

/// Reads `n` rows of `plan` after `served` records (keyset after `after_rid` when known).
#[allow(clippy::too_many_arguments)]
pub(super) fn page(
    db: &Db,
    plan: &Plan,
    served: u64,
    after_rid: Option<i64>,
    n: usize,
    version: &str,
    buf: &mut Vec<u8>,
    paging: &ChildPaging<'_>,
) -> Result<(usize, Option<i64>), SfError> {
    let (sql, params) = match (plan.keyset, after_rid) {
        (true, Some(rid)) => {
            let glue = if plan.select.contains(" WHERE ") { " AND" } else { " WHERE" };
            let mut p = plan.params.clone();
            p.push(Sql::Integer(rid));
            (format!("{}{glue} t0.rid > ? ORDER BY t0.rid LIMIT {n}", plan.select), p)
        }
        _ => (
            format!("{} ORDER BY {} LIMIT {n} OFFSET {}", plan.select, plan.order, plan.offset + served),
            plan.params.clone(),
        ),
    };
    let mut st = db.conn.prepare_cached(&sql)?;
    let record = Encoded::new(&plan.object, &plan.items, 1, version);
    let mut count = 0;
    let mut last_rid = None;
    if plan.children.is_empty() {
        let start = buf.len();
        let mut rows = st.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            if count > 0 {
                buf.push(b',');
            }
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            if let Ok(ValueRef::Integer(rid)) = row.get_ref(0) {
                last_rid = Some(rid);
            }
            record.write(buf, &get, version, &[]);
            count += 1;
            if count == 1 {
                // Room for the page at the first record's size (and an eighth more), so the
                // buffer does not move while it grows.
                let first = buf.len() - start;
                buf.reserve((first + 1) * (n - 1) + first * n / 8);
            }
        }
    } else {
        let ncols = st.column_count();
        let rows: Vec<Vec<Sql>> = st
            .query_map(params_from_iter(params), |r| (0..ncols).map(|i| r.get::<_, Sql>(i)).collect())?
            .collect::<Result<_, _>>()?;
        let ids: Vec<String> =
            rows.iter().filter_map(|r| if let Sql::Text(s) = &r[1] { Some(s.clone()) } else { None }).collect();
        let children = run_children(db, &plan.children, &ids, version, paging)?;
        for r in &rows {
            if count > 0 {
                buf.push(b',');
            }
            let get = |i: usize| ValueRef::from(&r[i]);
            if let Sql::Integer(rid) = r[0] {
                last_rid = Some(rid);
            }
            record.write(buf, &get, version, &children);
            count += 1;
        }
    }
    Ok((count, last_rid))
}

/// The batch size asked for with `Sforce-Query-Options: batchSize=N` (200–2000).
pub(crate) fn batch_size(headers: &axum::http::HeaderMap) -> usize {
    let asked = headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("batchSize").then(|| v.trim().parse::<usize>().ok()).flatten()
            })
        })
        .unwrap_or(DEFAULT_BATCH);
    asked.clamp(MIN_BATCH, DEFAULT_BATCH)
}

/// Starts a query answer in `out`: everything before the first record.
fn envelope_head(out: &mut Vec<u8>, total: u64, next: Option<&str>) {
    out.extend_from_slice(b"{\"totalSize\":");
    write_int(out, i64::try_from(total).unwrap_or(i64::MAX));
    out.extend_from_slice(if next.is_none() { b",\"done\":true" } else { b",\"done\":false" });
    if let Some(n) = next {
        out.extend_from_slice(b",\"nextRecordsUrl\":");
        write_str(out, n);
    }
    out.extend_from_slice(b",\"records\":[");
}

/// A query answer: the envelope around `records` (JSON records, comma-separated).
pub(super) fn envelope(total: u64, next: Option<&str>, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() + 160);
    envelope_head(&mut out, total, next);
    out.extend_from_slice(records);
    out.extend_from_slice(b"]}");
    out
}

/// Writes a page of `n` records after `served` into its answer in place: the envelope is written
/// first for the `nextRecordsUrl` a full page leads to (`next_after(served + n)`), then the
/// records behind it. A short page (rows gone since the count) is wrapped again with its own
/// link. Returns the answer, the records written and the last rowid.
#[allow(clippy::too_many_arguments)]
pub(super) fn page_answer(
    db: &Db,
    plan: &Plan,
    total: u64,
    served: u64,
    after_rid: Option<i64>,
    n: usize,
    version: &str,
    paging: &ChildPaging<'_>,
    next_after: &dyn Fn(u64, usize) -> Option<String>,
) -> Result<(Vec<u8>, usize, Option<i64>), SfError> {
    let expected = next_after(served + n as u64, n);
    let mut out = Vec::with_capacity(n * 200 + 256);
    envelope_head(&mut out, total, expected.as_deref());
    let head = out.len();
    let (got, last) = page(db, plan, served, after_rid, n, version, &mut out, paging)?;
    if got != n {
        let next = next_after(served + got as u64, got);
        out = envelope(total, next.as_deref(), &out[head..]);
    } else {
        out.extend_from_slice(b"]}");
    }
    Ok((out, got, last))
}

/// `GET query?q=` / `queryAll?q=`: the first page.
pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    locators: &parking_lot::Mutex<Locators>,
    text: &str,
    all_rows: bool,
    batch: usize,
) -> Result<Reply, SfError> {
    let v = ctx.version.text.clone();
    match compile(&ctx.db.schema, text, all_rows, ctx.now)? {
        Compiled::Count { sql, params } => {
            let n: i64 = ctx.db.conn.query_row(&sql, params_from_iter(params), |r| r.get(0))?;
            Ok(Reply::json(StatusCode::OK, &json!({"totalSize": n, "done": true, "records": []})))
        }
        Compiled::Aggregate { sql, params, columns } => {
            let mut st = ctx.db.conn.prepare(&sql)?;
            let mut rows = st.query(params_from_iter(params))?;
            let mut records = Vec::new();
            while let Some(row) = rows.next()? {
                let mut m = serde_json::Map::new();
                m.insert("attributes".into(), json!({"type": "AggregateResult"}));
                for (i, (name, ftype)) in columns.iter().enumerate() {
                    let val = match (row.get_ref(i).unwrap_or(ValueRef::Null), ftype) {
                        (ValueRef::Null, _) => Value::Null,
                        (ValueRef::Integer(x), Some(FieldType::Boolean)) => json!(x != 0),
                        (ValueRef::Integer(x), _) => json!(x),
                        (ValueRef::Real(x), _) => json!(x),
                        (ValueRef::Text(t), _) => json!(String::from_utf8_lossy(t)),
                        (ValueRef::Blob(_), _) => Value::Null,
                    };
                    m.insert(name.clone(), val);
                }
                records.push(Value::Object(m));
            }
            Ok(Reply::json(StatusCode::OK, &json!({"totalSize": records.len(), "done": true, "records": records})))
        }
        Compiled::Rows(plan) => {
            let counted: i64 =
                ctx.db.conn.query_row(&plan.count, params_from_iter(plan.params.iter()), |r| r.get(0))?;
            let mut total = (counted.max(0) as u64).saturating_sub(plan.offset);
            if let Some(l) = plan.limit {
                total = total.min(l);
            }
            let n = batch.min(total as usize);
            let paging = ChildPaging { locators, batch, now: ctx.now };
            if plan.has_children() {
                // Child subqueries may open locators of their own first: the page's own locator
                // is opened after them, as it always was.
                let mut buf = Vec::with_capacity(n * 200);
                let (got, last) = page(ctx.db, &plan, 0, None, n, &v, &mut buf, &paging)?;
                let served = got as u64;
                let next =
                    (served < total).then(|| open_locator(locators, plan, total, batch, served, last, ctx.now, &v));
                return Ok(Reply::raw_json(StatusCode::OK, envelope(total, next.as_deref(), &buf)));
            }
            let id = std::cell::OnceCell::new();
            let next_after = |served: u64, _: usize| {
                (served < total).then(|| {
                    let id = id.get_or_init(|| reserve_locator(locators));
                    format!("/services/data/v{v}/query/{id}-{served}")
                })
            };
            let (body, got, last) = page_answer(ctx.db, &plan, total, 0, None, n, &v, &paging, &next_after)?;
            let served = got as u64;
            if served < total
                && let Some(id) = id.get()
            {
                keep_locator(locators, id.clone(), plan, total, batch, served, last, ctx.now);
            }
            Ok(Reply::raw_json(StatusCode::OK, body))
        }
    }
}

/// Keeps `plan` behind a new query locator; answers the `nextRecordsUrl` after `served` records.
#[allow(clippy::too_many_arguments)]
fn open_locator(
    locators: &parking_lot::Mutex<Locators>,
    plan: Plan,
    total: u64,
    batch: usize,
    served: u64,
    last_rid: Option<i64>,
    now: i64,
    version: &str,
) -> String {
    let id = reserve_locator(locators);
    keep_locator(locators, id.clone(), plan, total, batch, served, last_rid, now);
    format!("/services/data/v{version}/query/{id}-{served}")
}

/// A new query locator id.
fn reserve_locator(locators: &parking_lot::Mutex<Locators>) -> String {
    let mut l = locators.lock();
    l.next += 1;
    crate::ids::mint("01g", l.next)
}

/// Keeps `plan` behind the locator `id`, `served` records read.
#[allow(clippy::too_many_arguments)]
fn keep_locator(
    locators: &parking_lot::Mutex<Locators>,
    id: String,
    plan: Plan,
    total: u64,
    batch: usize,
    served: u64,
    last_rid: Option<i64>,
    now: i64,
) {
    let mut l = locators.lock();
    let mut boundaries = HashMap::new();
    if let Some(rid) = last_rid {
        boundaries.insert(served, rid);
    }
    if l.cursors.len() >= MAX_LOCATORS {
        let oldest = l.cursors.iter().min_by_key(|(_, c)| c.touched_ms).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            l.cursors.remove(&k);
        }
    }
    l.cursors.insert(id, Cursor { plan: Arc::new(plan), total, batch, boundaries, touched_ms: now });
}

/// `GET query/{locator}-{n}`: a following page.
pub(crate) fn more(
    ctx: &mut Ctx<'_>,
    locators: &parking_lot::Mutex<Locators>,
    locator: &str,
) -> Result<Reply, SfError> {
    let invalid = || SfError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, served) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let served: u64 = served.parse().map_err(|_| invalid())?;
    let v = ctx.version.text.clone();
    let (plan, total, batch, after) = {
        let mut l = locators.lock();
        let now = ctx.now;
        l.cursors.retain(|_, c| now - c.touched_ms < LOCATOR_IDLE_MS);
        let c = l.cursors.get_mut(id).ok_or_else(invalid)?;
        if served >= c.total {
            return Err(invalid());
        }
        c.touched_ms = now;
        (c.plan.clone(), c.total, c.batch, c.boundaries.get(&served).copied())
    };
    let n = batch.min((total - served) as usize);
    let paging = ChildPaging { locators, batch, now: ctx.now };
    let next_after = |now_served: u64, got: usize| {
        (now_served < total && got > 0).then(|| format!("/services/data/v{v}/query/{id}-{now_served}"))
    };
    let (body, got, last) = page_answer(ctx.db, &plan, total, served, after, n, &v, &paging, &next_after)?;
    let now_served = served + got as u64;
    if now_served < total && got > 0 {
        let mut l = locators.lock();
        if let (Some(c), Some(rid)) = (l.cursors.get_mut(id), last) {
            c.boundaries.insert(now_served, rid);
        }
    }
    Ok(Reply::raw_json(StatusCode::OK, body))
}

/// Runs a plan to the end, calling `row` with each record's cells (Bulk 2.0 query results).
pub(crate) fn plan_columns(plan: &Plan) -> Vec<(String, usize, FieldType)> {
    fn walk(items: &[Shape], prefix: &str, out: &mut Vec<(String, usize, FieldType)>) {
        for i in items {
            match i {
                Shape::Field { name, ftype, col } => out.push((format!("{prefix}{name}"), *col, *ftype)),
                Shape::Parent { name, items, .. } => walk(items, &format!("{prefix}{name}."), out),
                Shape::Child { .. } => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&plan.items, "", &mut out);
    out
}

impl Plan {
    pub(crate) fn has_children(&self) -> bool {
        !self.children.is_empty()
    }
    pub(crate) fn object(&self) -> &str {
        &self.object
    }
    /// Total rows the plan yields.
    pub(crate) fn total(&self, db: &Db) -> Result<u64, SfError> {
        let counted: i64 = db.conn.query_row(&self.count, params_from_iter(self.params.iter()), |r| r.get(0))?;
        let mut total = (counted.max(0) as u64).saturating_sub(self.offset);
        if let Some(l) = self.limit {
            total = total.min(l);
        }
        Ok(total)
    }
    /// Rows `[served, served + n)` as raw cells, keyset after `after_rid` when known.
    pub(crate) fn rows(
        &self,
        db: &Db,
        served: u64,
        after_rid: Option<i64>,
        n: usize,
    ) -> Result<Vec<Vec<Sql>>, SfError> {
        let (sql, params) = match (self.keyset, after_rid) {
            (true, Some(rid)) => {
                let glue = if self.select.contains(" WHERE ") { " AND" } else { " WHERE" };
                let mut p = self.params.clone();
                p.push(Sql::Integer(rid));
                (format!("{}{glue} t0.rid > ? ORDER BY t0.rid LIMIT {n}", self.select), p)
            }
            _ => (
                format!("{} ORDER BY {} LIMIT {n} OFFSET {}", self.select, self.order, self.offset + served),
                self.params.clone(),
            ),
        };
        let mut st = db.conn.prepare_cached(&sql)?;
        let ncols = st.column_count();
        let rows = st
            .query_map(params_from_iter(params), |r| (0..ncols).map(|i| r.get::<_, Sql>(i)).collect())?
            .collect::<Result<Vec<Vec<Sql>>, _>>()?;
        Ok(rows)
    }
}
