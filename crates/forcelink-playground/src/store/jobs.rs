//! Bulk API 2.0 jobs: their settings, state and results, kept in memory for serving and, when
//! the playground runs on a data file (`--data`), written through to SQLite so that jobs survive
//! a restart (tables `pg_bulk_jobs`: one JSON document per job; `pg_bulk_data`: the uploaded CSV
//! parts; `pg_bulk_rows`: result rows; `pg_meta`: the id counter). Writes happen under the
//! caller's database lock, so an ingest chunk's records and its result rows commit together.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::Db;
use super::plan::Plan;
use crate::call::{Caller, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Ingest,
    Query,
}

/// Which result list a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    Successful = 0,
    Failed = 1,
    Unprocessed = 2,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) kind: Kind,
    pub(crate) object: String,
    pub(crate) operation: String,
    pub(crate) external_id: Option<String>,
    pub(crate) state: String,
    pub(crate) created_by: String,
    pub(crate) created_ms: i64,
    pub(crate) modstamp_ms: i64,
    pub(crate) delimiter: String,
    pub(crate) line_ending: String,
    pub(crate) version: Version,
    pub(crate) caller: Caller,
    #[serde(skip)]
    pub(crate) data: Vec<u8>,
    pub(crate) header: Option<Vec<String>>,
    pub(crate) processed: u64,
    pub(crate) failed: u64,
    #[serde(skip)]
    pub(crate) success_rows: Vec<Vec<String>>,
    #[serde(skip)]
    pub(crate) failed_rows: Vec<Vec<String>>,
    #[serde(skip)]
    pub(crate) unprocessed_rows: Vec<Vec<String>>,
    pub(crate) error_message: Option<String>,
    pub(crate) processing_ms: i64,
    /// A query job's SOQL (its plan is compiled again after a restart).
    pub(crate) query: Option<String>,
    #[serde(skip)]
    pub(crate) plan: Option<Arc<Plan>>,
    pub(crate) total: u64,
    #[serde(skip)]
    pub(crate) boundaries: HashMap<u64, i64>,
    /// Rows per second of playground time this job processes at (0: as fast as it can).
    pub(crate) rate: u64,
    /// When processing started (playground time): creation for a query job, `UploadComplete`
    /// for an ingest job.
    pub(crate) started_ms: i64,
}

/// Every bulk job of the org.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) next: u64,
}

impl Db {
    /// Creates the job tables (always; they stay empty unless the store is a file).
    pub(super) fn create_job_tables(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS pg_bulk_jobs (id TEXT PRIMARY KEY, doc TEXT NOT NULL); \
             CREATE TABLE IF NOT EXISTS pg_bulk_data (job TEXT NOT NULL, part BLOB NOT NULL); \
             CREATE INDEX IF NOT EXISTS ix_pg_bulk_data ON pg_bulk_data (job); \
             CREATE TABLE IF NOT EXISTS pg_bulk_rows (job TEXT NOT NULL, list INTEGER NOT NULL, row TEXT NOT NULL); \
             CREATE INDEX IF NOT EXISTS ix_pg_bulk_rows ON pg_bulk_rows (job, list); \
             CREATE TABLE IF NOT EXISTS pg_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
    }

    /// Writes a job's settings and state (and the id counter).
    pub(crate) fn save_job(&self, job: &Job, next: u64) -> rusqlite::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        let doc = serde_json::to_string(job).unwrap_or_default();
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO pg_bulk_jobs (id, doc) VALUES (?1, ?2)")?
            .execute([&job.id, &doc])?;
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO pg_meta (key, value) VALUES ('bulk_next', ?1)")?
            .execute([next as i64])?;
        Ok(())
    }

    /// Keeps one uploaded CSV part of a job.
    pub(crate) fn save_job_data(&self, id: &str, part: &[u8]) -> rusqlite::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        self.conn.prepare_cached("INSERT INTO pg_bulk_data (job, part) VALUES (?1, ?2)")?.execute(params![id, part])?;
        Ok(())
    }

    /// Keeps result rows of a job.
    pub(crate) fn save_job_rows(&self, id: &str, list: Rows, rows: &[Vec<String>]) -> rusqlite::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        let mut st = self.conn.prepare_cached("INSERT INTO pg_bulk_rows (job, list, row) VALUES (?1, ?2, ?3)")?;
        for r in rows {
            st.execute(params![id, list as i64, serde_json::to_string(r).unwrap_or_default()])?;
        }
        Ok(())
    }

    /// Forgets a deleted job.
    pub(crate) fn delete_job(&self, id: &str) -> rusqlite::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        for table in ["pg_bulk_jobs", "pg_bulk_data", "pg_bulk_rows"] {
            let col = if table == "pg_bulk_jobs" { "id" } else { "job" };
            self.conn.execute(&format!("DELETE FROM {table} WHERE {col} = ?1"), [id])?;
        }
        Ok(())
    }

    /// Every kept job with its data and result rows (query plans are the caller's to compile),
    /// and the id counter.
    pub(crate) fn load_jobs(&self) -> rusqlite::Result<Jobs> {
        let mut jobs = Jobs::default();
        if !self.persistent {
            return Ok(jobs);
        }
        let mut st = self.conn.prepare("SELECT doc FROM pg_bulk_jobs")?;
        let docs: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        for doc in docs {
            let Ok(mut job) = serde_json::from_str::<Job>(&doc) else { continue };
            let mut parts = self.conn.prepare_cached("SELECT part FROM pg_bulk_data WHERE job = ?1 ORDER BY rowid")?;
            for part in parts.query_map([&job.id], |r| r.get::<_, Vec<u8>>(0))? {
                job.data.extend_from_slice(&part?);
            }
            let mut rows =
                self.conn.prepare_cached("SELECT list, row FROM pg_bulk_rows WHERE job = ?1 ORDER BY rowid")?;
            for r in rows.query_map([&job.id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
                let (list, row) = r?;
                let row: Vec<String> = serde_json::from_str(&row).unwrap_or_default();
                match list {
                    0 => job.success_rows.push(row),
                    1 => job.failed_rows.push(row),
                    _ => job.unprocessed_rows.push(row),
                }
            }
            jobs.jobs.insert(job.id.clone(), job);
        }
        jobs.next = self
            .conn
            .query_row("SELECT value FROM pg_meta WHERE key = 'bulk_next'", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .unwrap_or(0);
        Ok(jobs)
    }
}
