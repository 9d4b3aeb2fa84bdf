//! Open query locators: a query being paged through, by locator id (`nextRecordsUrl`).

use std::collections::HashMap;
use std::sync::Arc;

use super::plan::Plan;

/// A query being paged through.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) plan: Arc<Plan>,
    pub(crate) total: u64,
    pub(crate) batch: usize,
    /// Records returned so far → the rowid of the last one (keyset plans).
    pub(crate) boundaries: HashMap<u64, i64>,
    pub(crate) touched_ms: i64,
}

/// Open query locators.
#[derive(Debug, Default)]
pub(crate) struct Locators {
    pub(crate) cursors: HashMap<String, Cursor>,
    pub(crate) next: u64,
}
