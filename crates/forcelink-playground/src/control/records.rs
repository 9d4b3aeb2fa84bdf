//! Records changed the way an administrator changes them in Setup, under `/__playground/records/`:
//!
//! | method & path | what it does |
//! |---|---|
//! | `POST /undelete` | `{"ids": ["001…", …]}` (1 to 200): restores the records from the recycle bin, with the records deleted along with them; UNDELETE change events |
//!
//! Salesforce's REST API has no undelete (SOAP's `undelete()` and Apex have), so the playground
//! offers it here. The answer lists every id restored, children included.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{check, parse, problem};
use crate::state::Shared;

pub(crate) fn router() -> Router<Shared> {
    Router::new().route("/undelete", post(undelete))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndeleteRequest {
    ids: Vec<String>,
}

async fn undelete(State(pg): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&pg, &headers) {
        return r;
    }
    let req: UndeleteRequest = match parse(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let pg2 = pg.clone();
    let out = tokio::task::spawn_blocking(move || crate::data::admin::undelete(&pg2, &req.ids)).await;
    match out {
        Ok(Ok(ids)) => Json(json!({"undeleted": ids})).into_response(),
        Ok(Err(e)) => problem(StatusCode::BAD_REQUEST, &e.message),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("the undelete did not finish: {e}")),
    }
}
