//! SOQL execution: a parsed query is compiled to one SQLite statement (parent paths become
//! LEFT JOINs, WHERE becomes SQL with bound parameters), pages are read straight from SQLite
//! into JSON bytes, and child subqueries run once per page for all the page's parents.
//!
//! Pages: a query without ORDER BY/OFFSET pages by rowid (keyset, constant cost per page);
//! otherwise by OFFSET over a deterministic order (the keys plus rowid). The locator in
//! `nextRecordsUrl` (`/services/data/vXX.X/query/01g…-2000`) names a server-side cursor and the
//! number of records already returned, so it works under any API version and on `query` or
//! `queryAll`.
//!
//! - `compile`: SOQL → SQL (`Plan`, `Compiled`); `page`: running plans page by page, query
//!   locators, child subqueries; `encode`: rows as JSON records, with each plan's constant bytes
//!   (field names, `attributes`) encoded once; `json`: JSON strings and numbers; `search`: the
//!   SOSL subset.

mod compile;
mod encode;
mod extend;
mod json;
mod layout;
mod page;
mod search;
#[cfg(test)]
mod tests;

use crate::data::request::SfError;

pub(crate) use compile::{Compiled, compile};
pub(crate) use layout::with_layout;
pub(crate) use page::{batch_size, more, plan_columns, run};
pub(crate) use search::search;

fn malformed(message: impl Into<String>) -> SfError {
    SfError::bad("MALFORMED_QUERY", message)
}

fn no_column(field: &str, object: &str) -> SfError {
    SfError::bad(
        "INVALID_FIELD",
        format!(
            "No such column '{field}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

fn no_relationship(rel: &str) -> SfError {
    SfError::bad(
        "INVALID_FIELD",
        format!(
            "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

pub(crate) fn invalid_type(object: &str) -> SfError {
    SfError::bad("INVALID_TYPE", format!("sObject type '{object}' is not supported."))
}
