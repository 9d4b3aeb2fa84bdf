//! A compiled SOQL query: the SQL that yields its rows and counts them, its parameters, and how
//! each row becomes a record (fields, parent records, child subqueries). The SOQL compiler in
//! `data::query` builds plans; query locators and Bulk query jobs keep them to serve pages.

use rusqlite::types::Value as Sql;

use crate::schema::FieldType;

/// What a page writes for each row.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Field { name: String, ftype: FieldType, col: usize },
    Parent { name: String, object: String, id_col: usize, items: Vec<Shape> },
    Child { name: String, index: usize },
}

/// A compiled child subquery, run per page for the page's parent ids.
#[derive(Debug, Clone)]
pub(crate) struct ChildPlan {
    pub(crate) object: String,
    /// `SELECT … FROM child t0 … WHERE t0.fk IN (` — the id list and the rest are added per page.
    pub(crate) select: String,
    pub(crate) fk_col: usize,
    pub(crate) filter: String,
    pub(crate) params: Vec<Sql>,
    pub(crate) order: String,
    pub(crate) limit: Option<u64>,
    pub(crate) items: Vec<Shape>,
}

/// A compiled top-level query.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) object: String,
    /// `SELECT t0.rid, t0."Id", … FROM … WHERE …` (no ORDER BY / LIMIT).
    pub(crate) select: String,
    pub(crate) count: String,
    pub(crate) params: Vec<Sql>,
    pub(crate) order: String,
    pub(crate) keyset: bool,
    pub(crate) offset: u64,
    pub(crate) limit: Option<u64>,
    pub(crate) items: Vec<Shape>,
    pub(crate) children: Vec<ChildPlan>,
}
