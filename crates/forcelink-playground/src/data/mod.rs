//! The REST API under `/services/data/`: the versions list (no token needed) and, under
//! `/services/data/vXX.X/`, everything else. One handler authenticates, counts the daily API
//! request, reads the body, runs the request against the record store on a blocking thread and
//! writes the answer (with `Sforce-Limit-Info`, gzip when accepted).
//!
//! - `api`: the handler (authentication, usage, body, gzip); `routes`: path → resource;
//!   `request`: the request, context, reply and Salesforce error every resource works with.
//! - `records`: field values, create / read / update / delete / upsert semantics, user-admin
//!   effects.
//! - `soql`: the SOQL (and SOSL) parser; `query`: SOQL compiled to SQLite SQL, pages, locators.
//! - `composite`: composite, graph, batch, tree, sObject collections; `limits`: `/limits`
//!   with the consumption of each limit.
//! - `bulk`: Bulk API 2.0 ingest and query jobs; `useradmin`: the password resource.
//! - `orgdata`: the records every org starts with; `generate`: bulk synthetic records.
//! - `rules`: the seed's validation and duplicate rules, run on every write they guard.
//! - `admin`: what the control API does as an administrator in Setup (undelete, user flags).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::call::{LATEST_API_VERSION, OLDEST_API_VERSION};
use crate::host::{Host, HostKind, bearer_token};
use crate::state::Shared;

pub(crate) mod admin;
mod api;
pub(crate) mod bulk;
mod composite;
pub(crate) mod generate;
pub(crate) mod limits;
pub(crate) mod orgdata;
pub(crate) mod query;
pub(crate) mod records;
mod replication;
mod request;
mod routes;
pub(crate) mod rules;
pub(crate) mod soql;
mod useradmin;

pub(crate) use api::api;

/// Salesforce's release label for a major API version: 20.0 was Winter '11, and each year has
/// three releases (Winter, Spring, Summer; Winter is named after the following year).
fn release_label(major: u32) -> String {
    let n = major - OLDEST_API_VERSION;
    let season = ["Winter", "Spring", "Summer"][(n % 3) as usize];
    format!("{season} '{:02}", 11 + n / 3)
}

fn versions_body() -> serde_json::Value {
    let latest: u32 = LATEST_API_VERSION.split('.').next().and_then(|v| v.parse().ok()).unwrap_or(OLDEST_API_VERSION);
    let list: Vec<_> = (OLDEST_API_VERSION..=latest)
        .map(|v| json!({"version": format!("{v}.0"), "url": format!("/services/data/v{v}.0"), "label": release_label(v)}))
        .collect();
    serde_json::Value::Array(list)
}

/// A REST error: a JSON array of `{message, errorCode}` (wire reference §7).
pub(crate) fn rest_error(status: StatusCode, error_code: &str, message: &str) -> Response {
    let body = json!([{"message": message, "errorCode": error_code}]);
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

pub(crate) fn invalid_session() -> Response {
    rest_error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
}

/// Checks a presented token: sessions live on the instance host only, so a token sent to the
/// login host is refused, as a client that ignores `instance_url` would be on Salesforce.
fn check_token(pg: &Shared, host: &Host, headers: &HeaderMap) -> Result<bool, Response> {
    let Some(token) = bearer_token(headers) else { return Ok(false) };
    if host.kind == HostKind::Login {
        return Err(invalid_session());
    }
    let now = pg.now_ms();
    let mut rt = pg.rt();
    if rt.live_access(token, now).is_none() {
        return Err(invalid_session());
    }
    rt.stats.api_requests += 1;
    Ok(true)
}

/// `GET /services/data/`: needs no token, but a presented one must be valid.
pub(crate) async fn versions(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_token(&pg, &host, &headers) {
        return r;
    }
    let mut response = (StatusCode::OK, versions_body().to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::release_label;

    #[test]
    fn release_labels_follow_salesforce_naming() {
        assert_eq!(release_label(20), "Winter '11");
        assert_eq!(release_label(58), "Summer '23");
        assert_eq!(release_label(66), "Spring '26");
    }
}
