//! `ANY /v1/connections/{name}/sf/{*path}` → `{instance_url}/{path}` with the connection's
//! token. Only `services/…` paths, never a way out of them (`..`, encoded dots or slashes,
//! `//`, backslashes are refused). Bodies stream both ways. Hop-by-hop headers, the caller's
//! `Authorization` and cookies are not forwarded. After a 401 the token is renewed and the
//! request sent once more — only when its body was small enough to be buffered (and so can be
//! sent again); a streamed body's 401 is returned as is.
//!
//! Only GET, HEAD, POST, PUT, PATCH and DELETE are forwarded (others: 405). `Forwarded`,
//! `X-Forwarded-*` and `X-Real-IP` from callers are dropped: the broker is the client Salesforce
//! sees, and a caller must not speak for it. Every proxied request is counted for the audit log
//! (method, path with query values removed, final status, key id; never bodies).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::time::Instant;

use crate::access::Caller;
use crate::error::ErrorResponse;
use crate::state::BrokerState;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus the ones the broker
/// sets itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Why a proxied path is refused, or `None` when it is fine. `path` is the raw (still
/// percent-encoded) text after `/sf/`.
pub(crate) fn check_path(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if !path.starts_with("services/") {
        return Some("only services/… paths can be proxied");
    }
    if path.contains("//") || path.contains('\\') || lower.contains("%5c") {
        return Some("empty path segments and backslashes are not allowed");
    }
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%00") {
        return Some("encoded dots, slashes and NUL are not allowed in proxied paths");
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Some("`.` and `..` segments are not allowed");
    }
    None
}

/// Methods the proxy forwards; the REST, Bulk and Apex REST APIs need no others.
pub(crate) const FORWARDED_METHODS: [Method; 6] =
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

fn is_hop_by_hop(name: &HeaderName, listed: &[String]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_str()))
}

/// Headers by which a client claims to speak for another hop; never taken from callers.
fn is_forwarding(name: &HeaderName) -> bool {
    let n = name.as_str();
    n == "forwarded" || n == "x-real-ip" || n.starts_with("x-forwarded-")
}

/// `path?name=…&other=…`: the query's names kept, its values (record ids, SOQL, …) removed.
pub(crate) fn audit_path(path: &str, query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else { return path.to_owned() };
    let names: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=…"),
            None => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", names.join("&"))
}

/// Header names listed in `Connection` (also hop-by-hop).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .collect()
}

fn forward_request_headers(from: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(from);
    let mut out = HeaderMap::new();
    for (name, value) in from {
        if is_hop_by_hop(name, &listed)
            || is_forwarding(name)
            || name == header::AUTHORIZATION
            || name == header::COOKIE
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

fn forward_response_headers(from: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(from);
    let mut out = HeaderMap::new();
    for (name, value) in from {
        if is_hop_by_hop(name, &listed) || name == header::SET_COOKIE {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// A request body: buffered (can be sent twice) or a stream (once).
enum Outgoing {
    Buffered(Bytes),
    Streamed(Body),
}

/// The proxy handler: forwards, then counts the request with its final status for the audit log.
pub(crate) async fn proxy(
    State(state): State<BrokerState>,
    Path((name, _path)): Path<(String, String)>,
    mut request: Request,
) -> Response {
    // The guard checked the key before the body was touched; nothing after this reads it.
    let Some(caller) = request.extensions_mut().remove::<Caller>() else {
        return ErrorResponse::unauthorized().into_response();
    };
    let method = request.method().clone();
    let prefix = format!("/v1/connections/{name}/sf/");
    let raw = request.uri().path();
    let shown = audit_path(raw.strip_prefix(&prefix).unwrap_or(raw), request.uri().query());
    let response = forward(&state, &name, &prefix, request).await.unwrap_or_else(IntoResponse::into_response);
    state.audit_proxied(&caller.actor(), &name, format!("{method} {shown} → {}", response.status().as_u16()));
    response
}

/// `{instance_url}/{rest}?{query}`, from the instance URL as parsed when the token was issued:
/// only the path and query are parsed per request (the same rules as parsing the whole text).
fn upstream_url(instance: &url::Url, rest: &str, query: Option<&str>) -> url::Url {
    let mut url = instance.clone();
    let base = instance.path().trim_end_matches('/');
    let mut path = String::with_capacity(base.len() + 1 + rest.len());
    path.push_str(base);
    path.push('/');
    path.push_str(rest);
    url.set_path(&path);
    url.set_query(query);
    url.set_fragment(None);
    url
}

/// `Bearer {token}`, marked sensitive (kept out of hyper's debug output, as reqwest's own).
fn bearer(token: &str) -> Result<HeaderValue, ErrorResponse> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| ErrorResponse::upstream("the connection's access token is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

async fn forward(state: &BrokerState, name: &str, prefix: &str, request: Request) -> Result<Response, ErrorResponse> {
    let (parts, body) = request.into_parts();
    if !FORWARDED_METHODS.contains(&parts.method) {
        return Err(ErrorResponse::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("the proxy forwards only GET, HEAD, POST, PUT, PATCH and DELETE, not {}", parts.method),
        ));
    }
    // The raw path, not the decoded one from the extractor: encoded tricks must be seen.
    let raw = parts.uri.path();
    let Some(rest) = raw.strip_prefix(prefix) else {
        return Err(ErrorResponse::bad_request("the proxied path must follow /v1/connections/{name}/sf/"));
    };
    if let Some(reason) = check_path(rest) {
        return Err(ErrorResponse::bad_request(format!("refused path {rest:?}: {reason}")));
    }
    let entry = state.entry(name).await?;
    let limits = state.limits();
    let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|l| l > limits.max_proxy_body_bytes) {
        return Err(ErrorResponse::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("proxied bodies are limited to {} bytes", limits.max_proxy_body_bytes),
        ));
    }
    let no_body = matches!(parts.method, Method::GET | Method::HEAD | Method::DELETE)
        && length.unwrap_or(0) == 0
        && !parts.headers.contains_key(header::TRANSFER_ENCODING);
    let outgoing = if no_body {
        Outgoing::Buffered(Bytes::new())
    } else if length.is_some_and(|l| l <= limits.replay_buffer_bytes as u64) {
        Outgoing::Buffered(
            axum::body::to_bytes(body, limits.replay_buffer_bytes)
                .await
                .map_err(|e| ErrorResponse::bad_request(format!("reading the request body: {e}")))?,
        )
    } else {
        Outgoing::Streamed(body)
    };
    let mut headers = forward_request_headers(&parts.headers);
    let query = parts.uri.query();
    let started = Instant::now();
    let mut outgoing = Some(outgoing);
    let mut attempt = 0;
    let response = loop {
        attempt += 1;
        let issued = state.token(&entry).await?;
        let mut req =
            reqwest::Request::new(parts.method.clone(), upstream_url(&issued.token.instance_url, rest, query));
        let replay = match outgoing.take() {
            Some(Outgoing::Buffered(bytes)) => {
                *req.body_mut() = Some(bytes.clone().into());
                Some(Outgoing::Buffered(bytes))
            }
            Some(Outgoing::Streamed(body)) => {
                let max = limits.max_proxy_body_bytes;
                let mut seen = 0u64;
                let stream = body.into_data_stream().map_err(std::io::Error::other).and_then(move |chunk| {
                    seen += chunk.len() as u64;
                    let over = seen > max;
                    async move {
                        if over {
                            Err(std::io::Error::other("the request body is larger than the proxy allows"))
                        } else {
                            Ok(chunk)
                        }
                    }
                });
                *req.body_mut() = Some(reqwest::Body::wrap_stream(stream));
                None
            }
            None => None,
        };
        // Only a request that can be sent again keeps a copy of its headers.
        *req.headers_mut() =
            if replay.is_some() && attempt == 1 { headers.clone() } else { std::mem::take(&mut headers) };
        req.headers_mut().insert(header::AUTHORIZATION, bearer(issued.token.access_token.secret())?);
        let resp = match state.proxy_http().execute(req).await {
            Ok(r) => r,
            Err(e) => {
                entry.counters.proxy_errors.inc();
                entry.record_error(state.now(), format!("proxy: {e}"));
                return Err(ErrorResponse::upstream(format!("could not reach Salesforce: {e}")));
            }
        };
        if resp.status() == StatusCode::UNAUTHORIZED && attempt == 1 && replay.is_some() {
            entry.cache.invalidate(&issued.token.access_token);
            outgoing = replay;
            continue;
        }
        break resp;
    };
    entry.counters.proxied.inc();
    entry.counters.observe_proxy_latency(started.elapsed());
    if let Some(info) = response.headers().get("sforce-limit-info").and_then(|v| v.to_str().ok()) {
        entry.record_limit_info(info.to_owned());
    }
    let status = response.status();
    if status.is_success() {
        entry.record_ok(state.now());
    }
    let headers = forward_response_headers(response.headers());
    let mut out = Response::new(Body::from_stream(response.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_services_paths_pass() {
        for ok in [
            "services/data/v64.0/query?q=x",
            "services/data/",
            "services/apexrest/my/thing",
            "services/data/v64.0/sobjects/Account/001",
        ] {
            assert_eq!(check_path(ok), None, "{ok}");
        }
        for bad in [
            "",
            "secur/frontdoor.jsp",
            "services/../secur/frontdoor.jsp",
            "services/data/%2e%2e/%2E%2E/x",
            "services/data/..%2fx",
            "services//data",
            "services/data\\..\\x",
            "services/data/%5c",
            "services/./data",
            "services/data/%00",
            "/services/data",
        ] {
            assert!(check_path(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_authorization_and_cookies_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer flk_secret".parse().unwrap());
        h.insert(header::COOKIE, "forcelink_session=abc".parse().unwrap());
        h.insert(header::CONNECTION, "keep-alive, X-Private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h.insert("sforce-call-options", "client=x".parse().unwrap());
        h.insert("forwarded", "for=10.0.0.1".parse().unwrap());
        h.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
        h.insert("x-forwarded-host", "evil.example".parse().unwrap());
        h.insert("x-real-ip", "10.0.0.1".parse().unwrap());
        let out = forward_request_headers(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "sforce-call-options"]);
    }

    #[test]
    fn upstream_urls_join_the_instance_and_the_raw_path() {
        let instance = url::Url::parse("https://acme.my.salesforce.com").unwrap();
        let url = upstream_url(&instance, "services/data/v64.0/query", Some("q=SELECT+Id+FROM+Account%20X"));
        assert_eq!(
            url.as_str(),
            "https://acme.my.salesforce.com/services/data/v64.0/query?q=SELECT+Id+FROM+Account%20X"
        );
        // A base path is kept; a trailing slash is not doubled; no query means none.
        let instance = url::Url::parse("http://127.0.0.1:8411/base/").unwrap();
        assert_eq!(
            upstream_url(&instance, "services/data/", None).as_str(),
            "http://127.0.0.1:8411/base/services/data/"
        );
        // Exactly what parsing the joined text gives, encoded characters included.
        let rest = "services/apexrest/a%20b/c|d";
        assert_eq!(
            upstream_url(&instance, rest, Some("x=1&y")),
            url::Url::parse(&format!("http://127.0.0.1:8411/base/{rest}?x=1&y")).unwrap()
        );
    }

    #[test]
    fn audited_paths_keep_query_names_and_drop_values() {
        assert_eq!(audit_path("services/data/", None), "services/data/");
        assert_eq!(
            audit_path("services/data/v64.0/query", Some("q=SELECT+Id+FROM+User&batchSize=5&flag")),
            "services/data/v64.0/query?q=…&batchSize=…&flag"
        );
    }
}
