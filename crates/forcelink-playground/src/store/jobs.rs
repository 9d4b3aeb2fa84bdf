//! Bulk API 2.0 jobs: their settings, state and results. Jobs live in memory; their records in
//! the store.

use std::collections::HashMap;
use std::sync::Arc;

use super::plan::Plan;
use crate::call::{Caller, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ingest,
    Query,
}

#[derive(Debug)]
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
    pub(crate) data: Vec<u8>,
    pub(crate) header: Option<Vec<String>>,
    pub(crate) processed: u64,
    pub(crate) failed: u64,
    pub(crate) success_rows: Vec<Vec<String>>,
    pub(crate) failed_rows: Vec<Vec<String>>,
    pub(crate) unprocessed_rows: Vec<Vec<String>>,
    pub(crate) error_message: Option<String>,
    pub(crate) processing_ms: i64,
    pub(crate) plan: Option<Arc<Plan>>,
    pub(crate) total: u64,
    pub(crate) boundaries: HashMap<u64, i64>,
}

/// Every bulk job of the org.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) next: u64,
}
