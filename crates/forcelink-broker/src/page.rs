//! What every page answer shares: rendering an askama template with the page's headers, and the
//! message page (notices, errors, "store unavailable", pages that move on by themselves). The
//! page's own routes are in [`crate::web`]; the session check that may answer with a page is in
//! [`crate::access`].

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::ids::random_id;

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    heading: &'a str,
    text: &'a str,
    is_error: bool,
    next: Option<&'a str>,
}

/// `page` rendered with `status`; a 500 when it cannot be rendered.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut r = (status, Html(body)).into_response();
            // Pages hold CSRF tokens and connection details: not for shared caches or frames.
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => crate::error::internal(&format!("rendering a page: {e}")),
    }
}

/// A 503 page for a store failure: the detail goes to the log with a request id, the page says
/// only that the store does not answer.
pub(crate) fn store_down(e: &dyn std::fmt::Display) -> Response {
    let id = random_id(9);
    tracing::warn!(request_id = %id, "the store: {e}");
    let text = format!("The broker's store does not answer; try again later (request id {id}).");
    message(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", &text, None)
}

/// The message page: a heading and a text (an error when `status` is not a success), with a
/// link onwards to `next` (which the page also moves on to by itself) or back to the list.
pub(crate) fn message(status: StatusCode, heading: &str, text: &str, next: Option<&str>) -> Response {
    html(status, &MessagePage { heading, text, is_error: !status.is_success(), next })
}
