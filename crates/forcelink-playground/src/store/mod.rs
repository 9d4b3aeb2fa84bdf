//! What the REST API keeps between requests ([`DataState`]): the record store, the daily API
//! usage and other limits' consumption, open query locators (`locators`) and Bulk API 2.0 jobs
//! (`jobs`, written through to a data file), and compiled query
//! plans both of them keep (`plan`).
//!
//! Record storage: one SQLite table per sObject (`o_Account`), one column per field, the
//! SQLite rowid as the id counter (`Id` = key prefix + pod + base-62 rowid + checksum). Text
//! columns use `COLLATE NOCASE` because SOQL comparisons and ordering are case-insensitive.
//! Indexed on `Id`, external-id/unique fields and reference fields (joins, child queries).
//!
//! In memory by default; a file with `--data FILE` (kept between runs, tables added or widened
//! when the seed declares new objects or fields).

pub(crate) mod jobs;
pub(crate) mod locators;
pub(crate) mod plan;

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};

use crate::ids;
use crate::schema::{SObject, Schema, Storage};

/// The open database and what belongs with it.
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) conn: Connection,
    pub(crate) schema: Arc<Schema>,
    /// Next rowid per object (index into `schema.objects`).
    next_row: Vec<i64>,
    /// A data file (`--data`): Bulk jobs are written through to it (see `jobs`).
    pub(crate) persistent: bool,
    /// Per object, `INSERT` of every column (`rid` as `?1`, field `i` as `?{i + 2}`), made once.
    insert_sql: Vec<Option<String>>,
}

/// A cheap handle on the database; one connection behind a mutex.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    /// Guards the SQLite connection (rusqlite connections are not `Sync`) and the id counters.
    db: Arc<Mutex<Db>>,
    pub(crate) schema: Arc<Schema>,
}

fn column_type(s: Storage) -> &'static str {
    match s {
        Storage::Text => "TEXT COLLATE NOCASE",
        Storage::Integer => "INTEGER",
        Storage::Real => "REAL",
        Storage::Blob => "BLOB",
    }
}

pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', ""))
}

impl Store {
    pub(crate) fn open(schema: Schema, path: Option<&Path>) -> Result<Self, String> {
        let conn = match path {
            Some(p) => Connection::open(p).map_err(|e| format!("cannot open data file {}: {e}", p.display()))?,
            None => Connection::open_in_memory().map_err(|e| format!("cannot open the in-memory database: {e}"))?,
        };
        let pragmas = if path.is_some() {
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
        } else {
            "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;"
        };
        conn.execute_batch(pragmas).map_err(|e| format!("cannot configure the database: {e}"))?;
        let schema = Arc::new(schema);
        let mut next_row = Vec::with_capacity(schema.objects.len());
        for o in &schema.objects {
            create_table(&conn, o).map_err(|e| format!("cannot create the table of {}: {e}", o.name))?;
            let max: i64 = conn
                .query_row(&format!("SELECT COALESCE(MAX(rowid), 0) FROM {}", o.table()), [], |r| r.get(0))
                .map_err(|e| format!("cannot read {}: {e}", o.name))?;
            next_row.push(max + 1);
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS pg_cascade (child TEXT PRIMARY KEY, object TEXT NOT NULL, parent TEXT NOT NULL); \
             CREATE INDEX IF NOT EXISTS ix_pg_cascade_parent ON pg_cascade (parent);",
        )
        .map_err(|e| format!("cannot create the recycle bin's cascade table: {e}"))?;
        Db::create_job_tables(&conn).map_err(|e| format!("cannot create the Bulk job tables: {e}"))?;
        let persistent = path.is_some();
        Ok(Self {
            db: Arc::new(Mutex::new(Db {
                conn,
                schema: schema.clone(),
                next_row,
                persistent,
                insert_sql: vec![None; schema.objects.len()],
            })),
            schema,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Db> {
        // No poisoning: a panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.db.lock()
    }
}

fn create_table(conn: &Connection, o: &SObject) -> rusqlite::Result<()> {
    let table = o.table();
    let cols: Vec<String> =
        o.fields.iter().map(|f| format!("{} {}", quote(&f.name), column_type(f.ftype.storage()))).collect();
    conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {table} (rid INTEGER PRIMARY KEY, {});", cols.join(", ")))?;
    // A data file from an older seed: add the fields it lacks.
    let existing: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({table})"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    for f in &o.fields {
        if !existing.iter().any(|e| e.eq_ignore_ascii_case(&f.name)) {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                quote(&f.name),
                column_type(f.ftype.storage())
            ))?;
        }
    }
    conn.execute_batch(&format!("CREATE UNIQUE INDEX IF NOT EXISTS \"ix_{0}_Id\" ON {table} (\"Id\");", o.name))?;
    for f in &o.fields {
        if f.external_id || f.unique || f.ftype == crate::schema::FieldType::Reference {
            conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS \"ix_{}_{}\" ON {table} ({});",
                o.name,
                f.name,
                quote(&f.name)
            ))?;
        }
    }
    Ok(())
}

impl Db {
    pub(crate) fn object_index(&self, o: &SObject) -> usize {
        self.schema.index_of(&o.name).unwrap_or(0)
    }

    /// Reserves the next id of an object.
    pub(crate) fn next_id(&mut self, object: usize) -> (i64, String) {
        let row = self.next_row[object];
        self.next_row[object] += 1;
        (row, ids::mint(&self.schema.objects[object].key_prefix, row as u64))
    }

    /// Inserts a full row: `values` are (field index, value) pairs; missing fields are NULL.
    /// One statement per object names every column, so rows with different fields share it and
    /// values are bound where they are, not copied.
    pub(crate) fn insert_row(&mut self, object: usize, row: i64, values: &[(usize, Sql)]) -> rusqlite::Result<()> {
        let o = &self.schema.objects[object];
        let sql = self.insert_sql[object].get_or_insert_with(|| {
            let cols: Vec<String> = o.fields.iter().map(|f| quote(&f.name)).collect();
            let marks: Vec<String> = (1..=o.fields.len() + 1).map(|i| format!("?{i}")).collect();
            format!("INSERT INTO {} (rid,{}) VALUES ({})", o.table(), cols.join(","), marks.join(","))
        });
        let mut st = self.conn.prepare_cached(sql)?;
        // Unbound parameters are NULL; a cached statement keeps the last row's, so clear them.
        st.clear_bindings();
        st.raw_bind_parameter(1, row)?;
        for (i, v) in values {
            st.raw_bind_parameter(i + 2, v)?;
        }
        st.raw_execute()?;
        Ok(())
    }

    pub(crate) fn update_row(&mut self, object: usize, id: &str, values: &[(usize, Sql)]) -> rusqlite::Result<usize> {
        if values.is_empty() {
            return Ok(0);
        }
        let o = &self.schema.objects[object];
        let sets: Vec<String> = values.iter().map(|(i, _)| format!("{} = ?", quote(&o.fields[*i].name))).collect();
        let sql = format!("UPDATE {} SET {} WHERE \"Id\" = ?", o.table(), sets.join(", "));
        let mut vals: Vec<Sql> = values.iter().map(|(_, v)| v.clone()).collect();
        vals.push(Sql::Text(id.to_owned()));
        self.conn.prepare_cached(&sql)?.execute(params_from_iter(vals))
    }

    /// The row of `id` as (field index → value), or `None`.
    pub(crate) fn row(&self, object: usize, id: &str) -> rusqlite::Result<Option<Vec<Sql>>> {
        let o = &self.schema.objects[object];
        let cols: Vec<String> = o.fields.iter().map(|f| quote(&f.name)).collect();
        let sql = format!("SELECT {} FROM {} WHERE \"Id\" = ?", cols.join(","), o.table());
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query([id])?;
        match rows.next()? {
            Some(r) => Ok(Some((0..o.fields.len()).map(|i| r.get::<_, Sql>(i)).collect::<Result<_, _>>()?)),
            None => Ok(None),
        }
    }

    /// Whether the row of `id` is deleted (`IsDeleted` is 1), or `None` when there is none.
    pub(crate) fn is_deleted(&self, object: usize, id: &str) -> rusqlite::Result<Option<bool>> {
        let sql = format!("SELECT \"IsDeleted\" FROM {} WHERE \"Id\" = ?", self.schema.objects[object].table());
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query([id])?;
        match rows.next()? {
            Some(r) => Ok(Some(matches!(r.get_ref(0)?, rusqlite::types::ValueRef::Integer(1)))),
            None => Ok(None),
        }
    }

    /// Ids of live rows whose `field` equals `value` (case-insensitively for text).
    pub(crate) fn ids_where(
        &self,
        object: usize,
        field: &str,
        value: &Sql,
        limit: usize,
    ) -> rusqlite::Result<Vec<String>> {
        let o = &self.schema.objects[object];
        let sql = format!(
            "SELECT \"Id\" FROM {} WHERE {} = ? AND \"IsDeleted\" = 0 ORDER BY rid LIMIT {limit}",
            o.table(),
            quote(field)
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let ids = st.query_map([value], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    }

    pub(crate) fn count(&self, object: usize, include_deleted: bool) -> rusqlite::Result<i64> {
        let o = &self.schema.objects[object];
        let filter = if include_deleted { "" } else { " WHERE \"IsDeleted\" = 0" };
        self.conn.query_row(&format!("SELECT COUNT(*) FROM {}{filter}", o.table()), [], |r| r.get(0))
    }
}

/// The recycle bin's memory of cascades: which records went with which deleted parent, so that
/// restoring the parent restores them too (table `pg_cascade`).
impl Db {
    /// Notes that `child` (of `object`) was deleted along with `parent`.
    pub(crate) fn note_cascade(&self, child: &str, object: &str, parent: &str) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO pg_cascade (child, object, parent) VALUES (?1, ?2, ?3)")?
            .execute([child, object, parent])?;
        Ok(())
    }

    /// The records deleted along with `parent`, as (child id, object name), in deletion order.
    pub(crate) fn cascaded_with(&self, parent: &str) -> rusqlite::Result<Vec<(String, String)>> {
        let mut st =
            self.conn.prepare_cached("SELECT child, object FROM pg_cascade WHERE parent = ?1 ORDER BY rowid")?;
        st.query_map([parent], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
    }

    /// The parent `child` was deleted along with, if it was.
    pub(crate) fn cascade_parent(&self, child: &str) -> rusqlite::Result<Option<String>> {
        let mut st = self.conn.prepare_cached("SELECT parent FROM pg_cascade WHERE child = ?1")?;
        let mut rows = st.query([child])?;
        rows.next()?.map(|r| r.get(0)).transpose()
    }

    /// Forgets the cascade of `parent` (restored, so its children are back).
    pub(crate) fn forget_cascade(&self, parent: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached("DELETE FROM pg_cascade WHERE parent = ?1")?.execute([parent])?;
        Ok(())
    }
}

impl Db {
    /// The id counters, for bulk writers that mint ids themselves.
    pub(crate) fn next_row_mut(&mut self) -> &mut Vec<i64> {
        &mut self.next_row
    }
}

/// Data-side state shared by all requests.
#[derive(Debug)]
pub(crate) struct DataState {
    pub(crate) store: Store,
    /// Guards the daily API request counter.
    usage: Mutex<Usage>,
    /// Guards what other limits have consumed (Bulk API jobs, batches, result storage).
    consumption: Mutex<Consumption>,
    /// Guards the open query locators.
    pub(crate) locators: Mutex<locators::Locators>,
    /// Guards the Bulk API 2.0 jobs.
    pub(crate) bulk: Mutex<jobs::Jobs>,
    /// Set when the playground stops: Bulk workers waiting for playground time give up.
    pub(crate) stopped: std::sync::atomic::AtomicBool,
    /// When the schema (objects and fields) last changed: the start, as it is fixed for a run.
    /// Describes answer `304 Not Modified` to an `If-Modified-Since` at or after it.
    pub(crate) schema_modified_ms: i64,
}

#[derive(Debug, Default)]
struct Usage {
    day: i64,
    used: u64,
}

/// Consumption of the `/limits` entries other than `DailyApiRequests`, by limit name: `Daily…`
/// counts restart each playground-time UTC day, `Hourly…` ones each hour.
#[derive(Debug, Default)]
struct Consumption {
    day: i64,
    hour: i64,
    used: std::collections::HashMap<&'static str, u64>,
}

impl Consumption {
    fn roll(&mut self, now_ms: i64) {
        let (day, hour) = (now_ms.div_euclid(crate::civil::DAY_MS), now_ms.div_euclid(3_600_000));
        if day != self.day {
            self.used.retain(|k, _| !k.starts_with("Daily"));
            self.day = day;
        }
        if hour != self.hour {
            self.used.retain(|k, _| !k.starts_with("Hourly"));
            self.hour = hour;
        }
    }
}

impl DataState {
    pub(crate) fn new(store: Store, schema_modified_ms: i64) -> Self {
        Self {
            schema_modified_ms,
            store,
            usage: Mutex::new(Usage::default()),
            consumption: Mutex::new(Consumption::default()),
            locators: Mutex::new(Default::default()),
            bulk: Mutex::new(Default::default()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts one API request. The count restarts each (playground) UTC day.
    /// UNCONFIRMED-free simplification: Salesforce's window is a rolling 24 hours.
    pub(crate) fn count(&self, now_ms: i64, max: u64) -> Result<u64, u64> {
        let mut u = self.usage.lock();
        let day = now_ms.div_euclid(crate::civil::DAY_MS);
        if u.day != day {
            *u = Usage { day, used: 0 };
        }
        if u.used >= max {
            return Err(u.used);
        }
        u.used += 1;
        Ok(u.used)
    }

    pub(crate) fn used(&self, now_ms: i64) -> u64 {
        let u = self.usage.lock();
        if u.day == now_ms.div_euclid(crate::civil::DAY_MS) { u.used } else { 0 }
    }

    pub(crate) fn reset_usage(&self) {
        *self.usage.lock() = Usage::default();
        *self.consumption.lock() = Consumption::default();
    }

    /// Counts `n` units of the limit `name` (a `/limits` key, or a private unit such as bytes).
    pub(crate) fn consume(&self, now_ms: i64, name: &'static str, n: u64) {
        let mut c = self.consumption.lock();
        c.roll(now_ms);
        *c.used.entry(name).or_default() += n;
    }

    /// What the limit `name` has consumed in its current window.
    pub(crate) fn consumed(&self, now_ms: i64, name: &str) -> u64 {
        let mut c = self.consumption.lock();
        c.roll(now_ms);
        c.used.get(name).copied().unwrap_or(0)
    }
}
