//! Fault injection: the next N requests whose path starts with a prefix get a chosen failure
//! instead of (or on top of) the normal answer. Set through `/__playground/faults`; the armed
//! faults are kept in the org's runtime state, which the accept loop passes to [`take`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Lets a handler close its HTTP connection without answering (the "dropped connection" fault).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionKill(pub(crate) Arc<tokio::sync::Notify>);

/// One armed fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fault {
    /// Requests whose path starts with this are affected (`/` matches all).
    pub(crate) path_prefix: String,
    /// How many more requests this fault affects.
    #[serde(default = "one")]
    pub(crate) count: u32,
    #[serde(flatten)]
    pub(crate) action: FaultAction,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum FaultAction {
    /// Answer with this status and body instead.
    Status {
        #[serde(default = "internal_error")]
        status: u16,
        /// A recorded Salesforce answer to send when `body` is empty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preset: Option<Preset>,
        #[serde(default)]
        body: String,
        #[serde(default = "json_type")]
        content_type: String,
        /// Sent as `Retry-After` (seconds) when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_seconds: Option<u64>,
    },
    /// Wait, then answer normally.
    Delay { delay_ms: u64 },
    /// Close the connection without an answer.
    Drop,
    /// Answer normally but cut the body in half (a truncated JSON document).
    Truncate,
    /// A Salesforce-style HTML maintenance page.
    Html {
        #[serde(default = "service_unavailable")]
        status: u16,
    },
}

/// Salesforce answers the `status` fault can send without spelling out the body.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Preset {
    /// `500 [{"message":"An unexpected error occurred. Please include this ErrorId if you
    /// contact support: …","errorCode":"UNKNOWN_EXCEPTION"}]`, Salesforce's answer to an
    /// internal failure.
    UnknownException,
}

impl Preset {
    fn body(self) -> String {
        use rand::Rng;
        let mut r = rand::thread_rng();
        let id = format!(
            "{}-{} ({})",
            r.gen_range(100_000_000..2_000_000_000u32),
            r.gen_range(10_000..99_999u32),
            -r.gen_range(100_000_000..2_000_000_000i64)
        );
        serde_json::json!([{
            "message": format!("An unexpected error occurred. Please include this ErrorId if you contact support: {id}"),
            "errorCode": "UNKNOWN_EXCEPTION"
        }])
        .to_string()
    }
}

fn internal_error() -> u16 {
    500
}

fn json_type() -> String {
    "application/json;charset=UTF-8".to_owned()
}
fn service_unavailable() -> u16 {
    503
}

const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Salesforce - Unavailable</title></head>\
<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request due to \
maintenance downtime or capacity problems. Please try again later.</p></body></html>\n";

/// Takes the first armed fault matching `path` from `faults`, counting it down. The control API
/// itself is never faulted, so a test can always disarm what it armed.
pub(crate) fn take(faults: &mut Vec<Fault>, path: &str) -> Option<FaultAction> {
    if path.starts_with("/__playground") {
        return None;
    }
    let i = faults.iter().position(|f| f.count > 0 && path.starts_with(&f.path_prefix))?;
    let fault = &mut faults[i];
    fault.count -= 1;
    let action = fault.action.clone();
    if fault.count == 0 {
        faults.remove(i);
    }
    Some(action)
}

/// Runs `next` for `req`, or answers with the fault `action` taken for it (see [`take`]).
pub(crate) async fn apply<F, Fut>(action: Option<FaultAction>, req: Request<Body>, next: F) -> Response
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(action) = action else { return next(req).await };
    match action {
        FaultAction::Status { status, preset, body, content_type, retry_after_seconds } => {
            let body = match preset {
                Some(p) if body.is_empty() => p.body(),
                _ => body,
            };
            let mut r =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            if let Some(secs) = retry_after_seconds {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            r
        }
        FaultAction::Html { status } => {
            let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE), MAINTENANCE_PAGE)
                .into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html;charset=UTF-8"));
            r
        }
        FaultAction::Delay { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            next(req).await
        }
        FaultAction::Drop => {
            if let Some(kill) = req.extensions().get::<ConnectionKill>() {
                kill.0.notify_one();
            }
            std::future::pending().await
        }
        FaultAction::Truncate => {
            let response = next(req).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
    }
}
