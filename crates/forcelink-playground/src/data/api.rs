//! The `/services/data/vXX.X/…` handler: authentication, daily API counting, body reading,
//! handing the request to the router (`routes`) on a blocking thread, and the answer's headers
//! and encoding.

use std::io::{Read, Write};

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::invalid_session;
use super::request::{ApiRequest, Ctx, MAX_UPLOAD_BYTES, Params, Reply, SfError, split_path};
use super::routes::dispatch;
use crate::call::Caller;
use crate::host::{Host, HostKind, bearer_token};
use crate::state::Shared;

/// Largest JSON (or multipart) request body: Salesforce accepts up to 50 MB for blob inserts.
const MAX_JSON_BODY: usize = 52 * 1024 * 1024;

fn limit_header(used: u64, max: u64) -> String {
    format!("api-usage={used}/{max}")
}

/// `/services/data/vXX.X/…`: every REST resource.
pub(crate) async fn api(State(pg): State<Shared>, Extension(host): Extension<Host>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Some(token) = bearer_token(&parts.headers).map(str::to_owned) else { return invalid_session() };
    if host.kind == HostKind::Login {
        return invalid_session();
    }
    let now = pg.now_ms();
    let (caller, max) = {
        let mut rt = pg.rt();
        let Some(user) = rt.live_access(&token, now).map(|t| t.user) else { return invalid_session() };
        rt.stats.api_requests += 1;
        let u = &rt.users[user];
        (Caller { id: u.id.clone(), admin: u.profile == "System Administrator" }, rt.settings.daily_api_requests)
    };
    let used = match pg.data.count(now, max) {
        Ok(n) => n,
        Err(n) => {
            let mut r = Reply::error(&SfError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ));
            r.headers.push(("sforce-limit-info", limit_header(n, max)));
            return finish(r, &parts.headers);
        }
    };
    let path = parts.uri.path().to_owned();
    let Some((version, segments)) = split_path(&path) else {
        let mut r = Reply::error(&SfError::not_found());
        r.headers.push(("sforce-limit-info", limit_header(used, max)));
        return finish(r, &parts.headers);
    };
    let limit = if path.contains("/jobs/ingest/") { MAX_UPLOAD_BYTES + 1024 } else { MAX_JSON_BODY };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let mut r = Reply::error(&SfError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_ENTITY_TOO_LARGE",
                format!("The request body exceeds the maximum size of {limit} bytes"),
            ));
            r.headers.push(("sforce-limit-info", limit_header(used, max)));
            return finish(r, &parts.headers);
        }
    };
    let gzipped = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let bytes = if gzipped {
        let mut out = Vec::new();
        let decoder = flate2::read::GzDecoder::new(&bytes[..]);
        if decoder.take(limit as u64).read_to_end(&mut out).is_err() {
            return finish(
                Reply::error(&SfError::bad("JSON_PARSER_ERROR", "The gzip request body is invalid")),
                &parts.headers,
            );
        }
        bytes::Bytes::from(out)
    } else {
        bytes
    };
    let method = parts.method.clone();
    let query = parts.uri.query().map(str::to_owned);
    let headers = parts.headers.clone();
    let allow_duplicates = allows_duplicates(&headers);
    let pg2 = pg.clone();
    let reply = tokio::task::spawn_blocking(move || {
        let mut db = pg2.data.store.lock();
        let mut ctx = Ctx {
            db: &mut db,
            caller,
            version,
            now,
            users_changed: false,
            update_only: false,
            changes: Vec::new(),
            allow_duplicates,
        };
        let req =
            ApiRequest { method, segments, params: Params::parse(query.as_deref()), headers: &headers, body: &bytes };
        let reply = dispatch(&pg2, &mut ctx, &req);
        if ctx.users_changed {
            pg2.sync_users_from_db(ctx.db);
        }
        let changes = std::mem::take(&mut ctx.changes);
        let origin = with_call_client(crate::events::api_origin("rest", &ctx.version.text), &headers);
        crate::events::emit(&pg2.events, ctx.now, &origin, &ctx.caller.id, changes);
        reply
    })
    .await
    .unwrap_or_else(|e| Reply::error(&SfError::internal(e)));
    let mut reply = reply;
    reply.headers.push(("sforce-limit-info", limit_header(used, max)));
    finish(reply, &parts.headers)
}

/// `Sforce-Duplicate-Rule-Header: allowSave=true` (Salesforce's REST header for the
/// DuplicateRuleHeader; `runAsCurrentUser` and `includeRecordDetails` are accepted and ignored).
fn allows_duplicates(headers: &HeaderMap) -> bool {
    headers.get("sforce-duplicate-rule-header").and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split([',', ';']).any(|part| {
            let mut kv = part.splitn(2, '=').map(str::trim);
            kv.next().is_some_and(|k| k.eq_ignore_ascii_case("allowSave"))
                && kv.next().is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
    })
}

/// `changeOrigin` with the caller's `Sforce-Call-Options: client=<id>` appended as
/// `;client=<id>` (CDC guide, "ChangeEventHeader Fields": `com/salesforce/api/soap/51.0;client=Astro`).
/// UNCONFIRMED: that REST calls name their client the same way SOAP calls do.
fn with_call_client(origin: String, headers: &HeaderMap) -> String {
    let client = headers.get("sforce-call-options").and_then(|v| v.to_str().ok()).and_then(|v| {
        v.split(',').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            let v = v.trim();
            let ok =
                !v.is_empty() && v.len() <= 40 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            (k.trim().eq_ignore_ascii_case("client") && ok).then(|| v.to_owned())
        })
    });
    match client {
        Some(c) => format!("{origin};client={c}"),
        None => origin,
    }
}

/// Turns a reply into HTTP, gzip-encoding the body when the client accepts it.
pub(crate) fn finish(reply: Reply, request_headers: &HeaderMap) -> Response {
    let accepts_gzip = request_headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().split(';').next().is_some_and(|n| n.eq_ignore_ascii_case("gzip"))));
    let (body, gz) = if accepts_gzip && reply.body.len() > 256 {
        let mut enc =
            flate2::write::GzEncoder::new(Vec::with_capacity(reply.body.len() / 4), flate2::Compression::fast());
        match enc.write_all(&reply.body).and_then(|_| enc.finish()) {
            Ok(b) => (b, true),
            Err(_) => (reply.body, false),
        }
    } else {
        (reply.body, false)
    };
    let mut r = (reply.status, body).into_response();
    let h = r.headers_mut();
    if let Some(ct) = reply.content_type {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}
